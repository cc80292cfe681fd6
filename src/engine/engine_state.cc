#include "engine/engine_state.h"

#include <algorithm>
#include <bit>
#include <optional>
#include <utility>

namespace sked::engine_internal {

double Seconds(Duration d) { return static_cast<double>(d.count()) / 1e6; }

void EngineState::WakeLoop() {
  {
    MutexLock l(mu);
    wake = true;
  }
  loop_cv.notify_all();
}

void EngineState::JobsChanged() {
  {
    MutexLock l(mu);
    next_claim = Instant::min();
    wake = true;
  }
  loop_cv.notify_all();
}

void EngineState::PromoteDueLocked(Instant now, size_t at_most) {
  for (size_t n = 0;
       n < at_most && !reserved.empty() && std::get<0>(reserved.begin()->first) <= now; ++n) {
    const Instant due = std::get<0>(reserved.begin()->first);
    ready.push_back({std::move(reserved.begin()->second), due});
    reserved.erase(reserved.begin());
  }
}

std::optional<Instant> EngineState::BurstWritesDueLocked(Instant now) const {
  Instant oldest;
  if (!ready.empty()) {
    oldest = ready.front().since;
  } else if (!reserved.empty() && std::get<0>(reserved.begin()->first) <= now) {
    oldest = std::get<0>(reserved.begin()->first);
  } else {
    return std::nullopt;
  }
  if (draining || oldest + kBurstWritesDefer <= now) return std::nullopt;
  return oldest + kBurstWritesDefer;
}

bool EngineState::WorkerWakeLocked(Instant now) {
  const std::optional<Instant> bound = BurstWritesDueLocked(now);
  if (!bound) return SetWakeLocked();
  if (!loop_park.parked || loop_park.until <= *bound) return false;
  loop_park.until = *bound;
  return true;
}

size_t EngineState::KeepReadyLocked(Instant now, int workers) {
  while (!recent_starts.empty() && recent_starts.front() + HoldReadyLocked() < now) {
    recent_starts.pop_front();
  }
  return std::max(static_cast<size_t>(workers), recent_starts.size());
}

size_t EngineState::ReserveFromQueueLocked(Instant now, int workers) {
  const size_t counted = KeepReadyLocked(now, workers);
  if (!run_us_mean || last_run_end + HoldReadyLocked() < now) return counted;
  // The starts counted lag behind the pace while it grows: a queue of short
  // runs taken 4, 8, 16, ... at a time (each reservation as large as the
  // starts of the last) took nine reservations to reach a full batch.
  const double through = static_cast<double>(workers) *
                         std::chrono::duration<double, std::micro>(HoldReadyLocked()).count() /
                         std::max(*run_us_mean, 1.0);
  return std::max(counted,
                  static_cast<size_t>(std::min(through, static_cast<double>(kMaxRoomForBooked))));
}

void EngineState::CountRunTimeLocked(Instant ended, Duration ran) {
  const double us = std::max(0.0, std::chrono::duration<double, std::micro>(ran).count());
  run_us_mean = run_us_mean ? *run_us_mean + (us - *run_us_mean) / kRunTimeWeight : us;
  last_run_end = std::max(last_run_end, ended);
}

void EngineState::ReleaseStalledLocked(Instant now, int workers) {
  // The first KeepReadyLocked() ready runs stay whatever their age: the
  // workers reach them within a hold at the pace they start runs now (a burst
  // of short runs drains in memory, not through the shared queue). Those past
  // them that waited longer than a hold go to the queue, where any instance
  // may start them, in priority order with everything else.
  const size_t keep = KeepReadyLocked(now, workers);
  if (ready.size() <= keep) return;
  std::deque<Ready> kept;
  for (size_t i = 0; i < ready.size(); ++i) {
    if (i >= keep && ready[i].since + HoldReadyLocked() < now) {
      dispatches.push_back({ready[i].run.id, Dispatch::Kind::kReleased, now, 0, ""});
    } else {
      kept.push_back(std::move(ready[i]));
    }
  }
  ready.swap(kept);
}

void EngineState::GiveBackClaimsLocked(Instant now) {
  for (auto& [key, run] : reserved) ready.push_back({std::move(run), now});
  reserved.clear();
  for (const Ready& r : ready) {
    dispatches.push_back({r.run.id, Dispatch::Kind::kGivenBack, now, 0, ""});
  }
  ready.clear();
}

void EngineState::DropReservedLocked(const std::function<bool(const Run&)>& pred) {
  for (auto it = reserved.begin(); it != reserved.end();) {
    it = pred(it->second) ? reserved.erase(it) : std::next(it);
  }
  ready.erase(
      std::remove_if(ready.begin(), ready.end(), [&](const Ready& r) { return pred(r.run); }),
      ready.end());
}

void EngineState::RequestStopLocked(Execution& e, RunStatus as, std::string reason, Instant now) {
  if (e.stop_as) return;
  e.stop_as = as;
  e.stop_reason = std::move(reason);
  e.stopped_at = now;
  pending_stops.push_back(e.stop);
}

void EngineState::FlushStops() {
  std::vector<std::stop_source> stops;
  {
    MutexLock l(mu);
    stops.swap(pending_stops);
  }
  for (std::stop_source& stop : stops) stop.request_stop();
}

void EngineState::CountSkippedLocked(const std::string& job, const std::string& reason) {
  ++metrics.skipped_by_reason[reason];
  ++metrics.runs_by_status["skipped"];
  job_metrics.CountSkipped(job, reason);
}

void EngineState::CountSettledLocked(const std::string& job, RunStatus status) {
  ++metrics.runs_by_status[std::string(RunStatusName(status))];
  job_metrics.CountStatus(job, RunStatusName(status));
}

void EngineState::AddUnsettledLocked(std::int64_t run_id, std::int64_t job_id, StoreSees as) {
  if (as == StoreSees::kNeither) return;
  unsettled.insert_or_assign(run_id, Unsettled{job_id, StoreSees::kNeither});
  StoreSeesLocked(run_id, as);
}

void EngineState::StoreSeesLocked(std::int64_t run_id, StoreSees as) {
  auto it = unsettled.find(run_id);
  if (it == unsettled.end() || it->second.as == as) return;
  auto& [queued, running] = unsettled_by_job[it->second.job_id];
  for (const auto& [sees, delta] : {std::pair{it->second.as, -1}, std::pair{as, +1}}) {
    if (sees != StoreSees::kNeither) (sees == StoreSees::kQueued ? queued : running) += delta;
  }
  it->second.as = as;
  if (queued == 0 && running == 0) unsettled_by_job.erase(it->second.job_id);
  if (as == StoreSees::kNeither) unsettled.erase(it);
}

std::pair<int, int> EngineState::DiscountUnsettledLocked(const DueJob& due) const {
  auto it = unsettled_by_job.find(due.job.id);
  if (it == unsettled_by_job.end()) return {due.queued_runs, due.running_runs};
  // Clamped: a run settled elsewhere meanwhile (reaped) is counted by neither.
  return {std::max(0, due.queued_runs - it->second.first),
          std::max(0, due.running_runs - it->second.second)};
}

bool EngineState::JoinWorkersLocked(std::chrono::steady_clock::time_point now,
                                    std::chrono::steady_clock::time_point* ask_again) const {
  if (active_workers == 0) return true;
  if (executing.size() < static_cast<size_t>(active_workers)) {
    *ask_again = now + kWorkerJoinAfter;  // one is between two runs: not blocked
    return false;
  }
  std::chrono::steady_clock::time_point newest{};
  for (const auto& [id, e] : executing) newest = std::max(newest, e.began);
  if (newest + kWorkerJoinAfter <= now) return true;
  *ask_again = newest + kWorkerJoinAfter;
  return false;
}

void EngineState::MakeRoomForBookedLocked() {
  const size_t booked =
      std::min(reserved.size() + ready.size() + executing.size(), kMaxRoomForBooked);
  const auto make_room = [](auto& v, size_t n) {
    if (v.capacity() >= n) return;
    v.reserve(std::bit_ceil(n));  // doubling, as the workers would
    // Written once now, so its pages are not faulted in one by one mid-burst.
    const size_t used = v.size();
    v.resize(v.capacity());
    v.resize(used);
  };
  make_room(outcomes, outcomes.size() + booked);
  make_room(outcomes_spare, booked);
  make_room(dispatches, dispatches.size() + booked);
  // No rehash unless the buckets are too few.
  unsettled.reserve(unsettled.size() + booked);
  unsettled_by_job.reserve(unsettled_by_job.size() + booked);
  unrecorded_starts.reserve(unrecorded_starts.size() + booked);
}

void EngineState::CacheJobLocked(Job job) {
  auto it = jobs.find(job.id);
  if (it != jobs.end() && it->second.job->version == job.version) return;
  const std::int64_t id = job.id;
  jobs.insert_or_assign(id,
                        CachedJobEntry{std::make_shared<const Job>(std::move(job)), std::nullopt});
}

void EngineState::TrimJobCacheLocked() {
  // The booked runs' jobs stay, so the bound counts on top of them: a burst
  // with more jobs booked than the bound does not rescan the cache per batch.
  if (jobs.size() <= kMaxCachedJobs + reserved.size() + ready.size() + executing.size()) return;
  std::unordered_set<std::int64_t> needed;
  for (const auto& [key, run] : reserved) needed.insert(run.job_id);
  for (const Ready& r : ready) needed.insert(r.run.job_id);
  for (const auto& [id, e] : executing) needed.insert(e.job_id);
  for (auto it = jobs.begin(); it != jobs.end() && jobs.size() > kMaxCachedJobs / 2;) {
    it = needed.contains(it->first) ? std::next(it) : jobs.erase(it);
  }
}

}  // namespace sked::engine_internal
