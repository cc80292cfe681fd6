#include "core/notify_policy.h"

#include <algorithm>
#include <array>
#include <string>

namespace sked::policy {
namespace {

constexpr std::array<std::string_view, 10> kEventNames = {
    "failed",    "timed_out", "abandoned", "retries_exhausted", "succeeded",
    "recovered", "missed",    "late",      "overrun",           "stale"};

constexpr std::array<std::string_view, 3> kStatusNames = {"pending", "delivered", "failed"};

}  // namespace
}  // namespace sked::policy

namespace sked {

std::string_view NotificationStatusName(NotificationStatus status) {
  return policy::kStatusNames[static_cast<size_t>(status)];
}

Result<NotificationStatus> ParseNotificationStatus(std::string_view name) {
  for (size_t i = 0; i < policy::kStatusNames.size(); ++i) {
    if (policy::kStatusNames[i] == name) return static_cast<NotificationStatus>(i);
  }
  return InvalidArgumentError("unknown notification status '" + std::string(name) +
                              "' (expected pending, delivered or failed)");
}

}  // namespace sked

namespace sked::policy {

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

std::vector<OutboxEntry> RouteSettlement(const SettledAttempt& attempt, const NotifySpec& job,
                                         const NotifyDefaults& defaults) {
  const std::vector<std::string>& on = job.on ? *job.on : defaults.on;
  const std::vector<std::string>& channels = job.channels ? *job.channels : defaults.channels;
  std::vector<OutboxEntry> out;
  if (channels.empty() || on.empty()) return out;
  for (NotifyEvent event : SettleEvents(attempt)) {
    if (std::find(on.begin(), on.end(), NotifyEventName(event)) == on.end()) continue;
    for (const std::string& channel : channels) out.push_back({event, channel});
  }
  return out;
}

std::vector<OutboxEntry> RouteEvent(NotifyEvent event, const NotifySpec& job,
                                    const NotifyDefaults& defaults) {
  const std::vector<std::string>& on = job.on ? *job.on : defaults.on;
  const std::vector<std::string>& channels = job.channels ? *job.channels : defaults.channels;
  std::vector<OutboxEntry> out;
  if (std::find(on.begin(), on.end(), NotifyEventName(event)) == on.end()) return out;
  for (const std::string& channel : channels) out.push_back({event, channel});
  return out;
}

std::optional<Duration> OverrunLimit(std::vector<Duration> recent_successes, double factor) {
  std::erase_if(recent_successes, [](Duration d) { return d < Duration(0); });
  const size_t n = recent_successes.size();
  if (n < static_cast<size_t>(kOverrunMinSamples)) return std::nullopt;
  const auto mid = recent_successes.begin() + static_cast<std::ptrdiff_t>(n / 2);
  std::nth_element(recent_successes.begin(), mid, recent_successes.end());
  double median = static_cast<double>(mid->count());
  if (n % 2 == 0) {
    const Duration below = *std::max_element(recent_successes.begin(), mid);
    median = (median + static_cast<double>(below.count())) / 2;
  }
  // Clamped far below the type's end: a limit is added to an instant.
  return Duration(static_cast<Duration::rep>(std::min(median * factor, 1e17)));
}

bool IsRepeat(const OutboxEntry& entry, bool was_failing, std::optional<Instant> last, Instant now,
              Duration realert) {
  if (!last || realert <= Duration(0) || now - *last >= realert) return false;
  switch (entry.event) {
    case NotifyEvent::kFailed:
    case NotifyEvent::kTimedOut:
    case NotifyEvent::kAbandoned:
    case NotifyEvent::kRetriesExhausted:
      return was_failing;
    case NotifyEvent::kMissed:
    case NotifyEvent::kLate:
    case NotifyEvent::kOverrun:
    case NotifyEvent::kStale:
      return true;
    case NotifyEvent::kSucceeded:
    case NotifyEvent::kRecovered:
      return false;
  }
  return false;
}

Status ValidateNotifySpec(const NotifySpec& spec) {
  if (spec.on) {
    for (const std::string& name : *spec.on) {
      if (auto event = ParseNotifyEvent(name); !event.ok()) {
        return InvalidArgumentError("notify.on: " + event.status().message());
      }
    }
  }
  if (spec.channels) {
    for (const std::string& name : *spec.channels) {
      const bool ok =
          !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == '-';
          });
      if (!ok) {
        return InvalidArgumentError(
            "notify.channels: a channel name is 1-64 letters, digits, '.', '_' or '-'");
      }
    }
  }
  return Status::Ok();
}

}  // namespace sked::policy
