// Clock: the one way sked reads the time and waits. Nothing in sked reads the
// system clock or sleeps except through a Clock, so tests can drive time with
// a simulated clock (src/testing/simulated_clock.h) and never sleep. One
// exception, on purpose: the executor pool measures how long runs have run in
// real time (steady clock) to decide whether an idle worker joins the busy
// ones (ExecutorPool::WatchActiveWorkers); nothing due, recorded or reported
// depends on it, only how many threads share the work.

#ifndef SKED_CLOCK_H_
#define SKED_CLOCK_H_

#include <condition_variable>
#include <functional>
#include <mutex>

#include "sked/time.h"

namespace sked {

// Implementations are safe for concurrent use from many threads.
class Clock {
 public:
  virtual ~Clock() = default;

  virtual Instant Now() = 0;

  // Blocks until `ready()` is true or the clock reaches `deadline`, whichever
  // comes first, and returns `ready()`. Other threads that change what
  // `ready` reads must do so under `lock`'s mutex and then call
  // `cv.notify_all()`. The lock may be released while waiting.
  // REQUIRES: `lock` holds its mutex; it holds it again on return.
  virtual bool AwaitWithDeadline(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                                 Instant deadline, const std::function<bool()>& ready) = 0;

  // The process-wide real clock (system time).
  static Clock* Real();
};

}  // namespace sked

#endif  // SKED_CLOCK_H_
