// A versioned schema migration shipped in the binary (both backends).

#ifndef SKED_STORE_MIGRATION_H_
#define SKED_STORE_MIGRATION_H_

#include <string_view>

namespace sked::store_internal {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
  // Rebuilds tables: runs with foreign keys off (a dropped parent table
  // would cascade), and checks them before it commits. (SQLite only.)
  bool rebuilds_tables = false;
};

}  // namespace sked::store_internal

#endif  // SKED_STORE_MIGRATION_H_
