#include "engine/engine_state.h"

#include <gtest/gtest.h>

#include "sked/time_zone.h"

namespace sked::engine_internal {
namespace {

Run RunOf(std::int64_t id, std::int64_t job_id) {
  Run r;
  r.id = id;
  r.job_id = job_id;
  return r;
}

TEST(EngineStateTest, TheJobCacheIsBoundedButKeepsEveryJobABookedRunNeeds) {
  EngineState state;
  MutexLock l(state.mu);
  const auto n = static_cast<std::int64_t>(kMaxCachedJobs) + 100;
  for (std::int64_t id = 1; id <= n; ++id) {
    Job job;
    job.id = id;
    job.version = 1;
    state.CacheJobLocked(job);
  }
  // Runs in each part of the book, of jobs spread over the cache.
  state.reserved.emplace(std::make_tuple(Instant(), 0, std::int64_t{1}), RunOf(1, 5));
  state.ready.push_back({RunOf(2, n / 2), Instant()});
  Execution e;
  e.run = RunOf(3, n);
  state.executing.emplace(3, std::move(e));
  state.TrimJobCacheLocked();
  EXPECT_LE(state.jobs.size(), kMaxCachedJobs / 2 + 3);
  EXPECT_TRUE(state.jobs.contains(5));
  EXPECT_TRUE(state.jobs.contains(n / 2));
  EXPECT_TRUE(state.jobs.contains(n));
  // Under the bound nothing goes.
  const size_t kept = state.jobs.size();
  state.TrimJobCacheLocked();
  EXPECT_EQ(state.jobs.size(), kept);
}

// Workers move a burst's due runs a few at a time, in the book's order
// (instant, then priority, then id); a run not yet due stays reserved.
TEST(EngineStateTest, DueRunsArePromotedInOrderAtMostAsManyAsAsked) {
  EngineState state;
  MutexLock l(state.mu);
  const Instant t0 = Instant() + std::chrono::seconds(100);
  state.reserved.emplace(std::make_tuple(t0, 0, std::int64_t{4}), RunOf(4, 1));
  state.reserved.emplace(std::make_tuple(t0, -5, std::int64_t{9}), RunOf(9, 1));  // priority 5
  state.reserved.emplace(std::make_tuple(t0, 0, std::int64_t{2}), RunOf(2, 1));
  state.reserved.emplace(std::make_tuple(t0 - std::chrono::seconds(1), 0, std::int64_t{7}),
                         RunOf(7, 1));
  state.reserved.emplace(std::make_tuple(t0 + std::chrono::seconds(1), 0, std::int64_t{1}),
                         RunOf(1, 1));
  state.PromoteDueLocked(t0, 2);
  ASSERT_EQ(state.ready.size(), 2u);
  EXPECT_EQ(state.ready[0].run.id, 7);
  EXPECT_EQ(state.ready[0].since, t0 - std::chrono::seconds(1)) << "waiting since its instant";
  EXPECT_EQ(state.ready[1].run.id, 9);
  EXPECT_EQ(state.reserved.size(), 3u);
  state.PromoteDueLocked(t0, 0);
  EXPECT_EQ(state.ready.size(), 2u);
  state.PromoteDueLocked(t0);
  ASSERT_EQ(state.ready.size(), 4u);
  EXPECT_EQ(state.ready[2].run.id, 2);
  EXPECT_EQ(state.ready[3].run.id, 4);
  ASSERT_EQ(state.reserved.size(), 1u) << "the run due later stays";
  EXPECT_EQ(state.reserved.begin()->second.id, 1);
}

// A burst booking more jobs than the bound keeps them all, and the cache is
// only trimmed again once it has grown by the bound beyond the booked runs.
TEST(EngineStateTest, ABookLargerThanTheJobCacheBoundKeepsItsJobs) {
  EngineState state;
  MutexLock l(state.mu);
  const auto booked = static_cast<std::int64_t>(kMaxCachedJobs) + 1000;
  for (std::int64_t id = 1; id <= booked + 10; ++id) {
    Job job;
    job.id = id;
    job.version = 1;
    state.CacheJobLocked(job);
    if (id <= booked) state.reserved.emplace(std::make_tuple(Instant(), 0, id), RunOf(id, id));
  }
  state.TrimJobCacheLocked();
  EXPECT_EQ(state.jobs.size(), static_cast<size_t>(booked + 10)) << "within bound + booked";
  for (std::int64_t id = booked + 11; id <= booked + 10 + static_cast<std::int64_t>(kMaxCachedJobs);
       ++id) {
    Job job;
    job.id = id;
    job.version = 1;
    state.CacheJobLocked(job);
  }
  state.TrimJobCacheLocked();
  EXPECT_EQ(state.jobs.size(), static_cast<size_t>(booked)) << "only the booked runs' jobs stay";
  for (std::int64_t id = 1; id <= booked; ++id) ASSERT_TRUE(state.jobs.contains(id)) << id;
}

TEST(EngineStateTest, CachingTheSameVersionKeepsTheParsedSchedule) {
  EngineState state;
  MutexLock l(state.mu);
  Job job;
  job.id = 1;
  job.version = 3;
  auto schedule = Schedule::Parse("every 10s", TimeZone::Utc(), std::chrono::seconds(0), Instant());
  ASSERT_TRUE(schedule.ok()) << schedule.status().ToString();
  state.jobs.emplace(1, CachedJobEntry{std::make_shared<const Job>(job), *schedule});
  state.CacheJobLocked(job);
  EXPECT_TRUE(state.jobs.at(1).schedule.has_value());
  job.version = 4;
  state.CacheJobLocked(job);
  EXPECT_EQ(state.jobs.at(1).job->version, 4);
  EXPECT_FALSE(state.jobs.at(1).schedule.has_value());
}

}  // namespace
}  // namespace sked::engine_internal
