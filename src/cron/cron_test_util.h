// Readable fixtures for cron tests: fires as local RFC 3339 strings.

#ifndef SKED_CRON_CRON_TEST_UTIL_H_
#define SKED_CRON_CRON_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cron/civil.h"
#include "sked/cron.h"
#include "sked/time.h"

namespace sked::testing {

inline Instant At(const std::string& rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.value_or(Instant());
}

inline CronSchedule Schedule(const std::string& expr, const std::string& zone = "UTC") {
  auto s = CronSchedule::Parse(expr, CronOptions{zone, std::chrono::seconds(0)});
  EXPECT_TRUE(s.ok()) << expr << ": " << s.status().ToString();
  if (!s.ok()) return CronSchedule::Parse("* * * * *", CronOptions{"UTC", {}}).value();
  return *s;
}

// The next `n` fires of `expr` in `zone` strictly after `from`, formatted in the zone.
inline std::vector<std::string> Fires(const std::string& expr, const std::string& zone,
                                      const std::string& from, int n) {
  const CronSchedule s = Schedule(expr, zone);
  std::vector<std::string> out;
  for (Instant t : s.NextN(At(from), n)) out.push_back(s.time_zone().Format(t));
  return out;
}

// The previous `n` fires before `from`, latest first.
inline std::vector<std::string> PrevFires(const std::string& expr, const std::string& zone,
                                          const std::string& from, int n) {
  const CronSchedule s = Schedule(expr, zone);
  std::vector<std::string> out;
  Instant t = At(from);
  for (int i = 0; i < n; ++i) {
    auto prev = s.Prev(t);
    if (!prev) break;
    out.push_back(s.time_zone().Format(*prev));
    t = *prev;
  }
  return out;
}

// The error message of parsing `expr` (empty if it parses).
inline std::string ParseError(const std::string& expr, const std::string& zone = "UTC",
                              int min_interval_s = 0) {
  auto s = CronSchedule::Parse(expr, CronOptions{zone, std::chrono::seconds(min_interval_s)});
  return s.ok() ? "" : s.status().message();
}

// Whether a wall-clock time, in seconds since 1970-01-01T00:00 on that
// clock, matches every field of `s`.
inline bool MatchesWallClock(const CronSchedule& s, std::int64_t local) {
  const cron_internal::Civil c = cron_internal::ToCivil(local);
  return s.MatchesLocal(c.y, static_cast<unsigned>(c.mo), static_cast<unsigned>(c.d), c.h, c.mi,
                        c.s);
}

}  // namespace sked::testing

#endif  // SKED_CRON_CRON_TEST_UTIL_H_
