// The statements every scheduling pass runs against `jobs` on SQLite, named
// so that a test can check their plans (sqlite_store_test.cc). SQLite plans
// without statistics and, left to itself, picked `jobs_state` (state =
// 'active') and sorted every active job: 88 ms a statement with 300,000 jobs,
// where `jobs_due` reads only the due ones. They name their index.

#ifndef SKED_STORE_SQLITE_DUE_SQL_H_
#define SKED_STORE_SQLITE_DUE_SQL_H_

#include <string>

namespace sked::store_internal {

// Bound: horizon, parts, parts, part, limit.
const std::string& SqliteClaimDueSql();
// Bound: by, limit.
extern const char kSqliteCountDueSql[];
extern const char kSqliteNextDueSql[];

}  // namespace sked::store_internal

#endif  // SKED_STORE_SQLITE_DUE_SQL_H_
