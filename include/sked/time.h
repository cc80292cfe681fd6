// Instants, durations, and their text forms (RFC 3339, "1h30m").

#ifndef SKED_TIME_H_
#define SKED_TIME_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "sked/status.h"

namespace sked {

// A point in time, UTC, with microsecond resolution.
using Instant = std::chrono::sys_time<std::chrono::microseconds>;
using Duration = std::chrono::microseconds;

// Seconds since the Unix epoch <-> Instant.
inline Instant FromUnixSeconds(std::int64_t s) { return Instant(std::chrono::seconds(s)); }
inline std::int64_t ToUnixSeconds(Instant t) {
  return std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
}

// Parses a duration written as one or more <number><unit> parts, e.g. "90s",
// "1h30m", "1.5h", "250ms". Units: us, ms, s, m, h, d. A bare "0" is zero.
// Negative durations are rejected.
Result<Duration> ParseDuration(std::string_view text);

// "1h30m", "45s", "250ms", "0s": the shortest exact form ParseDuration reads back.
std::string FormatDuration(Duration d);

// Parses an RFC 3339 timestamp with an offset: "2026-03-08T03:00:00-04:00",
// "2026-03-08T08:00:00Z", optional fraction of a second (down to microseconds).
// A missing offset is an error, since the instant would be ambiguous.
Result<Instant> ParseRfc3339(std::string_view text);

// "2026-03-08T08:00:00Z", with `fraction_digits` (0, 3 or 6) digits of fraction.
std::string FormatRfc3339Utc(Instant t, int fraction_digits = 0);

// The local time at `t` for a zone whose offset from UTC is `offset`, as
// "2026-03-08T03:00:00-04:00" (always a numeric offset, +00:00 for zero).
std::string FormatRfc3339(Instant t, std::chrono::seconds offset, int fraction_digits = 0);

// "+05:30", "-04:00", "+00:00".
std::string FormatUtcOffset(std::chrono::seconds offset);

}  // namespace sked

#endif  // SKED_TIME_H_
