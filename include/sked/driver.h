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

class DriverRegistry {
 public:
  // ALREADY_EXISTS if a driver of that name is registered.
  Status Register(std::unique_ptr<Driver> driver);
  // nullptr if none.
  Driver* Find(std::string_view name) const;
  std::vector<std::string> Names() const;

  // A registry with the built-in drivers: shell, noop, sleep.
  static std::unique_ptr<DriverRegistry> WithBuiltins();

 private:
  std::map<std::string, std::unique_ptr<Driver>, std::less<>> drivers_;
};

}  // namespace sked

#endif  // SKED_DRIVER_H_
