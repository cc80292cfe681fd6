#include "engine/executor_pool.h"

#include <algorithm>
#include <random>
#include <utility>

#include "base/thread_name.h"
#include "core/run_policy.h"

namespace sked::engine_internal {

bool ExecutorPool::DriverClock::AwaitWithDeadline(std::unique_lock<std::mutex>& lock,
                                                  std::condition_variable& cv, Instant deadline,
                                                  const std::function<bool()>& ready) {
  std::multiset<Instant>::iterator it;
  {
    MutexLock l(state_.mu);
    it = state_.driver_waits.insert(deadline);
  }
  state_.idle_cv.notify_all();
  const bool r = ctx_.clock->AwaitWithDeadline(lock, cv, deadline, ready);
  {
    MutexLock l(state_.mu);
    state_.driver_waits.erase(it);
  }
  return r;
}

void ExecutorPool::Start() {
  for (int i = 0; i < ctx_.options.workers; ++i) {
    threads_.emplace_back([this] { WorkerThread(); });
    NameThread(threads_.back(), "sked-worker");
  }
}

void ExecutorPool::Stop() {
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void ExecutorPool::WorkerThread() {
  MutexLock lock(state_.mu);
  bool active = false;   // taking ready runs one after another
  bool standby = false;  // the idle worker watching the active ones (JoinWorkersLocked)
  const auto ready_to_take = [this] {
    state_.mu.AssertHeld();
    return !state_.ready.empty() && !state_.draining;
  };
  const auto go_idle = [&] {
    state_.mu.AssertHeld();
    if (active) --state_.active_workers;
    active = false;
    if (!standby) return;
    standby = false;
    state_.standby_worker = false;
    state_.work_cv.notify_all();  // another takes the watch, or waits for work
  };
  while (true) {
    bool joined = false;
    while (!state_.stopping) {
      if (ready_to_take()) {
        if (active) break;  // an active worker goes on with the next run
        std::chrono::steady_clock::time_point ask_again;
        if (state_.JoinWorkersLocked(std::chrono::steady_clock::now(), &ask_again)) {
          go_idle();  // leaves the watch
          active = joined = true;
          ++state_.active_workers;
          break;
        }
        if (standby || !state_.standby_worker) {
          standby = state_.standby_worker = true;
          lock.Unlock();
          WatchActiveWorkers(ask_again);
          lock.Lock();
        } else {
          state_.work_cv.wait(lock.native());  // until the watch is free or work comes
        }
        continue;
      }
      go_idle();
      // Idle workers wake when the earliest reserved fire comes due and take it
      // themselves: the loop may be busy in a long store call (a claim) then.
      if (state_.reserved.empty() || state_.draining) {
        state_.work_cv.wait(lock.native(), [&] {
          state_.mu.AssertHeld();
          return state_.stopping || ready_to_take() ||
                 (!state_.reserved.empty() && !state_.draining);
        });
        continue;
      }
      const Instant due = std::get<0>(state_.reserved.begin()->first);
      ctx_.clock->AwaitWithDeadline(lock.native(), state_.work_cv, due, [&] {
        state_.mu.AssertHeld();
        return state_.stopping || ready_to_take() || state_.draining || state_.reserved.empty() ||
               std::get<0>(state_.reserved.begin()->first) < due;
      });
      // A few at a time: a burst's first run starts without waiting for
      // the whole burst to be moved.
      state_.TopUpReadyLocked(ctx_.clock->Now());
    }
    if (!ready_to_take()) {  // stopping
      go_idle();
      return;
    }
    Run run = std::move(state_.ready.front().run);
    state_.ready.pop_front();
    const Instant now = ctx_.clock->Now();
    std::optional<Started> started = DispatchLocked(std::move(run), now);
    // The loop records what happened (and learns a started run's deadline),
    // after the burst this run belongs to, if any.
    const bool wake_loop = state_.WorkerWakeLocked(now);
    if (!started) {
      if (wake_loop) state_.loop_cv.notify_all();
      continue;
    }
    lock.Unlock();
    if (wake_loop) state_.loop_cv.notify_all();
    if (joined) state_.idle_cv.notify_all();  // WaitIdle counts the runs executing
    Finished finished = Execute(*started);
    lock.Lock();
    // The run's end and the next run's start under one hold of the lock.
    const bool wake = FinishLocked(*started, finished);
    if (wake || finished.observed) {
      lock.Unlock();
      if (wake) state_.loop_cv.notify_all();
      state_.idle_cv.notify_all();
      if (finished.observed) ctx_.options.observer->OnRunFinished(started->run, *finished.observed);
      lock.Lock();
    } else {
      state_.idle_cv.notify_all();
    }
    state_.TopUpReadyLocked(ctx_.clock->Now());
  }
}

void ExecutorPool::WatchActiveWorkers(std::chrono::steady_clock::time_point until) {
  // Real time (how long a run has run says whether it blocks, on any clock),
  // and without the engine's lock: the active workers take it for each run.
  // Bounded: a burst drains within seconds; then the watch asks again.
  for (int i = 0; i < 100000; ++i) {
    std::this_thread::sleep_until(until);
    const std::chrono::steady_clock::time_point last{
        std::chrono::nanoseconds(state_.last_start_ns.load(std::memory_order_relaxed))};
    const auto now = std::chrono::steady_clock::now();
    if (last + kWorkerJoinAfter <= now) return;  // none started since: they may block
    until = last + kWorkerJoinAfter;
  }
}

std::optional<ExecutorPool::Started> ExecutorPool::DispatchLocked(Run run, Instant now) {
  auto job = state_.jobs.find(run.job_id);
  if (job == state_.jobs.end() || job->second.job->version != run.job_version) {
    // The job changed since the claim: let the queue serve the run.
    state_.dispatches.push_back({run.id, Dispatch::Kind::kReleased, now, 0, ""});
    return std::nullopt;
  }
  const JobSpec& spec = job->second.job->spec;
  // Claimed while the job was idle; a run started since (a manual trigger,
  // a retry) may hold this one back.
  auto running = state_.running_by_job.find(run.job_id);
  const policy::StartVerdict verdict = policy::JudgeStart(
      spec, run.scheduled_for, now, running == state_.running_by_job.end() ? 0 : running->second,
      policy::StartFrom::kClaim);
  if (verdict == policy::StartVerdict::kSkipDeadline ||
      verdict == policy::StartVerdict::kSkipOverlap) {
    const char* reason = policy::SkipReason(verdict);
    state_.dispatches.push_back({run.id, Dispatch::Kind::kSkipped, now, 0, reason});
    state_.CountSkippedLocked(run.job_name, reason);
    return std::nullopt;
  }
  if (verdict == policy::StartVerdict::kWait) {
    state_.dispatches.push_back({run.id, Dispatch::Kind::kReleased, now, 0, ""});
    return std::nullopt;
  }
  const EngineOptions& o = ctx_.options;
  const std::int64_t token = policy::NewLeaseToken(state_.rng);
  state_.dispatches.push_back({run.id, Dispatch::Kind::kStarted, now, token, ""});
  state_.recent_starts.push_back(now);
  state_.unrecorded_starts.insert(run.id);
  run.status = RunStatus::kRunning;
  run.started_at = now;
  run.instance_id = o.instance_id;
  run.lease_token = token;
  run.lease_expires_at = now + o.lease;
  if (run.job_name.empty()) run.job_name = spec.name;  // for the metrics
  if (run.trigger == RunTrigger::kSchedule || run.trigger == RunTrigger::kCatchUp) {
    state_.metrics.fire_lag.Observe(Seconds(now - run.scheduled_for));
  }
  Execution e;
  e.job_id = run.job_id;
  e.began = std::chrono::steady_clock::now();
  state_.last_start_ns.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(e.began.time_since_epoch()).count(),
      std::memory_order_relaxed);
  e.deadline = now + spec.timeout.value_or(o.default_timeout);
  ++state_.running_by_job[run.job_id];
  const std::int64_t id = run.id;
  Started started{std::move(run), job->second.job,
                  e.stop.get_token()};  // the job as the run saw it
  state_.executing.emplace(id, std::move(e));
  return started;
}

ExecutorPool::Finished ExecutorPool::Execute(const Started& started) {
  const EngineOptions& o = ctx_.options;
  const Run& run = started.run;
  const JobSpec& spec = started.job->spec;
  DriverResult result;
  Driver* driver = ctx_.drivers->Find(spec.driver);
  if (driver == nullptr) {
    result = DriverResult::Failed(ctx_.drivers->UnknownDriverMessage(spec.driver));
  } else {
    RunContext ctx;
    ctx.run_id = run.id;
    ctx.job_name = spec.name;
    ctx.attempt = run.attempt;
    ctx.scheduled_for = run.scheduled_for;
    ctx.config = spec.driver_config;
    ctx.clock = &clock_;
    ctx.max_output_bytes = o.max_output_bytes;
    ctx.on_output = [this, id = run.id](std::string_view data) { live_output_.Append(id, data); };
    live_output_.Open(run.id);
    if (o.observer != nullptr) o.observer->OnRunStarted(run);
    try {
      result = driver->Execute(ctx, started.stop);
    } catch (const std::exception& ex) {
      result =
          DriverResult::Failed(std::string("driver '") + spec.driver + "' threw: " + ex.what());
    } catch (...) {
      result = DriverResult::Failed(std::string("driver '") + spec.driver +
                                    "' threw an unknown exception");
    }
  }
  live_output_.Close(run.id);
  Finished f;
  RunOutcome& out = f.outcome;
  out.run_id = run.id;
  out.job_name = run.job_name;
  out.lease_token = run.lease_token;
  out.finished_at = ctx_.clock->Now();
  out.exit_code = result.exit_code;
  out.output = std::move(result.output);
  out.output_truncated = result.output_truncated;
  if (o.max_output_bytes > 0 && static_cast<std::int64_t>(out.output.size()) > o.max_output_bytes) {
    out.output.erase(0, out.output.size() - static_cast<std::size_t>(o.max_output_bytes));
    out.output_truncated = true;
  }
  out.result = std::move(result.result);
  out.status = result.status == RunStatus::kSucceeded ? RunStatus::kSucceeded : RunStatus::kFailed;
  out.error = std::move(result.error);
  f.note = std::move(result.note);
  f.escaped_processes = result.escaped_processes;
  return f;
}

bool ExecutorPool::FinishLocked(const Started& started, Finished& f) {
  const EngineOptions& o = ctx_.options;
  const Run& run = started.run;
  RunOutcome& out = f.outcome;
  const Instant finished = out.finished_at;
  auto it = state_.executing.find(run.id);
  const Execution& e = it->second;
  if (e.stop_as) {
    out.status = *e.stop_as;
    out.reason = e.stop_reason;
    out.error = *e.stop_as == RunStatus::kTimedOut
                    ? "timed out after " + FormatDuration(e.deadline - *run.started_at)
                    : "cancelled (" + e.stop_reason + ")";
  }
  if (!f.note.empty()) {
    // The run's record says what the driver had to clean up (and the
    // error, when there is one, still says how the run ended).
    out.reason = out.reason.empty() ? f.note : out.reason + "; " + f.note;
  }
  if (f.escaped_processes > 0) {
    state_.metrics.escaped_processes += f.escaped_processes;
    state_.last_escape_at = finished;
  }
  if (out.status != RunStatus::kCancelled) {
    out.retry = policy::PlanRetry(*started.job, run, out.status, finished,
                                  std::uniform_real_distribution<double>(0, 1)(state_.rng));
  }
  out.ran = finished - *run.started_at;
  state_.CountRunTimeLocked(finished, out.ran);
  // The job's own series count the run when it is settled (its status is
  // known then): one look-up of the job per run, outside the engine's lock.
  state_.metrics.run_duration.Observe(Seconds(out.ran));
  if (o.observer != nullptr) f.observed = out;
  if (!out.retry) {
    state_.AddUnsettledLocked(
        run.id, run.job_id,
        state_.unrecorded_starts.contains(run.id) ? StoreSees::kQueued : StoreSees::kRunning);
  }
  state_.outcomes.push_back(std::move(out));
  state_.executing.erase(it);
  if (auto r = state_.running_by_job.find(run.job_id);
      r != state_.running_by_job.end() && --r->second <= 0) {
    state_.running_by_job.erase(r);
  }
  return state_.WorkerWakeLocked(finished);
}

void ExecutorPool::RecordDispatches() {
  std::vector<Dispatch> batch;
  {
    MutexLock l(state_.mu);
    // The start of a run that has ended already stays for the settler, which
    // writes it with the run's end (Settler::MergeUnrecordedStartsLocked).
    // In place: the workers' list keeps its capacity from burst to burst.
    auto to_write =
        std::stable_partition(state_.dispatches.begin(), state_.dispatches.end(), [this](auto& d) {
          state_.mu.AssertHeld();
          return d.kind == Dispatch::Kind::kStarted && !state_.executing.contains(d.run_id);
        });
    batch.assign(std::make_move_iterator(to_write),
                 std::make_move_iterator(state_.dispatches.end()));
    state_.dispatches.erase(to_write, state_.dispatches.end());
  }
  if (batch.empty()) return;
  auto applied = ctx_.store->RecordDispatches(ctx_.options.instance_id, batch,
                                              ctx_.clock->Now() + ctx_.options.lease);
  {
    MutexLock l(state_.mu);
    if (!applied.ok()) {
      state_.last_store_error = applied.status().message();
      state_.dispatches.insert(state_.dispatches.begin(), std::make_move_iterator(batch.begin()),
                               std::make_move_iterator(batch.end()));
      return;
    }
    const Instant now = ctx_.clock->Now();
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].kind == Dispatch::Kind::kStarted) {
        state_.unrecorded_starts.erase(batch[i].run_id);
        // A run that ended while its start was written is running there now.
        state_.StoreSeesLocked(batch[i].run_id,
                               (*applied)[i] ? StoreSees::kRunning : StoreSees::kNeither);
      }
      if ((*applied)[i] || batch[i].kind != Dispatch::Kind::kStarted) continue;
      // Cancelled, deleted or reaped between the claim and the start: the
      // run's record is final already, so stop what the worker began.
      auto it = state_.executing.find(batch[i].run_id);
      if (it != state_.executing.end()) {
        state_.RequestStopLocked(it->second, RunStatus::kCancelled,
                                 "cancelled before its start was recorded", now);
      }
    }
  }
  state_.FlushStops();
}

void ExecutorPool::EnforceDeadlines(Instant now) {
  {
    MutexLock l(state_.mu);
    for (auto& [id, e] : state_.executing) {
      if (!e.stop_as && e.deadline <= now) {
        state_.RequestStopLocked(e, RunStatus::kTimedOut, "timeout", now);
      }
    }
  }
  state_.FlushStops();
}

void ExecutorPool::PollCancels(Instant now) {
  {
    MutexLock l(state_.mu);
    if (now < state_.next_cancel_poll) return;
    state_.next_cancel_poll = now + ctx_.options.poll_interval;
    if (state_.executing.empty()) return;
  }
  auto runs = ctx_.store->CancelRequested(ctx_.options.instance_id);
  if (!runs.ok()) return;
  {
    MutexLock l(state_.mu);
    for (const Run& r : *runs) {
      auto it = state_.executing.find(r.id);
      if (it != state_.executing.end()) {
        state_.RequestStopLocked(it->second, RunStatus::kCancelled,
                                 r.reason.empty() ? "cancelled" : r.reason, now);
      }
    }
  }
  state_.FlushStops();
}

void ExecutorPool::StopRuns(const std::function<bool(std::int64_t, std::int64_t)>& pred,
                            const std::string& reason) {
  const Instant now = ctx_.clock->Now();
  {
    MutexLock l(state_.mu);
    for (auto& [id, e] : state_.executing) {
      if (pred(id, e.job_id)) state_.RequestStopLocked(e, RunStatus::kCancelled, reason, now);
    }
  }
  state_.FlushStops();
}

Instant ExecutorPool::NextWake(Instant next) {
  MutexLock l(state_.mu);
  for (const auto& [id, e] : state_.executing) {
    if (!e.stop_as) next = std::min(next, e.deadline);
  }
  return std::min(next, state_.next_cancel_poll);
}

bool ExecutorPool::HasFreeWorker() {
  MutexLock l(state_.mu);
  return static_cast<int>(state_.executing.size()) < ctx_.options.workers;
}

}  // namespace sked::engine_internal
