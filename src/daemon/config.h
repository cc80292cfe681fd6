// The daemon's configuration: one TOML file (docs/configuration.md), with
// SKED_<SECTION>_<KEY> environment overrides. Loading validates every key and
// value; an error names the file, line and key.

#ifndef SKED_DAEMON_CONFIG_H_
#define SKED_DAEMON_CONFIG_H_

#include <map>
#include <string>
#include <vector>

#include "notify/channel.h"
#include "server/server_options.h"
#include "sked/engine.h"
#include "sked/job.h"
#include "sked/status.h"
#include "sked/store.h"

namespace sked::daemon {

enum class LogFormat { kText, kJson };
enum class LogLevel { kDebug, kInfo, kWarn, kError };

// [retention]: which run history is deleted, and how often it is looked at.
struct RetentionConfig {
  RetentionPolicy policy{std::chrono::hours(24 * 90), 1000, 10};
  Duration every = std::chrono::minutes(10);  // a sweep starts this often (0: no sweeps)
  int batch = 500;                            // runs deleted per statement at most
};

struct Config {
  std::string path;       // the file read ("" when defaults were used)
  std::string store_url;  // relative sqlite paths already resolved
  StoreOptions store;     // schema, max_connections (PostgreSQL)
  bool store_max_connections_set = false;
  EngineOptions engine;
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;
  server::ServerOptions server;  // [server]: the REST API (off unless listen is set)
  notify::NotifyConfig notify;   // [notify] and [[channel]]
  RetentionConfig retention;     // [retention]; max_output is engine.max_output_bytes
  std::string plugin_dir;        // [drivers]: driver plugins loaded from here ("": none)
  std::vector<JobSpec> jobs;     // [[job]] tables, in file order
};

// Reads `path`. When `must_exist` is false and the file is missing, returns
// the defaults (store sqlite://sked.db in the working directory). `env` holds
// the environment (SKED_* variables override the file's values).
Result<Config> LoadConfig(const std::string& path, bool must_exist,
                          const std::map<std::string, std::string>& env);

// Parses the text of a config file; `name` is used in messages and relative
// store paths are resolved against `dir`.
Result<Config> ParseConfig(const std::string& text, const std::string& name, const std::string& dir,
                           const std::map<std::string, std::string>& env);

// The process environment's SKED_* variables.
std::map<std::string, std::string> SkedEnvironment();

}  // namespace sked::daemon

#endif  // SKED_DAEMON_CONFIG_H_
