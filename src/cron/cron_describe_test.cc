#include <gtest/gtest.h>

#include <string>

#include "cron/cron_test_util.h"

namespace sked {
namespace {

std::string Describe(const std::string& expr) { return testing::Schedule(expr).Describe(); }

TEST(CronDescribeTest, FixedTimes) {
  EXPECT_EQ(Describe("30 9 * * 1-5"), "at 09:30 on Monday through Friday");
  EXPECT_EQ(Describe("0 0 * * *"), "at 00:00");
  EXPECT_EQ(Describe("@daily"), "at 00:00");
  EXPECT_EQ(Describe("0 9,17 * * *"), "at 09:00 and 17:00");
  EXPECT_EQ(Describe("15 30 2 * * *"), "at 02:30:15");
  EXPECT_EQ(Describe("0 0 1 1 *"), "at 00:00 on day 1 of the month in January");
}

TEST(CronDescribeTest, Intervals) {
  EXPECT_EQ(Describe("* * * * *"), "every minute");
  EXPECT_EQ(Describe("* * * * * *"), "every second");
  EXPECT_EQ(Describe("*/15 * * * *"), "every 15 minutes");
  EXPECT_EQ(Describe("*/10 * * * * *"), "every 10 seconds");
  EXPECT_EQ(Describe("0 * * * *"), "at minute 0 past the hour");
  EXPECT_EQ(Describe("*/5 9-17 * * MON-FRI"),
            "every 5 minutes, between 09:00 and 17:59 on Monday through Friday");
  EXPECT_EQ(Describe("0 */2 * * *"), "at minute 0 past the hour, every 2 hours");
}

TEST(CronDescribeTest, Days) {
  EXPECT_EQ(Describe("0 0 L * *"), "at 00:00 on the last day of the month");
  EXPECT_EQ(Describe("0 0 L-2 * *"), "at 00:00 on 2 days before the last day of the month");
  EXPECT_EQ(Describe("0 0 LW * *"), "at 00:00 on the last weekday of the month");
  EXPECT_EQ(Describe("0 0 15W * *"), "at 00:00 on the weekday nearest day 15 of the month");
  EXPECT_EQ(Describe("0 0 * * 5L"), "at 00:00 on the last Friday of the month");
  EXPECT_EQ(Describe("0 0 * * MON#2"), "at 00:00 on the second Monday of the month");
  EXPECT_EQ(Describe("0 0 1,15 * *"), "at 00:00 on days 1 and 15 of the month");
  EXPECT_EQ(Describe("0 0 13 * 5"), "at 00:00 on day 13 of the month or on Friday");
  EXPECT_EQ(Describe("0 0 * * 1,3,5"), "at 00:00 on Monday, Wednesday and Friday");
}

TEST(CronDescribeTest, MonthsAndYears) {
  EXPECT_EQ(Describe("0 0 1 */3 *"),
            "at 00:00 on day 1 of the month in January, April, July and October");
  EXPECT_EQ(Describe("0 0 1 JUN-AUG *"), "at 00:00 on day 1 of the month in June through August");
  EXPECT_EQ(Describe("0 0 0 1 1 * 2030"), "at 00:00 on day 1 of the month in January in 2030");
}

}  // namespace
}  // namespace sked
