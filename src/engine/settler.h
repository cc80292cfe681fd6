// The settler: writes the outcomes of finished runs (and the retries the
// policy planned for them) to the store, settle_batch per transaction, each
// fenced by its run's lease token (or, for a run whose start was never
// written, by its reservation: start and end in one write). Called by the
// scheduler loop before it records dispatches, and once more by Stop.

#ifndef SKED_ENGINE_SETTLER_H_
#define SKED_ENGINE_SETTLER_H_

#include <functional>
#include <vector>

#include "engine/engine_state.h"

namespace sked::engine_internal {

class Settler {
 public:
  Settler(const EngineContext& ctx, EngineState& state) : ctx_(ctx), state_(state) {}
  Settler(const Settler&) = delete;
  Settler& operator=(const Settler&) = delete;

  // Settles the outcomes waiting in the book; those the store could not take
  // stay for the next pass. Between two batches, when `yield` says so (a
  // claim is due), the rest stay too and the loop is asked for another pass.
  void SettlePending(const std::function<bool()>& yield = nullptr) SKED_EXCLUDES(state_.mu);

 private:
  // Outcomes of runs whose start is still among the dispatches to record
  // (short runs, finished before the loop's next pass) take the start with
  // them: one write per run instead of two. The start leaves the dispatches.
  void MergeUnrecordedStartsLocked(std::vector<RunOutcome>& batch) SKED_REQUIRES(state_.mu);

  // Outcome buffers larger than this are not kept between passes.
  static constexpr size_t kMaxSpareOutcomes = 1 << 15;

  const EngineContext& ctx_;
  EngineState& state_;
  std::vector<RunOutcome> spare_;  // the loop's (or Stop's, after it): no lock
};

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_SETTLER_H_
