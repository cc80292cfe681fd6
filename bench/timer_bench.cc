// The machine's floor under fire lag: how late a thread parked until an
// instant actually runs. W threads wait on one condition variable through
// the engine's own real clock (Clock::Real()->AwaitWithDeadline, as idle
// workers wait for a reserved fire), all for the same instant, N times, one
// instant every I ms; each wake records how far past the instant it ran.
// No store, no driver, no lock held while measuring: whatever this prints,
// no scheduler on this machine starts a run sooner after its instant.
//
//   sked_timer_bench [--waits N] [--interval-ms I] [--threads W]
//
// docs/performance.md lists the commands and figures.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sked/clock.h"

namespace {

struct Args {
  int waits = 200;
  int interval_ms = 100;
  int threads = 1;
};

bool ParseArgs(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", k.c_str());
      return false;
    }
    const int v = std::atoi(argv[++i]);
    if (k == "--waits") {
      a.waits = v;
    } else if (k == "--interval-ms") {
      a.interval_ms = v;
    } else if (k == "--threads") {
      a.threads = v;
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return false;
    }
  }
  if (a.waits < 1 || a.waits > 1000000 || a.interval_ms < 1 || a.interval_ms > 60000 ||
      a.threads < 1 || a.threads > 1024) {
    std::fprintf(stderr, "--waits is 1-1000000, --interval-ms 1-60000, --threads 1-1024\n");
    return false;
  }
  return true;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

void Print(const char* what, const std::vector<double>& us) {
  std::printf("%-28s p50 %7.0f us  p90 %7.0f us  p99 %7.0f us  max %7.0f us\n", what,
              Percentile(us, 0.50), Percentile(us, 0.90), Percentile(us, 0.99),
              us.empty() ? 0.0 : *std::max_element(us.begin(), us.end()));
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!ParseArgs(argc, argv, a)) return 2;
  sked::Clock* clock = sked::Clock::Real();
  std::mutex mu;
  std::condition_variable cv;
  // Each round's instant, and how late each thread ran past it (one row per
  // round, written by the threads under `mu` after they measured).
  std::vector<sked::Instant> instants(static_cast<size_t>(a.waits));
  std::vector<std::vector<double>> late(static_cast<size_t>(a.waits));
  const sked::Instant first = clock->Now() + std::chrono::milliseconds(a.interval_ms);
  for (int r = 0; r < a.waits; ++r) {
    instants[static_cast<size_t>(r)] = first + std::chrono::milliseconds(a.interval_ms) * r;
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < a.threads; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < a.waits; ++r) {
        const sked::Instant at = instants[static_cast<size_t>(r)];
        std::unique_lock<std::mutex> lock(mu);
        clock->AwaitWithDeadline(lock, cv, at, [] { return false; });
        lock.unlock();
        const double us = std::chrono::duration<double, std::micro>(clock->Now() - at).count();
        lock.lock();
        late[static_cast<size_t>(r)].push_back(us);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<double> firsts, all;
  for (const std::vector<double>& round : late) {
    firsts.push_back(*std::min_element(round.begin(), round.end()));
    all.insert(all.end(), round.begin(), round.end());
  }
  std::printf("%d waits, one instant every %d ms, %d thread(s) per instant\n", a.waits,
              a.interval_ms, a.threads);
  Print("first thread past the instant", firsts);
  Print("every thread past the instant", all);
  return 0;
}
