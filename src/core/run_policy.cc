#include "core/run_policy.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace sked::policy {
namespace {

// Whether another run of the job may be queued for a fire, and if not, why.
const char* OverlapVerdict(const Job& job, int running, int queued) {
  const JobSpec& s = job.spec;
  switch (s.overlap) {
    case OverlapPolicy::kSkip:
      return running + queued > 0 ? "overlap" : nullptr;
    case OverlapPolicy::kQueue:
      if (running == 0 && queued == 0) return nullptr;
      return queued >= s.max_queued ? "queue_full" : nullptr;
    case OverlapPolicy::kConcurrent:
      return running + queued >= s.max_concurrent ? "overlap" : nullptr;
    case OverlapPolicy::kReplace:
      return queued > 0 ? "overlap" : nullptr;
  }
  return nullptr;
}

}  // namespace

FirePlan PlanFires(const DueJob& due, const Schedule& schedule, Instant now, Instant horizon,
                   const PlannerOptions& options) {
  return PlanFires(due.job, due.queued_runs, due.running_runs, schedule, now, horizon, options);
}

FirePlan PlanFires(const Job& job, int queued_runs, int running_runs, const Schedule& schedule,
                   Instant now, Instant horizon, const PlannerOptions& options) {
  const JobSpec& spec = job.spec;
  FirePlan plan;

  // The fires from next_run_at up to now, bounded.
  const int bound = std::max(1, options.max_catchup_runs) * 10;
  std::vector<Instant> fires;
  std::optional<Instant> f = job.next_run_at;
  while (f && *f <= now && static_cast<int>(fires.size()) < bound) {
    if (spec.end_at && *f > *spec.end_at) break;
    fires.push_back(*f);
    f = schedule.Next(*f);
  }
  // What comes after: the first fire after now (or after the last one seen
  // when the bound cut the list short), within end_at.
  std::optional<Instant> next = static_cast<int>(fires.size()) >= bound ? f : schedule.Next(now);
  // Ahead of time: an idle job's next fire, if it falls by the horizon.
  bool ahead = false;
  if (fires.empty() && f && *f > now && *f <= horizon && queued_runs == 0 && running_runs == 0 &&
      !(spec.end_at && *f > *spec.end_at)) {
    fires.push_back(*f);
    next = schedule.Next(*f);
    ahead = true;
  }
  if (next && spec.end_at && *next > *spec.end_at) next.reset();
  plan.next_run_at = next;
  if (!next) plan.state = spec.end_at ? JobState::kExpired : JobState::kActive;

  const Instant on_time_from = now - options.misfire_threshold;
  std::vector<std::pair<Instant, RunTrigger>> to_run;
  std::vector<std::pair<Instant, const char*>> to_skip;
  std::vector<Instant> missed;
  for (Instant fire : fires) {
    if (ahead || fire >= on_time_from) {
      to_run.emplace_back(fire, RunTrigger::kSchedule);
    } else {
      missed.push_back(fire);
    }
  }
  if (!missed.empty()) {
    switch (spec.misfire) {
      case MisfirePolicy::kRunOnce:
        // One catch-up run stands for them all, unless an on-time run does.
        if (to_run.empty()) to_run.insert(to_run.begin(), {missed.back(), RunTrigger::kCatchUp});
        break;
      case MisfirePolicy::kSkip:
        for (Instant m : missed) to_skip.emplace_back(m, "misfire");
        break;
      case MisfirePolicy::kRunAll: {
        std::vector<std::pair<Instant, RunTrigger>> catch_up;
        for (Instant m : missed) {
          if (m >= now - spec.catchup_window) {
            catch_up.emplace_back(m, RunTrigger::kCatchUp);
          } else {
            to_skip.emplace_back(m, "catchup_window");
          }
        }
        to_run.insert(to_run.begin(), catch_up.begin(), catch_up.end());
        break;
      }
    }
  }
  // Record at most max_catchup_runs skipped fires; keep the newest.
  if (static_cast<int>(to_skip.size()) > options.max_catchup_runs) {
    to_skip.erase(to_skip.begin(), to_skip.end() - options.max_catchup_runs);
  }
  for (const auto& [fire, reason] : to_skip) {
    NewRun r;
    r.scheduled_for = fire;
    r.not_before = fire;
    r.status = RunStatus::kSkipped;
    r.reason = reason;
    r.priority = spec.priority;
    plan.runs.push_back(r);
  }
  int queued = queued_runs;
  const int running = running_runs;
  for (const auto& [fire, trigger] : to_run) {
    NewRun r;
    r.scheduled_for = fire;
    r.not_before = fire;
    r.trigger = trigger;
    r.priority = spec.priority;
    const char* verdict = OverlapVerdict(job, running, queued);
    if (verdict != nullptr) {
      r.status = RunStatus::kSkipped;
      r.reason = verdict;
    } else {
      ++queued;
      if (spec.overlap == OverlapPolicy::kReplace && running > 0) plan.cancel_running = true;
    }
    plan.runs.push_back(r);
  }
  return plan;
}

std::optional<NewRun> PlanRetry(const Job& job, const Run& run, RunStatus status,
                                Instant finished_at, double random01) {
  const RetryPolicy& p = job.spec.retry;
  const bool wanted = (status == RunStatus::kFailed && p.on_failed) ||
                      (status == RunStatus::kTimedOut && p.on_timed_out) ||
                      (status == RunStatus::kAbandoned && p.on_abandoned);
  if (!wanted || run.attempt > p.max_retries) return std::nullopt;
  double delay = static_cast<double>(p.backoff.count()) *
                 std::pow(p.multiplier, static_cast<double>(run.attempt - 1));
  delay = std::min(delay, static_cast<double>(p.max_backoff.count()));
  delay += delay * p.jitter * random01;
  NewRun r;
  r.scheduled_for = run.scheduled_for;
  r.attempt = run.attempt + 1;
  r.trigger = RunTrigger::kRetry;
  r.not_before = finished_at + Duration(static_cast<std::int64_t>(delay));
  r.priority = run.priority;
  return r;
}

int AllowedRunning(const JobSpec& spec) {
  return spec.overlap == OverlapPolicy::kConcurrent ? spec.max_concurrent : 1;
}

StartVerdict JudgeStart(const JobSpec& spec, Instant scheduled_for, Instant now, int active,
                        StartFrom from) {
  if (spec.starting_deadline && now > scheduled_for + *spec.starting_deadline) {
    return StartVerdict::kSkipDeadline;
  }
  if (active < AllowedRunning(spec)) return StartVerdict::kStart;
  return from == StartFrom::kClaim && spec.overlap == OverlapPolicy::kSkip
             ? StartVerdict::kSkipOverlap
             : StartVerdict::kWait;
}

const char* SkipReason(StartVerdict verdict) {
  switch (verdict) {
    case StartVerdict::kSkipDeadline:
      return "deadline";
    case StartVerdict::kSkipOverlap:
      return "overlap";
    case StartVerdict::kStart:
    case StartVerdict::kWait:
      break;
  }
  return "";
}

std::int64_t NewLeaseToken(std::mt19937_64& rng) {
  return static_cast<std::int64_t>(rng() >> 1) | 1;
}

}  // namespace sked::policy
