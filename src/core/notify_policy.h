// Which notification events a settled run raises (DESIGN.md §6): the pure
// rule the settle transactions of both store backends will call, so an event
// is decided, and written to the outbox, in the transaction that settles the
// run. No store, no clock, no channels: what happens to an event after it is
// raised (channels, de-duplication, delivery) is decided elsewhere.

#ifndef SKED_CORE_NOTIFY_POLICY_H_
#define SKED_CORE_NOTIFY_POLICY_H_

#include <optional>
#include <string_view>
#include <vector>

#include "sked/job.h"
#include "sked/notification.h"
#include "sked/run.h"
#include "sked/status.h"

namespace sked::policy {

// What a notification is about. The first six come from a run's settlement;
// the last four from the watchdog.
enum class NotifyEvent {
  kFailed,            // an attempt failed
  kTimedOut,          // an attempt ran past its timeout
  kAbandoned,         // an attempt's instance died (its lease expired)
  kRetriesExhausted,  // the final failure of a fire: no retry follows
  kSucceeded,         // an attempt succeeded
  kRecovered,         // the first success after a failure
  kMissed,            // a fire that did not run (skipped for any reason)
  kLate,              // a run that started later than the job's late_after
  kOverrun,           // a run still running past its expected duration
  kStale,             // no successful run for the job's no_success_for
};

std::string_view NotifyEventName(NotifyEvent event);  // "failed", "retries_exhausted", ...
Result<NotifyEvent> ParseNotifyEvent(std::string_view name);

// The settlement of one attempt, as the settle transaction sees it.
struct SettledAttempt {
  RunStatus status = RunStatus::kSucceeded;  // the terminal status written
  bool retry_follows = false;                // a retry run is written in the same transaction
  // The job's newest settled run before this one did not succeed (the
  // job was failing): a success now is a recovery.
  bool was_failing = false;
};

// The events `attempt` raises, in a fixed order, before any job's choice of
// events is applied: a failure raises its own kind (failed, timed_out or
// abandoned) and, when no retry follows, retries_exhausted; a success raises
// succeeded and, after a failure, recovered; skipped raises missed;
// cancelled raises nothing (someone asked for it).
std::vector<NotifyEvent> SettleEvents(const SettledAttempt& attempt);

// The events a job notifies on when it names none: the final failure of a
// fire only, not each attempt (a run that fails and then succeeds on retry
// sends nothing), and the watchdog's events, which each fire only for a job
// that set their threshold (missed needs none: every skipped fire is one).
const std::vector<NotifyEvent>& DefaultNotifyEvents();

// One row of the outbox: an event for one channel.
struct OutboxEntry {
  NotifyEvent event;
  std::string channel;

  friend bool operator==(const OutboxEntry&, const OutboxEntry&) = default;
};

// What one settlement writes to the outbox: each event `attempt` raises that
// the job notifies on (its own `on`, else the defaults'), once per channel
// (its own `channels`, else the defaults'). Unknown event names are ignored
// (they were refused where they entered).
std::vector<OutboxEntry> RouteSettlement(const SettledAttempt& attempt, const NotifySpec& job,
                                         const NotifyDefaults& defaults);

// Where one watchdog event of a job goes: nowhere unless the job notifies on
// it (its own `on`, else the defaults'), else to each of its channels.
std::vector<OutboxEntry> RouteEvent(NotifyEvent event, const NotifySpec& job,
                                    const NotifyDefaults& defaults);

// Whether `entry` repeats an alert already raised: a failure event
// (failed, timed_out, abandoned, retries_exhausted) of a job that was
// already failing, or a missed fire, when the same (job, event, channel) was
// last raised at `last` within `realert` before `now`. A recovery, a success
// and the first failure of an incident are never repeats.
bool IsRepeat(const OutboxEntry& entry, bool was_failing, std::optional<Instant> last, Instant now,
              Duration realert);

// The watchdog's overrun against a job's own history: how many of the job's
// newest runs are looked at, how many successes among them are used, and how
// many are needed before the median means anything.
inline constexpr int kOverrunHistoryRuns = 100;
inline constexpr int kOverrunSamples = 20;
inline constexpr int kOverrunMinSamples = 5;

// How long a run of a job with overrun_factor `factor` may run before it is
// an overrun: `factor` times the median of `recent_successes` (the durations
// of the job's newest successful runs, any order; the middle two averaged for
// an even count), or nullopt with fewer than kOverrunMinSamples of them.
// Negative durations (a clock step) are not counted.
std::optional<Duration> OverrunLimit(std::vector<Duration> recent_successes, double factor);

// Checks a job's notify settings: known event names, channel names of
// letters, digits, '.', '_', '-' (1-64). The message names the field.
Status ValidateNotifySpec(const NotifySpec& spec);

}  // namespace sked::policy

#endif  // SKED_CORE_NOTIFY_POLICY_H_
