#include "engine/settler.h"

#include <algorithm>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/thread_name.h"

namespace sked::engine_internal {

void Settler::MergeUnrecordedStartsLocked(std::vector<RunOutcome>& batch) {
  std::unordered_map<std::int64_t, std::optional<Instant>> merged;  // run id -> its start
  for (const RunOutcome& o : batch) {
    if (state_.unrecorded_starts.contains(o.run_id)) merged.emplace(o.run_id, std::nullopt);
  }
  if (merged.empty()) return;
  std::erase_if(state_.dispatches, [&](const Dispatch& d) {
    if (d.kind != Dispatch::Kind::kStarted) return false;
    auto it = merged.find(d.run_id);
    if (it == merged.end()) return false;
    it->second = d.at;
    return true;
  });
  for (RunOutcome& o : batch) {
    auto it = merged.find(o.run_id);
    if (it == merged.end() || !it->second) continue;  // its start is being written
    o.started_at = *it->second;
    o.instance_id = ctx_.options.instance_id;
    state_.unrecorded_starts.erase(o.run_id);
  }
}

void Settler::Start() {
  thread_ = std::thread([this] { Run(); });
  NameThread(thread_, "sked-settler");
}

void Settler::Stop() {
  if (thread_.joinable()) thread_.join();
}

void Settler::Ask() {
  {
    MutexLock l(state_.mu);
    if (state_.outcomes.empty()) return;
    state_.settle_asked = true;
  }
  state_.settle_cv.notify_one();
}

void Settler::Run() {
  // Gives way to a claim that came due (the loop's next pass makes it, then
  // asks again).
  const auto claim_due = [this] {
    MutexLock l(state_.mu);
    return state_.ClaimDueLocked(ctx_.clock->Now());
  };
  MutexLock lock(state_.mu);
  while (true) {
    state_.settle_cv.wait(lock.native(), [this] {
      state_.mu.AssertHeld();
      return state_.stopping || state_.settle_asked;
    });
    if (state_.stopping) return;  // Stop writes what is left
    state_.settle_asked = false;
    state_.settling = true;
    lock.Unlock();
    const Written written = SettlePending(claim_due);
    lock.Lock();
    state_.settling = false;
    // Settled runs leave room in their jobs and retries were queued: the
    // loop looks at the queue (after a burst's writes are due, as a
    // worker's wake would).
    const bool wake =
        written.yielded || (written.any && state_.WorkerWakeLocked(ctx_.clock->Now()));
    lock.Unlock();
    if (wake) state_.loop_cv.notify_all();
    state_.idle_cv.notify_all();
    lock.Lock();
  }
}

Settler::Written Settler::SettlePending(const std::function<bool()>& yield) {
  Written written;
  // Two buffers take turns, each keeping its capacity: workers append a
  // burst's outcomes to memory already in use instead of growing a fresh
  // vector (a page fault every few runs, and every outcome moved at each
  // doubling); the claimer grows both ahead (MakeRoomForBookedLocked).
  std::vector<RunOutcome> batch;
  const auto recycle_locked = [this](std::vector<RunOutcome>& used) {
    state_.mu.AssertHeld();
    used.clear();
    if (used.capacity() > kMaxRoomForBooked) used.shrink_to_fit();
    if (used.capacity() > state_.outcomes_spare.capacity()) state_.outcomes_spare.swap(used);
  };
  {
    MutexLock l(state_.mu);
    batch.swap(state_.outcomes);
    state_.outcomes.swap(state_.outcomes_spare);
    MergeUnrecordedStartsLocked(batch);
    // A run's end is written after its start: one whose start is being
    // written right now waits for the next pass.
    auto waiting = std::stable_partition(batch.begin(), batch.end(), [this](const RunOutcome& o) {
      state_.mu.AssertHeld();
      return !state_.unrecorded_starts.contains(o.run_id);
    });
    state_.outcomes.assign(std::make_move_iterator(waiting), std::make_move_iterator(batch.end()));
    batch.erase(waiting, batch.end());
    state_.outcomes_in_settle = batch.size();
  }
  const auto step = static_cast<size_t>(ctx_.options.settle_batch);
  for (size_t from = 0; from < batch.size(); from += step) {
    // Gives way only while few are behind (kSettleBatchesBehind).
    const bool few_behind = batch.size() - from <= kSettleBatchesBehind * step;
    if (from > 0 && few_behind && yield && yield()) {
      // Older than any outcome added meanwhile: back in front, in order.
      MutexLock l(state_.mu);
      state_.outcomes_in_settle = 0;
      state_.outcomes.insert(state_.outcomes.begin(),
                             std::make_move_iterator(batch.begin() + static_cast<long>(from)),
                             std::make_move_iterator(batch.end()));
      state_.SetWakeLocked();  // the caller notifies the loop
      recycle_locked(batch);
      written.yielded = true;
      return written;
    }
    const size_t to = std::min(batch.size(), from + step);
    std::vector<RunOutcome> part(std::make_move_iterator(batch.begin() + static_cast<long>(from)),
                                 std::make_move_iterator(batch.begin() + static_cast<long>(to)));
    // The write and its entry in the book, in turn with claims.
    MutexLock turn(state_.claim_settle_mu);
    auto applied = ctx_.store->SettleRuns(part);
    MutexLock l(state_.mu);
    state_.outcomes_in_settle = batch.size() - to;
    if (!applied.ok()) {
      state_.last_store_error = applied.status().message();
      // Keep them for the next pass: the store may come back.
      for (RunOutcome& o : part) state_.outcomes.push_back(std::move(o));
      continue;
    }
    written.any = true;
    std::map<RunStatus, std::int64_t> settled;  // a few statuses: counted once a batch
    for (size_t i = 0; i < part.size(); ++i) {
      state_.StoreSeesLocked(part[i].run_id, StoreSees::kNeither);
      if (!(*applied)[i]) continue;  // fenced out: settled elsewhere
      ++settled[part[i].status];
      if (part[i].retry) ++state_.metrics.retries_scheduled;
    }
    for (const auto& [status, n] : settled) {
      state_.metrics.runs_by_status[std::string(RunStatusName(status))] += n;
    }
    l.Unlock();
    turn.Unlock();
    state_.job_metrics.CountSettled(part, *applied);  // its own lock, not the engine's
  }
  MutexLock l(state_.mu);
  recycle_locked(batch);
  return written;
}

}  // namespace sked::engine_internal
