// /metrics in the Prometheus text exposition format (version 0.0.4): HELP
// and TYPE lines, counters ending in _total, histograms as cumulative
// _bucket{le=...} lines with +Inf, _sum and _count; label values escaped.
// Labels are bounded by the number of jobs, never by runs.

#ifndef SKED_SERVER_METRICS_TEXT_H_
#define SKED_SERVER_METRICS_TEXT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sked/engine.h"
#include "sked/job.h"
#include "sked/store.h"

namespace sked::server {

// What this instance's notification dispatcher did since it started.
struct NotifyMetrics {
  std::map<std::string, std::int64_t> delivered;        // by channel
  std::map<std::string, std::int64_t> attempts_failed;  // by channel
  std::map<std::string, std::int64_t> given_up;         // by channel
  std::map<std::string, std::int64_t> watchdog;         // watchdog events raised, by event
};

// What this instance's retention service did since it started.
struct RetentionMetrics {
  std::int64_t sweeps = 0;
  std::int64_t runs_deleted = 0;
  std::int64_t failures = 0;
  std::optional<Instant> last_sweep_at;
};

struct MetricsInput {
  MetricsSnapshot engine;
  std::vector<Job> jobs;      // every job, for the per-job gauges
  bool jobs_complete = true;  // false: the store could not list them
  std::vector<InstanceInfo> instances;
  Instant now{};
  Duration lease{};
  std::map<std::string, Histogram> store_operations;
  bool ready = false;
  std::string version;
  std::optional<NotifyMetrics> notify;        // none: no dispatcher runs here
  std::optional<RetentionMetrics> retention;  // none: no retention service runs here
};

std::string RenderMetrics(const MetricsInput& in);

// A label value escaped as the format asks: backslash, double quote, newline.
std::string EscapeLabel(const std::string& value);

}  // namespace sked::server

#endif  // SKED_SERVER_METRICS_TEXT_H_
