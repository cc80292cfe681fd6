// The claimer on its own: a SQLite store in memory and the engine's book,
// no threads.

#include "engine/claimer.h"

#include <gtest/gtest.h>

#include "cron/cron_test_util.h"
#include "testing/simulated_clock.h"

namespace sked::engine_internal {
namespace {

using sked::testing::At;
using std::chrono::milliseconds;
using std::chrono::seconds;

const Instant kT0 = At("2026-01-01T00:00:00Z");

class ClaimerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(Store::Open("sqlite::memory:").value());
    ASSERT_TRUE(store_->Migrate().ok());
    ctx_.options.instance_id = "test-1";
    ctx_.options.claim_ahead = milliseconds(200);
    ctx_.store = store_.get();
    ctx_.clock = &clock_;
    // Every second; its fire at kT0 was claimed and has run here: it ended,
    // and its end is not written yet (the store still counts it running).
    Job job;
    job.spec.name = "every-second";
    job.spec.driver = "noop";
    job.spec.schedule = "* * * * * *";
    job.created_at = job.updated_at = kT0 - seconds(60);
    job.next_run_at = kT0 + seconds(1);
    job_ = store_->CreateJob(job).value();
    NewRun fire;
    fire.scheduled_for = fire.not_before = kT0;
    ASSERT_TRUE(store_->InsertRun(job_.id, fire, kT0).ok());
    auto started = store_->StartQueued("test-1", kT0, 1, kT0 + seconds(30));
    ASSERT_TRUE(started.ok() && started->size() == 1u);
    ran_ = started->front();
  }

  // Claims at 200 ms before the next fire; what was reserved for it.
  size_t ClaimAheadOfTheNextFire() {
    clock_.AdvanceTime(milliseconds(800));
    claimer_.ClaimFires(clock_.Now());
    MutexLock l(state_.mu);
    return state_.reserved.size();
  }

  std::unique_ptr<Store> store_;
  sked::testing::SimulatedClock clock_{kT0};
  EngineContext ctx_;
  EngineState state_;
  Claimer claimer_{ctx_, state_};
  Job job_;
  sked::Run ran_;
};

// Its next fire is claimed ahead, as for an idle job: a job is not busy
// because its last run's end is still on its way to the store.
TEST_F(ClaimerTest, AJobWhoseRunEndedButIsNotSettledIsClaimedAhead) {
  {
    MutexLock l(state_.mu);
    state_.AddUnsettledLocked(ran_.id, job_.id, StoreSees::kRunning);
  }
  ASSERT_EQ(ClaimAheadOfTheNextFire(), 1u);
  MutexLock l(state_.mu);
  const sked::Run& next = state_.reserved.begin()->second;
  EXPECT_EQ(next.scheduled_for, kT0 + seconds(1));
  EXPECT_EQ(next.instance_id, "test-1");
}

// Without that knowledge the run is running as far as anyone can tell: the
// fire waits for its instant, where the overlap policy judges it.
TEST_F(ClaimerTest, AJobWithARunningRunIsNotClaimedAhead) {
  EXPECT_EQ(ClaimAheadOfTheNextFire(), 0u);
  auto job = store_->GetJob(job_.id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->next_run_at, kT0 + seconds(1)) << "left for its instant";
}

// A claim takes no further batch in its pass while kSettleBatchesBehind
// settle batches of outcomes wait (in the book or being written): the
// settles' turn comes first. Three jobs due, one per batch.
TEST_F(ClaimerTest, AClaimTakesOneBatchWhileOutcomesPileUp) {
  ctx_.options.claim_batch = 1;
  ctx_.options.settle_batch = 1;
  for (const char* name : {"a", "b"}) {
    Job job;
    job.spec.name = name;
    job.spec.driver = "noop";
    job.spec.schedule = "* * * * * *";
    job.created_at = job.updated_at = kT0 - seconds(60);
    job.next_run_at = kT0 + seconds(1);
    ASSERT_TRUE(store_->CreateJob(job).ok());
  }
  {
    MutexLock l(state_.mu);
    state_.AddUnsettledLocked(ran_.id, job_.id, StoreSees::kRunning);  // all three are idle
    // Behind: those in the book and the one the settler is writing.
    state_.outcomes.resize(static_cast<size_t>(kSettleBatchesBehind) - 1);
    state_.outcomes_in_settle = 1;
  }
  EXPECT_EQ(ClaimAheadOfTheNextFire(), 1u) << "one batch of one";
  {
    MutexLock l(state_.mu);
    state_.outcomes.clear();
    state_.outcomes_in_settle = 0;
  }
  claimer_.ClaimFires(clock_.Now());
  MutexLock l(state_.mu);
  EXPECT_EQ(state_.reserved.size(), 3u) << "the rest once the settles caught up";
}

// With a live peer, a burst claimed ahead of its instant is claimed by part:
// this instance takes its own jobs (id % 2 == its rank), all of them, and
// plans to claim what the peer left at the instant.
TEST_F(ClaimerTest, WithALivePeerABurstIsClaimedAheadByPart) {
  for (int i = 0; i < 5; ++i) {
    Job job;
    job.spec.name = "burst-" + std::to_string(i);
    job.spec.driver = "noop";
    job.spec.schedule = "* * * * * *";
    job.created_at = job.updated_at = kT0 - seconds(60);
    job.next_run_at = kT0 + seconds(1);
    ASSERT_TRUE(store_->CreateJob(job).ok());
  }
  {
    MutexLock l(state_.mu);
    state_.AddUnsettledLocked(ran_.id, job_.id, StoreSees::kRunning);  // all six are idle
    state_.live_peers = 1;
    state_.fleet_rank = 1;
    state_.claim_until = kT0 + seconds(1) + ctx_.options.claim_ahead;  // planned ahead
  }
  clock_.AdvanceTime(milliseconds(500));  // 500 ms before the burst
  claimer_.ClaimFires(clock_.Now());
  {
    MutexLock l(state_.mu);
    ASSERT_EQ(state_.reserved.size(), 3u) << "its part, not a share of a batch";
    for (const auto& [key, run] : state_.reserved) EXPECT_EQ(run.job_id % 2, 1) << run.job_name;
  }
  claimer_.PlanNextClaim(clock_.Now());
  {
    MutexLock l(state_.mu);
    EXPECT_EQ(state_.next_claim, kT0 + seconds(1)) << "the peer's part, if left, at its instant";
    EXPECT_EQ(state_.claim_until, Instant::min());
  }
  clock_.AdvanceTime(milliseconds(500));  // the peer did not claim its part
  claimer_.ClaimFires(clock_.Now());
  MutexLock l(state_.mu);
  EXPECT_EQ(state_.reserved.size() + state_.ready.size(), 6u) << "the rest, by this instance";
}

}  // namespace
}  // namespace sked::engine_internal
