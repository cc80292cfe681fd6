// PostgreSQL statements a test checks the plans of (pg_store_test.cc), so the
// test reads the statement the store runs, not a copy of it.

#ifndef SKED_STORE_POSTGRES_PG_SQL_H_
#define SKED_STORE_POSTGRES_PG_SQL_H_

namespace sked::store_internal {

// When the next queued run no instance holds becomes due (runs_queue_wait).
extern const char kPgNextQueuedSql[];

}  // namespace sked::store_internal

#endif  // SKED_STORE_POSTGRES_PG_SQL_H_
