// The parsed form of a cron expression: one bit set per field plus the
// special day forms, and the items as written (for descriptions).

#ifndef SKED_CRON_CRON_PATTERN_H_
#define SKED_CRON_CRON_PATTERN_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "sked/status.h"

namespace sked::cron_internal {

enum class FieldId { kSecond = 0, kMinute, kHour, kDayOfMonth, kMonth, kDayOfWeek, kYear };
inline constexpr int kFieldCount = 7;
inline constexpr int kMinYear = 1970;
inline constexpr int kMaxYear = 2199;

// One element of a field's comma-separated list, as written.
struct CronItem {
  enum class Kind {
    kAll,             // '*' or '?', or '*/step'
    kValue,           // 5
    kRange,           // 1-5, 1-5/2, 3/15 (open_end: to the field's maximum)
    kLastDay,         // L, L-3 (value = offset)
    kLastWeekday,     // LW
    kNearestWeekday,  // 15W (value = day)
    kLastOfWeekday,   // 5L (value = weekday)
    kNthWeekday,      // 1#2 (value = weekday, nth = occurrence)
  };
  Kind kind = Kind::kValue;
  int value = 0;          // kValue, start of kRange, and the special forms
  int end = 0;            // kRange
  int step = 1;           // kAll, kRange
  int nth = 0;            // kNthWeekday
  bool open_end = false;  // kRange written as "a/n"
  bool question = false;  // kAll written as '?'
};

struct CronField {
  std::vector<CronItem> items;
  bool restricted = false;  // anything but exactly '*' or '?'
};

struct CronPattern {
  std::uint64_t seconds = 0;             // bits 0-59
  std::uint64_t minutes = 0;             // bits 0-59
  std::uint64_t hours = 0;               // bits 0-23
  std::uint64_t dom = 0;                 // bits 1-31 (plain days)
  std::uint64_t months = 0;              // bits 1-12
  std::uint64_t dow = 0;                 // bits 0-6 (plain weekdays, 0 = Sunday)
  std::array<std::uint64_t, 4> years{};  // bit (year - 1970)
  bool all_years = true;

  // Special day-of-month forms.
  std::uint64_t dom_last_offsets = 0;     // bit n: L-n
  bool dom_last_weekday = false;          // LW
  std::uint64_t dom_nearest_weekday = 0;  // bit n: nW
  // Special day-of-week forms.
  std::uint64_t dow_last = 0;              // bit w: wL
  std::array<std::uint64_t, 5> dow_nth{};  // [k-1] bit w: w#k

  bool dom_restricted = false;
  bool dow_restricted = false;
  // Days 1-31 whose weekday is in `dow`, for a month whose 1st falls on weekday i.
  std::array<std::uint64_t, 7> week_masks{};

  bool interval_like = false;
  bool has_seconds_field = false;
  bool has_year_field = false;
  bool from_macro = false;
  // Smallest gap between consecutive fires in local wall-clock seconds; -1
  // when the pattern matches at most once. Set by the schedule on parse.
  std::int64_t min_gap = -1;
  std::array<CronField, kFieldCount> fields;

  bool YearAllowed(int y) const {
    if (y < kMinYear || y > kMaxYear) return false;
    if (all_years) return true;
    const int b = y - kMinYear;
    return (years[b / 64] >> (b % 64)) & 1;
  }

  // Bits 1..31: the days of month `m` of year `y` that match the day fields.
  std::uint64_t DayMask(int y, unsigned m) const;

  // The first local time (seconds since the epoch, wall clock) at or after
  // `local` that matches every field; false if none up to 2199.
  bool NextLocal(std::int64_t local, std::int64_t* out) const;
  // The last matching local time at or before `local`; false if none from 1970.
  bool PrevLocal(std::int64_t local, std::int64_t* out) const;
};

// Parses the syntax of a cron expression (5, 6 or 7 fields, or a macro).
// Semantic checks (never fires, minimum interval) are the schedule's.
Result<std::shared_ptr<CronPattern>> ParseCronPattern(std::string_view expression);

// The field's name as used in messages: "second", ..., "day-of-week", "year".
std::string_view FieldName(FieldId id);

}  // namespace sked::cron_internal

#endif  // SKED_CRON_CRON_PATTERN_H_
