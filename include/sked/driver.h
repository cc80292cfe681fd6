// Drivers turn a job's config into work. A driver validates its config when a
// job is created or changed (never first at run time) and executes one run,
// stopping promptly when its stop token fires (cancel, timeout, shutdown).

#ifndef SKED_DRIVER_H_
#define SKED_DRIVER_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "sked/clock.h"
#include "sked/run.h"
#include "sked/status.h"
#include "sked/time.h"

namespace sked {

struct RunContext {
  std::int64_t run_id = 0;
  std::string job_name;
  int attempt = 1;
  Instant scheduled_for{};
  std::string config;  // the job's driver_config (JSON), already validated
  Clock* clock = nullptr;
  // Output as the run writes it, for whoever watches it live (the API's
  // stream); may be empty. A driver calls it with each chunk it reads,
  // besides keeping its own bounded copy for the result; it is quick and
  // never blocks on the watcher.
  std::function<void(std::string_view)> on_output;
  // The engine keeps at most this many bytes of a run's output (its tail;
  // 0: no cap of its own). A driver may keep less, never needs more.
  std::int64_t max_output_bytes = 0;
};

struct DriverResult {
  RunStatus status = RunStatus::kSucceeded;  // succeeded or failed
  std::optional<int> exit_code;
  std::string output;
  bool output_truncated = false;
  std::string result;  // optional JSON
  std::string error;
  // What the run's record should say besides its outcome (e.g. processes
  // that escaped the run and were killed); empty if nothing.
  std::string note;
  int escaped_processes = 0;  // processes that left the run's control and were found

  static DriverResult Failed(std::string error) {
    DriverResult r;
    r.status = RunStatus::kFailed;
    r.error = std::move(error);
    return r;
  }
};

// Implementations must be safe to call from several threads at once.
class Driver {
 public:
  virtual ~Driver() = default;
  virtual std::string_view name() const = 0;
  virtual std::string_view description() const = 0;
  // The config's shape as a JSON Schema (draft 2020-12) document, for
  // `sked driver list`, the API and forms; "{}" says nothing about it.
  virtual std::string_view config_schema() const { return "{}"; }
  // INVALID_ARGUMENT naming the config key on bad config.
  virtual Status Validate(std::string_view config) const = 0;
  // Runs to completion or until `stop` is requested; then returns promptly
  // (the engine decides whether the run was cancelled or timed out). May
  // throw: the engine turns an exception into a failed run.
  virtual DriverResult Execute(const RunContext& context, std::stop_token stop) = 0;
};

// Not safe for concurrent changes: fill it (Register, LoadPlugin) before the
// engine starts; lookups are then safe from any thread.
class DriverRegistry {
 public:
  // ALREADY_EXISTS if a driver of that name is registered.
  Status Register(std::unique_ptr<Driver> driver);
  // nullptr if none.
  Driver* Find(std::string_view name) const;
  std::vector<std::string> Names() const;
  // Where a driver came from: the plugin file's path, or "" for one
  // registered by the program (the built-ins).
  std::string Origin(std::string_view name) const;

  // Loads the driver plugin at `path` (include/sked/plugin.h,
  // docs/plugins.md) and registers its drivers: all of them, or none when
  // the plugin is refused (another ABI version, a taken name, an error it
  // reports). A refusal is also remembered (plugin_failures).
  Status LoadPlugin(const std::string& path);
  // Loads every "*.so" file in `dir`, in name order; one that fails does not
  // stop the others. Returns the failures (also remembered); an unreadable
  // `dir` is one.
  std::vector<Status> LoadPlugins(const std::string& dir);
  // Every plugin refused so far, each naming its file and why.
  const std::vector<Status>& plugin_failures() const { return plugin_failures_; }

  // "unknown driver 'x' (registered: a, b)", plus the plugins that failed to
  // load, which may have been meant to provide it.
  std::string UnknownDriverMessage(std::string_view name) const;

  // A registry with the built-in drivers: shell, noop, sleep.
  static std::unique_ptr<DriverRegistry> WithBuiltins();

 private:
  struct Entry {
    std::unique_ptr<Driver> driver;
    std::string origin;
  };
  Status Refuse(Status status);
  std::map<std::string, Entry, std::less<>> drivers_;
  std::vector<Status> plugin_failures_;
};

}  // namespace sked

#endif  // SKED_DRIVER_H_
