#include "server/timed_store.h"

#include <chrono>
#include <utility>

namespace sked::server {
namespace {

const std::vector<double> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,   0.25,   0.5,   1,    2.5};

// Times the call it wraps (steady clock: store latency is real time).
template <typename F>
auto Timed(StoreTimings* t, const char* operation, F&& call) {
  const auto start = std::chrono::steady_clock::now();
  auto result = call();
  t->Observe(operation,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return result;
}

}  // namespace

StoreTimings::StoreTimings() {
  for (const char* op : {"claim_due", "reserve_queued", "record_dispatches", "settle_runs",
                         "extend_leases", "reap_expired", "heartbeat"}) {
    Histogram& h = by_operation_[op];
    h.bounds = kBounds;
    h.counts.assign(kBounds.size(), 0);
  }
}

void StoreTimings::Observe(const std::string& operation, double seconds) {
  std::lock_guard<std::mutex> l(mu_);
  by_operation_[operation].Observe(seconds);
}

std::map<std::string, Histogram> StoreTimings::Snapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  return by_operation_;
}

Result<std::vector<Run>> TimedStore::ClaimDue(const ClaimRequest& request,
                                              const std::function<FirePlan(const DueJob&)>& plan) {
  return Timed(timings_, "claim_due", [&] { return ForwardingStore::ClaimDue(request, plan); });
}

Result<Store::Reservation> TimedStore::ReserveQueued(std::string_view instance, Instant now,
                                                     int limit, Instant reserve_until) {
  return Timed(timings_, "reserve_queued",
               [&] { return ForwardingStore::ReserveQueued(instance, now, limit, reserve_until); });
}

Result<std::vector<bool>> TimedStore::RecordDispatches(std::string_view instance,
                                                       const std::vector<Dispatch>& dispatches,
                                                       Instant lease_until) {
  return Timed(timings_, "record_dispatches", [&] {
    return ForwardingStore::RecordDispatches(instance, dispatches, lease_until);
  });
}

Result<std::vector<bool>> TimedStore::SettleRuns(const std::vector<RunOutcome>& outcomes) {
  return Timed(timings_, "settle_runs", [&] { return ForwardingStore::SettleRuns(outcomes); });
}

Status TimedStore::ExtendLeases(std::string_view instance, Instant now, Instant renew_before,
                                Instant lease_until) {
  return Timed(timings_, "extend_leases", [&] {
    return ForwardingStore::ExtendLeases(instance, now, renew_before, lease_until);
  });
}

Result<std::vector<Run>> TimedStore::ReapExpired(
    Instant now, int limit,
    const std::function<std::optional<NewRun>(const Job&, const Run&)>& retry) {
  return Timed(timings_, "reap_expired",
               [&] { return ForwardingStore::ReapExpired(now, limit, retry); });
}

Status TimedStore::Heartbeat(std::string_view instance, Instant now) {
  return Timed(timings_, "heartbeat", [&] { return ForwardingStore::Heartbeat(instance, now); });
}

}  // namespace sked::server
