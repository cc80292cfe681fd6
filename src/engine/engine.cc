#include "sked/engine.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stop_token>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "engine/fire_planner.h"
#include "sked/schedule.h"
#include "sked/time_zone.h"

namespace sked {
namespace {

using engine_internal::PlanFires;
using engine_internal::PlannerOptions;
using engine_internal::PlanRetry;

std::string HostName() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
  return host;
}

std::string DefaultInstanceId() { return HostName() + ":" + std::to_string(::getpid()); }

Histogram NewHistogram(std::vector<double> bounds) {
  Histogram h;
  h.counts.assign(bounds.size(), 0);
  h.bounds = std::move(bounds);
  return h;
}

double Seconds(Duration d) { return static_cast<double>(d.count()) / 1e6; }

// How long a due, claimed run waits in memory for a free worker before it is
// released to the shared queue: alone, and when live peers could take it.
constexpr Duration kHoldReady = std::chrono::seconds(1);
constexpr Duration kHoldReadyInFleet = std::chrono::milliseconds(100);

// A burst is claimed early by at most this much; its size is counted up to
// kLeadCountLimit fires.
constexpr Duration kMaxClaimLead = std::chrono::seconds(5);
constexpr std::int64_t kLeadCountLimit = 200000;

}  // namespace

std::string_view InstanceStateName(InstanceState state) {
  switch (state) {
    case InstanceState::kAlive:
      return "alive";
    case InstanceState::kDead:
      return "dead";
    case InstanceState::kStopped:
      return "stopped";
  }
  return "dead";
}

InstanceState InstanceStateAt(const InstanceInfo& instance, Instant now, Duration lease) {
  if (instance.stopped_at) return InstanceState::kStopped;
  if (now - instance.heartbeat_at > lease) return InstanceState::kDead;
  // On this host a process that is gone is dead now, not a lease later. (A
  // pid reused by another process keeps it "alive" until the lease says.)
  if (instance.host == HostName() && instance.pid > 0 && instance.pid != ::getpid() &&
      ::kill(static_cast<pid_t>(instance.pid), 0) != 0 && errno == ESRCH) {
    return InstanceState::kDead;
  }
  return InstanceState::kAlive;
}

namespace {

// Running runs, and how many of them hold a lease that expired before `now`
// (not reaped yet): one rule for the engine's health and the store's.
struct RunningLeases {
  std::int64_t running = 0;
  std::int64_t stale = 0;
};
Result<RunningLeases> CountRunningLeases(Store& store, Instant now) {
  RunFilter running;
  running.status = RunStatus::kRunning;
  running.limit = 100000;
  SKED_ASSIGN_OR_RETURN(std::vector<Run> runs, store.ListRuns(running));
  RunningLeases out;
  out.running = static_cast<std::int64_t>(runs.size());
  for (const Run& r : runs) out.stale += r.lease_expires_at && *r.lease_expires_at < now;
  return out;
}

std::string StaleLeaseIssue(std::int64_t stale) {
  return std::to_string(stale) + " run(s) hold an expired lease";
}

}  // namespace

Result<StoreHealth> StoreHealthAt(Store& store, Instant now, Duration lease) {
  StoreHealth h;
  SKED_ASSIGN_OR_RETURN(std::vector<InstanceInfo> instances, store.ListInstances());
  for (const InstanceInfo& i : instances) {
    if (InstanceStateAt(i, now, lease) == InstanceState::kAlive) h.alive.push_back(i);
  }
  if (h.alive.empty()) {
    h.issues.push_back("no sked instance is alive (none heartbeated within the lease of " +
                       FormatDuration(lease) + ", or their processes on this host are gone)");
  }
  SKED_ASSIGN_OR_RETURN(h.active_jobs, store.CountJobs(JobState::kActive));
  SKED_ASSIGN_OR_RETURN(RunningLeases leases, CountRunningLeases(store, now));
  h.running_runs = leases.running;
  h.stale_leases = leases.stale;
  if (h.stale_leases > 0) h.issues.push_back(StaleLeaseIssue(h.stale_leases));
  h.queue_depth = store.QueueDepth().value_or(-1);
  h.healthy = h.issues.empty();
  return h;
}

void Histogram::Observe(double seconds) {
  ++count;
  sum += seconds;
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (seconds <= bounds[i]) ++counts[i];
  }
}

class Engine::Impl {
 public:
  Impl(EngineOptions options, Store* store, DriverRegistry* drivers, Clock* clock)
      : options_(std::move(options)),
        store_(store),
        drivers_(drivers),
        base_clock_(clock),
        clock_(this),
        rng_(std::random_device{}()) {
    if (options_.instance_id.empty()) options_.instance_id = DefaultInstanceId();
    options_.workers = std::max(1, options_.workers);
    options_.claim_ahead = std::max(Duration(0), options_.claim_ahead);
    metrics_.fire_lag =
        NewHistogram({0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60});
    metrics_.run_duration = NewHistogram({0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600});
  }
  ~Impl() { Stop(); }

  Status Start();
  void Stop();
  void EndShutdownGrace();

  Result<Job> CreateJob(const JobSpec& spec, std::string_view source);
  Result<Job> UpdateJob(std::string_view name, const JobSpec& spec, std::int64_t version);
  Result<Job> ValidateJob(const JobSpec& spec) {
    return BuildJob(spec, base_clock_->Now(), std::nullopt);
  }
  Result<Job> DisableJob(std::string_view name, std::string_view reason);
  Result<Job> SetPaused(std::string_view name, bool paused);
  Status DeleteJob(std::string_view name);
  Result<Job> GetJob(std::string_view name);
  Result<std::vector<Job>> ListJobs(const JobFilter& filter);
  Result<Run> TriggerJob(std::string_view name);
  Status CancelRun(std::int64_t run_id);
  MetricsSnapshot Metrics();
  HealthSnapshot Health();
  bool WaitIdle(std::chrono::milliseconds timeout);

  Store* store() { return store_; }
  const std::string& instance_id() const { return options_.instance_id; }

 private:
  // The clock drivers see: the engine's clock, counting who waits on it so
  // WaitIdle can tell a driver sleeping on (simulated) time from one working.
  class DriverClock final : public Clock {
   public:
    explicit DriverClock(Impl* impl) : impl_(impl) {}
    Instant Now() override { return impl_->base_clock_->Now(); }
    bool AwaitWithDeadline(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                           Instant deadline, const std::function<bool()>& ready) override {
      std::multiset<Instant>::iterator it;
      {
        std::lock_guard<std::mutex> l(impl_->mu_);
        it = impl_->driver_waits_.insert(deadline);
      }
      impl_->idle_cv_.notify_all();
      const bool r = impl_->base_clock_->AwaitWithDeadline(lock, cv, deadline, ready);
      {
        std::lock_guard<std::mutex> l(impl_->mu_);
        impl_->driver_waits_.erase(it);
      }
      return r;
    }

   private:
    Impl* impl_;
  };

  struct Execution {
    Run run;
    std::stop_source stop;
    Instant deadline;                  // timeout
    bool deadline_known = false;       // from the job's timeout (else the default)
    std::optional<RunStatus> stop_as;  // timed_out or cancelled, once stop is requested
    std::string stop_reason;
    std::optional<Instant> stopped_at;
  };

  // Services.
  void LoopThread();
  void WorkerThread();
  void PeriodicThread(Duration interval, const std::function<void(Instant)>& tick, bool* parked,
                      Instant* deadline);

  // One pass of the scheduler loop; returns when it next wants to run.
  Instant Pass(Instant now);
  // Writes what became of reserved runs; when the store refuses, the batch is
  // kept for the next pass.
  void RecordDispatches();
  void SettlePending();
  void ClaimFires(Instant now);
  // Reserves queued runs for this instance's workers (ready_).
  void ReserveQueued(Instant now);
  void EnforceDeadlines(Instant now);
  void PollCancels(Instant now);
  void Execute(std::int64_t run_id);
  // Moves reserved runs due by `now` to ready_. REQUIRES: mu_ held.
  void PromoteDue(Instant now);
  // Starts a reserved run on the calling worker if its job's overlap policy
  // and starting deadline allow, else releases it to the queue (or skips
  // it); returns the run id to execute. REQUIRES: mu_ held.
  std::optional<std::int64_t> DispatchLocked(Run run, Instant now);
  // Fires claimed but not started are given back (un-claimed): whoever
  // claims them next, a peer now or this instance after a restart, applies
  // the job's misfire policy, so none runs later as if on time (shutdown).
  // REQUIRES: mu_ held.
  void GiveBackClaimsLocked(Instant now);
  // Adds a started run to executing_. REQUIRES: mu_ held.
  void AddExecution(Execution e);
  // Forgets reserved runs matching `pred` (cancelled or deleted here).
  // REQUIRES: mu_ held.
  void DropReserved(const std::function<bool(const Run&)>& pred);
  Result<Schedule> ScheduleFor(const Job& job);
  // The run's job at the version the run saw, from a cache the claimer
  // fills (most runs), or the store.
  Result<Job> CachedJob(const Run& run);
  // Marks `e` stopped; the stop token fires in FlushStops(), outside mu_,
  // since a driver's stop callback may take the driver's own lock, which
  // the driver holds while it waits on the clock (and so takes mu_).
  // REQUIRES: mu_ held.
  void RequestStop(Execution& e, RunStatus as, std::string reason, Instant now);
  // REQUIRES: mu_ not held.
  void FlushStops();
  void Wake();
  void OnStoreEvent(StoreEvent e);
  // How long a due run waits in ready_ for a worker of this instance before
  // it goes to the shared queue: briefly when peers could start it.
  // REQUIRES: mu_ held.
  Duration HoldReady() const { return live_peers_ > 0 ? kHoldReadyInFleet : kHoldReady; }
  // How many ready runs this instance keeps however long they waited: as many
  // as it started in the last hold (at least one per worker). REQUIRES: mu_.
  size_t KeepReadyLocked(Instant now);
  // Releases to the shared queue the ready runs past those kept that waited
  // longer than a hold. REQUIRES: mu_ held.
  void ReleaseStalledLocked(Instant now);
  // How long before `due` to start claiming: claim_ahead, plus the time the
  // fires due by then take to claim at the cost per fire measured so far (a
  // burst of 10,000 fires is claimed by its instant).
  Duration ClaimLead(Instant due);
  // Counts the other instances heartbeating on this store (live_peers_).
  void CountLivePeers(Instant now);
  // A job was created or changed here: claim on the next pass.
  void JobsChanged();

  // Validation shared by create and update: everything but the version.
  Result<Job> BuildJob(const JobSpec& spec, Instant now, std::optional<Job> existing);
  Job View(Job job, Instant now) const;

  // Constant after construction.
  EngineOptions options_;
  Store* const store_;
  DriverRegistry* const drivers_;
  Clock* const base_clock_;
  DriverClock clock_;

  std::mutex mu_;
  std::condition_variable loop_cv_;  // wakes the scheduler loop
  std::condition_variable work_cv_;  // wakes workers
  std::condition_variable idle_cv_;  // WaitIdle
  std::condition_variable periodic_cv_;
  bool started_ = false;              // guarded by mu_
  bool draining_ = false;             // stop claiming and starting
  bool stopping_ = false;             // services exit
  bool wake_ = false;                 // the loop should run a pass now
  bool grace_ended_ = false;          // EndShutdownGrace() was called
  std::string reported_store_error_;  // the last one told to the observer
  bool loop_parked_ = false;
  Instant loop_deadline_{};
  bool heartbeat_parked_ = false, reaper_parked_ = false;
  Instant heartbeat_deadline_{}, reaper_deadline_{};
  std::optional<Instant> last_pass_at_;
  std::unordered_map<std::int64_t, Execution> executing_;
  std::deque<std::int64_t> work_;  // started runs waiting for a worker
  // Fires claimed ahead and reserved for this instance, by (not_before,
  // -priority, id), until they are due; then in ready_, in that order, until
  // a worker is free.
  std::map<std::tuple<Instant, int, std::int64_t>, Run> reserved_;
  // A due run waiting here for a worker, since `since` (its not_before, or
  // when it was reserved from the queue).
  struct Ready {
    Run run;
    Instant since;
  };
  std::deque<Ready> ready_;
  std::vector<Dispatch> dispatches_;                    // what became of reserved runs, to record
  std::unordered_set<std::int64_t> unrecorded_starts_;  // started, not yet written
  Instant hold_check_at_{};            // when the oldest ready run goes to the queue
  std::deque<Instant> recent_starts_;  // runs started here within the last hold
  std::unordered_map<std::int64_t, int> running_by_job_;  // executing runs per job
  std::vector<RunOutcome> outcomes_;                      // finished runs waiting to be settled
  std::multiset<Instant> driver_waits_;
  std::vector<std::stop_source> pending_stops_;
  MetricsSnapshot metrics_;
  std::optional<Instant> last_escape_at_;  // a run's process escaped its group
  std::string last_store_error_;
  Instant next_cancel_poll_{};
  // When to claim next: claim_ahead before the next fire the store knows of
  // (or at it, for a busy job that is judged at the instant); a local job
  // change resets it. Other processes' changes are seen within poll_interval.
  Instant next_claim_{};
  // The horizon of the next claim when it starts early for a burst (else
  // Instant::min(): now + claim_ahead).
  Instant claim_until_ = Instant::min();
  double claim_us_per_fire_ = 50;  // claim time per fire, moving average
  int live_peers_ = 0;             // other instances seen heartbeating (fleet mode)
  std::mt19937_64 rng_;
  // Jobs as last seen (by the claimer, or a worker's read), with their parsed
  // schedule once the claimer needed it; an entry is replaced when the
  // job's version changes.
  struct CachedJobEntry {
    Job job;
    std::optional<Schedule> schedule;
  };
  std::unordered_map<std::int64_t, CachedJobEntry> jobs_;

  std::vector<std::thread> threads_;
};

// ---------------------------------------------------------------- lifecycle

Status Engine::Impl::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (started_) return FailedPreconditionError("engine already started");
  }
  SKED_ASSIGN_OR_RETURN(int version, store_->SchemaVersion());
  if (version != store_->LatestSchemaVersion()) {
    return FailedPreconditionError(
        "store schema version " + std::to_string(version) + ", this sked needs " +
        std::to_string(store_->LatestSchemaVersion()) + " (run sked migrate)");
  }
  const Instant now = base_clock_->Now();
  // An instance id belongs to one live process: a second one under the same
  // id would end the first one's leases (its runs reaped while they run).
  SKED_ASSIGN_OR_RETURN(std::vector<InstanceInfo> instances, store_->ListInstances());
  std::optional<InstanceInfo> earlier;
  for (const InstanceInfo& i : instances) {
    if (i.id == options_.instance_id) earlier = i;
  }
  auto taken = [&](const InstanceInfo& holder) {
    return FailedPreconditionError(
        "instance id '" + options_.instance_id + "' is in use by a live instance (host " +
        holder.host + ", pid " + std::to_string(holder.pid) + ", last heartbeat " +
        FormatRfc3339Utc(holder.heartbeat_at, 0) +
        "); give this one another [scheduler] instance_id, or stop that one (an instance that "
        "died holds its id until its lease of " +
        FormatDuration(options_.lease) + " ends, unless it ran on this host)");
  };
  if (earlier && InstanceStateAt(*earlier, now, options_.lease) == InstanceState::kAlive) {
    return taken(*earlier);
  }
  const InstanceInfo self{options_.instance_id,
                          HostName(),
                          static_cast<std::int64_t>(::getpid()),
                          SKED_VERSION,
                          now,
                          now,
                          {}};
  if (Status s = store_->RegisterInstance(self, earlier); !s.ok()) {
    if (s.code() != StatusCode::kAlreadyExists) return s;
    // Another process registered the id between our look and our write.
    auto again = store_->ListInstances();
    if (again.ok()) {
      for (const InstanceInfo& i : *again) {
        if (i.id == options_.instance_id) return taken(i);
      }
    }
    return FailedPreconditionError("instance id '" + options_.instance_id +
                                   "' was taken by another process starting at the same time");
  }
  CountLivePeers(now);
  // Runs an earlier process under this instance id left behind (killed
  // before it settled them) cannot be finished by this one: their leases end
  // now, so the reaper settles them as abandoned (and retries them by policy)
  // instead of this process's heartbeats keeping them alive.
  SKED_RETURN_IF_ERROR(store_->ExtendLeases(options_.instance_id, now, now - Duration(1)));
  for (const std::string& name : drivers_->Names()) {
    Driver* d = drivers_->Find(name);
    (void)store_->UpsertJobType({name, name, std::string(d->description()), false});
  }
  std::lock_guard<std::mutex> l(mu_);
  started_ = true;
  next_cancel_poll_ = now;
  threads_.emplace_back([this] { LoopThread(); });
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { WorkerThread(); });
  threads_.emplace_back([this] {
    PeriodicThread(
        options_.heartbeat,
        [this](Instant at) {
          Status s = store_->Heartbeat(options_.instance_id, at);
          if (s.ok()) s = store_->ExtendLeases(options_.instance_id, at, at + options_.lease);
          if (s.ok()) CountLivePeers(at);
          std::lock_guard<std::mutex> g(mu_);
          last_store_error_ = s.ok() ? "" : s.message();
        },
        &heartbeat_parked_, &heartbeat_deadline_);
  });
  threads_.emplace_back([this] {
    PeriodicThread(
        options_.lease / 2,
        [this](Instant at) {
          auto reaped = store_->ReapExpired(
              at, options_.settle_batch, [this, at](const Job& job, const Run& run) {
                std::lock_guard<std::mutex> g(mu_);
                auto r = PlanRetry(job, run, RunStatus::kAbandoned, at,
                                   std::uniform_real_distribution<double>(0, 1)(rng_));
                if (r) ++metrics_.retries_scheduled;
                return r;
              });
          if (!reaped.ok()) return;
          {
            std::lock_guard<std::mutex> g(mu_);
            metrics_.reaped += static_cast<std::int64_t>(reaped->size());
            metrics_.runs_by_status["abandoned"] += static_cast<std::int64_t>(reaped->size());
          }
          // A retry may now be queued: let the loop look.
          if (!reaped->empty()) Wake();
        },
        &reaper_parked_, &reaper_deadline_);
  });
  // Other instances' changes arrive within milliseconds where the store can
  // tell (PostgreSQL's NOTIFY); polling every poll_interval stays the fallback.
  store_->SetListener([this](StoreEvent e) { OnStoreEvent(e); });
  return Status::Ok();
}

void Engine::Impl::CountLivePeers(Instant now) {
  auto instances = store_->ListInstances();
  if (!instances.ok()) return;
  int peers = 0;
  for (const InstanceInfo& i : *instances) {
    peers += i.id != options_.instance_id &&
             InstanceStateAt(i, now, options_.lease) == InstanceState::kAlive;
  }
  std::lock_guard<std::mutex> l(mu_);
  live_peers_ = peers;
}

void Engine::Impl::OnStoreEvent(StoreEvent e) {
  if (e == StoreEvent::kJobsChanged || e == StoreEvent::kReconnected) JobsChanged();
  if (e == StoreEvent::kCancelRequested || e == StoreEvent::kReconnected) {
    std::lock_guard<std::mutex> l(mu_);
    next_cancel_poll_ = Instant::min();
  }
  Wake();  // a run queued elsewhere, a cancel to look at
}

void Engine::Impl::Stop() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!started_ || stopping_) return;
  draining_ = true;
  wake_ = true;
  loop_cv_.notify_all();
  // Let running runs finish within the grace period.
  const Instant grace_end = base_clock_->Now() + options_.shutdown_grace;
  base_clock_->AwaitWithDeadline(lock, idle_cv_, grace_end,
                                 [this] { return executing_.empty() || grace_ended_; });
  // Then stop the rest, and wait for their drivers to return.
  const Instant now = base_clock_->Now();
  for (auto& [id, e] : executing_) RequestStop(e, RunStatus::kCancelled, "shutdown", now);
  lock.unlock();
  FlushStops();
  lock.lock();
  idle_cv_.wait(lock, [this] { return executing_.empty(); });
  stopping_ = true;
  loop_cv_.notify_all();
  work_cv_.notify_all();
  periodic_cv_.notify_all();
  lock.unlock();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  store_->SetListener({});  // no engine lock held: a call in flight may need it
  // What the loop had no pass left to give back.
  lock.lock();
  GiveBackClaimsLocked(base_clock_->Now());
  lock.unlock();
  RecordDispatches();
  SettlePending();
  (void)store_->DeregisterInstance(options_.instance_id, base_clock_->Now());
}

void Engine::Impl::GiveBackClaimsLocked(Instant now) {
  for (auto& [key, run] : reserved_) ready_.push_back({std::move(run), now});
  reserved_.clear();
  for (const Ready& r : ready_) {
    dispatches_.push_back({r.run.id, Dispatch::Kind::kGivenBack, now, 0, ""});
  }
  ready_.clear();
}

void Engine::Impl::EndShutdownGrace() {
  {
    std::lock_guard<std::mutex> l(mu_);
    grace_ended_ = true;
  }
  idle_cv_.notify_all();
}

void Engine::Impl::JobsChanged() {
  {
    std::lock_guard<std::mutex> l(mu_);
    next_claim_ = Instant::min();
    wake_ = true;
  }
  loop_cv_.notify_all();
}

void Engine::Impl::Wake() {
  {
    std::lock_guard<std::mutex> l(mu_);
    wake_ = true;
  }
  loop_cv_.notify_all();
}

// ---------------------------------------------------------------- the loop

void Engine::Impl::LoopThread() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    wake_ = false;
    lock.unlock();
    const Instant now = base_clock_->Now();
    const Instant next = Pass(now);
    lock.lock();
    last_pass_at_ = now;
    if (wake_ || stopping_) continue;
    loop_parked_ = true;
    loop_deadline_ = next;
    idle_cv_.notify_all();
    base_clock_->AwaitWithDeadline(lock, loop_cv_, next, [this] { return wake_ || stopping_; });
    loop_parked_ = false;
  }
}

Instant Engine::Impl::Pass(Instant now) {
  {
    std::lock_guard<std::mutex> l(mu_);
    // Shutting down: nothing claimed will start here any more; give it back
    // at once (peers claim it now, a restart judges it by the misfire policy).
    if (draining_) GiveBackClaimsLocked(now);
    ReleaseStalledLocked(now);
  }
  RecordDispatches();
  SettlePending();
  bool draining, claim;
  {
    std::lock_guard<std::mutex> l(mu_);
    draining = draining_;
    claim = !draining && now >= next_claim_;
  }
  if (claim) ClaimFires(now);
  bool ready;
  {
    std::lock_guard<std::mutex> l(mu_);
    PromoteDue(base_clock_->Now());
    ready = !ready_.empty();
  }
  if (ready && !draining) {
    // Still held: look again when the next one may be released. (Workers
    // may have taken them all since the lock was last held.)
    std::lock_guard<std::mutex> l(mu_);
    if (!ready_.empty()) {
      const size_t keep = std::min(ready_.size() - 1, KeepReadyLocked(now));
      hold_check_at_ = std::max(ready_[keep].since + HoldReady() + Duration(1),
                                base_clock_->Now() + HoldReady() / 4);
    }
  }
  if (ready) work_cv_.notify_all();
  if (!draining) ReserveQueued(now);
  PollCancels(now);
  EnforceDeadlines(now);

  // Sleep until the earliest thing that needs doing.
  Instant next = now + options_.poll_interval;
  if (!draining) {
    if (claim) {
      const Instant horizon = now + options_.claim_ahead;
      Instant at = now + options_.poll_interval;
      Instant until = Instant::min();
      if (auto due = store_->NextDueAt(); due.ok() && *due) {
        if (**due <= horizon) {
          // A fire still at or before the horizon belongs to a busy job (or
          // a batch cut short): claim it at its instant.
          at = std::min(at, **due);
        } else if (const Instant early = **due - ClaimLead(**due); early < at) {
          at = early;
          until = **due + options_.claim_ahead;
        }
      }
      std::lock_guard<std::mutex> l(mu_);
      next_claim_ = at;
      claim_until_ = until;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      next = std::min(next, next_claim_);
      if (!reserved_.empty()) next = std::min(next, std::get<0>(reserved_.begin()->first));
      if (!ready_.empty()) next = std::min(next, hold_check_at_);
    }
    bool free_slot;
    {
      std::lock_guard<std::mutex> l(mu_);
      free_slot = static_cast<int>(executing_.size()) < options_.workers;
    }
    // A queued run already due but not started is held by its job's overlap
    // policy: a finishing run wakes the loop (or the poll sees another
    // process's), so only future not_before times (retry backoff) count here.
    if (free_slot) {
      if (auto q = store_->NextQueuedAt(); q.ok() && *q && **q > now) next = std::min(next, **q);
    }
  }
  std::string store_error;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (last_store_error_ != reported_store_error_) {
      reported_store_error_ = last_store_error_;
      store_error = last_store_error_;
    }
  }
  if (!store_error.empty() && options_.observer != nullptr) {
    options_.observer->OnStoreError(UnavailableError(store_error));
  }
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [id, e] : executing_) {
    if (!e.stop_as) next = std::min(next, e.deadline);
  }
  next = std::min(next, next_cancel_poll_);
  return std::max(next, now + Duration(1));
}

size_t Engine::Impl::KeepReadyLocked(Instant now) {
  while (!recent_starts_.empty() && recent_starts_.front() + HoldReady() < now) {
    recent_starts_.pop_front();
  }
  return std::max(static_cast<size_t>(options_.workers), recent_starts_.size());
}

void Engine::Impl::ReleaseStalledLocked(Instant now) {
  // The first KeepReadyLocked() ready runs stay whatever their age: the
  // workers reach them within a hold at the pace they start runs now (a burst
  // of short runs drains in memory, not through the shared queue). Those past
  // them that waited longer than a hold go to the queue, where any instance
  // may start them, in priority order with everything else.
  const size_t keep = KeepReadyLocked(now);
  if (ready_.size() <= keep) return;
  std::deque<Ready> kept;
  for (size_t i = 0; i < ready_.size(); ++i) {
    if (i >= keep && ready_[i].since + HoldReady() < now) {
      dispatches_.push_back({ready_[i].run.id, Dispatch::Kind::kReleased, now, 0, ""});
    } else {
      kept.push_back(std::move(ready_[i]));
    }
  }
  ready_.swap(kept);
}

void Engine::Impl::RecordDispatches() {
  std::vector<Dispatch> batch;
  {
    std::lock_guard<std::mutex> l(mu_);
    batch.swap(dispatches_);
  }
  if (batch.empty()) return;
  auto applied =
      store_->RecordDispatches(options_.instance_id, batch, base_clock_->Now() + options_.lease);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!applied.ok()) {
      last_store_error_ = applied.status().message();
      dispatches_.insert(dispatches_.begin(), std::make_move_iterator(batch.begin()),
                         std::make_move_iterator(batch.end()));
      return;
    }
    const Instant now = base_clock_->Now();
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].kind == Dispatch::Kind::kStarted) unrecorded_starts_.erase(batch[i].run_id);
      if ((*applied)[i] || batch[i].kind != Dispatch::Kind::kStarted) continue;
      // Cancelled, deleted or reaped between the claim and the start: the
      // run's record is final already, so stop what the worker began.
      auto it = executing_.find(batch[i].run_id);
      if (it != executing_.end()) {
        RequestStop(it->second, RunStatus::kCancelled, "cancelled before its start was recorded",
                    now);
      }
    }
  }
  FlushStops();
}

void Engine::Impl::SettlePending() {
  std::vector<RunOutcome> batch;
  {
    std::lock_guard<std::mutex> l(mu_);
    batch.swap(outcomes_);
    // A run's end is written after its start: a run a worker took from
    // memory may finish before the loop has recorded that it started.
    auto waiting = std::stable_partition(batch.begin(), batch.end(), [this](const RunOutcome& o) {
      return !unrecorded_starts_.contains(o.run_id);
    });
    outcomes_.assign(std::make_move_iterator(waiting), std::make_move_iterator(batch.end()));
    batch.erase(waiting, batch.end());
  }
  for (size_t from = 0; from < batch.size(); from += static_cast<size_t>(options_.settle_batch)) {
    const size_t to = std::min(batch.size(), from + static_cast<size_t>(options_.settle_batch));
    std::vector<RunOutcome> part(std::make_move_iterator(batch.begin() + static_cast<long>(from)),
                                 std::make_move_iterator(batch.begin() + static_cast<long>(to)));
    auto applied = store_->SettleRuns(part);
    std::lock_guard<std::mutex> l(mu_);
    if (!applied.ok()) {
      last_store_error_ = applied.status().message();
      // Keep them for the next pass: the store may come back.
      for (RunOutcome& o : part) outcomes_.push_back(std::move(o));
      continue;
    }
    for (size_t i = 0; i < part.size(); ++i) {
      if (!(*applied)[i]) continue;  // fenced out: settled elsewhere
      ++metrics_.runs_by_status[std::string(RunStatusName(part[i].status))];
      if (part[i].retry) ++metrics_.retries_scheduled;
    }
  }
}

Result<Job> Engine::Impl::CachedJob(const Run& run) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = jobs_.find(run.job_id);
    if (it != jobs_.end() && it->second.job.version == run.job_version) return it->second.job;
  }
  SKED_ASSIGN_OR_RETURN(Job job, store_->GetJob(run.job_id));
  std::lock_guard<std::mutex> l(mu_);
  jobs_.insert_or_assign(job.id, CachedJobEntry{job, std::nullopt});
  return job;
}

Result<Schedule> Engine::Impl::ScheduleFor(const Job& job) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = jobs_.find(job.id);
    if (it != jobs_.end() && it->second.job.version == job.version && it->second.schedule) {
      return *it->second.schedule;
    }
  }
  SKED_ASSIGN_OR_RETURN(TimeZone zone, TimeZone::Find(job.spec.time_zone));
  SKED_ASSIGN_OR_RETURN(Schedule s,
                        Schedule::Parse(job.spec.schedule, zone, std::chrono::seconds(0),
                                        job.spec.start_at.value_or(job.created_at)));
  std::lock_guard<std::mutex> l(mu_);
  jobs_.insert_or_assign(job.id, CachedJobEntry{job, s});
  return s;
}

Duration Engine::Impl::ClaimLead(Instant due) {
  if (options_.claim_ahead <= Duration(0)) return Duration(0);  // claims at the instant
  auto n = store_->CountDue(due + options_.claim_ahead, kLeadCountLimit);
  std::lock_guard<std::mutex> l(mu_);
  if (!n.ok()) return options_.claim_ahead;
  // All of them, not this instance's share: instances claiming at once share
  // the database's (and often the host's) cores, so a share is not claimed
  // any faster than the whole, and the cost per fire measured alone is low.
  const auto claiming = std::chrono::duration_cast<Duration>(
      std::chrono::duration<double, std::micro>(static_cast<double>(*n) * claim_us_per_fire_));
  return options_.claim_ahead + std::min(claiming, std::min(kMaxClaimLead, options_.lease / 4));
}

void Engine::Impl::ClaimFires(Instant now) {
  const PlannerOptions planner{options_.misfire_threshold, options_.max_catchup_runs};
  Instant until;
  {
    std::lock_guard<std::mutex> l(mu_);
    until = claim_until_;
    claim_until_ = Instant::min();
  }
  // Bounded: each round claims a full batch or ends the pass.
  for (int round = 0; round < 64; ++round) {
    const Instant horizon = std::max(now + options_.claim_ahead, until);
    // Alone, an instance claims every due fire, a batch at a time. With live
    // peers it takes a share per batch (claim_batch / instances, at least its
    // free workers) and claims no further batch while due runs wait for its
    // workers: the rest stay due for the peers, which wake at the same instant
    // and skip what this one has locked.
    int limit = options_.claim_batch;
    bool share = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (live_peers_ > 0) {
        share = true;
        const int free = options_.workers - static_cast<int>(executing_.size());
        limit = std::clamp(std::max(free, options_.claim_batch / (live_peers_ + 1)), 1,
                           options_.claim_batch);
      }
    }
    const ClaimRequest request{now, horizon, limit, options_.instance_id, horizon + options_.lease};
    std::unordered_set<std::int64_t> claimed_jobs;  // a store may retry the transaction
    const Instant claim_start = base_clock_->Now();
    auto runs = store_->ClaimDue(request, [&](const DueJob& due) {
      claimed_jobs.insert(due.job.id);
      auto schedule = ScheduleFor(due.job);
      if (!schedule.ok()) {
        // A job whose stored schedule no longer parses (e.g. tz data changed): stop it.
        FirePlan stop;
        stop.state = JobState::kDisabled;
        return stop;
      }
      return PlanFires(due, *schedule, now, horizon, planner);
    });
    if (!runs.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      last_store_error_ = runs.status().message();
      return;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      last_store_error_.clear();
      if (claimed_jobs.size() >= 16) {  // a batch big enough to tell the cost per fire
        const double us =
            std::chrono::duration<double, std::micro>(base_clock_->Now() - claim_start).count() /
            static_cast<double>(claimed_jobs.size());
        claim_us_per_fire_ = 0.7 * claim_us_per_fire_ + 0.3 * us;
      }
      for (Run& r : *runs) {
        ++metrics_.fires_claimed;
        if (r.status == RunStatus::kSkipped) {
          ++metrics_.skipped_by_reason[r.reason];
          ++metrics_.runs_by_status["skipped"];
        } else if (r.status == RunStatus::kQueued && !r.instance_id.empty()) {
          reserved_.emplace(std::make_tuple(r.not_before, -r.priority, r.id), std::move(r));
        }
      }
      // Workers start what is due already while the next batch is claimed.
      PromoteDue(base_clock_->Now());
    }
    work_cv_.notify_all();
    if (static_cast<int>(claimed_jobs.size()) < limit) return;
    if (share) {
      std::lock_guard<std::mutex> l(mu_);
      if (!ready_.empty()) return;  // due runs wait for workers: the next pass claims more
    }
  }
}

void Engine::Impl::ReserveQueued(Instant pass_start) {
  // A run's start time is when it is handed to a worker, not when the pass
  // began: fire lag must not hide the time spent claiming.
  const Instant now = std::max(pass_start, base_clock_->Now());
  int limit;
  {
    std::lock_guard<std::mutex> l(mu_);
    // Claimed fires first: the queue is served when they are nearly all taken.
    if (static_cast<int>(ready_.size()) >= options_.workers) return;
    // As many as the workers are free for, or start within a hold at their
    // present pace (a queue of short runs drains in batches), within this
    // instance's share of a claim batch.
    const int free = options_.workers - static_cast<int>(executing_.size());
    const int pace = static_cast<int>(KeepReadyLocked(now)) - options_.workers;
    const int share = options_.claim_batch / (live_peers_ + 1);
    limit = std::clamp(std::max(free, pace), 1, std::max(1, share));
  }
  auto reserved = store_->ReserveQueued(options_.instance_id, now, limit, now + options_.lease);
  if (!reserved.ok()) {
    std::lock_guard<std::mutex> l(mu_);
    last_store_error_ = reserved.status().message();
    return;
  }
  bool any = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (Job& job : reserved->jobs) {
      const std::int64_t id = job.id;
      auto it = jobs_.find(id);
      if (it == jobs_.end() || it->second.job.version != job.version) {
        jobs_.insert_or_assign(id, CachedJobEntry{std::move(job), std::nullopt});
      }
    }
    for (Run& r : reserved->runs) {
      if (r.status == RunStatus::kSkipped) {
        ++metrics_.skipped_by_reason[r.reason];
        ++metrics_.runs_by_status["skipped"];
        continue;
      }
      ready_.push_back({std::move(r), now});
      any = true;
    }
  }
  if (any) work_cv_.notify_all();
}

void Engine::Impl::RequestStop(Execution& e, RunStatus as, std::string reason, Instant now) {
  if (e.stop_as) return;
  e.stop_as = as;
  e.stop_reason = std::move(reason);
  e.stopped_at = now;
  pending_stops_.push_back(e.stop);
}

void Engine::Impl::FlushStops() {
  std::vector<std::stop_source> stops;
  {
    std::lock_guard<std::mutex> l(mu_);
    stops.swap(pending_stops_);
  }
  for (std::stop_source& stop : stops) stop.request_stop();
}

void Engine::Impl::EnforceDeadlines(Instant now) {
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [id, e] : executing_) {
      if (!e.stop_as && e.deadline <= now) RequestStop(e, RunStatus::kTimedOut, "timeout", now);
    }
  }
  FlushStops();
}

void Engine::Impl::PollCancels(Instant now) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (now < next_cancel_poll_) return;
    next_cancel_poll_ = now + options_.poll_interval;
    if (executing_.empty()) return;
  }
  auto runs = store_->CancelRequested(options_.instance_id);
  if (!runs.ok()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const Run& r : *runs) {
      auto it = executing_.find(r.id);
      if (it != executing_.end()) {
        RequestStop(it->second, RunStatus::kCancelled, r.reason.empty() ? "cancelled" : r.reason,
                    now);
      }
    }
  }
  FlushStops();
}

// ---------------------------------------------------------------- workers

void Engine::Impl::WorkerThread() {
  std::unique_lock<std::mutex> lock(mu_);
  auto has_work = [this] { return stopping_ || !work_.empty() || (!ready_.empty() && !draining_); };
  while (true) {
    // Idle workers wake when the earliest reserved fire comes due and take it
    // themselves: the loop may be busy in a long store call (a claim) then.
    while (!has_work()) {
      if (reserved_.empty() || draining_) {
        work_cv_.wait(lock, [&] { return has_work() || (!reserved_.empty() && !draining_); });
        continue;
      }
      const Instant due = std::get<0>(reserved_.begin()->first);
      base_clock_->AwaitWithDeadline(lock, work_cv_, due, [&] {
        return has_work() || draining_ || reserved_.empty() ||
               std::get<0>(reserved_.begin()->first) < due;
      });
      PromoteDue(base_clock_->Now());
    }
    std::int64_t id = 0;
    if (!work_.empty()) {
      id = work_.front();
      work_.pop_front();
    } else if (!ready_.empty() && !draining_) {
      Run run = std::move(ready_.front().run);
      ready_.pop_front();
      std::optional<std::int64_t> started = DispatchLocked(std::move(run), base_clock_->Now());
      // The loop records what happened (and learns a started run's deadline).
      wake_ = true;
      loop_cv_.notify_all();
      if (!started) continue;
      id = *started;
    } else {
      return;  // stopping
    }
    lock.unlock();
    Execute(id);
    lock.lock();
    PromoteDue(base_clock_->Now());
  }
}

void Engine::Impl::PromoteDue(Instant now) {
  while (!reserved_.empty() && std::get<0>(reserved_.begin()->first) <= now) {
    const Instant due = std::get<0>(reserved_.begin()->first);
    ready_.push_back({std::move(reserved_.begin()->second), due});
    reserved_.erase(reserved_.begin());
  }
}

void Engine::Impl::AddExecution(Execution e) {
  ++running_by_job_[e.run.job_id];
  const std::int64_t id = e.run.id;
  executing_.emplace(id, std::move(e));
}

void Engine::Impl::DropReserved(const std::function<bool(const Run&)>& pred) {
  for (auto it = reserved_.begin(); it != reserved_.end();) {
    it = pred(it->second) ? reserved_.erase(it) : std::next(it);
  }
  ready_.erase(
      std::remove_if(ready_.begin(), ready_.end(), [&](const Ready& r) { return pred(r.run); }),
      ready_.end());
}

std::optional<std::int64_t> Engine::Impl::DispatchLocked(Run run, Instant now) {
  auto job = jobs_.find(run.job_id);
  if (job == jobs_.end() || job->second.job.version != run.job_version) {
    // The job changed since the claim: let the queue serve the run.
    dispatches_.push_back({run.id, Dispatch::Kind::kReleased, now, 0, ""});
    return std::nullopt;
  }
  const JobSpec& spec = job->second.job.spec;
  auto skip = [&](const char* reason) {
    dispatches_.push_back({run.id, Dispatch::Kind::kSkipped, now, 0, reason});
    ++metrics_.skipped_by_reason[reason];
    ++metrics_.runs_by_status["skipped"];
    return std::nullopt;
  };
  if (spec.starting_deadline && now > run.scheduled_for + *spec.starting_deadline) {
    return skip("deadline");
  }
  // Claimed while the job was idle; a run started since (a manual trigger,
  // a retry) may hold this one back.
  auto running = running_by_job_.find(run.job_id);
  const int allowed = spec.overlap == OverlapPolicy::kConcurrent ? spec.max_concurrent : 1;
  if (running != running_by_job_.end() && running->second >= allowed) {
    if (spec.overlap == OverlapPolicy::kSkip) return skip("overlap");
    dispatches_.push_back({run.id, Dispatch::Kind::kReleased, now, 0, ""});
    return std::nullopt;
  }
  const std::int64_t token = static_cast<std::int64_t>(rng_() >> 1) | 1;
  dispatches_.push_back({run.id, Dispatch::Kind::kStarted, now, token, ""});
  recent_starts_.push_back(now);
  unrecorded_starts_.insert(run.id);
  run.status = RunStatus::kRunning;
  run.started_at = now;
  run.instance_id = options_.instance_id;
  run.lease_token = token;
  run.lease_expires_at = now + options_.lease;
  if (run.trigger == RunTrigger::kSchedule || run.trigger == RunTrigger::kCatchUp) {
    metrics_.fire_lag.Observe(Seconds(now - run.scheduled_for));
  }
  Execution e;
  e.deadline = now + spec.timeout.value_or(options_.default_timeout);
  e.deadline_known = true;
  e.run = std::move(run);
  const std::int64_t id = e.run.id;
  AddExecution(std::move(e));
  return id;
}

void Engine::Impl::Execute(std::int64_t run_id) {
  Run run;
  std::stop_token token;
  {
    std::lock_guard<std::mutex> l(mu_);
    Execution& e = executing_.at(run_id);
    run = e.run;
    token = e.stop.get_token();
  }
  DriverResult result;
  Result<Job> job = CachedJob(run);
  Driver* driver = job.ok() ? drivers_->Find(job->spec.driver) : nullptr;
  if (!job.ok()) {
    result = DriverResult::Failed("job " + std::to_string(run.job_id) +
                                  " could not be loaded: " + job.status().message());
  } else if (driver == nullptr) {
    result = DriverResult::Failed("no driver named '" + job->spec.driver + "' is registered");
  } else {
    bool told;
    {
      std::lock_guard<std::mutex> l(mu_);
      Execution& e = executing_.at(run_id);
      told = e.deadline_known;
      e.deadline = *run.started_at + job->spec.timeout.value_or(options_.default_timeout);
    }
    if (!told) Wake();  // the loop must learn this run's deadline
    RunContext ctx;
    ctx.run_id = run.id;
    ctx.job_name = job->spec.name;
    ctx.attempt = run.attempt;
    ctx.scheduled_for = run.scheduled_for;
    ctx.config = job->spec.driver_config;
    ctx.clock = &clock_;
    if (options_.observer != nullptr) options_.observer->OnRunStarted(run);
    try {
      result = driver->Execute(ctx, token);
    } catch (const std::exception& ex) {
      result = DriverResult::Failed(std::string("driver '") + job->spec.driver +
                                    "' threw: " + ex.what());
    } catch (...) {
      result = DriverResult::Failed(std::string("driver '") + job->spec.driver +
                                    "' threw an unknown exception");
    }
  }
  const Instant finished = base_clock_->Now();
  std::optional<RunOutcome> observed;
  RunOutcome o;
  o.run_id = run.id;
  o.lease_token = run.lease_token;
  o.finished_at = finished;
  o.exit_code = result.exit_code;
  o.output = std::move(result.output);
  o.output_truncated = result.output_truncated;
  o.result = std::move(result.result);
  o.status = result.status == RunStatus::kSucceeded ? RunStatus::kSucceeded : RunStatus::kFailed;
  o.error = std::move(result.error);
  {
    std::lock_guard<std::mutex> l(mu_);
    Execution& e = executing_.at(run_id);
    if (e.stop_as) {
      o.status = *e.stop_as;
      o.reason = e.stop_reason;
      o.error = *e.stop_as == RunStatus::kTimedOut
                    ? "timed out after " + FormatDuration(e.deadline - *run.started_at)
                    : "cancelled (" + e.stop_reason + ")";
    }
    if (!result.note.empty()) {
      // The run's record says what the driver had to clean up (and the
      // error, when there is one, still says how the run ended).
      o.reason = o.reason.empty() ? result.note : o.reason + "; " + result.note;
    }
    if (result.escaped_processes > 0) {
      metrics_.escaped_processes += result.escaped_processes;
      last_escape_at_ = finished;
    }
    if (job.ok() && o.status != RunStatus::kCancelled) {
      o.retry = PlanRetry(*job, run, o.status, finished,
                          std::uniform_real_distribution<double>(0, 1)(rng_));
    }
    metrics_.run_duration.Observe(Seconds(finished - *run.started_at));
    if (options_.observer != nullptr) observed = o;
    outcomes_.push_back(std::move(o));
    executing_.erase(run_id);
    if (auto it = running_by_job_.find(run.job_id);
        it != running_by_job_.end() && --it->second <= 0) {
      running_by_job_.erase(it);
    }
    wake_ = true;
  }
  loop_cv_.notify_all();
  idle_cv_.notify_all();
  if (observed) options_.observer->OnRunFinished(run, *observed);
}

void Engine::Impl::PeriodicThread(Duration interval, const std::function<void(Instant)>& tick,
                                  bool* parked, Instant* deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    const Instant now = base_clock_->Now();
    tick(now);
    lock.lock();
    *parked = true;
    *deadline = now + interval;
    idle_cv_.notify_all();
    base_clock_->AwaitWithDeadline(lock, periodic_cv_, *deadline, [this] { return stopping_; });
    *parked = false;
  }
}

bool Engine::Impl::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [this] {
    const Instant now = base_clock_->Now();
    // Every executing run sits in a driver waiting on the clock for a later
    // time, and none was asked to stop (a stopped driver is about to return).
    bool drivers_parked = driver_waits_.size() == executing_.size() &&
                          (driver_waits_.empty() || *driver_waits_.begin() > now);
    for (const auto& [id, e] : executing_) drivers_parked = drivers_parked && !e.stop_as;
    return loop_parked_ && !wake_ && loop_deadline_ > now && outcomes_.empty() && work_.empty() &&
           (ready_.empty() || static_cast<int>(executing_.size()) >= options_.workers) &&
           dispatches_.empty() && drivers_parked && heartbeat_parked_ &&
           heartbeat_deadline_ > now && reaper_parked_ && reaper_deadline_ > now;
  });
}

// ---------------------------------------------------------------- jobs

Job Engine::Impl::View(Job job, Instant now) const {
  if (job.state == JobState::kActive && job.spec.start_at && *job.spec.start_at > now) {
    job.state = JobState::kPending;
  }
  return job;
}

Result<Job> Engine::Impl::BuildJob(const JobSpec& spec, Instant now, std::optional<Job> existing) {
  SKED_RETURN_IF_ERROR(ValidateJobSpecShape(spec));
  Driver* driver = drivers_->Find(spec.driver);
  if (driver == nullptr) {
    std::string known;
    for (const std::string& n : drivers_->Names()) known += (known.empty() ? "" : ", ") + n;
    return InvalidArgumentError("driver: unknown driver '" + spec.driver +
                                "' (registered: " + known + ")");
  }
  SKED_RETURN_IF_ERROR(driver->Validate(spec.driver_config).WithContext("driver_config"));
  SKED_ASSIGN_OR_RETURN(TimeZone zone, TimeZone::Find(spec.time_zone));
  const Instant created = existing ? existing->created_at : now;
  SKED_ASSIGN_OR_RETURN(
      Schedule schedule,
      Schedule::Parse(spec.schedule, zone, options_.min_interval, spec.start_at.value_or(created)));
  Job job = existing.value_or(Job());
  job.spec = spec;
  job.created_at = created;
  job.updated_at = now;
  job.state = spec.paused ? JobState::kPaused : JobState::kActive;
  job.state_reason.clear();
  // Fires are computed from the schedule, never from a run's completion.
  const Instant from = spec.start_at && *spec.start_at > now ? *spec.start_at - Duration(1) : now;
  job.next_run_at = schedule.Next(from);
  if (job.next_run_at && spec.end_at && *job.next_run_at > *spec.end_at) job.next_run_at.reset();
  if (!job.next_run_at) {
    if (spec.end_at && *spec.end_at <= now) return InvalidArgumentError("end_at: is in the past");
    return InvalidArgumentError("schedule: '" + spec.schedule + "' has no fire after " +
                                zone.Format(from) + (spec.end_at ? " before end_at" : ""));
  }
  return job;
}

Result<Job> Engine::Impl::CreateJob(const JobSpec& spec, std::string_view source) {
  const Instant now = base_clock_->Now();
  SKED_ASSIGN_OR_RETURN(Job job, BuildJob(spec, now, std::nullopt));
  job.source = std::string(source);
  SKED_ASSIGN_OR_RETURN(Job created, store_->CreateJob(job));
  JobsChanged();
  return View(created, now);
}

Result<Job> Engine::Impl::UpdateJob(std::string_view name, const JobSpec& spec,
                                    std::int64_t version) {
  const Instant now = base_clock_->Now();
  SKED_ASSIGN_OR_RETURN(Job current, store_->GetJobByName(name));
  if (current.version != version) {
    return AbortedError("job '" + std::string(name) + "' changed meanwhile (version " +
                        std::to_string(current.version) + ", expected " + std::to_string(version) +
                        "); reload it and retry");
  }
  SKED_ASSIGN_OR_RETURN(Job job, BuildJob(spec, now, current));
  job.version = version;
  SKED_ASSIGN_OR_RETURN(Job updated, store_->UpdateJob(job));
  JobsChanged();
  return View(updated, now);
}

Result<Job> Engine::Impl::SetPaused(std::string_view name, bool paused) {
  // A few tries: a concurrent edit bumps the version.
  for (int attempt = 0; attempt < 5; ++attempt) {
    SKED_ASSIGN_OR_RETURN(Job job, store_->GetJobByName(name));
    if (job.state == JobState::kExpired || job.state == JobState::kDisabled) {
      return FailedPreconditionError("job '" + std::string(name) + "' is " +
                                     std::string(JobStateName(job.state)));
    }
    JobSpec spec = job.spec;
    spec.paused = paused;
    auto updated = UpdateJob(name, spec, job.version);
    if (updated.ok() || updated.status().code() != StatusCode::kAborted) return updated;
  }
  return AbortedError("job '" + std::string(name) + "' keeps changing; try again");
}

Result<Job> Engine::Impl::DisableJob(std::string_view name, std::string_view reason) {
  for (int attempt = 0; attempt < 5; ++attempt) {  // a concurrent edit bumps the version
    SKED_ASSIGN_OR_RETURN(Job job, store_->GetJobByName(name));
    if (job.state == JobState::kDisabled && job.state_reason == reason) return job;
    job.state = JobState::kDisabled;
    job.state_reason = std::string(reason);
    job.updated_at = base_clock_->Now();
    auto updated = store_->UpdateJob(job);
    if (updated.ok()) {
      JobsChanged();
      return updated;
    }
    if (updated.status().code() != StatusCode::kAborted) return updated.status();
  }
  return AbortedError("job '" + std::string(name) + "' keeps changing; try again");
}

Status Engine::Impl::DeleteJob(std::string_view name) {
  SKED_ASSIGN_OR_RETURN(Job job, store_->GetJobByName(name));
  SKED_RETURN_IF_ERROR(store_->DeleteJob(job.id));
  const Instant now = base_clock_->Now();
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [id, e] : executing_) {
      if (e.run.job_id == job.id) RequestStop(e, RunStatus::kCancelled, "job deleted", now);
    }
    DropReserved([&](const Run& r) { return r.job_id == job.id; });
    jobs_.erase(job.id);
  }
  FlushStops();
  return Status::Ok();
}

Result<Job> Engine::Impl::GetJob(std::string_view name) {
  SKED_ASSIGN_OR_RETURN(Job job, store_->GetJobByName(name));
  return View(job, base_clock_->Now());
}

Result<std::vector<Job>> Engine::Impl::ListJobs(const JobFilter& filter) {
  SKED_ASSIGN_OR_RETURN(std::vector<Job> jobs, store_->ListJobs(filter));
  const Instant now = base_clock_->Now();
  for (Job& j : jobs) j = View(std::move(j), now);
  return jobs;
}

Result<Run> Engine::Impl::TriggerJob(std::string_view name) {
  SKED_ASSIGN_OR_RETURN(Job job, store_->GetJobByName(name));
  const Instant now = base_clock_->Now();
  NewRun r;
  r.trigger = RunTrigger::kManual;
  r.priority = job.spec.priority;
  r.not_before = now;
  // Two triggers in the same microsecond would share a key: step past it.
  for (int i = 0; i < 10; ++i) {
    r.scheduled_for = now + Duration(i);
    auto run = store_->InsertRun(job.id, r, now);
    if (run.ok()) {
      Wake();
      return run;
    }
    if (run.status().code() != StatusCode::kAlreadyExists) return run.status();
  }
  return AbortedError("job '" + std::string(name) + "' is being triggered too fast");
}

Status Engine::Impl::CancelRun(std::int64_t run_id) {
  const Instant now = base_clock_->Now();
  SKED_ASSIGN_OR_RETURN(bool done, store_->RequestCancel(run_id, now, "cancelled by user"));
  if (done) {
    std::lock_guard<std::mutex> l(mu_);
    DropReserved([&](const Run& r) { return r.id == run_id; });
  } else {
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = executing_.find(run_id);
      if (it != executing_.end()) {
        RequestStop(it->second, RunStatus::kCancelled, "cancelled by user", now);
      }
    }
    FlushStops();
  }
  Wake();
  return Status::Ok();
}

MetricsSnapshot Engine::Impl::Metrics() {
  auto depth = store_->QueueDepth();
  std::lock_guard<std::mutex> l(mu_);
  MetricsSnapshot m = metrics_;
  m.queue_depth = depth.value_or(-1);
  m.running = static_cast<std::int64_t>(executing_.size());
  return m;
}

HealthSnapshot Engine::Impl::Health() {
  HealthSnapshot h;
  const Instant now = base_clock_->Now();
  if (auto active = store_->CountJobs(JobState::kActive); active.ok()) {
    h.active_jobs = *active;
  } else {
    h.issues.emplace_back("store: " + active.status().message());
  }
  if (auto leases = CountRunningLeases(*store_, now); leases.ok()) {
    h.running_runs = leases->running;
    h.stale_leases = leases->stale;
  }
  std::lock_guard<std::mutex> l(mu_);
  h.loop_active = started_ && !stopping_;
  h.last_pass_at = last_pass_at_;
  for (const auto& [id, e] : executing_) {
    if (e.stopped_at && now - *e.stopped_at > options_.stuck_after) ++h.stuck_drivers;
  }
  if (!h.loop_active) h.issues.emplace_back("scheduler loop is not running");
  if (h.loop_active && (!last_pass_at_ || now - *last_pass_at_ > 3 * options_.poll_interval +
                                                                     std::chrono::seconds(5))) {
    h.issues.emplace_back("scheduler loop has not run a pass recently");
  }
  if (!last_store_error_.empty()) h.issues.emplace_back("store: " + last_store_error_);
  if (h.stuck_drivers > 0) {
    h.issues.emplace_back(std::to_string(h.stuck_drivers) +
                          " run(s) ignore their stop request (stuck drivers)");
  }
  if (last_escape_at_ && now - *last_escape_at_ < std::chrono::hours(1)) {
    // A job's doing, not the engine's: a warning, so a health probe does not
    // restart a good instance for an hour.
    h.warnings.emplace_back(std::to_string(metrics_.escaped_processes) +
                            " process(es) left their run's process group and were killed (last " +
                            FormatRfc3339Utc(*last_escape_at_, 0) +
                            "); see the runs' notes and docs/drivers.md");
  }
  if (h.stale_leases > 0) h.issues.emplace_back(StaleLeaseIssue(h.stale_leases));
  h.healthy = h.issues.empty();
  return h;
}

// ---------------------------------------------------------------- facade

Engine::Engine(EngineOptions options, Store* store, DriverRegistry* drivers, Clock* clock)
    : impl_(std::make_unique<Impl>(std::move(options), store, drivers, clock)) {}
Engine::~Engine() = default;
Status Engine::Start() { return impl_->Start(); }
void Engine::Stop() { impl_->Stop(); }
void Engine::EndShutdownGrace() { impl_->EndShutdownGrace(); }
Result<Job> Engine::CreateJob(const JobSpec& spec, std::string_view source) {
  return impl_->CreateJob(spec, source);
}
Result<Job> Engine::UpdateJob(std::string_view name, const JobSpec& spec,
                              std::int64_t expected_version) {
  return impl_->UpdateJob(name, spec, expected_version);
}
Result<Job> Engine::ValidateJob(const JobSpec& spec) { return impl_->ValidateJob(spec); }
Result<Job> Engine::DisableJob(std::string_view name, std::string_view reason) {
  return impl_->DisableJob(name, reason);
}
Result<Job> Engine::PauseJob(std::string_view name) { return impl_->SetPaused(name, true); }
Result<Job> Engine::ResumeJob(std::string_view name) { return impl_->SetPaused(name, false); }
Status Engine::DeleteJob(std::string_view name) { return impl_->DeleteJob(name); }
Result<Job> Engine::GetJob(std::string_view name) { return impl_->GetJob(name); }
Result<std::vector<Job>> Engine::ListJobs(const JobFilter& filter) {
  return impl_->ListJobs(filter);
}
Result<Run> Engine::TriggerJob(std::string_view name) { return impl_->TriggerJob(name); }
Status Engine::CancelRun(std::int64_t run_id) { return impl_->CancelRun(run_id); }
Result<Run> Engine::GetRun(std::int64_t run_id) { return impl_->store()->GetRun(run_id); }
Result<std::vector<Run>> Engine::ListRuns(const RunFilter& filter) {
  return impl_->store()->ListRuns(filter);
}
MetricsSnapshot Engine::Metrics() { return impl_->Metrics(); }
HealthSnapshot Engine::Health() { return impl_->Health(); }
const std::string& Engine::instance_id() const { return impl_->instance_id(); }
bool Engine::WaitIdleForTesting(std::chrono::milliseconds timeout) {
  return impl_->WaitIdle(timeout);
}

}  // namespace sked
