#include "engine/periodic_task.h"

#include <utility>

#include "base/thread_name.h"

namespace sked::engine_internal {

void PeriodicTask::Start(const char* name, Duration interval, std::function<void(Instant)> tick) {
  thread_ = std::thread([this, interval, tick = std::move(tick)] { Run(interval, tick); });
  NameThread(thread_, name);
}

void PeriodicTask::Stop() {
  if (thread_.joinable()) thread_.join();
}

void PeriodicTask::Run(Duration interval, const std::function<void(Instant)>& tick) {
  MutexLock lock(state_.mu);
  while (!state_.stopping) {
    lock.Unlock();
    const Instant now = ctx_.clock->Now();
    tick(now);
    lock.Lock();
    park_->parked = true;
    park_->until = now + interval;
    state_.idle_cv.notify_all();
    ctx_.clock->AwaitWithDeadline(lock.native(), state_.periodic_cv, park_->until, [this] {
      state_.mu.AssertHeld();
      return state_.stopping;
    });
    park_->parked = false;
  }
}

}  // namespace sked::engine_internal
