// A thin RAII layer over one sqlite3 connection: prepared statements cached
// by their SQL text (prepared once), typed binds and columns, transactions.
// Not thread-safe: the store serializes access with its own mutex.

#ifndef SKED_STORE_SQLITE_SQLITE_DB_H_
#define SKED_STORE_SQLITE_SQLITE_DB_H_

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sked/status.h"

namespace sked::store_internal {

// A prepared statement, reset and unbound on every Prepare().
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(stmt_); }

  // Binds by 1-based index; each returns *this for chaining.
  Stmt& Bind(int i, std::int64_t v);
  Stmt& Bind(int i, int v) { return Bind(i, static_cast<std::int64_t>(v)); }
  Stmt& Bind(int i, double v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Stmt& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Stmt& BindNull(int i);
  template <typename T>
  Stmt& Bind(int i, const std::optional<T>& v) {
    return v ? Bind(i, *v) : BindNull(i);
  }

  // One step: true if a row is available, false when done. Errors go to
  // status(); check it after the loop.
  bool Step();
  // Runs to completion; the status of the statement.
  Status Run();
  const Status& status() const { return status_; }

  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const;
  std::optional<std::int64_t> OptInt(int col) const {
    return IsNull(col) ? std::nullopt : std::optional<std::int64_t>(Int(col));
  }

  void Reset();
  sqlite3_stmt* raw() { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
  Status status_;
};

class SqliteDb {
 public:
  // Opens (creating if needed) the database at `path` (":memory:" allowed) in
  // WAL mode with a busy timeout, so several processes can share the file.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path);
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  ~SqliteDb();

  // Runs SQL without parameters (schema, pragmas, BEGIN/COMMIT).
  Status Exec(std::string_view sql);
  // The cached statement for `sql`, reset and with bindings cleared. The
  // reference stays valid while the database is open.
  Result<Stmt*> Prepare(std::string_view sql);
  // Resets every cached statement, ending any read a statement left open.
  void ResetAll() {
    for (auto& [sql, stmt] : statements_) stmt->Reset();
  }
  std::int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  const std::string& path() const { return path_; }
  sqlite3* handle() { return db_; }

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  // Looked up by the statement's text without copying it into a string
  // (each use of a statement: several per run on the engine's hot path).
  struct TextHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::unique_ptr<Stmt>, TextHash, std::equal_to<>> statements_;
};

// An IMMEDIATE transaction (takes the write lock at once, so concurrent
// writers queue on the busy timeout instead of deadlocking). Rolls back unless
// Commit() succeeds.
class Transaction {
 public:
  explicit Transaction(SqliteDb* db) : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Status Begin();
  Status Commit();

 private:
  SqliteDb* db_;
  bool open_ = false;
};

// Maps an SQLite result code to a Status: BUSY/LOCKED -> UNAVAILABLE,
// CONSTRAINT -> ALREADY_EXISTS, others -> INTERNAL.
Status SqliteError(int code, std::string_view what);

}  // namespace sked::store_internal

#endif  // SKED_STORE_SQLITE_SQLITE_DB_H_
