// The settler: writes the outcomes of finished runs (and the retries the
// policy planned for them) to the store, settle_batch per transaction, each
// fenced by its run's lease token (or, for a run whose start was never
// written, by its reservation: start and end in one write). Its own thread
// (sked-settler) writes when the scheduler loop asks (Ask, once a pass), so
// that a pass's other store calls (reserving queued runs, recording starts)
// are not kept waiting by the settle, nor the settle by them; a claim and a
// settle still take turns (EngineState::claim_settle_mu). Stop writes what is
// left once the threads are gone.

#ifndef SKED_ENGINE_SETTLER_H_
#define SKED_ENGINE_SETTLER_H_

#include <functional>
#include <thread>
#include <vector>

#include "engine/engine_state.h"

namespace sked::engine_internal {

class Settler {
 public:
  Settler(const EngineContext& ctx, EngineState& state) : ctx_(ctx), state_(state) {}
  Settler(const Settler&) = delete;
  Settler& operator=(const Settler&) = delete;
  ~Settler() { Stop(); }

  void Start();
  // Joins the thread (it exits once the book says `stopping`, after the batch
  // it is writing). Safe before Start() and twice.
  void Stop();
  // The loop's pass: the outcomes waiting in the book are to be written.
  void Ask() SKED_EXCLUDES(state_.mu);

  struct Written {
    bool any = false;      // some outcome's write was applied or fenced out
    bool yielded = false;  // the rest were left for a claim that came due
  };
  // Settles the outcomes waiting in the book; those the store could not take
  // stay for the next pass. Between two batches, when `yield` says so (a
  // claim is due) and at most kSettleBatchesBehind batches are left, the rest
  // stay too and the loop is asked for another pass.
  Written SettlePending(const std::function<bool()>& yield = nullptr) SKED_EXCLUDES(state_.mu);

 private:
  void Run() SKED_EXCLUDES(state_.mu);
  // Outcomes of runs whose start is still among the dispatches to record
  // (short runs, finished before the loop's next pass) take the start with
  // them: one write per run instead of two. The start leaves the dispatches.
  void MergeUnrecordedStartsLocked(std::vector<RunOutcome>& batch) SKED_REQUIRES(state_.mu);

  const EngineContext& ctx_;
  EngineState& state_;
  std::thread thread_;
};

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_SETTLER_H_
