// The PostgreSQL schema, as versioned migrations shipped in the binary.

#ifndef SKED_STORE_POSTGRES_PG_MIGRATIONS_H_
#define SKED_STORE_POSTGRES_PG_MIGRATIONS_H_

#include <vector>

#include "store/migration.h"

namespace sked::store_internal {

// In version order, starting at 1. Never edit a released migration: add one.
const std::vector<Migration>& PostgresMigrations();

}  // namespace sked::store_internal

#endif  // SKED_STORE_POSTGRES_PG_MIGRATIONS_H_
