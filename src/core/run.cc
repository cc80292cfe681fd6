#include "sked/run.h"

#include <array>
#include <string>

namespace sked {
namespace {

constexpr std::array<std::string_view, 8> kStatusNames = {
    "queued", "running", "succeeded", "failed", "timed_out", "cancelled", "skipped", "abandoned"};
constexpr std::array<std::string_view, 5> kTriggerNames = {"schedule", "manual", "retry",
                                                           "catch-up", "dependency"};

}  // namespace

std::string_view RunStatusName(RunStatus status) {
  return kStatusNames[static_cast<size_t>(status)];
}

Result<RunStatus> ParseRunStatus(std::string_view name) {
  for (size_t i = 0; i < kStatusNames.size(); ++i) {
    if (kStatusNames[i] == name) return static_cast<RunStatus>(i);
  }
  return InvalidArgumentError("unknown run status '" + std::string(name) +
                              "' (expected queued, running, succeeded, failed, timed_out, "
                              "cancelled, skipped or abandoned)");
}

bool IsTerminal(RunStatus status) {
  return status != RunStatus::kQueued && status != RunStatus::kRunning;
}

bool CanTransition(RunStatus from, RunStatus to) {
  switch (from) {
    case RunStatus::kQueued:
      return to == RunStatus::kRunning || to == RunStatus::kCancelled ||
             to == RunStatus::kSkipped || to == RunStatus::kAbandoned;
    case RunStatus::kRunning:
      return to == RunStatus::kSucceeded || to == RunStatus::kFailed ||
             to == RunStatus::kTimedOut || to == RunStatus::kCancelled ||
             to == RunStatus::kAbandoned;
    default:
      return false;
  }
}

std::string_view RunTriggerName(RunTrigger trigger) {
  return kTriggerNames[static_cast<size_t>(trigger)];
}

Result<RunTrigger> ParseRunTrigger(std::string_view name) {
  for (size_t i = 0; i < kTriggerNames.size(); ++i) {
    if (kTriggerNames[i] == name) return static_cast<RunTrigger>(i);
  }
  return InvalidArgumentError("unknown run trigger '" + std::string(name) + "'");
}

}  // namespace sked
