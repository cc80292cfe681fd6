// The write-ahead log's checkpoints, taken off the writing connection: the
// thread runs them, the writer bounds the log, SQLite's own come back after.

#include "store/sqlite/wal_checkpointer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace sked::store_internal {
namespace {

class WalCheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("sked-checkpoint-" + std::to_string(::getpid()) + ".db"))
                .string();
    Remove();
    auto db = SqliteDb::Open(path_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    ASSERT_TRUE(db_->Exec("CREATE TABLE t (b BLOB)").ok());
  }
  void TearDown() override {
    db_.reset();
    Remove();
  }
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  }
  // n transactions of about a page each.
  void Write(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(db_->Exec("INSERT INTO t VALUES (zeroblob(3000))").ok());
    }
  }
  // The pages in the log now (a passive checkpoint's report; it copies them).
  int LogPages() {
    int log = -1, copied = -1;
    EXPECT_EQ(
        sqlite3_wal_checkpoint_v2(db_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied),
        SQLITE_OK);
    return log;
  }

  std::string path_;
  std::unique_ptr<SqliteDb> db_;
};

TEST_F(WalCheckpointerTest, TheThreadCheckpointsOnceTheLogPassesItsThreshold) {
  auto c = WalCheckpointer::Start(path_, db_->handle(), /*background_pages=*/10,
                                  /*inline_pages=*/1000000);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Write(25);
  EXPECT_TRUE((*c)->WaitForBackgroundCheckpoints(1, std::chrono::seconds(20)));
  EXPECT_EQ((*c)->inline_checkpoints(), 0);
}

// While it is on, the writer does not checkpoint at SQLite's 1,000 pages:
// the log holds every page written. Once it is gone, SQLite does again.
TEST_F(WalCheckpointerTest, TheWriterLeavesCheckpointsToItUntilItStops) {
  {
    auto c = WalCheckpointer::Start(path_, db_->handle(), /*background_pages=*/1000000,
                                    /*inline_pages=*/1000000);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    Write(1100);
    EXPECT_EQ((*c)->inline_checkpoints(), 0);
    EXPECT_EQ((*c)->background_checkpoints(), 0);
  }
  EXPECT_GE(LogPages(), 1100) << "no checkpoint ran on the writer";
  Write(1100);  // restarts the log (all of it was copied just now), then passes 1,000 pages
  EXPECT_LT(LogPages(), 1000) << "SQLite's automatic checkpoint is back";
}

// A writer that never pauses leaves the thread no moment when the whole log
// is copied, so the log would not restart: at inline_pages the writer
// checkpoints itself.
TEST_F(WalCheckpointerTest, TheWriterBoundsTheLogAtItsInlineThreshold) {
  auto c = WalCheckpointer::Start(path_, db_->handle(), /*background_pages=*/1000000,
                                  /*inline_pages=*/50);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Write(300);
  EXPECT_GE((*c)->inline_checkpoints(), 5);
  EXPECT_LT(LogPages(), 60);
}

}  // namespace
}  // namespace sked::store_internal
