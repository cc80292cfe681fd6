// The SQLite schema, as versioned migrations shipped in the binary.

#ifndef SKED_STORE_SQLITE_MIGRATIONS_H_
#define SKED_STORE_SQLITE_MIGRATIONS_H_

#include <string_view>
#include <vector>

namespace sked::store_internal {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
  // Rebuilds tables: runs with foreign keys off (a dropped parent table
  // would cascade), and checks them before it commits.
  bool rebuilds_tables = false;
};

// In version order, starting at 1. Never edit a released migration: add one.
const std::vector<Migration>& SqliteMigrations();

}  // namespace sked::store_internal

#endif  // SKED_STORE_SQLITE_MIGRATIONS_H_
