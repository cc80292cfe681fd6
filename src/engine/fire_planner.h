// Decides, for one due job, which runs its fires become (misfire and overlap
// policies) and when it fires next. Pure: no store, no clock.

#ifndef SKED_ENGINE_FIRE_PLANNER_H_
#define SKED_ENGINE_FIRE_PLANNER_H_

#include "sked/job.h"
#include "sked/schedule.h"
#include "sked/store.h"
#include "sked/time.h"

namespace sked::engine_internal {

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

// The retry of a run that ended with `status` at `finished_at`, if the job's
// policy wants one. `random01` is a number in [0, 1) for the jitter.
std::optional<NewRun> PlanRetry(const Job& job, const Run& run, RunStatus status,
                                Instant finished_at, double random01);

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_FIRE_PLANNER_H_
