// The retention service: deletes old run history (Store::PruneRuns) in
// bounded batches, one sweep over every job each `every`. A fleet sweeps
// once: the instance holding the store's "retention" lease does it; when it
// dies its lease runs out and another takes over.
//
// Thread safety: Start/Stop from one thread; SweepOnce is for tests and the
// CLI and must not run beside a started service.

#ifndef SKED_ENGINE_RETENTION_H_
#define SKED_ENGINE_RETENTION_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "sked/clock.h"
#include "sked/store.h"

namespace sked {

struct RetentionOptions {
  std::string instance_id;                    // the lease's holder
  RetentionPolicy policy;                     // what a job keeps unless it says otherwise
  Duration every = std::chrono::minutes(10);  // a sweep starts this often
  int batch = 500;                            // runs deleted per batch at most
  int jobs_per_batch = 100;                   // jobs looked at per batch
  // After a batch that deleted runs, the sweep waits this long, so that on
  // SQLite (one writer) the engine's writes are never queued behind a sweep.
  Duration pause = std::chrono::milliseconds(20);
  // Told of each sweep this instance did (for the log): the runs deleted and
  // the time it took, or the error that cut it short.
  std::function<void(const Result<std::int64_t>&, Duration)> on_sweep;
};

struct RetentionStats {
  std::int64_t sweeps = 0;               // sweeps this instance completed
  std::int64_t runs_deleted = 0;         // by this instance
  std::int64_t failures = 0;             // sweeps cut short by a store error
  std::optional<Instant> last_sweep_at;  // when the last completed sweep ended
  Duration last_sweep_duration{0};
};

class RetentionService {
 public:
  RetentionService(RetentionOptions options, Store* store, Clock* clock);
  RetentionService(const RetentionService&) = delete;
  RetentionService& operator=(const RetentionService&) = delete;
  ~RetentionService() { Stop(); }

  void Start();
  // Ends the sweep in progress after its current batch and joins. Safe
  // before Start and twice.
  void Stop();

  // One sweep, if this instance holds (or takes) the lease: every job, in
  // batches. Returns the runs deleted; nullopt when another instance holds
  // the lease.
  Result<std::optional<std::int64_t>> SweepOnce();

  RetentionStats Stats() const;

 private:
  void Loop();
  bool Stopping();
  Result<bool> TakeLease();

  const RetentionOptions options_;
  Store* const store_;
  Clock* const clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  RetentionStats stats_;
  std::thread thread_;
};

}  // namespace sked

#endif  // SKED_ENGINE_RETENTION_H_
