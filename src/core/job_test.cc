#include "sked/job.h"

#include <gtest/gtest.h>
#include <limits>

#include "sked/run.h"

namespace sked {
namespace {

JobSpec Valid() {
  JobSpec spec;
  spec.name = "nightly-report";
  spec.driver = "shell";
  spec.schedule = "30 2 * * *";
  return spec;
}

std::string Error(const JobSpec& spec) { return ValidateJobSpecShape(spec).message(); }

TEST(JobTest, NamesRoundTrip) {
  for (JobState s : {JobState::kPending, JobState::kActive, JobState::kPaused, JobState::kDisabled,
                     JobState::kExpired}) {
    EXPECT_EQ(*ParseJobState(JobStateName(s)), s);
  }
  for (OverlapPolicy p : {OverlapPolicy::kSkip, OverlapPolicy::kQueue, OverlapPolicy::kConcurrent,
                          OverlapPolicy::kReplace}) {
    EXPECT_EQ(*ParseOverlapPolicy(OverlapPolicyName(p)), p);
  }
  EXPECT_EQ(MisfirePolicyName(MisfirePolicy::kRunAll), "run_all");
  EXPECT_EQ(ParseOverlapPolicy("sometimes").status().message(),
            "unknown overlap policy 'sometimes' (expected skip, queue, concurrent or replace)");
}

TEST(JobTest, ValidShapePasses) { EXPECT_TRUE(ValidateJobSpecShape(Valid()).ok()); }

TEST(JobTest, BadFieldsAreNamed) {
  JobSpec s = Valid();
  s.name = "bad name";
  EXPECT_EQ(Error(s), "name: 'bad name' may hold only letters, digits, '.', '_' and '-'");
  s = Valid();
  s.name = "";
  EXPECT_EQ(Error(s), "name: must be 1-128 characters");
  s = Valid();
  s.driver = "";
  EXPECT_EQ(Error(s), "driver: is required");
  s = Valid();
  s.time_zone = "Mars/Olympus";
  EXPECT_EQ(Error(s),
            "time_zone: unknown time zone 'Mars/Olympus' (expected an IANA name such as "
            "Europe/Berlin)");
  s = Valid();
  s.max_concurrent = 0;
  EXPECT_EQ(Error(s), "max_concurrent: must be 1-1000, got 0");
  s = Valid();
  s.retry.max_retries = -1;
  EXPECT_EQ(Error(s), "retry.max: must be 0-100, got -1");
  s = Valid();
  s.retry.multiplier = 0.5;
  EXPECT_EQ(Error(s), "retry.multiplier: must be 1-100");
  s = Valid();
  s.timeout = Duration(0);
  EXPECT_EQ(Error(s), "timeout: must be positive");
  s = Valid();
  s.overrun_factor = 1.0;
  EXPECT_EQ(Error(s), "overrun_factor: must be from 1.1 to 100, got 1");
  s.overrun_factor = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(Error(s), "overrun_factor: must be from 1.1 to 100, got nan");
  s.overrun_factor = 1.5;
  EXPECT_TRUE(ValidateJobSpecShape(s).ok());
  s = Valid();
  s.start_at = Instant(std::chrono::seconds(100));
  s.end_at = Instant(std::chrono::seconds(50));
  EXPECT_EQ(Error(s), "end_at: must be after start_at");
  s = Valid();
  s.tags = {"a,b"};
  EXPECT_EQ(Error(s), "tags: each tag must be 1-64 characters without ',' or control characters");
  s.tags = {"red\x1b[2J"};
  EXPECT_EQ(Error(s), "tags: each tag must be 1-64 characters without ',' or control characters");
  // A description may not hold terminal control sequences (ESC[2J clears the screen).
  s = Valid();
  s.description = "nightly\x1b[2J";
  EXPECT_EQ(Error(s),
            "description: holds control character 27 (only tabs and newlines are allowed)");
  s.description = "line one\nline two\tand a tab";
  EXPECT_EQ(Error(s), "");
}

TEST(RunTest, TransitionsFollowTheStateMachine) {
  EXPECT_TRUE(CanTransition(RunStatus::kQueued, RunStatus::kRunning));
  EXPECT_TRUE(CanTransition(RunStatus::kQueued, RunStatus::kSkipped));
  EXPECT_TRUE(CanTransition(RunStatus::kQueued, RunStatus::kCancelled));
  EXPECT_FALSE(CanTransition(RunStatus::kQueued, RunStatus::kSucceeded));
  EXPECT_TRUE(CanTransition(RunStatus::kRunning, RunStatus::kAbandoned));
  // A reservation of an instance that died (see run.h).
  EXPECT_TRUE(CanTransition(RunStatus::kQueued, RunStatus::kAbandoned));
  EXPECT_FALSE(CanTransition(RunStatus::kAbandoned, RunStatus::kQueued));
  EXPECT_FALSE(CanTransition(RunStatus::kRunning, RunStatus::kQueued));
  EXPECT_FALSE(CanTransition(RunStatus::kSucceeded, RunStatus::kFailed));
  EXPECT_FALSE(CanTransition(RunStatus::kSkipped, RunStatus::kRunning));
  EXPECT_TRUE(IsTerminal(RunStatus::kTimedOut));
  EXPECT_FALSE(IsTerminal(RunStatus::kRunning));
  EXPECT_EQ(*ParseRunStatus("timed_out"), RunStatus::kTimedOut);
  EXPECT_EQ(RunTriggerName(RunTrigger::kCatchUp), "catch-up");
  EXPECT_FALSE(ParseRunStatus("done").ok());
}

}  // namespace
}  // namespace sked
