// The notification dispatcher: a service that delivers the store's outbox.
// Each pass claims the pending notifications that are due (one claimer at a
// time fleet-wide, so each is delivered once), delivers each through its
// channel, and records the attempt: delivered, retried later with
// exponential backoff, or failed for good after max_attempts. A claimer that
// dies leaves its claims to run out; another instance then delivers them.
//
// Thread safety: Start/Stop from one thread; RunOnce is for tests (on the
// simulated clock) and must not run beside a started dispatcher.

#ifndef SKED_NOTIFY_DISPATCHER_H_
#define SKED_NOTIFY_DISPATCHER_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "notify/channel.h"
#include "sked/clock.h"
#include "sked/notification.h"
#include "sked/store.h"

namespace sked::notify {

struct DispatcherOptions {
  std::string instance_id;  // who claims (this instance's id)
  int batch = 8;            // notifications claimed per pass
  int max_attempts = 5;
  Duration backoff = std::chrono::seconds(10);
  Duration max_backoff = std::chrono::minutes(10);
  // How long a claim holds: longer than a batch of deliveries can take.
  Duration claim = std::chrono::minutes(2);
  // How often the store is asked for due notifications at least.
  Duration poll = std::chrono::seconds(1);
  // How often the watchdog's pass runs (Store::RaiseWatchdogEvents); zero:
  // never.
  Duration watchdog_every = std::chrono::seconds(1);
  // Retention: delivered and failed notifications are deleted this long
  // after they finished (zero: kept), checked every `prune_every`.
  Duration keep = std::chrono::hours(24 * 30);
  Duration prune_every = std::chrono::minutes(1);
  // Told of each watchdog event raised (for the log).
  std::function<void(const Notification&)> on_raised;
};

// The JSON document a channel delivers (docs/notifications.md): the event,
// the job, the run as it was settled (null when the run is gone), and the
// attempt.
std::string BuildPayload(const Notification& n, const Run* run, const std::string& instance_id);

// What a dispatcher did since it started (for /metrics).
struct DispatcherStats {
  std::map<std::string, std::int64_t> delivered;        // by channel
  std::map<std::string, std::int64_t> attempts_failed;  // by channel
  std::map<std::string, std::int64_t> given_up;         // by channel
  std::map<std::string, std::int64_t> watchdog;         // by event
};

class Dispatcher {
 public:
  // `on_attempt` is told of every attempt (for the log): the notification,
  // and the error when it was not delivered.
  using AttemptObserver = std::function<void(const Notification&, const Status&)>;

  Dispatcher(DispatcherOptions options, Store* store, Clock* clock,
             std::map<std::string, std::unique_ptr<Channel>> channels,
             AttemptObserver on_attempt = {});
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;
  ~Dispatcher() { Stop(); }

  void Start();
  // Finishes the delivery in progress and joins. Safe before Start and twice.
  void Stop();

  // One pass: claims what is due and delivers it. Returns how many
  // notifications were attempted.
  Result<int> RunOnce();

  // The watchdog's pass: raises late, overrun and stale events into the
  // outbox (delivered by later passes of RunOnce). Returns what it raised.
  Result<std::vector<Notification>> Watch();

  // Retention's pass: deletes finished notifications older than `keep`, in
  // batches of 1,000 (at most 10 per pass). Returns how many went.
  Result<std::int64_t> Prune();

  DispatcherStats Stats() const;

  // The retry delay after `attempts` failed attempts (exponential, capped).
  Duration Backoff(int attempts) const;

 private:
  void Loop();

  const DispatcherOptions options_;
  Store* const store_;
  Clock* const clock_;
  const std::map<std::string, std::unique_ptr<Channel>> channels_;
  const AttemptObserver on_attempt_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  DispatcherStats stats_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace sked::notify

#endif  // SKED_NOTIFY_DISPATCHER_H_
