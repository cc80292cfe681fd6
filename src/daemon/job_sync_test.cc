#include "daemon/job_sync.h"

#include <gtest/gtest.h>

#include "testing/simulated_clock.h"

namespace sked::daemon {
namespace {

using sked::testing::SimulatedClock;

class JobSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(Store::Open("sqlite::memory:").value());
    ASSERT_TRUE(store_->Migrate().ok());
    drivers_ = DriverRegistry::WithBuiltins();
    EngineOptions options;
    options.min_interval = std::chrono::seconds(1);
    engine_ = std::make_unique<Engine>(options, store_.get(), drivers_.get(), &clock_);
  }

  static JobSpec Spec(const std::string& name, const std::string& schedule = "* * * * *") {
    JobSpec s;
    s.name = name;
    s.schedule = schedule;
    s.driver = "noop";
    return s;
  }

  SyncReport Sync(const std::vector<JobSpec>& declared) {
    auto r = SyncDeclaredJobs(*engine_, declared, "sked.toml");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.value_or(SyncReport());
  }

  SimulatedClock clock_{FromUnixSeconds(1'800'000'000)};
  std::unique_ptr<Store> store_;
  std::unique_ptr<DriverRegistry> drivers_;
  std::unique_ptr<Engine> engine_;
};

using V = std::vector<std::string>;

TEST_F(JobSyncTest, CreatesUpdatesLeavesAndDeletes) {
  SyncReport first = Sync({Spec("a"), Spec("b")});
  EXPECT_EQ(first.created, (V{"a", "b"}));
  EXPECT_EQ(engine_->GetJob("a")->source, "config");

  SyncReport again = Sync({Spec("a"), Spec("b")});
  EXPECT_TRUE(again.created.empty());
  EXPECT_TRUE(again.updated.empty());
  EXPECT_EQ(again.unchanged, (V{"a", "b"}));
  EXPECT_EQ(engine_->GetJob("a")->version, 1);

  SyncReport changed = Sync({Spec("a", "*/5 * * * *")});
  EXPECT_EQ(changed.updated, (V{"a"}));
  EXPECT_EQ(engine_->GetJob("a")->spec.schedule, "*/5 * * * *");
  // A declared job that left the config is disabled and kept, with why.
  EXPECT_EQ(changed.disabled, (V{"b"}));
  EXPECT_TRUE(changed.deleted.empty());
  auto b = engine_->GetJob("b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->state, JobState::kDisabled);
  EXPECT_EQ(b->state_reason, "removed from sked.toml");
  // Said once: the next start leaves it as it is.
  EXPECT_TRUE(Sync({Spec("a", "*/5 * * * *")}).disabled.empty());

  // Back in the config: enabled again, with the same id and history.
  SyncReport back = Sync({Spec("a", "*/5 * * * *"), Spec("b")});
  EXPECT_EQ(back.updated, (V{"b"}));
  EXPECT_EQ(engine_->GetJob("b")->state, JobState::kActive);
  EXPECT_EQ(engine_->GetJob("b")->state_reason, "");
  EXPECT_EQ(engine_->GetJob("b")->id, b->id);

  // Pruning deletes only when asked.
  auto pruned = SyncDeclaredJobs(*engine_, {Spec("a", "*/5 * * * *")}, "sked.toml", true);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->deleted, (V{"b"}));
  EXPECT_EQ(engine_->GetJob("b").status().code(), StatusCode::kNotFound);
}

// A disabled job's history is intact and nothing is claimed for it.
TEST_F(JobSyncTest, ADisabledDeclaredJobKeepsItsHistoryAndDoesNotFire) {
  Sync({Spec("a"), Spec("b")});
  const std::int64_t id = engine_->GetJob("b")->id;
  NewRun r;
  r.scheduled_for = clock_.Now();
  r.not_before = clock_.Now();
  ASSERT_TRUE(store_->InsertRun(id, r, clock_.Now()).ok());
  Sync({Spec("a")});
  RunFilter f;
  f.job_id = id;
  EXPECT_EQ(store_->ListRuns(f)->size(), 1u);
  EXPECT_EQ(*store_->CountJobs(JobState::kDisabled), 1);
  ClaimRequest request{clock_.Now() + std::chrono::hours(1), clock_.Now() + std::chrono::hours(1),
                       100, "", clock_.Now() + std::chrono::hours(2)};
  auto claimed = store_->ClaimDue(request, [](const DueJob& d) {
    EXPECT_NE(d.job.spec.name, "b");
    FirePlan p;
    p.next_run_at = *d.job.next_run_at + std::chrono::hours(24);
    return p;
  });
  ASSERT_TRUE(claimed.ok());
}

TEST_F(JobSyncTest, JobsFromTheCliAreNeverTouched) {
  ASSERT_TRUE(engine_->CreateJob(Spec("mine"), "api").ok());
  Sync({Spec("declared")});
  EXPECT_TRUE(engine_->GetJob("mine").ok());  // not deleted though undeclared
  auto clash = SyncDeclaredJobs(*engine_, {Spec("mine", "0 * * * *")}, "sked.toml");
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(clash.status().message().find("sked.toml: job 'mine': a job of that name was created "
                                          "by the CLI or API"),
            std::string::npos);
  EXPECT_EQ(engine_->GetJob("mine")->spec.schedule, "* * * * *");
}

TEST_F(JobSyncTest, APauseFromTheCliSurvivesARestart) {
  Sync({Spec("a")});
  ASSERT_TRUE(engine_->PauseJob("a").ok());
  SyncReport r = Sync({Spec("a")});
  EXPECT_EQ(r.unchanged, (V{"a"}));
  EXPECT_EQ(engine_->GetJob("a")->state, JobState::kPaused);
}

TEST_F(JobSyncTest, AnInvalidDeclaredJobStopsTheSyncWithItsName) {
  auto r = SyncDeclaredJobs(*engine_, {Spec("ok"), Spec("bad", "61 * * * *")}, "sked.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "sked.toml: job 'bad': schedule: field 'minute': value 61 out of range 0-59 at "
            "column 1");
}

TEST_F(JobSyncTest, TwoInstancesSyncingTheSameDeclarationsConverge) {
  EngineOptions options;
  options.min_interval = std::chrono::seconds(1);
  Engine other(options, store_.get(), drivers_.get(), &clock_);
  std::vector<JobSpec> declared;
  for (int i = 0; i < 20; ++i) declared.push_back(Spec("job-" + std::to_string(i)));
  std::thread t([&] { EXPECT_TRUE(SyncDeclaredJobs(other, declared, "b.toml").ok()); });
  EXPECT_TRUE(SyncDeclaredJobs(*engine_, declared, "a.toml").ok());
  t.join();
  EXPECT_EQ(engine_->ListJobs()->size(), 20u);
}

}  // namespace
}  // namespace sked::daemon
