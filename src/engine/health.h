// The one set of health rules: instance liveness (InstanceStateAt, public in
// sked/engine.h), running runs and their leases, and the issues they raise.
// The engine's Health() and StoreHealthAt (what `sked health` shows) both use
// them.

#ifndef SKED_ENGINE_HEALTH_H_
#define SKED_ENGINE_HEALTH_H_

#include <cstdint>
#include <string>

#include "engine/engine_state.h"
#include "sked/engine.h"
#include "sked/store.h"

namespace sked::engine_internal {

std::string HostName();

// Running runs, and how many of them hold a lease that expired before `now`
// (not reaped yet).
struct RunningLeases {
  std::int64_t running = 0;
  std::int64_t stale = 0;
};
Result<RunningLeases> CountRunningLeases(Store& store, Instant now);

std::string StaleLeaseIssue(std::int64_t stale);

// This engine's health: its loop, the store, stuck drivers, escaped
// processes and stale leases (Engine::Health).
HealthSnapshot EngineHealth(const EngineContext& ctx, EngineState& state) SKED_EXCLUDES(state.mu);

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_HEALTH_H_
