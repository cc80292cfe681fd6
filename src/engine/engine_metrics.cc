#include "engine/engine_metrics.h"

#include <utility>
#include <vector>

namespace sked {

void Histogram::Observe(double seconds) {
  ++count;
  sum += seconds;
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (seconds <= bounds[i]) ++counts[i];
  }
}

namespace engine_internal {
namespace {

Histogram NewHistogram(std::vector<double> bounds) {
  Histogram h;
  h.counts.assign(bounds.size(), 0);
  h.bounds = std::move(bounds);
  return h;
}

}  // namespace

void InitMetrics(EngineState& state) {
  MutexLock l(state.mu);
  state.metrics.fire_lag =
      NewHistogram({0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60});
  state.metrics.run_duration =
      NewHistogram({0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600});
}

MetricsSnapshot MetricsNow(const EngineContext& ctx, EngineState& state) {
  auto depth = ctx.store->QueueDepth();
  MutexLock l(state.mu);
  MetricsSnapshot m = state.metrics;
  m.queue_depth = depth.value_or(-1);
  m.running = static_cast<std::int64_t>(state.executing.size());
  return m;
}

}  // namespace engine_internal
}  // namespace sked
