#include "sked/schedule.h"

#include <cctype>
#include <cstdio>
#include <string>

namespace sked {
namespace {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// "2026-12-01T09:00:00" as a one-fire cron expression in the zone, so the DST
// rule applies to it exactly as to any fixed-time schedule.
Result<CronSchedule> OneShot(std::string_view when, const TimeZone& zone) {
  int y, mo, d, h, mi, s;
  char sep;
  char tail;
  const std::string text(when);
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%c", &y, &mo, &d, &sep, &h, &mi, &s,
                  &tail) != 7 ||
      (sep != 'T' && sep != ' ') || text.size() != 19) {
    return InvalidArgumentError("schedule: invalid time '" + text +
                                "' after 'at' (expected 2026-12-01T09:00:00, local to the job's "
                                "time zone, or RFC 3339 with an offset)");
  }
  const std::string expr = std::to_string(s) + " " + std::to_string(mi) + " " + std::to_string(h) +
                           " " + std::to_string(d) + " " + std::to_string(mo) + " * " +
                           std::to_string(y);
  auto cron = CronSchedule::Parse(expr, zone, std::chrono::seconds(0));
  if (!cron.ok()) {
    return InvalidArgumentError("schedule: invalid time '" + text +
                                "' after 'at': " + cron.status().message());
  }
  return cron;
}

}  // namespace

Result<Schedule> Schedule::Parse(std::string_view raw, const TimeZone& zone,
                                 std::chrono::seconds min_interval, Instant anchor) {
  Schedule out;
  out.text_ = Trim(raw);
  const std::string& text = out.text_;
  if (text.empty()) return InvalidArgumentError("schedule: empty");
  if (StartsWith(text, "every ")) {
    auto period = ParseDuration(Trim(text.substr(6)));
    if (!period.ok()) return period.status().WithContext("schedule");
    if (*period < std::chrono::seconds(1) || *period % std::chrono::seconds(1) != Duration(0)) {
      return InvalidArgumentError(
          "schedule: interval must be a whole number of seconds, at "
          "least 1s; got '" +
          text.substr(6) + "'");
    }
    if (*period < min_interval) {
      return InvalidArgumentError("schedule: interval " + FormatDuration(*period) +
                                  " is shorter than the minimum interval of " +
                                  FormatDuration(min_interval));
    }
    out.kind_ = Kind::kInterval;
    out.period_ = *period;
    out.anchor_ = std::chrono::floor<std::chrono::seconds>(anchor);
    return out;
  }
  if (StartsWith(text, "at ")) {
    const std::string when = Trim(text.substr(3));
    out.kind_ = Kind::kOnce;
    if (when.size() > 19) {  // has an offset: an absolute instant
      auto t = ParseRfc3339(when);
      if (!t.ok()) return t.status().WithContext("schedule");
      auto local = OneShot(FormatRfc3339Utc(*t).substr(0, 19), TimeZone::Utc());
      if (!local.ok()) return local.status();
      out.cron_ = *local;
      return out;
    }
    SKED_ASSIGN_OR_RETURN(CronSchedule cron, OneShot(when, zone));
    out.cron_ = std::move(cron);
    return out;
  }
  auto cron = CronSchedule::Parse(text, zone, min_interval);
  if (!cron.ok()) return cron.status().WithContext("schedule");
  out.kind_ = Kind::kCron;
  out.cron_ = *cron;
  return out;
}

std::optional<Instant> Schedule::Next(Instant t) const {
  if (kind_ != Kind::kInterval) return cron_->Next(t);
  if (t < anchor_) return anchor_;
  const auto periods = (t - anchor_) / period_ + 1;
  return anchor_ + period_ * periods;
}

std::string Schedule::Describe() const {
  switch (kind_) {
    case Kind::kInterval:
      return "every " + FormatDuration(period_);
    case Kind::kOnce: {
      const std::string when = Trim(std::string_view(text_).substr(3));
      return when.size() > 19 ? "once, at " + when
                              : "once, at " + when + " (local time of the job's zone)";
    }
    case Kind::kCron:
      break;
  }
  return cron_->Describe();
}

}  // namespace sked
