// Retention under load: J jobs fire every second (noop driver) on one engine
// while a retention sweep deletes N old settled runs (N / J per job, finished
// 100 days ago; the sweep's policy: max_age 30 days, and the daemon's
// default keep_failures of 10). Reports the fire lag (start - scheduled_for: p50, p99, max)
// over a window before the sweep and while it runs, the sweep's duration and
// its runs deleted per second. --history-jobs K puts all N old runs on the
// first K jobs (N / K each): a few jobs with a long history beside many
// firing. SQLite by default (a fresh file); --url
// postgresql://... runs it on PostgreSQL (in a fresh schema,
// sked_retention_bench).
//
//   sked_retention_bench [--jobs J] [--old-runs N] [--history-jobs K]
//                        [--before S] [--batch B] [--workers W] [--db PATH]
//                        [--url URL]
//
// docs/performance.md lists the commands and figures.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/retention.h"
#include "sked/clock.h"
#include "sked/driver.h"
#include "sked/engine.h"
#include "sked/store.h"
#include "store/postgres/pg_client.h"

namespace {

struct Args {
  int jobs = 1000;
  long old_runs = 1000000;
  int history_jobs = 0;  // jobs holding the old runs (0: all)
  int before = 10;       // seconds of firing measured before the sweep starts
  int batch = 500;
  int workers = 8;
  std::string db = "/tmp/sked-retention-bench.db";
  std::string url;
};

constexpr const char* kSchema = "sked_retention_bench";

bool IsPostgres(const std::string& url) { return url.rfind("postgres", 0) == 0; }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

// Fire lags of scheduled runs, in the phase they started in.
class LagRecorder final : public sked::RunObserver {
 public:
  void OnRunStarted(const sked::Run& run) override {
    if (run.trigger != sked::RunTrigger::kSchedule || !run.started_at) return;
    const double ms =
        std::chrono::duration<double, std::milli>(*run.started_at - run.scheduled_for).count();
    std::lock_guard<std::mutex> l(mu_);
    lags_[phase_].push_back(ms);
  }
  void OnRunFinished(const sked::Run&, const sked::RunOutcome&) override {}
  void OnStoreError(const sked::Status& s) override {
    std::fprintf(stderr, "store error: %s\n", s.ToString().c_str());
  }
  void SetPhase(int phase) {
    std::lock_guard<std::mutex> l(mu_);
    phase_ = phase;
  }
  std::vector<double> Lags(int phase) {
    std::lock_guard<std::mutex> l(mu_);
    return lags_[phase];
  }

 private:
  std::mutex mu_;
  int phase_ = 0;  // 0: warm-up, 1: before the sweep, 2: during it, 3: after
  std::vector<double> lags_[4];
};

void Report(const char* what, const std::vector<double>& lags) {
  const double max = lags.empty() ? 0 : *std::max_element(lags.begin(), lags.end());
  std::printf("%-14s %7zu runs  fire lag p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", what,
              lags.size(), Percentile(lags, 0.5), Percentile(lags, 0.99), max);
}

void SleepFor(sked::Clock* clock, sked::Duration d) {
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  clock->AwaitWithDeadline(lock, cv, clock->Now() + d, [] { return false; });
}

// Writes `per_job` settled runs for each job up to `last_id`, finished about
// 100 days ago,
// through the store's own claim, start and settle (many runs per
// transaction). The claim moves each job's next fire a year on, so that each
// is claimed once; the caller pauses and resumes the jobs afterwards, which
// sets their next fire from now.
bool Seed(sked::Store* store, long per_job, std::int64_t last_id, sked::Instant now) {
  const sked::Instant old = now - std::chrono::hours(24 * 100);
  for (int pass = 0; pass < 1000000; ++pass) {
    sked::ClaimRequest claim{now, now + std::chrono::hours(1), 10, "", now};
    auto claimed = store->ClaimDue(claim, [&](const sked::DueJob& d) {
      sked::FirePlan plan;
      for (long i = 0; d.job.id <= last_id && i < per_job; ++i) {
        sked::NewRun r;
        r.scheduled_for = r.not_before = old + std::chrono::seconds(i);
        plan.runs.push_back(r);
      }
      plan.next_run_at = *d.job.next_run_at + std::chrono::hours(24 * 365);
      return plan;
    });
    if (!claimed.ok()) return false;
    if (claimed->empty()) break;
    for (int round = 0; round < 100000; ++round) {
      auto started = store->StartQueued("seed", now, 5000, now + std::chrono::hours(1));
      if (!started.ok()) return false;
      if (started->empty()) break;
      std::vector<sked::RunOutcome> outcomes;
      for (const sked::Run& r : *started) {
        sked::RunOutcome o;
        o.run_id = r.id;
        o.lease_token = r.lease_token;
        o.finished_at = r.scheduled_for + std::chrono::milliseconds(5);
        o.output = "ok\n";
        outcomes.push_back(o);
        if (outcomes.size() == 512) {
          if (!store->SettleRuns(outcomes).ok()) return false;
          outcomes.clear();
        }
      }
      if (!outcomes.empty() && !store->SettleRuns(outcomes).ok()) return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--jobs")
      a.jobs = std::max(1, std::atoi(v.c_str()));
    else if (k == "--old-runs")
      a.old_runs = std::atol(v.c_str());
    else if (k == "--history-jobs")
      a.history_jobs = std::max(0, std::atoi(v.c_str()));
    else if (k == "--before")
      a.before = std::max(1, std::atoi(v.c_str()));
    else if (k == "--batch")
      a.batch = std::max(1, std::atoi(v.c_str()));
    else if (k == "--workers")
      a.workers = std::atoi(v.c_str());
    else if (k == "--db")
      a.db = v;
    else if (k == "--url")
      a.url = v;
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
    store_options.max_connections = a.workers + 8;
  }
  auto store = sked::Store::Open(a.url, store_options);
  if (!store.ok() || !(*store)->Migrate().ok()) {
    std::fprintf(stderr, "cannot open %s\n", a.url.c_str());
    return 1;
  }
  sked::Clock* clock = sked::Clock::Real();
  auto drivers = sked::DriverRegistry::WithBuiltins();
  LagRecorder lags;
  sked::EngineOptions options;
  options.instance_id = "bench";
  options.workers = a.workers;
  options.min_interval = std::chrono::seconds(1);
  options.observer = &lags;
  sked::Engine engine(options, store->get(), drivers.get(), clock);

  // The jobs (the engine is not started yet), each allowed as many runs at
  // once as the seed starts.
  std::vector<sked::Job> jobs;
  for (int i = 0; i < a.jobs; ++i) {
    sked::JobSpec spec;
    spec.name = "bench-" + std::to_string(i);
    spec.schedule = "* * * * * *";
    spec.driver = "noop";
    spec.overlap = sked::OverlapPolicy::kConcurrent;
    spec.max_concurrent = 1000;
    auto job = engine.CreateJob(spec);
    if (!job.ok()) {
      std::fprintf(stderr, "%s\n", job.status().ToString().c_str());
      return 1;
    }
    jobs.push_back(*job);
  }
  const int holders = a.history_jobs > 0 ? std::min(a.history_jobs, a.jobs) : a.jobs;
  const long per_job = a.old_runs / holders;
  const auto t_seed = std::chrono::steady_clock::now();
  if (!Seed(store->get(), per_job, jobs[holders - 1].id, clock->Now())) {
    std::fprintf(stderr, "seeding the old runs failed\n");
    return 1;
  }
  std::printf("seeded %ld old runs (%ld per job, %d jobs) in %.1f s\n", per_job * holders, per_job,
              holders,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t_seed).count());
  if (IsPostgres(a.url)) {
    auto c = sked::pg::Connection::Open(a.url, kSchema);
    if (c.ok()) (void)(*c)->ExecScript("VACUUM ANALYZE jobs, job_stats, runs");
  }
  for (const sked::Job& j : jobs) {
    if (!engine.PauseJob(j.spec.name).ok() || !engine.ResumeJob(j.spec.name).ok()) {
      std::fprintf(stderr, "cannot resume %s\n", j.spec.name.c_str());
      return 1;
    }
  }
  if (sked::Status s = engine.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  SleepFor(clock, std::chrono::seconds(3));  // warm-up
  lags.SetPhase(1);
  SleepFor(clock, std::chrono::seconds(a.before));
  lags.SetPhase(2);

  sked::RetentionOptions r;
  r.instance_id = "bench";
  r.policy.max_age = std::chrono::hours(24 * 30);
  r.policy.keep_failures = 10;  // the daemon's default ([retention] keep_failures)
  r.batch = a.batch;
  sked::RetentionService retention(r, store->get(), clock);
  const auto t_sweep = std::chrono::steady_clock::now();
  auto deleted = retention.SweepOnce();
  const double sweep_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_sweep).count();
  lags.SetPhase(3);
  engine.Stop();
  if (!deleted.ok() || !*deleted) {
    std::fprintf(stderr, "the sweep failed: %s\n",
                 deleted.ok() ? "lease held" : deleted.status().ToString().c_str());
    return 1;
  }
  std::printf("jobs %d firing every second, workers %d, on %s\n", a.jobs, a.workers,
              IsPostgres(a.url) ? "PostgreSQL" : "SQLite");
  std::printf("sweep: deleted %lld runs in %.1f s (%.0f runs/s, batches of %d)\n",
              static_cast<long long>(**deleted), sweep_s, static_cast<double>(**deleted) / sweep_s,
              a.batch);
  Report("before sweep", lags.Lags(1));
  Report("during sweep", lags.Lags(2));
  return 0;
}
