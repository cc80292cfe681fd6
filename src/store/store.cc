// Store::Open: picks the backend by the url's scheme.

#include <string>

#include "sked/postgres_store.h"
#include "sked/sqlite_store.h"
#include "sked/store.h"
#include "store/postgres/pg_client.h"

namespace sked {

Result<std::unique_ptr<Store>> Store::Open(std::string_view url, const StoreOptions& options) {
  constexpr std::string_view kSqlite = "sqlite://";
  if (url == "sqlite::memory:") return OpenSqliteStore(":memory:", options);
  if (url.substr(0, kSqlite.size()) == kSqlite) {
    const std::string path(url.substr(kSqlite.size()));
    if (path.empty()) return InvalidArgumentError("store url '" + std::string(url) + "': no path");
    return OpenSqliteStore(path, options);
  }
  for (std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (url.substr(0, scheme.size()) == scheme) return OpenPostgresStore(std::string(url), options);
  }
  return InvalidArgumentError("store url '" + Redact(url) +
                              "': unsupported (expected sqlite://PATH or postgresql://...)");
}

std::string Store::Redact(std::string_view url) { return pg::RedactUrl(url); }

}  // namespace sked
