// The engine: claims due fires, runs them on worker slots under every run
// policy, and keeps the store's record true. An embedding program creates one
// with a Store, a DriverRegistry and a Clock (all borrowed; they must outlive
// it), calls Start(), and manages jobs through it.
//
// Services (all on the injected Clock; those with a thread have Start/Stop; one file each in
// src/engine/, see docs/architecture.md):
//  - the scheduler loop: sleeps until the next due fire, queued run, timeout
//    or change notification, and runs a pass of the services below;
//  - the claimer: claims fires in batches `claim_ahead` before they are due
//    (earlier for a burst) and reserves queued runs at the workers' pace;
//  - the executor pool: `workers` threads running drivers; a free worker takes
//    a claimed fire from memory the moment it is due; timeouts and cancels;
//  - the settler: writes finished runs in batched transactions;
//  - the lease keeper: registers the instance, heartbeats, extends leases;
//  - the reaper: settles runs whose owner's lease expired as abandoned.

#ifndef SKED_ENGINE_H_
#define SKED_ENGINE_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sked/clock.h"
#include "sked/driver.h"
#include "sked/job.h"
#include "sked/run.h"
#include "sked/status.h"
#include "sked/store.h"
#include "sked/time.h"

namespace sked {

// Told about each run as it starts and ends, and about store errors (for
// logs). Called from engine threads without engine locks held; must be quick
// and thread-safe.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  // `run` is running (started_at set; job_name filled in).
  virtual void OnRunStarted(const Run& run) = 0;
  // `run` as it started; `outcome` how it ended (written to the store next).
  virtual void OnRunFinished(const Run& run, const RunOutcome& outcome) = 0;
  // A store operation failed (the engine retries; Health() reports it).
  virtual void OnStoreError(const Status& status) = 0;
};

struct EngineOptions {
  std::string instance_id;                           // default: "<host>:<pid>"
  int workers = 8;                                   // worker slots: runs executing at once
  std::chrono::seconds min_interval{60};             // schedules may not fire more often
  Duration default_timeout = std::chrono::hours(1);  // for jobs without a timeout
  Duration lease = std::chrono::seconds(30);         // a running run's lease
  Duration heartbeat = std::chrono::seconds(10);     // how often leases are extended
  Duration shutdown_grace = std::chrono::seconds(30);
  Duration misfire_threshold = std::chrono::seconds(5);  // later than this is a misfire
  Duration poll_interval = std::chrono::seconds(1);      // to see other processes' changes
  Duration stuck_after = std::chrono::seconds(30);       // stopped but still running: stuck
  // Fires are claimed this long before they are due and reserved for this
  // instance, so at the instant a free worker starts them from memory.
  Duration claim_ahead = std::chrono::milliseconds(200);
  int claim_batch = 512;       // fires claimed per transaction
  int settle_batch = 512;      // runs settled per transaction
  int max_catchup_runs = 100;  // misfire=run_all/skip: runs written per job per pass
  // A run's output is stored up to this many bytes (its tail, marked
  // truncated), whatever its driver kept; zero: as the driver kept it.
  std::int64_t max_output_bytes = 1 << 20;
  int metrics_max_jobs = 10000;     // jobs with series of their own in Metrics().jobs
  RunObserver* observer = nullptr;  // borrowed; may be null
};

// A cumulative histogram: counts[i] observations <= bounds[i] (seconds).
struct Histogram {
  std::vector<double> bounds;
  std::vector<std::int64_t> counts;
  std::int64_t count = 0;
  double sum = 0;
  void Observe(double seconds);
};

// One job's share of the metrics below (by job name; a deleted job's are dropped).
struct JobMetrics {
  std::map<std::string, std::int64_t> runs_by_status;
  std::map<std::string, std::int64_t> skipped_by_reason;
  Histogram run_duration;
};

struct MetricsSnapshot {
  std::map<std::string, std::int64_t> runs_by_status;  // settled by this engine
  Histogram fire_lag;      // start - scheduled_for, scheduled and catch-up runs
  Histogram run_duration;  // finished - started
  std::int64_t queue_depth = 0;
  std::int64_t running = 0;
  std::map<std::string, std::int64_t> skipped_by_reason;
  std::int64_t fires_claimed = 0;
  // Claims that waited for a settle in flight (the two take turns on the
  // store: a claim counts this instance's ended but unsettled runs).
  std::int64_t claims_waited = 0;
  std::int64_t retries_scheduled = 0;
  std::int64_t reaped = 0;
  // Processes that left their run's process group, found holding its output
  // after the run ended, and killed (shell driver).
  std::int64_t escaped_processes = 0;
  // By job name: the first `metrics_max_jobs` jobs to run here; runs of
  // others count in the totals above and here.
  std::map<std::string, JobMetrics> jobs;
  std::int64_t untracked_job_runs = 0;
};

// Output a run executing in this process has written, as WatchOutput reads it.
struct OutputChunk {
  std::string data;         // the bytes from `offset` to `end`
  std::int64_t offset = 0;  // where `data` starts: past the offset asked for when
                            // older bytes were dropped (the newest 256 KiB are kept)
  std::int64_t end = 0;     // bytes written in all so far
  bool running = true;      // false: the run ended; nothing more comes
};

// The one liveness rule, used by the engine (peers, start-up under a taken
// id) and by every command: an instance is `stopped` once it deregistered;
// `dead` when it has not heartbeated within `lease`, or at once when it ran
// on this host and its process is gone; `alive` otherwise.
enum class InstanceState { kAlive, kDead, kStopped };
std::string_view InstanceStateName(InstanceState state);  // "alive", "dead", "stopped"
InstanceState InstanceStateAt(const InstanceInfo& instance, Instant now, Duration lease);

struct HealthSnapshot {
  bool healthy = false;
  bool loop_active = false;
  std::optional<Instant> last_pass_at;
  std::int64_t active_jobs = 0;
  std::int64_t running_runs = 0;
  std::int64_t stale_leases = 0;  // running runs whose lease has expired, not yet reaped
  std::int64_t stuck_drivers = 0;
  std::vector<std::string> issues;  // any issue makes the instance unhealthy
  // Worth an operator's look, but no reason to restart the instance (a job's
  // process escaped its group and was killed).
  std::vector<std::string> warnings;
};

// Health as the store shows it, for a process that runs no engine (`sked
// health`): the instances alive by the liveness rule above, active jobs,
// running runs and those holding an expired lease, queue depth. Unhealthy
// when no instance is alive or a lease expired unreaped; the serving
// engine's Health() applies the same lease rule.
struct StoreHealth {
  bool healthy = false;
  std::vector<InstanceInfo> alive;
  std::int64_t active_jobs = 0;
  std::int64_t running_runs = 0;
  std::int64_t stale_leases = 0;
  std::int64_t queue_depth = -1;  // -1 when the store could not tell
  std::vector<std::string> issues;
};
Result<StoreHealth> StoreHealthAt(Store& store, Instant now, Duration lease);

class Engine {
 public:
  Engine(EngineOptions options, Store* store, DriverRegistry* drivers, Clock* clock);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();  // Stop()

  // Registers the instance and starts the services. FAILED_PRECONDITION if
  // the store's schema is not the one this binary knows.
  Status Start();
  // Graceful shutdown: stop claiming, let running runs finish within
  // shutdown_grace, cancel the rest, settle every run this instance owns,
  // deregister. Safe before Start() and twice.
  void Stop();
  // Ends the shutdown grace period of a Stop() in progress (from another
  // thread): running runs are asked to stop now.
  void EndShutdownGrace();

  // --- Jobs (validated here: bad input is rejected before anything is stored) ---
  Result<Job> CreateJob(const JobSpec& spec, std::string_view source = "api");
  // Replaces the job's spec if its version is still `expected_version`.
  Result<Job> UpdateJob(std::string_view name, const JobSpec& spec, std::int64_t expected_version);
  // What CreateJob would store (every check it makes, next_run_at computed),
  // without storing anything: for dry runs and previews.
  Result<Job> ValidateJob(const JobSpec& spec);
  // Keeps the job and its history but claims nothing for it, with `reason`
  // shown as its state reason; an UpdateJob that sets a spec enables it again.
  Result<Job> DisableJob(std::string_view name, std::string_view reason);
  Result<Job> PauseJob(std::string_view name);
  Result<Job> ResumeJob(std::string_view name);
  Status DeleteJob(std::string_view name);
  Result<Job> GetJob(std::string_view name);
  Result<std::vector<Job>> ListJobs(const JobFilter& filter = {});
  // A manual run now, through the same queue as scheduled ones.
  Result<Run> TriggerJob(std::string_view name);

  // --- Runs ---
  // Cancels a queued run at once, or stops a running one (here, or via its
  // owner's poll when another process runs it).
  Status CancelRun(std::int64_t run_id);
  Result<Run> GetRun(std::int64_t run_id);
  Result<std::vector<Run>> ListRuns(const RunFilter& filter = {});
  // The output of a run executing in this process from byte `from` on,
  // waiting up to `wait` (real time) for more while there is none. nullopt
  // when the run is not executing here (queued, ended, or another
  // instance's): its record in the store says the rest.
  std::optional<OutputChunk> WatchOutput(std::int64_t run_id, std::int64_t from,
                                         std::chrono::milliseconds wait);

  MetricsSnapshot Metrics();
  HealthSnapshot Health();
  const std::string& instance_id() const;
  // The drivers this engine runs jobs with.
  const DriverRegistry& drivers() const;

  // Test hook: waits (real time, bounded) until the scheduler loop is parked
  // on the clock with nothing to do at the current time: no run executing,
  // none waiting to be settled. False on timeout.
  bool WaitIdleForTesting(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sked

#endif  // SKED_ENGINE_H_
