// The reaper: every lease / 2, settles as abandoned the runs whose owner's
// lease expired (a killed or partitioned instance, on any host), scheduling
// their retries by policy, and wakes the loop to start them.

#ifndef SKED_ENGINE_REAPER_H_
#define SKED_ENGINE_REAPER_H_

#include "engine/engine_state.h"
#include "engine/periodic_task.h"

namespace sked::engine_internal {

class Reaper {
 public:
  Reaper(const EngineContext& ctx, EngineState& state)
      : ctx_(ctx), state_(state), task_(ctx, state, &state.reaper_park) {}
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  void Start();
  // Joins it (once the book says `stopping`). Safe before Start() and twice.
  void Stop() { task_.Stop(); }

 private:
  void Reap(Instant now) SKED_EXCLUDES(state_.mu);

  const EngineContext& ctx_;
  EngineState& state_;
  PeriodicTask task_;
};

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_REAPER_H_
