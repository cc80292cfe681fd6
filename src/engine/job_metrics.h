// Per-job metrics (runs by status, skips by reason, run durations), kept
// apart from the engine's book under a leaf lock of their own: a scrape that
// copies thousands of jobs' series never holds the engine's mutex, and the
// services that count (holding that mutex or not) take this one last.
// At most `max_jobs` jobs are tracked: a store of a million jobs must not
// hold a million histograms; runs of other jobs count in the totals only.

#ifndef SKED_ENGINE_JOB_METRICS_H_
#define SKED_ENGINE_JOB_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/mutex.h"
#include "sked/engine.h"
#include "sked/store.h"

namespace sked::engine_internal {

class JobMetricsBook {
 public:
  // The run-duration buckets and the bound on tracked jobs (before use).
  void Configure(std::vector<double> duration_bounds, std::size_t max_jobs) SKED_EXCLUDES(mu_);

  void CountStatus(const std::string& job, std::string_view status) SKED_EXCLUDES(mu_);
  void CountSkipped(const std::string& job, const std::string& reason) SKED_EXCLUDES(mu_);
  // Runs whose end was written: each one's duration, and its status where
  // `applied[i]` (false: fenced out, settled elsewhere, but it ran here; it
  // adds no series for its job, which may have been deleted meanwhile).
  void CountSettled(const std::vector<RunOutcome>& outcomes, const std::vector<bool>& applied)
      SKED_EXCLUDES(mu_);
  // A deleted job's series go with it.
  void Erase(const std::string& job) SKED_EXCLUDES(mu_);
  // The tracked jobs' metrics, and how many runs were of jobs not tracked.
  std::map<std::string, JobMetrics> Snapshot(std::int64_t* untracked_runs) const SKED_EXCLUDES(mu_);

 private:
  // The job's metrics, added while the bound allows; nullptr when the job is
  // not tracked (then a run is counted as untracked if `counts_a_run`).
  JobMetrics* FindLocked(const std::string& job, bool counts_a_run) SKED_REQUIRES(mu_);

  static constexpr std::size_t kReservedJobs = 16384;

  mutable Mutex mu_;
  std::vector<double> bounds_ SKED_GUARDED_BY(mu_);
  std::size_t max_jobs_ SKED_GUARDED_BY(mu_) = 0;
  // Hashed: a worker looks its job up on every run (a sorted map of 10,000
  // names cost a run ~0.4 us in comparisons); Snapshot sorts.
  std::unordered_map<std::string, JobMetrics> jobs_ SKED_GUARDED_BY(mu_);
  std::int64_t untracked_runs_ SKED_GUARDED_BY(mu_) = 0;
};

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_JOB_METRICS_H_
