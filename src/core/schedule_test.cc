#include "sked/schedule.h"

#include <gtest/gtest.h>

#include "cron/cron_test_util.h"

namespace sked {
namespace {

using std::chrono::seconds;
using testing::At;

Schedule Parse(const std::string& text, const std::string& zone = "UTC",
               const std::string& anchor = "2026-01-01T00:00:00Z") {
  auto s = Schedule::Parse(text, *TimeZone::Find(zone), seconds(1), At(anchor));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return *s;
}

std::string Error(const std::string& text) {
  return Schedule::Parse(text, TimeZone::Utc(), seconds(60), At("2026-01-01T00:00:00Z"))
      .status()
      .message();
}

TEST(ScheduleTest, Cron) {
  const Schedule s = Parse("30 2 * * *", "America/New_York");
  EXPECT_EQ(s.kind(), Schedule::Kind::kCron);
  EXPECT_EQ(*s.Next(At("2026-03-08T06:00:00Z")), At("2026-03-08T03:00:00-04:00"));
}

TEST(ScheduleTest, IntervalIsAnchored) {
  const Schedule s = Parse("every 90s", "UTC", "2026-01-01T00:00:10Z");
  EXPECT_EQ(s.kind(), Schedule::Kind::kInterval);
  EXPECT_EQ(*s.Next(At("2025-12-31T00:00:00Z")), At("2026-01-01T00:00:10Z"));
  EXPECT_EQ(*s.Next(At("2026-01-01T00:00:10Z")), At("2026-01-01T00:01:40Z"));
  EXPECT_EQ(*s.Next(At("2026-01-01T00:01:39.5Z")), At("2026-01-01T00:01:40Z"));
  EXPECT_EQ(*Parse("every 1h30m").Next(At("2026-01-01T01:00:00Z")), At("2026-01-01T01:30:00Z"));
}

TEST(ScheduleTest, OneShotInTheJobsZone) {
  const Schedule s = Parse("at 2026-12-01T09:00:00", "Europe/Berlin");
  EXPECT_EQ(s.kind(), Schedule::Kind::kOnce);
  EXPECT_EQ(*s.Next(At("2026-01-01T00:00:00Z")), At("2026-12-01T09:00:00+01:00"));
  EXPECT_FALSE(s.Next(At("2026-12-01T08:00:00Z")).has_value());
  // A local time skipped by DST fires at the end of the gap, as for cron.
  EXPECT_EQ(*Parse("at 2026-03-08T02:30:00", "America/New_York").Next(At("2026-01-01T00:00:00Z")),
            At("2026-03-08T03:00:00-04:00"));
  EXPECT_EQ(
      *Parse("at 2026-12-01T09:00:00+05:30", "Europe/Berlin").Next(At("2026-01-01T00:00:00Z")),
      At("2026-12-01T03:30:00Z"));
}

TEST(ScheduleTest, DescribesEachKindInPlainEnglish) {
  EXPECT_EQ(Parse("30 2 * * *").Describe(),
            CronSchedule::Parse("30 2 * * *", TimeZone::Utc(), seconds(0))->Describe());
  EXPECT_EQ(Parse("every 90s").Describe(), "every 1m30s");
  EXPECT_EQ(Parse("at 2026-12-01T09:00:00").Describe(),
            "once, at 2026-12-01T09:00:00 (local time of the job's zone)");
  EXPECT_EQ(Parse("at 2026-12-01T09:00:00+01:00").Describe(), "once, at 2026-12-01T09:00:00+01:00");
}

TEST(ScheduleTest, Errors) {
  EXPECT_EQ(Error(""), "schedule: empty");
  EXPECT_EQ(Error("every 30s"),
            "schedule: interval 30s is shorter than the minimum interval of 1m");
  EXPECT_EQ(Error("every 1.5s"),
            "schedule: interval must be a whole number of seconds, at least 1s; got '1.5s'");
  EXPECT_EQ(Error("every soon"),
            "schedule: invalid duration 'soon': expected a number at 's' (write e.g. 90s, "
            "1h30m, 250ms)");
  EXPECT_EQ(Error("at tomorrow"),
            "schedule: invalid time 'tomorrow' after 'at' (expected 2026-12-01T09:00:00, local "
            "to the job's time zone, or RFC 3339 with an offset)");
  EXPECT_EQ(Error("at 2026-02-30T09:00:00"),
            "schedule: invalid time '2026-02-30T09:00:00' after 'at': expression never fires: "
            "day-of-month 30 does not occur in February");
  EXPECT_EQ(Error("30 25 * * *"), "schedule: field 'hour': value 25 out of range 0-23 at column 4");
}

}  // namespace
}  // namespace sked
