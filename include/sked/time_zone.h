// IANA time zones, from the system tz database (/usr/share/zoneinfo).

#ifndef SKED_TIME_ZONE_H_
#define SKED_TIME_ZONE_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sked/status.h"
#include "sked/time.h"

namespace sked {

namespace cron_internal {
class ZoneTable;
}

// A named IANA zone. Cheap to copy; all copies share one immutable table of
// the zone's offsets, so a TimeZone is safe to use from many threads.
// Offsets are exact from 1900 to 2200: explicit tz database transitions, then
// the zone's current rule (the TZif footer) for years the database does not list.
class TimeZone {
 public:
  // "UTC", "America/New_York", links such as "US/Eastern". Unknown names give
  // INVALID_ARGUMENT "unknown time zone 'Mars/Olympus'".
  static Result<TimeZone> Find(std::string_view name);
  static TimeZone Utc();

  // The name as given to Find().
  const std::string& name() const;

  // Offset from UTC (local = utc + offset) and abbreviation ("EDT") at `t`.
  std::chrono::seconds OffsetAt(Instant t) const;
  std::string AbbreviationAt(Instant t) const;

  // A change of the zone's UTC offset.
  struct Transition {
    Instant at;  // first instant with the new offset
    std::chrono::seconds offset_before;
    std::chrono::seconds offset_after;
    std::string abbreviation_before;
    std::string abbreviation_after;
  };
  // The first transition strictly after `t`, if any before 2200.
  std::optional<Transition> NextTransition(Instant t) const;

  // `t` as local RFC 3339 with this zone's offset: "2026-03-08T03:00:00-04:00".
  std::string Format(Instant t, int fraction_digits = 0) const;

  const cron_internal::ZoneTable& table() const { return *table_; }

 private:
  explicit TimeZone(std::shared_ptr<const cron_internal::ZoneTable> table)
      : table_(std::move(table)) {}
  std::shared_ptr<const cron_internal::ZoneTable> table_;
};

}  // namespace sked

#endif  // SKED_TIME_ZONE_H_
