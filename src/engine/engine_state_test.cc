#include "engine/engine_state.h"

#include <gtest/gtest.h>

#include "engine/job_metrics.h"
#include "sked/time_zone.h"

namespace sked::engine_internal {
namespace {

Run RunOf(std::int64_t id, std::int64_t job_id) {
  Run r;
  r.id = id;
  r.job_id = job_id;
  return r;
}

// Reserves runs `from`..`to` (each of its own job) for `at`.
void Reserve(EngineState& state, Instant at, std::int64_t from, std::int64_t to)
    SKED_REQUIRES(state.mu) {
  for (std::int64_t id = from; id <= to; ++id) {
    state.reserved.emplace(std::make_tuple(at, 0, id), RunOf(id, id));
  }
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
  e.job_id = n;
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

// The claimer grows, ahead of a burst, what each booked run adds to as it
// starts and ends, so that no worker grows it in the middle of the burst.
TEST(EngineStateTest, RoomIsMadeAheadForWhatTheBookedRunsWillAdd) {
  EngineState state;
  MutexLock l(state.mu);
  const Instant t0 = Instant() + std::chrono::seconds(100);
  Reserve(state, t0, 1, 3000);
  state.ready.push_back({RunOf(5000, 1), t0});
  state.outcomes.resize(10);  // not yet settled: the room is on top of them
  state.dispatches.resize(20);
  state.MakeRoomForBookedLocked();
  EXPECT_GE(state.outcomes.capacity(), 3011u);
  EXPECT_GE(state.outcomes_spare.capacity(), 3001u);
  EXPECT_GE(state.dispatches.capacity(), 3021u);
  const auto holds_without_rehash = [](const auto& m, size_t n) {
    return static_cast<float>(n) <= m.max_load_factor() * static_cast<float>(m.bucket_count());
  };
  EXPECT_TRUE(holds_without_rehash(state.unsettled, 3001));
  EXPECT_TRUE(holds_without_rehash(state.unsettled_by_job, 3001));
  EXPECT_TRUE(holds_without_rehash(state.unrecorded_starts, 3001));
  // Bounded: a million booked runs do not make room for a million outcomes.
  Reserve(state, t0, 3001, static_cast<std::int64_t>(kMaxRoomForBooked) + 5000);
  state.MakeRoomForBookedLocked();
  EXPECT_LE(state.outcomes_spare.capacity(), kMaxRoomForBooked);
}

// An idle worker joins the active ones when none is active, or when every
// run they execute has run kWorkerJoinAfter; else it learns when to ask again.
TEST(EngineStateTest, AWorkerJoinsOnlyWhenTheActiveOnesBlock) {
  EngineState state;
  MutexLock l(state.mu);
  const auto now = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point again{};
  EXPECT_TRUE(state.JoinWorkersLocked(now, &again)) << "none active";
  const auto executing = [&](std::int64_t id, std::chrono::steady_clock::duration ago) {
    state.mu.AssertHeld();
    Execution e;
    e.began = now - ago;
    state.executing.emplace(id, std::move(e));
  };
  state.active_workers = 1;
  executing(1, std::chrono::microseconds(10));
  EXPECT_FALSE(state.JoinWorkersLocked(now, &again)) << "its run began just now";
  EXPECT_EQ(again, now - std::chrono::microseconds(10) + kWorkerJoinAfter);
  state.executing.clear();
  executing(1, kWorkerJoinAfter);
  EXPECT_TRUE(state.JoinWorkersLocked(now, &again)) << "its run blocks";
  state.active_workers = 2;  // the other is between two runs
  EXPECT_FALSE(state.JoinWorkersLocked(now, &again));
  EXPECT_EQ(again, now + kWorkerJoinAfter);
  executing(2, std::chrono::microseconds(30));  // one blocks, the other gets on
  EXPECT_FALSE(state.JoinWorkersLocked(now, &again));
  EXPECT_EQ(again, now - std::chrono::microseconds(30) + kWorkerJoinAfter);
  state.executing.clear();
  executing(1, 2 * kWorkerJoinAfter);
  executing(2, kWorkerJoinAfter + std::chrono::microseconds(1));
  EXPECT_TRUE(state.JoinWorkersLocked(now, &again)) << "both block";
}

// A worker keeps one due run ready for each active worker and one for a
// worker that joins, not the whole burst.
TEST(EngineStateTest, WorkersKeepAFewDueRunsReady) {
  EngineState state;
  MutexLock l(state.mu);
  const Instant t0 = Instant() + std::chrono::seconds(100);
  Reserve(state, t0, 1, 10);
  Reserve(state, t0 + std::chrono::seconds(1), 11, 11);
  state.TopUpReadyLocked(t0);
  EXPECT_EQ(state.ready.size(), 1u) << "none active: one for the first";
  state.active_workers = 2;
  state.TopUpReadyLocked(t0);
  EXPECT_EQ(state.ready.size(), 3u);
  EXPECT_EQ(state.ready[2].run.id, 3) << "in order";
  state.active_workers = 20;
  state.TopUpReadyLocked(t0);
  EXPECT_EQ(state.ready.size(), 10u) << "what is due, and no more";
}

// A reservation from the queue takes as many runs as the workers start in a
// hold: by the starts of the last hold or, while runs end here, by the mean
// time of the runs that ended lately, when that says more. The ready runs
// kept from the queue's hand-back follow the starts alone.
TEST(EngineStateTest, AReservationFollowsTheMeanRunTimeWhileRunsEnd) {
  EngineState state;
  MutexLock l(state.mu);
  const Instant t0 = Instant() + std::chrono::seconds(100);
  ASSERT_EQ(state.HoldReadyLocked(), std::chrono::seconds(1));
  EXPECT_EQ(state.ReserveFromQueueLocked(t0, 4), 4u) << "nothing known: one per worker";
  for (int i = 0; i < 6; ++i) state.recent_starts.push_back(t0);
  EXPECT_EQ(state.ReserveFromQueueLocked(t0, 4), 6u) << "the starts of the last hold";
  state.CountRunTimeLocked(t0, std::chrono::milliseconds(10));
  EXPECT_EQ(state.ReserveFromQueueLocked(t0, 4), 400u) << "4 workers, 10 ms a run, a 1 s hold";
  EXPECT_EQ(state.KeepReadyLocked(t0, 4), 6u) << "the ready runs kept: the starts alone";
  // A 170 ms run moves the mean by 1/16 of the difference: to 20 ms.
  state.CountRunTimeLocked(t0, std::chrono::milliseconds(170));
  EXPECT_EQ(state.ReserveFromQueueLocked(t0, 4), 200u);
  for (int i = 0; i < 200; ++i) state.CountRunTimeLocked(t0, std::chrono::seconds(2));
  EXPECT_EQ(state.ReserveFromQueueLocked(t0, 4), 6u) << "long runs: the starts counted";
  for (int i = 0; i < 200; ++i) state.CountRunTimeLocked(t0, Duration(0));
  EXPECT_EQ(state.ReserveFromQueueLocked(t0, 4), kMaxRoomForBooked) << "runs of no time: bounded";
  EXPECT_EQ(state.ReserveFromQueueLocked(t0 + std::chrono::milliseconds(1001), 4), 4u)
      << "no run ended within a hold (the workers may all block): the starts counted";
}

// A job's series count a run once its end is written: its duration and
// status; a run fenced out (settled elsewhere) ran here, so its duration
// only. Past the bound, runs count as untracked.
TEST(JobMetricsBookTest, SettledRunsCountTheirDurationAndTheirStatusWhenApplied) {
  JobMetricsBook book;
  book.Configure({0.5, 1}, 1);
  const auto outcome = [](std::string job, RunStatus status, Duration ran) {
    RunOutcome o;
    o.job_name = std::move(job);
    o.status = status;
    o.ran = ran;
    return o;
  };
  book.CountSettled({outcome("a", RunStatus::kSucceeded, std::chrono::milliseconds(300)),
                     outcome("a", RunStatus::kFailed, std::chrono::milliseconds(800)),
                     outcome("b", RunStatus::kSucceeded, std::chrono::milliseconds(1))},
                    {true, false, true});
  std::int64_t untracked = -1;
  std::map<std::string, JobMetrics> jobs = book.Snapshot(&untracked);
  ASSERT_EQ(jobs.size(), 1u) << "bounded to one job";
  const JobMetrics& a = jobs["a"];
  EXPECT_EQ(a.run_duration.count, 2);
  EXPECT_EQ(a.run_duration.counts, (std::vector<std::int64_t>{1, 2}));
  EXPECT_DOUBLE_EQ(a.run_duration.sum, 1.1);
  EXPECT_EQ(a.runs_by_status, (std::map<std::string, std::int64_t>{{"succeeded", 1}}))
      << "the fenced-out run's status is the other instance's to count";
  EXPECT_EQ(untracked, 1) << "b's run";
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

// Runs that ended here and wait for their settle do not keep their job busy
// in the claimer's eyes: each is taken from the count the store still keeps
// it in (queued while its start is unwritten, running once written), and
// never below zero (one settled elsewhere meanwhile is in neither).
TEST(EngineStateTest, EndedRunsNotYetSettledAreDiscountedFromTheStoresCounts) {
  EngineState state;
  MutexLock l(state.mu);
  DueJob due;
  due.job.id = 7;
  due.queued_runs = 2;
  due.running_runs = 1;
  EXPECT_EQ(state.DiscountUnsettledLocked(due), std::make_pair(2, 1)) << "nothing ended";
  state.AddUnsettledLocked(100, 7, StoreSees::kQueued);   // ended before its start was written
  state.AddUnsettledLocked(101, 7, StoreSees::kRunning);  // ended after
  state.AddUnsettledLocked(102, 8, StoreSees::kRunning);  // another job's
  state.AddUnsettledLocked(103, 7, StoreSees::kNeither);  // its start was refused: not counted
  EXPECT_EQ(state.DiscountUnsettledLocked(due), std::make_pair(1, 0));
  // The start of 100 is written after all: the store counts it running now.
  state.StoreSeesLocked(100, StoreSees::kRunning);
  EXPECT_EQ(state.DiscountUnsettledLocked(due), std::make_pair(2, 0)) << "clamped at zero";
  // Settled: counted as what the store says again.
  state.StoreSeesLocked(100, StoreSees::kNeither);
  state.StoreSeesLocked(101, StoreSees::kNeither);
  EXPECT_EQ(state.DiscountUnsettledLocked(due), std::make_pair(2, 1));
  EXPECT_FALSE(state.unsettled_by_job.contains(7)) << "nothing left behind";
  EXPECT_EQ(state.unsettled.size(), 1u);
  state.StoreSeesLocked(102, StoreSees::kNeither);
  state.StoreSeesLocked(999, StoreSees::kNeither);  // never added: ignored
  EXPECT_TRUE(state.unsettled.empty());
  EXPECT_TRUE(state.unsettled_by_job.empty());
}

// While a burst's due runs wait for workers, the loop's writes wait too, at
// most kBurstWritesDefer after the oldest came due; not when it waited
// longer (long runs hold the workers), nor while shutting down.
TEST(EngineStateTest, TheLoopsWritesWaitForABurstToDrainBoundedInTime) {
  EngineState state;
  MutexLock l(state.mu);
  const Instant t0 = Instant() + std::chrono::seconds(100);
  EXPECT_FALSE(state.BurstWritesDueLocked(t0).has_value()) << "nothing waits";
  state.reserved.emplace(std::make_tuple(t0, 0, std::int64_t{1}), RunOf(1, 1));
  EXPECT_FALSE(state.BurstWritesDueLocked(t0 - std::chrono::milliseconds(1)).has_value())
      << "not due yet";
  EXPECT_EQ(state.BurstWritesDueLocked(t0), t0 + kBurstWritesDefer);
  EXPECT_FALSE(state.WorkerWakeLocked(t0)) << "a worker does not wake the loop";
  EXPECT_FALSE(state.wake);
  // A loop parked past the bound (it parked before the burst came due) has
  // its deadline brought forward, once; it still runs no pass before then.
  state.loop_park = {true, t0 + std::chrono::seconds(10)};
  EXPECT_TRUE(state.WorkerWakeLocked(t0)) << "notify the loop: its deadline changed";
  EXPECT_EQ(state.loop_park.until, t0 + kBurstWritesDefer);
  EXPECT_FALSE(state.wake);
  EXPECT_FALSE(state.WorkerWakeLocked(t0 + std::chrono::milliseconds(1))) << "it wakes by then";
  EXPECT_EQ(state.loop_park.until, t0 + kBurstWritesDefer);
  state.loop_park = {};
  state.PromoteDueLocked(t0);
  EXPECT_EQ(state.BurstWritesDueLocked(t0 + kBurstWritesDefer / 2), t0 + kBurstWritesDefer);
  EXPECT_FALSE(state.BurstWritesDueLocked(t0 + kBurstWritesDefer).has_value()) << "waited enough";
  EXPECT_TRUE(state.WorkerWakeLocked(t0 + kBurstWritesDefer));
  EXPECT_FALSE(state.WorkerWakeLocked(t0 + kBurstWritesDefer)) << "asked already";
  state.wake = false;
  state.draining = true;
  EXPECT_FALSE(state.BurstWritesDueLocked(t0).has_value()) << "shutting down";
  EXPECT_TRUE(state.WorkerWakeLocked(t0));
}

}  // namespace
}  // namespace sked::engine_internal
