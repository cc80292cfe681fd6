#include "engine/health.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "sked/engine.h"

namespace sked {
namespace engine_internal {

std::string HostName() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
  return host;
}

Result<RunningLeases> CountRunningLeases(Store& store, Instant now) {
  SKED_ASSIGN_OR_RETURN(Store::RunningCounts counts, store.CountRunning(now));
  return RunningLeases{counts.running, counts.expired};
}

std::string StaleLeaseIssue(std::int64_t stale) {
  return std::to_string(stale) + " run(s) hold an expired lease";
}

HealthSnapshot EngineHealth(const EngineContext& ctx, EngineState& state) {
  HealthSnapshot h;
  const Instant now = ctx.clock->Now();
  if (auto active = ctx.store->CountJobs(JobState::kActive); active.ok()) {
    h.active_jobs = *active;
  } else {
    h.issues.emplace_back("store: " + active.status().message());
  }
  if (auto leases = CountRunningLeases(*ctx.store, now); leases.ok()) {
    h.running_runs = leases->running;
    h.stale_leases = leases->stale;
  }
  const EngineOptions& o = ctx.options;
  MutexLock l(state.mu);
  h.loop_active = state.started && !state.stopping;
  h.last_pass_at = state.last_pass_at;
  for (const auto& [id, e] : state.executing) {
    if (e.stopped_at && now - *e.stopped_at > o.stuck_after) ++h.stuck_drivers;
  }
  if (!h.loop_active) h.issues.emplace_back("scheduler loop is not running");
  if (h.loop_active && (!state.last_pass_at || now - *state.last_pass_at >
                                                   3 * o.poll_interval + std::chrono::seconds(5))) {
    h.issues.emplace_back("scheduler loop has not run a pass recently");
  }
  if (!state.last_store_error.empty()) h.issues.emplace_back("store: " + state.last_store_error);
  if (h.stuck_drivers > 0) {
    h.issues.emplace_back(std::to_string(h.stuck_drivers) +
                          " run(s) ignore their stop request (stuck drivers)");
  }
  if (state.last_escape_at && now - *state.last_escape_at < std::chrono::hours(1)) {
    // A job's doing, not the engine's: a warning, so a health probe does not
    // restart a good instance for an hour.
    h.warnings.emplace_back(std::to_string(state.metrics.escaped_processes) +
                            " process(es) left their run's process group and were killed (last " +
                            FormatRfc3339Utc(*state.last_escape_at, 0) +
                            "); see the runs' notes and docs/drivers.md");
  }
  if (h.stale_leases > 0) h.issues.emplace_back(StaleLeaseIssue(h.stale_leases));
  h.healthy = h.issues.empty();
  return h;
}

}  // namespace engine_internal

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
  if (instance.host == engine_internal::HostName() && instance.pid > 0 &&
      instance.pid != ::getpid() && ::kill(static_cast<pid_t>(instance.pid), 0) != 0 &&
      errno == ESRCH) {
    return InstanceState::kDead;
  }
  return InstanceState::kAlive;
}

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
  SKED_ASSIGN_OR_RETURN(engine_internal::RunningLeases leases,
                        engine_internal::CountRunningLeases(store, now));
  h.running_runs = leases.running;
  h.stale_leases = leases.stale;
  if (h.stale_leases > 0) h.issues.push_back(engine_internal::StaleLeaseIssue(h.stale_leases));
  h.queue_depth = store.QueueDepth().value_or(-1);
  h.healthy = h.issues.empty();
  return h;
}

}  // namespace sked
