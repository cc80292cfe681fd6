// Whole-engine workload: N jobs with a cron or interval schedule and the noop
// driver, run for a while on the real clock by one engine; reports job
// creation time, store size, fire lag (start - scheduled_for: p50, p99, max),
// runs per second, the engine's CPU time per run and peak memory. SQLite by
// default (a fresh file); --url postgresql://... runs it on PostgreSQL (in a
// fresh schema, sked_engine_bench).
//
//   sked_engine_bench [--jobs N] [--schedule SCHEDULE] [--seconds S] [--workers W]
//                     [--stagger S] [--start-in S] [--db PATH] [--url URL]
//                     [--create-threads T]
//
// docs/performance.md lists the commands and figures.

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sked/clock.h"
#include "sked/driver.h"
#include "sked/engine.h"
#include "sked/store.h"
#include "sked/time.h"
#include "store/postgres/pg_client.h"

namespace {

struct Args {
  int jobs = 10000;
  std::string schedule = "* * * * * *";
  int seconds = 30;
  int workers = 8;
  std::string db = "/tmp/sked-engine-bench.db";
  int stagger = 0;          // interval schedules: job i starts at (i % stagger) s after a common
                            // start, so that 1/stagger of the jobs is due each second
  int start_in = -1;        // the common start, whole seconds from now (after creation): no job
                            // fires before it; -1: 10 with --stagger, else 3
  std::string url;          // default: sqlite://<db>
  int create_threads = 1;   // jobs are created by this many threads (PostgreSQL: round trips)
  bool per_fire = false;    // --per-fire 1: also the lag of each fire instant's runs
  int claim_ahead_ms = -1;  // -1: the engine's default
};

constexpr const char* kSchema = "sked_engine_bench";

bool IsPostgres(const std::string& url) { return url.rfind("postgres", 0) == 0; }

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// The store's size on disk: the SQLite file and its WAL, or the PostgreSQL
// schema's tables with their indexes and TOAST.
double StoreMiB(const Args& a) {
  if (!IsPostgres(a.url)) {
    std::error_code ec;
    double bytes = 0;
    for (const char* suffix : {"", "-wal"}) {
      const auto n = std::filesystem::file_size(a.db + suffix, ec);
      if (!ec) bytes += static_cast<double>(n);
    }
    return bytes / (1 << 20);
  }
  auto c = sked::pg::Connection::Open(a.url, kSchema);
  if (!c.ok()) return -1;
  auto r = (*c)->Exec(
      "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c JOIN "
      "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
      sked::pg::Params().Add(kSchema));
  return r.ok() ? static_cast<double>(r->Int(0, 0)) / (1 << 20) : -1;
}

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
    else if (k == "--start-in")
      a.start_in = std::atoi(v.c_str());
    else if (k == "--url")
      a.url = v;
    else if (k == "--create-threads")
      a.create_threads = std::max(1, std::atoi(v.c_str()));
    else if (k == "--claim-ahead-ms")
      a.claim_ahead_ms = std::atoi(v.c_str());
    else if (k == "--per-fire")
      a.per_fire = std::atoi(v.c_str()) != 0;
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  sked::StoreOptions store_options;
  if (a.url.empty()) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(a.db + suffix);
    a.url = "sqlite://" + a.db;
  } else if (IsPostgres(a.url)) {
    auto c = sked::pg::Connection::Open(a.url, "public");
    if (!c.ok()) {
      std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
      return 1;
    }
    (void)(*c)->ExecScript(std::string("DROP SCHEMA IF EXISTS ") + kSchema + " CASCADE");
    store_options.schema = kSchema;
    store_options.max_connections = a.workers + a.create_threads + 4;
  }
  auto store = sked::Store::Open(a.url, store_options);
  if (!store.ok() || !(*store)->Migrate().ok()) {
    std::fprintf(stderr, "cannot open %s\n", a.url.c_str());
    return 1;
  }
  auto drivers = sked::DriverRegistry::WithBuiltins();
  sked::EngineOptions options;
  options.instance_id = "bench";
  options.workers = a.workers;
  if (a.claim_ahead_ms >= 0) options.claim_ahead = std::chrono::milliseconds(a.claim_ahead_ms);
  options.min_interval = std::chrono::seconds(1);
  sked::Clock* clock = sked::Clock::Real();
  sked::Engine engine(options, store->get(), drivers.get(), clock);

  const auto t_create = std::chrono::steady_clock::now();
  if (a.start_in < 0) a.start_in = a.stagger > 0 ? 10 : 3;
  const sked::Instant anchor =
      std::chrono::floor<std::chrono::seconds>(clock->Now()) + std::chrono::seconds(a.start_in);
  // Through the engine (validated as `sked job add` would), from
  // create_threads threads taking every create_threads-th job.
  std::atomic<bool> failed{false};
  auto create = [&](int first) {
    for (int i = first; i < a.jobs && !failed; i += a.create_threads) {
      sked::JobSpec spec;
      spec.name = "bench-" + std::to_string(i);
      spec.schedule = a.schedule;
      spec.driver = "noop";
      spec.start_at = anchor + std::chrono::seconds(a.stagger > 0 ? i % a.stagger : 0);
      auto job = engine.CreateJob(spec);
      if (!job.ok()) {
        std::fprintf(stderr, "%s\n", job.status().ToString().c_str());
        failed = true;
      }
    }
  };
  {
    std::vector<std::thread> creators;
    for (int t = 0; t < a.create_threads; ++t) creators.emplace_back(create, t);
    for (std::thread& t : creators) t.join();
  }
  if (failed) return 1;
  const double create_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_create).count();
  if (anchor <= clock->Now()) {
    std::fprintf(stderr, "creating the jobs took past their common start: raise --start-in\n");
  }
  if (IsPostgres(a.url)) {
    // As autovacuum would have done in a database that filled over time: a
    // million rows inserted in minutes are otherwise vacuumed and analyzed
    // while the engine runs, on the same two cores.
    auto c = sked::pg::Connection::Open(a.url, kSchema);
    if (c.ok()) (void)(*c)->ExecScript("VACUUM ANALYZE jobs, job_schedule, job_stats, runs");
  }
  const double store_mib = StoreMiB(a);

  const sked::Instant begin = clock->Now();
  const double cpu_begin = CpuSeconds();
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
  const double cpu_s = CpuSeconds() - cpu_begin;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);  // before the analysis below loads every run

  sked::RunFilter all;
  all.limit = 1 << 30;
  auto runs = (*store)->ListRuns(all);
  if (!runs.ok()) return 1;
  std::vector<double> lag_ms;
  std::map<sked::Instant, std::vector<double>> lag_by_fire;  // --per-fire
  long succeeded = 0, skipped = 0, other = 0;
  // Fires due while the jobs were still being created (before the engine
  // started) start late by the creation time, not by the engine: counted as
  // runs, left out of the lag.
  long before_start = 0;
  sked::Instant first_fire = end;  // runs/s counts from here: --start-in may leave idle time
  for (const sked::Run& r : *runs) {
    if (r.status == sked::RunStatus::kSucceeded) {
      ++succeeded;
      if (r.scheduled_for < begin) {
        ++before_start;
        continue;
      }
      first_fire = std::min(first_fire, r.scheduled_for);
      lag_ms.push_back(
          std::chrono::duration<double, std::milli>(*r.started_at - r.scheduled_for).count());
      if (a.per_fire) lag_by_fire[r.scheduled_for].push_back(lag_ms.back());
    } else if (r.status == sked::RunStatus::kSkipped) {
      ++skipped;
    } else {
      ++other;
    }
  }
  const double secs = std::chrono::duration<double>(end - begin).count();
  double max_lag = lag_ms.empty() ? 0 : *std::max_element(lag_ms.begin(), lag_ms.end());
  const double p50 = Percentile(lag_ms, 0.50), p99 = Percentile(lag_ms, 0.99);
  std::printf("jobs %d  schedule '%s'  workers %d  run for %.1f s on %s\n", a.jobs,
              a.schedule.c_str(), a.workers, secs, IsPostgres(a.url) ? "PostgreSQL" : "SQLite");
  std::printf("jobs created in %.1f s (%.0f jobs/s, %d threads); store %.1f MiB after creation\n",
              create_s, static_cast<double>(a.jobs) / create_s, a.create_threads, store_mib);
  const double firing = std::chrono::duration<double>(end - std::max(begin, first_fire)).count();
  std::printf(
      "runs: %ld succeeded, %ld skipped, %ld other; %.0f runs/s over the %.1f s from the "
      "first fire\n",
      succeeded, skipped, other, firing > 0 ? static_cast<double>(succeeded) / firing : 0.0,
      firing);
  std::printf(
      "fire lag (start - scheduled_for) of the %zu fires due after the engine started: p50 %.2f "
      "ms  p99 %.2f ms  max %.2f ms (%ld due before, while jobs were created)\n",
      lag_ms.size(), p50, p99, max_lag, before_start);
  for (auto& [fire, lags] : lag_by_fire) {
    std::printf("  fire %s: %zu runs, lag min %.2f ms  p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
                sked::FormatRfc3339Utc(fire).c_str(), lags.size(),
                *std::min_element(lags.begin(), lags.end()), Percentile(lags, 0.50),
                Percentile(lags, 0.99), *std::max_element(lags.begin(), lags.end()));
  }
  std::printf("engine CPU %.1f s (%.1f us per run)  peak RSS %.1f MiB\n", cpu_s,
              succeeded > 0 ? cpu_s * 1e6 / static_cast<double>(succeeded) : 0.0,
              static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}
