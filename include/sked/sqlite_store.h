// The SQLite backend of Store: one file in WAL mode, shared safely by several
// processes (every write is an IMMEDIATE transaction; uniqueness and lease
// fencing are enforced in SQL). Link sked_store_sqlite; an embedding program
// that uses only this backend need not link libpq (Store::Open, in
// sked_store_open, links both).

#ifndef SKED_SQLITE_STORE_H_
#define SKED_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "sked/store.h"

namespace sked {

// `path` is a file name or ":memory:".
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const StoreOptions& options = {});

}  // namespace sked

#endif  // SKED_SQLITE_STORE_H_
