#include "engine/claimer.h"

#include <algorithm>
#include <unordered_set>
#include <utility>

#include "core/run_policy.h"
#include "sked/time_zone.h"

namespace sked::engine_internal {
namespace {

// A burst is claimed early by at most this much; its size is counted up to
// kLeadCountLimit fires.
constexpr Duration kMaxClaimLead = std::chrono::seconds(5);
constexpr std::int64_t kLeadCountLimit = 200000;

}  // namespace

void Claimer::TakeClaimTurn() {
  if (state_.claim_settle_mu.TryLock()) return;
  {
    MutexLock l(state_.mu);
    ++state_.metrics.claims_waited;
  }
  state_.claim_settle_mu.Lock();
}

bool Claimer::ClaimDueAt(Instant now) {
  MutexLock l(state_.mu);
  return state_.ClaimDueLocked(now);
}

Result<Schedule> Claimer::ScheduleFor(const Job& job) {
  {
    MutexLock l(state_.mu);
    auto it = state_.jobs.find(job.id);
    if (it != state_.jobs.end() && it->second.job->version == job.version && it->second.schedule) {
      return *it->second.schedule;
    }
  }
  SKED_ASSIGN_OR_RETURN(TimeZone zone, TimeZone::Find(job.spec.time_zone));
  SKED_ASSIGN_OR_RETURN(Schedule s,
                        Schedule::Parse(job.spec.schedule, zone, std::chrono::seconds(0),
                                        job.spec.start_at.value_or(job.created_at)));
  MutexLock l(state_.mu);
  state_.jobs.insert_or_assign(job.id, CachedJobEntry{std::make_shared<const Job>(job), s});
  return s;
}

Duration Claimer::ClaimLead(Instant due) {
  const EngineOptions& o = ctx_.options;
  if (o.claim_ahead <= Duration(0)) return Duration(0);  // claims at the instant
  auto n = ctx_.store->CountDue(due + o.claim_ahead, kLeadCountLimit);
  MutexLock l(state_.mu);
  if (!n.ok()) return o.claim_ahead;
  // All of them, not this instance's share: instances claiming at once share
  // the database's (and often the host's) cores, so a share is not claimed
  // any faster than the whole, and the cost per fire measured alone is low.
  const auto claiming =
      std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::micro>(
          static_cast<double>(*n) * state_.claim_us_per_fire));
  return o.claim_ahead + std::min(claiming, std::min(kMaxClaimLead, o.lease / 4));
}

void Claimer::ClaimFires(Instant now) {
  const EngineOptions& o = ctx_.options;
  const policy::PlannerOptions planner{o.misfire_threshold, o.max_catchup_runs};
  Instant until;
  {
    MutexLock l(state_.mu);
    until = state_.claim_until;
    state_.claim_until = Instant::min();
  }
  // A burst claimed ahead of its instant (PlanNextClaim set `until`) with
  // live peers is claimed by part: this instance's jobs only, all of them,
  // so the burst is split evenly whichever instance starts first (the one
  // that did took up to three shares of four while the other's first
  // transaction ran). The other parts' fires stay due; their instances
  // claim them, and whatever is left is claimed at its instant by anyone.
  const bool ahead = until != Instant::min() && now < until - o.claim_ahead;
  // Bounded: each round claims a full batch or ends the pass.
  for (int round = 0; round < 64; ++round) {
    const Instant horizon = std::max(now + o.claim_ahead, until);
    // Alone, an instance claims every due fire, a batch at a time. With live
    // peers it takes a share per batch (claim_batch / instances, at least its
    // free workers) and claims no further batch while due runs wait for its
    // workers: the rest stay due for the peers, which wake at the same instant
    // and skip what this one has locked.
    int limit = o.claim_batch;
    bool share = false;
    ClaimRequest request{now, horizon, limit, o.instance_id, horizon + o.lease};
    {
      MutexLock l(state_.mu);
      if (state_.live_peers > 0) {
        share = true;
        if (ahead) {
          request.parts = state_.live_peers + 1;
          request.part = std::clamp(state_.fleet_rank, 0, state_.live_peers);
        } else {
          const int free = o.workers - static_cast<int>(state_.executing.size());
          limit =
              std::clamp(std::max(free, o.claim_batch / (state_.live_peers + 1)), 1, o.claim_batch);
          request.limit = limit;
        }
      }
    }
    std::unordered_set<std::int64_t> claimed_jobs;  // a store may retry the transaction
    const Instant claim_start = ctx_.clock->Now();
    // In turn with the settler: the planner discounts the runs that ended
    // here and are not settled, which a settle in flight would blur.
    TakeClaimTurn();
    MutexLock turn(state_.claim_settle_mu, std::adopt_lock);
    // Called by the store inside its transaction (lock order: store, then
    // the engine's mutex, which ScheduleFor takes briefly).
    auto runs = ctx_.store->ClaimDue(request, [&](const DueJob& due) {
      claimed_jobs.insert(due.job.id);
      auto schedule = ScheduleFor(due.job);
      if (!schedule.ok()) {
        // A job whose stored schedule no longer parses (e.g. tz data changed): stop it.
        FirePlan stop;
        stop.state = JobState::kDisabled;
        return stop;
      }
      // Its runs that ended here but are not settled yet do not keep it busy.
      std::pair<int, int> active;
      {
        MutexLock l(state_.mu);
        active = state_.DiscountUnsettledLocked(due);
      }
      return policy::PlanFires(due.job, active.first, active.second, *schedule, now, horizon,
                               planner);
    });
    turn.Unlock();
    if (!runs.ok()) {
      MutexLock l(state_.mu);
      state_.last_store_error = runs.status().message();
      return;
    }
    {
      MutexLock l(state_.mu);
      state_.last_store_error.clear();
      if (request.parts > 1)
        state_.part_claimed_until = std::max(state_.part_claimed_until, horizon);
      if (claimed_jobs.size() >= 16) {  // a batch big enough to tell the cost per fire
        const double us =
            std::chrono::duration<double, std::micro>(ctx_.clock->Now() - claim_start).count() /
            static_cast<double>(claimed_jobs.size());
        state_.claim_us_per_fire = 0.7 * state_.claim_us_per_fire + 0.3 * us;
      }
      for (Run& r : *runs) {
        ++state_.metrics.fires_claimed;
        if (r.status == RunStatus::kSkipped) {
          state_.CountSkippedLocked(r.job_name, r.reason);
        } else if (r.status == RunStatus::kQueued && !r.instance_id.empty()) {
          state_.reserved.emplace(std::make_tuple(r.not_before, -r.priority, r.id), std::move(r));
        }
      }
      // Workers start what is due already while the next batch is claimed.
      state_.PromoteDueLocked(ctx_.clock->Now());
      state_.TrimJobCacheLocked();
      state_.MakeRoomForBookedLocked();
    }
    state_.work_cv.notify_all();
    if (static_cast<int>(claimed_jobs.size()) < limit) return;
    {
      MutexLock l(state_.mu);
      // The settles' turn first (kSettleBatchesBehind).
      if (state_.OutcomesBehindLocked() >=
          static_cast<size_t>(kSettleBatchesBehind) * static_cast<size_t>(o.settle_batch)) {
        return;
      }
      if (share && !state_.ready.empty()) {
        return;  // due runs wait for workers: the next pass claims more
      }
    }
  }
}

void Claimer::PlanNextClaim(Instant now) {
  const EngineOptions& o = ctx_.options;
  const Instant horizon = now + o.claim_ahead;
  Instant at = now + o.poll_interval;
  Instant until = Instant::min();
  Instant part_claimed_until;
  {
    MutexLock l(state_.mu);
    part_claimed_until = state_.part_claimed_until;
  }
  if (auto due = ctx_.store->NextDueAt(); due.ok() && *due) {
    if (**due <= horizon || **due <= part_claimed_until) {
      // A fire still at or before the horizon belongs to a busy job (or a
      // batch cut short), one within a burst claimed by part to another
      // part: claim it at its instant.
      at = std::min(at, **due);
    } else if (const Instant early = **due - ClaimLead(**due); early < at) {
      at = early;
      until = **due + o.claim_ahead;
    }
  }
  MutexLock l(state_.mu);
  state_.next_claim = at;
  state_.claim_until = until;
}

Claimer::Reserved Claimer::ReserveQueued(Instant pass_start) {
  const EngineOptions& o = ctx_.options;
  // A run's start time is when it is handed to a worker, not when the pass
  // began: fire lag must not hide the time spent claiming.
  const Instant now = std::max(pass_start, ctx_.clock->Now());
  int limit;
  {
    MutexLock l(state_.mu);
    // Claimed fires first: the queue is served when they are nearly all taken.
    if (static_cast<int>(state_.ready.size()) >= o.workers) return {};
    // As many as the workers are free for, or start within a hold at their
    // present pace (a queue of short runs drains in batches), within this
    // instance's share of a claim batch.
    const int free = o.workers - static_cast<int>(state_.executing.size());
    const int pace = static_cast<int>(std::min(state_.ReserveFromQueueLocked(now, o.workers),
                                               static_cast<size_t>(o.claim_batch))) -
                     o.workers;
    const int share = o.claim_batch / (state_.live_peers + 1);
    limit = std::clamp(std::max(free, pace), 1, std::max(1, share));
  }
  auto reserved = ctx_.store->ReserveQueued(o.instance_id, now, limit, now + o.lease);
  if (!reserved.ok()) {
    MutexLock l(state_.mu);
    state_.last_store_error = reserved.status().message();
    return {};
  }
  int taken = 0;
  {
    MutexLock l(state_.mu);
    for (Job& job : reserved->jobs) state_.CacheJobLocked(std::move(job));
    for (Run& r : reserved->runs) {
      if (r.status == RunStatus::kSkipped) {
        state_.CountSkippedLocked(r.job_name, r.reason);
        continue;
      }
      state_.ready.push_back({std::move(r), now});
      ++taken;
    }
    state_.TrimJobCacheLocked();  // after the runs are in the book: their jobs stay
    state_.MakeRoomForBookedLocked();
  }
  if (taken > 0) state_.work_cv.notify_all();
  return {taken >= limit, reserved->contended};
}

}  // namespace sked::engine_internal
