// The engine's composition: the shared context and book (engine_state.h),
// and the services that work on them, started and stopped in order. What
// each service does is in its own file: claimer, executor_pool (dispatch and
// workers), settler, lease_keeper, reaper, scheduler_loop, job_service,
// engine_metrics, health.

#include "sked/engine.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "engine/claimer.h"
#include "engine/engine_metrics.h"
#include "engine/engine_state.h"
#include "engine/executor_pool.h"
#include "engine/health.h"
#include "engine/job_service.h"
#include "engine/lease_keeper.h"
#include "engine/reaper.h"
#include "engine/scheduler_loop.h"
#include "engine/settler.h"

namespace sked {
namespace {

using engine_internal::EngineContext;

EngineContext MakeContext(EngineOptions options, Store* store, DriverRegistry* drivers,
                          Clock* clock) {
  if (options.instance_id.empty()) {
    options.instance_id = engine_internal::HostName() + ":" + std::to_string(::getpid());
  }
  options.workers = std::max(1, options.workers);
  options.claim_ahead = std::max(Duration(0), options.claim_ahead);
  return EngineContext{std::move(options), store, drivers, clock};
}

}  // namespace

class Engine::Impl {
 public:
  Impl(EngineOptions options, Store* store, DriverRegistry* drivers, Clock* clock)
      : ctx_(MakeContext(std::move(options), store, drivers, clock)),
        claimer_(ctx_, state_),
        executor_(ctx_, state_),
        settler_(ctx_, state_),
        lease_keeper_(ctx_, state_),
        reaper_(ctx_, state_),
        loop_(ctx_, state_, claimer_, executor_, settler_),
        jobs_(ctx_, state_, executor_) {
    {
      MutexLock l(state_.mu);
      state_.rng.seed(std::random_device{}());
    }
    engine_internal::InitMetrics(ctx_, state_);
  }
  ~Impl() { Stop(); }

  Status Start() SKED_EXCLUDES(state_.mu);
  void Stop() SKED_EXCLUDES(state_.mu);
  void EndShutdownGrace() SKED_EXCLUDES(state_.mu);
  bool WaitIdle(std::chrono::milliseconds timeout) SKED_EXCLUDES(state_.mu);

  engine_internal::JobService& jobs() { return jobs_; }
  MetricsSnapshot Metrics() { return engine_internal::MetricsNow(ctx_, state_); }
  HealthSnapshot Health() { return engine_internal::EngineHealth(ctx_, state_); }
  Store* store() { return ctx_.store; }
  engine_internal::LiveOutput& live_output() { return executor_.live_output(); }
  const std::string& instance_id() const { return ctx_.options.instance_id; }
  const DriverRegistry& drivers() const { return *ctx_.drivers; }

 private:
  void OnStoreEvent(StoreEvent e) SKED_EXCLUDES(state_.mu);

  // Constant after construction.
  const EngineContext ctx_;
  // State below is shared by the services, protected by state_.mu.
  engine_internal::EngineState state_;
  // The services, in the order they are built (each borrows ctx_ and state_).
  engine_internal::Claimer claimer_;
  engine_internal::ExecutorPool executor_;
  engine_internal::Settler settler_;
  engine_internal::LeaseKeeper lease_keeper_;
  engine_internal::Reaper reaper_;
  engine_internal::SchedulerLoop loop_;
  engine_internal::JobService jobs_;
};

Status Engine::Impl::Start() {
  {
    MutexLock l(state_.mu);
    if (state_.started) return FailedPreconditionError("engine already started");
  }
  Store& store = *ctx_.store;
  SKED_ASSIGN_OR_RETURN(int version, store.SchemaVersion());
  if (version != store.LatestSchemaVersion()) {
    return FailedPreconditionError(
        "store schema version " + std::to_string(version) + ", this sked needs " +
        std::to_string(store.LatestSchemaVersion()) + " (run sked migrate)");
  }
  const Instant now = ctx_.clock->Now();
  SKED_RETURN_IF_ERROR(lease_keeper_.Register(now));
  for (const std::string& name : ctx_.drivers->Names()) {
    Driver* d = ctx_.drivers->Find(name);
    (void)store.UpsertJobType({name, name, std::string(d->description()), false});
  }
  {
    MutexLock l(state_.mu);
    state_.started = true;
    state_.next_cancel_poll = now;
  }
  loop_.Start();
  settler_.Start();
  executor_.Start();
  lease_keeper_.Start();
  reaper_.Start();
  // Other instances' changes arrive within milliseconds where the store can
  // tell (PostgreSQL's NOTIFY); polling every poll_interval stays the fallback.
  store.SetListener([this](StoreEvent e) { OnStoreEvent(e); });
  return Status::Ok();
}

void Engine::Impl::OnStoreEvent(StoreEvent e) {
  if (e == StoreEvent::kJobsChanged || e == StoreEvent::kReconnected) state_.JobsChanged();
  if (e == StoreEvent::kCancelRequested || e == StoreEvent::kReconnected) {
    MutexLock l(state_.mu);
    state_.next_cancel_poll = Instant::min();
  }
  state_.WakeLoop();  // a run queued elsewhere, a cancel to look at
}

void Engine::Impl::Stop() {
  {
    MutexLock lock(state_.mu);
    if (!state_.started || state_.stopping) return;
    state_.draining = true;
    state_.wake = true;
    state_.loop_cv.notify_all();
    // Let running runs finish within the grace period.
    const Instant grace_end = ctx_.clock->Now() + ctx_.options.shutdown_grace;
    ctx_.clock->AwaitWithDeadline(lock.native(), state_.idle_cv, grace_end, [this] {
      state_.mu.AssertHeld();
      return state_.executing.empty() || state_.grace_ended;
    });
  }
  // Then stop the rest, and wait for their drivers to return.
  executor_.StopRuns([](std::int64_t, std::int64_t) { return true; }, "shutdown");
  {
    MutexLock lock(state_.mu);
    state_.idle_cv.wait(lock.native(), [this] {
      state_.mu.AssertHeld();
      return state_.executing.empty();
    });
    state_.stopping = true;
  }
  state_.loop_cv.notify_all();
  state_.work_cv.notify_all();
  state_.periodic_cv.notify_all();
  state_.settle_cv.notify_all();
  loop_.Stop();
  settler_.Stop();
  executor_.Stop();
  lease_keeper_.Stop();
  reaper_.Stop();
  ctx_.store->SetListener({});  // no engine lock held: a call in flight may need it
  // What the loop had no pass left to give back.
  {
    MutexLock lock(state_.mu);
    state_.GiveBackClaimsLocked(ctx_.clock->Now());
  }
  settler_.SettlePending();
  executor_.RecordDispatches();
  lease_keeper_.Deregister();
}

void Engine::Impl::EndShutdownGrace() {
  {
    MutexLock l(state_.mu);
    state_.grace_ended = true;
  }
  state_.idle_cv.notify_all();
}

bool Engine::Impl::WaitIdle(std::chrono::milliseconds timeout) {
  MutexLock lock(state_.mu);
  const int workers = ctx_.options.workers;
  return state_.idle_cv.wait_for(lock.native(), timeout, [&] {
    state_.mu.AssertHeld();
    const Instant now = ctx_.clock->Now();
    // Every executing run sits in a driver waiting on the clock for a later
    // time, and none was asked to stop (a stopped driver is about to return).
    bool drivers_parked = state_.driver_waits.size() == state_.executing.size() &&
                          (state_.driver_waits.empty() || *state_.driver_waits.begin() > now);
    for (const auto& [id, e] : state_.executing) drivers_parked = drivers_parked && !e.stop_as;
    auto parked = [now](const engine_internal::Parked& p) { return p.parked && p.until > now; };
    if (parked(state_.loop_park) && !state_.wake &&
        (!state_.outcomes.empty() || !state_.dispatches.empty())) {
      // Left for the loop while a burst drained (it wakes for them within
      // kBurstWritesDefer, which a simulated clock may never reach): now.
      state_.wake = true;
      state_.loop_cv.notify_all();
      return false;
    }
    return parked(state_.loop_park) && !state_.wake && state_.outcomes.empty() &&
           !state_.settle_asked && !state_.settling &&
           (state_.ready.empty() || static_cast<int>(state_.executing.size()) >= workers) &&
           state_.dispatches.empty() && drivers_parked && parked(state_.heartbeat_park) &&
           parked(state_.reaper_park);
  });
}

// ---------------------------------------------------------------- facade

Engine::Engine(EngineOptions options, Store* store, DriverRegistry* drivers, Clock* clock)
    : impl_(std::make_unique<Impl>(std::move(options), store, drivers, clock)) {}
Engine::~Engine() = default;
Status Engine::Start() { return impl_->Start(); }
void Engine::Stop() { impl_->Stop(); }
void Engine::EndShutdownGrace() { impl_->EndShutdownGrace(); }
Result<Job> Engine::CreateJob(const JobSpec& spec, std::string_view source) {
  return impl_->jobs().Create(spec, source);
}
Result<Job> Engine::UpdateJob(std::string_view name, const JobSpec& spec,
                              std::int64_t expected_version) {
  return impl_->jobs().Update(name, spec, expected_version);
}
Result<Job> Engine::ValidateJob(const JobSpec& spec) { return impl_->jobs().Validate(spec); }
Result<Job> Engine::DisableJob(std::string_view name, std::string_view reason) {
  return impl_->jobs().Disable(name, reason);
}
Result<Job> Engine::PauseJob(std::string_view name) { return impl_->jobs().SetPaused(name, true); }
Result<Job> Engine::ResumeJob(std::string_view name) {
  return impl_->jobs().SetPaused(name, false);
}
Status Engine::DeleteJob(std::string_view name) { return impl_->jobs().Delete(name); }
Result<Job> Engine::GetJob(std::string_view name) { return impl_->jobs().Get(name); }
Result<std::vector<Job>> Engine::ListJobs(const JobFilter& filter) {
  return impl_->jobs().List(filter);
}
Result<Run> Engine::TriggerJob(std::string_view name) { return impl_->jobs().Trigger(name); }
Status Engine::CancelRun(std::int64_t run_id) { return impl_->jobs().Cancel(run_id); }
Result<Run> Engine::GetRun(std::int64_t run_id) { return impl_->store()->GetRun(run_id); }
Result<std::vector<Run>> Engine::ListRuns(const RunFilter& filter) {
  return impl_->store()->ListRuns(filter);
}
std::optional<OutputChunk> Engine::WatchOutput(std::int64_t run_id, std::int64_t from,
                                               std::chrono::milliseconds wait) {
  return impl_->live_output().Read(run_id, from, wait);
}
MetricsSnapshot Engine::Metrics() { return impl_->Metrics(); }
HealthSnapshot Engine::Health() { return impl_->Health(); }
const std::string& Engine::instance_id() const { return impl_->instance_id(); }
const DriverRegistry& Engine::drivers() const { return impl_->drivers(); }
bool Engine::WaitIdleForTesting(std::chrono::milliseconds timeout) {
  return impl_->WaitIdle(timeout);
}

}  // namespace sked
