// The DST rule of docs/cron.md at real transitions, with the expected
// instants written out by hand from the tz database (zdump -v), plus a
// differential check against a plain scan that applies the rule literally.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "cron/cron_test_util.h"
#include "sked/time_zone.h"

namespace sked {
namespace {

using testing::At;
using testing::Fires;
using testing::PrevFires;
using testing::Schedule;
using V = std::vector<std::string>;

// America/New_York 2026: 02:00 EST -> 03:00 EDT on Mar 8; 02:00 EDT -> 01:00 EST on Nov 1.
constexpr const char* kNy = "America/New_York";

TEST(CronDstTest, NewYorkSpringForwardFixedTimeFiresAtEndOfGap) {
  EXPECT_EQ(Fires("30 2 * * *", kNy, "2026-03-06T12:00:00Z", 4),
            (V{"2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00",
               "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"}));
  // Several fixed times in the gap collapse into one fire.
  EXPECT_EQ(Fires("15,45 2 * * *", kNy, "2026-03-08T06:00:00Z", 2),
            (V{"2026-03-08T03:00:00-04:00", "2026-03-09T02:15:00-04:00"}));
  // And merge with a regular fire at the same instant.
  EXPECT_EQ(
      Fires("0 2,3 * * *", kNy, "2026-03-08T06:00:00Z", 3),
      (V{"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00", "2026-03-09T03:00:00-04:00"}));
  // Times outside the gap are untouched.
  EXPECT_EQ(Fires("30 1,3 * * *", kNy, "2026-03-08T05:00:00Z", 2),
            (V{"2026-03-08T01:30:00-05:00", "2026-03-08T03:30:00-04:00"}));
}

TEST(CronDstTest, NewYorkSpringForwardIntervalLikeSkipsTheGap) {
  EXPECT_EQ(Fires("0 * * * *", kNy, "2026-03-08T04:30:00Z", 4),
            (V{"2026-03-08T00:00:00-05:00", "2026-03-08T01:00:00-05:00",
               "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"}));
  EXPECT_EQ(
      Fires("*/30 * * * *", kNy, "2026-03-08T06:00:00Z", 3),
      (V{"2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"}));
  // An hour range is interval-like too: 02:30 does not exist and is not made up.
  EXPECT_EQ(Fires("30 1-3 * * *", kNy, "2026-03-08T06:00:00Z", 2),
            (V{"2026-03-08T01:30:00-05:00", "2026-03-08T03:30:00-04:00"}));
}

TEST(CronDstTest, NewYorkFallBackFixedTimeFiresOnFirstPassOnly) {
  EXPECT_EQ(
      Fires("30 1 * * *", kNy, "2026-10-31T12:00:00Z", 3),
      (V{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00", "2026-11-03T01:30:00-05:00"}));
  // Starting during the second pass does not fire it again.
  EXPECT_EQ(Fires("30 1 * * *", kNy, "2026-11-01T06:10:00Z", 1), (V{"2026-11-02T01:30:00-05:00"}));
  EXPECT_EQ(
      Fires("0 1,2 * * *", kNy, "2026-11-01T04:30:00Z", 3),
      (V{"2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-02T01:00:00-05:00"}));
}

TEST(CronDstTest, NewYorkFallBackIntervalLikeFiresOnBothPasses) {
  EXPECT_EQ(
      Fires("*/30 * * * *", kNy, "2026-11-01T04:50:00Z", 5),
      (V{"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00",
         "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"}));
  EXPECT_EQ(
      Fires("0 * * * *", kNy, "2026-11-01T04:30:00Z", 3),
      (V{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"}));
}

TEST(CronDstTest, PrevAppliesTheSameRule) {
  EXPECT_EQ(
      PrevFires("30 2 * * *", kNy, "2026-03-09T12:00:00Z", 3),
      (V{"2026-03-09T02:30:00-04:00", "2026-03-08T03:00:00-04:00", "2026-03-07T02:30:00-05:00"}));
  EXPECT_EQ(
      PrevFires("30 1 * * *", kNy, "2026-11-02T12:00:00Z", 3),
      (V{"2026-11-02T01:30:00-05:00", "2026-11-01T01:30:00-04:00", "2026-10-31T01:30:00-04:00"}));
  EXPECT_EQ(
      PrevFires("*/30 * * * *", kNy, "2026-11-01T07:00:00Z", 5),
      (V{"2026-11-01T01:30:00-05:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-04:00",
         "2026-11-01T01:00:00-04:00", "2026-11-01T00:30:00-04:00"}));
  EXPECT_EQ(
      PrevFires("0 * * * *", kNy, "2026-03-08T08:00:00Z", 3),
      (V{"2026-03-08T03:00:00-04:00", "2026-03-08T01:00:00-05:00", "2026-03-08T00:00:00-05:00"}));
}

// Europe/Berlin 2026: 02:00 CET -> 03:00 CEST on Mar 29; 03:00 CEST -> 02:00 CET on Oct 25.
TEST(CronDstTest, Berlin) {
  EXPECT_EQ(Fires("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
            (V{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}));
  EXPECT_EQ(Fires("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
            (V{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}));
  EXPECT_EQ(
      Fires("0,30 2 * * *", "Europe/Berlin", "2026-10-24T23:45:00Z", 3),
      (V{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:00:00+01:00"}));
  EXPECT_EQ(Fires("*/30 2 * * *", "Europe/Berlin", "2026-10-24T23:45:00Z", 4),
            (V{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
               "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00"}));
}

// Australia/Lord_Howe moves 30 minutes: 02:00 +10:30 -> 02:30 +11 on Oct 4 2026;
// 02:00 +11 -> 01:30 +10:30 on Apr 5 2026.
TEST(CronDstTest, LordHoweHalfHourTransitions) {
  constexpr const char* kLh = "Australia/Lord_Howe";
  EXPECT_EQ(Fires("15 2 * * *", kLh, "2026-10-03T00:00:00Z", 2),
            (V{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}));
  EXPECT_EQ(
      Fires("0 * * * *", kLh, "2026-10-03T13:45:00Z", 3),
      (V{"2026-10-04T01:00:00+10:30", "2026-10-04T03:00:00+11:00", "2026-10-04T04:00:00+11:00"}));
  EXPECT_EQ(Fires("30 * * * *", kLh, "2026-10-03T14:45:00Z", 2),
            (V{"2026-10-04T01:30:00+10:30", "2026-10-04T02:30:00+11:00"}));
  EXPECT_EQ(Fires("45 1 * * *", kLh, "2026-04-04T00:00:00Z", 2),
            (V{"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}));
  EXPECT_EQ(
      Fires("*/15 * * * *", kLh, "2026-04-04T14:20:00Z", 5),
      (V{"2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T01:30:00+10:30",
         "2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30"}));
}

// A southern-hemisphere zone: Australia/Sydney 02:00 AEST -> 03:00 AEDT on Oct 4 2026,
// 03:00 AEDT -> 02:00 AEST on Apr 5 2026.
TEST(CronDstTest, SydneySouthernHemisphere) {
  constexpr const char* kSyd = "Australia/Sydney";
  EXPECT_EQ(Fires("30 2 * * *", kSyd, "2026-10-03T00:00:00Z", 2),
            (V{"2026-10-04T03:00:00+11:00", "2026-10-05T02:30:00+11:00"}));
  EXPECT_EQ(Fires("30 2 * * *", kSyd, "2026-04-04T00:00:00Z", 2),
            (V{"2026-04-05T02:30:00+11:00", "2026-04-06T02:30:00+10:00"}));
  EXPECT_EQ(Fires("0 9 * * *", kSyd, "2026-01-01T00:00:00Z", 1), (V{"2026-01-02T09:00:00+11:00"}));
  EXPECT_EQ(Fires("0 9 1 7 *", kSyd, "2026-01-01T00:00:00Z", 1), (V{"2026-07-01T09:00:00+10:00"}));
}

// DST at midnight. America/Havana: 00:00 CST -> 01:00 CDT on Mar 8 2026, and
// 01:00 CDT -> 00:00 CST on Nov 1 2026. America/Santiago: Sep 5 24:00 -04 ->
// Sep 6 01:00 -03, and Apr 4 24:00 -03 -> Apr 4 23:00 -04.
TEST(CronDstTest, ZonesWithDstAtMidnight) {
  EXPECT_EQ(
      Fires("0 0 * * *", "America/Havana", "2026-03-06T12:00:00Z", 3),
      (V{"2026-03-07T00:00:00-05:00", "2026-03-08T01:00:00-04:00", "2026-03-09T00:00:00-04:00"}));
  EXPECT_EQ(Fires("30 0 * * *", "America/Havana", "2026-10-31T12:00:00Z", 2),
            (V{"2026-11-01T00:30:00-04:00", "2026-11-02T00:30:00-05:00"}));
  EXPECT_EQ(Fires("@daily", "America/Santiago", "2026-09-05T12:00:00Z", 2),
            (V{"2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"}));
  EXPECT_EQ(Fires("30 23 * * *", "America/Santiago", "2026-04-04T12:00:00Z", 2),
            (V{"2026-04-04T23:30:00-03:00", "2026-04-05T23:30:00-04:00"}));
  EXPECT_EQ(
      Fires("0,30 * * * *", "America/Santiago", "2026-04-05T01:45:00Z", 5),
      (V{"2026-04-04T23:00:00-03:00", "2026-04-04T23:30:00-03:00", "2026-04-04T23:00:00-04:00",
         "2026-04-04T23:30:00-04:00", "2026-04-05T00:00:00-04:00"}));
  // Weekday matching follows the local date even when midnight is skipped.
  EXPECT_EQ(Fires("0 0 * * SUN", "America/Havana", "2026-03-01T12:00:00Z", 1),
            (V{"2026-03-08T01:00:00-04:00"}));
}

// Zones that changed their rules: Europe/Moscow left +04 for +03 on Oct 26
// 2014 (02:00 -> 01:00); Pacific/Apia skipped Dec 30 2011 entirely.
TEST(CronDstTest, ZonesThatChangedTheirOffsets) {
  EXPECT_EQ(Fires("30 1 * * *", "Europe/Moscow", "2014-10-25T12:00:00Z", 2),
            (V{"2014-10-26T01:30:00+04:00", "2014-10-27T01:30:00+03:00"}));
  EXPECT_EQ(
      Fires("0 12 * * *", "Pacific/Apia", "2011-12-29T00:00:00Z", 3),
      (V{"2011-12-29T12:00:00-10:00", "2011-12-31T00:00:00+14:00", "2011-12-31T12:00:00+14:00"}));
  EXPECT_EQ(
      Fires("0 */6 * * *", "Pacific/Apia", "2011-12-30T03:00:00Z", 3),
      (V{"2011-12-29T18:00:00-10:00", "2011-12-31T00:00:00+14:00", "2011-12-31T06:00:00+14:00"}));
}

// Past the tz database's explicit transitions (2037), the zone's current rule
// still applies: 2040's spring forward in New York is on Sunday March 11.
TEST(CronDstTest, RulesContinuePast2037) {
  EXPECT_EQ(Fires("30 2 * * *", kNy, "2040-03-10T12:00:00Z", 2),
            (V{"2040-03-11T03:00:00-04:00", "2040-03-12T02:30:00-04:00"}));
  EXPECT_EQ(Fires("0 12 1 7 *", kNy, "2150-01-01T00:00:00Z", 1), (V{"2150-07-01T12:00:00-04:00"}));
  EXPECT_EQ(Fires("0 12 1 7 *", "Australia/Lord_Howe", "2150-01-01T00:00:00Z", 1),
            (V{"2150-07-01T12:00:00+10:30"}));
  EXPECT_EQ(Fires("0 12 1 1 *", "Australia/Lord_Howe", "2150-01-01T00:00:00Z", 1),
            (V{"2150-01-01T12:00:00+11:00"}));
}

// The rule applied literally: walk every minute and decide from the zone
// whether it is a fire. Independent of the period-jumping search.
std::vector<Instant> ScanFires(const CronSchedule& s, std::int64_t from, std::int64_t to) {
  const TimeZone& zone = s.time_zone();
  auto matches = [&](std::int64_t local) { return testing::MatchesWallClock(s, local); };
  std::vector<Instant> out;
  for (std::int64_t u = (from / 60 + 1) * 60; u <= to; u += 60) {
    const std::int64_t off = zone.OffsetAt(FromUnixSeconds(u)).count();
    const std::int64_t prev_off = zone.OffsetAt(FromUnixSeconds(u - 60)).count();
    const std::int64_t local = u + off;
    bool fire = matches(local);
    if (!s.interval_like()) {
      // Was this local time already shown by the clock earlier (a repeat)?
      for (std::int64_t back = 60; fire && back <= 6 * 3600; back += 60) {
        if (u - back + zone.OffsetAt(FromUnixSeconds(u - back)).count() == local) fire = false;
      }
      // At a forward jump, any fixed time inside the gap fires now.
      if (off > prev_off) {
        for (std::int64_t l = u + prev_off; !fire && l < local; l += 60) fire = matches(l);
      }
    }
    if (fire) out.push_back(FromUnixSeconds(u));
  }
  return out;
}

TEST(CronDstTest, AgreesWithLiteralScanAroundTransitions) {
  const std::vector<std::string> zones = {kNy,
                                          "Europe/Berlin",
                                          "Australia/Lord_Howe",
                                          "Australia/Sydney",
                                          "America/Havana",
                                          "America/Santiago",
                                          "Europe/Moscow"};
  const std::vector<std::string> exprs = {"30 2 * * *",     "0 * * * *",      "*/15 * * * *",
                                          "0,30 1-2 * * *", "45 1,2 * * *",   "0 0 * * *",
                                          "30 23 * * *",    "*/20 0-3 * * *", "15 2 * * 0",
                                          "0 1 * * *",      "59 1 * * *",     "0 3 * * *"};
  for (const std::string& zone_name : zones) {
    const TimeZone zone = *TimeZone::Find(zone_name);
    // Each transition from 2020 to 2026 (Moscow: its 2014 change), a day either side.
    Instant t = At(zone_name == "Europe/Moscow" ? "2014-01-01T00:00:00Z" : "2020-01-01T00:00:00Z");
    for (int k = 0; k < 40; ++k) {
      auto tr = zone.NextTransition(t);
      if (!tr || tr->at > At("2027-01-01T00:00:00Z")) break;
      const std::int64_t from = ToUnixSeconds(tr->at) - 86400;
      const std::int64_t to = ToUnixSeconds(tr->at) + 86400;
      for (const std::string& expr : exprs) {
        const CronSchedule s = Schedule(expr, zone_name);
        const std::vector<Instant> scan = ScanFires(s, from, to);
        std::vector<Instant> fast;
        for (auto f = s.Next(FromUnixSeconds(from)); f && ToUnixSeconds(*f) <= to; f = s.Next(*f)) {
          fast.push_back(*f);
        }
        ASSERT_EQ(fast, scan) << expr << " in " << zone_name << " around " << zone.Format(tr->at);
        std::vector<Instant> back;
        for (auto p = s.Prev(FromUnixSeconds(to + 1)); p && ToUnixSeconds(*p) > from;
             p = s.Prev(*p)) {
          back.insert(back.begin(), *p);
        }
        ASSERT_EQ(back, scan) << "Prev: " << expr << " in " << zone_name;
      }
      t = tr->at;
    }
  }
}

// The rule applied literally, one second at a time, over [from, to]: a
// second is a fire if the wall clock shows a matching time it has not shown
// before in the window (fixed-time: a repeated time fires on its first pass
// only), or if the clock just jumped forward over a matching fixed time.
// REQUIRES: `from` lies before the window's transitions by more than their jumps.
std::vector<std::int64_t> ScanFiresBySecond(const CronSchedule& s, std::int64_t from,
                                            std::int64_t to) {
  const TimeZone& zone = s.time_zone();
  auto matches = [&](std::int64_t local) { return testing::MatchesWallClock(s, local); };
  std::vector<std::int64_t> out;
  std::vector<bool> shown;  // local times already shown, from from + offset(from) - 1 day
  const std::int64_t base = from + zone.OffsetAt(FromUnixSeconds(from)).count() - 86400;
  std::int64_t prev_off = zone.OffsetAt(FromUnixSeconds(from - 1)).count();
  for (std::int64_t u = from; u <= to; ++u) {
    const std::int64_t off = zone.OffsetAt(FromUnixSeconds(u)).count();
    const std::int64_t local = u + off;
    const size_t slot = static_cast<size_t>(local - base);
    if (shown.size() <= slot) shown.resize(slot + 1, false);
    bool fire = matches(local) && (s.interval_like() || !shown[slot]);
    shown[slot] = true;
    if (!s.interval_like() && off > prev_off) {
      for (std::int64_t l = u + prev_off; !fire && l < local; ++l) fire = matches(l);
    }
    if (fire) out.push_back(u);
    prev_off = off;
  }
  return out;
}

// Next() from every second near each transition of several zones and years
// agrees with the literal rule: a search that starts inside, at the edge of
// or just before a gap or a repeat never loses or doubles a fire. (A start
// one second before the gap lost the gap fire once.)
TEST(CronDstTest, NextFromEverySecondNearTransitionsAgreesWithLiteralRule) {
  const std::vector<std::string> zones = {kNy, "Europe/Berlin", "Australia/Lord_Howe",
                                          "America/Havana", "America/Santiago"};
  const std::vector<std::string> exprs = {
      "30 2 * * *",     "0 * * * *",         "*/15 * * * *", "45 1,2 * * *",  "0 0 * * *",
      "59 1 * * *",     "0 3 * * *",         "0 30 2 * * *", "59 59 1 * * *", "0 0 * * * *",
      "*/20 * * * * *", "30 0-59/7 2 * * *", "0 0 0 * * *",  "15 30 1 * * *"};
  for (const std::string& zone_name : zones) {
    const TimeZone zone = *TimeZone::Find(zone_name);
    Instant t = At("2025-01-01T00:00:00Z");
    for (int k = 0; k < 8; ++k) {
      auto tr = zone.NextTransition(t);
      if (!tr || tr->at > At("2027-01-01T00:00:00Z")) break;
      t = tr->at;
      const std::int64_t at = ToUnixSeconds(tr->at);
      const std::int64_t from = at - 3 * 3600, to = at + 3 * 3600;
      for (const std::string& expr : exprs) {
        const CronSchedule s = Schedule(expr, zone_name);
        const std::vector<std::int64_t> fires = ScanFiresBySecond(s, from, to);
        size_t next = 0;  // the first literal fire after the start
        for (std::int64_t start = at - 2 * 3600; start <= at + 2 * 3600; ++start) {
          while (next < fires.size() && fires[next] <= start) ++next;
          const auto got = s.Next(FromUnixSeconds(start));
          if (next < fires.size()) {
            ASSERT_TRUE(got && ToUnixSeconds(*got) == fires[next])
                << expr << " in " << zone_name << " from " << zone.Format(FromUnixSeconds(start))
                << ": want " << zone.Format(FromUnixSeconds(fires[next])) << ", got "
                << (got ? zone.Format(*got) : "none");
          } else {
            ASSERT_TRUE(!got || ToUnixSeconds(*got) > to)
                << expr << " in " << zone_name << " from " << zone.Format(FromUnixSeconds(start))
                << ": a fire the literal rule does not have: " << zone.Format(*got);
          }
        }
      }
    }
  }
}

// The reported case: New York's 2026 gap, counting from one second before it.
TEST(CronDstTest, NextFromTheSecondBeforeAGapKeepsTheGapFire) {
  EXPECT_EQ(Fires("30 2 * * *", kNy, "2026-03-08T01:59:59-05:00", 2),
            (V{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}));
  EXPECT_EQ(Fires("0 30 2 * * *", kNy, "2026-03-08T01:59:59.999-05:00", 1),
            (V{"2026-03-08T03:00:00-04:00"}));
}

}  // namespace
}  // namespace sked
