#include "engine/engine_metrics.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace sked {

void Histogram::Observe(double seconds) {
  ++count;
  sum += seconds;
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (seconds <= bounds[i]) ++counts[i];
  }
}

namespace engine_internal {
namespace {

Histogram NewHistogram(std::vector<double> bounds) {
  Histogram h;
  h.counts.assign(bounds.size(), 0);
  h.bounds = std::move(bounds);
  return h;
}

}  // namespace

const std::vector<double>& RunDurationBounds() {
  static const std::vector<double> bounds = {0.01, 0.1, 0.5, 1,   5,    10,
                                             30,   60,  300, 900, 1800, 3600};
  return bounds;
}

void InitMetrics(const EngineContext& ctx, EngineState& state) {
  state.job_metrics.Configure(RunDurationBounds(),
                              static_cast<std::size_t>(std::max(0, ctx.options.metrics_max_jobs)));
  MutexLock l(state.mu);
  state.metrics.fire_lag =
      NewHistogram({0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60});
  state.metrics.run_duration = NewHistogram(RunDurationBounds());
}

MetricsSnapshot MetricsNow(const EngineContext& ctx, EngineState& state) {
  auto depth = ctx.store->QueueDepth();
  MetricsSnapshot m;
  {
    MutexLock l(state.mu);
    m = state.metrics;
    m.running = static_cast<std::int64_t>(state.executing.size());
  }
  m.queue_depth = depth.value_or(-1);
  m.jobs = state.job_metrics.Snapshot(&m.untracked_job_runs);  // outside the engine's mutex
  return m;
}

void JobMetricsBook::Configure(std::vector<double> duration_bounds, std::size_t max_jobs) {
  MutexLock l(mu_);
  bounds_ = std::move(duration_bounds);
  max_jobs_ = max_jobs;
  // Buckets for the jobs to come, so that the first burst that adds them does
  // not rehash (bounded: an embedder may allow millions).
  jobs_.reserve(std::min(max_jobs, kReservedJobs));
}

JobMetrics* JobMetricsBook::FindLocked(const std::string& job, bool counts_a_run) {
  if (auto it = jobs_.find(job); it != jobs_.end()) return &it->second;
  if (jobs_.size() >= max_jobs_ || job.empty()) {
    if (counts_a_run) ++untracked_runs_;
    return nullptr;
  }
  JobMetrics& m = jobs_[job];
  m.run_duration = NewHistogram(bounds_);
  return &m;
}

void JobMetricsBook::CountStatus(const std::string& job, std::string_view status) {
  MutexLock l(mu_);
  if (JobMetrics* m = FindLocked(job, true)) ++m->runs_by_status[std::string(status)];
}

void JobMetricsBook::CountSkipped(const std::string& job, const std::string& reason) {
  MutexLock l(mu_);
  if (JobMetrics* m = FindLocked(job, true)) {
    ++m->skipped_by_reason[reason];
    ++m->runs_by_status["skipped"];
  }
}

void JobMetricsBook::CountSettled(const std::vector<RunOutcome>& outcomes,
                                  const std::vector<bool>& applied) {
  MutexLock l(mu_);
  for (size_t i = 0; i < outcomes.size() && i < applied.size(); ++i) {
    const RunOutcome& o = outcomes[i];
    // A run fenced out counts only in series its job has already: its row may
    // be gone with its job (deleted while it ran), whose series went too.
    JobMetrics* m = nullptr;
    if (applied[i]) {
      m = FindLocked(o.job_name, true);
    } else if (auto it = jobs_.find(o.job_name); it != jobs_.end()) {
      m = &it->second;
    }
    if (m == nullptr) continue;
    m->run_duration.Observe(Seconds(o.ran));
    if (applied[i]) ++m->runs_by_status[std::string(RunStatusName(o.status))];
  }
}

void JobMetricsBook::Erase(const std::string& job) {
  MutexLock l(mu_);
  jobs_.erase(job);
}

std::map<std::string, JobMetrics> JobMetricsBook::Snapshot(std::int64_t* untracked_runs) const {
  MutexLock l(mu_);
  *untracked_runs = untracked_runs_;
  return {jobs_.begin(), jobs_.end()};
}

}  // namespace engine_internal
}  // namespace sked
