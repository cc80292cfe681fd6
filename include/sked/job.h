// Jobs: what to run (a driver and its config), when (a schedule in a zone),
// and under which policies.

#ifndef SKED_JOB_H_
#define SKED_JOB_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sked/status.h"
#include "sked/time.h"

namespace sked {

// pending (before start_at) | active | paused | disabled | expired (after end_at)
enum class JobState { kPending, kActive, kPaused, kDisabled, kExpired };
std::string_view JobStateName(JobState state);
Result<JobState> ParseJobState(std::string_view name);

// What a fire does when the job still has a run going.
enum class OverlapPolicy { kSkip, kQueue, kConcurrent, kReplace };
std::string_view OverlapPolicyName(OverlapPolicy policy);
Result<OverlapPolicy> ParseOverlapPolicy(std::string_view name);

// What happens to fires missed while nothing ran (or started too late).
enum class MisfirePolicy { kRunOnce, kSkip, kRunAll };
std::string_view MisfirePolicyName(MisfirePolicy policy);  // "run_once", "skip", "run_all"
Result<MisfirePolicy> ParseMisfirePolicy(std::string_view name);

// Which of a job's settled runs its history keeps (docs/configuration.md,
// [retention]); a field left unset takes the [retention] default. Zero means
// no limit. Queued and running runs are never pruned, nor a job's newest
// settled run.
struct RetentionSpec {
  std::optional<Duration> max_age;   // runs that finished longer ago go
  std::optional<int> max_runs;       // the newest this many settled runs are kept
  std::optional<int> keep_failures;  // the newest this many failures are kept regardless

  friend bool operator==(const RetentionSpec&, const RetentionSpec&) = default;
};

struct RetryPolicy {
  int max_retries = 0;  // 0: never retry (at-most-once)
  Duration backoff = std::chrono::seconds(10);
  double multiplier = 2.0;
  Duration max_backoff = std::chrono::minutes(10);
  double jitter = 0.1;  // up to this fraction of the delay is added at random
  bool on_failed = true;
  bool on_timed_out = true;
  bool on_abandoned = true;

  friend bool operator==(const RetryPolicy&, const RetryPolicy&) = default;
};

// Which notification events a job raises, and the channels they go to.
// Unset: the defaults ([notify] in sked.toml); an empty list: none.
struct NotifySpec {
  std::optional<std::vector<std::string>> on;        // event names ("retries_exhausted", ...)
  std::optional<std::vector<std::string>> channels;  // channel names

  friend bool operator==(const NotifySpec&, const NotifySpec&) = default;
};

// What a user writes: every field that can be set on create or update.
struct JobSpec {
  std::string name;  // unique; letters, digits, '.', '_', '-'; 1-128 chars
  std::string description;
  std::string driver;                // a registered driver ("shell", "noop", ...)
  std::string driver_config = "{}";  // JSON object, validated by the driver
  std::string schedule;              // cron, "@daily", "every 90s", "at 2026-12-01T09:00:00"
  std::string time_zone = "UTC";
  std::optional<Instant> start_at;
  std::optional<Instant> end_at;
  OverlapPolicy overlap = OverlapPolicy::kSkip;
  int max_queued = 1;      // overlap=queue: fires held at most
  int max_concurrent = 1;  // overlap=concurrent: runs at once at most
  MisfirePolicy misfire = MisfirePolicy::kRunOnce;
  Duration catchup_window = std::chrono::hours(1);  // misfire=run_all: how far back
  std::optional<Duration> starting_deadline;        // skip a run that cannot start in time
  std::optional<Duration> timeout;                  // unset: the engine's default
  int priority = 0;                                 // higher runs first when slots are short
  RetryPolicy retry;
  std::vector<std::string> tags;
  NotifySpec notify;
  // The watchdog (docs/notifications.md): raise "late" when a run has not
  // started this long after its fire, "overrun" when one is still running
  // this long after it started, "stale" when the job has had no success for
  // this long. Unset: not watched.
  std::optional<Duration> late_after;
  std::optional<Duration> expected_duration;
  std::optional<Duration> no_success_for;
  // The watchdog's other "overrun": a run still running past k times the
  // median duration of the job's recent successful runs (the last 20 among
  // its last 100 runs; needs 5 of them); 1.1-100. Unset: not watched.
  std::optional<double> overrun_factor;
  RetentionSpec retention;
  bool paused = false;  // create paused / pause on update

  friend bool operator==(const JobSpec&, const JobSpec&) = default;
};

struct Job {
  std::int64_t id = 0;
  JobSpec spec;
  JobState state = JobState::kActive;
  // Why the job is in its state when the user did not ask for it ("removed
  // from sked.toml", "schedule no longer parses: ..."); empty otherwise.
  std::string state_reason;
  std::string source = "api";  // "api" or "config" (declared in sked.toml)
  std::optional<Instant> next_run_at;
  std::optional<Instant> last_run_at;
  std::optional<Instant> last_success_at;  // the start of the newest succeeded run
  std::int64_t runs = 0;
  std::int64_t successes = 0;
  std::int64_t failures = 0;
  std::int64_t version = 1;  // optimistic concurrency: bumped by every change
  Instant created_at{};
  Instant updated_at{};
};

// Checks everything about a spec that needs no driver or clock: name, zone,
// schedule syntax, policy ranges. The message names the field.
Status ValidateJobSpecShape(const JobSpec& spec);

}  // namespace sked

#endif  // SKED_JOB_H_
