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

class SettlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(Store::Open("sqlite::memory:").value());
    ASSERT_TRUE(store_->Migrate().ok());
    ctx_.options.instance_id = "test-1";
    ctx_.options.settle_batch = 1;
    ctx_.store = store_.get();
  }

  // `n` runs of one job started here and ended, their outcomes in the book
  // (oldest first); `unsettled`: also counted as ended but not settled.
  std::vector<sked::Run> EndedRuns(int n, bool unsettled) {
    Job job;
    job.spec.name = "many";
    job.spec.driver = "noop";
    job.spec.schedule = "* * * * *";
    job.spec.overlap = OverlapPolicy::kConcurrent;
    job.spec.max_concurrent = n;
    job.created_at = job.updated_at = kT0 - seconds(60);
    job = store_->CreateJob(job).value();
    for (int i = 0; i < n; ++i) {
      NewRun r;
      r.scheduled_for = r.not_before = kT0 - seconds(i);
      r.trigger = RunTrigger::kManual;
      EXPECT_TRUE(store_->InsertRun(job.id, r, kT0).ok());
    }
    auto started = store_->StartQueued("test-1", kT0, n, kT0 + seconds(30));
    EXPECT_TRUE(started.ok());
    EXPECT_EQ(started->size(), static_cast<size_t>(n));
    MutexLock l(state_.mu);
    for (const sked::Run& r : *started) {
      RunOutcome o;
      o.run_id = r.id;
      o.lease_token = r.lease_token;
      o.finished_at = kT0 + seconds(1);
      state_.outcomes.push_back(o);
      if (unsettled) state_.AddUnsettledLocked(r.id, job.id, StoreSees::kRunning);
    }
    return *started;
  }

  std::unique_ptr<Store> store_;
  EngineContext ctx_;
  EngineState state_;
  Settler settler_{ctx_, state_};
};

// Between two batches the settler gives way to a claim that came due: the
// rest stay in the book, oldest first, and the loop is asked for another
// pass at once. At least one batch is written per pass, so settles cannot
// starve behind claims.
TEST_F(SettlerTest, GivesWayBetweenBatchesToAClaimAndKeepsTheRestInOrder) {
  const std::vector<sked::Run> started = EndedRuns(3, /*unsettled=*/true);
  int asked = 0;
  const Settler::Written written =
      settler_.SettlePending([&] { return ++asked > 0; });  // a claim is due after every batch
  EXPECT_EQ(asked, 1) << "asked after the first batch, not before it";
  EXPECT_TRUE(written.any);
  EXPECT_TRUE(written.yielded);
  {
    MutexLock l(state_.mu);
    ASSERT_EQ(state_.outcomes.size(), 2u);
    EXPECT_EQ(state_.outcomes[0].run_id, started[1].id);
    EXPECT_EQ(state_.outcomes[1].run_id, started[2].id);
    EXPECT_EQ(state_.outcomes_in_settle, 0u);
    EXPECT_TRUE(state_.wake) << "another pass at once";
    EXPECT_EQ(state_.unsettled.size(), 2u) << "the settled one is counted by the store again";
  }
  EXPECT_EQ(store_->GetRun(started[0].id)->status, RunStatus::kSucceeded);
  EXPECT_EQ(store_->GetRun(started[1].id)->status, RunStatus::kRunning);

  EXPECT_FALSE(settler_.SettlePending().yielded);  // no claim due: all of them
  MutexLock l(state_.mu);
  EXPECT_TRUE(state_.outcomes.empty());
  EXPECT_EQ(state_.outcomes_in_settle, 0u);
  EXPECT_TRUE(state_.unsettled.empty());
  EXPECT_TRUE(state_.unsettled_by_job.empty());
}

// The outcome buffers take turns and keep their room: after a settle the
// workers append to the other buffer, grown as much as the one written.
TEST_F(SettlerTest, TheOutcomeBuffersKeepTheirRoomFromSettleToSettle) {
  EndedRuns(3, /*unsettled=*/false);
  {
    MutexLock l(state_.mu);
    state_.outcomes.reserve(1000);
    state_.outcomes_spare.reserve(900);
  }
  EXPECT_FALSE(settler_.SettlePending().yielded);
  MutexLock l(state_.mu);
  EXPECT_TRUE(state_.outcomes.empty());
  EXPECT_GE(state_.outcomes.capacity(), 900u) << "the spare one, in the workers' place";
  EXPECT_GE(state_.outcomes_spare.capacity(), 1000u) << "the written one, emptied, kept";
}

// Under a load the store cannot keep up with, claims do not take every turn:
// while more than kSettleBatchesBehind batches are left, the settler writes
// on however often a claim comes due. The outcomes it holds count as behind
// while it writes them (the claimer's bound sees them).
TEST_F(SettlerTest, GivesWayToClaimsOnlyWhileFewOutcomesAreBehind) {
  const int n = kSettleBatchesBehind + 3;
  EndedRuns(n, /*unsettled=*/false);
  std::vector<size_t> behind;  // at each question, what the claimer would see
  EXPECT_TRUE(settler_
                  .SettlePending([&] {
                    MutexLock l(state_.mu);
                    behind.push_back(state_.OutcomesBehindLocked());
                    return true;  // a claim always due
                  })
                  .yielded);
  EXPECT_EQ(behind, std::vector<size_t>{static_cast<size_t>(kSettleBatchesBehind)})
      << "asked once, with the outcomes still in the settler's hands counted";
  MutexLock l(state_.mu);
  EXPECT_EQ(state_.outcomes.size(), static_cast<size_t>(kSettleBatchesBehind))
      << "written until no more than kSettleBatchesBehind batches were left";
  EXPECT_EQ(state_.outcomes_in_settle, 0u);
}

}  // namespace
}  // namespace sked::engine_internal
