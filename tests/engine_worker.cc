// A minimal engine process for multi-process tests: runs an engine on a
// store for a bounded time, then stops gracefully.
// Usage: sked_engine_worker STORE_URL INSTANCE_ID SECONDS

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "sked/clock.h"
#include "sked/driver.h"
#include "sked/engine.h"
#include "sked/store.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s STORE_URL INSTANCE_ID SECONDS\n", argv[0]);
    return 2;
  }
  const int seconds = std::atoi(argv[3]);
  if (seconds < 1 || seconds > 600) {
    std::fprintf(stderr, "SECONDS must be 1-600\n");
    return 2;
  }
  auto store = sked::Store::Open(argv[1]);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  if (sked::Status s = (*store)->Migrate(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  auto drivers = sked::DriverRegistry::WithBuiltins();
  sked::EngineOptions options;
  options.instance_id = argv[2];
  options.workers = 4;
  options.min_interval = std::chrono::seconds(1);
  options.poll_interval = std::chrono::milliseconds(100);
  options.lease = std::chrono::seconds(5);
  options.heartbeat = std::chrono::seconds(1);
  options.shutdown_grace = std::chrono::seconds(5);
  sked::Clock* clock = sked::Clock::Real();
  sked::Engine engine(options, store->get(), drivers.get(), clock);
  if (sked::Status s = engine.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  clock->AwaitWithDeadline(lock, cv, clock->Now() + std::chrono::seconds(seconds),
                           [] { return false; });
  lock.unlock();
  engine.Stop();
  return 0;
}
