// The statements SQLite runs against large tables again and again (the
// claim's due reads, the queue's candidates and depth, the cancellation poll,
// the watchdog's checks, a page of runs), named so that a test can check
// their plans (sqlite_store_test.cc). SQLite plans without statistics and,
// left to itself, read `jobs` by `jobs_state` (state = 'active', every active
// job) or `runs` whole: the due reads took 88 ms a statement with 300,000
// jobs, the watchdog's late check 2.1 s with 390,000 runs, the cancellation
// poll 0.35 s with 3,000,000, all holding the connection the engine claims
// with, where the named indexes read only what is due, held or watched. Each
// names its index (INDEXED BY) and, where two tables meet, the order they are
// read in (CROSS JOIN).

#ifndef SKED_STORE_SQLITE_PINNED_SQL_H_
#define SKED_STORE_SQLITE_PINNED_SQL_H_

#include <string>

#include "sked/store.h"

namespace sked::store_internal {

// Bound: ?1 horizon, ?2 parts, ?3 part, ?4 limit.
const std::string& SqliteClaimDueSql();
// Bound: ?1 by, ?2 limit.
extern const char kSqliteCountDueSql[];
extern const char kSqliteNextDueSql[];

// A page of runs (Store::ListRuns). Bound: ?1 below this id, ?2 job, ?3
// status, ?4 since, ?5 until (each only when the filter has it), ?6 limit.
std::string SqliteListRunsSql(const RunFilter& filter);

// Queued runs, counted (no binding); this instance's runs asked to stop
// (bound: ?1 instance).
extern const char kSqliteQueueDepthSql[];
const std::string& SqliteCancelRequestedSql();

// The queue's candidates and each one's job's runs that take room.
extern const char kSqliteQueueCandidatesSql[];

// The watchdog's checks. Columns: job id, name, notify_on, notify_channels,
// run id (or NULL), the event's dedupe key; the overrun-by-history check adds
// the run's started_at and the job's overrun_factor. Bound: ?1 now (the
// history check: nothing).
extern const char kSqliteWatchLateSql[];
extern const char kSqliteWatchOverrunSql[];
extern const char kSqliteWatchStaleSql[];
extern const char kSqliteWatchOverrunHistorySql[];

}  // namespace sked::store_internal

#endif  // SKED_STORE_SQLITE_PINNED_SQL_H_
