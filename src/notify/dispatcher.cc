#include "notify/dispatcher.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/thread_name.h"

namespace sked::notify {
namespace {

// A run's output in a payload: its newest bytes, at most this many.
constexpr size_t kOutputTail = 4096;

nlohmann::json OptTime(const std::optional<Instant>& t) {
  return t ? nlohmann::json(FormatRfc3339Utc(*t, 3)) : nlohmann::json(nullptr);
}

}  // namespace

std::string BuildPayload(const Notification& n, const Run* run, const std::string& instance_id) {
  nlohmann::json j;
  j["id"] = n.id;
  j["event"] = n.event;
  j["channel"] = n.channel;
  j["created_at"] = FormatRfc3339Utc(n.created_at, 3);
  j["attempt"] = n.attempts;
  j["instance"] = instance_id;
  j["job"] = {{"id", n.job_id}, {"name", n.job_name}};
  if (run != nullptr) {
    std::string output = run->output;
    bool truncated = run->output_truncated;
    if (output.size() > kOutputTail) {
      output = output.substr(output.size() - kOutputTail);
      truncated = true;
    }
    j["run"] = {{"id", run->id},
                {"status", RunStatusName(run->status)},
                {"attempt", run->attempt},
                {"trigger", RunTriggerName(run->trigger)},
                {"scheduled_for", FormatRfc3339Utc(run->scheduled_for, 3)},
                {"started_at", OptTime(run->started_at)},
                {"finished_at", OptTime(run->finished_at)},
                {"instance", run->instance_id},
                {"exit_code", run->exit_code ? nlohmann::json(*run->exit_code) : nullptr},
                {"error", run->error},
                {"reason", run->reason},
                {"output_tail", output},
                {"output_truncated", truncated}};
  } else {
    j["run"] = nullptr;
  }
  // Output is bytes: anything that is not UTF-8 is replaced, never refused.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Dispatcher::Dispatcher(DispatcherOptions options, Store* store, Clock* clock,
                       std::map<std::string, std::unique_ptr<Channel>> channels,
                       AttemptObserver on_attempt)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      channels_(std::move(channels)),
      on_attempt_(std::move(on_attempt)) {}

void Dispatcher::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
  NameThread(thread_, "sked-notify");
}

void Dispatcher::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::int64_t> Dispatcher::Prune() {
  if (options_.keep <= Duration(0)) return 0;
  constexpr int kBatch = 1000;
  const Instant before = clock_->Now() - options_.keep;
  std::int64_t total = 0;
  for (int batch = 0; batch < 10; ++batch) {
    SKED_ASSIGN_OR_RETURN(std::int64_t n, store_->PruneNotifications(before, kBatch));
    total += n;
    if (n < kBatch) break;
  }
  return total;
}

DispatcherStats Dispatcher::Stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

Duration Dispatcher::Backoff(int attempts) const {
  Duration d = options_.backoff;
  for (int i = 1; i < attempts && d < options_.max_backoff; ++i) d *= 2;
  return std::min(d, options_.max_backoff);
}

Result<int> Dispatcher::RunOnce() {
  const Instant now = clock_->Now();
  SKED_ASSIGN_OR_RETURN(
      std::vector<Notification> due,
      store_->ClaimNotifications(options_.instance_id, now, options_.batch, now + options_.claim));
  std::vector<DeliveryResult> results;
  results.reserve(due.size());
  for (const Notification& n : due) {
    std::optional<Run> run;
    if (n.run_id) {
      auto got = store_->GetRun(*n.run_id);
      if (got.ok()) {
        run = std::move(*got);
      } else if (got.status().code() != StatusCode::kNotFound) {
        return got.status();  // the store is down: the claims run out, tried again later
      }
    }
    Status delivered;
    auto channel = channels_.find(n.channel);
    if (channel == channels_.end()) {
      delivered = NotFoundError("no channel named '" + n.channel + "' is configured");
    } else {
      delivered =
          channel->second->Deliver(BuildPayload(n, run ? &*run : nullptr, options_.instance_id));
    }
    DeliveryResult r;
    r.notification_id = n.id;
    r.at = clock_->Now();
    r.delivered = delivered.ok();
    if (!delivered.ok()) {
      r.error = delivered.message();
      if (n.attempts < options_.max_attempts) r.retry_at = r.at + Backoff(n.attempts);
    }
    if (on_attempt_) on_attempt_(n, delivered);
    {
      std::lock_guard<std::mutex> l(mu_);
      if (r.delivered) {
        ++stats_.delivered[n.channel];
      } else {
        ++stats_.attempts_failed[n.channel];
        if (!r.retry_at) ++stats_.given_up[n.channel];
      }
    }
    results.push_back(std::move(r));
  }
  if (!results.empty())
    SKED_RETURN_IF_ERROR(store_->RecordDeliveries(options_.instance_id, results).status());
  return static_cast<int>(due.size());
}

Result<std::vector<Notification>> Dispatcher::Watch() {
  SKED_ASSIGN_OR_RETURN(std::vector<Notification> raised,
                        store_->RaiseWatchdogEvents(clock_->Now()));
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const Notification& n : raised) ++stats_.watchdog[n.event];
  }
  if (options_.on_raised) {
    for (const Notification& n : raised) options_.on_raised(n);
  }
  return raised;
}

void Dispatcher::Loop() {
  Instant next_watch = clock_->Now();
  Instant next_prune = clock_->Now();
  while (true) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return;
    }
    if (options_.watchdog_every > Duration(0) && clock_->Now() >= next_watch) {
      (void)Watch();  // the store is down: the next pass tries again
      next_watch = clock_->Now() + options_.watchdog_every;
    }
    if (options_.keep > Duration(0) && clock_->Now() >= next_prune) {
      (void)Prune();  // the store is down: the next pass tries again
      next_prune = clock_->Now() + options_.prune_every;
    }
    auto attempted = RunOnce();
    const bool more = attempted.ok() && *attempted >= options_.batch;
    if (more) continue;  // a backlog: the next batch at once
    Instant wake = clock_->Now() + options_.poll;
    if (options_.watchdog_every > Duration(0)) wake = std::min(wake, next_watch);
    if (attempted.ok()) {
      if (auto next = store_->NextNotificationAt(); next.ok() && *next && **next < wake) {
        wake = std::max(**next, clock_->Now());
      }
    }
    std::unique_lock<std::mutex> l(mu_);
    clock_->AwaitWithDeadline(l, cv_, wake, [this] { return stopping_; });
    if (stopping_) return;
  }
}

}  // namespace sked::notify
