// The settler on its own: a SQLite store in memory and the engine's book,
// no threads.

#include "engine/settler.h"

#include <gtest/gtest.h>

#include "cron/cron_test_util.h"

namespace sked::engine_internal {
namespace {

using sked::testing::At;
using std::chrono::seconds;

const Instant kT0 = At("2026-01-01T00:00:00Z");

// Between two batches the settler gives way to a claim that came due: the
// rest stay in the book, oldest first, and the loop is asked for another
// pass at once. At least one batch is written per pass, so settles cannot
// starve behind claims.
TEST(SettlerTest, GivesWayBetweenBatchesToAClaimAndKeepsTheRestInOrder) {
  auto store = std::move(Store::Open("sqlite::memory:").value());
  ASSERT_TRUE(store->Migrate().ok());
  Job job;
  job.spec.name = "many";
  job.spec.driver = "noop";
  job.spec.schedule = "* * * * *";
  job.spec.overlap = OverlapPolicy::kConcurrent;
  job.spec.max_concurrent = 5;
  job.created_at = job.updated_at = kT0 - seconds(60);
  job = store->CreateJob(job).value();
  for (int i = 0; i < 3; ++i) {
    NewRun r;
    r.scheduled_for = r.not_before = kT0 - seconds(i);
    r.trigger = RunTrigger::kManual;
    ASSERT_TRUE(store->InsertRun(job.id, r, kT0).ok());
  }
  auto started = store->StartQueued("test-1", kT0, 3, kT0 + seconds(30));
  ASSERT_TRUE(started.ok());
  ASSERT_EQ(started->size(), 3u);

  EngineContext ctx;
  ctx.options.instance_id = "test-1";
  ctx.options.settle_batch = 1;
  ctx.store = store.get();
  EngineState state;
  Settler settler(ctx, state);
  {
    MutexLock l(state.mu);
    for (const sked::Run& r : *started) {
      RunOutcome o;
      o.run_id = r.id;
      o.lease_token = r.lease_token;
      o.finished_at = kT0 + seconds(1);
      state.outcomes.push_back(o);
      state.AddUnsettledLocked(r.id, job.id, StoreSees::kRunning);
    }
  }
  int asked = 0;
  const Settler::Written written =
      settler.SettlePending([&] { return ++asked > 0; });  // a claim is due after every batch
  EXPECT_EQ(asked, 1) << "asked after the first batch, not before it";
  EXPECT_TRUE(written.any);
  EXPECT_TRUE(written.yielded);
  {
    MutexLock l(state.mu);
    ASSERT_EQ(state.outcomes.size(), 2u);
    EXPECT_EQ(state.outcomes[0].run_id, (*started)[1].id);
    EXPECT_EQ(state.outcomes[1].run_id, (*started)[2].id);
    EXPECT_TRUE(state.wake) << "another pass at once";
    EXPECT_EQ(state.unsettled.size(), 2u) << "the settled one is counted by the store again";
  }
  EXPECT_EQ(store->GetRun((*started)[0].id)->status, RunStatus::kSucceeded);
  EXPECT_EQ(store->GetRun((*started)[1].id)->status, RunStatus::kRunning);

  EXPECT_FALSE(settler.SettlePending().yielded);  // no claim due: all of them
  MutexLock l(state.mu);
  EXPECT_TRUE(state.outcomes.empty());
  EXPECT_TRUE(state.unsettled.empty());
  EXPECT_TRUE(state.unsettled_by_job.empty());
}

// Under a load the store cannot keep up with, claims do not take every turn:
// while more than kSettleBatchesBehind batches are left, the settler writes
// on however often a claim comes due.
TEST(SettlerTest, GivesWayToClaimsOnlyWhileFewOutcomesAreBehind) {
  auto store = std::move(Store::Open("sqlite::memory:").value());
  ASSERT_TRUE(store->Migrate().ok());
  Job job;
  job.spec.name = "many";
  job.spec.driver = "noop";
  job.spec.schedule = "* * * * *";
  job.spec.overlap = OverlapPolicy::kConcurrent;
  job.spec.max_concurrent = 10;
  job.created_at = job.updated_at = kT0 - seconds(60);
  job = store->CreateJob(job).value();
  const int n = kSettleBatchesBehind + 3;
  for (int i = 0; i < n; ++i) {
    NewRun r;
    r.scheduled_for = r.not_before = kT0 - seconds(i);
    r.trigger = RunTrigger::kManual;
    ASSERT_TRUE(store->InsertRun(job.id, r, kT0).ok());
  }
  auto started = store->StartQueued("test-1", kT0, n, kT0 + seconds(30));
  ASSERT_TRUE(started.ok());
  ASSERT_EQ(started->size(), static_cast<size_t>(n));

  EngineContext ctx;
  ctx.options.instance_id = "test-1";
  ctx.options.settle_batch = 1;
  ctx.store = store.get();
  EngineState state;
  Settler settler(ctx, state);
  {
    MutexLock l(state.mu);
    for (const sked::Run& r : *started) {
      RunOutcome o;
      o.run_id = r.id;
      o.lease_token = r.lease_token;
      o.finished_at = kT0 + seconds(1);
      state.outcomes.push_back(o);
    }
  }
  EXPECT_TRUE(settler.SettlePending([] { return true; }).yielded);  // a claim always due
  MutexLock l(state.mu);
  EXPECT_EQ(state.outcomes.size(), static_cast<size_t>(kSettleBatchesBehind))
      << "written until no more than kSettleBatchesBehind batches were left";
}

}  // namespace
}  // namespace sked::engine_internal
