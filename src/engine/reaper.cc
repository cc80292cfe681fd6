#include "engine/reaper.h"

#include <random>

#include "core/run_policy.h"

namespace sked::engine_internal {

void Reaper::Start() {
  task_.Start("sked-reaper", ctx_.options.lease / 2, [this](Instant now) { Reap(now); });
}

void Reaper::Reap(Instant now) {
  // The planner runs inside the store's transaction (lock order: store, then
  // the engine's mutex).
  auto reaped = ctx_.store->ReapExpired(
      now, ctx_.options.settle_batch, [this, now](const Job& job, const Run& run) {
        MutexLock l(state_.mu);
        auto r = policy::PlanRetry(job, run, RunStatus::kAbandoned, now,
                                   std::uniform_real_distribution<double>(0, 1)(state_.rng));
        if (r) ++state_.metrics.retries_scheduled;
        return r;
      });
  if (!reaped.ok()) return;
  {
    MutexLock l(state_.mu);
    state_.metrics.reaped += static_cast<std::int64_t>(reaped->size());
    for (const Run& r : *reaped) state_.CountSettledLocked(r.job_name, RunStatus::kAbandoned);
  }
  // A retry may now be queued: let the loop look.
  if (!reaped->empty()) state_.WakeLoop();
}

}  // namespace sked::engine_internal
