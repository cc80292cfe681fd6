// Plain-English descriptions of cron schedules, for `sked cron explain` and
// the dashboard: "at 09:30 on Monday through Friday".

#include <cstdio>
#include <string>
#include <vector>

#include "cron/cron_pattern.h"
#include "sked/cron.h"

namespace sked {
namespace {

using cron_internal::CronField;
using cron_internal::CronItem;
using cron_internal::CronPattern;
using cron_internal::FieldId;

constexpr const char* kMonths[13] = {"",        "January",  "February", "March",  "April",
                                     "May",     "June",     "July",     "August", "September",
                                     "October", "November", "December"};
constexpr const char* kDays[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                  "Thursday", "Friday", "Saturday"};
constexpr const char* kOrdinals[6] = {"", "first", "second", "third", "fourth", "fifth"};

std::string JoinAnd(const std::vector<std::string>& parts, const char* last_sep = " and ") {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += i + 1 == parts.size() ? last_sep : ", ";
    out += parts[i];
  }
  return out;
}

std::string TwoDigits(int v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d", v);
  return buf;
}

std::string Clock(int h, int m, int s, bool with_seconds) {
  std::string out = TwoDigits(h) + ":" + TwoDigits(m);
  if (with_seconds) out += ":" + TwoDigits(s);
  return out;
}

std::string Ordinal(int n) {
  const int mod100 = n % 100;
  const char* suffix = "th";
  if (mod100 < 11 || mod100 > 13) {
    if (n % 10 == 1)
      suffix = "st";
    else if (n % 10 == 2)
      suffix = "nd";
    else if (n % 10 == 3)
      suffix = "rd";
  }
  return std::to_string(n) + suffix;
}

const CronField& Field(const CronPattern& p, FieldId id) { return p.fields[static_cast<int>(id)]; }

bool AllValues(const CronField& f) {
  for (const CronItem& item : f.items) {
    if (item.kind != CronItem::Kind::kValue) return false;
  }
  return true;
}

std::vector<int> Bits(std::uint64_t bits, int from, int to) {
  std::vector<int> out;
  for (int i = from; i <= to; ++i) {
    if ((bits >> i) & 1) out.push_back(i);
  }
  return out;
}

// A value of a field as words: month and weekday names, numbers otherwise.
std::string ValueName(FieldId id, int v) {
  if (id == FieldId::kMonth) return kMonths[v];
  if (id == FieldId::kDayOfWeek) return kDays[v % 7];
  return std::to_string(v);
}

// "5", "1 through 5", "every 15 minutes", "every 2 hours from 9 through 17".
std::string ItemPhrase(FieldId id, const CronItem& item, const char* unit, const char* units) {
  switch (item.kind) {
    case CronItem::Kind::kAll:
      if (item.step == 1) return std::string("every ") + unit;
      return "every " + std::to_string(item.step) + " " + units;
    case CronItem::Kind::kValue:
      return ValueName(id, item.value);
    case CronItem::Kind::kRange: {
      std::string range = ValueName(id, item.value) + " through " + ValueName(id, item.end);
      if (item.step == 1) return range;
      return "every " + std::to_string(item.step) + " " + units + " from " + range;
    }
    case CronItem::Kind::kLastDay:
      if (item.value == 0) return "the last day of the month";
      return std::to_string(item.value) + (item.value == 1 ? " day" : " days") +
             " before the last day of the month";
    case CronItem::Kind::kLastWeekday:
      return "the last weekday of the month";
    case CronItem::Kind::kNearestWeekday:
      return "the weekday nearest day " + std::to_string(item.value) + " of the month";
    case CronItem::Kind::kLastOfWeekday:
      return std::string("the last ") + kDays[item.value] + " of the month";
    case CronItem::Kind::kNthWeekday:
      return std::string("the ") + kOrdinals[item.nth] + " " + kDays[item.value] + " of the month";
  }
  return "";
}

// A time field (second, minute or hour) that is not a plain value list.
std::string TimeFieldPhrase(FieldId id, const CronField& f) {
  const char* unit = id == FieldId::kSecond ? "second" : id == FieldId::kMinute ? "minute" : "hour";
  const char* units = id == FieldId::kSecond   ? "seconds"
                      : id == FieldId::kMinute ? "minutes"
                                               : "hours";
  const char* of = id == FieldId::kHour     ? ""
                   : id == FieldId::kMinute ? " past the hour"
                                            : " past the minute";
  std::vector<std::string> values, others;
  for (const CronItem& item : f.items) {
    if (item.kind == CronItem::Kind::kValue) {
      values.push_back(std::to_string(item.value));
    } else if (item.kind == CronItem::Kind::kRange && item.step == 1) {
      others.push_back(std::string(units) + " " + ItemPhrase(id, item, unit, units) + of);
    } else {
      others.push_back(ItemPhrase(id, item, unit, units) + (item.kind == CronItem::Kind::kRange
                                                                ? std::string(" ") + of
                                                                : std::string()));
    }
  }
  if (!values.empty()) {
    std::string v =
        std::string("at ") + (values.size() == 1 ? unit : units) + " " + JoinAnd(values);
    if (id != FieldId::kHour) v += of;
    others.insert(others.begin(), v);
  }
  for (std::string& o : others) {
    while (o.find("  ") != std::string::npos) o.erase(o.find("  "), 1);
    if (!o.empty() && o.back() == ' ') o.pop_back();
  }
  return JoinAnd(others);
}

std::string TimePhrase(const CronPattern& p) {
  const CronField& sf = Field(p, FieldId::kSecond);
  const CronField& mf = Field(p, FieldId::kMinute);
  const CronField& hf = Field(p, FieldId::kHour);
  const std::vector<int> s = Bits(p.seconds, 0, 59), m = Bits(p.minutes, 0, 59),
                         h = Bits(p.hours, 0, 23);
  const bool with_seconds = !(s.size() == 1 && s[0] == 0);
  if (AllValues(sf) && AllValues(mf) && AllValues(hf) && s.size() * m.size() * h.size() <= 6) {
    std::vector<std::string> times;
    for (int hh : h)
      for (int mm : m)
        for (int ss : s) times.push_back(Clock(hh, mm, ss, with_seconds));
    return "at " + JoinAnd(times);
  }
  std::vector<std::string> parts;
  if (with_seconds) parts.push_back(TimeFieldPhrase(FieldId::kSecond, sf));
  const bool every_minute =
      mf.items.size() == 1 && mf.items[0].kind == CronItem::Kind::kAll && mf.items[0].step == 1;
  if (!(every_minute && with_seconds)) parts.push_back(TimeFieldPhrase(FieldId::kMinute, mf));
  if (hf.restricted) {
    if (hf.items.size() == 1 && hf.items[0].kind == CronItem::Kind::kRange &&
        hf.items[0].step == 1) {
      parts.push_back("between " + Clock(hf.items[0].value, 0, 0, false) + " and " +
                      Clock(hf.items[0].end, 59, 0, false));
    } else if (AllValues(hf)) {
      std::vector<std::string> hours;
      hours.reserve(h.size());
      for (int hh : h) hours.push_back(std::to_string(hh));
      parts.push_back(std::string("during hour") + (hours.size() > 1 ? "s " : " ") +
                      JoinAnd(hours));
    } else {
      parts.push_back(TimeFieldPhrase(FieldId::kHour, hf));
    }
  }
  return JoinAnd(parts, ", ");
}

std::string DayOfMonthPhrase(const CronField& f) {
  std::vector<std::string> days, specials;
  for (const CronItem& item : f.items) {
    if (item.kind == CronItem::Kind::kValue || item.kind == CronItem::Kind::kRange ||
        item.kind == CronItem::Kind::kAll) {
      days.push_back(ItemPhrase(FieldId::kDayOfMonth, item, "day", "days"));
    } else {
      specials.push_back(ItemPhrase(FieldId::kDayOfMonth, item, "day", "days"));
    }
  }
  if (!days.empty()) {
    specials.insert(
        specials.begin(),
        (days.size() == 1 && f.items[0].kind == CronItem::Kind::kValue ? "day " : "days ") +
            JoinAnd(days) + " of the month");
  }
  return "on " + JoinAnd(specials, " or ");
}

std::string DayOfWeekPhrase(const CronField& f) {
  std::vector<std::string> parts;
  for (const CronItem& item : f.items) {
    if (item.kind == CronItem::Kind::kAll) {
      parts.push_back("every " + (item.step == 1 ? std::string("day")
                                                 : Ordinal(item.step) + " day of the week"));
    } else {
      parts.push_back(ItemPhrase(FieldId::kDayOfWeek, item, "day", "days"));
    }
  }
  return "on " + JoinAnd(parts);
}

std::string ListPhrase(FieldId id, const CronField& f, std::uint64_t bits, int lo, int hi) {
  std::vector<std::string> parts;
  bool simple = true;
  for (const CronItem& item : f.items) {
    if (item.kind == CronItem::Kind::kRange && item.step == 1) {
      parts.push_back(ValueName(id, item.value) + " through " + ValueName(id, item.end));
    } else if (item.kind == CronItem::Kind::kValue) {
      parts.push_back(ValueName(id, item.value));
    } else {
      simple = false;
    }
  }
  if (!simple) {
    parts.clear();
    for (int v : Bits(bits, lo, hi)) parts.push_back(ValueName(id, v));
  }
  return JoinAnd(parts);
}

std::string YearList(const CronPattern& p) {
  std::vector<std::string> parts;
  for (const CronItem& item : Field(p, FieldId::kYear).items) {
    parts.push_back(ItemPhrase(FieldId::kYear, item, "year", "years"));
  }
  return JoinAnd(parts);
}

}  // namespace

std::string CronSchedule::Describe() const {
  const CronPattern& p = *pattern_;
  std::string out = TimePhrase(p);
  const CronField& dom = Field(p, FieldId::kDayOfMonth);
  const CronField& dow = Field(p, FieldId::kDayOfWeek);
  if (dom.restricted && dow.restricted) {
    out += " " + DayOfMonthPhrase(dom) + " or " + DayOfWeekPhrase(dow);
  } else if (dom.restricted) {
    out += " " + DayOfMonthPhrase(dom);
  } else if (dow.restricted) {
    out += " " + DayOfWeekPhrase(dow);
  }
  if (Field(p, FieldId::kMonth).restricted) {
    out += " in " + ListPhrase(FieldId::kMonth, Field(p, FieldId::kMonth), p.months, 1, 12);
  }
  if (Field(p, FieldId::kYear).restricted) out += " in " + YearList(p);
  return out;
}

std::vector<std::string> DstNotes(const TimeZone& zone, const CronSchedule* schedule, Instant prev,
                                  Instant t) {
  std::vector<std::string> notes;
  const std::optional<TimeZone::Transition> tr = zone.NextTransition(prev);
  if (tr && tr->at <= t) {
    const bool forward = tr->offset_after > tr->offset_before;
    const std::string before = FormatRfc3339(tr->at, tr->offset_before).substr(11, 5);
    const std::string after = FormatRfc3339(tr->at, tr->offset_after).substr(11, 5);
    notes.push_back(std::string("DST: clocks ") + (forward ? "jumped forward" : "fell back") +
                    " from " + before + " to " + after + " (" + FormatUtcOffset(tr->offset_before) +
                    " -> " + FormatUtcOffset(tr->offset_after) + ") before this fire");
    if (forward && schedule != nullptr && t == tr->at && !schedule->MatchesAt(t)) {
      notes.emplace_back(
          "its local time was skipped by the jump, so it fires at the first instant "
          "after the gap");
    }
    if (!forward && t >= tr->at && t < tr->at + (tr->offset_before - tr->offset_after)) {
      notes.emplace_back(
          "second pass of a repeated local time (interval-like schedules fire on "
          "both passes)");
    }
  }
  return notes;
}

}  // namespace sked
