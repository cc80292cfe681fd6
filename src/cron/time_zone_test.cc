#include "sked/time_zone.h"

#include <gtest/gtest.h>

#include <chrono>

#include "cron/cron_test_util.h"
#include "cron/zone_table.h"

namespace sked {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using testing::At;

TEST(TimeZoneTest, OffsetsAndAbbreviations) {
  const TimeZone ny = *TimeZone::Find("America/New_York");
  EXPECT_EQ(ny.name(), "America/New_York");
  EXPECT_EQ(ny.OffsetAt(At("2026-01-15T12:00:00Z")), hours(-5));
  EXPECT_EQ(ny.OffsetAt(At("2026-07-15T12:00:00Z")), hours(-4));
  EXPECT_EQ(ny.AbbreviationAt(At("2026-07-15T12:00:00Z")), "EDT");
  EXPECT_EQ(ny.Format(At("2026-03-08T07:00:00Z")), "2026-03-08T03:00:00-04:00");
  const TimeZone india = *TimeZone::Find("Asia/Kolkata");
  EXPECT_EQ(india.OffsetAt(At("2026-07-15T12:00:00Z")), minutes(330));
}

TEST(TimeZoneTest, UtcNeedsNoDatabase) {
  const TimeZone utc = TimeZone::Utc();
  EXPECT_EQ(utc.name(), "UTC");
  EXPECT_EQ(utc.OffsetAt(At("2026-07-15T12:00:00Z")), hours(0));
  EXPECT_FALSE(utc.NextTransition(At("2026-01-01T00:00:00Z")).has_value());
  EXPECT_TRUE(TimeZone::Find("Etc/UTC").ok());
}

TEST(TimeZoneTest, LinksResolve) {
  const TimeZone eastern = *TimeZone::Find("US/Eastern");
  EXPECT_EQ(eastern.name(), "US/Eastern");
  EXPECT_EQ(eastern.OffsetAt(At("2026-07-15T12:00:00Z")), hours(-4));
}

TEST(TimeZoneTest, NextTransition) {
  const TimeZone berlin = *TimeZone::Find("Europe/Berlin");
  auto tr = berlin.NextTransition(At("2026-01-01T00:00:00Z"));
  ASSERT_TRUE(tr.has_value());
  EXPECT_EQ(tr->at, At("2026-03-29T01:00:00Z"));
  EXPECT_EQ(tr->offset_before, hours(1));
  EXPECT_EQ(tr->offset_after, hours(2));
  EXPECT_EQ(tr->abbreviation_after, "CEST");
  // Strictly after: asking at the transition gives the next one.
  EXPECT_EQ(berlin.NextTransition(tr->at)->at, At("2026-10-25T01:00:00Z"));
}

TEST(TimeZoneTest, TransitionsPast2037ComeFromTheZonesRule) {
  const TimeZone ny = *TimeZone::Find("America/New_York");
  // Second Sunday of March and first Sunday of November, 2100.
  auto spring = ny.NextTransition(At("2100-01-01T00:00:00Z"));
  ASSERT_TRUE(spring.has_value());
  EXPECT_EQ(spring->at, At("2100-03-14T07:00:00Z"));
  EXPECT_EQ(ny.NextTransition(spring->at)->at, At("2100-11-07T06:00:00Z"));
  // America/Nuuk's rule uses a negative transition time (RFC 8536 extension):
  // DST from the last Sunday of March at -01:00 local, i.e. Saturday 23:00.
  const TimeZone nuuk = *TimeZone::Find("America/Nuuk");
  auto nuuk_spring = nuuk.NextTransition(At("2050-01-01T00:00:00Z"));
  ASSERT_TRUE(nuuk_spring.has_value());
  EXPECT_EQ(nuuk_spring->at, At("2050-03-27T01:00:00Z"));
  EXPECT_EQ(nuuk_spring->offset_after, hours(-1));
}

TEST(TimeZoneTest, TableMergesPeriodsWithoutAClockChange) {
  const TimeZone tokyo = *TimeZone::Find("Asia/Tokyo");
  const auto& table = tokyo.table();
  for (std::size_t i = 1; i < table.size(); ++i) {
    EXPECT_NE(table.Offset(i), table.Offset(i - 1));
    EXPECT_LT(table.Begin(i - 1), table.Begin(i));
  }
  EXPECT_FALSE(tokyo.NextTransition(At("2026-01-01T00:00:00Z")).has_value());
}

TEST(TimeZoneTest, UnknownZones) {
  EXPECT_EQ(TimeZone::Find("Mars/Olympus").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(TimeZone::Find("").ok());
  EXPECT_FALSE(TimeZone::Find("/etc/passwd").ok());
}

}  // namespace
}  // namespace sked
