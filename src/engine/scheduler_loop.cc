#include "engine/scheduler_loop.h"

#include <algorithm>
#include <string>

#include "base/thread_name.h"

namespace sked::engine_internal {

void SchedulerLoop::Start() {
  thread_ = std::thread([this] { Run(); });
  NameThread(thread_, "sked-loop");
}

void SchedulerLoop::Stop() {
  if (thread_.joinable()) thread_.join();
}

void SchedulerLoop::Run() {
  MutexLock lock(state_.mu);
  while (!state_.stopping) {
    state_.wake = false;
    lock.Unlock();
    const Instant now = ctx_.clock->Now();
    const Instant next = Pass(now);
    lock.Lock();
    state_.last_pass_at = now;
    if (state_.wake || state_.stopping) continue;
    // A burst that came due during the pass: its workers did not wake the
    // loop, which wakes by the burst's bound for the writes it leaves.
    Instant until = next;
    if (auto at = state_.BurstWritesDueLocked(ctx_.clock->Now())) until = std::min(until, *at);
    state_.loop_park = {true, until};
    state_.idle_cv.notify_all();
    // Parked, until a pass is asked for or the deadline comes; a worker may
    // bring the deadline forward (a burst came due: WorkerWakeLocked).
    while (true) {
      const Instant deadline = state_.loop_park.until;
      ctx_.clock->AwaitWithDeadline(lock.native(), state_.loop_cv, deadline, [&] {
        state_.mu.AssertHeld();
        return state_.wake || state_.stopping || state_.loop_park.until < deadline;
      });
      if (state_.wake || state_.stopping || state_.loop_park.until >= deadline) break;
    }
    state_.loop_park.parked = false;
  }
}

Instant SchedulerLoop::Pass(Instant now) {
  const EngineOptions& o = ctx_.options;
  {
    MutexLock l(state_.mu);
    // Shutting down: nothing claimed will start here any more; give it back
    // at once (peers claim it now, a restart judges it by the misfire policy).
    if (state_.draining) state_.GiveBackClaimsLocked(now);
    state_.ReleaseStalledLocked(now, o.workers);
  }
  // Claims first: a burst's claim is not delayed by the last burst's settles
  // (the claimer does not count runs that ended here as keeping their job
  // busy; the settler gives way between batches to a claim that comes due).
  // The settler writes on its own thread meanwhile; the starts recorded here
  // are those of runs still executing (a run that started and ended since
  // the last pass has its start written with its end, by the settler).
  if (claimer_.ClaimDueAt(now)) {
    claimer_.ClaimFires(now);
    claimer_.PlanNextClaim(now);
  }
  settler_.Ask();
  executor_.RecordDispatches();
  // Outcomes that waited for their start to be written above.
  settler_.Ask();
  bool draining;
  {
    MutexLock l(state_.mu);
    draining = state_.draining;
  }
  bool ready;
  {
    MutexLock l(state_.mu);
    state_.PromoteDueLocked(ctx_.clock->Now());
    ready = !state_.ready.empty();
    if (ready && !draining) {
      // Still held: look again when the next one may be released.
      const size_t keep = std::min(state_.ready.size() - 1, state_.KeepReadyLocked(now, o.workers));
      state_.hold_check_at =
          std::max(state_.ready[keep].since + state_.HoldReadyLocked() + Duration(1),
                   ctx_.clock->Now() + state_.HoldReadyLocked() / 4);
    }
  }
  if (ready) state_.work_cv.notify_all();
  const Claimer::Reserved reserved = draining ? Claimer::Reserved{} : claimer_.ReserveQueued(now);
  executor_.PollCancels(now);
  executor_.EnforceDeadlines(now);

  // Sleep until the earliest thing that needs doing.
  Instant next = now + o.poll_interval;
  if (!draining) {
    {
      MutexLock l(state_.mu);
      next = std::min(next, state_.next_claim);
      // Idle workers wake for the next reserved fire themselves; the loop
      // does when none is idle (to time the hold of the runs that wait).
      if (!state_.reserved.empty() && static_cast<int>(state_.executing.size()) >= o.workers) {
        next = std::min(next, std::get<0>(state_.reserved.begin()->first));
      }
      if (!state_.ready.empty()) next = std::min(next, state_.hold_check_at);
      // Workers do not wake the loop while a burst drains.
      if (auto at = state_.BurstWritesDueLocked(ctx_.clock->Now())) next = std::min(next, *at);
    }
    // A queued run already due but not started is held by its job's overlap
    // policy: a finishing run wakes the loop (or the poll sees another
    // process's), so only future not_before times (retry backoff) count here;
    // and not while a full batch was just taken (the workers finishing it
    // wake the loop for the next).
    if (reserved.contended) next = std::min(next, ctx_.clock->Now() + kReserveAgain);
    if (!reserved.full && executor_.HasFreeWorker()) {
      if (auto q = ctx_.store->NextQueuedAt(); q.ok() && *q && **q > now)
        next = std::min(next, **q);
    }
  }
  ReportStoreError();
  return std::max(executor_.NextWake(next), now + Duration(1));
}

void SchedulerLoop::ReportStoreError() {
  std::string error;
  {
    MutexLock l(state_.mu);
    if (state_.last_store_error == state_.reported_store_error) return;
    state_.reported_store_error = state_.last_store_error;
    error = state_.last_store_error;
  }
  if (!error.empty() && ctx_.options.observer != nullptr) {
    ctx_.options.observer->OnStoreError(UnavailableError(error));
  }
}

}  // namespace sked::engine_internal
