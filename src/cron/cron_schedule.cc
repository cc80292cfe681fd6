// Fire times of a cron pattern in a time zone, with the DST rule of
// docs/cron.md, and the semantic checks made when a schedule is parsed.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cron/civil.h"
#include "cron/cron_pattern.h"
#include "cron/zone_table.h"
#include "sked/cron.h"

namespace sked {
namespace {

using cron_internal::CronPattern;
using cron_internal::FieldId;
using cron_internal::kMaxYear;
using cron_internal::kMinYear;
using cron_internal::ZoneTable;

constexpr std::int64_t kInf = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kEpoch1970Local = 0;

std::vector<std::int64_t> Values(std::uint64_t bits) {
  std::vector<std::int64_t> out;
  for (int i = 0; i < 64; ++i) {
    if ((bits >> i) & 1) out.push_back(i);
  }
  return out;
}

std::int64_t MinConsecutiveGap(const std::vector<std::int64_t>& v) {
  std::int64_t g = kInf;
  for (size_t i = 1; i < v.size(); ++i) g = std::min(g, v[i] - v[i - 1]);
  return g;
}

// The smallest distance in days between two consecutive matching days in
// years [first, last], or kInf.
std::int64_t MinDayDistanceIn(const CronPattern& p, int first, int last) {
  std::int64_t best = kInf;
  std::int64_t prev = -1;
  for (int y = first; y <= last; ++y) {
    if (!p.YearAllowed(y)) continue;
    for (unsigned m = 1; m <= 12; ++m) {
      if (!((p.months >> m) & 1)) continue;
      const std::uint64_t mask = p.DayMask(y, m);
      if (!mask) continue;
      const std::int64_t first_day = cron_internal::DaysFromCivil(y, m, 1) - 1;
      for (std::uint64_t bits = mask; bits; bits &= bits - 1) {
        const std::int64_t day = first_day + std::countr_zero(bits);
        if (prev >= 0) best = std::min(best, day - prev);
        prev = day;
        if (best == 1) return 1;
      }
    }
  }
  return best;
}

// The smallest distance in days between two consecutive matching days.
std::int64_t MinDayDistance(const CronPattern& p) {
  if (!p.all_years) return MinDayDistanceIn(p, kMinYear, kMaxYear);
  // With every year allowed, the Gregorian calendar's days, weekdays and leap
  // years repeat every 28 years between 1901 and 2099; 2000-2028 holds every
  // kind of year and year boundary, and 2096-2104 adds 2100, not a leap year.
  return std::min(MinDayDistanceIn(p, 2000, 2028), MinDayDistanceIn(p, 2096, 2104));
}

// See CronPattern::min_gap. Exact for the nominal (DST-free) wall clock: the
// consecutive fires within a day are a product of three sorted sets, so the
// gaps are those within the seconds, across a minute, across an hour, and
// across days.
std::int64_t ComputeMinGap(const CronPattern& p) {
  const std::vector<std::int64_t> s = Values(p.seconds), m = Values(p.minutes), h = Values(p.hours);
  std::int64_t gap = MinConsecutiveGap(s);
  if (m.size() > 1) gap = std::min(gap, MinConsecutiveGap(m) * 60 + s.front() - s.back());
  if (h.size() > 1) {
    gap = std::min(
        gap, MinConsecutiveGap(h) * 3600 + (m.front() - m.back()) * 60 + s.front() - s.back());
  }
  const std::int64_t first = h.front() * 3600 + m.front() * 60 + s.front();
  const std::int64_t last = h.back() * 3600 + m.back() * 60 + s.back();
  if (86400 - last + first < gap) {
    const std::int64_t days = MinDayDistance(p);
    if (days != kInf) gap = std::min(gap, days * 86400 - last + first);
  }
  return gap == kInf ? -1 : gap;
}

constexpr const char* kMonthLongNames[13] = {
    "",     "January", "February",  "March",   "April",    "May",     "June",
    "July", "August",  "September", "October", "November", "December"};

// Why a pattern that never matches does not, in the common case of a day of
// the month that the chosen months do not have ("0 0 30 2 *").
std::string NeverFiresReason(const CronPattern& p) {
  std::string generic =
      "expression never fires: no date from 1970 to 2199 matches all of its fields";
  if (p.dow_restricted || !p.dom_restricted || p.dom == 0 || p.dom_last_offsets ||
      p.dom_last_weekday) {
    return generic;
  }
  const int min_day = std::countr_zero(p.dom | p.dom_nearest_weekday);
  std::string months;
  int count = 0;
  for (unsigned mo = 1; mo <= 12; ++mo) {
    if (!((p.months >> mo) & 1)) continue;
    const int max_days = mo == 2 ? 29 : (mo == 4 || mo == 6 || mo == 9 || mo == 11) ? 30 : 31;
    if (max_days >= min_day) return generic;
    if (count++) months += ", ";
    months += kMonthLongNames[mo];
  }
  return "expression never fires: day-of-month " + std::to_string(min_day) + " does not occur in " +
         months;
}

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view expression, const CronOptions& options) {
  SKED_ASSIGN_OR_RETURN(TimeZone zone, TimeZone::Find(options.time_zone));
  return Parse(expression, zone, options.min_interval);
}

Result<CronSchedule> CronSchedule::Parse(std::string_view expression, const TimeZone& zone,
                                         std::chrono::seconds min_interval) {
  SKED_ASSIGN_OR_RETURN(std::shared_ptr<CronPattern> pattern,
                        cron_internal::ParseCronPattern(expression));
  std::int64_t first;
  if (!pattern->NextLocal(kEpoch1970Local, &first)) {
    return InvalidArgumentError(NeverFiresReason(*pattern));
  }
  pattern->min_gap = ComputeMinGap(*pattern);
  if (min_interval.count() > 0 && pattern->min_gap >= 0 &&
      pattern->min_gap < min_interval.count()) {
    return InvalidArgumentError("expression fires as often as every " +
                                FormatDuration(std::chrono::seconds(pattern->min_gap)) +
                                ", more often than the minimum interval of " +
                                FormatDuration(min_interval));
  }
  std::string text(expression);
  const size_t b = text.find_first_not_of(" \t");
  const size_t e = text.find_last_not_of(" \t");
  text = text.substr(b, e - b + 1);
  return CronSchedule(std::move(text), std::move(pattern), zone);
}

std::optional<Instant> CronSchedule::Next(Instant after) const {
  const CronPattern& p = *pattern_;
  const ZoneTable& z = zone_.table();
  std::int64_t t = ToUnixSeconds(after) + 1;  // first candidate second
  std::size_t i = z.Find(t);
  if (!p.interval_like && i > 0 && t == z.Begin(i) && z.Offset(i - 1) < z.Offset(i)) {
    // The search starts at the very instant a forward jump ends: fixed times
    // in that jump's gap fire now (the rounds below see a gap only when they
    // cross it).
    std::int64_t in_gap;
    if (p.NextLocal(t + z.Offset(i - 1), &in_gap) && in_gap < t + z.Offset(i)) {
      return FromUnixSeconds(t);
    }
  }
  // Each round either answers or moves to the next period of the zone.
  for (int round = 0; round < 4096; ++round) {
    const std::int64_t offset = z.Offset(i);
    std::int64_t local_start = t + offset;
    if (!p.interval_like && i > 0) {
      // After a backward jump, fixed times repeated in this period already
      // fired on their first pass.
      const std::int64_t repeated_end = z.Begin(i) + z.Offset(i - 1);
      if (local_start < repeated_end) local_start = repeated_end;
    }
    std::int64_t local;
    if (!p.NextLocal(local_start, &local)) return std::nullopt;
    const std::int64_t end = z.End(i);
    if (local - offset < end) return FromUnixSeconds(local - offset);
    // The match lies past this period, whose clock jumps at `end`. A fixed
    // time inside a forward jump's gap fires once, at the first instant after it.
    const std::int64_t next_offset = z.Offset(i + 1);
    if (!p.interval_like && next_offset > offset && local < end + next_offset) {
      return FromUnixSeconds(end);
    }
    t = end;
    ++i;
  }
  return std::nullopt;
}

std::optional<Instant> CronSchedule::Prev(Instant before) const {
  const CronPattern& p = *pattern_;
  const ZoneTable& z = zone_.table();
  const std::int64_t ceil_s =
      std::chrono::ceil<std::chrono::seconds>(before).time_since_epoch().count();
  std::int64_t t = ceil_s - 1;  // last candidate second
  std::size_t i = z.Find(t);
  for (int round = 0; round < 4096; ++round) {
    const std::int64_t offset = z.Offset(i);
    const std::int64_t begin = z.Begin(i);
    std::int64_t local;
    if (!p.PrevLocal(t + offset, &local)) return std::nullopt;
    if (local - offset >= begin) {
      // A fixed time repeated after a backward jump fired on its first pass,
      // in the previous period; otherwise this is the answer.
      const bool repeated = !p.interval_like && i > 0 && local < begin + z.Offset(i - 1);
      if (!repeated) return FromUnixSeconds(local - offset);
    }
    if (i == 0) return std::nullopt;
    const std::int64_t prev_offset = z.Offset(i - 1);
    if (!p.interval_like && prev_offset < offset) {
      // A forward jump at `begin`: fixed times in its gap fire at `begin`.
      std::int64_t in_gap;
      if (p.PrevLocal(begin + offset - 1, &in_gap) && in_gap >= begin + prev_offset) {
        return FromUnixSeconds(begin);
      }
    }
    t = begin - 1;
    --i;
  }
  return std::nullopt;
}

std::vector<Instant> CronSchedule::NextN(Instant t, int n) const {
  std::vector<Instant> out;
  if (n > 0) out.reserve(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) {
    std::optional<Instant> next = Next(t);
    if (!next) break;
    out.push_back(*next);
    t = *next;
  }
  return out;
}

bool CronSchedule::interval_like() const { return pattern_->interval_like; }

bool CronSchedule::MatchesAt(Instant t) const {
  const cron_internal::Civil c =
      cron_internal::ToCivil(ToUnixSeconds(t) + zone_.OffsetAt(t).count());
  return MatchesLocal(c.y, static_cast<unsigned>(c.mo), static_cast<unsigned>(c.d), c.h, c.mi, c.s);
}

std::optional<std::chrono::seconds> CronSchedule::min_gap() const {
  if (pattern_->min_gap < 0) return std::nullopt;
  return std::chrono::seconds(pattern_->min_gap);
}

bool CronSchedule::MatchesLocal(int year, unsigned month, unsigned day, int hour, int minute,
                                int second) const {
  const CronPattern& p = *pattern_;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 ||
      minute > 59 || second < 0 || second > 59) {
    return false;
  }
  return p.YearAllowed(year) && ((p.months >> month) & 1) &&
         ((p.DayMask(year, month) >> day) & 1) && ((p.hours >> hour) & 1) &&
         ((p.minutes >> minute) & 1) && ((p.seconds >> second) & 1);
}

}  // namespace sked
