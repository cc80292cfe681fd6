#include "cron/posix_tz.h"

#include <gtest/gtest.h>

#include "cron/cron_test_util.h"

namespace sked::cron_internal {
namespace {

using sked::testing::At;

TEST(PosixTzTest, ParsesNamesOffsetsAndRules) {
  auto ny = ParsePosixTz("EST5EDT,M3.2.0,M11.1.0");
  ASSERT_TRUE(ny.ok());
  EXPECT_EQ(ny->std_abbrev, "EST");
  EXPECT_EQ(ny->std_offset, -5 * 3600);
  EXPECT_TRUE(ny->has_dst);
  EXPECT_EQ(ny->dst_offset, -4 * 3600);
  EXPECT_EQ(ny->start.month, 3);
  EXPECT_EQ(ny->start.week, 2);
  EXPECT_EQ(ny->start.time, 7200);

  auto lh = ParsePosixTz("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0");
  ASSERT_TRUE(lh.ok());
  EXPECT_EQ(lh->std_abbrev, "+1030");
  EXPECT_EQ(lh->std_offset, 10 * 3600 + 1800);
  EXPECT_EQ(lh->dst_offset, 11 * 3600);

  auto tokyo = ParsePosixTz("JST-9");
  ASSERT_TRUE(tokyo.ok());
  EXPECT_FALSE(tokyo->has_dst);
  EXPECT_EQ(tokyo->std_offset, 9 * 3600);

  auto nuuk = ParsePosixTz("<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
  ASSERT_TRUE(nuuk.ok());
  EXPECT_EQ(nuuk->start.time, -3600);

  auto santiago = ParsePosixTz("<-04>4<-03>,M9.1.6/24,M4.1.6/24");
  ASSERT_TRUE(santiago.ok());
  EXPECT_EQ(santiago->end.time, 24 * 3600);

  auto julian = ParsePosixTz("XXX3YYY,J60/2,300");
  ASSERT_TRUE(julian.ok());
  EXPECT_EQ(julian->start.kind, PosixTzRule::Kind::kJulian1);
  EXPECT_EQ(julian->end.kind, PosixTzRule::Kind::kJulian0);
}

TEST(PosixTzTest, RejectsMalformedStrings) {
  EXPECT_FALSE(ParsePosixTz("").ok());
  EXPECT_FALSE(ParsePosixTz("E5").ok());
  EXPECT_FALSE(ParsePosixTz("EST5EDT,M13.1.0,M11.1.0").ok());
  EXPECT_FALSE(ParsePosixTz("EST5EDT,M3.2.0").ok());
  EXPECT_FALSE(ParsePosixTz("EST5EDT,M3.2.0,M11.1.0junk").ok());
  EXPECT_FALSE(ParsePosixTz("<+1030-10:30").ok());
}

TEST(PosixTzTest, TransitionsOfAYear) {
  const PosixTz ny = *ParsePosixTz("EST5EDT,M3.2.0,M11.1.0");
  auto tr = PosixTransitionsInYear(ny, 2026);
  ASSERT_EQ(tr.size(), 2u);
  EXPECT_EQ(tr[0].at, ToUnixSeconds(At("2026-03-08T07:00:00Z")));
  EXPECT_EQ(tr[0].offset, -4 * 3600);
  EXPECT_EQ(tr[1].at, ToUnixSeconds(At("2026-11-01T06:00:00Z")));
  // Southern hemisphere: the end comes first in the year.
  const PosixTz syd = *ParsePosixTz("AEST-10AEDT,M10.1.0,M4.1.0/3");
  auto s = PosixTransitionsInYear(syd, 2026);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].at, ToUnixSeconds(At("2026-04-05T03:00:00+11:00")));
  EXPECT_FALSE(s[0].dst);
  EXPECT_EQ(s[1].at, ToUnixSeconds(At("2026-10-04T02:00:00+10:00")));
  // Julian days: J60 is March 1 even in leap years; 59 (zero-based) is Feb 29 in them.
  const PosixTz j = *ParsePosixTz("XXX0YYY,J60/0,59/0");
  auto leap = PosixTransitionsInYear(j, 2028);
  ASSERT_EQ(leap.size(), 2u);
  EXPECT_EQ(leap[0].at, ToUnixSeconds(At("2028-02-29T00:00:00+01:00")));  // end, in DST
  EXPECT_FALSE(leap[0].dst);
  EXPECT_EQ(leap[1].at, ToUnixSeconds(At("2028-03-01T00:00:00Z")));  // start, in standard time
  EXPECT_TRUE(leap[1].dst);
}

}  // namespace
}  // namespace sked::cron_internal
