// The engine's metrics: counters and histograms kept in the book (under its
// mutex) by the services that see each event, and the snapshot
// Engine::Metrics() returns (with the store's queue depth).

#ifndef SKED_ENGINE_ENGINE_METRICS_H_
#define SKED_ENGINE_ENGINE_METRICS_H_

#include "engine/engine_state.h"

namespace sked::engine_internal {

// The buckets of run-duration histograms (seconds), the engine's and each job's.
const std::vector<double>& RunDurationBounds();

// Sets up the histograms' buckets in `state.metrics`.
void InitMetrics(const EngineContext& ctx, EngineState& state) SKED_EXCLUDES(state.mu);

MetricsSnapshot MetricsNow(const EngineContext& ctx, EngineState& state) SKED_EXCLUDES(state.mu);

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_ENGINE_METRICS_H_
