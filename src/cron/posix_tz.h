// POSIX TZ strings as found in the footer of TZif version 2+ files (RFC 8536
// section 3.3), e.g. "EST5EDT,M3.2.0,M11.1.0" or "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0".
//
// The system tz database lists explicit transitions only up to 2037; the
// footer says how the zone behaves after its last explicit transition, so
// sked uses it to extend a zone's table to the end of its supported range.
// date/ptz.h does this job too, but it neither compiles as C++20 (ambiguous
// hh_mm_ss) nor accepts RFC 8536's extended hours (-167..167, used by
// America/Nuuk), so this small parser stands in for it.

#ifndef SKED_CRON_POSIX_TZ_H_
#define SKED_CRON_POSIX_TZ_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sked/status.h"

namespace sked::cron_internal {

struct PosixTzRule {
  enum class Kind { kJulian1, kJulian0, kMonthWeekDay };  // "Jn", "n", "Mm.w.d"
  Kind kind = Kind::kMonthWeekDay;
  int day = 0;               // Jn: 1-365; n: 0-365
  int month = 0;             // Mm.w.d: 1-12
  int week = 0;              // 1-5 (5 = last)
  int weekday = 0;           // 0 = Sunday
  std::int32_t time = 7200;  // seconds after local midnight, -167h..167h
};

struct PosixTz {
  std::string std_abbrev;
  std::int32_t std_offset = 0;  // seconds east of UTC
  bool has_dst = false;
  std::string dst_abbrev;
  std::int32_t dst_offset = 0;  // seconds east of UTC
  PosixTzRule start, end;       // DST starts at `start` (std time), ends at `end` (DST time)
};

struct PosixTransition {
  std::int64_t at;      // UTC seconds
  std::int32_t offset;  // offset in force from `at` on
  bool dst;             // whether that offset is the DST one
};

Result<PosixTz> ParsePosixTz(std::string_view text);

// The DST start and end transitions of `year` in time order (none without DST).
std::vector<PosixTransition> PosixTransitionsInYear(const PosixTz& tz, int year);

}  // namespace sked::cron_internal

#endif  // SKED_CRON_POSIX_TZ_H_
