// The executor pool (dispatcher): `workers` threads that take due runs from
// the engine's book, decide whether each may start (policy::JudgeStart),
// run its driver, and hand the outcome to the settler. Also what stops a
// running run: its timeout, a cancel request (this process's or, polled,
// another's), the job's deletion, shutdown. RecordDispatches writes what
// became of the runs it took (started, released, skipped, given back).

#ifndef SKED_ENGINE_EXECUTOR_POOL_H_
#define SKED_ENGINE_EXECUTOR_POOL_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine_state.h"
#include "engine/live_output.h"

namespace sked::engine_internal {

class ExecutorPool {
 public:
  ExecutorPool(const EngineContext& ctx, EngineState& state)
      : ctx_(ctx), state_(state), clock_(ctx, state) {}
  ExecutorPool(const ExecutorPool&) = delete;
  ExecutorPool& operator=(const ExecutorPool&) = delete;
  ~ExecutorPool() { Stop(); }

  // Starts the worker threads.
  void Start();
  // Joins them; they exit once the book says `stopping`. Safe before Start()
  // and twice.
  void Stop();

  // Writes what became of the runs taken from the book; when the store
  // refuses, the batch is kept for the next pass. A start the store refuses
  // (the run was cancelled, deleted or reaped meanwhile) is stopped.
  void RecordDispatches() SKED_EXCLUDES(state_.mu);
  // Stops runs past their timeout.
  void EnforceDeadlines(Instant now) SKED_EXCLUDES(state_.mu);
  // Looks for cancel requests for this instance's runs (every poll_interval,
  // or at once after a notification).
  void PollCancels(Instant now) SKED_EXCLUDES(state_.mu);
  // Stops the runs for which `pred(run_id, job_id)` holds (job deleted, run
  // cancelled, shutdown).
  void StopRuns(const std::function<bool(std::int64_t, std::int64_t)>& pred,
                const std::string& reason) SKED_EXCLUDES(state_.mu);
  // The earliest of `next`, the next timeout and the next cancel poll.
  Instant NextWake(Instant next) SKED_EXCLUDES(state_.mu);
  bool HasFreeWorker() SKED_EXCLUDES(state_.mu);
  // The output of the runs executing here, as their drivers write it.
  LiveOutput& live_output() { return live_output_; }

 private:
  // The clock drivers see: the engine's clock, counting who waits on it so
  // WaitIdle can tell a driver sleeping on (simulated) time from one working.
  class DriverClock final : public Clock {
   public:
    DriverClock(const EngineContext& ctx, EngineState& state) : ctx_(ctx), state_(state) {}
    Instant Now() override { return ctx_.clock->Now(); }
    bool AwaitWithDeadline(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                           Instant deadline, const std::function<bool()>& ready) override;

   private:
    const EngineContext& ctx_;
    EngineState& state_;
  };

  // A run a worker started: a copy of its record as started, its job at the
  // version the run saw, and its stop token.
  struct Started {
    Run run;
    std::shared_ptr<const Job> job;
    std::stop_token stop;
  };
  // What its driver returned, before the book learns of it.
  struct Finished {
    RunOutcome outcome;
    std::string note;
    int escaped_processes = 0;
    std::optional<RunOutcome> observed;  // for the observer, called outside the lock
  };

  void WorkerThread() SKED_EXCLUDES(state_.mu);
  // The idle worker on watch: returns once no worker has started a run for
  // kWorkerJoinAfter (or `until`, when that is later); the caller then asks
  // EngineState::JoinWorkersLocked.
  void WatchActiveWorkers(std::chrono::steady_clock::time_point until) SKED_EXCLUDES(state_.mu);
  // Starts a due run on the calling worker if policy::JudgeStart allows, else
  // releases it to the queue (or skips it).
  std::optional<Started> DispatchLocked(Run run, Instant now) SKED_REQUIRES(state_.mu);
  // Runs the driver; takes no lock.
  Finished Execute(const Started& started) SKED_EXCLUDES(state_.mu);
  // Books the run's end (its stop, retry plan, metrics) for the settler;
  // true when the caller must notify the loop (EngineState::SetWakeLocked).
  bool FinishLocked(const Started& started, Finished& f) SKED_REQUIRES(state_.mu);

  const EngineContext& ctx_;
  EngineState& state_;
  DriverClock clock_;
  LiveOutput live_output_;
  std::vector<std::thread> threads_;
};

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_EXECUTOR_POOL_H_
