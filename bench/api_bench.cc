// The REST API under load beside a busy engine, on one process and an SQLite
// file: `--jobs` jobs (default 10,000), `--firing` of them (default 1,000)
// firing every second with the noop driver, and `--runs` finished runs
// (default 1,000,000) written straight into the store before the engine
// starts. Six phases of `--seconds` each:
//   1. the engine alone (the fire-lag baseline);
//   2. `--clients` threads paging GET /api/v1/runs (limit 50, from a random
//      cursor, so pages come from anywhere in the million);
//   3. the same clients scraping GET /metrics;
//   4. a dashboard's refresh: GET /api/v1/jobs?limit=50&recent=12 (a page from
//      anywhere, each job with its 12 newest runs);
//   5. GET /api/v1/summary (job counts by state, failing and late jobs);
//   6. GET /api/v1/instances (each with its running runs).
// Each phase reports requests/s and latency (p50, p99, max) on loopback, and
// the engine's fire lag (start - scheduled_for: p50, p99, max) in it.
//
//   sked_api_bench [--jobs N] [--firing N] [--runs N] [--seconds S] [--clients C]
//                  [--db PATH]
//
// docs/performance.md lists the command and figures.

#include <httplib.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "daemon/config.h"
#include "daemon/logger.h"
#include "server/api_server.h"
#include "server/auth.h"
#include "server/timed_store.h"
#include "sked/clock.h"
#include "sked/driver.h"
#include "sked/engine.h"
#include "sked/store.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  int jobs = 10000;
  int firing = 1000;
  long runs = 1000000;
  int seconds = 10;
  int clients = 4;
  std::string db = "/tmp/sked-api-bench.db";
};

// Fire lags of runs started while a phase is on.
class LagRecorder final : public sked::RunObserver {
 public:
  void OnRunStarted(const sked::Run& run) override {
    if (!run.started_at || run.trigger != sked::RunTrigger::kSchedule) return;
    const double ms =
        std::chrono::duration<double, std::milli>(*run.started_at - run.scheduled_for).count();
    std::lock_guard<std::mutex> l(mu_);
    if (on_) lags_.push_back(ms);
  }
  void OnRunFinished(const sked::Run&, const sked::RunOutcome&) override {}
  void OnStoreError(const sked::Status& s) override {
    std::fprintf(stderr, "store error: %s\n", s.message().c_str());
  }
  void Begin() {
    std::lock_guard<std::mutex> l(mu_);
    lags_.clear();
    on_ = true;
  }
  std::vector<double> End() {
    std::lock_guard<std::mutex> l(mu_);
    on_ = false;
    return std::move(lags_);
  }

 private:
  std::mutex mu_;
  bool on_ = false;
  std::vector<double> lags_;
};

double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

void Report(const char* phase, std::vector<double> latencies, long errors, double seconds,
            std::vector<double> lags) {
  std::printf("%-22s", phase);
  if (!latencies.empty() || errors > 0) {
    const double n = static_cast<double>(latencies.size());
    std::printf(" %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  errors %ld |", n / seconds,
                Quantile(latencies, 0.5), Quantile(latencies, 0.99),
                latencies.empty() ? 0 : *std::max_element(latencies.begin(), latencies.end()),
                errors);
  }
  std::printf(" fire lag p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  (%zu runs)\n",
              Quantile(lags, 0.5), Quantile(lags, 0.99),
              lags.empty() ? 0 : *std::max_element(lags.begin(), lags.end()), lags.size());
  std::fflush(stdout);
}

// Writes `n` finished runs spread over the first `jobs` jobs (ids 1..jobs)
// in one transaction: the history a busy installation has after weeks.
bool FillRuns(const std::string& db, long n, int jobs, sked::Instant before) {
  sqlite3* h = nullptr;
  if (sqlite3_open(db.c_str(), &h) != SQLITE_OK) return false;
  const long long end_us = before.time_since_epoch().count();
  const std::string sql =
      "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < " +
      std::to_string(n) +
      ") INSERT INTO runs (job_id, scheduled_for, attempt, trigger, status, priority, queued_at, "
      "not_before, started_at, finished_at, instance_id, exit_code, output) SELECT (i % " +
      std::to_string(jobs) + ") + 1, " + std::to_string(end_us) +
      " - i * 1000000, 1, 'schedule', 'succeeded', 0, " + std::to_string(end_us) +
      " - i * 1000000, " + std::to_string(end_us) + " - i * 1000000, " + std::to_string(end_us) +
      " - i * 1000000, " + std::to_string(end_us) +
      " - i * 1000000 + 2000, 'bench', 0, 'tick' || char(10) FROM c";
  char* err = nullptr;
  const bool ok = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK;
  if (!ok) std::fprintf(stderr, "filling runs: %s\n", err);
  sqlite3_free(err);
  sqlite3_close(h);
  return ok;
}

// `clients` threads calling `path()` for `seconds`; latencies in ms.
void Load(const std::string& host, int port, const std::string& token, int clients, int seconds,
          const std::function<std::string(std::mt19937_64&)>& path, std::vector<double>* latencies,
          long* errors) {
  std::mutex mu;
  std::atomic<long> failed{0};
  const auto until = Clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client(host, port);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      client.set_read_timeout(std::chrono::seconds(30));
      const httplib::Headers headers = {{"Authorization", "Bearer " + token}};
      std::mt19937_64 rng(static_cast<std::uint64_t>(c) + 1);
      std::vector<double> mine;
      while (Clock::now() < until) {
        const std::string p = path(rng);
        const auto start = Clock::now();
        auto res = client.Get(p.c_str(), headers);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        if (!res || res->status != 200) {
          ++failed;
          continue;
        }
        mine.push_back(ms);
      }
      std::lock_guard<std::mutex> l(mu);
      latencies->insert(latencies->end(), mine.begin(), mine.end());
    });
  }
  for (std::thread& t : threads) t.join();
  *errors = failed;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--jobs") {
      a.jobs = std::atoi(v);
    } else if (k == "--firing") {
      a.firing = std::atoi(v);
    } else if (k == "--runs") {
      a.runs = std::atol(v);
    } else if (k == "--seconds") {
      a.seconds = std::atoi(v);
    } else if (k == "--clients") {
      a.clients = std::atoi(v);
    } else if (k == "--db") {
      a.db = v;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (a.firing > a.jobs || a.jobs < 1 || a.seconds < 1 || a.clients < 1 || a.runs < 0) {
    std::fprintf(stderr, "bad arguments\n");
    return 2;
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(a.db + suffix);
  auto store = sked::Store::Open("sqlite://" + a.db);
  if (!store.ok() || !(*store)->Migrate().ok()) {
    std::fprintf(stderr, "cannot open %s\n", a.db.c_str());
    return 1;
  }
  auto drivers = sked::DriverRegistry::WithBuiltins();
  LagRecorder lags;
  sked::EngineOptions options;
  options.workers = 16;
  options.min_interval = std::chrono::seconds(1);
  options.observer = &lags;
  sked::server::StoreTimings timings;
  sked::server::TimedStore timed(store->get(), &timings);
  sked::Engine engine(options, &timed, drivers.get(), sked::Clock::Real());

  const auto t0 = Clock::now();
  for (int i = 0; i < a.jobs; ++i) {
    sked::JobSpec spec;
    spec.name = "job-" + std::to_string(i);
    spec.driver = "noop";
    spec.schedule = i < a.firing ? "* * * * * *" : "@yearly";
    spec.tags = {i % 2 == 0 ? "even" : "odd"};
    if (auto j = engine.CreateJob(spec); !j.ok()) {
      std::fprintf(stderr, "%s\n", j.status().ToString().c_str());
      return 1;
    }
  }
  const sked::Instant now = sked::Clock::Real()->Now();
  if (!FillRuns(a.db, a.runs, a.jobs, now)) return 1;
  std::printf("store: %d jobs (%d firing every second), %ld runs, ready in %.1f s\n", a.jobs,
              a.firing, a.runs, std::chrono::duration<double>(Clock::now() - t0).count());

  auto minted =
      sked::server::MintToken(**store, "bench", sked::server::Role::kViewer, "bench", now);
  if (!minted.ok()) return 1;
  std::FILE* devnull = std::fopen("/dev/null", "w");
  sked::daemon::Logger log(sked::daemon::LogLevel::kWarn, sked::daemon::LogFormat::kText, devnull,
                           sked::Clock::Real());
  sked::server::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.threads = std::max(8, a.clients + 2);
  sked::server::ApiServer api(
      so, {&engine, store->get(), sked::Clock::Real(), &log, options, &timings, {}, {}});
  if (!engine.Start().ok() || !api.Start().ok()) {
    std::fprintf(stderr, "cannot start\n");
    return 1;
  }
  const std::string url = api.url();  // http://127.0.0.1:PORT
  const int port = std::atoi(url.substr(url.rfind(':') + 1).c_str());
  std::this_thread::sleep_for(std::chrono::seconds(3));  // warm-up: caches, first claims

  lags.Begin();
  std::this_thread::sleep_for(std::chrono::seconds(a.seconds));
  Report("engine alone", {}, 0, a.seconds, lags.End());

  // One phase: the clients ask for what `path` gives, for --seconds.
  auto phase = [&](const char* name, auto path) {
    std::vector<double> latencies;
    long errors = 0;
    lags.Begin();
    Load("127.0.0.1", port, minted->secret, a.clients, a.seconds, path, &latencies, &errors);
    Report(name, std::move(latencies), errors, a.seconds, lags.End());
  };
  auto fixed = [](const char* path) {
    return [path](std::mt19937_64&) { return std::string(path); };
  };
  // The newest run id is about runs + what the engine added; a cursor picks a page anywhere.
  const long top = a.runs;
  phase("GET /api/v1/runs", [top](std::mt19937_64& rng) {
    const long cursor = std::uniform_int_distribution<long>(51, top)(rng);
    return "/api/v1/runs?limit=50&cursor=" + std::to_string(cursor);
  });
  phase("GET /metrics", fixed("/metrics"));
  // What a dashboard's refresh asks: a page of jobs with their newest runs, and the counts.
  const int jobs = a.jobs;
  phase("GET jobs?recent=12", [jobs](std::mt19937_64& rng) {
    const long cursor = std::uniform_int_distribution<long>(0, std::max(0, jobs - 50))(rng);
    return "/api/v1/jobs?limit=50&recent=12&cursor=" + std::to_string(cursor + 1);
  });
  phase("GET /api/v1/summary", fixed("/api/v1/summary"));
  phase("GET /api/v1/instances", fixed("/api/v1/instances"));

  api.Stop();
  engine.Stop();
  std::fclose(devnull);
  return 0;
}
