// Next/previous fire semantics, the minimum-interval check, and a brute-force
// cross-check of the field-jumping search.

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "cron/cron_test_util.h"

namespace sked {
namespace {

using std::chrono::seconds;
using testing::At;
using testing::Fires;
using testing::ParseError;
using testing::PrevFires;
using testing::Schedule;
using V = std::vector<std::string>;

TEST(CronScheduleTest, NextIsStrictlyAfterAndPrevStrictlyBefore) {
  const CronSchedule s = Schedule("0 * * * *");
  EXPECT_EQ(*s.Next(At("2026-01-01T10:00:00Z")), At("2026-01-01T11:00:00Z"));
  EXPECT_EQ(*s.Next(At("2026-01-01T09:59:59.999Z")), At("2026-01-01T10:00:00Z"));
  EXPECT_EQ(*s.Prev(At("2026-01-01T10:00:00Z")), At("2026-01-01T09:00:00Z"));
  EXPECT_EQ(*s.Prev(At("2026-01-01T10:00:00.001Z")), At("2026-01-01T10:00:00Z"));
  const CronSchedule every_second = Schedule("* * * * * *");
  EXPECT_EQ(*every_second.Next(At("2026-01-01T10:00:00.5Z")), At("2026-01-01T10:00:01Z"));
  EXPECT_EQ(*every_second.Prev(At("2026-01-01T10:00:00.5Z")), At("2026-01-01T10:00:00Z"));
}

TEST(CronScheduleTest, NextNInOrder) {
  EXPECT_EQ(
      Fires("0 12 * * *", "UTC", "2026-12-30T13:00:00Z", 3),
      (V{"2026-12-31T12:00:00+00:00", "2027-01-01T12:00:00+00:00", "2027-01-02T12:00:00+00:00"}));
  EXPECT_TRUE(Schedule("0 12 * * *").NextN(At("2026-01-01T00:00:00Z"), 0).empty());
}

TEST(CronScheduleTest, PrevMirrorsNext) {
  EXPECT_EQ(
      PrevFires("0 0 L * *", "UTC", "2026-04-01T00:00:00Z", 3),
      (V{"2026-03-31T00:00:00+00:00", "2026-02-28T00:00:00+00:00", "2026-01-31T00:00:00+00:00"}));
  EXPECT_EQ(PrevFires("0 0 * * MON#2", "UTC", "2026-03-09T00:00:00Z", 2),
            (V{"2026-02-09T00:00:00+00:00", "2026-01-12T00:00:00+00:00"}));
}

TEST(CronScheduleTest, SupportedRangeEndsIn2199) {
  const CronSchedule s = Schedule("0 0 1 1 *");
  EXPECT_EQ(*s.Next(At("2198-06-01T00:00:00Z")), At("2199-01-01T00:00:00Z"));
  EXPECT_FALSE(s.Next(At("2199-01-01T00:00:00Z")).has_value());
  EXPECT_FALSE(s.Prev(At("1970-01-01T00:00:00Z")).has_value());
  EXPECT_EQ(*s.Next(At("1900-01-01T00:00:00Z")), At("1970-01-01T00:00:00Z"));
  EXPECT_FALSE(Schedule("0 0 0 1 1 * 2027").Next(At("2027-01-01T00:00:00Z")).has_value());
}

TEST(CronScheduleTest, IntervalLikeOrFixedTime) {
  EXPECT_FALSE(Schedule("30 2 * * *").interval_like());
  EXPECT_FALSE(Schedule("0 0,12 * * *").interval_like());
  EXPECT_FALSE(Schedule("0 30 2 * * *").interval_like());
  EXPECT_FALSE(Schedule("0 9 * * 1-5").interval_like());
  EXPECT_FALSE(Schedule("@daily").interval_like());
  EXPECT_TRUE(Schedule("0 * * * *").interval_like());
  EXPECT_TRUE(Schedule("0 9-17 * * *").interval_like());
  EXPECT_TRUE(Schedule("*/15 * * * *").interval_like());
  EXPECT_TRUE(Schedule("10/20 2 * * *").interval_like());
  EXPECT_TRUE(Schedule("* 0 2 * * *").interval_like());
  EXPECT_TRUE(Schedule("@hourly").interval_like());
}

TEST(CronScheduleTest, MinGapIsTheSmallestGapBetweenConsecutiveFires) {
  auto gap = [](const std::string& expr) {
    auto g = Schedule(expr).min_gap();
    return g ? g->count() : -1;
  };
  EXPECT_EQ(gap("* * * * * *"), 1);
  EXPECT_EQ(gap("* * * * *"), 60);
  EXPECT_EQ(gap("0,1 * * * *"), 60);
  EXPECT_EQ(gap("*/20 * * * *"), 1200);
  EXPECT_EQ(gap("0 * * * *"), 3600);
  EXPECT_EQ(gap("0 0 * * *"), 86400);
  EXPECT_EQ(gap("0 0 * * MON"), 7 * 86400);
  EXPECT_EQ(gap("0 0 L * *"), 28 * 86400);
  EXPECT_EQ(gap("0 0 1,31 1,2 *"), 86400);  // Jan 31 -> Feb 1
  EXPECT_EQ(gap("0,59 0,23 * * *"), 60);    // 23:59 -> 00:00 next day
  EXPECT_EQ(gap("50 59 23 * * *"), 86400);
  EXPECT_EQ(gap("10,50 0 0 * * *"), 40);
  EXPECT_EQ(gap("55 59 * * * *"), 3600);
  EXPECT_EQ(gap("0,30 59 0 * * *"), 30);
  EXPECT_EQ(gap("0 0 0 1 1 * 2030"), -1);  // fires once
  EXPECT_EQ(gap("0 0 0 29 2 * *"), 4 * 365 * 86400 + 86400);
}

TEST(CronScheduleTest, MinimumIntervalRejectsTooFrequentSchedules) {
  EXPECT_EQ(ParseError("0,1 * * * *", "UTC", 120),
            "expression fires as often as every 1m, more often than the minimum interval of 2m");
  EXPECT_EQ(ParseError("* * * * * *", "UTC", 60),
            "expression fires as often as every 1s, more often than the minimum interval of 1m");
  EXPECT_EQ(ParseError("0,59 0,23 * * *", "UTC", 3600),
            "expression fires as often as every 1m, more often than the minimum interval of 1h");
  EXPECT_EQ(ParseError("*/2 * * * *", "UTC", 120), "");
  EXPECT_EQ(ParseError("* * * * *", "UTC", 60), "");
  EXPECT_EQ(ParseError("* * * * * *", "UTC", 1), "");
  // The default minimum interval is one minute.
  EXPECT_FALSE(CronSchedule::Parse("*/30 * * * * *").ok());
  EXPECT_TRUE(CronSchedule::Parse("* * * * *").ok());
}

TEST(CronScheduleTest, MatchesTheZonesWallClock) {
  const CronSchedule s = Schedule("30 2 * * *", "America/New_York");
  EXPECT_TRUE(s.MatchesAt(At("2026-03-09T02:30:00-04:00")));
  EXPECT_FALSE(s.MatchesAt(At("2026-03-09T02:30:00Z")));
  // The collapsed fire after the gap does not match the fields themselves.
  EXPECT_FALSE(s.MatchesAt(At("2026-03-08T03:00:00-04:00")));
  EXPECT_TRUE(s.MatchesLocal(2026, 3, 8, 2, 30, 0));
  EXPECT_FALSE(s.MatchesLocal(2026, 13, 8, 2, 30, 0));
}

TEST(CronScheduleTest, ExpressionIsKeptTrimmed) {
  EXPECT_EQ(Schedule("  0 0 * * *  ").expression(), "0 0 * * *");
}

TEST(CronScheduleTest, CopiesShareOnePattern) {
  const CronSchedule a = Schedule("0 0 * * *", "Europe/Berlin");
  const CronSchedule b = a;
  EXPECT_EQ(b.expression(), "0 0 * * *");
  EXPECT_EQ(b.time_zone().name(), "Europe/Berlin");
  EXPECT_EQ(*a.Next(At("2026-01-01T00:00:00Z")), *b.Next(At("2026-01-01T00:00:00Z")));
}

// The fast search must agree with a plain scan of every candidate instant.
TEST(CronScheduleTest, AgreesWithBruteForceInUtc) {
  const std::vector<std::string> exprs = {
      "*/7 * * * *",
      "0 */5 * * *",
      "15,45 9-17 * * 1-5",
      "0 0 L * *",
      "0 0 LW * *",
      "0 0 15W * *",
      "0 12 * * 5L",
      "0 6 * * MON#2",
      "0 0 13 * 5",
      "30 4 1,15 * *",
      "0 0 */3 * SUN",
      "5 0 L-3 * *",
      "0 22 * * 1#5,2L",
      "59 23 31 * *",
      "0 0 29 * *",
      "*/20 */13 1 * * *",
      "0 0 1W,L * *",
      "0 9 1-7 * MON",
      "0 0 ? JAN,APR,JUL,OCT MON#1",
      "40 3 * * 6,0",
      "0 0 1 */2 *",
      "0 0 0 L-1 * * 2026-2030",
  };
  std::mt19937 rng(20261127);
  std::uniform_int_distribution<std::int64_t> start(ToUnixSeconds(At("2026-01-01T00:00:00Z")),
                                                    ToUnixSeconds(At("2029-12-01T00:00:00Z")));
  for (const std::string& expr : exprs) {
    const CronSchedule s = Schedule(expr);
    const bool has_seconds = expr.find("*/20 */13") == 0;
    for (int round = 0; round < 3; ++round) {
      std::int64_t t = start(rng);
      const std::vector<Instant> fast = s.NextN(FromUnixSeconds(t), 6);
      ASSERT_FALSE(fast.empty()) << expr;
      std::vector<Instant> slow;
      const int step = has_seconds ? 1 : 60;
      std::int64_t u = has_seconds ? t + 1 : (t / 60 + 1) * 60;
      for (std::int64_t steps = 0; slow.size() < fast.size() && steps < 2'000'000; ++steps) {
        if (s.MatchesAt(FromUnixSeconds(u))) {
          slow.push_back(FromUnixSeconds(u));
        }
        u += step;
      }
      ASSERT_EQ(slow, fast) << expr << " from " << t;
      // And Prev walks the same fires backwards.
      for (size_t i = fast.size() - 1; i > 0; --i) {
        ASSERT_EQ(*s.Prev(fast[i]), fast[i - 1]) << expr;
      }
    }
  }
}

}  // namespace
}  // namespace sked
