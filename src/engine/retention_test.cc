// The retention service on the simulated clock over one SQLite store shared
// by two instances: one sweeps (the lease), the other takes over when the
// first stops renewing it; a sweep goes through every job in batches.

#include "engine/retention.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "sked/store.h"
#include "testing/run_history.h"
#include "testing/simulated_clock.h"

namespace sked {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

const Instant kT0 = Instant(seconds(1'800'000'000));

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*Store::Open("sqlite::memory:"));
    ASSERT_TRUE(store_->Migrate().ok());
  }

  // A job with `n` succeeded runs, a minute apart from kT0.
  Job JobWithRuns(const std::string& name, int n) {
    Job j;
    j.spec.name = name;
    j.spec.driver = "noop";
    j.spec.schedule = "* * * * *";
    j.created_at = j.updated_at = kT0;
    j = *store_->CreateJob(j);
    (void)testing::WriteSettledRuns(store_.get(), j,
                                    std::vector<RunStatus>(n, RunStatus::kSucceeded), kT0);
    return j;
  }

  std::int64_t RunsOf(const Job& j) {
    return static_cast<std::int64_t>(testing::RunIdsOf(store_.get(), j).size());
  }

  RetentionOptions Options(const std::string& instance) {
    RetentionOptions o;
    o.instance_id = instance;
    o.policy.max_runs = 2;
    o.every = minutes(10);
    o.batch = 3;
    o.jobs_per_batch = 2;
    o.pause = Duration(0);
    return o;
  }

  testing::SimulatedClock clock_{kT0 + std::chrono::hours(1)};
  std::unique_ptr<Store> store_;
};

TEST_F(RetentionTest, ASweepPrunesEveryJobInBatches) {
  std::vector<Job> jobs;
  for (int i = 0; i < 5; ++i) jobs.push_back(JobWithRuns("job-" + std::to_string(i), 6));
  RetentionService service(Options("a"), store_.get(), &clock_);
  auto deleted = service.SweepOnce();
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  ASSERT_TRUE(*deleted);
  EXPECT_EQ(**deleted, 5 * 4) << "batches of 3 runs and 2 jobs must still cover every job";
  for (const Job& j : jobs) EXPECT_EQ(RunsOf(j), 2) << j.spec.name;
  RetentionStats stats = service.Stats();
  EXPECT_EQ(stats.sweeps, 1);
  EXPECT_EQ(stats.runs_deleted, 20);
  EXPECT_EQ(stats.last_sweep_at, clock_.Now());
}

TEST_F(RetentionTest, AFleetSweepsOnceAndAnotherInstanceTakesOverWhenTheHolderStops) {
  Job j = JobWithRuns("shared", 5);
  RetentionService a(Options("a"), store_.get(), &clock_);
  RetentionService b(Options("b"), store_.get(), &clock_);
  EXPECT_EQ(**a.SweepOnce(), 3);
  EXPECT_FALSE(*b.SweepOnce()) << "b swept while a holds the lease";
  (void)JobWithRuns("more", 4);
  clock_.AdvanceTime(minutes(10));
  EXPECT_FALSE(*b.SweepOnce());
  EXPECT_EQ(**a.SweepOnce(), 2) << "a renews its lease at each sweep";
  // a stops sweeping (killed): its lease runs out after two periods.
  clock_.AdvanceTime(minutes(19));
  EXPECT_FALSE(*b.SweepOnce());
  clock_.AdvanceTime(minutes(2));
  auto taken = b.SweepOnce();
  ASSERT_TRUE(taken.ok());
  EXPECT_TRUE(*taken) << "b did not take over a lapsed lease";
  EXPECT_FALSE(*a.SweepOnce()) << "a came back and swept beside b";
  EXPECT_EQ(RunsOf(j), 2);
}

TEST_F(RetentionTest, TheStartedServiceSweepsEachPeriodAndStops) {
  Job j = JobWithRuns("periodic", 4);
  // Told of each sweep: the test waits on that (bounded), never by sleeping.
  std::mutex mu;
  std::condition_variable cv;
  int swept = 0;
  RetentionOptions options = Options("a");
  options.on_sweep = [&](const Result<std::int64_t>&, Duration) {
    std::lock_guard<std::mutex> l(mu);
    ++swept;
    cv.notify_all();
  };
  auto wait_for_sweeps = [&](int n) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::seconds(10), [&] { return swept >= n; });
  };
  RetentionService service(options, store_.get(), &clock_);
  service.Start();
  ASSERT_TRUE(wait_for_sweeps(1));        // the first sweep comes at start
  ASSERT_TRUE(clock_.WaitForWaiters(1));  // then it waits for the next period
  EXPECT_EQ(RunsOf(j), 2);
  EXPECT_EQ(service.Stats().sweeps, 1);
  (void)JobWithRuns("later", 3);
  clock_.AdvanceTime(minutes(9));
  EXPECT_EQ(service.Stats().sweeps, 1) << "swept before its period";
  clock_.AdvanceTime(minutes(1));
  ASSERT_TRUE(wait_for_sweeps(2));
  EXPECT_EQ(service.Stats().sweeps, 2);
  EXPECT_EQ(service.Stats().runs_deleted, 3);
  service.Stop();
  service.Stop();
}

}  // namespace
}  // namespace sked
