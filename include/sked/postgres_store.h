// The PostgreSQL backend of Store: many sked instances on one database.
// Claims lock due jobs FOR UPDATE SKIP LOCKED and write their runs in one
// batched statement; the unique (job, scheduled_for, attempt) key is the last
// line of defence; completion is fenced by the lease token. Job changes,
// manual triggers and cancel requests are announced with NOTIFY. Link
// sked_store_postgres.

#ifndef SKED_POSTGRES_STORE_H_
#define SKED_POSTGRES_STORE_H_

#include <memory>
#include <string>

#include "sked/store.h"

namespace sked {

// Connects once to check `url` (a libpq URI); tables live in options.schema.
Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                 const StoreOptions& options);

}  // namespace sked

#endif  // SKED_POSTGRES_STORE_H_
