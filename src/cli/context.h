// What the store-using commands share: the config file, the store it names,
// and an engine that is never started (it validates and manages jobs).

#ifndef SKED_CLI_CONTEXT_H_
#define SKED_CLI_CONTEXT_H_

#include <memory>
#include <optional>
#include <string>

#include "daemon/config.h"
#include "sked/driver.h"
#include "sked/engine.h"
#include "sked/store.h"

namespace CLI {
class App;
}

namespace sked::cli {

struct ConfigFlag {
  std::string path = "sked.toml";
  bool given = false;  // --config was on the command line (then the file must exist)
};

// The flags every command takes, before or after its name
// (`sked --config x job list`, `sked job list --config x`).
struct GlobalFlags {
  ConfigFlag config;
  bool json = false;  // output, and errors, as JSON
};
GlobalFlags& Globals();

// Adds the global flags to the root app. REQUIRES: before any subcommand is
// added (they inherit the fall-through that lets the flags follow them).
void AddGlobalFlags(CLI::App& app);

struct Context {
  daemon::Config config;
  int schema_version = 0;  // the store's, when opened
  // The config names a SQLite file that did not exist: opening created it
  // (serve and migrate only; say so, a mistyped path looks like lost jobs).
  std::optional<std::string> created_database;
  std::unique_ptr<Store> store;
  std::unique_ptr<DriverRegistry> drivers;
  std::unique_ptr<Engine> engine;
};

enum class SchemaCheck {
  kCurrent,     // the schema must be exactly this binary's (management commands)
  kMayBeOlder,  // older is fine, it is about to be migrated; newer is refused
};

// Loads the config, opens its store and checks the schema. Errors say what
// to do ("run sked migrate").
Result<std::unique_ptr<Context>> OpenContext(const ConfigFlag& flag, SchemaCheck check);

// The drivers `sked` runs jobs with: the built-in ones, http, and those of
// the plugins in `plugin_dir` (if not empty; failures are in the registry's
// plugin_failures()).
std::unique_ptr<DriverRegistry> NewDriverRegistry(const std::string& plugin_dir);

// Prints "sked: <message>" to stderr; returns the exit code for `status`.
int Fail(const Status& status);

}  // namespace sked::cli

#endif  // SKED_CLI_CONTEXT_H_
