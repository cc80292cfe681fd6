// Whole-engine workload on SQLite: N jobs with a cron schedule and the noop
// driver, run for a while on the real clock; reports fire lag (start -
// scheduled_for: p50, p99, max), runs per second and peak memory.
//
//   sked_engine_bench [--jobs N] [--schedule SCHEDULE] [--seconds S] [--workers W]
//                     [--stagger S] [--db PATH]
//
// docs/performance.md lists the commands and figures.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "sked/clock.h"
#include "sked/driver.h"
#include "sked/engine.h"
#include "sked/store.h"

namespace {

struct Args {
  int jobs = 10000;
  std::string schedule = "* * * * * *";
  int seconds = 30;
  int workers = 8;
  std::string db = "/tmp/sked-engine-bench.db";
  int stagger = 0;  // interval schedules: job i starts at (i % stagger) s after a common
                    // start 10 s from now, so that 1/stagger of the jobs is due each second
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--jobs")
      a.jobs = std::atoi(v.c_str());
    else if (k == "--schedule")
      a.schedule = v;
    else if (k == "--seconds")
      a.seconds = std::atoi(v.c_str());
    else if (k == "--workers")
      a.workers = std::atoi(v.c_str());
    else if (k == "--db")
      a.db = v;
    else if (k == "--stagger")
      a.stagger = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(a.db + suffix);
  auto store = sked::Store::Open("sqlite://" + a.db);
  if (!store.ok() || !(*store)->Migrate().ok()) {
    std::fprintf(stderr, "cannot open %s\n", a.db.c_str());
    return 1;
  }
  auto drivers = sked::DriverRegistry::WithBuiltins();
  sked::EngineOptions options;
  options.instance_id = "bench";
  options.workers = a.workers;
  options.min_interval = std::chrono::seconds(1);
  sked::Clock* clock = sked::Clock::Real();
  sked::Engine engine(options, store->get(), drivers.get(), clock);

  const auto t_create = std::chrono::steady_clock::now();
  const sked::Instant anchor =
      std::chrono::floor<std::chrono::seconds>(clock->Now()) + std::chrono::seconds(10);
  for (int i = 0; i < a.jobs; ++i) {
    sked::JobSpec spec;
    spec.name = "bench-" + std::to_string(i);
    spec.schedule = a.schedule;
    spec.driver = "noop";
    if (a.stagger > 0) spec.start_at = anchor + std::chrono::seconds(i % a.stagger);
    auto job = engine.CreateJob(spec);
    if (!job.ok()) {
      std::fprintf(stderr, "%s\n", job.status().ToString().c_str());
      return 1;
    }
  }
  const double create_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_create).count();

  const sked::Instant begin = clock->Now();
  if (sked::Status s = engine.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::mutex mu;
  std::condition_variable cv;
  {
    std::unique_lock<std::mutex> lock(mu);
    clock->AwaitWithDeadline(lock, cv, begin + std::chrono::seconds(a.seconds),
                             [] { return false; });
  }
  engine.Stop();
  const sked::Instant end = clock->Now();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);  // before the analysis below loads every run

  sked::RunFilter all;
  all.limit = 1 << 30;
  auto runs = (*store)->ListRuns(all);
  if (!runs.ok()) return 1;
  std::vector<double> lag_ms;
  long succeeded = 0, skipped = 0, other = 0;
  for (const sked::Run& r : *runs) {
    if (r.status == sked::RunStatus::kSucceeded) {
      ++succeeded;
      lag_ms.push_back(
          std::chrono::duration<double, std::milli>(*r.started_at - r.scheduled_for).count());
    } else if (r.status == sked::RunStatus::kSkipped) {
      ++skipped;
    } else {
      ++other;
    }
  }
  const double secs = std::chrono::duration<double>(end - begin).count();
  double max_lag = lag_ms.empty() ? 0 : *std::max_element(lag_ms.begin(), lag_ms.end());
  const double p50 = Percentile(lag_ms, 0.50), p99 = Percentile(lag_ms, 0.99);
  std::printf("jobs %d  schedule '%s'  workers %d  run for %.1f s (jobs created in %.1f s)\n",
              a.jobs, a.schedule.c_str(), a.workers, secs, create_s);
  std::printf("runs: %ld succeeded, %ld skipped, %ld other; %.0f runs/s\n", succeeded, skipped,
              other, static_cast<double>(succeeded) / secs);
  std::printf("fire lag (start - scheduled_for): p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", p50, p99,
              max_lag);
  std::printf("peak RSS %.1f MiB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}
