#include "testing/simulated_clock.h"

#include <vector>

namespace sked::testing {

Instant SimulatedClock::Now() {
  std::lock_guard<std::mutex> l(mu_);
  return now_;
}

bool SimulatedClock::AwaitWithDeadline(std::unique_lock<std::mutex>& lock,
                                       std::condition_variable& cv, Instant deadline,
                                       const std::function<bool()>& ready) {
  std::list<Waiter>::iterator self;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (now_ >= deadline) return ready();
    self = waiters_.insert(waiters_.end(), Waiter{deadline, lock.mutex(), &cv});
  }
  changed_.notify_all();
  bool result;
  while (true) {
    if (ready()) {
      result = true;
      break;
    }
    {
      // Lock order: the caller's mutex, then mu_ (wakers never hold both).
      std::lock_guard<std::mutex> l(mu_);
      if (now_ >= deadline) {
        result = false;
        break;
      }
    }
    cv.wait(lock);
  }
  // Leave only when no waker still holds a pointer to our entry; release the
  // caller's lock meanwhile, since the waker needs it to notify. Checked again
  // after retaking both locks: another SetTime may have found this entry due
  // while mu_ was released.
  {
    std::unique_lock<std::mutex> l(mu_);
    while (self->notifying > 0) {
      lock.unlock();
      changed_.wait(l, [&] { return self->notifying == 0; });
      l.unlock();
      lock.lock();
      l.lock();
    }
    waiters_.erase(self);
  }
  changed_.notify_all();
  return result;
}

int SimulatedClock::AdvanceTime(Duration d) {
  Instant target;
  {
    std::lock_guard<std::mutex> l(mu_);
    target = now_ + d;
  }
  return SetTime(target);
}

int SimulatedClock::SetTime(Instant t) {
  std::vector<Waiter*> due;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (t > now_) now_ = t;
    for (Waiter& w : waiters_) {
      if (w.deadline <= now_) {
        ++w.notifying;
        due.push_back(&w);
      }
    }
  }
  for (Waiter* w : due) {
    // Taking the waiter's mutex orders this notify after its check of now_.
    { std::lock_guard<std::mutex> l(*w->mu); }
    w->cv->notify_all();
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    for (Waiter* w : due) --w->notifying;
  }
  changed_.notify_all();
  return static_cast<int>(due.size());
}

std::optional<Instant> SimulatedClock::EarliestWakeupTime() {
  std::lock_guard<std::mutex> l(mu_);
  std::optional<Instant> earliest;
  for (const Waiter& w : waiters_) {
    if (!earliest || w.deadline < *earliest) earliest = w.deadline;
  }
  return earliest;
}

int SimulatedClock::WaiterCount() {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int>(waiters_.size());
}

bool SimulatedClock::WaitForWaiters(int n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> l(mu_);
  return changed_.wait_for(l, timeout, [&] { return static_cast<int>(waiters_.size()) >= n; });
}

}  // namespace sked::testing
