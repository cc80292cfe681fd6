// A Clock for tests that does not tick on its own: time moves only when the
// test calls AdvanceTime() or SetTime(). Waiters whose deadline is reached are
// woken; tests wait on state (WaitForWaiters) rather than sleeping.

#ifndef SKED_TESTING_SIMULATED_CLOCK_H_
#define SKED_TESTING_SIMULATED_CLOCK_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>

#include "sked/clock.h"

namespace sked::testing {

class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(Instant start) : now_(start) {}
  SimulatedClock(const SimulatedClock&) = delete;
  SimulatedClock& operator=(const SimulatedClock&) = delete;

  Instant Now() override;
  bool AwaitWithDeadline(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         Instant deadline, const std::function<bool()>& ready) override;

  // Moves time forward by `d` (or to `t`, never backwards) and wakes every
  // waiter whose deadline has been reached. Returns how many it woke.
  int AdvanceTime(Duration d);
  int SetTime(Instant t);

  // The earliest deadline among current waiters, if any.
  std::optional<Instant> EarliestWakeupTime();
  int WaiterCount();

  // Blocks (in real time, bounded by `timeout`) until at least `n` threads
  // wait on this clock. Returns false on timeout.
  bool WaitForWaiters(int n, std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  struct Waiter {
    Instant deadline;
    std::mutex* mu;
    std::condition_variable* cv;
    int notifying = 0;  // wakers between copying this entry and notifying it
  };

  std::mutex mu_;
  std::condition_variable changed_;  // waiters registered/left, notifications done
  Instant now_;                      // guarded by mu_
  std::list<Waiter> waiters_;        // guarded by mu_
};

}  // namespace sked::testing

#endif  // SKED_TESTING_SIMULATED_CLOCK_H_
