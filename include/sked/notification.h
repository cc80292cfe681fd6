// Notifications: events about a job's runs (a final failure, a recovery, ...)
// routed to named channels (webhook, email, command, log). Each (event,
// channel) pair is one row of the store's outbox, written in the transaction
// that settles the run, and delivered later by a dispatcher with retries.

#ifndef SKED_NOTIFICATION_H_
#define SKED_NOTIFICATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sked/status.h"
#include "sked/time.h"

namespace sked {

// Where an event's notifications go when the job does not say: the
// composition root (`sked serve`: sked.toml's [notify]) passes these to the
// store, whose settle transactions write the outbox.
struct NotifyDefaults {
  // Event names: the final failure of a fire, and the watchdog's events.
  std::vector<std::string> on = {"retries_exhausted", "missed", "late", "overrun", "stale"};
  std::vector<std::string> channels;  // channel names; empty: nothing is written
  // De-duplication: a failure event of a job that was already failing, or a
  // missed fire, is not raised again for the same channel within this long
  // of the last one (zero: every time). The first failure after a success
  // is always raised.
  Duration realert = std::chrono::hours(1);
};

// pending -> delivered | failed (every attempt failed; nothing more is tried)
enum class NotificationStatus { kPending, kDelivered, kFailed };
std::string_view NotificationStatusName(NotificationStatus status);
Result<NotificationStatus> ParseNotificationStatus(std::string_view name);

struct Notification {
  std::int64_t id = 0;
  std::int64_t job_id = 0;
  std::string job_name;
  std::optional<std::int64_t> run_id;  // the run the event is about (none: a job-level event)
  std::string event;                   // "retries_exhausted", "recovered", ...
  std::string channel;                 // a channel's name
  NotificationStatus status = NotificationStatus::kPending;
  int attempts = 0;  // delivery attempts made
  Instant created_at{};
  Instant next_attempt_at{};  // pending: not tried before this
  std::string claimed_by;     // the instance delivering it, while its claim lasts
  std::optional<Instant> claim_expires_at;
  std::optional<Instant> finished_at;  // delivered or given up
  std::string last_error;              // the newest failed attempt's error
};

// What one delivery attempt came to.
struct DeliveryResult {
  std::int64_t notification_id = 0;
  bool delivered = false;
  std::string error;                // when not delivered
  std::optional<Instant> retry_at;  // not delivered: try again then (none: give up)
  Instant at{};                     // when the attempt ended
};

// One delivery attempt of a notification, as it ended (Store::RecordDeliveries
// writes one per result it applies).
struct DeliveryAttempt {
  int attempt = 0;        // 1 for the first
  std::string instance;   // the instance that made it
  Instant finished_at{};  // when it ended
  bool delivered = false;
  std::string error;                // when not delivered
  std::optional<Instant> retry_at;  // not delivered: the next attempt then (none: given up)
};

struct NotificationFilter {
  std::optional<std::int64_t> job_id;
  std::optional<std::int64_t> run_id;
  std::optional<NotificationStatus> status;
  std::int64_t before_id = 0;  // paging: ids lower than this (0: from the newest)
  int limit = 100;
};

}  // namespace sked

#endif  // SKED_NOTIFICATION_H_
