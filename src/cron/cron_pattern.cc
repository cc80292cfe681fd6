// Matching and searching local wall-clock times against a CronPattern.
//
// The search moves field by field (year, month, day, hour, minute, second),
// jumping to the next allowed value with bit operations, so finding the next
// fire costs a handful of steps whatever the gap, never a scan of minutes.

#include <bit>
#include <chrono>
#include <cstdint>

#include "cron/civil.h"
#include "cron/cron_pattern.h"

namespace sked::cron_internal {
namespace {

constexpr std::uint64_t kAllBits = ~std::uint64_t{0};

// Lowest set bit of `bits` at or above `from` (from <= 64), or -1.
inline int NextBit(std::uint64_t bits, int from) {
  if (from >= 64) return -1;
  const std::uint64_t m = bits & (kAllBits << from);
  return m ? std::countr_zero(m) : -1;
}

// Highest set bit of `bits` at or below `to` (to >= -1), or -1.
inline int PrevBit(std::uint64_t bits, int to) {
  if (to < 0) return -1;
  const std::uint64_t m = to >= 63 ? bits : bits & ((std::uint64_t{2} << to) - 1);
  return m ? 63 - std::countl_zero(m) : -1;
}

// Next allowed year >= y, or kMaxYear + 1.
int NextYear(const CronPattern& p, int y) {
  for (; y <= kMaxYear; ++y) {
    if (p.YearAllowed(y)) return y;
  }
  return kMaxYear + 1;
}

int PrevYear(const CronPattern& p, int y) {
  for (; y >= kMinYear; --y) {
    if (p.YearAllowed(y)) return y;
  }
  return kMinYear - 1;
}

}  // namespace

std::uint64_t CronPattern::DayMask(int y, unsigned m) const {
  const int ndays = DaysInMonth(y, m);
  if (ndays < 28 || ndays > 31) return 0;  // never; says so to the static analyzer
  const std::uint64_t valid = ((std::uint64_t{1} << ndays) - 1) << 1;
  if (!dom_restricted && !dow_restricted) return valid;

  std::uint64_t dom_mask = 0;
  if (dom_restricted) {
    dom_mask = dom;
    if (dom_last_offsets) {
      for (int n = 0; n < ndays; ++n) {
        if ((dom_last_offsets >> n) & 1) dom_mask |= std::uint64_t{1} << (ndays - n);
      }
    }
    if (dom_last_weekday || dom_nearest_weekday) {
      const int wd1 = WeekdayOf(DaysFromCivil(y, m, 1));
      auto weekday = [&](int day) { return (wd1 + day - 1) % 7; };
      if (dom_last_weekday) {
        int day = ndays;
        // Any three days in a row hold a weekday; the bound is for the analyzer.
        while (day > 1 && (weekday(day) == 0 || weekday(day) == 6)) --day;
        dom_mask |= std::uint64_t{1} << day;
      }
      for (std::uint64_t bits = dom_nearest_weekday; bits; bits &= bits - 1) {
        const int n = std::countr_zero(bits);
        if (n < 1 || n > ndays) continue;  // like a plain 31, 31W does not fire in short months
        int day = n;
        if (weekday(n) == 6)
          day = n == 1 ? 3 : n - 1;  // Saturday
        else if (weekday(n) == 0)
          day = n == ndays ? n - 2 : n + 1;  // Sunday
        dom_mask |= std::uint64_t{1} << day;
      }
    }
    dom_mask &= valid;
  }

  std::uint64_t dow_mask = 0;
  if (dow_restricted) {
    const int wd1 = WeekdayOf(DaysFromCivil(y, m, 1));
    dow_mask = week_masks[wd1];
    if (dow_last) {
      const int wd_last = (wd1 + ndays - 1) % 7;
      for (std::uint64_t bits = dow_last; bits; bits &= bits - 1) {
        const int w = std::countr_zero(bits);
        dow_mask |= std::uint64_t{1} << (ndays - (wd_last - w + 7) % 7);
      }
    }
    for (int k = 0; k < 5; ++k) {
      for (std::uint64_t bits = dow_nth[k]; bits; bits &= bits - 1) {
        const int w = std::countr_zero(bits);
        const int day = 1 + (w - wd1 + 7) % 7 + 7 * k;
        if (day <= ndays) dow_mask |= std::uint64_t{1} << day;
      }
    }
    dow_mask &= valid;
  }

  // Vixie cron: when both day fields are restricted, either may match.
  if (dom_restricted && dow_restricted) return dom_mask | dow_mask;
  return dom_restricted ? dom_mask : dow_mask;
}

bool CronPattern::NextLocal(std::int64_t local, std::int64_t* out) const {
  Civil c = ToCivil(local);
  if (c.y < kMinYear) c = {kMinYear, 1, 1, 0, 0, 0};
  // Each step moves forward by at least one unit of some field; the bound is
  // far above the worst case (every month of the range, a few steps each).
  for (int guard = 0; guard < 100000; ++guard) {
    if (c.y > kMaxYear) return false;
    if (!YearAllowed(c.y)) {
      const int y = NextYear(*this, c.y);
      c = {y, 1, 1, 0, 0, 0};
      continue;
    }
    const int mo = NextBit(months, c.mo);
    if (mo < 0) {
      c = {c.y + 1, 1, 1, 0, 0, 0};
      continue;
    }
    if (mo != c.mo) c = {c.y, mo, 1, 0, 0, 0};
    const int d = NextBit(DayMask(c.y, c.mo), c.d);
    if (d < 0) {
      c = {c.y, c.mo + 1, 1, 0, 0, 0};
      continue;
    }
    if (d != c.d) c = {c.y, c.mo, d, 0, 0, 0};
    const int h = NextBit(hours, c.h);
    if (h < 0) {
      c = {c.y, c.mo, c.d + 1, 0, 0, 0};
      continue;
    }
    if (h != c.h) c = {c.y, c.mo, c.d, h, 0, 0};
    const int mi = NextBit(minutes, c.mi);
    if (mi < 0) {
      c = {c.y, c.mo, c.d, c.h + 1, 0, 0};
      continue;
    }
    if (mi != c.mi) c = {c.y, c.mo, c.d, c.h, mi, 0};
    const int s = NextBit(seconds, c.s);
    if (s < 0) {
      c = {c.y, c.mo, c.d, c.h, c.mi + 1, 0};
      continue;
    }
    c.s = s;
    *out = FromCivil(c);
    return true;
  }
  return false;
}

bool CronPattern::PrevLocal(std::int64_t local, std::int64_t* out) const {
  Civil c = ToCivil(local);
  if (c.y > kMaxYear) c = {kMaxYear, 12, 31, 23, 59, 59};
  for (int guard = 0; guard < 100000; ++guard) {
    if (c.y < kMinYear) return false;
    if (!YearAllowed(c.y)) {
      const int y = PrevYear(*this, c.y);
      c = {y, 12, 31, 23, 59, 59};
      continue;
    }
    const int mo = PrevBit(months, c.mo);
    if (mo < 1) {
      c = {c.y - 1, 12, 31, 23, 59, 59};
      continue;
    }
    if (mo != c.mo) c = {c.y, mo, 31, 23, 59, 59};
    const int d = PrevBit(DayMask(c.y, c.mo), c.d);
    if (d < 1) {
      c = {c.y, c.mo - 1, 31, 23, 59, 59};
      continue;
    }
    if (d != c.d) c = {c.y, c.mo, d, 23, 59, 59};
    const int h = PrevBit(hours, c.h);
    if (h < 0) {
      c = {c.y, c.mo, c.d - 1, 23, 59, 59};
      continue;
    }
    if (h != c.h) c = {c.y, c.mo, c.d, h, 59, 59};
    const int mi = PrevBit(minutes, c.mi);
    if (mi < 0) {
      c = {c.y, c.mo, c.d, c.h - 1, 59, 59};
      continue;
    }
    if (mi != c.mi) c = {c.y, c.mo, c.d, c.h, mi, 59};
    const int s = PrevBit(seconds, c.s);
    if (s < 0) {
      c = {c.y, c.mo, c.d, c.h, c.mi - 1, 59};
      continue;
    }
    c.s = s;
    *out = FromCivil(c);
    return true;
  }
  return false;
}

}  // namespace sked::cron_internal
