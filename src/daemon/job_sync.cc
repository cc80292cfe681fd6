#include "daemon/job_sync.h"

#include <set>

namespace sked::daemon {
namespace {

constexpr const char* kSource = "config";

// One declared job; a few tries, since another instance may be syncing too.
Status SyncOne(Engine& engine, const JobSpec& declared, const std::string& file,
               SyncReport* report) {
  const std::string where = file + ": job '" + declared.name + "'";
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto current = engine.GetJob(declared.name);
    if (!current.ok()) {
      if (current.status().code() != StatusCode::kNotFound) return current.status();
      auto created = engine.CreateJob(declared, kSource);
      if (created.ok()) {
        report->created.push_back(declared.name);
        return Status::Ok();
      }
      if (created.status().code() == StatusCode::kAlreadyExists) continue;  // raced: look again
      return created.status().WithContext(where);
    }
    if (current->source != kSource) {
      return FailedPreconditionError(
          where +
          ": a job of that name was created by the CLI or API; rename the declared job "
          "or delete the other (sked job delete " +
          declared.name + ")");
    }
    JobSpec wanted = declared;
    wanted.paused = declared.paused || current->spec.paused;  // a CLI pause survives restarts
    if (current->spec == wanted && current->state != JobState::kDisabled) {
      report->unchanged.push_back(declared.name);
      return Status::Ok();
    }
    auto updated = engine.UpdateJob(declared.name, wanted, current->version);
    if (updated.ok()) {
      report->updated.push_back(declared.name);
      return Status::Ok();
    }
    if (updated.status().code() == StatusCode::kAborted ||
        updated.status().code() == StatusCode::kNotFound) {
      continue;
    }
    return updated.status().WithContext(where);
  }
  return AbortedError(where + ": keeps changing while being synced; try again");
}

}  // namespace

Result<SyncReport> SyncDeclaredJobs(Engine& engine, const std::vector<JobSpec>& declared,
                                    const std::string& file, bool prune) {
  SyncReport report;
  std::set<std::string> names;
  for (const JobSpec& spec : declared) {
    names.insert(spec.name);
    SKED_RETURN_IF_ERROR(SyncOne(engine, spec, file, &report));
  }
  // Jobs the config declared before but no longer does.
  JobFilter page;
  page.source = kSource;
  const std::string reason = "removed from " + file;
  std::vector<std::string> gone;
  for (int pages = 0; pages < 100000; ++pages) {
    SKED_ASSIGN_OR_RETURN(std::vector<Job> jobs, engine.ListJobs(page));
    for (const Job& j : jobs) {
      const bool already = j.state == JobState::kDisabled && j.state_reason == reason;
      if (!names.contains(j.spec.name) && (prune || !already)) gone.push_back(j.spec.name);
    }
    if (static_cast<int>(jobs.size()) < page.limit) break;
    page.after_id = jobs.back().id;
  }
  for (const std::string& name : gone) {
    if (prune) {
      Status s = engine.DeleteJob(name);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
      report.deleted.push_back(name);
      continue;
    }
    auto disabled = engine.DisableJob(name, reason);
    if (!disabled.ok() && disabled.status().code() != StatusCode::kNotFound) {
      std::string where = file;
      where += ": job '" + name + "'";
      return disabled.status().WithContext(where);
    }
    report.disabled.push_back(name);
  }
  return report;
}

}  // namespace sked::daemon
