// The lease keeper: registers this instance in the store (refusing an id a
// live process holds), heartbeats every `heartbeat`, extends the leases of
// the runs it owns to now + lease (those set more than LeaseRenewalAge ago),
// counts the live peers (fleet mode, by the one liveness rule
// InstanceStateAt), and deregisters at shutdown.

#ifndef SKED_ENGINE_LEASE_KEEPER_H_
#define SKED_ENGINE_LEASE_KEEPER_H_

#include <algorithm>

#include "engine/engine_state.h"
#include "engine/periodic_task.h"

namespace sked::engine_internal {

// How old a lease must be for a heartbeat to renew it. A burst's runs live
// well under a second: renewing every lease at each heartbeat rewrote
// thousands of rows that were about to end. A lease is renewed at the first
// heartbeat after it is this old, so it keeps at least
// lease - heartbeat - LeaseRenewalAge (15 s of the default 30 s, against 20 s
// when every lease is renewed) for a heartbeat that comes late.
inline Duration LeaseRenewalAge(const EngineOptions& o) {
  return std::max(Duration(0), std::min(o.heartbeat / 2, (o.lease - o.heartbeat) / 4));
}

class LeaseKeeper {
 public:
  LeaseKeeper(const EngineContext& ctx, EngineState& state)
      : ctx_(ctx), state_(state), task_(ctx, state, &state.heartbeat_park) {}
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // Registers the instance at `now`; FAILED_PRECONDITION when a live
  // instance holds the id. Ends the leases an earlier process under this id
  // left behind, so the reaper settles its runs.
  Status Register(Instant now) SKED_EXCLUDES(state_.mu);
  // Starts the heartbeat.
  void Start();
  // Joins it (once the book says `stopping`). Safe before Start() and twice.
  void Stop() { task_.Stop(); }
  void Deregister() {
    (void)ctx_.store->DeregisterInstance(ctx_.options.instance_id, ctx_.clock->Now());
  }

 private:
  void Heartbeat(Instant now) SKED_EXCLUDES(state_.mu);
  // Counts the other instances alive on this store (live_peers) and this
  // one's place among them by id (fleet_rank).
  void CountLivePeers(Instant now) SKED_EXCLUDES(state_.mu);

  const EngineContext& ctx_;
  EngineState& state_;
  PeriodicTask task_;
};

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_LEASE_KEEPER_H_
