// A thread that calls `tick(now)` every `interval` on the engine's clock
// until the book says `stopping`: the lease keeper's heartbeat and the
// reaper run on one each. Parks in `park` between ticks (WaitIdle reads it).

#ifndef SKED_ENGINE_PERIODIC_TASK_H_
#define SKED_ENGINE_PERIODIC_TASK_H_

#include <functional>
#include <thread>

#include "engine/engine_state.h"

namespace sked::engine_internal {

class PeriodicTask {
 public:
  // `park` is a member of `state`.
  PeriodicTask(const EngineContext& ctx, EngineState& state, Parked* park)
      : ctx_(ctx), state_(state), park_(park) {}
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;
  ~PeriodicTask() { Stop(); }

  // `name` names the thread (base/thread_name.h).
  void Start(const char* name, Duration interval, std::function<void(Instant)> tick);
  // Joins the thread (it exits once the book says `stopping`). Safe before
  // Start() and twice.
  void Stop();

 private:
  void Run(Duration interval, const std::function<void(Instant)>& tick) SKED_EXCLUDES(state_.mu);

  const EngineContext& ctx_;
  EngineState& state_;
  Parked* const park_ SKED_PT_GUARDED_BY(state_.mu);
  std::thread thread_;
};

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_PERIODIC_TASK_H_
