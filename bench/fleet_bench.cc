// Fleet benchmarks on PostgreSQL: engines (each with its own store handle,
// as separate processes would have) sharing one database schema.
//
//   sked_fleet_bench burst   --url URL [--instances N] [--runs R] [--workers W]
//       R noop jobs all due at one instant: executions per second from that
//       instant until the last run finished, and fire lag.
//   sked_fleet_bench steady  --url URL [--instances N] [--jobs J] [--seconds S] [--workers W]
//                            [--per-fire 1]
//       J jobs firing every second for S seconds: fire lag p50/p99/max, of
//       all fires and of those after the first three (the engines' warm-up);
//       --per-fire 1: each fire instant's lag by instance.
//       burst and steady also print each instance's claim transactions, and how
//       many of them claimed nothing.
//   sked_fleet_bench queue   --url URL [--instances N] [--runs R] [--workers W]
//       R noop runs queued (manual triggers) before the engines start: how fast
//       the fleet drains the shared queue.
//   sked_fleet_bench trigger --url URL [--triggers T]
//       one running instance; another handle triggers a job T times, one at a
//       time: trigger-to-start latency (queued_at to started_at).
//
// Every mode takes --claim-batch B (EngineOptions::claim_batch: fires claimed
// and queued runs reserved per transaction; 512 by default).
// Each run uses a fresh schema (sked_bench) that it drops first.
// docs/performance.md lists the commands and figures.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sked/clock.h"
#include "sked/driver.h"
#include "sked/engine.h"
#include "sked/store.h"
#include "sked/time.h"
#include "store/forwarding_store.h"
#include "store/postgres/pg_client.h"

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct Args {
  std::string mode;
  std::string url;
  int instances = 1;
  int runs = 10000;
  int jobs = 1000;
  int seconds = 30;
  int workers = 16;
  int triggers = 100;
  int claim_batch = 512;
  bool per_fire = false;  // steady --per-fire 1: each fire instant's lag by instance
};

// steady: the fires of the first seconds, the engines' warm-up, are also
// reported apart.
constexpr sked::Duration kSteadyWarmUp = std::chrono::seconds(3);

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

double Ms(sked::Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void SleepUntil(sked::Instant t) {
  const sked::Duration left = t - sked::Clock::Real()->Now();
  if (left > sked::Duration(0)) std::this_thread::sleep_for(left);
}

constexpr const char* kSchema = "sked_bench";

std::unique_ptr<sked::Store> OpenStore(const Args& a) {
  sked::StoreOptions options;
  options.schema = kSchema;
  options.max_connections = a.workers + 4;
  auto s = sked::Store::Open(a.url, options);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*s);
}

// Refreshes the planner's statistics after the set-up, as autovacuum would
// have in a database that filled over time: the set-up writes thousands of
// rows within seconds of creating the tables, and plans made for empty
// tables (a sort of the whole queue per batch) would measure the set-up.
void Analyze(const Args& a) {
  auto c = sked::pg::Connection::Open(a.url, kSchema);
  if (c.ok()) (void)(*c)->ExecScript("ANALYZE jobs, job_stats, runs");
}

// Counts an engine's claim transactions, and those that claimed nothing
// (every due fire locked by a peer's claim, or none due): how often an
// instance asks for fires it cannot have.
class CountingStore final : public sked::ForwardingStore {
 public:
  explicit CountingStore(std::unique_ptr<sked::Store> base)
      : ForwardingStore(base.get()), base_(std::move(base)) {}
  sked::Result<std::vector<sked::Run>> ClaimDue(
      const sked::ClaimRequest& request,
      const std::function<sked::FirePlan(const sked::DueJob&)>& plan) override {
    bool planned = false;
    auto runs = ForwardingStore::ClaimDue(request, [&](const sked::DueJob& due) {
      planned = true;
      return plan(due);
    });
    ++claims;
    if (!planned) ++empty_claims;
    return runs;
  }
  std::atomic<long> claims{0};
  std::atomic<long> empty_claims{0};

 private:
  std::unique_ptr<sked::Store> base_;
};

// A fleet of engines in this process, each on its own store handle.
struct Fleet {
  std::vector<std::unique_ptr<CountingStore>> stores;
  std::vector<std::unique_ptr<sked::Engine>> engines;
  std::unique_ptr<sked::DriverRegistry> drivers = sked::DriverRegistry::WithBuiltins();

  void Start(const Args& a, int n) {
    for (int i = 0; i < n; ++i) {
      stores.push_back(std::make_unique<CountingStore>(OpenStore(a)));
      sked::EngineOptions options;
      options.instance_id = "bench-" + std::to_string(i);
      options.workers = a.workers;
      options.claim_batch = a.claim_batch;
      options.min_interval = seconds(1);
      options.heartbeat = seconds(1);  // peers see each other quickly
      options.lease = seconds(10);
      engines.push_back(std::make_unique<sked::Engine>(options, stores.back().get(), drivers.get(),
                                                       sked::Clock::Real()));
    }
    // Together, as instances of a fleet would be running already: one after
    // the other, the last began ~60 ms after the first (each start writes
    // its heartbeat and claims once), and the first took the queue's head
    // alone meanwhile.
    std::vector<sked::Status> started(engines.size());
    std::vector<std::thread> starting;
    for (size_t i = 0; i < engines.size(); ++i) {
      starting.emplace_back([&, i] { started[i] = engines[i]->Start(); });
    }
    for (std::thread& t : starting) t.join();
    for (const sked::Status& s : started) {
      if (!s.ok()) {
        std::fprintf(stderr, "%s\n", s.ToString().c_str());
        std::exit(1);
      }
    }
  }
  void Stop() {
    for (auto& e : engines) e->Stop();
  }
  // Claim transactions by instance (after Stop).
  void PrintClaims() const {
    std::printf("claim transactions:");
    for (size_t i = 0; i < stores.size(); ++i) {
      std::printf(" bench-%zu=%ld (%ld claimed nothing)", i, stores[i]->claims.load(),
                  stores[i]->empty_claims.load());
    }
    std::printf("\n");
  }
};

// Waits (at most `limit`) until `total` runs have ended, asking the server
// for a count: reading every run while the fleet works would take a good
// share of the machine from it.
void WaitForEnded(const Args& a, long total, sked::Duration limit) {
  auto c = sked::pg::Connection::Open(a.url, kSchema);
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
    std::exit(1);
  }
  const sked::Instant give_up = sked::Clock::Real()->Now() + limit;
  while (sked::Clock::Real()->Now() < give_up) {
    std::this_thread::sleep_for(milliseconds(50));
    auto r = (*c)->Exec("SELECT count(*) FROM runs WHERE status NOT IN ('queued', 'running')",
                        sked::pg::Params());
    if (r.ok() && r->Int(0, 0) >= total) return;
  }
}

std::vector<sked::Run> AllRuns(sked::Store* store) {
  sked::RunFilter all;
  all.limit = 1 << 30;
  auto runs = store->ListRuns(all);
  return runs.ok() ? *runs : std::vector<sked::Run>();
}

// Creates n jobs like `spec`, named bench-0 .. bench-(n-1), through an engine
// that is never started (validated as `sked job add` would).
void CreateJobs(sked::Store* admin_store, int n, sked::JobSpec spec) {
  auto drivers = sked::DriverRegistry::WithBuiltins();
  sked::EngineOptions options;
  options.min_interval = seconds(1);
  sked::Engine admin(options, admin_store, drivers.get(), sked::Clock::Real());
  spec.driver = "noop";
  for (int i = 0; i < n; ++i) {
    spec.name = "bench-" + std::to_string(i);
    auto job = admin.CreateJob(spec);
    if (!job.ok()) {
      std::fprintf(stderr, "%s\n", job.status().ToString().c_str());
      std::exit(1);
    }
  }
}

sked::JobSpec EverySecond(sked::Instant start, sked::Instant end) {
  sked::JobSpec spec;
  spec.schedule = "* * * * * *";
  spec.start_at = start;
  spec.end_at = end;
  return spec;
}

// Succeeded runs: how many, by instance, the first start and last finish.
struct Tally {
  long succeeded = 0;
  std::map<std::string, long> by_instance;
  sked::Instant first_start = sked::Instant::max();
  sked::Instant last_finish = sked::Instant::min();
};
Tally CountSucceeded(const std::vector<sked::Run>& runs) {
  Tally t;
  for (const sked::Run& r : runs) {
    if (r.status != sked::RunStatus::kSucceeded) continue;
    ++t.succeeded;
    ++t.by_instance[r.instance_id];
    t.first_start = std::min(t.first_start, *r.started_at);
    t.last_finish = std::max(t.last_finish, *r.finished_at);
  }
  return t;
}

// The lag of the runs fired at or after `from` (all of them by default).
void PrintLag(const std::vector<sked::Run>& runs, sked::Instant from = sked::Instant::min(),
              const char* which = "") {
  std::vector<double> lag;
  for (const sked::Run& r : runs) {
    if (r.status == sked::RunStatus::kSucceeded && r.scheduled_for >= from) {
      lag.push_back(Ms(*r.started_at - r.scheduled_for));
    }
  }
  const double max = lag.empty() ? 0 : *std::max_element(lag.begin(), lag.end());
  std::printf("fire lag (start - scheduled_for)%s: p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", which,
              Percentile(lag, 0.5), Percentile(lag, 0.99), max);
}

// Each fire instant's lag, by instance: which bursts make the tail.
void PrintLagByFire(const std::vector<sked::Run>& runs) {
  std::map<std::pair<sked::Instant, std::string>, std::vector<double>> by;
  for (const sked::Run& r : runs) {
    if (r.status != sked::RunStatus::kSucceeded) continue;
    by[{r.scheduled_for, r.instance_id}].push_back(Ms(*r.started_at - r.scheduled_for));
  }
  for (auto& [key, lag] : by) {
    std::printf("  fire %s %s: %zu runs, min %.2f  p50 %.2f  p99 %.2f ms\n",
                sked::FormatRfc3339Utc(key.first).c_str(), key.second.c_str(), lag.size(),
                *std::min_element(lag.begin(), lag.end()), Percentile(lag, 0.5),
                Percentile(lag, 0.99));
  }
}

// Starts per 100 ms after `at`, by instance: where a burst stalls.
void PrintTimeline(const std::vector<sked::Run>& runs, sked::Instant at) {
  std::map<long, std::map<std::string, long>> buckets;
  for (const sked::Run& r : runs) {
    if (!r.started_at) continue;
    ++buckets[static_cast<long>(Ms(*r.started_at - at) / 100)][r.instance_id];
  }
  for (const auto& [b, by] : buckets) {
    std::printf("  +%5ld ms:", b * 100);
    for (const auto& [id, n] : by) std::printf(" %s=%ld", id.c_str(), n);
    std::printf("\n");
  }
}

int Burst(const Args& a, sked::Store* admin) {
  const sked::Instant at = std::chrono::ceil<seconds>(sked::Clock::Real()->Now()) + seconds(3) +
                           milliseconds(5 * a.runs);  // time to create the jobs
  CreateJobs(admin, a.runs, EverySecond(at, at + milliseconds(500)));
  Analyze(a);
  Fleet fleet;
  fleet.Start(a, a.instances);
  SleepUntil(at);
  WaitForEnded(a, a.runs, seconds(60));
  fleet.Stop();
  std::vector<sked::Run> runs = AllRuns(admin);
  const Tally t = CountSucceeded(runs);
  const long succeeded = t.succeeded;
  const auto& by_instance = t.by_instance;
  const double secs = std::chrono::duration<double>(std::max(at, t.last_finish) - at).count();
  std::printf("burst: %d noop runs due at one instant, %d instance(s) x %d workers\n", a.runs,
              a.instances, a.workers);
  std::printf("succeeded %ld in %.3f s: %.0f runs/s;", succeeded, secs,
              static_cast<double>(succeeded) / secs);
  for (const auto& [id, n] : by_instance) std::printf(" %s=%ld", id.c_str(), n);
  std::printf("\n");
  PrintLag(runs);
  fleet.PrintClaims();
  if (std::getenv("SKED_BENCH_TIMELINE") != nullptr) PrintTimeline(runs, at);
  return succeeded == a.runs ? 0 : 1;
}

int Steady(const Args& a, sked::Store* admin) {
  // After the jobs are created (a few ms each) and the engines started.
  const sked::Instant start = std::chrono::ceil<seconds>(sked::Clock::Real()->Now()) + seconds(3) +
                              milliseconds(5 * a.jobs);
  const sked::Instant end = start + seconds(a.seconds) - milliseconds(500);
  CreateJobs(admin, a.jobs, EverySecond(start, end));
  Analyze(a);
  Fleet fleet;
  fleet.Start(a, a.instances);
  SleepUntil(end + seconds(2));
  fleet.Stop();
  const std::vector<sked::Run> runs = AllRuns(admin);
  long succeeded = 0, other = 0;
  std::map<std::string, long> others;  // status: reason
  for (const sked::Run& r : runs) {
    if (r.status == sked::RunStatus::kSucceeded) {
      ++succeeded;
    } else {
      ++other;
      ++others[std::string(sked::RunStatusName(r.status)) + ": " + r.reason];
    }
  }
  std::printf("steady: %d jobs every second for %d s, %d instance(s) x %d workers\n", a.jobs,
              a.seconds, a.instances, a.workers);
  std::printf("runs: %ld succeeded, %ld other (expected %ld)\n", succeeded, other,
              static_cast<long>(a.jobs) * a.seconds);
  for (const auto& [what, n] : others) std::printf("  %s: %ld\n", what.c_str(), n);
  PrintLag(runs);
  // The first bursts after the engines start are their warm-up (memory the
  // book first grows into, connections' first statements).
  PrintLag(runs, start + kSteadyWarmUp, ", after the first 3 fires");
  fleet.PrintClaims();
  if (a.per_fire) PrintLagByFire(runs);
  return 0;
}

// The shared queue: R manual runs (10 per job, jobs allow 10 at once)
// queued before the engines start, drained by the fleet.
int Queue(const Args& a, sked::Store* admin) {
  const int per_job = 10;
  const int jobs = std::max(1, a.runs / per_job);
  sked::JobSpec spec;
  spec.schedule = "0 0 1 1 *";
  spec.overlap = sked::OverlapPolicy::kConcurrent;
  spec.max_concurrent = per_job;
  CreateJobs(admin, jobs, spec);
  for (int i = 0; i < jobs; ++i) {
    for (int k = 0; k < per_job; ++k) {
      // A manual run, as `sked job trigger` queues it (one microsecond apart:
      // (job, scheduled_for, attempt) is unique).
      auto job = admin->GetJobByName("bench-" + std::to_string(i));
      sked::NewRun r;
      r.trigger = sked::RunTrigger::kManual;
      r.scheduled_for = sked::Clock::Real()->Now() + sked::Duration(k);
      r.not_before = r.scheduled_for;
      if (!job.ok() || !admin->InsertRun(job->id, r, r.scheduled_for).ok()) {
        std::fprintf(stderr, "could not queue a run of bench-%d\n", i);
        return 1;
      }
    }
  }
  const long total = static_cast<long>(jobs) * per_job;
  Analyze(a);
  const sked::Instant start = sked::Clock::Real()->Now();
  Fleet fleet;
  fleet.Start(a, a.instances);
  WaitForEnded(a, total, seconds(60));
  fleet.Stop();
  std::vector<sked::Run> runs = AllRuns(admin);
  const Tally t = CountSucceeded(runs);
  const long succeeded = t.succeeded;
  const auto& by_instance = t.by_instance;
  const sked::Instant first = t.first_start;
  const double secs = std::chrono::duration<double>(t.last_finish - first).count();
  std::printf(
      "queue: %ld manual runs queued before start (%d jobs x %d), %d instance(s) x %d "
      "workers\n",
      total, jobs, per_job, a.instances, a.workers);
  std::printf(
      "succeeded %ld in %.3f s from the first start: %.0f runs/s (engine start to first "
      "start %.0f ms);",
      succeeded, secs, static_cast<double>(succeeded) / secs, Ms(first - start));
  for (const auto& [id, n] : by_instance) std::printf(" %s=%ld", id.c_str(), n);
  std::printf("\n");
  if (std::getenv("SKED_BENCH_TIMELINE") != nullptr) PrintTimeline(runs, first);
  return succeeded == total ? 0 : 1;
}

int Trigger(const Args& a, sked::Store* admin) {
  sked::JobSpec yearly;
  yearly.schedule = "0 0 1 1 *";
  CreateJobs(admin, 1, yearly);
  Fleet fleet;
  fleet.Start(a, 1);
  std::this_thread::sleep_for(seconds(1));
  auto drivers = sked::DriverRegistry::WithBuiltins();
  sked::EngineOptions options;
  options.min_interval = seconds(1);
  sked::Engine cli(options, admin, drivers.get(), sked::Clock::Real());  // as `sked job trigger`
  std::vector<double> latency;
  for (int i = 0; i < a.triggers; ++i) {
    auto queued = cli.TriggerJob("bench-0");
    if (!queued.ok()) {
      std::fprintf(stderr, "%s\n", queued.status().ToString().c_str());
      return 1;
    }
    for (int poll = 0; poll < 2000; ++poll) {  // at most 2 s
      auto run = admin->GetRun(queued->id);
      if (run.ok() && run->started_at && sked::IsTerminal(run->status)) {
        latency.push_back(Ms(*run->started_at - run->queued_at));
        break;
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
  fleet.Stop();
  const double max = latency.empty() ? 0 : *std::max_element(latency.begin(), latency.end());
  std::printf("trigger-to-start (queued_at to started_at), %zu manual runs from another handle:\n",
              latency.size());
  std::printf("p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", Percentile(latency, 0.5),
              Percentile(latency, 0.99), max);
  return static_cast<int>(latency.size()) == a.triggers ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    std::fprintf(stderr, "usage: sked_fleet_bench burst|steady|queue|trigger --url URL [flags]\n");
    return 2;
  }
  a.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--url") {
      a.url = v;
    } else if (k == "--instances") {
      a.instances = std::atoi(v.c_str());
    } else if (k == "--runs") {
      a.runs = std::atoi(v.c_str());
    } else if (k == "--jobs") {
      a.jobs = std::atoi(v.c_str());
    } else if (k == "--seconds") {
      a.seconds = std::atoi(v.c_str());
    } else if (k == "--workers") {
      a.workers = std::atoi(v.c_str());
    } else if (k == "--claim-batch") {
      a.claim_batch = std::atoi(v.c_str());
      if (a.claim_batch < 1 || a.claim_batch > 100000) {
        std::fprintf(stderr, "--claim-batch is 1-100000\n");
        return 2;
      }
    } else if (k == "--per-fire") {
      a.per_fire = v == "1";
    } else if (k == "--triggers") {
      a.triggers = std::atoi(v.c_str());
    } else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (a.url.empty()) {
    std::fprintf(stderr, "--url is required (e.g. the output of scripts/postgres.sh)\n");
    return 2;
  }
  {
    auto c = sked::pg::Connection::Open(a.url, "public");
    if (!c.ok()) {
      std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
      return 1;
    }
    (void)(*c)->ExecScript(std::string("DROP SCHEMA IF EXISTS ") + kSchema + " CASCADE");
  }
  std::unique_ptr<sked::Store> admin = OpenStore(a);
  if (sked::Status s = admin->Migrate(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  if (a.mode == "burst") return Burst(a, admin.get());
  if (a.mode == "steady") return Steady(a, admin.get());
  if (a.mode == "trigger") return Trigger(a, admin.get());
  if (a.mode == "queue") return Queue(a, admin.get());
  std::fprintf(stderr, "unknown mode %s (burst, steady, queue or trigger)\n", a.mode.c_str());
  return 2;
}
