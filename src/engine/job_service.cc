#include "engine/job_service.h"

#include <string>

#include "sked/schedule.h"
#include "sked/time_zone.h"

namespace sked::engine_internal {

Job JobService::View(Job job, Instant now) {
  if (job.state == JobState::kActive && job.spec.start_at && *job.spec.start_at > now) {
    job.state = JobState::kPending;
  }
  return job;
}

Result<Job> JobService::BuildJob(const JobSpec& spec, Instant now, std::optional<Job> existing,
                                 bool check_driver) {
  SKED_RETURN_IF_ERROR(ValidateJobSpecShape(spec));
  if (check_driver) {
    Driver* driver = ctx_.drivers->Find(spec.driver);
    if (driver == nullptr) {
      return InvalidArgumentError("driver: " + ctx_.drivers->UnknownDriverMessage(spec.driver));
    }
    SKED_RETURN_IF_ERROR(driver->Validate(spec.driver_config).WithContext("driver_config"));
  }
  SKED_ASSIGN_OR_RETURN(TimeZone zone, TimeZone::Find(spec.time_zone));
  const Instant created = existing ? existing->created_at : now;
  SKED_ASSIGN_OR_RETURN(Schedule schedule,
                        Schedule::Parse(spec.schedule, zone, ctx_.options.min_interval,
                                        spec.start_at.value_or(created)));
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

Result<Job> JobService::Create(const JobSpec& spec, std::string_view source) {
  const Instant now = ctx_.clock->Now();
  SKED_ASSIGN_OR_RETURN(Job job, BuildJob(spec, now, std::nullopt));
  job.source = std::string(source);
  SKED_ASSIGN_OR_RETURN(Job created, ctx_.store->CreateJob(job));
  state_.JobsChanged();
  return View(created, now);
}

Result<Job> JobService::Update(std::string_view name, const JobSpec& spec, std::int64_t version) {
  return UpdateJob(name, spec, version, /*check_driver=*/true);
}

Result<Job> JobService::UpdateJob(std::string_view name, const JobSpec& spec, std::int64_t version,
                                  bool check_driver) {
  const Instant now = ctx_.clock->Now();
  SKED_ASSIGN_OR_RETURN(Job current, ctx_.store->GetJobByName(name));
  if (current.version != version) {
    return AbortedError("job '" + std::string(name) + "' changed meanwhile (version " +
                        std::to_string(current.version) + ", expected " + std::to_string(version) +
                        "); reload it and retry");
  }
  SKED_ASSIGN_OR_RETURN(Job job, BuildJob(spec, now, current, check_driver));
  job.version = version;
  SKED_ASSIGN_OR_RETURN(Job updated, ctx_.store->UpdateJob(job));
  state_.JobsChanged();
  return View(updated, now);
}

Result<Job> JobService::SetPaused(std::string_view name, bool paused) {
  // A few tries: a concurrent edit bumps the version.
  for (int attempt = 0; attempt < 5; ++attempt) {
    SKED_ASSIGN_OR_RETURN(Job job, ctx_.store->GetJobByName(name));
    if (job.state == JobState::kExpired || job.state == JobState::kDisabled) {
      return FailedPreconditionError("job '" + std::string(name) + "' is " +
                                     std::string(JobStateName(job.state)));
    }
    JobSpec spec = job.spec;
    spec.paused = paused;
    // Pausing changes nothing the driver checks, and must work when the
    // driver is missing (its plugin failed to load); resuming checks it.
    auto updated = UpdateJob(name, spec, job.version, /*check_driver=*/!paused);
    if (updated.ok() || updated.status().code() != StatusCode::kAborted) return updated;
  }
  return AbortedError("job '" + std::string(name) + "' keeps changing; try again");
}

Result<Job> JobService::Disable(std::string_view name, std::string_view reason) {
  for (int attempt = 0; attempt < 5; ++attempt) {  // a concurrent edit bumps the version
    SKED_ASSIGN_OR_RETURN(Job job, ctx_.store->GetJobByName(name));
    if (job.state == JobState::kDisabled && job.state_reason == reason) return job;
    job.state = JobState::kDisabled;
    job.state_reason = std::string(reason);
    job.updated_at = ctx_.clock->Now();
    auto updated = ctx_.store->UpdateJob(job);
    if (updated.ok()) {
      state_.JobsChanged();
      return updated;
    }
    if (updated.status().code() != StatusCode::kAborted) return updated.status();
  }
  return AbortedError("job '" + std::string(name) + "' keeps changing; try again");
}

Status JobService::Delete(std::string_view name) {
  SKED_ASSIGN_OR_RETURN(Job job, ctx_.store->GetJobByName(name));
  SKED_RETURN_IF_ERROR(ctx_.store->DeleteJob(job.id));
  {
    MutexLock l(state_.mu);
    state_.DropReservedLocked([&](const Run& r) { return r.job_id == job.id; });
    state_.jobs.erase(job.id);
  }
  state_.job_metrics.Erase(job.spec.name);
  executor_.StopRuns([&](std::int64_t, std::int64_t job_id) { return job_id == job.id; },
                     "job deleted");
  return Status::Ok();
}

Result<Job> JobService::Get(std::string_view name) {
  SKED_ASSIGN_OR_RETURN(Job job, ctx_.store->GetJobByName(name));
  return View(job, ctx_.clock->Now());
}

Result<std::vector<Job>> JobService::List(const JobFilter& filter) {
  SKED_ASSIGN_OR_RETURN(std::vector<Job> jobs, ctx_.store->ListJobs(filter));
  const Instant now = ctx_.clock->Now();
  for (Job& j : jobs) j = View(std::move(j), now);
  return jobs;
}

Result<Run> JobService::Trigger(std::string_view name) {
  SKED_ASSIGN_OR_RETURN(Job job, ctx_.store->GetJobByName(name));
  const Instant now = ctx_.clock->Now();
  NewRun r;
  r.trigger = RunTrigger::kManual;
  r.priority = job.spec.priority;
  r.not_before = now;
  // Two triggers in the same microsecond would share a key: step past it.
  for (int i = 0; i < 10; ++i) {
    r.scheduled_for = now + Duration(i);
    auto run = ctx_.store->InsertRun(job.id, r, now);
    if (run.ok()) {
      state_.WakeLoop();
      return run;
    }
    if (run.status().code() != StatusCode::kAlreadyExists) return run.status();
  }
  return AbortedError("job '" + std::string(name) + "' is being triggered too fast");
}

Status JobService::Cancel(std::int64_t run_id) {
  const Instant now = ctx_.clock->Now();
  SKED_ASSIGN_OR_RETURN(bool done, ctx_.store->RequestCancel(run_id, now, "cancelled by user"));
  if (done) {
    MutexLock l(state_.mu);
    state_.DropReservedLocked([&](const Run& r) { return r.id == run_id; });
  } else {
    executor_.StopRuns([&](std::int64_t id, std::int64_t) { return id == run_id; },
                       "cancelled by user");
  }
  state_.WakeLoop();
  return Status::Ok();
}

}  // namespace sked::engine_internal
