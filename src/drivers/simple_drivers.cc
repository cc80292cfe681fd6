// noop and sleep: drivers for tests and benchmarks.

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <mutex>
#include <string>

#include "drivers/builtin_drivers.h"
#include "drivers/json_config.h"

namespace sked::drivers {
namespace {

class NoopDriver final : public Driver {
 public:
  std::string_view name() const override { return "noop"; }
  std::string_view description() const override { return "does nothing and succeeds"; }
  std::string_view config_schema() const override {
    return R"json({"type": "object", "additionalProperties": false, "properties": {
  "fail": {"type": "boolean", "default": false, "description": "fail instead of succeeding"}}})json";
  }
  Status Validate(std::string_view config) const override {
    SKED_ASSIGN_OR_RETURN(nlohmann::json j, ParseConfigObject(config, {"fail"}));
    return CheckBool(j, "fail");
  }
  DriverResult Execute(const RunContext& context, std::stop_token) override {
    auto j = ParseConfigObject(context.config, {"fail"});
    if (j.ok() && j->value("fail", false)) return DriverResult::Failed("failed as configured");
    return DriverResult{};
  }
};

class SleepDriver final : public Driver {
 public:
  std::string_view name() const override { return "sleep"; }
  std::string_view description() const override {
    return "waits for a duration (tests and benchmarks)";
  }
  std::string_view config_schema() const override {
    return R"json({"type": "object", "additionalProperties": false, "properties": {
  "duration": {"type": "string", "default": "0s", "description": "how long to wait, as 2s"},
  "fail": {"type": "boolean", "default": false, "description": "fail once the wait is over"},
  "ignore_stop": {"type": "boolean", "default": false,
                  "description": "ignore cancellation, to exercise stuck-driver handling"}}})json";
  }
  Status Validate(std::string_view config) const override {
    SKED_ASSIGN_OR_RETURN(nlohmann::json j,
                          ParseConfigObject(config, {"duration", "fail", "ignore_stop"}));
    SKED_RETURN_IF_ERROR(CheckBool(j, "fail"));
    SKED_RETURN_IF_ERROR(CheckBool(j, "ignore_stop"));
    return ConfigDuration(j, "duration", Duration(0)).status();
  }
  DriverResult Execute(const RunContext& context, std::stop_token stop) override {
    auto j = ParseConfigObject(context.config, {"duration", "fail", "ignore_stop"});
    if (!j.ok()) return DriverResult::Failed(j.status().message());
    const Duration d = ConfigDuration(*j, "duration", Duration(0)).value_or(Duration(0));
    const bool ignore_stop = j->value("ignore_stop", false);
    std::mutex mu;
    std::condition_variable cv;
    std::stop_callback wake(stop, [&] {
      std::lock_guard<std::mutex> l(mu);
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu);
    const Instant until = context.clock->Now() + d;
    context.clock->AwaitWithDeadline(lock, cv, until,
                                     [&] { return !ignore_stop && stop.stop_requested(); });
    if (stop.stop_requested() && !ignore_stop) return DriverResult::Failed("stopped");
    if (j->value("fail", false)) return DriverResult::Failed("failed as configured");
    return DriverResult{};
  }
};

}  // namespace

std::unique_ptr<Driver> NewNoopDriver() { return std::make_unique<NoopDriver>(); }
std::unique_ptr<Driver> NewSleepDriver() { return std::make_unique<SleepDriver>(); }

}  // namespace sked::drivers
