#include <gtest/gtest.h>

#include <chrono>

#include "sked/time.h"

namespace sked {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(DurationTest, ParsesUnitsAndCombinations) {
  EXPECT_EQ(*ParseDuration("90s"), seconds(90));
  EXPECT_EQ(*ParseDuration("1h30m"), minutes(90));
  EXPECT_EQ(*ParseDuration("1.5h"), minutes(90));
  EXPECT_EQ(*ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(*ParseDuration("2d"), hours(48));
  EXPECT_EQ(*ParseDuration("10us"), std::chrono::microseconds(10));
  EXPECT_EQ(*ParseDuration("0"), seconds(0));
  // Nine fractional digits of a day: exact, no overflow (found by the fuzzer).
  EXPECT_EQ(*ParseDuration("1.999999999d"),
            std::chrono::microseconds(86400000000LL + 86399999913LL));
  EXPECT_EQ(*ParseDuration("0.5d"), hours(12));
}

TEST(DurationTest, RejectsMalformedInputWithReason) {
  EXPECT_EQ(ParseDuration("").status().message(),
            "invalid duration '': empty (write e.g. 90s, 1h30m, 250ms)");
  EXPECT_EQ(ParseDuration("10").status().message(),
            "invalid duration '10': missing unit (us, ms, s, m, h or d) (write e.g. 90s, "
            "1h30m, 250ms)");
  EXPECT_EQ(ParseDuration("5y").status().message(),
            "invalid duration '5y': unknown unit 'y' (use us, ms, s, m, h or d) (write e.g. "
            "90s, 1h30m, 250ms)");
  EXPECT_FALSE(ParseDuration("-5s").ok());
  EXPECT_FALSE(ParseDuration("s").ok());
  EXPECT_FALSE(ParseDuration("1.s").ok());
  EXPECT_FALSE(ParseDuration("99999999999999999999d").ok());
}

TEST(DurationTest, FormatsShortestExactForm) {
  EXPECT_EQ(FormatDuration(minutes(90)), "1h30m");
  EXPECT_EQ(FormatDuration(seconds(45)), "45s");
  EXPECT_EQ(FormatDuration(hours(24)), "1d");
  EXPECT_EQ(FormatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(FormatDuration(seconds(0)), "0s");
  for (const char* text : {"1h30m", "45s", "2d3h", "250ms", "7us"}) {
    EXPECT_EQ(FormatDuration(*ParseDuration(text)), text);
  }
}

TEST(Rfc3339Test, ParsesOffsetsAndFractions) {
  const Instant t = *ParseRfc3339("2026-03-08T07:00:00Z");
  EXPECT_EQ(ToUnixSeconds(t), 1772953200);
  EXPECT_EQ(*ParseRfc3339("2026-03-08T03:00:00-04:00"), t);
  EXPECT_EQ(*ParseRfc3339("2026-03-08t12:30:00+05:30"), t);
  EXPECT_EQ(*ParseRfc3339("2026-03-08 07:00:00z"), t);
  EXPECT_EQ(*ParseRfc3339("2026-03-08T07:00:00.25Z"), t + milliseconds(250));
  EXPECT_EQ(*ParseRfc3339("2026-03-08T07:00:00.123456Z") - t, std::chrono::microseconds(123456));
}

TEST(Rfc3339Test, RejectsBadTimestamps) {
  EXPECT_EQ(ParseRfc3339("2026-03-08T07:00:00").status().message(),
            "invalid timestamp '2026-03-08T07:00:00': missing offset (add Z or +hh:mm) "
            "(expected RFC 3339, e.g. 2026-03-08T03:00:00-04:00)");
  EXPECT_FALSE(ParseRfc3339("2026-02-30T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2026-13-01T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2026-01-01T24:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2026-01-01T00:00:00+2400").ok());
  EXPECT_FALSE(ParseRfc3339("2026-01-01T00:00:00Zjunk").ok());
  EXPECT_FALSE(ParseRfc3339("yesterday").ok());
}

TEST(Rfc3339Test, Formats) {
  const Instant t = *ParseRfc3339("2026-03-08T07:00:00.123456Z");
  EXPECT_EQ(FormatRfc3339Utc(t), "2026-03-08T07:00:00Z");
  EXPECT_EQ(FormatRfc3339Utc(t, 3), "2026-03-08T07:00:00.123Z");
  EXPECT_EQ(FormatRfc3339Utc(t, 6), "2026-03-08T07:00:00.123456Z");
  EXPECT_EQ(FormatRfc3339(t, hours(-4)), "2026-03-08T03:00:00-04:00");
  EXPECT_EQ(FormatRfc3339(t, minutes(330)), "2026-03-08T12:30:00+05:30");
  EXPECT_EQ(FormatRfc3339(t, seconds(0)), "2026-03-08T07:00:00+00:00");
  EXPECT_EQ(FormatRfc3339Utc(FromUnixSeconds(-1)), "1969-12-31T23:59:59Z");
}

}  // namespace
}  // namespace sked
