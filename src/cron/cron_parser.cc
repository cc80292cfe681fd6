// Syntax of cron expressions. See docs/cron.md for the grammar.

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "cron/cron_pattern.h"

namespace sked::cron_internal {
namespace {

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDayNames = {"SUN", "MON", "TUE", "WED",
                                                       "THU", "FRI", "SAT"};

struct FieldSpec {
  FieldId id;
  int min;
  int max;
};

constexpr std::array<FieldSpec, kFieldCount> kSpecs = {{
    {FieldId::kSecond, 0, 59},
    {FieldId::kMinute, 0, 59},
    {FieldId::kHour, 0, 23},
    {FieldId::kDayOfMonth, 1, 31},
    {FieldId::kMonth, 1, 12},
    {FieldId::kDayOfWeek, 0, 7},
    {FieldId::kYear, kMinYear, kMaxYear},
}};

struct Macro {
  std::string_view name;
  std::string_view expansion;
};
constexpr std::array<Macro, 7> kMacros = {{
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
}};

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

bool AllAlpha(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalpha(static_cast<unsigned char>(c));
  });
}

// Parses one field's text into `field` and the pattern's bit sets.
class FieldParser {
 public:
  FieldParser(const FieldSpec& spec, CronPattern* pattern) : spec_(spec), pattern_(pattern) {}

  Status Parse(std::string_view text, int column) {
    CronField& field = pattern_->fields[static_cast<int>(spec_.id)];
    field.restricted = !(text == "*" || text == "?");
    size_t start = 0;
    while (true) {
      const size_t comma = text.find(',', start);
      const std::string_view part = text.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      const int part_column = column + static_cast<int>(start);
      if (part.empty()) return Error("empty list element", part_column);
      SKED_RETURN_IF_ERROR(ParseItem(part, part_column, &field));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (field.items.size() > 1) {
      for (const CronItem& item : field.items) {
        if (item.kind == CronItem::Kind::kAll && item.question) {
          return Error("'?' cannot be part of a list", column);
        }
      }
    }
    return Status::Ok();
  }

 private:
  std::string Where(int column) const { return " at column " + std::to_string(column); }

  Status Error(std::string_view what, int column) const {
    return InvalidArgumentError("field '" + std::string(FieldName(spec_.id)) +
                                "': " + std::string(what) + Where(column));
  }

  Status OutOfRange(std::string_view noun, std::string_view value, int lo, int hi,
                    int column) const {
    return Error(std::string(noun) + " " + std::string(value) + " out of range " +
                     std::to_string(lo) + "-" + std::to_string(hi),
                 column);
  }

  bool IsDayOfMonth() const { return spec_.id == FieldId::kDayOfMonth; }
  bool IsDayOfWeek() const { return spec_.id == FieldId::kDayOfWeek; }

  // A number or (month and day-of-week fields) a three-letter name.
  Status ParseValue(std::string_view token, int column, int* out) const {
    if (token.empty()) return Error("missing value", column);
    if (AllDigits(token)) {
      if (token.size() > 6) return OutOfRange("value", token, spec_.min, spec_.max, column);
      const int v = std::stoi(std::string(token));
      if (v < spec_.min || v > spec_.max) {
        return OutOfRange("value", token, spec_.min, spec_.max, column);
      }
      *out = v;
      return Status::Ok();
    }
    if (AllAlpha(token)) {
      const std::string name = Upper(token);
      if (spec_.id == FieldId::kMonth) {
        for (size_t i = 0; i < kMonthNames.size(); ++i) {
          if (name == kMonthNames[i]) {
            *out = static_cast<int>(i) + 1;
            return Status::Ok();
          }
        }
        return Error("unknown month name '" + std::string(token) + "' (use JAN-DEC)", column);
      }
      if (IsDayOfWeek()) {
        for (size_t i = 0; i < kDayNames.size(); ++i) {
          if (name == kDayNames[i]) {
            *out = static_cast<int>(i);
            return Status::Ok();
          }
        }
        return Error("unknown day name '" + std::string(token) + "' (use SUN-SAT)", column);
      }
      if (name == "L" || name == "W" || name == "LW") {
        return Error("'" + std::string(token) + "' is only allowed in day-of-month", column);
      }
      return Error("names are not allowed here: '" + std::string(token) + "'", column);
    }
    for (size_t i = 0; i < token.size(); ++i) {
      const char c = token[i];
      if (!std::isalnum(static_cast<unsigned char>(c))) {
        if (c == '?') {
          return Error("'?' is only allowed alone in day-of-month or day-of-week",
                       column + static_cast<int>(i));
        }
        if (c == '#') {
          return Error("'#' is only allowed in day-of-week", column + static_cast<int>(i));
        }
        return Error("unexpected character '" + std::string(1, c) + "'",
                     column + static_cast<int>(i));
      }
    }
    return Error("invalid value '" + std::string(token) + "'", column);
  }

  Status ParseStep(std::string_view token, int column, int* out) const {
    const int max_step = spec_.max - spec_.min;
    if (!AllDigits(token)) {
      if (token.empty()) return Error("missing step after '/'", column);
      return Error("invalid step '" + std::string(token) + "'", column);
    }
    if (token.size() > 6 || std::stoi(std::string(token)) < 1 ||
        std::stoi(std::string(token)) > max_step) {
      return OutOfRange("step", token, 1, max_step, column);
    }
    *out = std::stoi(std::string(token));
    return Status::Ok();
  }

  Status ParseItem(std::string_view s, int column, CronField* field) {
    CronItem item;
    const std::string up = Upper(s);

    if (s == "*" || s == "?") {
      if (s == "?" && !IsDayOfMonth() && !IsDayOfWeek()) {
        return Error("'?' is only allowed in day-of-month and day-of-week", column);
      }
      item.kind = CronItem::Kind::kAll;
      item.question = s == "?";
      return Add(item, field);
    }
    if (IsDayOfMonth() && !up.empty() && up[0] == 'L') return ParseLast(s, up, column, field);
    if (IsDayOfMonth() && up.size() > 1 && up.back() == 'W') {
      const std::string_view day = s.substr(0, s.size() - 1);
      if (!AllDigits(day)) {
        return Error("'W' needs a single day of the month before it (e.g. 15W), got '" +
                         std::string(s) + "'",
                     column);
      }
      item.kind = CronItem::Kind::kNearestWeekday;
      SKED_RETURN_IF_ERROR(ParseValue(day, column, &item.value));
      return Add(item, field);
    }
    if (IsDayOfWeek()) {
      const size_t hash = s.find('#');
      if (hash != std::string_view::npos) {
        item.kind = CronItem::Kind::kNthWeekday;
        SKED_RETURN_IF_ERROR(ParseValue(s.substr(0, hash), column, &item.value));
        const std::string_view nth = s.substr(hash + 1);
        const int nth_column = column + static_cast<int>(hash) + 1;
        if (!AllDigits(nth)) {
          return Error("'#' needs an occurrence 1-5 after it (e.g. MON#2)", nth_column);
        }
        if (nth.size() > 2 || std::stoi(std::string(nth)) < 1 || std::stoi(std::string(nth)) > 5) {
          return OutOfRange("occurrence", nth, 1, 5, nth_column);
        }
        item.nth = std::stoi(std::string(nth));
        item.value %= 7;
        return Add(item, field);
      }
      if (up.size() > 1 && up.back() == 'L') {
        item.kind = CronItem::Kind::kLastOfWeekday;
        const std::string_view day = s.substr(0, s.size() - 1);
        if (day.find_first_of("-/,*") != std::string_view::npos) {
          return Error("'L' needs a single weekday before it (e.g. 5L or FRIL), got '" +
                           std::string(s) + "'",
                       column);
        }
        SKED_RETURN_IF_ERROR(ParseValue(day, column, &item.value));
        item.value %= 7;
        return Add(item, field);
      }
      if (up == "L") {
        return Error(
            "'L' alone is not allowed in day-of-week; write 6L for the last "
            "Saturday, or use L in day-of-month",
            column);
      }
    }

    // [base][/step] where base is '*', a value, or a range a-b.
    const size_t slash = s.find('/');
    const std::string_view base = s.substr(0, slash);
    int step = 1;
    bool has_step = slash != std::string_view::npos;
    if (has_step) {
      SKED_RETURN_IF_ERROR(
          ParseStep(s.substr(slash + 1), column + static_cast<int>(slash) + 1, &step));
    }
    if (base == "*") {
      item.kind = CronItem::Kind::kAll;
      item.step = step;
      return Add(item, field);
    }
    const size_t dash = base.find('-', 1);
    if (dash == std::string_view::npos) {
      SKED_RETURN_IF_ERROR(ParseValue(base, column, &item.value));
      if (!has_step) {
        item.kind = CronItem::Kind::kValue;
        return Add(item, field);
      }
      item.kind = CronItem::Kind::kRange;
      item.end = IsDayOfWeek() ? 6 : spec_.max;
      item.open_end = true;
      item.step = step;
      return Add(item, field);
    }
    item.kind = CronItem::Kind::kRange;
    item.step = step;
    SKED_RETURN_IF_ERROR(ParseValue(base.substr(0, dash), column, &item.value));
    SKED_RETURN_IF_ERROR(
        ParseValue(base.substr(dash + 1), column + static_cast<int>(dash) + 1, &item.end));
    if (item.value > item.end) {
      return Error("range " + std::string(base) + " is reversed (start after end)", column);
    }
    return Add(item, field);
  }

  // L, L-n, LW in day-of-month.
  Status ParseLast(std::string_view s, const std::string& up, int column, CronField* field) {
    CronItem item;
    if (up == "L") {
      item.kind = CronItem::Kind::kLastDay;
      return Add(item, field);
    }
    if (up == "LW") {
      item.kind = CronItem::Kind::kLastWeekday;
      return Add(item, field);
    }
    if (up.size() > 2 && up[1] == '-') {
      const std::string_view offset = s.substr(2);
      if (!AllDigits(offset)) {
        return Error("'L-' needs a number of days before the last (e.g. L-3)", column + 2);
      }
      if (offset.size() > 2 || std::stoi(std::string(offset)) > 30) {
        return OutOfRange("offset", offset, 0, 30, column + 2);
      }
      item.kind = CronItem::Kind::kLastDay;
      item.value = std::stoi(std::string(offset));
      return Add(item, field);
    }
    return Error("invalid value '" + std::string(s) + "' (expected L, L-n or LW)", column);
  }

  // Records `item` in the field's list and sets its bits in the pattern.
  Status Add(const CronItem& item, CronField* field) {
    field->items.push_back(item);
    CronPattern& p = *pattern_;
    auto set_range = [&](int from, int to, int step) {
      for (int v = from; v <= to; v += step) SetBit(v);
    };
    switch (item.kind) {
      case CronItem::Kind::kAll:
        set_range(spec_.min, IsDayOfWeek() ? 6 : spec_.max, item.step);
        break;
      case CronItem::Kind::kValue:
        SetBit(item.value);
        break;
      case CronItem::Kind::kRange:
        set_range(item.value, item.end, item.step);
        break;
      case CronItem::Kind::kLastDay:
        p.dom_last_offsets |= std::uint64_t{1} << item.value;
        break;
      case CronItem::Kind::kLastWeekday:
        p.dom_last_weekday = true;
        break;
      case CronItem::Kind::kNearestWeekday:
        p.dom_nearest_weekday |= std::uint64_t{1} << item.value;
        break;
      case CronItem::Kind::kLastOfWeekday:
        p.dow_last |= std::uint64_t{1} << item.value;
        break;
      case CronItem::Kind::kNthWeekday:
        p.dow_nth[item.nth - 1] |= std::uint64_t{1} << item.value;
        break;
    }
    return Status::Ok();
  }

  void SetBit(int v) {
    CronPattern& p = *pattern_;
    const std::uint64_t bit = v < 64 ? std::uint64_t{1} << v : 0;
    switch (spec_.id) {
      case FieldId::kSecond:
        p.seconds |= bit;
        break;
      case FieldId::kMinute:
        p.minutes |= bit;
        break;
      case FieldId::kHour:
        p.hours |= bit;
        break;
      case FieldId::kDayOfMonth:
        p.dom |= bit;
        break;
      case FieldId::kMonth:
        p.months |= bit;
        break;
      case FieldId::kDayOfWeek:
        p.dow |= std::uint64_t{1} << (v % 7);
        break;
      case FieldId::kYear: {
        const int b = v - kMinYear;
        p.years[b / 64] |= std::uint64_t{1} << (b % 64);
        break;
      }
    }
  }

  const FieldSpec& spec_;
  CronPattern* pattern_;
};

struct Token {
  std::string_view text;
  int column;  // 1-based
};

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

Status FinishPattern(CronPattern* p) {
  const auto& f = p->fields;
  p->dom_restricted = f[static_cast<int>(FieldId::kDayOfMonth)].restricted;
  p->dow_restricted = f[static_cast<int>(FieldId::kDayOfWeek)].restricted;
  for (int first = 0; first < 7; ++first) {
    std::uint64_t mask = 0;
    for (int day = 1; day <= 31; ++day) {
      if ((p->dow >> ((first + day - 1) % 7)) & 1) mask |= std::uint64_t{1} << day;
    }
    p->week_masks[first] = mask;
  }
  p->interval_like = false;
  for (FieldId id : {FieldId::kSecond, FieldId::kMinute, FieldId::kHour}) {
    for (const CronItem& item : f[static_cast<int>(id)].items) {
      if (item.kind == CronItem::Kind::kAll || item.kind == CronItem::Kind::kRange) {
        p->interval_like = true;
      }
    }
  }
  return Status::Ok();
}

}  // namespace

std::string_view FieldName(FieldId id) {
  switch (id) {
    case FieldId::kSecond:
      return "second";
    case FieldId::kMinute:
      return "minute";
    case FieldId::kHour:
      return "hour";
    case FieldId::kDayOfMonth:
      return "day-of-month";
    case FieldId::kMonth:
      return "month";
    case FieldId::kDayOfWeek:
      return "day-of-week";
    case FieldId::kYear:
      return "year";
  }
  return "?";
}

Result<std::shared_ptr<CronPattern>> ParseCronPattern(std::string_view expression) {
  std::vector<Token> tokens;
  for (size_t i = 0; i < expression.size();) {
    if (IsSpace(expression[i])) {
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < expression.size() && !IsSpace(expression[i])) ++i;
    tokens.push_back({expression.substr(start, i - start), static_cast<int>(start) + 1});
  }
  if (tokens.empty()) return InvalidArgumentError("empty cron expression");
  for (const Token& t : tokens) {
    for (size_t i = 0; i < t.text.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(t.text[i]);
      if (c < 0x20 || c >= 0x7f) {
        return InvalidArgumentError("unexpected character at column " +
                                    std::to_string(t.column + static_cast<int>(i)));
      }
    }
  }

  if (tokens[0].text[0] == '@') {
    std::string name(tokens[0].text);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "@reboot") {
      return InvalidArgumentError(
          "'@reboot' is not supported: sked fires on a schedule, not at system start");
    }
    for (const Macro& m : kMacros) {
      if (name == m.name) {
        if (tokens.size() > 1) {
          return InvalidArgumentError("unexpected text after " + std::string(tokens[0].text) +
                                      " at column " + std::to_string(tokens[1].column));
        }
        auto pattern = ParseCronPattern(m.expansion);
        if (pattern.ok()) (*pattern)->from_macro = true;
        return pattern;
      }
    }
    return InvalidArgumentError("unknown macro '" + std::string(tokens[0].text) + "' at column " +
                                std::to_string(tokens[0].column) +
                                " (expected @yearly, @annually, @monthly, @weekly, @daily, "
                                "@midnight or @hourly)");
  }

  if (tokens.size() < 5 || tokens.size() > 7) {
    return InvalidArgumentError(
        "expected 5 fields (minute hour day-of-month month day-of-week), 6 with seconds "
        "first, or 7 with a year last; got " +
        std::to_string(tokens.size()));
  }
  auto pattern = std::make_shared<CronPattern>();
  pattern->has_seconds_field = tokens.size() >= 6;
  pattern->has_year_field = tokens.size() == 7;
  size_t next = 0;
  for (const FieldSpec& spec : kSpecs) {
    std::string_view text;
    int column = 0;
    if (spec.id == FieldId::kSecond && !pattern->has_seconds_field) {
      text = "0";
    } else if (spec.id == FieldId::kYear && !pattern->has_year_field) {
      text = "*";
    } else {
      text = tokens[next].text;
      column = tokens[next].column;
      ++next;
    }
    FieldParser parser(spec, pattern.get());
    SKED_RETURN_IF_ERROR(parser.Parse(text, column));
  }
  // A 5-field expression's implicit seconds and a missing year are not
  // "restricted" in any sense users see.
  pattern->all_years = !pattern->fields[static_cast<int>(FieldId::kYear)].restricted;
  SKED_RETURN_IF_ERROR(FinishPattern(pattern.get()));
  return pattern;
}

}  // namespace sked::cron_internal
