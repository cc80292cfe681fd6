#include "engine/settler.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace sked::engine_internal {

void Settler::SettlePending() {
  std::vector<RunOutcome> batch;
  {
    MutexLock l(state_.mu);
    batch.swap(state_.outcomes);
    // A run's end is written after its start: a run a worker took from
    // memory may finish before the loop has recorded that it started.
    auto waiting = std::stable_partition(batch.begin(), batch.end(), [this](const RunOutcome& o) {
      state_.mu.AssertHeld();
      return !state_.unrecorded_starts.contains(o.run_id);
    });
    state_.outcomes.assign(std::make_move_iterator(waiting), std::make_move_iterator(batch.end()));
    batch.erase(waiting, batch.end());
  }
  const auto step = static_cast<size_t>(ctx_.options.settle_batch);
  for (size_t from = 0; from < batch.size(); from += step) {
    const size_t to = std::min(batch.size(), from + step);
    std::vector<RunOutcome> part(std::make_move_iterator(batch.begin() + static_cast<long>(from)),
                                 std::make_move_iterator(batch.begin() + static_cast<long>(to)));
    auto applied = ctx_.store->SettleRuns(part);
    MutexLock l(state_.mu);
    if (!applied.ok()) {
      state_.last_store_error = applied.status().message();
      // Keep them for the next pass: the store may come back.
      for (RunOutcome& o : part) state_.outcomes.push_back(std::move(o));
      continue;
    }
    for (size_t i = 0; i < part.size(); ++i) {
      if (!(*applied)[i]) continue;  // fenced out: settled elsewhere
      ++state_.metrics.runs_by_status[std::string(RunStatusName(part[i].status))];
      if (part[i].retry) ++state_.metrics.retries_scheduled;
    }
  }
}

}  // namespace sked::engine_internal
