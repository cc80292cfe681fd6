#include "testing/simulated_clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace sked::testing {
namespace {

using std::chrono::seconds;

const Instant kStart = Instant(seconds(1'800'000'000));

TEST(SimulatedClockTest, DoesNotTickOnItsOwn) {
  SimulatedClock clock(kStart);
  EXPECT_EQ(clock.Now(), kStart);
  EXPECT_EQ(clock.AdvanceTime(seconds(5)), 0);
  EXPECT_EQ(clock.Now(), kStart + seconds(5));
  clock.SetTime(kStart);  // never backwards
  EXPECT_EQ(clock.Now(), kStart + seconds(5));
}

TEST(SimulatedClockTest, ReadyPredicateReturnsAtOnce) {
  SimulatedClock clock(kStart);
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  EXPECT_TRUE(clock.AwaitWithDeadline(lock, cv, kStart + seconds(10), [] { return true; }));
  EXPECT_FALSE(clock.AwaitWithDeadline(lock, cv, kStart, [] { return false; }));
}

TEST(SimulatedClockTest, AdvancingPastTheDeadlineWakesTheWaiter) {
  SimulatedClock clock(kStart);
  std::mutex mu;
  std::condition_variable cv;
  bool result = true;
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    result = clock.AwaitWithDeadline(lock, cv, kStart + seconds(10), [] { return false; });
  });
  ASSERT_TRUE(clock.WaitForWaiters(1));
  EXPECT_EQ(*clock.EarliestWakeupTime(), kStart + seconds(10));
  EXPECT_EQ(clock.AdvanceTime(seconds(9)), 0);
  EXPECT_EQ(clock.AdvanceTime(seconds(1)), 1);
  waiter.join();
  EXPECT_FALSE(result);
  EXPECT_EQ(clock.WaiterCount(), 0);
}

TEST(SimulatedClockTest, ANotifiedConditionEndsTheWaitEarly) {
  SimulatedClock clock(kStart);
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  bool result = false;
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    result = clock.AwaitWithDeadline(lock, cv, kStart + seconds(3600), [&] { return ready; });
  });
  ASSERT_TRUE(clock.WaitForWaiters(1));
  {
    std::lock_guard<std::mutex> l(mu);
    ready = true;
  }
  cv.notify_all();
  waiter.join();
  EXPECT_TRUE(result);
  EXPECT_EQ(clock.Now(), kStart);
}

TEST(SimulatedClockTest, ManyWaitersWakeInDeadlineOrder) {
  SimulatedClock clock(kStart);
  std::mutex mu;
  std::condition_variable cv;
  std::condition_variable woke_cv;
  std::vector<int> woke;
  std::vector<std::thread> threads;
  for (int i = 1; i <= 4; ++i) {
    threads.emplace_back([&, i] {
      std::unique_lock<std::mutex> lock(mu);
      clock.AwaitWithDeadline(lock, cv, kStart + seconds(i * 10), [] { return false; });
      woke.push_back(i);
      woke_cv.notify_all();
    });
  }
  ASSERT_TRUE(clock.WaitForWaiters(4));
  EXPECT_EQ(clock.AdvanceTime(seconds(25)), 2);
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(woke_cv.wait_for(lock, seconds(10), [&] { return woke.size() == 2; }));
    EXPECT_EQ(woke[0] + woke[1], 3);
  }
  EXPECT_EQ(clock.AdvanceTime(seconds(100)), 2);
  for (auto& t : threads) t.join();
  ASSERT_EQ(woke.size(), 4u);
  EXPECT_EQ(woke[2] + woke[3], 7);
}

// Wakers that keep finding a leaving waiter due (a test stepping time in a
// loop) must not touch its entry after it left (ASan caught one that did).
TEST(SimulatedClockTest, AWaiterLeavesSafelyWhileTimeKeepsStepping) {
  SimulatedClock clock(kStart);
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    std::mutex mu;
    std::condition_variable cv;
    for (int i = 0; i < 2000; ++i) {
      std::unique_lock<std::mutex> lock(mu);
      clock.AwaitWithDeadline(lock, cv, clock.Now() + std::chrono::microseconds(1),
                              [] { return false; });
    }
    done = true;
  });
  auto step = [&] {
    for (long i = 0; i < 20'000'000 && !done; ++i) clock.AdvanceTime(std::chrono::microseconds(1));
  };
  std::thread stepper(step);
  step();
  stepper.join();
  waiter.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(clock.WaiterCount(), 0);
}

}  // namespace
}  // namespace sked::testing
