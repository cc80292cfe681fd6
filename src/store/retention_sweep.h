// Store::PruneRuns, written once over a backend's three statements. Each
// statement is its own short transaction: a job's bounds are read, then its
// prunable runs deleted. Runs settled in between only make a bound more
// conservative (a newer newest run, a later count or failure cut), and a
// settled run never changes again, so nothing a bound protects is deleted.

#ifndef SKED_STORE_RETENTION_SWEEP_H_
#define SKED_STORE_RETENTION_SWEEP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sked/status.h"
#include "sked/store.h"
#include "store/store_codec.h"

namespace sked::store_internal {

struct PruneJob {
  std::int64_t id = 0;
  std::string name;
  RetentionSpec retention;
};

// `Backend` provides:
//   Result<std::vector<PruneJob>> PruneJobs(std::int64_t after_id, int limit);
//   // the id of the job's n-th newest settled run (failures only: of its failures)
//   Result<std::optional<std::int64_t>> NthNewestRun(std::int64_t job, int n, bool failures);
//   // deletes up to `limit` (or, limit < 0, counts) the runs PrunableRunsWhere selects
//   Result<std::int64_t> PruneJobRuns(std::int64_t job, const PruneBounds& b, int limit);
template <typename Backend>
Result<PruneResult> SweepRetention(Backend& backend, const PruneRequest& request) {
  PruneResult out;
  if (request.max_jobs <= 0 || (!request.dry_run && request.limit <= 0)) {
    return InvalidArgumentError("PruneRuns: max_jobs and limit must be positive");
  }
  SKED_ASSIGN_OR_RETURN(std::vector<PruneJob> jobs,
                        backend.PruneJobs(request.after_job_id, request.max_jobs));
  if (static_cast<int>(jobs.size()) == request.max_jobs) out.resume_after = jobs.back().id;
  for (const PruneJob& job : jobs) {
    const RetentionPolicy policy = EffectiveRetention(job.retention, request.defaults);
    if (policy.max_age <= Duration(0) && policy.max_runs <= 0) continue;
    SKED_ASSIGN_OR_RETURN(std::optional<std::int64_t> newest,
                          backend.NthNewestRun(job.id, 1, false));
    if (!newest) continue;  // no settled run
    PruneBounds bounds;
    bounds.newest = *newest;
    if (policy.max_runs > 0) {
      SKED_ASSIGN_OR_RETURN(std::optional<std::int64_t> cut,
                            backend.NthNewestRun(job.id, policy.max_runs, false));
      if (cut) bounds.count_cut = *cut;
    }
    if (policy.max_age > Duration(0)) bounds.age_cut = Us(request.now - policy.max_age);
    if (policy.keep_failures > 0) {
      SKED_ASSIGN_OR_RETURN(std::optional<std::int64_t> cut,
                            backend.NthNewestRun(job.id, policy.keep_failures, true));
      bounds.fail_cut = cut.value_or(0);  // fewer failures than that: all stay
    }
    const int room = request.dry_run ? -1 : request.limit - static_cast<int>(out.runs);
    SKED_ASSIGN_OR_RETURN(std::int64_t n, backend.PruneJobRuns(job.id, bounds, room));
    if (n == 0) continue;
    out.runs += n;
    out.by_job.emplace_back(job.name, n);
    if (!request.dry_run && out.runs >= request.limit) {
      out.resume_after = job.id - 1;  // this job may have more: the next batch starts with it
      break;
    }
  }
  return out;
}

}  // namespace sked::store_internal

#endif  // SKED_STORE_RETENTION_SWEEP_H_
