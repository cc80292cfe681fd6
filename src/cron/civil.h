// Calendar arithmetic on the proleptic Gregorian calendar, in days since
// 1970-01-01 and seconds since its midnight (UTC or a wall clock alike).

#ifndef SKED_CRON_CIVIL_H_
#define SKED_CRON_CIVIL_H_

#include <chrono>
#include <cstdint>

namespace sked::cron_internal {

inline bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

inline int DaysInMonth(int y, unsigned m) {
  static constexpr int kDays[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m];
}

inline std::int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  return std::chrono::sys_days(std::chrono::year(y) / std::chrono::month(m) / std::chrono::day(d))
      .time_since_epoch()
      .count();
}

// 0 = Sunday.
inline int WeekdayOf(std::int64_t days) {
  return static_cast<int>(
      std::chrono::weekday(std::chrono::sys_days(std::chrono::days(days))).c_encoding());
}

// A date and time of day, as a wall clock shows it.
struct Civil {
  int y;
  int mo;  // 1-12 (13 or 0 while a search carries)
  int d;   // 1-31 (32 or 0 while a search carries)
  int h, mi, s;
};

inline Civil ToCivil(std::int64_t seconds) {
  const std::int64_t days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400;
  const std::int64_t sod = seconds - days * 86400;
  const std::chrono::year_month_day ymd{std::chrono::sys_days(std::chrono::days(days))};
  return {static_cast<int>(ymd.year()),
          static_cast<int>(static_cast<unsigned>(ymd.month())),
          static_cast<int>(static_cast<unsigned>(ymd.day())),
          static_cast<int>(sod / 3600),
          static_cast<int>(sod / 60 % 60),
          static_cast<int>(sod % 60)};
}

inline std::int64_t FromCivil(const Civil& c) {
  return DaysFromCivil(c.y, c.mo, c.d) * 86400 + std::int64_t{c.h} * 3600 +
         std::int64_t{c.mi} * 60 + c.s;
}

}  // namespace sked::cron_internal

#endif  // SKED_CRON_CIVIL_H_
