// The rules that decide what becomes of a job's fires and runs, in one
// place: which runs a due job's fires become (misfire and overlap policies),
// whether a queued run may start now (overlap allowance and starting
// deadline), a failed run's retry, and the lease token a started run gets.
// Pure: no store, no clock. The engine calls them, and so do both store
// backends inside their transactions (the claim through ClaimDue's planner
// callback, the queue directly): a backend picks candidates and writes, the
// policy decides.

#ifndef SKED_CORE_RUN_POLICY_H_
#define SKED_CORE_RUN_POLICY_H_

#include <cstdint>
#include <optional>
#include <random>

#include "sked/job.h"
#include "sked/schedule.h"
#include "sked/store.h"
#include "sked/time.h"

namespace sked::policy {

struct PlannerOptions {
  Duration misfire_threshold = std::chrono::seconds(5);
  int max_catchup_runs = 100;
};

// `due.job.next_run_at` is at or before `horizon` (>= now). Fires up to `now`
// are planned as always; a job with nothing due by `now` and no queued or
// running run also gets its first fire up to `horizon` planned ahead (one
// fire: the overlap verdict for later ones would depend on how that run goes).
FirePlan PlanFires(const DueJob& due, const Schedule& schedule, Instant now, Instant horizon,
                   const PlannerOptions& options);
// The same, with the job's queued and running runs counted by the caller.
FirePlan PlanFires(const Job& job, int queued_runs, int running_runs, const Schedule& schedule,
                   Instant now, Instant horizon, const PlannerOptions& options);

// The retry of a run that ended with `status` at `finished_at`, if the job's
// policy wants one. `random01` is a number in [0, 1) for the jitter.
std::optional<NewRun> PlanRetry(const Job& job, const Run& run, RunStatus status,
                                Instant finished_at, double random01);

// How many of a job's runs may run at once under its overlap policy. The
// backends' queue statements pre-select candidates with the same rule in SQL
// (so a busy job's runs are never read); JudgeStart decides.
int AllowedRunning(const JobSpec& spec);

// Where a run waits to start.
enum class StartFrom {
  kClaim,  // a fire this instance claimed while its job was idle
  kQueue,  // the shared queue: manual triggers, retries, released runs
};

enum class StartVerdict {
  kStart,
  kSkipDeadline,  // past its starting deadline: skipped ("deadline")
  kSkipOverlap,   // its job is busy and skips overlapping fires ("overlap")
  kWait,          // its job is busy: it waits in the queue for room
};

// Whether a queued run of `spec`, scheduled for `scheduled_for`, may start at
// `now` while `active` other runs of its job take room (running, or due and
// reserved by an instance). A claimed fire whose job became busy since the
// claim (a manual trigger, a retry) is an overlapping fire: a skip job skips
// it. In the queue, a skip job's runs were queued deliberately and wait.
StartVerdict JudgeStart(const JobSpec& spec, Instant scheduled_for, Instant now, int active,
                        StartFrom from);

// The run's skip reason for a skip verdict ("deadline", "overlap").
const char* SkipReason(StartVerdict verdict);

// A fresh lease token for a run that starts: positive and never zero (zero
// means "no lease" in a record). The caller serializes access to `rng`.
std::int64_t NewLeaseToken(std::mt19937_64& rng);

}  // namespace sked::policy

#endif  // SKED_CORE_RUN_POLICY_H_
