#include "engine/retention.h"

#include <algorithm>
#include <utility>

#include "base/thread_name.h"

namespace sked {

namespace {
constexpr const char* kLease = "retention";
}  // namespace

RetentionService::RetentionService(RetentionOptions options, Store* store, Clock* clock)
    : options_(std::move(options)), store_(store), clock_(clock) {}

void RetentionService::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
  NameThread(thread_, "sked-retention");
}

void RetentionService::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

RetentionStats RetentionService::Stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

bool RetentionService::Stopping() {
  std::lock_guard<std::mutex> l(mu_);
  return stopping_;
}

// Held for two periods: renewed by every batch and every sweep, so it lapses
// only when its holder stops sweeping.
Result<bool> RetentionService::TakeLease() {
  const Instant now = clock_->Now();
  const Duration hold = std::max<Duration>(2 * options_.every, std::chrono::minutes(1));
  return store_->AcquireLease(kLease, options_.instance_id, now, now + hold);
}

Result<std::optional<std::int64_t>> RetentionService::SweepOnce() {
  SKED_ASSIGN_OR_RETURN(bool held, TakeLease());
  if (!held) return std::optional<std::int64_t>();
  const Instant started = clock_->Now();
  std::int64_t deleted = 0;
  PruneRequest request;
  request.defaults = options_.policy;
  request.limit = options_.batch;
  request.max_jobs = options_.jobs_per_batch;
  // A sweep visits each job once; bounded so that a store that keeps saying
  // "more" cannot hold it forever.
  for (int batch = 0; batch < 10000000; ++batch) {
    request.now = clock_->Now();
    auto result = store_->PruneRuns(request);
    if (!result.ok()) {
      {
        std::lock_guard<std::mutex> l(mu_);
        ++stats_.failures;
        stats_.runs_deleted += deleted;
      }
      if (options_.on_sweep) options_.on_sweep(result.status(), clock_->Now() - started);
      return result.status();
    }
    deleted += result->runs;
    if (!result->resume_after) break;
    request.after_job_id = *result->resume_after;
    if (result->runs > 0 && options_.pause > Duration(0)) {
      std::unique_lock<std::mutex> l(mu_);
      clock_->AwaitWithDeadline(l, cv_, clock_->Now() + options_.pause,
                                [this] { return stopping_; });
    }
    if (Stopping()) break;
    // Renewed for the rest of the sweep; lost (stalled past it, or the store
    // went away): the sweep stops, another instance (or the next period) goes on.
    auto renewed = TakeLease();
    if (!renewed.ok() || !*renewed) break;
  }
  const Instant ended = clock_->Now();
  {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.sweeps;
    stats_.runs_deleted += deleted;
    stats_.last_sweep_at = ended;
    stats_.last_sweep_duration = ended - started;
  }
  if (options_.on_sweep) options_.on_sweep(deleted, ended - started);
  return std::optional<std::int64_t>(deleted);
}

void RetentionService::Loop() {
  while (!Stopping()) {
    (void)SweepOnce();  // the store is down, or another instance sweeps: the next period
    std::unique_lock<std::mutex> l(mu_);
    clock_->AwaitWithDeadline(l, cv_, clock_->Now() + options_.every, [this] { return stopping_; });
  }
}

}  // namespace sked
