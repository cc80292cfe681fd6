// libFuzzer target: the cron parser and evaluator must never crash, hang, or
// break their invariants on any input. Built with -DSKED_FUZZ=ON (clang).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sked/cron.h"
#include "sked/time.h"

namespace {

constexpr const char* kZones[] = {
    "UTC",           "America/New_York", "Australia/Lord_Howe", "America/Santiago",
    "Europe/Berlin", "Pacific/Apia"};

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 256) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)sked::ParseDuration(input);
  (void)sked::ParseRfc3339(input);

  const int zone = size > 0 ? data[0] % 6 : 0;
  auto schedule =
      sked::CronSchedule::Parse(input, sked::CronOptions{kZones[zone], std::chrono::seconds(0)});
  if (!schedule.ok()) {
    Check(!schedule.status().message().empty());
    return 0;
  }
  (void)schedule->Describe();
  for (std::int64_t start : {0LL, 1772953200LL, 1793500000LL, 4102444800LL}) {
    const sked::Instant t = sked::FromUnixSeconds(start);
    const auto next = schedule->Next(t);
    if (!next) continue;
    Check(*next > t);
    const auto after = schedule->Next(*next);
    if (after) {
      Check(*after > *next);
      // Prev walks the very same fires back.
      Check(schedule->Prev(*after) == next);
    }
    const auto prev = schedule->Prev(*next);
    if (prev) Check(*prev < *next && schedule->Next(*prev) == next);
  }
  return 0;
}
