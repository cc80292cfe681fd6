#include "cron/posix_tz.h"

#include "cron/civil.h"

#include <algorithm>
#include <cctype>
#include <chrono>

namespace sked::cron_internal {
namespace {

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool done() const { return i_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  bool Number(int* out, int max) {
    if (!std::isdigit(static_cast<unsigned char>(peek()))) return false;
    int v = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      v = v * 10 + (s_[i_++] - '0');
      if (v > max) return false;
    }
    *out = v;
    return true;
  }
  // A zone abbreviation: 3+ letters, or "<...>" with letters, digits, + and -.
  bool Name(std::string* out) {
    if (eat('<')) {
      size_t start = i_;
      while (!done() && peek() != '>') ++i_;
      if (!eat('>')) return false;
      *out = std::string(s_.substr(start, i_ - 1 - start));
      return out->size() >= 3;
    }
    size_t start = i_;
    while (std::isalpha(static_cast<unsigned char>(peek()))) ++i_;
    *out = std::string(s_.substr(start, i_ - start));
    return out->size() >= 3;
  }
  // [+-]hh[:mm[:ss]] with hours up to `max_hours`.
  bool Time(std::int32_t* out, int max_hours) {
    int sign = 1;
    if (eat('-'))
      sign = -1;
    else
      eat('+');
    int h = 0, m = 0, sec = 0;
    if (!Number(&h, max_hours)) return false;
    if (eat(':')) {
      if (!Number(&m, 59)) return false;
      if (eat(':') && !Number(&sec, 59)) return false;
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }
  bool Rule(PosixTzRule* r) {
    if (eat('M')) {
      r->kind = PosixTzRule::Kind::kMonthWeekDay;
      if (!Number(&r->month, 12) || r->month < 1 || !eat('.') || !Number(&r->week, 5) ||
          r->week < 1 || !eat('.') || !Number(&r->weekday, 6)) {
        return false;
      }
    } else if (eat('J')) {
      r->kind = PosixTzRule::Kind::kJulian1;
      if (!Number(&r->day, 365) || r->day < 1) return false;
    } else {
      r->kind = PosixTzRule::Kind::kJulian0;
      if (!Number(&r->day, 365)) return false;
    }
    r->time = 7200;
    if (eat('/')) return Time(&r->time, 167);
    return true;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

// Days since the epoch of the day `rule` names in `year`.
std::int64_t RuleDay(const PosixTzRule& rule, int year) {
  const std::int64_t jan1 = DaysFromCivil(year, 1, 1);
  switch (rule.kind) {
    case PosixTzRule::Kind::kJulian1:
      return jan1 + rule.day - 1 + ((IsLeap(year) && rule.day >= 60) ? 1 : 0);
    case PosixTzRule::Kind::kJulian0:
      return jan1 + rule.day;
    case PosixTzRule::Kind::kMonthWeekDay: {
      const std::int64_t first = DaysFromCivil(year, rule.month, 1);
      const int last_day = DaysInMonth(year, rule.month);
      int day = 1 + (rule.weekday + 7 - WeekdayOf(first)) % 7 + 7 * (rule.week - 1);
      while (day > last_day) day -= 7;
      return first + day - 1;
    }
  }
  return jan1;
}

}  // namespace

Result<PosixTz> ParsePosixTz(std::string_view text) {
  PosixTz tz;
  Reader r(text);
  auto bad = [&] {
    return InvalidArgumentError("invalid POSIX TZ string '" + std::string(text) + "'");
  };
  std::int32_t west = 0;
  if (!r.Name(&tz.std_abbrev) || !r.Time(&west, 24)) return bad();
  tz.std_offset = -west;
  if (r.done()) return tz;
  if (!r.Name(&tz.dst_abbrev)) return bad();
  tz.has_dst = true;
  tz.dst_offset = tz.std_offset + 3600;
  if (r.peek() != ',' && !r.done()) {
    if (!r.Time(&west, 24)) return bad();
    tz.dst_offset = -west;
  }
  if (!r.eat(',') || !r.Rule(&tz.start) || !r.eat(',') || !r.Rule(&tz.end) || !r.done()) {
    return bad();
  }
  return tz;
}

std::vector<PosixTransition> PosixTransitionsInYear(const PosixTz& tz, int year) {
  std::vector<PosixTransition> out;
  if (!tz.has_dst) return out;
  // The start time is given in standard time, the end time in DST.
  out.push_back(
      {RuleDay(tz.start, year) * 86400 + tz.start.time - tz.std_offset, tz.dst_offset, true});
  out.push_back(
      {RuleDay(tz.end, year) * 86400 + tz.end.time - tz.dst_offset, tz.std_offset, false});
  std::sort(out.begin(), out.end(),
            [](const PosixTransition& a, const PosixTransition& b) { return a.at < b.at; });
  return out;
}

}  // namespace sked::cron_internal
