#include <date/tz.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "cron/posix_tz.h"
#include "cron/zone_table.h"
#include "sked/time_zone.h"

namespace sked {
namespace cron_internal {
namespace {

constexpr std::int64_t kTableStart = -2208988800;  // 1900-01-01T00:00:00Z
constexpr std::int64_t kTableEnd = 7289654400;     // 2201-01-01T00:00:00Z
constexpr int kLastYear = 2200;

bool IsUtcName(std::string_view name) {
  return name == "UTC" || name == "Etc/UTC" || name == "Z" || name == "Etc/Zulu" ||
         name == "Zulu" || name == "Etc/UCT" || name == "UCT" || name == "Universal" ||
         name == "Etc/Universal";
}

// The POSIX TZ footer of a TZif v2+ file: the text between its last two newlines.
std::string ReadTzifFooter(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.find("..") != std::string_view::npos) return "";
  std::ifstream in("/usr/share/zoneinfo/" + std::string(name), std::ios::binary);
  if (!in) return "";
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() < 6 || data.compare(0, 4, "TZif") != 0 || data[4] < '2' || data.back() != '\n') {
    return "";
  }
  const size_t start = data.rfind('\n', data.size() - 2);
  if (start == std::string::npos) return "";
  return data.substr(start + 1, data.size() - start - 2);
}

int YearOf(std::int64_t t) {
  return static_cast<int>(
      std::chrono::year_month_day(
          std::chrono::floor<std::chrono::days>(std::chrono::sys_seconds(std::chrono::seconds(t))))
          .year());
}

Result<std::shared_ptr<const ZoneTable>> Build(std::string_view name) {
  if (IsUtcName(name)) {
    return ZoneTable::FromPeriods(std::string(name), {{ZoneTable::kFarPast, 0, "UTC"}});
  }
  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(name);
  } catch (const std::exception&) {
    zone = nullptr;
  }
  if (zone == nullptr) {
    return InvalidArgumentError("unknown time zone '" + std::string(name) +
                                "' (expected an IANA name such as Europe/Berlin)");
  }
  std::vector<ZoneTable::Period> periods;
  std::int64_t last_begin = ZoneTable::kFarPast;
  try {
    std::int64_t t = kTableStart;
    while (t < kTableEnd) {
      const date::sys_info info = zone->get_info(date::sys_seconds(std::chrono::seconds(t)));
      const std::int64_t begin =
          periods.empty() ? ZoneTable::kFarPast : info.begin.time_since_epoch().count();
      periods.push_back({begin, static_cast<std::int32_t>(info.offset.count()), info.abbrev});
      last_begin = begin;
      const std::int64_t end = info.end.time_since_epoch().count();
      if (end <= t) break;  // defensive: never loop on a broken table
      t = end;
    }
  } catch (const std::exception& e) {
    return UnavailableError("time zone '" + std::string(name) + "': " + e.what());
  }
  // The database stops listing transitions after its last explicit one (2037
  // for zones with DST); continue with the zone's current rule from there.
  if (last_begin < kTableEnd) {
    Result<PosixTz> rule = ParsePosixTz(ReadTzifFooter(name));
    if (rule.ok() && rule->has_dst) {
      const int first_year = last_begin == ZoneTable::kFarPast ? 1900 : YearOf(last_begin);
      for (int y = first_year; y <= kLastYear; ++y) {
        for (const PosixTransition& tr : PosixTransitionsInYear(*rule, y)) {
          if (tr.at <= periods.back().begin) continue;
          periods.push_back({tr.at, tr.offset, tr.dst ? rule->dst_abbrev : rule->std_abbrev});
        }
      }
    }
  }
  return ZoneTable::FromPeriods(std::string(name), std::move(periods));
}

}  // namespace

std::shared_ptr<const ZoneTable> ZoneTable::FromPeriods(std::string name,
                                                        std::vector<Period> periods) {
  auto table = std::make_shared<ZoneTable>();
  table->name_ = std::move(name);
  for (Period& p : periods) {
    // Keep only real clock jumps: merge periods whose offsets are equal.
    if (!table->offsets_.empty() && table->offsets_.back() == p.offset) continue;
    if (table->begins_.empty()) p.begin = kFarPast;
    table->begins_.push_back(p.begin);
    table->offsets_.push_back(p.offset);
    table->abbrevs_.push_back(std::move(p.abbrev));
  }
  return table;
}

Result<std::shared_ptr<const ZoneTable>> ZoneTable::Load(std::string_view name) {
  static std::mutex mu;
  static auto* cache = new std::unordered_map<std::string, std::shared_ptr<const ZoneTable>>();
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache->find(std::string(name));
    if (it != cache->end()) return it->second;
  }
  // Built outside the lock: two threads may build the same zone once each.
  SKED_ASSIGN_OR_RETURN(std::shared_ptr<const ZoneTable> table, Build(name));
  std::lock_guard<std::mutex> lock(mu);
  return cache->emplace(std::string(name), std::move(table)).first->second;
}

}  // namespace cron_internal

using cron_internal::ZoneTable;

Result<TimeZone> TimeZone::Find(std::string_view name) {
  SKED_ASSIGN_OR_RETURN(auto table, ZoneTable::Load(name));
  return TimeZone(std::move(table));
}

TimeZone TimeZone::Utc() {
  static const TimeZone* utc = new TimeZone(ZoneTable::Load("UTC").value());
  return *utc;
}

const std::string& TimeZone::name() const { return table_->name(); }

std::chrono::seconds TimeZone::OffsetAt(Instant t) const {
  return std::chrono::seconds(table_->Offset(table_->Find(ToUnixSeconds(t))));
}

std::string TimeZone::AbbreviationAt(Instant t) const {
  return table_->Abbreviation(table_->Find(ToUnixSeconds(t)));
}

std::optional<TimeZone::Transition> TimeZone::NextTransition(Instant t) const {
  const std::size_t i = table_->Find(ToUnixSeconds(t));
  if (i + 1 >= table_->size()) return std::nullopt;
  return Transition{FromUnixSeconds(table_->Begin(i + 1)), std::chrono::seconds(table_->Offset(i)),
                    std::chrono::seconds(table_->Offset(i + 1)), table_->Abbreviation(i),
                    table_->Abbreviation(i + 1)};
}

std::string TimeZone::Format(Instant t, int fraction_digits) const {
  return FormatRfc3339(t, OffsetAt(t), fraction_digits);
}

}  // namespace sked
