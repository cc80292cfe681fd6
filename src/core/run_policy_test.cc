#include "core/run_policy.h"

#include <gtest/gtest.h>

#include "cron/cron_test_util.h"

namespace sked::policy {
namespace {

using sked::testing::At;
using std::chrono::minutes;
using std::chrono::seconds;

struct Fixture {
  DueJob due;
  Schedule schedule;
};

Fixture Make(const std::string& cron, const std::string& next_run_at) {
  DueJob d;
  d.job.id = 1;
  d.job.spec.name = "j";
  d.job.spec.schedule = cron;
  d.job.next_run_at = At(next_run_at);
  auto s = Schedule::Parse(cron, TimeZone::Utc(), seconds(0), At("2026-01-01T00:00:00Z"));
  EXPECT_TRUE(s.ok());
  return {d, *s};
}

const PlannerOptions kOptions{seconds(5), 100};

FirePlan Plan(const Fixture& f, Instant now, std::optional<Instant> horizon = std::nullopt) {
  return PlanFires(f.due, f.schedule, now, horizon.value_or(now), kOptions);
}

TEST(FirePlannerTest, OnTimeFireQueuesOneRunAndAdvances) {
  Fixture f = Make("* * * * *", "2026-01-01T10:00:00Z");
  FirePlan p = Plan(f, At("2026-01-01T10:00:00.002Z"));
  ASSERT_EQ(p.runs.size(), 1u);
  EXPECT_EQ(p.runs[0].status, RunStatus::kQueued);
  EXPECT_EQ(p.runs[0].trigger, RunTrigger::kSchedule);
  EXPECT_EQ(p.runs[0].scheduled_for, At("2026-01-01T10:00:00Z"));
  EXPECT_EQ(*p.next_run_at, At("2026-01-01T10:01:00Z"));
  EXPECT_EQ(p.state, JobState::kActive);
}

TEST(FirePlannerTest, OverlapSkipRecordsASkippedRun) {
  Fixture f = Make("* * * * *", "2026-01-01T10:00:00Z");
  f.due.running_runs = 1;
  FirePlan p = Plan(f, At("2026-01-01T10:00:00Z"));
  ASSERT_EQ(p.runs.size(), 1u);
  EXPECT_EQ(p.runs[0].status, RunStatus::kSkipped);
  EXPECT_EQ(p.runs[0].reason, "overlap");
}

TEST(FirePlannerTest, OverlapQueueIsBounded) {
  Fixture f = Make("* * * * *", "2026-01-01T10:00:00Z");
  f.due.job.spec.overlap = OverlapPolicy::kQueue;
  f.due.job.spec.max_queued = 1;
  f.due.running_runs = 1;
  EXPECT_EQ(Plan(f, At("2026-01-01T10:00:00Z")).runs[0].status, RunStatus::kQueued);
  f.due.queued_runs = 1;
  FirePlan full = Plan(f, At("2026-01-01T10:00:00Z"));
  EXPECT_EQ(full.runs[0].status, RunStatus::kSkipped);
  EXPECT_EQ(full.runs[0].reason, "queue_full");
}

TEST(FirePlannerTest, OverlapConcurrentAndReplace) {
  Fixture f = Make("* * * * *", "2026-01-01T10:00:00Z");
  f.due.job.spec.overlap = OverlapPolicy::kConcurrent;
  f.due.job.spec.max_concurrent = 2;
  f.due.running_runs = 1;
  EXPECT_EQ(Plan(f, At("2026-01-01T10:00:00Z")).runs[0].status, RunStatus::kQueued);
  f.due.running_runs = 2;
  EXPECT_EQ(Plan(f, At("2026-01-01T10:00:00Z")).runs[0].status, RunStatus::kSkipped);
  f.due.job.spec.overlap = OverlapPolicy::kReplace;
  f.due.running_runs = 1;
  FirePlan p = Plan(f, At("2026-01-01T10:00:00Z"));
  EXPECT_EQ(p.runs[0].status, RunStatus::kQueued);
  EXPECT_TRUE(p.cancel_running);
}

TEST(FirePlannerTest, MisfireRunOnceMakesOneCatchUpRun) {
  Fixture f = Make("*/10 * * * *", "2026-01-01T10:00:00Z");
  // Down from 10:00 to 10:35: 10:00, 10:10, 10:20, 10:30 were missed.
  FirePlan p = Plan(f, At("2026-01-01T10:35:00Z"));
  ASSERT_EQ(p.runs.size(), 1u);
  EXPECT_EQ(p.runs[0].trigger, RunTrigger::kCatchUp);
  EXPECT_EQ(p.runs[0].scheduled_for, At("2026-01-01T10:30:00Z"));
  EXPECT_EQ(*p.next_run_at, At("2026-01-01T10:40:00Z"));
}

TEST(FirePlannerTest, MisfireSkipRecordsEachMissedFire) {
  Fixture f = Make("*/10 * * * *", "2026-01-01T10:00:00Z");
  f.due.job.spec.misfire = MisfirePolicy::kSkip;
  FirePlan p = Plan(f, At("2026-01-01T10:35:00Z"));
  ASSERT_EQ(p.runs.size(), 4u);
  for (const NewRun& r : p.runs) {
    EXPECT_EQ(r.status, RunStatus::kSkipped);
    EXPECT_EQ(r.reason, "misfire");
  }
  EXPECT_EQ(*p.next_run_at, At("2026-01-01T10:40:00Z"));
}

TEST(FirePlannerTest, MisfireRunAllWithinTheCatchupWindow) {
  Fixture f = Make("*/10 * * * *", "2026-01-01T10:00:00Z");
  f.due.job.spec.misfire = MisfirePolicy::kRunAll;
  f.due.job.spec.overlap = OverlapPolicy::kConcurrent;
  f.due.job.spec.max_concurrent = 10;
  f.due.job.spec.catchup_window = minutes(20);
  FirePlan p = Plan(f, At("2026-01-01T10:35:00Z"));
  ASSERT_EQ(p.runs.size(), 4u);
  // 10:00 and 10:10 are older than the window: recorded as skipped.
  EXPECT_EQ(p.runs[0].status, RunStatus::kSkipped);
  EXPECT_EQ(p.runs[0].reason, "catchup_window");
  EXPECT_EQ(p.runs[1].status, RunStatus::kSkipped);
  EXPECT_EQ(p.runs[2].scheduled_for, At("2026-01-01T10:20:00Z"));
  EXPECT_EQ(p.runs[2].trigger, RunTrigger::kCatchUp);
  EXPECT_EQ(p.runs[2].status, RunStatus::kQueued);
  EXPECT_EQ(p.runs[3].scheduled_for, At("2026-01-01T10:30:00Z"));
  EXPECT_EQ(p.runs[3].status, RunStatus::kQueued);
}

TEST(FirePlannerTest, EndAtExpiresTheJob) {
  Fixture f = Make("0 * * * *", "2026-01-01T10:00:00Z");
  f.due.job.spec.end_at = At("2026-01-01T10:30:00Z");
  FirePlan p = Plan(f, At("2026-01-01T10:00:00Z"));
  EXPECT_EQ(p.runs.size(), 1u);
  EXPECT_FALSE(p.next_run_at.has_value());
  EXPECT_EQ(p.state, JobState::kExpired);
}

TEST(RetryPlannerTest, BackoffMultiplierCapAndJitter) {
  Job job;
  job.spec.retry.max_retries = 3;
  job.spec.retry.backoff = seconds(10);
  job.spec.retry.multiplier = 3.0;
  job.spec.retry.max_backoff = seconds(60);
  job.spec.retry.jitter = 0.5;
  sked::Run run;
  run.scheduled_for = At("2026-01-01T10:00:00Z");
  run.attempt = 1;
  const Instant end = At("2026-01-01T10:00:05Z");
  auto r1 = PlanRetry(job, run, RunStatus::kFailed, end, 0.0);
  ASSERT_TRUE(r1.has_value());
  EXPECT_EQ(r1->attempt, 2);
  EXPECT_EQ(r1->trigger, RunTrigger::kRetry);
  EXPECT_EQ(r1->scheduled_for, run.scheduled_for);
  EXPECT_EQ(r1->not_before, end + seconds(10));
  run.attempt = 2;
  EXPECT_EQ(PlanRetry(job, run, RunStatus::kFailed, end, 0.0)->not_before, end + seconds(30));
  EXPECT_EQ(PlanRetry(job, run, RunStatus::kFailed, end, 0.5)->not_before,
            end + seconds(30) + std::chrono::milliseconds(7500));
  run.attempt = 3;
  EXPECT_EQ(PlanRetry(job, run, RunStatus::kFailed, end, 0.0)->not_before, end + seconds(60));
  run.attempt = 4;  // the fourth attempt was the last allowed
  EXPECT_FALSE(PlanRetry(job, run, RunStatus::kFailed, end, 0.0).has_value());
}

TEST(RetryPlannerTest, OnlyChosenOutcomesRetry) {
  Job job;
  job.spec.retry.max_retries = 1;
  job.spec.retry.on_timed_out = false;
  sked::Run run;
  EXPECT_TRUE(PlanRetry(job, run, RunStatus::kFailed, Instant(), 0).has_value());
  EXPECT_TRUE(PlanRetry(job, run, RunStatus::kAbandoned, Instant(), 0).has_value());
  EXPECT_FALSE(PlanRetry(job, run, RunStatus::kTimedOut, Instant(), 0).has_value());
  EXPECT_FALSE(PlanRetry(job, run, RunStatus::kSucceeded, Instant(), 0).has_value());
  EXPECT_FALSE(PlanRetry(job, run, RunStatus::kCancelled, Instant(), 0).has_value());
  job.spec.retry.max_retries = 0;
  EXPECT_FALSE(PlanRetry(job, run, RunStatus::kFailed, Instant(), 0).has_value());
}

TEST(FirePlannerTest, AnIdleJobsNextFireIsPlannedAheadUpToTheHorizon) {
  Fixture f = Make("* * * * *", "2026-01-01T10:01:00Z");
  FirePlan p = Plan(f, At("2026-01-01T10:00:59.900Z"), At("2026-01-01T10:01:00Z"));
  ASSERT_EQ(p.runs.size(), 1u);
  EXPECT_EQ(p.runs[0].status, RunStatus::kQueued);
  EXPECT_EQ(p.runs[0].trigger, RunTrigger::kSchedule);
  EXPECT_EQ(p.runs[0].scheduled_for, At("2026-01-01T10:01:00Z"));
  EXPECT_EQ(p.runs[0].not_before, At("2026-01-01T10:01:00Z"));
  EXPECT_EQ(*p.next_run_at, At("2026-01-01T10:02:00Z"));
}

TEST(FirePlannerTest, ABusyJobIsNotPlannedAheadSoItsOverlapIsJudgedAtTheInstant) {
  Fixture f = Make("* * * * *", "2026-01-01T10:01:00Z");
  f.due.running_runs = 1;
  FirePlan p = Plan(f, At("2026-01-01T10:00:59.900Z"), At("2026-01-01T10:01:00Z"));
  EXPECT_TRUE(p.runs.empty());
  EXPECT_EQ(*p.next_run_at, At("2026-01-01T10:01:00Z"));  // claimed again at the instant
  f.due.running_runs = 0;
  f.due.queued_runs = 1;
  EXPECT_TRUE(Plan(f, At("2026-01-01T10:00:59.900Z"), At("2026-01-01T10:01:00Z")).runs.empty());
}

TEST(FirePlannerTest, OnlyOneFireIsPlannedAhead) {
  Fixture f = Make("*/10 * * * * *", "2026-01-01T10:00:10Z");
  FirePlan p = Plan(f, At("2026-01-01T10:00:05Z"), At("2026-01-01T10:00:30Z"));
  ASSERT_EQ(p.runs.size(), 1u);
  EXPECT_EQ(p.runs[0].scheduled_for, At("2026-01-01T10:00:10Z"));
  EXPECT_EQ(*p.next_run_at, At("2026-01-01T10:00:20Z"));
}

TEST(StartVerdictTest, TheStartingDeadlineWinsOverEverything) {
  JobSpec spec;
  spec.starting_deadline = seconds(30);
  const Instant fire = At("2026-01-01T10:00:00Z");
  EXPECT_EQ(JudgeStart(spec, fire, fire + seconds(30), 0, StartFrom::kQueue), StartVerdict::kStart);
  EXPECT_EQ(JudgeStart(spec, fire, fire + seconds(31), 0, StartFrom::kQueue),
            StartVerdict::kSkipDeadline);
  EXPECT_EQ(JudgeStart(spec, fire, fire + seconds(31), 5, StartFrom::kClaim),
            StartVerdict::kSkipDeadline);
  EXPECT_STREQ(SkipReason(StartVerdict::kSkipDeadline), "deadline");
}

TEST(StartVerdictTest, ABusyJobSkipsAClaimedFireOnlyUnderTheSkipPolicy) {
  const Instant t = At("2026-01-01T10:00:00Z");
  JobSpec skip;
  skip.overlap = OverlapPolicy::kSkip;
  EXPECT_EQ(JudgeStart(skip, t, t, 0, StartFrom::kClaim), StartVerdict::kStart);
  EXPECT_EQ(JudgeStart(skip, t, t, 1, StartFrom::kClaim), StartVerdict::kSkipOverlap);
  // A skip job's run in the queue was queued deliberately (a trigger, a retry): it waits.
  EXPECT_EQ(JudgeStart(skip, t, t, 1, StartFrom::kQueue), StartVerdict::kWait);
  JobSpec queue;
  queue.overlap = OverlapPolicy::kQueue;
  EXPECT_EQ(JudgeStart(queue, t, t, 1, StartFrom::kClaim), StartVerdict::kWait);
  EXPECT_STREQ(SkipReason(StartVerdict::kSkipOverlap), "overlap");
  EXPECT_STREQ(SkipReason(StartVerdict::kWait), "");
}

TEST(StartVerdictTest, ConcurrentJobsStartUpToTheirAllowance) {
  const Instant t = At("2026-01-01T10:00:00Z");
  JobSpec spec;
  spec.overlap = OverlapPolicy::kConcurrent;
  spec.max_concurrent = 3;
  EXPECT_EQ(AllowedRunning(spec), 3);
  EXPECT_EQ(JudgeStart(spec, t, t, 2, StartFrom::kQueue), StartVerdict::kStart);
  EXPECT_EQ(JudgeStart(spec, t, t, 3, StartFrom::kQueue), StartVerdict::kWait);
  spec.overlap = OverlapPolicy::kReplace;
  EXPECT_EQ(AllowedRunning(spec), 1);
}

TEST(LeaseTokenTest, TokensArePositiveAndNeverZero) {
  std::mt19937_64 rng(0);
  for (int i = 0; i < 1000; ++i) EXPECT_GT(NewLeaseToken(rng), 0);
  std::mt19937_64 a(1), b(1);  // tokens come from the caller's generator only
  EXPECT_EQ(NewLeaseToken(a), NewLeaseToken(b));
}

}  // namespace
}  // namespace sked::policy
