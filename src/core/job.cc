#include "sked/job.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <sstream>
#include <string>

#include "core/notify_policy.h"
#include "sked/schedule.h"
#include "sked/time_zone.h"

namespace sked {
namespace {

constexpr std::array<std::string_view, 5> kStateNames = {"pending", "active", "paused", "disabled",
                                                         "expired"};
constexpr std::array<std::string_view, 4> kOverlapNames = {"skip", "queue", "concurrent",
                                                           "replace"};
constexpr std::array<std::string_view, 3> kMisfireNames = {"run_once", "skip", "run_all"};

template <typename Enum, size_t N>
Result<Enum> ParseName(const std::array<std::string_view, N>& names, std::string_view name,
                       std::string_view what) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<Enum>(i);
  }
  std::string expected;
  for (size_t i = 0; i < N; ++i) {
    expected += i == 0 ? "" : (i + 1 == N ? " or " : ", ");
    expected += names[i];
  }
  return InvalidArgumentError("unknown " + std::string(what) + " '" + std::string(name) +
                              "' (expected " + expected + ")");
}

Status FieldError(std::string_view field, std::string_view message) {
  return InvalidArgumentError(std::string(field) + ": " + std::string(message));
}

}  // namespace

std::string_view JobStateName(JobState s) { return kStateNames[static_cast<size_t>(s)]; }
Result<JobState> ParseJobState(std::string_view n) {
  return ParseName<JobState>(kStateNames, n, "job state");
}
std::string_view OverlapPolicyName(OverlapPolicy p) {
  return kOverlapNames[static_cast<size_t>(p)];
}
Result<OverlapPolicy> ParseOverlapPolicy(std::string_view n) {
  return ParseName<OverlapPolicy>(kOverlapNames, n, "overlap policy");
}
std::string_view MisfirePolicyName(MisfirePolicy p) {
  return kMisfireNames[static_cast<size_t>(p)];
}
Result<MisfirePolicy> ParseMisfirePolicy(std::string_view n) {
  return ParseName<MisfirePolicy>(kMisfireNames, n, "misfire policy");
}

Status ValidateJobSpecShape(const JobSpec& spec) {
  if (spec.name.empty() || spec.name.size() > 128) {
    return FieldError("name", "must be 1-128 characters");
  }
  for (char c : spec.name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return FieldError("name",
                        "'" + spec.name + "' may hold only letters, digits, '.', '_' and '-'");
    }
  }
  if (spec.driver.empty()) return FieldError("driver", "is required");
  if (spec.description.size() > 4096) return FieldError("description", "longer than 4096");
  // Terminal control sequences (ESC[2J clears the screen) never get in.
  for (char c : spec.description) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\n') || u == 0x7f) {
      return FieldError("description", "holds control character " + std::to_string(u) +
                                           " (only tabs and newlines are allowed)");
    }
  }
  auto zone = TimeZone::Find(spec.time_zone);
  if (!zone.ok()) return zone.status().WithContext("time_zone");
  if (spec.start_at && spec.end_at && *spec.end_at <= *spec.start_at) {
    return FieldError("end_at", "must be after start_at");
  }
  if (spec.max_queued < 1 || spec.max_queued > 1000) {
    return FieldError("max_queued", "must be 1-1000, got " + std::to_string(spec.max_queued));
  }
  if (spec.max_concurrent < 1 || spec.max_concurrent > 1000) {
    return FieldError("max_concurrent",
                      "must be 1-1000, got " + std::to_string(spec.max_concurrent));
  }
  if (spec.catchup_window < Duration(0)) return FieldError("catchup_window", "is negative");
  for (const auto& [field, d] : {std::pair{"late_after", spec.late_after},
                                 std::pair{"expected_duration", spec.expected_duration},
                                 std::pair{"no_success_for", spec.no_success_for}}) {
    if (d && *d <= Duration(0)) return FieldError(field, "must be positive");
  }
  if (spec.overrun_factor && !(*spec.overrun_factor >= 1.1 && *spec.overrun_factor <= 100)) {
    std::ostringstream got;
    got << *spec.overrun_factor;
    return FieldError("overrun_factor", "must be from 1.1 to 100, got " + got.str());
  }
  if (spec.starting_deadline && *spec.starting_deadline <= Duration(0)) {
    return FieldError("starting_deadline", "must be positive");
  }
  if (spec.timeout && *spec.timeout <= Duration(0)) {
    return FieldError("timeout", "must be positive");
  }
  if (spec.priority < -1000 || spec.priority > 1000) {
    return FieldError("priority", "must be -1000 to 1000, got " + std::to_string(spec.priority));
  }
  const RetentionSpec& keep = spec.retention;
  if (keep.max_age && *keep.max_age < Duration(0)) {
    return FieldError("retention.max_age", "is negative (0 keeps runs of any age)");
  }
  if (keep.max_runs && (*keep.max_runs < 0 || *keep.max_runs > 100000000)) {
    return FieldError("retention.max_runs",
                      "must be 0 (no limit) to 100000000, got " + std::to_string(*keep.max_runs));
  }
  if (keep.keep_failures && (*keep.keep_failures < 0 || *keep.keep_failures > 1000000)) {
    return FieldError("retention.keep_failures",
                      "must be 0-1000000, got " + std::to_string(*keep.keep_failures));
  }
  const RetryPolicy& r = spec.retry;
  if (r.max_retries < 0 || r.max_retries > 100) {
    return FieldError("retry.max", "must be 0-100, got " + std::to_string(r.max_retries));
  }
  if (r.backoff < Duration(0)) return FieldError("retry.backoff", "is negative");
  if (r.max_backoff < r.backoff) return FieldError("retry.max_backoff", "is less than backoff");
  if (!(r.multiplier >= 1.0 && r.multiplier <= 100.0)) {
    return FieldError("retry.multiplier", "must be 1-100");
  }
  if (!(r.jitter >= 0.0 && r.jitter <= 1.0)) return FieldError("retry.jitter", "must be 0-1");
  for (const std::string& tag : spec.tags) {
    const bool control = std::any_of(tag.begin(), tag.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) == 0x7f;
    });
    if (tag.empty() || tag.size() > 64 || tag.find(',') != std::string::npos || control) {
      return FieldError("tags",
                        "each tag must be 1-64 characters without ',' or control characters");
    }
  }
  return policy::ValidateNotifySpec(spec.notify);
}

}  // namespace sked
