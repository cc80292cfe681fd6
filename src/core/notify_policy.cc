#include "core/notify_policy.h"

#include <array>
#include <string>

namespace sked::policy {
namespace {

constexpr std::array<std::string_view, 10> kEventNames = {
    "failed",    "timed_out", "abandoned", "retries_exhausted", "succeeded",
    "recovered", "missed",    "late",      "overrun",           "stale"};

}  // namespace

std::string_view NotifyEventName(NotifyEvent event) {
  return kEventNames[static_cast<size_t>(event)];
}

Result<NotifyEvent> ParseNotifyEvent(std::string_view name) {
  for (size_t i = 0; i < kEventNames.size(); ++i) {
    if (kEventNames[i] == name) return static_cast<NotifyEvent>(i);
  }
  std::string expected;
  for (size_t i = 0; i < kEventNames.size(); ++i) {
    expected += i == 0 ? "" : (i + 1 == kEventNames.size() ? " or " : ", ");
    expected += kEventNames[i];
  }
  return InvalidArgumentError("unknown notification event '" + std::string(name) + "' (expected " +
                              expected + ")");
}

std::vector<NotifyEvent> SettleEvents(const SettledAttempt& attempt) {
  std::vector<NotifyEvent> out;
  switch (attempt.status) {
    case RunStatus::kFailed:
      out.push_back(NotifyEvent::kFailed);
      break;
    case RunStatus::kTimedOut:
      out.push_back(NotifyEvent::kTimedOut);
      break;
    case RunStatus::kAbandoned:
      out.push_back(NotifyEvent::kAbandoned);
      break;
    case RunStatus::kSucceeded:
      out.push_back(NotifyEvent::kSucceeded);
      if (attempt.was_failing) out.push_back(NotifyEvent::kRecovered);
      return out;
    case RunStatus::kSkipped:
      out.push_back(NotifyEvent::kMissed);
      return out;
    case RunStatus::kQueued:
    case RunStatus::kRunning:
    case RunStatus::kCancelled:
      return out;
  }
  if (!attempt.retry_follows) out.push_back(NotifyEvent::kRetriesExhausted);
  return out;
}

const std::vector<NotifyEvent>& DefaultNotifyEvents() {
  static const std::vector<NotifyEvent> events = {NotifyEvent::kRetriesExhausted,
                                                  NotifyEvent::kMissed, NotifyEvent::kLate,
                                                  NotifyEvent::kOverrun, NotifyEvent::kStale};
  return events;
}

}  // namespace sked::policy
