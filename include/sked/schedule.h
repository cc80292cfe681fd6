// A job's schedule: a cron expression or macro, a fixed interval
// ("every 90s", anchored at the job's start_at or creation), or one shot
// ("at 2026-12-01T09:00:00", local to the job's zone, or with an offset).

#ifndef SKED_SCHEDULE_H_
#define SKED_SCHEDULE_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "sked/cron.h"
#include "sked/status.h"
#include "sked/time.h"
#include "sked/time_zone.h"

namespace sked {

class Schedule {
 public:
  enum class Kind { kCron, kInterval, kOnce };

  // Errors are INVALID_ARGUMENT and name what is wrong. Schedules firing more
  // often than `min_interval` are rejected.
  static Result<Schedule> Parse(std::string_view text, const TimeZone& zone,
                                std::chrono::seconds min_interval, Instant anchor);

  Kind kind() const { return kind_; }
  // The first fire strictly after `t`, if any.
  std::optional<Instant> Next(Instant t) const;
  // The text as given, trimmed.
  const std::string& text() const { return text_; }
  // In plain English: "at 02:30 every day", "every 5m", "once, at
  // 2026-12-01T09:00:00 (local time of the job's zone)".
  std::string Describe() const;

 private:
  Schedule() = default;
  Kind kind_ = Kind::kCron;
  std::string text_;
  std::optional<CronSchedule> cron_;  // kCron and kOnce
  Duration period_{};                 // kInterval
  Instant anchor_{};                  // kInterval
};

}  // namespace sked

#endif  // SKED_SCHEDULE_H_
