// SQLite-specific store behaviour: upgrading a database written by an earlier
// schema keeps its rows and ids.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "sked/store.h"
#include "store/sqlite/migrations.h"
#include "store/sqlite/pinned_sql.h"
#include "store/sqlite/sqlite_db.h"
#include "store/store_codec.h"

namespace sked {
namespace {

// A database at schema version 2 (before ids were AUTOINCREMENT), with job 2
// and its run 2 deleted already: SQLite would hand both ids out again.
void WriteVersion2Database(const std::string& path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string sql =
      "PRAGMA foreign_keys=ON; CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name "
      "TEXT NOT NULL, "
      "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);";
  for (const auto& m : store_internal::SqliteMigrations()) {
    if (m.version > 2) break;
    sql += std::string(m.sql) + "INSERT INTO schema_migrations (version, name) VALUES (" +
           std::to_string(m.version) + ", 'v');";
  }
  for (int id : {1, 2}) {
    const std::string n = std::to_string(id);
    sql +=
        "INSERT INTO jobs (id, name, driver, schedule, state, overlap, max_queued, "
        "max_concurrent, misfire, catchup_window_us, retry_backoff_us, retry_multiplier, "
        "retry_max_backoff_us, retry_jitter, retry_on, created_at, updated_at) VALUES (" +
        n + ", 'job" + n +
        "', 'noop', '* * * * *', 'active', 'skip', 1, 1, 'run_once', 0, 0, "
        "2, 0, 0, 'failed', 0, 0);"
        "INSERT INTO runs (id, job_id, scheduled_for, attempt, trigger, status, queued_at, "
        "not_before) VALUES (" +
        n + ", " + n + ", 0, 1, 'schedule', 'succeeded', 0, 0);";
  }
  sql += "DELETE FROM jobs WHERE id = 2;";  // its run goes with it
  char* error = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK) << error;
  sqlite3_close(db);
}

TEST(SqliteStoreTest, UpgradeToNeverReusedIdsKeepsRowsAndIds) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sked-upgrade-" + std::to_string(::getpid()) + ".db"))
                               .string();
  WriteVersion2Database(path);
  {
    auto store = Store::Open("sqlite://" + path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_EQ(*(*store)->SchemaVersion(), 2);
    Status migrated = (*store)->Migrate();
    ASSERT_TRUE(migrated.ok()) << migrated.ToString();
    EXPECT_EQ(*(*store)->SchemaVersion(), (*store)->LatestSchemaVersion());
    auto job = (*store)->GetJobByName("job1");
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    EXPECT_EQ(job->id, 1);
    auto run = (*store)->GetRun(1);
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    EXPECT_EQ(run->job_id, 1);
    // Deleting the job still removes its runs (the foreign key survived the rebuild).
    ASSERT_TRUE((*store)->DeleteJob(1).ok());
    EXPECT_EQ((*store)->GetRun(1).status().code(), StatusCode::kNotFound);
    // The highest id ever used before the upgrade is 1 now (2 was deleted
    // before it, and is beyond recall); ids from here on never go back.
    Job next;
    next.spec.name = "next";
    next.spec.driver = "noop";
    next.spec.schedule = "* * * * *";
    auto created = (*store)->CreateJob(next);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    EXPECT_GE(created->id, 2);
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
}

// Every scheduling pass asks what is due, and the watchdog checks every
// second what is late, overrunning or stale; with a million jobs and all
// their history that must read only the due or watched rows through the
// index each statement names (pinned_sql.h), never every active job by
// jobs_state, all runs, or a sort; and the queue's candidates count their
// jobs' busy runs once per pass, not once per candidate (which read a job's
// whole queue for each of its runs). SQLite plans without statistics and chose
// those: 88 ms a due read with 300,000 jobs, 2.1 s a late check with 390,000
// runs. Retention's newest failures read a job's whole history (0.9 s with
// 3,000,000 runs) until version 13's index.
TEST(SqliteStoreTest, WhatIsDueOrWatchedIsReadFromItsIndexAlone) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sked-due-plan-" + std::to_string(::getpid()) + ".db"))
                               .string();
  {
    auto store = Store::Open("sqlite://" + path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->Migrate().ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  RunFilter failed;
  failed.status = RunStatus::kTimedOut;
  failed.since = Instant{};
  RunFilter failed_of_job = failed;
  failed_of_job.job_id = 1;
  const struct {
    std::string sql;
    const char* reads;  // the index the first table is read by
    const char* also = "";
  } statements[] = {
      {store_internal::SqliteClaimDueSql(), "j USING INDEX jobs_due"},
      {store_internal::kSqliteCountDueSql, "USING INDEX jobs_due"},
      {store_internal::kSqliteNextDueSql, "USING INDEX jobs_due"},
      {store_internal::kSqliteQueueCandidatesSql, "SCAN r USING INDEX runs_queue_free",
       "SCAN runs USING INDEX runs_owner"},
      {store_internal::kSqliteQueueDepthSql, "USING COVERING INDEX runs_active"},
      {store_internal::SqliteCancelRequestedSql(), "SEARCH r USING INDEX runs_owner"},
      {store_internal::kSqliteWatchLateSql, "SCAN j USING INDEX jobs_watch_late"},
      {store_internal::kSqliteWatchOverrunSql, "SCAN r USING INDEX runs_active"},
      {store_internal::kSqliteWatchStaleSql, "SCAN j USING INDEX jobs_watch_stale"},
      {store_internal::kSqliteWatchOverrunHistorySql, "SCAN r USING INDEX runs_active"},
      // Retention's newest failures (schema version 13), asked on every batch.
      {store_internal::NthNewestRunSql('?', store_internal::kFailureStatuses),
       "INDEX runs_failures"},
      // A page of failures, of one job and of all (version 13).
      {store_internal::SqliteListRunsSql(failed_of_job), "r USING INDEX runs_failures ("},
      {store_internal::SqliteListRunsSql(failed), "r USING INDEX runs_failures_by_id"},
  };
  for (const auto& statement : statements) {
    sqlite3_stmt* plan = nullptr;
    ASSERT_EQ(
        sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + statement.sql).c_str(), -1, &plan, nullptr),
        SQLITE_OK)
        << sqlite3_errmsg(db);
    std::vector<std::string> steps;
    std::string all;
    while (sqlite3_step(plan) == SQLITE_ROW) {
      steps.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(plan, 3)));
      all += steps.back() + "\n";
    }
    sqlite3_finalize(plan);
    EXPECT_NE(all.find(statement.reads), std::string::npos) << statement.sql << "\n" << all;
    EXPECT_NE(all.find(statement.also), std::string::npos) << statement.sql << "\n" << all;
    for (const std::string& step : steps) {
      // A table read whole ("SCAN r"; "SCAN (subquery-1)" reads rows
      // already found).
      if (step.rfind("SCAN ", 0) == 0 && step.rfind("SCAN (", 0) != 0) {
        EXPECT_NE(step.find("USING"), std::string::npos) << statement.sql << "\n" << all;
      }
    }
    EXPECT_EQ(all.find("jobs_state"), std::string::npos) << statement.sql << "\n" << all;
    // Rows sorted after reading them (the queue's GROUP BY of the runs
    // instances hold is by design: a few).
    EXPECT_EQ(all.find("TEMP B-TREE FOR ORDER BY"), std::string::npos) << statement.sql << "\n"
                                                                       << all;
  }
  sqlite3_close(db);
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
}

// Errors say their text once and name the database file.
TEST(SqliteStoreTest, ErrorsNameTheFileAndSayTheirTextOnce) {
  EXPECT_EQ(store_internal::SqliteError(SQLITE_BUSY, "/srv/sked.db: database is locked").message(),
            "sqlite: /srv/sked.db: database is locked");
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sked-errors-" + std::to_string(::getpid()) + ".db"))
                               .string();
  auto db = store_internal::SqliteDb::Open(path);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  Status s = (*db)->Exec("SELECT * FROM no_such_table");
  EXPECT_EQ(s.message(), "sqlite: " + path + ": no such table: no_such_table: SQL logic error");
  auto stmt = (*db)->Prepare("SELECT 1");
  ASSERT_TRUE(stmt.ok());
  db->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
}

}  // namespace
}  // namespace sked
