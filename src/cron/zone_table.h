// A zone's UTC offsets as a sorted table of periods, for fast lookups.

#ifndef SKED_CRON_ZONE_TABLE_H_
#define SKED_CRON_ZONE_TABLE_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sked/status.h"

namespace sked::cron_internal {

// Periods of constant UTC offset, each [begin, next begin). The first begins
// at kFarPast, the last ends at kFarFuture. Adjacent periods always differ in
// offset, so every period boundary is a real jump of the local clock.
// Immutable after Load(); safe for concurrent use.
class ZoneTable {
 public:
  static constexpr std::int64_t kFarPast = std::numeric_limits<std::int64_t>::min() / 4;
  static constexpr std::int64_t kFarFuture = std::numeric_limits<std::int64_t>::max() / 4;

  // Loads (once per process, then cached) the zone called `name`.
  static Result<std::shared_ptr<const ZoneTable>> Load(std::string_view name);

  // Index of the period containing `t` (UTC seconds).
  std::size_t Find(std::int64_t t) const {
    auto it = std::upper_bound(begins_.begin(), begins_.end(), t);
    return static_cast<std::size_t>(it - begins_.begin()) - 1;
  }
  std::size_t size() const { return begins_.size(); }
  std::int64_t Begin(std::size_t i) const { return begins_[i]; }
  std::int64_t End(std::size_t i) const {
    return i + 1 < begins_.size() ? begins_[i + 1] : kFarFuture;
  }
  std::int32_t Offset(std::size_t i) const { return offsets_[i]; }
  const std::string& Abbreviation(std::size_t i) const { return abbrevs_[i]; }
  const std::string& name() const { return name_; }

  // For tests: a table built from explicit periods (begin, offset, abbreviation).
  struct Period {
    std::int64_t begin;
    std::int32_t offset;
    std::string abbrev;
  };
  static std::shared_ptr<const ZoneTable> FromPeriods(std::string name,
                                                      std::vector<Period> periods);

 private:
  std::string name_;
  std::vector<std::int64_t> begins_;
  std::vector<std::int32_t> offsets_;
  std::vector<std::string> abbrevs_;
};

}  // namespace sked::cron_internal

#endif  // SKED_CRON_ZONE_TABLE_H_
