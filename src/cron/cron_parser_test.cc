// Every syntax element and every error message of the cron parser.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cron/cron_test_util.h"

namespace sked {
namespace {

using testing::Fires;
using testing::ParseError;
using V = std::vector<std::string>;

constexpr const char* kNewYear = "2026-01-01T00:00:00Z";  // a Thursday

V Utc(const std::string& expr, int n = 4, const char* from = kNewYear) {
  return Fires(expr, "UTC", from, n);
}

TEST(CronSyntaxTest, ValuesListsRangesAndSteps) {
  EXPECT_EQ(Utc("5 4 * * *", 2), (V{"2026-01-01T04:05:00+00:00", "2026-01-02T04:05:00+00:00"}));
  EXPECT_EQ(Utc("*/15 * * * *", 3), (V{"2026-01-01T00:15:00+00:00", "2026-01-01T00:30:00+00:00",
                                       "2026-01-01T00:45:00+00:00"}));
  EXPECT_EQ(Utc("0 0 1,15 * *", 3), (V{"2026-01-15T00:00:00+00:00", "2026-02-01T00:00:00+00:00",
                                       "2026-02-15T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 9-17/4 * * *"), (V{"2026-01-01T09:00:00+00:00", "2026-01-01T13:00:00+00:00",
                                      "2026-01-01T17:00:00+00:00", "2026-01-02T09:00:00+00:00"}));
  EXPECT_EQ(Utc("10/20 * * * *"), (V{"2026-01-01T00:10:00+00:00", "2026-01-01T00:30:00+00:00",
                                     "2026-01-01T00:50:00+00:00", "2026-01-01T01:10:00+00:00"}));
  EXPECT_EQ(Utc("0 22-23,1 * * *", 3), (V{"2026-01-01T01:00:00+00:00", "2026-01-01T22:00:00+00:00",
                                          "2026-01-01T23:00:00+00:00"}));
}

TEST(CronSyntaxTest, SecondsFieldComesFirst) {
  EXPECT_EQ(Utc("*/20 * * * * *", 3), (V{"2026-01-01T00:00:20+00:00", "2026-01-01T00:00:40+00:00",
                                         "2026-01-01T00:01:00+00:00"}));
  EXPECT_EQ(Utc("30 0 12 * * *", 1), (V{"2026-01-01T12:00:30+00:00"}));
}

TEST(CronSyntaxTest, YearFieldComesSeventh) {
  EXPECT_EQ(Utc("0 0 0 1 1 * 2028"), (V{"2028-01-01T00:00:00+00:00"}));
  EXPECT_EQ(
      Utc("0 0 0 1 1 * 2027-2031/2"),
      (V{"2027-01-01T00:00:00+00:00", "2029-01-01T00:00:00+00:00", "2031-01-01T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 0 0 1 1 * *", 1), (V{"2027-01-01T00:00:00+00:00"}));
}

TEST(CronSyntaxTest, MonthAndWeekdayNamesAnyCase) {
  EXPECT_EQ(Utc("0 0 1 jan,JUL *", 2),
            (V{"2026-07-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 0 * * Mon-fri", 2),
            (V{"2026-01-02T00:00:00+00:00", "2026-01-05T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 0 1 MAR-May/2 *", 2),
            (V{"2026-03-01T00:00:00+00:00", "2026-05-01T00:00:00+00:00"}));
}

TEST(CronSyntaxTest, SundayIsZeroAndSeven) {
  EXPECT_EQ(Utc("0 0 * * 7", 2), (V{"2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 0 * * 0", 2), Utc("0 0 * * 7", 2));
  EXPECT_EQ(Utc("0 0 * * SUN", 2), Utc("0 0 * * 7", 2));
  EXPECT_EQ(Utc("0 12 * * 5-7"), (V{"2026-01-02T12:00:00+00:00", "2026-01-03T12:00:00+00:00",
                                    "2026-01-04T12:00:00+00:00", "2026-01-09T12:00:00+00:00"}));
}

TEST(CronSyntaxTest, QuestionMarkMeansAnyDay) {
  EXPECT_EQ(Utc("0 0 ? * MON", 1), (V{"2026-01-05T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 0 15 * ?", 1), (V{"2026-01-15T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 0 ? * ?", 1), (V{"2026-01-02T00:00:00+00:00"}));
}

TEST(CronSyntaxTest, LastDayOfMonth) {
  EXPECT_EQ(Utc("0 0 L * *", 3), (V{"2026-01-31T00:00:00+00:00", "2026-02-28T00:00:00+00:00",
                                    "2026-03-31T00:00:00+00:00"}));
  EXPECT_EQ(
      Utc("0 0 L 2 *", 3, "2027-06-01T00:00:00Z"),
      (V{"2028-02-29T00:00:00+00:00", "2029-02-28T00:00:00+00:00", "2030-02-28T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 0 L-2 * *", 3), (V{"2026-01-29T00:00:00+00:00", "2026-02-26T00:00:00+00:00",
                                      "2026-03-29T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 0 l * *", 1), Utc("0 0 L * *", 1));
}

TEST(CronSyntaxTest, LastWeekdayOfMonth) {
  // Jan 31 2026 is a Saturday, Feb 28 a Saturday, Mar 31 a Tuesday, May 31 a Sunday.
  EXPECT_EQ(Utc("0 0 LW * *", 3), (V{"2026-01-30T00:00:00+00:00", "2026-02-27T00:00:00+00:00",
                                     "2026-03-31T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 0 LW 5 *", 1), (V{"2026-05-29T00:00:00+00:00"}));
}

TEST(CronSyntaxTest, NearestWeekday) {
  // Feb 15 and Mar 15 2026 are Sundays: the Monday after.
  EXPECT_EQ(Utc("0 0 15W * *", 3), (V{"2026-01-15T00:00:00+00:00", "2026-02-16T00:00:00+00:00",
                                      "2026-03-16T00:00:00+00:00"}));
  // Aug 1 2026 is a Saturday: never back into July, so Monday the 3rd.
  EXPECT_EQ(Utc("0 0 1W 8 *", 1), (V{"2026-08-03T00:00:00+00:00"}));
  // May 31 2026 is a Sunday and the last day: never into June, so Friday the 29th.
  EXPECT_EQ(Utc("0 0 31W 5 *", 1), (V{"2026-05-29T00:00:00+00:00"}));
  // Jan 3 2026 is a Saturday: the Friday before.
  EXPECT_EQ(Utc("0 0 3W 1 *", 1), (V{"2026-01-02T00:00:00+00:00"}));
  // Like a plain 31, 31W does not fire in 30-day months.
  EXPECT_EQ(Utc("0 0 31W 4,5 *", 1), (V{"2026-05-29T00:00:00+00:00"}));
}

TEST(CronSyntaxTest, LastWeekdayOfKind) {
  EXPECT_EQ(Utc("0 0 * * 5L", 3), (V{"2026-01-30T00:00:00+00:00", "2026-02-27T00:00:00+00:00",
                                     "2026-03-27T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 0 * * FRIL", 3), Utc("0 0 * * 5L", 3));
  EXPECT_EQ(Utc("0 0 * * 7L", 1), (V{"2026-01-25T00:00:00+00:00"}));
}

TEST(CronSyntaxTest, NthWeekdayOfMonth) {
  EXPECT_EQ(Utc("0 0 * * MON#2", 3), (V{"2026-01-12T00:00:00+00:00", "2026-02-09T00:00:00+00:00",
                                        "2026-03-09T00:00:00+00:00"}));
  // Only March has a fifth Monday in the first quarter of 2026.
  EXPECT_EQ(Utc("0 0 * * 1#5", 1), (V{"2026-03-30T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 0 * * 1#1,5L", 3), (V{"2026-01-05T00:00:00+00:00", "2026-01-30T00:00:00+00:00",
                                         "2026-02-02T00:00:00+00:00"}));
}

TEST(CronSyntaxTest, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // Fridays, and the 13th whatever its weekday.
  EXPECT_EQ(Utc("0 0 13 * 5"), (V{"2026-01-02T00:00:00+00:00", "2026-01-09T00:00:00+00:00",
                                  "2026-01-13T00:00:00+00:00", "2026-01-16T00:00:00+00:00"}));
  // Unlike Vixie cron, a step counts as restricted: odd days or Mondays.
  EXPECT_EQ(Utc("0 0 */2 * MON", 5), (V{"2026-01-03T00:00:00+00:00", "2026-01-05T00:00:00+00:00",
                                        "2026-01-07T00:00:00+00:00", "2026-01-09T00:00:00+00:00",
                                        "2026-01-11T00:00:00+00:00"}));
  // '*' in one of them leaves the other alone.
  EXPECT_EQ(Utc("0 0 * * MON", 1), (V{"2026-01-05T00:00:00+00:00"}));
  EXPECT_EQ(Utc("0 0 13 * *", 1), (V{"2026-01-13T00:00:00+00:00"}));
}

TEST(CronSyntaxTest, Macros) {
  EXPECT_EQ(Utc("@yearly", 1), (V{"2027-01-01T00:00:00+00:00"}));
  EXPECT_EQ(Utc("@annually", 1), Utc("@yearly", 1));
  EXPECT_EQ(Utc("@monthly", 1), (V{"2026-02-01T00:00:00+00:00"}));
  EXPECT_EQ(Utc("@weekly", 1), (V{"2026-01-04T00:00:00+00:00"}));
  EXPECT_EQ(Utc("@daily", 1), (V{"2026-01-02T00:00:00+00:00"}));
  EXPECT_EQ(Utc("@midnight", 1), Utc("@daily", 1));
  EXPECT_EQ(Utc("@hourly", 1), (V{"2026-01-01T01:00:00+00:00"}));
  EXPECT_EQ(Utc("@Daily", 1), Utc("@daily", 1));
}

TEST(CronSyntaxTest, WhitespaceBetweenFields) {
  EXPECT_EQ(Utc("  5\t4  * *   * ", 1), (V{"2026-01-01T04:05:00+00:00"}));
}

TEST(CronErrorTest, OutOfRangeValuesNameFieldValueAndColumn) {
  EXPECT_EQ(ParseError("30 25 * * *"), "field 'hour': value 25 out of range 0-23 at column 4");
  EXPECT_EQ(ParseError("60 * * * *"), "field 'minute': value 60 out of range 0-59 at column 1");
  EXPECT_EQ(ParseError("0 0 0 * *"), "field 'day-of-month': value 0 out of range 1-31 at column 5");
  EXPECT_EQ(ParseError("0 0 * 13 *"), "field 'month': value 13 out of range 1-12 at column 7");
  EXPECT_EQ(ParseError("0 0 * * 8"), "field 'day-of-week': value 8 out of range 0-7 at column 9");
  EXPECT_EQ(ParseError("61 0 0 * * *"), "field 'second': value 61 out of range 0-59 at column 1");
  EXPECT_EQ(ParseError("0 0 0 1 1 * 1969"),
            "field 'year': value 1969 out of range 1970-2199 at column 13");
  EXPECT_EQ(ParseError("0 0 0 1 1 * 2200"),
            "field 'year': value 2200 out of range 1970-2199 at column 13");
  EXPECT_EQ(ParseError("0 1-99 * * *"), "field 'hour': value 99 out of range 0-23 at column 5");
  EXPECT_EQ(ParseError("99999999999 * * * *"),
            "field 'minute': value 99999999999 out of range 0-59 at column 1");
}

TEST(CronErrorTest, ReversedRangesAndBadSteps) {
  EXPECT_EQ(ParseError("5-2 * * * *"),
            "field 'minute': range 5-2 is reversed (start after end) at column 1");
  EXPECT_EQ(ParseError("0 0 * * FRI-MON"),
            "field 'day-of-week': range FRI-MON is reversed (start after end) at column 9");
  EXPECT_EQ(ParseError("*/0 * * * *"), "field 'minute': step 0 out of range 1-59 at column 3");
  EXPECT_EQ(ParseError("*/60 * * * *"), "field 'minute': step 60 out of range 1-59 at column 3");
  EXPECT_EQ(ParseError("0 1-5/0 * * *"), "field 'hour': step 0 out of range 1-23 at column 7");
  EXPECT_EQ(ParseError("*/ * * * *"), "field 'minute': missing step after '/' at column 3");
  EXPECT_EQ(ParseError("*/x * * * *"), "field 'minute': invalid step 'x' at column 3");
}

TEST(CronErrorTest, UnknownNamesAndMisplacedSymbols) {
  EXPECT_EQ(ParseError("0 0 * FOO *"),
            "field 'month': unknown month name 'FOO' (use JAN-DEC) at column 7");
  EXPECT_EQ(ParseError("0 0 * * FUN"),
            "field 'day-of-week': unknown day name 'FUN' (use SUN-SAT) at column 9");
  EXPECT_EQ(ParseError("0 0 * * MONDAY"),
            "field 'day-of-week': unknown day name 'MONDAY' (use SUN-SAT) at column 9");
  EXPECT_EQ(ParseError("a * * * *"), "field 'minute': names are not allowed here: 'a' at column 1");
  EXPECT_EQ(ParseError("0 ? * * *"),
            "field 'hour': '?' is only allowed in day-of-month and day-of-week at column 3");
  EXPECT_EQ(ParseError("0 0 ?,1 * *"),
            "field 'day-of-month': '?' cannot be part of a list at column 5");
  EXPECT_EQ(ParseError("0 0 1,,2 * *"), "field 'day-of-month': empty list element at column 7");
  EXPECT_EQ(ParseError("1-2-3 * * * *"), "field 'minute': unexpected character '-' at column 4");
  EXPECT_EQ(ParseError("-5 * * * *"), "field 'minute': unexpected character '-' at column 1");
  EXPECT_EQ(ParseError("0 L * * *"),
            "field 'hour': 'L' is only allowed in day-of-month at column 3");
  EXPECT_EQ(ParseError("0 0 1 * 1#2#3"),
            "field 'day-of-week': '#' needs an occurrence 1-5 after it (e.g. MON#2) at column 11");
  EXPECT_EQ(ParseError("1- * * * *"), "field 'minute': missing value at column 3");
  EXPECT_EQ(ParseError("5a * * * *"), "field 'minute': invalid value '5a' at column 1");
  EXPECT_EQ(ParseError("0 0 1? * *"),
            "field 'day-of-month': '?' is only allowed alone in day-of-month or day-of-week at "
            "column 6");
  EXPECT_EQ(ParseError("0 0 L-x * *"),
            "field 'day-of-month': 'L-' needs a number of days before the last (e.g. L-3) at "
            "column 7");
  EXPECT_EQ(ParseError("0 0 1 * #2"), "field 'day-of-week': missing value at column 9");
  EXPECT_EQ(ParseError("0 0 1 # *"),
            "field 'month': '#' is only allowed in day-of-week at column 7");
}

TEST(CronErrorTest, SpecialDayForms) {
  EXPECT_EQ(ParseError("0 0 * * MON#6"),
            "field 'day-of-week': occurrence 6 out of range 1-5 at column 13");
  EXPECT_EQ(ParseError("0 0 * * MON#0"),
            "field 'day-of-week': occurrence 0 out of range 1-5 at column 13");
  EXPECT_EQ(ParseError("0 0 L-31 * *"),
            "field 'day-of-month': offset 31 out of range 0-30 at column 7");
  EXPECT_EQ(ParseError("0 0 LX * *"),
            "field 'day-of-month': invalid value 'LX' (expected L, L-n or LW) at column 5");
  EXPECT_EQ(ParseError("0 0 1-5W * *"),
            "field 'day-of-month': 'W' needs a single day of the month before it (e.g. 15W), "
            "got '1-5W' at column 5");
  EXPECT_EQ(ParseError("0 0 32W * *"),
            "field 'day-of-month': value 32 out of range 1-31 at column 5");
  EXPECT_EQ(ParseError("0 0 * * L"),
            "field 'day-of-week': 'L' alone is not allowed in day-of-week; write 6L for the last "
            "Saturday, or use L in day-of-month at column 9");
  EXPECT_EQ(ParseError("0 0 * * 1-5L"),
            "field 'day-of-week': 'L' needs a single weekday before it (e.g. 5L or FRIL), got "
            "'1-5L' at column 9");
}

TEST(CronErrorTest, FieldCountAndMacros) {
  EXPECT_EQ(ParseError(""), "empty cron expression");
  EXPECT_EQ(ParseError("   "), "empty cron expression");
  EXPECT_EQ(ParseError("0 0 * *"),
            "expected 5 fields (minute hour day-of-month month day-of-week), 6 with seconds "
            "first, or 7 with a year last; got 4");
  EXPECT_EQ(ParseError("0 0 0 * * * * *"),
            "expected 5 fields (minute hour day-of-month month day-of-week), 6 with seconds "
            "first, or 7 with a year last; got 8");
  EXPECT_EQ(ParseError("@fortnightly"),
            "unknown macro '@fortnightly' at column 1 (expected @yearly, @annually, @monthly, "
            "@weekly, @daily, @midnight or @hourly)");
  EXPECT_EQ(ParseError("@reboot"),
            "'@reboot' is not supported: sked fires on a schedule, not at system start");
  EXPECT_EQ(ParseError("@daily 5"), "unexpected text after @daily at column 8");
  EXPECT_EQ(ParseError("0 0 * * *\x01"), "unexpected character at column 10");
}

TEST(CronErrorTest, NeverFires) {
  EXPECT_EQ(ParseError("0 0 30 2 *"),
            "expression never fires: day-of-month 30 does not occur in February");
  EXPECT_EQ(ParseError("0 0 31 4,6,9,11 *"),
            "expression never fires: day-of-month 31 does not occur in April, June, September, "
            "November");
  EXPECT_EQ(ParseError("0 0 0 29 2 * 2027"),
            "expression never fires: no date from 1970 to 2199 matches all of its fields");
  EXPECT_EQ(ParseError("0 0 0 * * 1#5 2026"), "");  // March 30 2026 is a fifth Monday
  // Only in leap years, but it does fire.
  EXPECT_EQ(ParseError("0 0 29 2 *"), "");
}

TEST(CronErrorTest, UnknownZone) {
  EXPECT_EQ(ParseError("0 0 * * *", "Mars/Olympus"),
            "unknown time zone 'Mars/Olympus' (expected an IANA name such as Europe/Berlin)");
  EXPECT_EQ(ParseError("0 0 * * *", "../../etc/passwd"),
            "unknown time zone '../../etc/passwd' (expected an IANA name such as Europe/Berlin)");
}

}  // namespace
}  // namespace sked
