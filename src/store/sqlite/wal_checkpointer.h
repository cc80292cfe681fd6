// Checkpoints a SQLite file's write-ahead log from a connection and a thread
// of its own, so the connection that writes does not.
//
// By default SQLite checkpoints on the connection that commits, once the log
// holds 1,000 pages: that commit copies the pages into the database file and
// syncs both files (fdatasync, 100 ms on average and up to 233 ms as traced
// on the benchmark machine), while the engine's claims and settles wait for
// the connection. With a million jobs, where every claimed job dirties a
// page of its own, the engine fell behind 10,000 fires a second
// (docs/performance.md). Here the writer only counts the log's
// pages (sqlite3_wal_hook, which replaces SQLite's own automatic
// checkpoint) and wakes the thread, which runs PASSIVE checkpoints: they
// copy what no reader still needs without waiting for the writer.
//
// The log restarts from its beginning when a checkpoint has copied all of
// it before the next write; a writer that never pauses would let it grow,
// so at `inline_pages` the writer checkpoints itself, as SQLite would have
// (by then the thread has copied nearly all of it).

#ifndef SKED_STORE_SQLITE_WAL_CHECKPOINTER_H_
#define SKED_STORE_SQLITE_WAL_CHECKPOINTER_H_

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sked/status.h"
#include "store/sqlite/sqlite_db.h"

namespace sked::store_internal {

class WalCheckpointer {
 public:
  static constexpr int kBackgroundPages = 1000;  // SQLite's own threshold
  static constexpr int kInlinePages = 16384;     // 64 MiB of 4 KiB pages

  // Opens a second connection to `path` and takes over checkpoints from
  // `writer` (a connection to the same file, which must outlive this).
  static Result<std::unique_ptr<WalCheckpointer>> Start(const std::string& path, sqlite3* writer,
                                                        int background_pages = kBackgroundPages,
                                                        int inline_pages = kInlinePages);
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;
  // Stops the thread and gives checkpoints back to the writer (SQLite's
  // automatic checkpoint).
  ~WalCheckpointer();

  // Checkpoints run by the thread, and by the writer at `inline_pages`.
  std::int64_t background_checkpoints() const;
  std::int64_t inline_checkpoints() const;
  // Waits until the thread has run at least `n` checkpoints (tests).
  bool WaitForBackgroundCheckpoints(std::int64_t n, std::chrono::milliseconds timeout);

 private:
  WalCheckpointer(std::unique_ptr<SqliteDb> own, sqlite3* writer, int background_pages,
                  int inline_pages)
      : own_(std::move(own)),
        writer_(writer),
        background_pages_(background_pages),
        inline_pages_(inline_pages) {}
  static int OnCommit(void* self, sqlite3* db, const char* schema, int pages);
  void Run();

  std::unique_ptr<SqliteDb> own_;  // the thread's connection
  sqlite3* writer_;
  const int background_pages_;
  const int inline_pages_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false;  // the log passed background_pages_ since the last checkpoint
  bool stopping_ = false;
  std::int64_t background_ = 0;
  std::int64_t inline_ = 0;
  std::thread thread_;
};

}  // namespace sked::store_internal

#endif  // SKED_STORE_SQLITE_WAL_CHECKPOINTER_H_
