// A Store decorator that times the engine's hot store operations, for the
// `sked_store_operation_duration_seconds` histogram on /metrics.

#ifndef SKED_SERVER_TIMED_STORE_H_
#define SKED_SERVER_TIMED_STORE_H_

#include <map>
#include <mutex>
#include <string>

#include "sked/engine.h"
#include "store/forwarding_store.h"

namespace sked::server {

class StoreTimings {
 public:
  StoreTimings();
  void Observe(const std::string& operation, double seconds);
  std::map<std::string, Histogram> Snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, Histogram> by_operation_;  // guarded by mu_
};

class TimedStore final : public ForwardingStore {
 public:
  TimedStore(Store* base, StoreTimings* timings) : ForwardingStore(base), timings_(timings) {}

  Result<std::vector<Run>> ClaimDue(const ClaimRequest& request,
                                    const std::function<FirePlan(const DueJob&)>& plan) override;
  Result<Reservation> ReserveQueued(std::string_view instance, Instant now, int limit,
                                    Instant reserve_until) override;
  Result<std::vector<bool>> RecordDispatches(std::string_view instance,
                                             const std::vector<Dispatch>& dispatches,
                                             Instant lease_until) override;
  Result<std::vector<bool>> SettleRuns(const std::vector<RunOutcome>& outcomes) override;
  Status ExtendLeases(std::string_view instance, Instant now, Instant renew_before,
                      Instant lease_until) override;
  Result<std::vector<Run>> ReapExpired(
      Instant now, int limit,
      const std::function<std::optional<NewRun>(const Job&, const Run&)>& retry) override;
  Status Heartbeat(std::string_view instance, Instant now) override;

 private:
  StoreTimings* timings_;
};

}  // namespace sked::server

#endif  // SKED_SERVER_TIMED_STORE_H_
