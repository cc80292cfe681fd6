// Cron schedules: parsing, validation, and fire times in a time zone.
//
// The contract users rely on is docs/cron.md: the syntax, and the DST rule
// "never lose a fire, never double one". In short, evaluated in the
// schedule's own zone:
//  - a schedule is interval-like when its second, minute or hour field holds
//    '*', a range or a step; otherwise it is fixed-time;
//  - local times skipped by a forward jump: a fixed-time fire happens once, at
//    the first instant after the gap; interval-like times in the gap do not exist;
//  - local times repeated by a backward jump: fixed-time fires on the first pass
//    only; interval-like fires on both passes.

#ifndef SKED_CRON_H_
#define SKED_CRON_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sked/status.h"
#include "sked/time.h"
#include "sked/time_zone.h"

namespace sked {

namespace cron_internal {
struct CronPattern;
}

struct CronOptions {
  // IANA zone the schedule is evaluated in.
  std::string time_zone = "UTC";
  // Schedules whose smallest gap between consecutive fires is shorter are
  // rejected. Zero disables the check.
  std::chrono::seconds min_interval{60};
};

// A parsed, validated cron schedule bound to a time zone. Immutable; cheap to
// copy (copies share the parsed pattern); safe to use from many threads.
class CronSchedule {
 public:
  // Parses and validates `expression`. Errors are INVALID_ARGUMENT with a
  // message that names the field, the value and the 1-based column, e.g.
  // "field 'hour': value 25 out of range 0-23 at column 4".
  static Result<CronSchedule> Parse(std::string_view expression, const CronOptions& options = {});
  static Result<CronSchedule> Parse(std::string_view expression, const TimeZone& zone,
                                    std::chrono::seconds min_interval);

  // The first fire strictly after `t`; none past 2199 (the supported range is
  // 1970-2199).
  std::optional<Instant> Next(Instant t) const;
  // The last fire strictly before `t`; none before 1970.
  std::optional<Instant> Prev(Instant t) const;
  // Up to `n` fires strictly after `t`, in order.
  std::vector<Instant> NextN(Instant t, int n) const;

  const std::string& expression() const { return expression_; }
  const TimeZone& time_zone() const { return zone_; }

  // Whether the DST rule treats this schedule as interval-like.
  bool interval_like() const;
  // The smallest gap between two consecutive fires in local wall-clock time
  // (a DST jump can bring two fires closer once); nullopt if it fires once.
  std::optional<std::chrono::seconds> min_gap() const;

  // Whether a local wall-clock time matches every field (no DST rule applied).
  bool MatchesLocal(int year, unsigned month, unsigned day, int hour, int minute, int second) const;

  // Whether the zone's wall clock at `t` matches every field (no DST rule applied).
  bool MatchesAt(Instant t) const;

  // Plain English: "at 09:30 on Monday through Friday".
  std::string Describe() const;

 private:
  CronSchedule(std::string expression, std::shared_ptr<const cron_internal::CronPattern> pattern,
               TimeZone zone)
      : expression_(std::move(expression)), pattern_(std::move(pattern)), zone_(std::move(zone)) {}

  std::string expression_;
  std::shared_ptr<const cron_internal::CronPattern> pattern_;
  TimeZone zone_;
};

// How the zone's clock changes affect a fire at `t` whose previous fire (or
// the start of a listing) was at `prev`: "DST: clocks jumped forward from
// 02:00 to 03:00 (+01:00 -> +02:00) before this fire", and whether the fire's
// local time was skipped or repeated. Empty when no change lies between.
// `schedule` may be null (interval and one-shot schedules).
std::vector<std::string> DstNotes(const TimeZone& zone, const CronSchedule* schedule, Instant prev,
                                  Instant t);

}  // namespace sked

#endif  // SKED_CRON_H_
