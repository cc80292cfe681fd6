// Test helper: settled run history written through the store's own path
// (insert, start, settle), as the engine would leave it.

#ifndef SKED_TESTING_RUN_HISTORY_H_
#define SKED_TESTING_RUN_HISTORY_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "sked/store.h"

namespace sked::testing {

// Writes one settled run of `job` per status, a minute apart from `from`
// (each finished a second after its fire); returns their ids, oldest first.
// Statuses must be ones a running run may end in.
inline std::vector<std::int64_t> WriteSettledRuns(Store* store, const Job& job,
                                                  const std::vector<RunStatus>& statuses,
                                                  Instant from) {
  std::vector<std::int64_t> ids;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    const Instant at = from + std::chrono::minutes(i);
    NewRun r;
    r.scheduled_for = at;
    r.not_before = at;
    r.trigger = RunTrigger::kManual;
    auto inserted = store->InsertRun(job.id, r, at);
    EXPECT_TRUE(inserted.ok()) << inserted.status().ToString();
    auto started = store->StartQueued("history", at, 1, at + std::chrono::seconds(30));
    EXPECT_TRUE(started.ok() && started->size() == 1u);
    if (!started.ok() || started->size() != 1u) return ids;
    RunOutcome o;
    o.run_id = started->front().id;
    o.lease_token = started->front().lease_token;
    o.status = statuses[i];
    o.finished_at = at + std::chrono::seconds(1);
    o.output = "run " + std::to_string(i);
    auto settled = store->SettleRuns({o});
    EXPECT_TRUE(settled.ok() && *settled == std::vector<bool>{true}) << settled.status().ToString();
    ids.push_back(o.run_id);
  }
  return ids;
}

// The ids of `job`'s runs (at most 1,000), in ascending order.
inline std::vector<std::int64_t> RunIdsOf(Store* store, const Job& job) {
  RunFilter f;
  f.job_id = job.id;
  f.limit = 1000;
  auto runs = store->ListRuns(f);
  EXPECT_TRUE(runs.ok()) << runs.status().ToString();
  std::vector<std::int64_t> ids;
  if (runs.ok()) {
    for (const Run& r : *runs) ids.push_back(r.id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace sked::testing

#endif  // SKED_TESTING_RUN_HISTORY_H_
