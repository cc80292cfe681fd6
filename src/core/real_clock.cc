#include <chrono>

#include "sked/clock.h"

namespace sked {
namespace {

class RealClock final : public Clock {
 public:
  Instant Now() override {
    return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
  }

  bool AwaitWithDeadline(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         Instant deadline, const std::function<bool()>& ready) override {
    // Wait on the steady clock so a wall-clock step cannot stretch the wait;
    // re-read the wall clock after each wake to honour the deadline exactly.
    while (!ready()) {
      const Duration left = deadline - Now();
      if (left <= Duration::zero()) return ready();
      cv.wait_for(lock, left);
    }
    return true;
  }
};

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();
  return clock;
}

}  // namespace sked
