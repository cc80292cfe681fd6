// Runs: one execution (or recorded non-execution) of a job for one fire.

#ifndef SKED_RUN_H_
#define SKED_RUN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sked/status.h"
#include "sked/time.h"

namespace sked {

// queued  -> running | cancelled | skipped | abandoned
// running -> succeeded | failed | timed_out | cancelled | abandoned
// Terminal statuses never change again. queued -> abandoned is a run reserved
// by an instance (claimed ahead) whose reservation expired: the instance died,
// perhaps just after starting it, so it is settled as a running one would be.
// Every store writes a status change only if CanTransition allows it.
enum class RunStatus {
  kQueued,
  kRunning,
  kSucceeded,
  kFailed,
  kTimedOut,
  kCancelled,
  kSkipped,
  kAbandoned,
};

std::string_view RunStatusName(RunStatus status);  // "queued", "timed_out", ...
Result<RunStatus> ParseRunStatus(std::string_view name);
bool IsTerminal(RunStatus status);
// Whether `from -> to` is one of the allowed transitions above.
bool CanTransition(RunStatus from, RunStatus to);

// Why a run exists.
enum class RunTrigger { kSchedule, kManual, kRetry, kCatchUp, kDependency };
std::string_view RunTriggerName(RunTrigger trigger);  // "schedule", "catch-up", ...
Result<RunTrigger> ParseRunTrigger(std::string_view name);

struct Run {
  std::int64_t id = 0;
  std::int64_t job_id = 0;
  std::string job_name;          // filled in by queries, not stored on the run
  std::int64_t job_version = 0;  // the job's current version, filled in by queries
  Instant scheduled_for{};       // the fire this run belongs to (UTC)
  int attempt = 1;               // 1 for the first try, +1 per retry
  RunTrigger trigger = RunTrigger::kSchedule;
  RunStatus status = RunStatus::kQueued;
  int priority = 0;  // higher first
  Instant queued_at{};
  Instant not_before{};  // a queued run does not start earlier (retry backoff)
  std::optional<Instant> started_at;
  std::optional<Instant> finished_at;
  std::string instance_id;       // owner while running, and who ran it
  std::int64_t lease_token = 0;  // fences completion writes
  std::optional<Instant> lease_expires_at;
  std::optional<int> exit_code;
  std::string output;  // captured output, bounded (tail kept)
  bool output_truncated = false;
  std::string result;  // driver-specific JSON, may be empty
  std::string error;   // what went wrong (failed, timed_out, abandoned)
  std::string reason;  // why skipped, cancelled or abandoned
  bool cancel_requested = false;
};

}  // namespace sked

#endif  // SKED_RUN_H_
