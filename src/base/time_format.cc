#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "sked/time.h"

namespace sked {
namespace {

using std::chrono::days;
using std::chrono::floor;
using std::chrono::microseconds;
using std::chrono::seconds;

std::string Quote(std::string_view text) {
  std::string out = "'";
  out += text;
  out += "'";
  return out;
}

// Reads exactly `width` digits at `pos`; false if any is not a digit.
bool ReadDigits(std::string_view s, size_t pos, size_t width, int* out) {
  if (pos + width > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

Result<Duration> ParseDuration(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("invalid duration " + Quote(text) + ": " + std::string(why) +
                                " (write e.g. 90s, 1h30m, 250ms)");
  };
  if (text.empty()) return bad("empty");
  if (text == "0") return Duration(0);
  std::int64_t total_us = 0;
  size_t i = 0;
  constexpr std::int64_t kMaxUs = std::int64_t{100} * 365 * 86400 * 1000000;  // 100 years
  while (i < text.size()) {
    size_t start = i;
    std::int64_t whole = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      whole = whole * 10 + (text[i] - '0');
      if (whole > kMaxUs) return bad("too large");
      ++i;
    }
    std::int64_t frac_num = 0, frac_den = 1;
    if (i < text.size() && text[i] == '.') {
      ++i;
      size_t fstart = i;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        if (frac_den < 1000000000) {
          frac_num = frac_num * 10 + (text[i] - '0');
          frac_den *= 10;
        }
        ++i;
      }
      if (i == fstart) return bad("expected digits after '.'");
    }
    if (i == start) {
      return bad(i < text.size() ? "expected a number at '" + std::string(1, text[i]) + "'"
                                 : "expected a number");
    }
    size_t ustart = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(ustart, i - ustart);
    std::int64_t unit_us;
    if (unit == "us")
      unit_us = 1;
    else if (unit == "ms")
      unit_us = 1000;
    else if (unit == "s")
      unit_us = 1000000;
    else if (unit == "m")
      unit_us = 60LL * 1000000;
    else if (unit == "h")
      unit_us = 3600LL * 1000000;
    else if (unit == "d")
      unit_us = 86400LL * 1000000;
    else if (unit.empty())
      return bad("missing unit (us, ms, s, m, h or d)");
    else
      return bad("unknown unit " + Quote(unit) + " (use us, ms, s, m, h or d)");
    if (whole > kMaxUs / unit_us) return bad("too large");
    // frac_num < frac_den <= 1e9 and unit_us < 1e11: split the product so
    // nothing overflows (frac_num * unit_us alone could).
    const std::int64_t frac_us =
        frac_num * (unit_us / frac_den) + frac_num * (unit_us % frac_den) / frac_den;
    total_us += whole * unit_us + frac_us;
    if (total_us > kMaxUs) return bad("too large");
  }
  return Duration(total_us);
}

std::string FormatDuration(Duration d) {
  std::int64_t us = d.count();
  std::string out;
  if (us < 0) {
    out = "-";
    us = -us;
  }
  if (us == 0) return "0s";
  if (us % 1000000 != 0) {
    if (us % 1000 == 0) return out + std::to_string(us / 1000) + "ms";
    return out + std::to_string(us) + "us";
  }
  std::int64_t s = us / 1000000;
  const std::int64_t d_ = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
  if (d_) out += std::to_string(d_) + "d";
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (sec) out += std::to_string(sec) + "s";
  return out;
}

Result<Instant> ParseRfc3339(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("invalid timestamp " + Quote(text) + ": " + std::string(why) +
                                " (expected RFC 3339, e.g. 2026-03-08T03:00:00-04:00)");
  };
  int y, mo, d, h, mi, s;
  if (!ReadDigits(text, 0, 4, &y) || text.size() < 19 || text[4] != '-' ||
      !ReadDigits(text, 5, 2, &mo) || text[7] != '-' || !ReadDigits(text, 8, 2, &d) ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !ReadDigits(text, 11, 2, &h) ||
      text[13] != ':' || !ReadDigits(text, 14, 2, &mi) || text[16] != ':' ||
      !ReadDigits(text, 17, 2, &s)) {
    return bad("malformed");
  }
  const std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(mo),
                                        std::chrono::day(d)};
  if (!ymd.ok()) return bad("no such date");
  if (h > 23 || mi > 59 || s > 59) return bad("time of day out of range");
  size_t i = 19;
  std::int64_t frac_us = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t start = i;
    std::int64_t scale = 100000;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      frac_us += (text[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return bad("expected digits after '.'");
  }
  std::int64_t offset_s = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    int oh, om;
    if (!ReadDigits(text, i + 1, 2, &oh) || i + 3 >= text.size() || text[i + 3] != ':' ||
        !ReadDigits(text, i + 4, 2, &om) || oh > 23 || om > 59) {
      return bad("malformed offset");
    }
    offset_s = (std::int64_t{oh} * 3600 + std::int64_t{om} * 60) * (text[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return bad("missing offset (add Z or +hh:mm)");
  }
  if (i != text.size()) return bad("unexpected text after the offset");
  const std::int64_t local_s =
      std::chrono::sys_days(ymd).time_since_epoch().count() * std::int64_t{86400} +
      std::int64_t{h} * 3600 + std::int64_t{mi} * 60 + s;
  return Instant(microseconds((local_s - offset_s) * 1000000 + frac_us));
}

std::string FormatUtcOffset(seconds offset) {
  std::int64_t o = offset.count();
  char sign = o < 0 ? '-' : '+';
  if (o < 0) o = -o;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", sign, static_cast<int>(o / 3600),
                static_cast<int>(o / 60 % 60));
  return buf;
}

namespace {

std::string FormatLocal(Instant local, int fraction_digits) {
  const auto day = floor<days>(local);
  const std::chrono::year_month_day ymd{day};
  const std::int64_t us_of_day = (local - day).count();
  const std::int64_t sod = us_of_day / 1000000;
  char buf[48];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d",
                        static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                        static_cast<unsigned>(ymd.day()), static_cast<int>(sod / 3600),
                        static_cast<int>(sod / 60 % 60), static_cast<int>(sod % 60));
  std::string out(buf, n);
  if (fraction_digits == 3) {
    std::snprintf(buf, sizeof buf, ".%03d", static_cast<int>(us_of_day % 1000000 / 1000));
    out += buf;
  } else if (fraction_digits == 6) {
    std::snprintf(buf, sizeof buf, ".%06d", static_cast<int>(us_of_day % 1000000));
    out += buf;
  }
  return out;
}

}  // namespace

std::string FormatRfc3339Utc(Instant t, int fraction_digits) {
  return FormatLocal(t, fraction_digits) + "Z";
}

std::string FormatRfc3339(Instant t, seconds offset, int fraction_digits) {
  return FormatLocal(t + offset, fraction_digits) + FormatUtcOffset(offset);
}

}  // namespace sked
