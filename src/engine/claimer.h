// The claimer: takes this instance's share of the fires due (Store::ClaimDue,
// in batches, claim_ahead before their instant, earlier for a burst) and of
// the shared queue (Store::ReserveQueued, at the workers' pace), and puts
// them in the engine's book (reserved, ready) for the workers. Called by the
// scheduler loop; it has no thread of its own.

#ifndef SKED_ENGINE_CLAIMER_H_
#define SKED_ENGINE_CLAIMER_H_

#include "engine/engine_state.h"
#include "sked/schedule.h"

namespace sked::engine_internal {

class Claimer {
 public:
  Claimer(const EngineContext& ctx, EngineState& state) : ctx_(ctx), state_(state) {}
  Claimer(const Claimer&) = delete;
  Claimer& operator=(const Claimer&) = delete;

  // Whether a pass at `now` claims fires (not draining, and the time set by
  // the last PlanNextClaim has come).
  bool ClaimDueAt(Instant now) SKED_EXCLUDES(state_.mu);
  // Claims the fires due by the horizon, a batch per transaction.
  void ClaimFires(Instant now) SKED_EXCLUDES(state_.mu);
  // Reserves queued runs for this instance's workers (to `ready`).
  struct Reserved {
    // It took as many runs as it asked for: more are due now, and the
    // workers finishing these wake the loop for them.
    bool full = false;
    // The store passed over runs whose job another transaction held: the
    // loop looks again after kReserveAgain.
    bool contended = false;
  };
  Reserved ReserveQueued(Instant pass_start) SKED_EXCLUDES(state_.mu);
  // After a claim at `now`: when to claim next (claim_ahead before the next
  // fire the store knows of, earlier for a burst), set in the book.
  void PlanNextClaim(Instant now) SKED_EXCLUDES(state_.mu);

 private:
  // How long before `due` to start claiming: claim_ahead, plus the time the
  // fires due by then take to claim at the cost per fire measured so far (a
  // burst of 10,000 fires is claimed by its instant).
  Duration ClaimLead(Instant due) SKED_EXCLUDES(state_.mu);
  // Takes the turn from the settler (EngineState::claim_settle_mu), counting
  // a claim that had to wait for a settle in flight.
  void TakeClaimTurn() SKED_ACQUIRE(state_.claim_settle_mu) SKED_EXCLUDES(state_.mu);
  // The job's parsed schedule, cached by version.
  Result<Schedule> ScheduleFor(const Job& job) SKED_EXCLUDES(state_.mu);

  const EngineContext& ctx_;
  EngineState& state_;
};

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_CLAIMER_H_
