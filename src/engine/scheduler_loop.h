// The scheduler loop: one thread that sleeps on the engine's clock until the
// earliest thing to do (a claim, a reserved fire no idle worker waits for, a
// ready run to release, a queued run's not_before, a timeout, a cancel poll,
// a change notification, the end of a burst's write deferral) and runs a
// pass: claims, asks the settler (its own thread) to write finished runs,
// records dispatches, reserves queued runs, enforces timeouts and cancels.
// The work is the services'; the loop decides when (docs/architecture.md,
// "A pass").

#ifndef SKED_ENGINE_SCHEDULER_LOOP_H_
#define SKED_ENGINE_SCHEDULER_LOOP_H_

#include <thread>

#include "engine/claimer.h"
#include "engine/engine_state.h"
#include "engine/executor_pool.h"
#include "engine/settler.h"

namespace sked::engine_internal {

class SchedulerLoop {
 public:
  SchedulerLoop(const EngineContext& ctx, EngineState& state, Claimer& claimer,
                ExecutorPool& executor, Settler& settler)
      : ctx_(ctx), state_(state), claimer_(claimer), executor_(executor), settler_(settler) {}
  SchedulerLoop(const SchedulerLoop&) = delete;
  SchedulerLoop& operator=(const SchedulerLoop&) = delete;
  ~SchedulerLoop() { Stop(); }

  void Start();
  // Joins the thread (it exits once the book says `stopping`). Safe before
  // Start() and twice.
  void Stop();

 private:
  void Run() SKED_EXCLUDES(state_.mu);
  // One pass; returns when it next wants to run.
  Instant Pass(Instant now) SKED_EXCLUDES(state_.mu);
  // Tells the observer about a store error once (it is retried, and Health()
  // reports it until it clears).
  void ReportStoreError() SKED_EXCLUDES(state_.mu);

  const EngineContext& ctx_;
  EngineState& state_;
  Claimer& claimer_;
  ExecutorPool& executor_;
  Settler& settler_;
  std::thread thread_;
};

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_SCHEDULER_LOOP_H_
