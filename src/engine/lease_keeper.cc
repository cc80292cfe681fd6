#include "engine/lease_keeper.h"

#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "engine/health.h"

namespace sked::engine_internal {

Status LeaseKeeper::Register(Instant now) {
  const EngineOptions& o = ctx_.options;
  Store& store = *ctx_.store;
  // An instance id belongs to one live process: a second one under the same
  // id would end the first one's leases (its runs reaped while they run).
  SKED_ASSIGN_OR_RETURN(std::vector<InstanceInfo> instances, store.ListInstances());
  std::optional<InstanceInfo> earlier;
  for (const InstanceInfo& i : instances) {
    if (i.id == o.instance_id) earlier = i;
  }
  auto taken = [&](const InstanceInfo& holder) {
    return FailedPreconditionError(
        "instance id '" + o.instance_id + "' is in use by a live instance (host " + holder.host +
        ", pid " + std::to_string(holder.pid) + ", last heartbeat " +
        FormatRfc3339Utc(holder.heartbeat_at, 0) +
        "); give this one another [scheduler] instance_id, or stop that one (an instance that "
        "died holds its id until its lease of " +
        FormatDuration(o.lease) + " ends, unless it ran on this host)");
  };
  if (earlier && InstanceStateAt(*earlier, now, o.lease) == InstanceState::kAlive) {
    return taken(*earlier);
  }
  const InstanceInfo self{
      o.instance_id, HostName(), static_cast<std::int64_t>(::getpid()), SKED_VERSION, now, now, {}};
  if (Status s = store.RegisterInstance(self, earlier); !s.ok()) {
    if (s.code() != StatusCode::kAlreadyExists) return s;
    // Another process registered the id between our look and our write.
    auto again = store.ListInstances();
    if (again.ok()) {
      for (const InstanceInfo& i : *again) {
        if (i.id == o.instance_id) return taken(i);
      }
    }
    return FailedPreconditionError("instance id '" + o.instance_id +
                                   "' was taken by another process starting at the same time");
  }
  CountLivePeers(now);
  // Runs an earlier process under this instance id left behind (killed
  // before it settled them) cannot be finished by this one: their leases end
  // now, so the reaper settles them as abandoned (and retries them by policy)
  // instead of this process's heartbeats keeping them alive.
  return store.ExtendLeases(o.instance_id, now, Instant::max(), now - Duration(1));
}

void LeaseKeeper::Start() {
  task_.Start("sked-lease", ctx_.options.heartbeat, [this](Instant now) { Heartbeat(now); });
}

void LeaseKeeper::Heartbeat(Instant now) {
  const EngineOptions& o = ctx_.options;
  Status s = ctx_.store->Heartbeat(o.instance_id, now);
  if (s.ok()) {
    s = ctx_.store->ExtendLeases(o.instance_id, now, now + o.lease - LeaseRenewalAge(o),
                                 now + o.lease);
  }
  if (s.ok()) CountLivePeers(now);
  MutexLock l(state_.mu);
  state_.last_store_error = s.ok() ? "" : s.message();
}

void LeaseKeeper::CountLivePeers(Instant now) {
  auto instances = ctx_.store->ListInstances();
  if (!instances.ok()) return;
  int peers = 0, rank = 0;
  for (const InstanceInfo& i : *instances) {
    if (i.id == ctx_.options.instance_id ||
        InstanceStateAt(i, now, ctx_.options.lease) != InstanceState::kAlive) {
      continue;
    }
    ++peers;
    rank += i.id < ctx_.options.instance_id;
  }
  MutexLock l(state_.mu);
  state_.live_peers = peers;
  state_.fleet_rank = rank;
}

}  // namespace sked::engine_internal
