// The engine on a simulated clock: every run policy, job life, shutdown.
// Time moves only through AdvanceTo(), which steps from one wake-up to the
// next exactly as real time would, and waits for the engine to go idle.

#include "sked/engine.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "cron/cron_test_util.h"
#include "engine/engine_state.h"
#include "store/forwarding_store.h"
#include "testing/simulated_clock.h"

namespace sked {
namespace {

using sked::testing::At;
using sked::testing::SimulatedClock;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

const Instant kT0 = At("2026-01-01T00:00:00Z");

class ThrowingDriver final : public Driver {
 public:
  std::string_view name() const override { return "throws"; }
  std::string_view description() const override { return "throws"; }
  Status Validate(std::string_view) const override { return Status::Ok(); }
  DriverResult Execute(const RunContext&, std::stop_token) override {
    throw std::runtime_error("kaboom");
  }
};

// Records the config of every run it executes.
class RecordingDriver final : public Driver {
 public:
  std::string_view name() const override { return "record"; }
  std::string_view description() const override { return "records each run's config"; }
  Status Validate(std::string_view) const override { return Status::Ok(); }
  DriverResult Execute(const RunContext& ctx, std::stop_token) override {
    std::lock_guard<std::mutex> l(mu_);
    seen_.push_back(ctx.job_name + ":" + ctx.config);
    DriverResult r;
    if (ctx.config == R"({"escape":true})") {  // as the shell driver reports one
      r.escaped_processes = 1;
      r.note = "killed 1 process(es) that left the run's process group and held its output open";
    }
    return r;
  }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> seen_;
};

// Writes "hello\n" as live output, then waits (an hour of the run's clock) for its stop.
class TalkingDriver final : public Driver {
 public:
  std::string_view name() const override { return "talk"; }
  std::string_view description() const override { return "writes, then waits for a stop"; }
  Status Validate(std::string_view) const override { return Status::Ok(); }
  DriverResult Execute(const RunContext& ctx, std::stop_token stop) override {
    starts_.fetch_add(1);
    if (ctx.on_output) ctx.on_output("hello\n");
    std::mutex mu;
    std::condition_variable cv;
    std::stop_callback wake(stop, [&] {
      std::lock_guard<std::mutex> l(mu);
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu);
    ctx.clock->AwaitWithDeadline(lock, cv, ctx.clock->Now() + std::chrono::hours(1),
                                 [&] { return stop.stop_requested(); });
    DriverResult r;
    r.output = "hello\n";
    return r;
  }
  int starts() const { return starts_.load(); }

 private:
  std::atomic<int> starts_{0};
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(Store::Open("sqlite::memory:").value());
    ASSERT_TRUE(store_->Migrate().ok());
    drivers_ = DriverRegistry::WithBuiltins();
    ASSERT_TRUE(drivers_->Register(std::make_unique<ThrowingDriver>()).ok());
    auto talking = std::make_unique<TalkingDriver>();
    talking_ = talking.get();
    ASSERT_TRUE(drivers_->Register(std::move(talking)).ok());
    auto recording = std::make_unique<RecordingDriver>();
    recording_ = recording.get();
    ASSERT_TRUE(drivers_->Register(std::move(recording)).ok());
    options_.instance_id = "test-1";
    options_.workers = 2;
    options_.min_interval = seconds(1);
    options_.lease = seconds(30);
    options_.heartbeat = seconds(10);
    options_.poll_interval = seconds(1);
    options_.shutdown_grace = seconds(5);
  }
  void TearDown() override {
    if (engine_) StopEngine();
  }

  void StartEngine() {
    engine_ = std::make_unique<Engine>(options_, store_.get(), drivers_.get(), &clock_);
    ASSERT_TRUE(engine_->Start().ok());
    ASSERT_TRUE(engine_->WaitIdleForTesting());
  }

  // Stop() may wait on the clock (shutdown grace): move time along meanwhile,
  // one wake-up at a time, for at most 20 s of real time.
  // With `wait_for_grace`, time moves only once Stop() waits out its grace
  // (so it is draining): a fire due meanwhile meets the shutdown, not a
  // running engine.
  void StopEngine(bool wait_for_grace = false) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    const int waiters = clock_.WaiterCount();
    std::thread stopper([&] {
      engine_->Stop();
      std::lock_guard<std::mutex> l(mu);
      done = true;
      cv.notify_all();
    });
    if (wait_for_grace) {
      EXPECT_TRUE(clock_.WaitForWaiters(waiters + 1));
    }
    const auto give_up = std::chrono::steady_clock::now() + seconds(20);
    std::unique_lock<std::mutex> lock(mu);
    while (!done && std::chrono::steady_clock::now() < give_up) {
      const std::optional<Instant> next = clock_.EarliestWakeupTime();
      if (next && *next > clock_.Now()) {
        clock_.SetTime(*next);
      } else {
        cv.wait_for(lock, milliseconds(1), [&] { return done; });  // let woken threads run
      }
    }
    lock.unlock();
    stopper.join();
    engine_.reset();
  }

  // Steps simulated time to `t`, stopping at every wake-up on the way and
  // letting the engine finish what is due there.
  void AdvanceTo(Instant t) {
    ASSERT_TRUE(engine_->WaitIdleForTesting());
    for (int step = 0; step < 100000; ++step) {
      std::optional<Instant> next = clock_.EarliestWakeupTime();
      if (!next || *next > t) break;
      clock_.SetTime(*next);
      ASSERT_TRUE(engine_->WaitIdleForTesting())
          << "engine not idle at " << FormatRfc3339Utc(clock_.Now(), 3);
    }
    clock_.SetTime(t);
    ASSERT_TRUE(engine_->WaitIdleForTesting());
  }

  JobSpec Spec(const std::string& name, const std::string& schedule,
               const std::string& driver = "noop", const std::string& config = "{}") {
    JobSpec s;
    s.name = name;
    s.schedule = schedule;
    s.driver = driver;
    s.driver_config = config;
    return s;
  }

  Job Create(const JobSpec& spec) {
    auto j = engine_->CreateJob(spec);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.value_or(Job());
  }

  // The job's runs, oldest first, as "status@+seconds" (scheduled_for - kT0).
  std::vector<std::string> History(const Job& job) {
    RunFilter f;
    f.job_id = job.id;
    f.limit = 1000;
    std::vector<std::string> out;
    auto runs = store_->ListRuns(f);
    EXPECT_TRUE(runs.ok());
    for (auto it = runs->rbegin(); it != runs->rend(); ++it) {
      out.push_back(
          std::string(RunStatusName(it->status)) + "@" +
          std::to_string(std::chrono::duration_cast<seconds>(it->scheduled_for - kT0).count()) +
          (it->attempt > 1 ? "#" + std::to_string(it->attempt) : ""));
    }
    return out;
  }

  SimulatedClock clock_{kT0};
  std::unique_ptr<Store> store_;
  std::unique_ptr<DriverRegistry> drivers_;
  EngineOptions options_;
  std::unique_ptr<Engine> engine_;
  RecordingDriver* recording_ = nullptr;  // owned by drivers_
  TalkingDriver* talking_ = nullptr;      // owned by drivers_
};

// Waits (at most 10 s of real time) until `done` holds: for what another
// thread does at a simulated instant that WaitIdleForTesting would hurry.
bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return done();
}

using V = std::vector<std::string>;

TEST_F(EngineTest, FiresOnTimeAndKeepsCounters) {
  StartEngine();
  Job job = Create(Spec("tick", "*/10 * * * * *"));
  EXPECT_EQ(*job.next_run_at, kT0 + seconds(10));
  AdvanceTo(kT0 + seconds(30));
  EXPECT_EQ(History(job), (V{"succeeded@10", "succeeded@20", "succeeded@30"}));
  RunFilter f;
  f.job_id = job.id;
  const std::vector<sked::Run> runs = *engine_->ListRuns(f);
  for (const sked::Run& r : runs) {
    EXPECT_EQ(*r.started_at, r.scheduled_for);  // woken at the due instant
    EXPECT_EQ(r.instance_id, "test-1");
    EXPECT_EQ(r.trigger, RunTrigger::kSchedule);
  }
  Job after = *engine_->GetJob("tick");
  EXPECT_EQ(after.runs, 3);
  EXPECT_EQ(after.successes, 3);
  EXPECT_EQ(*after.last_run_at, kT0 + seconds(30));
  EXPECT_EQ(*after.next_run_at, kT0 + seconds(40));
  MetricsSnapshot m = engine_->Metrics();
  EXPECT_EQ(m.runs_by_status["succeeded"], 3);
  EXPECT_EQ(m.fire_lag.count, 3);
  EXPECT_EQ(m.fire_lag.counts[0], 3);  // all within 1 ms
}

// Another process (the CLI) deletes a job and creates one: the new job runs
// its own command, never the deleted one's, and its runs' ids are new.
// An operator looking at a process that embeds the engine (top -H, ps -L,
// gdb) sees which thread is which.
TEST_F(EngineTest, ItsThreadsAreNamed) {
  options_.workers = 3;
  StartEngine();
  std::map<std::string, int> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    ++names[name];
  }
  EXPECT_EQ(names["sked-loop"], 1);
  EXPECT_EQ(names["sked-settler"], 1);
  EXPECT_EQ(names["sked-worker"], 3);
  EXPECT_EQ(names["sked-lease"], 1);
  EXPECT_EQ(names["sked-reaper"], 1);
}

TEST_F(EngineTest, ANewJobNeverRunsADeletedJobsCommand) {
  StartEngine();
  Job x = Create(Spec("x", "* * * * * *", "record", R"({"cmd":"touch OLD"})"));
  AdvanceTo(kT0 + seconds(2));
  auto x_runs = engine_->ListRuns({});
  ASSERT_TRUE(x_runs.ok());
  ASSERT_FALSE(x_runs->empty());
  std::int64_t max_run = 0;
  for (const sked::Run& r : *x_runs) max_run = std::max(max_run, r.id);
  ASSERT_TRUE(store_->DeleteJob(x.id).ok());  // behind the engine's back
  auto y = store_->CreateJob([&] {
    Job j;
    j.spec = Spec("y", "* * * * * *", "record", R"({"cmd":"touch NEW"})");
    j.next_run_at = kT0 + seconds(3);
    j.created_at = j.updated_at = kT0 + seconds(2);
    return j;
  }());
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_NE(y->id, x.id);
  const size_t before = recording_->seen().size();
  AdvanceTo(kT0 + seconds(6));  // the poll sees the new job
  const std::vector<std::string> seen = recording_->seen();
  ASSERT_GT(seen.size(), before);
  for (size_t i = before; i < seen.size(); ++i) EXPECT_EQ(seen[i], R"(y:{"cmd":"touch NEW"})");
  RunFilter f;
  f.job_id = y->id;
  auto y_runs = engine_->ListRuns(f);
  ASSERT_TRUE(y_runs.ok());
  const std::vector<sked::Run> y_list = *y_runs;
  for (const sked::Run& r : y_list) {
    EXPECT_GT(r.id, max_run);
    EXPECT_EQ(r.status, RunStatus::kSucceeded);
  }
}

// What a driver had to clean up is in the run's record, the metrics and health.
TEST_F(EngineTest, EscapedProcessesAreReportedInTheRunMetricsAndHealth) {
  StartEngine();
  Job job = Create(Spec("escapes", "0 0 1 1 *", "record", R"({"escape":true})"));
  ASSERT_TRUE(engine_->TriggerJob("escapes").ok());
  AdvanceTo(kT0 + seconds(1));
  RunFilter f;
  f.job_id = job.id;
  auto runs = engine_->ListRuns(f);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ(runs->front().status, RunStatus::kSucceeded);
  EXPECT_EQ(runs->front().reason,
            "killed 1 process(es) that left the run's process group and held its output open");
  EXPECT_EQ(engine_->Metrics().escaped_processes, 1);
  HealthSnapshot h = engine_->Health();
  EXPECT_TRUE(h.healthy);  // a job's doing: a warning, not an issue
  ASSERT_EQ(h.warnings.size(), 1u);
  EXPECT_NE(h.warnings[0].find("1 process(es) left their run's process group"), std::string::npos)
      << h.warnings[0];
}

// One liveness rule: deregistered is stopped; no heartbeat within the lease
// is dead; on this host, a process that is gone is dead at once.
TEST(InstanceStateTest, OneRuleForEngineAndCommands) {
  char host[256] = {0};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  const pid_t gone = fork();
  if (gone == 0) _exit(0);
  ASSERT_GT(gone, 0);
  waitpid(gone, nullptr, 0);  // reaped: no process has this pid now
  const InstanceInfo here_alive{"a", host, ::getpid(), "v", kT0, kT0, {}};
  const InstanceInfo here_gone{"b", host, gone, "v", kT0, kT0, {}};
  const InstanceInfo elsewhere{"c", "another-host", gone, "v", kT0, kT0, {}};
  InstanceInfo stopped = here_alive;
  stopped.stopped_at = kT0;
  const Duration lease = seconds(30);
  EXPECT_EQ(InstanceStateAt(here_alive, kT0 + seconds(1), lease), InstanceState::kAlive);
  EXPECT_EQ(InstanceStateAt(here_gone, kT0 + seconds(1), lease), InstanceState::kDead);
  EXPECT_EQ(InstanceStateAt(elsewhere, kT0 + seconds(1), lease), InstanceState::kAlive);
  EXPECT_EQ(InstanceStateAt(elsewhere, kT0 + seconds(31), lease), InstanceState::kDead);
  EXPECT_EQ(InstanceStateAt(stopped, kT0 + seconds(1), lease), InstanceState::kStopped);
  EXPECT_EQ(InstanceStateName(InstanceState::kDead), "dead");
}

// `sked health` and the serving engine judge the store by one rule.
TEST_F(EngineTest, StoreHealthUsesTheEnginesRules) {
  auto empty = StoreHealthAt(*store_, kT0, seconds(30));
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->healthy);
  ASSERT_EQ(empty->issues.size(), 1u);
  EXPECT_NE(empty->issues[0].find("no sked instance is alive"), std::string::npos);

  StartEngine();
  Job job = Create(Spec("slow", "0 * * * * *", "sleep", R"({"duration": "50s"})"));
  AdvanceTo(kT0 + seconds(61));
  auto serving = StoreHealthAt(*store_, clock_.Now(), seconds(30));
  ASSERT_TRUE(serving.ok());
  EXPECT_TRUE(serving->healthy) << (serving->issues.empty() ? "" : serving->issues[0]);
  ASSERT_EQ(serving->alive.size(), 1u);
  EXPECT_EQ(serving->alive[0].id, "test-1");
  EXPECT_EQ(serving->active_jobs, 1);
  EXPECT_EQ(serving->running_runs, 1);
  EXPECT_EQ(serving->queue_depth, 0);
  // Seen a lease later by a process whose clock is past the run's lease:
  // the run holds an expired lease, for both rules.
  auto later = StoreHealthAt(*store_, clock_.Now() + seconds(31), seconds(300));
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->stale_leases, 1);
  EXPECT_FALSE(later->healthy);
  EXPECT_EQ(later->issues, (std::vector<std::string>{"1 run(s) hold an expired lease"}));
  (void)job;
}

// An idle worker joins those draining a burst only when the runs they
// started block (ExecutorPool, EngineState::JoinWorkersLocked): runs that
// block, here sleeping on the clock, still get every worker, none waiting
// for another to end.
TEST_F(EngineTest, RunsThatBlockGetEveryWorker) {
  options_.workers = 3;
  StartEngine();
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  for (const std::string& name : names) {
    Create(Spec(name, "0 0 1 1 *", "sleep", R"({"duration": "1h"})"));
  }
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  for (const std::string& name : names) ASSERT_TRUE(engine_->TriggerJob(name).ok());
  // Idle only once every worker executes a run (or nothing is left to start).
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  EXPECT_EQ(engine_->Metrics().running, 3);
  RunFilter f;
  f.status = RunStatus::kRunning;
  EXPECT_EQ(engine_->ListRuns(f)->size(), 3u);
}

// A second engine under the id of a live one refuses to start, naming the
// holder; it used to start and mark the live one's runs abandoned.
TEST_F(EngineTest, AnInstanceIdHeldByALiveInstanceIsRefused) {
  StartEngine();
  Job job = Create(Spec("slow", "0 0 1 1 *", "sleep", R"({"duration": "1h"})"));
  ASSERT_TRUE(engine_->TriggerJob("slow").ok());
  AdvanceTo(kT0 + seconds(1));
  Engine second(options_, store_.get(), drivers_.get(), &clock_);
  Status s = second.Start();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("instance id 'test-1' is in use by a live instance (host "),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("pid " + std::to_string(::getpid())), std::string::npos);
  RunFilter f;
  f.job_id = job.id;
  auto runs = store_->ListRuns(f);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ(runs->front().status, RunStatus::kRunning);  // untouched
}

TEST_F(EngineTest, OverlapSkipRecordsSkippedFires) {
  StartEngine();
  Job job = Create(Spec("slow", "*/10 * * * * *", "sleep", R"({"duration": "25s"})"));
  AdvanceTo(kT0 + seconds(45));
  EXPECT_EQ(History(job), (V{"succeeded@10", "skipped@20", "skipped@30", "running@40"}));
  RunFilter skipped;
  skipped.job_id = job.id;
  skipped.status = RunStatus::kSkipped;
  EXPECT_EQ(engine_->ListRuns(skipped)->front().reason, "overlap");
  EXPECT_EQ(engine_->Metrics().skipped_by_reason["overlap"], 2);
}

// The job's (first-attempt) run of the fire at `scheduled_for`, once claimed.
std::optional<sked::Run> RunAt(Store* store, const Job& job, Instant scheduled_for) {
  RunFilter f;
  f.job_id = job.id;
  auto runs = store->ListRuns(f);
  if (!runs.ok()) return std::nullopt;
  for (const sked::Run& r : *runs) {
    if (r.scheduled_for == scheduled_for) return r;
  }
  return std::nullopt;
}

TEST_F(EngineTest, AFireIsClaimedAheadReservedAndStartedAtTheInstant) {
  options_.claim_ahead = milliseconds(200);
  StartEngine();
  Job job = Create(Spec("ahead", "0 * * * * *"));
  AdvanceTo(kT0 + seconds(59) + milliseconds(850));
  auto reserved = RunAt(store_.get(), job, kT0 + seconds(60));
  ASSERT_TRUE(reserved.has_value()) << "claimed 200 ms ahead";
  EXPECT_EQ(reserved->status, RunStatus::kQueued);
  EXPECT_EQ(reserved->instance_id, "test-1");
  EXPECT_TRUE(reserved->lease_expires_at.has_value());
  EXPECT_EQ(*store_->GetJob(job.id)->next_run_at, kT0 + seconds(120));
  AdvanceTo(kT0 + seconds(61));
  sked::Run ran = *RunAt(store_.get(), job, kT0 + seconds(60));
  EXPECT_EQ(ran.status, RunStatus::kSucceeded);
  EXPECT_EQ(*ran.started_at, kT0 + seconds(60));  // from memory, at the instant
  EXPECT_FALSE(ran.lease_expires_at.has_value());
  EXPECT_EQ(engine_->Metrics().fire_lag.counts[0], 1);  // <= 1 ms
}

// Holds one call into a store, once armed, until Release() (at most 20 s of
// real time, so a test ends whatever happens).
class CallGate {
 public:
  void Arm() {
    std::lock_guard<std::mutex> l(mu_);
    armed_ = true;
  }
  bool WaitUntilHeld() {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, seconds(10), [this] { return held_; });
  }
  bool held() {
    std::lock_guard<std::mutex> l(mu_);
    return held_;
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // The store's call passes here.
  void Pass() {
    std::unique_lock<std::mutex> l(mu_);
    if (!armed_) return;
    armed_ = false;
    held_ = true;
    cv_.notify_all();
    cv_.wait_for(l, seconds(20), [this] { return released_; });
    held_ = false;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false, held_ = false, released_ = false;
};

// Holds the next ClaimDue call until Release(): a claim slowed down by the
// database (a bad plan, lock waits).
class BlockingClaimStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  void BlockNextClaim() { gate_.Arm(); }
  bool WaitUntilBlocked() { return gate_.WaitUntilHeld(); }
  void Release() { gate_.Release(); }
  Result<std::vector<sked::Run>> ClaimDue(
      const ClaimRequest& request, const std::function<FirePlan(const DueJob&)>& plan) override {
    gate_.Pass();
    return ForwardingStore::ClaimDue(request, plan);
  }
  // What the engine wrote: starts recorded on their own, and outcomes that
  // carried their start with them.
  Result<std::vector<bool>> RecordDispatches(std::string_view instance,
                                             const std::vector<Dispatch>& dispatches,
                                             Instant lease_until) override {
    for (const Dispatch& d : dispatches) starts_ += d.kind == Dispatch::Kind::kStarted;
    return ForwardingStore::RecordDispatches(instance, dispatches, lease_until);
  }
  Result<std::vector<bool>> SettleRuns(const std::vector<RunOutcome>& outcomes) override {
    for (const RunOutcome& o : outcomes) settled_with_start_ += o.started_at.has_value();
    return ForwardingStore::SettleRuns(outcomes);
  }
  int starts() const { return starts_; }
  int settled_with_start() const { return settled_with_start_; }

 private:
  CallGate gate_;
  std::atomic<int> starts_{0}, settled_with_start_{0};
};

// Also: a short run that ends before the loop records its start is written once.
TEST_F(EngineTest, AReservedFireStartsOnTimeWhileTheLoopWaitsOnASlowClaim) {
  options_.claim_ahead = milliseconds(200);
  BlockingClaimStore slow(store_.get());
  engine_ = std::make_unique<Engine>(options_, &slow, drivers_.get(), &clock_);
  ASSERT_TRUE(engine_->Start().ok());
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  Job job = Create(Spec("on-time", "0 * * * * *", "record"));
  AdvanceTo(kT0 + seconds(59) + milliseconds(900));
  ASSERT_TRUE(RunAt(store_.get(), job, kT0 + seconds(60)).has_value()) << "reserved";
  // A job change makes the loop claim at once; that claim hangs in the store
  // past the reserved fire's instant.
  slow.BlockNextClaim();
  Create(Spec("other", "30 * * * * *"));
  ASSERT_TRUE(slow.WaitUntilBlocked());
  clock_.SetTime(kT0 + seconds(60));
  const bool ran = Eventually([&] { return !recording_->seen().empty(); });
  slow.Release();
  EXPECT_TRUE(ran) << "the fire waited for the loop's claim";
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  sked::Run fire = *RunAt(store_.get(), job, kT0 + seconds(60));
  EXPECT_EQ(fire.status, RunStatus::kSucceeded);
  EXPECT_EQ(*fire.started_at, kT0 + seconds(60));
  // It ended before the loop could record its start: written once, the
  // settle recording the start with the end.
  EXPECT_NE(fire.lease_token, 0);
  EXPECT_EQ(slow.starts(), 0) << "the start was recorded on its own";
  EXPECT_EQ(slow.settled_with_start(), 1);
  EXPECT_EQ(engine_->Metrics().runs_by_status["succeeded"], 1);
  StopEngine();  // before `slow` goes
}

// Holds the next SettleRuns call once the store has applied it (committed,
// not yet entered in the engine's book) until Release(), and counts the
// claims made meanwhile.
class HoldingSettleStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  void HoldNextSettle() { gate_.Arm(); }
  bool WaitUntilHeld() { return gate_.WaitUntilHeld(); }
  void Release() { gate_.Release(); }
  // Whether a claim reached the store while the settle was held.
  bool ClaimedWhileHeld() {
    std::lock_guard<std::mutex> l(mu_);
    return claims_while_held_ > 0;
  }
  Result<std::vector<bool>> SettleRuns(const std::vector<RunOutcome>& outcomes) override {
    auto applied = ForwardingStore::SettleRuns(outcomes);
    gate_.Pass();
    return applied;
  }
  Result<std::vector<sked::Run>> ClaimDue(
      const ClaimRequest& request, const std::function<FirePlan(const DueJob&)>& plan) override {
    if (gate_.held()) {
      std::lock_guard<std::mutex> l(mu_);
      ++claims_while_held_;
    }
    return ForwardingStore::ClaimDue(request, plan);
  }

 private:
  CallGate gate_;
  std::mutex mu_;
  int claims_while_held_ = 0;
};

// The settler writes on its own thread: a settle slowed down by the database
// does not keep the loop from serving the queue.
TEST_F(EngineTest, ASlowSettleDoesNotHoldUpQueuedRuns) {
  options_.workers = 2;
  HoldingSettleStore slow(store_.get());
  engine_ = std::make_unique<Engine>(options_, &slow, drivers_.get(), &clock_);
  ASSERT_TRUE(engine_->Start().ok());
  Create(Spec("first", "0 0 1 1 *"));
  Create(Spec("second", "0 0 1 1 *", "record"));
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  slow.HoldNextSettle();
  sked::Run first = *engine_->TriggerJob("first");
  ASSERT_TRUE(slow.WaitUntilHeld());
  sked::Run second = *engine_->TriggerJob("second");
  const bool ran = Eventually([&] { return !recording_->seen().empty(); });
  slow.Release();
  EXPECT_TRUE(ran) << "the queued run waited for the settle";
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  EXPECT_EQ(engine_->GetRun(first.id)->status, RunStatus::kSucceeded);
  EXPECT_EQ(engine_->GetRun(second.id)->status, RunStatus::kSucceeded);
  StopEngine();  // before `slow` goes
}

// A claim and a settle take turns: the claim's planner discounts the runs
// that ended here and are not settled, and a settle committed but not yet
// entered in the book would be discounted twice (a busy job seen idle).
TEST_F(EngineTest, AClaimWaitsForASettleInFlight) {
  HoldingSettleStore slow(store_.get());
  engine_ = std::make_unique<Engine>(options_, &slow, drivers_.get(), &clock_);
  ASSERT_TRUE(engine_->Start().ok());
  Create(Spec("manual", "0 0 1 1 *"));
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  slow.HoldNextSettle();
  sked::Run run = *engine_->TriggerJob("manual");
  ASSERT_TRUE(slow.WaitUntilHeld());
  const std::int64_t waited = engine_->Metrics().claims_waited;
  Create(Spec("every-minute", "* * * * *"));  // the loop claims at once
  // It waits for the settle's turn (counted as it starts to wait), and has
  // not reached the store.
  EXPECT_TRUE(Eventually([&] { return engine_->Metrics().claims_waited == waited + 1; }));
  EXPECT_FALSE(slow.ClaimedWhileHeld());
  slow.Release();
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  EXPECT_EQ(engine_->GetRun(run.id)->status, RunStatus::kSucceeded);
  StopEngine();  // before `slow` goes
}

// The next reservation finds the queued runs' jobs held by another
// transaction (a peer reserving their other runs): it passes over them and
// says so.
class ContendedReservationStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  void ContendNext() { contend_ = true; }
  Result<Reservation> ReserveQueued(std::string_view instance, Instant now, int limit,
                                    Instant reserve_until) override {
    if (contend_.exchange(false)) {
      Reservation none;
      none.contended = true;
      return none;
    }
    return ForwardingStore::ReserveQueued(instance, now, limit, reserve_until);
  }

 private:
  std::atomic<bool> contend_{false};
};

// A reservation that passed over held jobs is tried again within
// milliseconds, not at the next poll.
TEST_F(EngineTest, AContendedReservationIsTriedAgainSoon) {
  ContendedReservationStore contended(store_.get());
  engine_ = std::make_unique<Engine>(options_, &contended, drivers_.get(), &clock_);
  ASSERT_TRUE(engine_->Start().ok());
  Create(Spec("manual", "0 0 1 1 *"));
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  contended.ContendNext();
  sked::Run run = *engine_->TriggerJob("manual");
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  EXPECT_EQ(engine_->GetRun(run.id)->status, RunStatus::kQueued) << "passed over";
  AdvanceTo(kT0 + milliseconds(2));
  sked::Run ran = *engine_->GetRun(run.id);
  EXPECT_EQ(ran.status, RunStatus::kSucceeded);
  EXPECT_EQ(*ran.started_at, kT0 + milliseconds(2));
  StopEngine();  // before `contended` goes
}

// A burst of long runs, more than the workers: the workers do not wake the
// loop while its runs wait (kBurstWritesDefer), and no worker event comes
// after that bound; the loop, parked since before the burst until its own
// next wake-up (seconds away), still wakes by the bound to write the starts
// and learn the runs' deadlines. Time is moved by hand: WaitIdleForTesting
// would wake the loop for the writes it left and hide a loop left asleep.
TEST_F(EngineTest, ABurstOfLongRunsHasItsStartsWrittenAndItsTimeoutsKeptInTime) {
  options_.workers = 1;
  options_.poll_interval = seconds(7);  // the loop's own wake-ups: 56 s, 63 s (not at 60 s)
  options_.claim_ahead = milliseconds(200);
  StartEngine();
  JobSpec spec = Spec("long-a", "0 * * * * *", "talk");
  spec.timeout = seconds(1);
  Job a = Create(spec);
  spec.name = "long-b";
  Job b = Create(spec);
  AdvanceTo(kT0 + seconds(59) + milliseconds(900));
  ASSERT_TRUE(RunAt(store_.get(), a, kT0 + seconds(60)).has_value()) << "reserved";
  ASSERT_TRUE(RunAt(store_.get(), b, kT0 + seconds(60)).has_value()) << "reserved";
  clock_.SetTime(kT0 + seconds(60));
  ASSERT_TRUE(Eventually([&] { return talking_->starts() == 1; })) << "the worker took one";
  auto status = [&](const Job& job) {
    return RunAt(store_.get(), job, kT0 + seconds(60)).value_or(sked::Run()).status;
  };
  clock_.SetTime(kT0 + seconds(60) + engine_internal::kBurstWritesDefer);
  EXPECT_TRUE(Eventually([&] {
    return status(a) == RunStatus::kRunning || status(b) == RunStatus::kRunning;
  })) << "the start is written by the burst's bound";
  clock_.SetTime(kT0 + seconds(61));
  EXPECT_TRUE(Eventually([&] {
    return status(a) == RunStatus::kTimedOut || status(b) == RunStatus::kTimedOut;
  })) << "the timeout is kept";
  EXPECT_TRUE(Eventually([&] { return talking_->starts() == 2; })) << "the other run started";
  AdvanceTo(kT0 + seconds(62) + milliseconds(100));
  EXPECT_EQ(History(a), (V{"timed_out@60"}));
  EXPECT_EQ(History(b), (V{"timed_out@60"}));
}

TEST_F(EngineTest, CancellingAReservedRunCancelsItBeforeItStarts) {
  StartEngine();
  Job job = Create(Spec("ahead", "0 * * * * *", "sleep", R"({"duration": "5s"})"));
  AdvanceTo(kT0 + seconds(59) + milliseconds(900));
  auto reserved = RunAt(store_.get(), job, kT0 + seconds(60));
  ASSERT_TRUE(reserved.has_value());
  ASSERT_TRUE(engine_->CancelRun(reserved->id).ok());
  AdvanceTo(kT0 + seconds(70));
  sked::Run r = *engine_->GetRun(reserved->id);
  EXPECT_EQ(r.status, RunStatus::kCancelled);
  EXPECT_FALSE(r.started_at.has_value());
  EXPECT_EQ(engine_->Metrics().runs_by_status["succeeded"], 0);
}

TEST_F(EngineTest, AStartRefusedByTheReservationFenceStopsTheDriver) {
  StartEngine();
  Job job = Create(Spec("fenced", "0 * * * * *", "sleep", R"({"duration": "30s"})"));
  AdvanceTo(kT0 + seconds(59) + milliseconds(900));
  auto reserved = RunAt(store_.get(), job, kT0 + seconds(60));
  ASSERT_TRUE(reserved.has_value());
  // Another process cancels it through the store: this engine does not know.
  ASSERT_TRUE(store_->RequestCancel(reserved->id, clock_.Now(), "cancelled elsewhere").ok());
  AdvanceTo(kT0 + seconds(61));
  // The worker took it at 60; recording the start was refused, so the sleep
  // was stopped at once and its end is not written over the cancellation.
  EXPECT_EQ(engine_->Metrics().running, 0);
  sked::Run r = *engine_->GetRun(reserved->id);
  EXPECT_EQ(r.status, RunStatus::kCancelled);
  EXPECT_EQ(r.reason, "cancelled elsewhere");
  EXPECT_EQ(History(job), (V{"cancelled@60"}));
}

TEST_F(EngineTest, AReservedFireMeetsARunStartedMeanwhileWithItsOverlapPolicy) {
  StartEngine();
  Job job = Create(Spec("busy", "0 * * * * *", "sleep", R"({"duration": "30s"})"));
  AdvanceTo(kT0 + seconds(59) + milliseconds(900));
  ASSERT_TRUE(RunAt(store_.get(), job, kT0 + seconds(60)).has_value());
  ASSERT_TRUE(engine_->TriggerJob("busy").ok());  // starts now, runs to 89.9
  AdvanceTo(kT0 + seconds(61));
  sked::Run fire = *RunAt(store_.get(), job, kT0 + seconds(60));
  EXPECT_EQ(fire.status, RunStatus::kSkipped);
  EXPECT_EQ(fire.reason, "overlap");
  EXPECT_EQ(engine_->Metrics().skipped_by_reason["overlap"], 1);
}

// A fire claimed ahead and not started is given back on shutdown: no run is
// left queued to start at some later time as if on schedule; the job's next
// fire is that fire again, for whoever claims next.
TEST_F(EngineTest, StopGivesBackClaimedFires) {
  StartEngine();
  Job job = Create(Spec("ahead", "0 * * * * *"));
  AdvanceTo(kT0 + seconds(59) + milliseconds(900));
  ASSERT_TRUE(RunAt(store_.get(), job, kT0 + seconds(60)).has_value());
  engine_->Stop();  // nothing runs, so no grace to wait for: time stands still
  engine_.reset();
  EXPECT_FALSE(RunAt(store_.get(), job, kT0 + seconds(60)).has_value());
  EXPECT_EQ(*store_->GetJob(job.id)->next_run_at, kT0 + seconds(60));
  EXPECT_EQ(*store_->QueueDepth(), 0);
  // Claimed again (here by a restart in time): it runs once, on time.
  StartEngine();
  AdvanceTo(kT0 + seconds(61));
  EXPECT_EQ(History(job), (V{"succeeded@60"}));
}

// The reported case: misfire = skip, a fire claimed ahead, SIGTERM, restart
// later. The fire is judged by the misfire policy (skipped), never run
// 11 s late as trigger `schedule`.
TEST_F(EngineTest, AGivenBackFireMeetsTheMisfirePolicyAfterARestart) {
  options_.claim_ahead = milliseconds(500);
  StartEngine();
  JobSpec spec = Spec("skipper", "*/10 * * * * *");
  spec.misfire = MisfirePolicy::kSkip;
  Job job = Create(spec);
  AdvanceTo(kT0 + seconds(9) + milliseconds(800));
  ASSERT_TRUE(RunAt(store_.get(), job, kT0 + seconds(10)).has_value());  // claimed ahead
  engine_->Stop();  // nothing runs, so no grace to wait for: time stands still
  engine_.reset();
  EXPECT_TRUE(History(job).empty());
  clock_.SetTime(kT0 + seconds(27));  // 20 is past the 5 s misfire threshold too
  StartEngine();
  AdvanceTo(kT0 + seconds(31));
  EXPECT_EQ(History(job), (V{"skipped@10", "skipped@20", "succeeded@30"}));
  RunFilter f;
  f.job_id = job.id;
  auto runs = engine_->ListRuns(f);
  ASSERT_TRUE(runs.ok());
  const std::vector<sked::Run> list = *runs;
  for (const sked::Run& r : list) {
    if (r.status == RunStatus::kSucceeded) {
      EXPECT_EQ(*r.started_at, r.scheduled_for);
    }
  }
}

TEST_F(EngineTest, OverlapQueueHoldsAFire) {
  StartEngine();
  JobSpec spec = Spec("queued", "*/10 * * * * *", "sleep", R"({"duration": "15s"})");
  spec.overlap = OverlapPolicy::kQueue;
  Job job = Create(spec);
  AdvanceTo(kT0 + seconds(40));
  // 10 runs to 25; 20 waits and starts at 25 (to 40); 30 waits; 40 is one too many.
  EXPECT_EQ(History(job), (V{"succeeded@10", "succeeded@20", "running@30", "skipped@40"}));
  RunFilter f;
  f.job_id = job.id;
  auto runs = *engine_->ListRuns(f);
  EXPECT_EQ(*runs[2].started_at, kT0 + seconds(25));
}

TEST_F(EngineTest, OverlapReplaceStopsTheRunningRun) {
  StartEngine();
  JobSpec spec = Spec("replace", "*/10 * * * * *", "sleep", R"({"duration": "25s"})");
  spec.overlap = OverlapPolicy::kReplace;
  Job job = Create(spec);
  AdvanceTo(kT0 + seconds(21));
  EXPECT_EQ(History(job), (V{"cancelled@10", "running@20"}));
  RunFilter f;
  f.job_id = job.id;
  EXPECT_EQ(engine_->ListRuns(f)->back().reason, "replaced");
}

TEST_F(EngineTest, StartingDeadlineSkipsARunThatWaitedTooLong) {
  options_.workers = 1;
  StartEngine();
  Create(Spec("hog", "0 * * * * *", "sleep", R"({"duration": "30s"})"));
  JobSpec spec = Spec("punctual", "0 * * * * *");
  spec.starting_deadline = seconds(10);
  Job job = Create(spec);
  AdvanceTo(kT0 + seconds(95));
  // The hog holds the only slot from 60 to 90: the punctual run waited 30 s.
  EXPECT_EQ(History(job), (V{"skipped@60"}));
  RunFilter f;
  f.job_id = job.id;
  EXPECT_EQ(engine_->ListRuns(f)->front().reason, "deadline");
  EXPECT_EQ(engine_->Metrics().skipped_by_reason["deadline"], 1);
}

TEST_F(EngineTest, ReadyRunsAreReleasedToTheQueueOnlyWhenTheWorkersStall) {
  options_.workers = 1;
  StartEngine();
  Create(Spec("hog", "0 * * * * *", "sleep", R"({"duration": "10s"})"));
  Job a = Create(Spec("a", "0 * * * * *")), b = Create(Spec("b", "0 * * * * *"));
  AdvanceTo(kT0 + seconds(60) + milliseconds(500));
  // Within the hold: one ready run is kept per worker, reserved here.
  for (const Job& j : {a, b}) {
    auto r = RunAt(store_.get(), j, kT0 + seconds(60));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, RunStatus::kQueued);
    EXPECT_EQ(r->instance_id, "test-1");
  }
  // The hog started one run in the last hold: one ready run is kept, the
  // other goes to the shared queue for any instance.
  AdvanceTo(kT0 + seconds(61) + milliseconds(500));
  int reserved = 0, shared = 0;
  for (const Job& j : {a, b}) {
    auto r = RunAt(store_.get(), j, kT0 + seconds(60));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, RunStatus::kQueued);
    (r->instance_id.empty() ? shared : reserved) += 1;
  }
  EXPECT_EQ(reserved, 1);
  EXPECT_EQ(shared, 1);
  AdvanceTo(kT0 + seconds(75));
  EXPECT_EQ(History(a), (V{"succeeded@60"}));
  EXPECT_EQ(History(b), (V{"succeeded@60"}));
}

TEST_F(EngineTest, CapacityQueuesByPriority) {
  options_.workers = 1;
  StartEngine();
  JobSpec low = Spec("low", "0 * * * * *", "sleep", R"({"duration": "10s"})");
  JobSpec high = low;
  high.name = "high";
  high.priority = 5;
  JobSpec mid = low;
  mid.name = "mid";
  mid.priority = 1;
  Job l = Create(low), h = Create(high), m = Create(mid);
  AdvanceTo(kT0 + seconds(60));
  EXPECT_EQ(History(h), (V{"running@60"}));
  EXPECT_EQ(engine_->Metrics().queue_depth, 2);
  AdvanceTo(kT0 + seconds(70));
  EXPECT_EQ(History(m), (V{"running@60"}));
  AdvanceTo(kT0 + seconds(80));
  EXPECT_EQ(History(l), (V{"running@60"}));
  (void)l;
}

TEST_F(EngineTest, TimeoutStopsTheRun) {
  StartEngine();
  JobSpec spec = Spec("hang", "0 * * * * *", "sleep", R"({"duration": "1h"})");
  spec.timeout = seconds(5);
  Job job = Create(spec);
  AdvanceTo(kT0 + seconds(66));
  EXPECT_EQ(History(job), (V{"timed_out@60"}));
  sked::Run r = engine_->ListRuns()->front();
  EXPECT_EQ(r.error, "timed out after 5s");
  EXPECT_EQ(*r.finished_at, kT0 + seconds(65));
  EXPECT_EQ(engine_->GetJob("hang")->failures, 1);
}

// A heartbeat renews the leases set more than LeaseRenewalAge (5 s with a
// 30 s lease and 10 s heartbeat) ago: a run started 3 s before a heartbeat
// keeps its lease, and the next heartbeat renews it; it is never reaped.
TEST_F(EngineTest, HeartbeatsRenewTheLeasesOfRunsThatLivedAWhile) {
  StartEngine();  // heartbeats at kT0 + 10 s, 20 s, ...
  Create(Spec("long", "0 0 1 1 *", "talk"));
  AdvanceTo(kT0 + seconds(67));
  sked::Run run = *engine_->TriggerJob("long");
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  auto lease = [&] { return engine_->GetRun(run.id)->lease_expires_at; };
  EXPECT_EQ(lease(), kT0 + seconds(97)) << "started with a lease";
  AdvanceTo(kT0 + seconds(70) + milliseconds(1));
  EXPECT_EQ(lease(), kT0 + seconds(97)) << "3 s old at the heartbeat: left alone";
  AdvanceTo(kT0 + seconds(80) + milliseconds(1));
  EXPECT_EQ(lease(), kT0 + seconds(110)) << "13 s old: renewed";
  AdvanceTo(kT0 + seconds(200));
  EXPECT_EQ(engine_->GetRun(run.id)->status, RunStatus::kRunning);
  EXPECT_EQ(lease(), kT0 + seconds(230));
  ASSERT_TRUE(engine_->CancelRun(run.id).ok());
}

TEST_F(EngineTest, CancelRunningAndQueuedRuns) {
  options_.workers = 1;
  StartEngine();
  Job job = Create(Spec("manual", "0 0 1 1 *", "sleep", R"({"duration": "1h"})"));
  sked::Run first = *engine_->TriggerJob("manual");
  AdvanceTo(kT0 + seconds(1));
  EXPECT_EQ(engine_->GetRun(first.id)->status, RunStatus::kRunning);
  JobSpec other = Spec("other", "0 0 1 1 *", "sleep", R"({"duration": "1h"})");
  Create(other);
  sked::Run waiting = *engine_->TriggerJob("other");
  AdvanceTo(kT0 + seconds(2));
  EXPECT_EQ(engine_->GetRun(waiting.id)->status, RunStatus::kQueued);
  ASSERT_TRUE(engine_->CancelRun(waiting.id).ok());
  EXPECT_EQ(engine_->GetRun(waiting.id)->status, RunStatus::kCancelled);
  ASSERT_TRUE(engine_->CancelRun(first.id).ok());
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  sked::Run cancelled = *engine_->GetRun(first.id);
  EXPECT_EQ(cancelled.status, RunStatus::kCancelled);
  EXPECT_EQ(cancelled.reason, "cancelled by user");
  EXPECT_EQ(cancelled.trigger, RunTrigger::kManual);
  EXPECT_EQ(engine_->CancelRun(first.id).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine_->CancelRun(424242).code(), StatusCode::kNotFound);
  (void)job;
}

TEST_F(EngineTest, ARunningRunsOutputCanBeWatchedUntilItEnds) {
  // One worker, held by another run, so the talker's run is queued (not started) for certain
  // until that run is cancelled: a triggered run is due at once and a free worker takes it.
  options_.workers = 1;
  StartEngine();
  Create(Spec("blocker", "0 0 1 1 *", "sleep", R"({"duration": "1h"})"));
  sked::Run blocker = *engine_->TriggerJob("blocker");
  AdvanceTo(kT0 + seconds(1));
  ASSERT_EQ(engine_->GetRun(blocker.id)->status, RunStatus::kRunning);
  Create(Spec("talker", "0 0 1 1 *", "talk", "{}"));
  sked::Run run = *engine_->TriggerJob("talker");
  AdvanceTo(kT0 + seconds(2));
  ASSERT_EQ(engine_->GetRun(run.id)->status, RunStatus::kQueued);
  EXPECT_FALSE(engine_->WatchOutput(run.id, 0, std::chrono::milliseconds(0)));  // not started
  EXPECT_FALSE(engine_->WatchOutput(424242, 0, std::chrono::milliseconds(0)));  // no such run
  ASSERT_TRUE(engine_->CancelRun(blocker.id).ok());
  AdvanceTo(kT0 + seconds(3));
  ASSERT_EQ(engine_->GetRun(run.id)->status, RunStatus::kRunning);
  std::optional<OutputChunk> chunk = engine_->WatchOutput(run.id, 0, std::chrono::seconds(5));
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(chunk->data, "hello\n");
  EXPECT_EQ(chunk->offset, 0);
  EXPECT_EQ(chunk->end, 6);
  EXPECT_TRUE(chunk->running);
  // Nothing new past the end: an empty chunk once the wait is over.
  chunk = engine_->WatchOutput(run.id, 6, std::chrono::milliseconds(1));
  ASSERT_TRUE(chunk.has_value());
  EXPECT_TRUE(chunk->data.empty());
  // An offset past what was written is clamped to the end, never read beyond.
  chunk = engine_->WatchOutput(run.id, 1000, std::chrono::milliseconds(1));
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(chunk->offset, 6);
  ASSERT_TRUE(engine_->CancelRun(run.id).ok());
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  EXPECT_FALSE(engine_->WatchOutput(run.id, 0, std::chrono::milliseconds(0)));  // ended
  EXPECT_EQ(engine_->GetRun(run.id)->output, "hello\n");
}

// [retention] max_output: the stored output is capped (its tail kept and
// marked truncated) whatever the driver kept.
TEST_F(EngineTest, StoredOutputIsCappedToItsTail) {
  options_.max_output_bytes = 3;
  StartEngine();
  Create(Spec("talker", "0 0 1 1 *", "talk", "{}"));
  sked::Run run = *engine_->TriggerJob("talker");
  AdvanceTo(kT0 + seconds(1));
  ASSERT_TRUE(engine_->CancelRun(run.id).ok());
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  sked::Run stored = *engine_->GetRun(run.id);
  EXPECT_EQ(stored.output, "lo\n");
  EXPECT_TRUE(stored.output_truncated);
}

TEST_F(EngineTest, MetricsAreKeptPerJobAndADeletedJobsAreDropped) {
  StartEngine();
  Create(Spec("good", "0 * * * * *", "noop", "{}"));
  Create(Spec("bad", "0 * * * * *", "noop", R"({"fail": true})"));
  AdvanceTo(kT0 + seconds(150));
  MetricsSnapshot m = engine_->Metrics();
  EXPECT_EQ(m.jobs["good"].runs_by_status["succeeded"], 2);
  EXPECT_EQ(m.jobs["bad"].runs_by_status["failed"], 2);
  EXPECT_EQ(m.jobs["good"].run_duration.count, 2);
  EXPECT_EQ(m.runs_by_status["succeeded"] + m.runs_by_status["failed"], 4);
  ASSERT_TRUE(engine_->DeleteJob("bad").ok());
  EXPECT_EQ(engine_->Metrics().jobs.count("bad"), 0u);
  EXPECT_EQ(m.untracked_job_runs, 0);
}

// A job deleted while its run runs: the run is stopped and its end, fenced
// out (the row went with the job), does not bring the job's series back.
TEST_F(EngineTest, ADeletedJobsSeriesDoNotComeBackWhenItsRunEnds) {
  StartEngine();
  Create(Spec("doomed", "0 0 1 1 *", "sleep", R"({"duration": "1h"})"));
  ASSERT_TRUE(engine_->TriggerJob("doomed").ok());
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  ASSERT_EQ(engine_->Metrics().running, 1);
  ASSERT_TRUE(engine_->DeleteJob("doomed").ok());
  ASSERT_TRUE(Eventually([&] { return engine_->Metrics().running == 0; }));
  ASSERT_TRUE(engine_->WaitIdleForTesting());
  MetricsSnapshot m = engine_->Metrics();
  EXPECT_EQ(m.jobs.count("doomed"), 0u);
}

TEST_F(EngineTest, PerJobMetricsAreBoundedAndTheRestCountInTheTotals) {
  options_.metrics_max_jobs = 1;
  StartEngine();
  Create(Spec("early", "30 * * * * *", "noop", "{}"));  // runs at 0:30 and 1:30
  Create(Spec("late", "0 * * * * *", "noop", "{}"));    // runs at 1:00
  AdvanceTo(kT0 + seconds(100));
  MetricsSnapshot m = engine_->Metrics();
  ASSERT_EQ(m.jobs.size(), 1u);
  EXPECT_EQ(m.jobs.begin()->first, "early");  // the first to run is tracked
  EXPECT_EQ(m.jobs["early"].runs_by_status["succeeded"], 2);
  EXPECT_EQ(m.jobs["early"].run_duration.count, 2);
  EXPECT_EQ(m.untracked_job_runs, 1);  // late's run
  EXPECT_EQ(m.runs_by_status["succeeded"], 3);
}

TEST_F(EngineTest, RetriesWithBackoffAreNewRuns) {
  StartEngine();
  JobSpec spec = Spec("flaky", "0 * * * * *", "noop", R"({"fail": true})");
  spec.retry.max_retries = 2;
  spec.retry.backoff = seconds(5);
  spec.retry.multiplier = 2;
  spec.retry.jitter = 0;
  Job job = Create(spec);
  AdvanceTo(kT0 + seconds(90));
  EXPECT_EQ(History(job), (V{"failed@60", "failed@60#2", "failed@60#3"}));
  RunFilter f;
  f.job_id = job.id;
  auto runs = *engine_->ListRuns(f);  // newest first
  EXPECT_EQ(*runs[1].started_at, kT0 + seconds(65));
  EXPECT_EQ(*runs[0].started_at, kT0 + seconds(75));
  EXPECT_EQ(runs[0].trigger, RunTrigger::kRetry);
  EXPECT_EQ(engine_->GetJob("flaky")->failures, 3);
  EXPECT_EQ(engine_->Metrics().retries_scheduled, 2);
}

TEST_F(EngineTest, MisfireRunOnceAfterDowntime) {
  StartEngine();
  Job job = Create(Spec("minutely", "0 * * * * *"));
  AdvanceTo(kT0 + seconds(60));
  StopEngine();
  clock_.SetTime(kT0 + minutes(10) + seconds(30));  // down for ~9 minutes
  StartEngine();
  AdvanceTo(kT0 + minutes(11));
  EXPECT_EQ(History(job), (V{"succeeded@60", "succeeded@600", "succeeded@660"}));
  RunFilter f;
  f.job_id = job.id;
  EXPECT_EQ((*engine_->ListRuns(f))[1].trigger, RunTrigger::kCatchUp);
}

TEST_F(EngineTest, ReaperAbandonsRunsOfADeadInstance) {
  StartEngine();
  JobSpec spec = Spec("orphan", "0 0 1 1 *");
  spec.retry.max_retries = 1;
  spec.retry.backoff = seconds(1);
  spec.retry.jitter = 0;
  Job job = Create(spec);
  NewRun r;
  r.scheduled_for = kT0;
  r.not_before = kT0 + minutes(10);  // keep our engine from starting it
  ASSERT_TRUE(store_->InsertRun(job.id, r, kT0).ok());
  auto ghost = store_->StartQueued("ghost", kT0 + minutes(10), 1, kT0 + minutes(10) + seconds(5));
  ASSERT_EQ(ghost->size(), 1u);
  AdvanceTo(kT0 + minutes(11));
  EXPECT_EQ(History(job), (V{"abandoned@0", "succeeded@0#2"}));
  EXPECT_EQ(engine_->Metrics().reaped, 1);
}

// A process killed mid-run and restarted under the same instance id: its
// heartbeats must not keep the dead process's run alive; it is reaped within
// one reaper period, not left running forever.
TEST_F(EngineTest, ARestartedInstanceAbandonsRunsItsEarlierProcessLeft) {
  auto job = store_->CreateJob([] {
    Job j;
    j.spec.name = "left-behind";
    j.spec.driver = "noop";
    j.spec.schedule = "0 0 1 1 *";
    j.created_at = j.updated_at = kT0;
    return j;
  }());
  ASSERT_TRUE(job.ok());
  NewRun r;
  r.scheduled_for = kT0;
  r.not_before = kT0;
  ASSERT_TRUE(store_->InsertRun(job->id, r, kT0).ok());
  // The earlier process (same id as ours) started it, with a long lease.
  ASSERT_EQ(store_->StartQueued("test-1", kT0, 1, kT0 + minutes(30))->size(), 1u);
  StartEngine();
  AdvanceTo(kT0 + options_.lease);
  EXPECT_EQ(History(*job), (V{"abandoned@0"}));
}

TEST_F(EngineTest, GracefulShutdownCancelsWhatOutlivesTheGrace) {
  StartEngine();
  Job job = Create(Spec("long", "0 * * * * *", "sleep", R"({"duration": "1h"})"));
  Job quick = Create(Spec("quick", "0 * * * * *", "sleep", R"({"duration": "2s"})"));
  AdvanceTo(kT0 + seconds(60));
  StopEngine();
  EXPECT_EQ(History(job).back(), "cancelled@60");
  EXPECT_EQ(History(quick).back(), "succeeded@60");
  sked::Run r = store_->ListRuns({}).value().front();
  auto instances = store_->ListInstances();
  ASSERT_EQ(instances->size(), 1u);
  EXPECT_TRUE(instances->front().stopped_at.has_value());
  RunFilter running;
  running.status = RunStatus::kRunning;
  EXPECT_TRUE(store_->ListRuns(running)->empty());
  (void)r;
}

// A fire claimed ahead whose instant comes during the shutdown grace (a long
// run keeps Stop() waiting) is given back too, not released to the queue to
// start after a restart as if on schedule.
TEST_F(EngineTest, AFireDueDuringTheShutdownGraceIsGivenBack) {
  options_.claim_ahead = seconds(2);
  StartEngine();
  Create(Spec("long", "0 0 1 1 *", "sleep", R"({"duration": "1h"})"));
  ASSERT_TRUE(engine_->TriggerJob("long").ok());
  Job tick = Create(Spec("tick", "*/10 * * * * *"));
  AdvanceTo(kT0 + seconds(9));
  ASSERT_TRUE(RunAt(store_.get(), tick, kT0 + seconds(10)).has_value());  // claimed ahead
  StopEngine(/*wait_for_grace=*/true);  // the grace (5 s) passes the fire's instant at +10
  EXPECT_FALSE(RunAt(store_.get(), tick, kT0 + seconds(10)).has_value());
  EXPECT_EQ(*store_->GetJob(tick.id)->next_run_at, kT0 + seconds(10));
  EXPECT_EQ(*store_->QueueDepth(), 0);
}

TEST_F(EngineTest, JobLifecycle) {
  StartEngine();
  Job job = Create(Spec("life", "*/10 * * * * *"));
  EXPECT_EQ(job.state, JobState::kActive);
  EXPECT_EQ(job.version, 1);

  auto paused = engine_->PauseJob("life");
  ASSERT_TRUE(paused.ok());
  EXPECT_EQ(paused->state, JobState::kPaused);
  AdvanceTo(kT0 + seconds(30));
  EXPECT_TRUE(History(job).empty());
  auto resumed = engine_->ResumeJob("life");
  ASSERT_TRUE(resumed.ok());
  EXPECT_EQ(*resumed->next_run_at, kT0 + seconds(40));  // from now, not from the past
  AdvanceTo(kT0 + seconds(40));
  EXPECT_EQ(History(job), (V{"succeeded@40"}));

  JobSpec edit = resumed->spec;
  edit.schedule = "0 * * * * *";
  auto stale = engine_->UpdateJob("life", edit, job.version);
  EXPECT_EQ(stale.status().code(), StatusCode::kAborted);
  auto updated = engine_->UpdateJob("life", edit, resumed->version);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(*updated->next_run_at, kT0 + seconds(60));
  EXPECT_EQ(updated->runs, 1);  // counters survive edits

  sked::Run manual = *engine_->TriggerJob("life");
  AdvanceTo(kT0 + seconds(41));
  EXPECT_EQ(engine_->GetRun(manual.id)->status, RunStatus::kSucceeded);

  ASSERT_TRUE(engine_->DeleteJob("life").ok());
  EXPECT_EQ(engine_->GetJob("life").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(engine_->TriggerJob("life").status().code(), StatusCode::kNotFound);
}

TEST_F(EngineTest, StartAndEndAt) {
  StartEngine();
  JobSpec spec = Spec("window", "*/10 * * * * *");
  spec.start_at = kT0 + seconds(25);
  spec.end_at = kT0 + seconds(50);
  Job job = Create(spec);
  EXPECT_EQ(job.state, JobState::kPending);
  EXPECT_EQ(*job.next_run_at, kT0 + seconds(30));
  AdvanceTo(kT0 + seconds(60));
  EXPECT_EQ(History(job), (V{"succeeded@30", "succeeded@40", "succeeded@50"}));
  EXPECT_EQ(engine_->GetJob("window")->state, JobState::kExpired);
}

TEST_F(EngineTest, BadInputIsRejectedBeforeAnythingIsStored) {
  StartEngine();
  auto error = [&](const JobSpec& s) { return engine_->CreateJob(s).status().message(); };
  EXPECT_EQ(error(Spec("x", "* * * * *", "http")),
            "driver: unknown driver 'http' (registered: noop, record, shell, sleep, talk, throws)");
  EXPECT_EQ(error(Spec("x", "* * * * *", "shell", "{}")),
            "driver_config: config: give exactly one of 'command' (a shell string) or 'argv' (a "
            "list of strings)");
  EXPECT_EQ(error(Spec("x", "30 25 * * *")),
            "schedule: field 'hour': value 25 out of range 0-23 at column 4");
  options_.min_interval = seconds(60);
  EXPECT_EQ(error(Spec("x", "0 0 0 1 1 * 2020")),
            "schedule: '0 0 0 1 1 * 2020' has no fire after 2026-01-01T00:00:00+00:00");
  JobSpec bad_policy = Spec("x", "* * * * *");
  bad_policy.max_queued = 0;
  EXPECT_EQ(error(bad_policy), "max_queued: must be 1-1000, got 0");
  EXPECT_TRUE(engine_->ListJobs()->empty());
  Create(Spec("dup", "* * * * *"));
  EXPECT_EQ(error(Spec("dup", "* * * * *")), "a job named 'dup' already exists");
}

TEST_F(EngineTest, MinimumIntervalApplies) {
  options_.min_interval = seconds(60);
  StartEngine();
  EXPECT_EQ(engine_->CreateJob(Spec("fast", "*/10 * * * * *")).status().message(),
            "schedule: expression fires as often as every 10s, more often than the minimum "
            "interval of 1m");
}

TEST_F(EngineTest, AThrowingDriverFailsTheRunAndTheEngineGoesOn) {
  StartEngine();
  Job bad = Create(Spec("bad", "0 * * * * *", "throws"));
  Job good = Create(Spec("good", "0 * * * * *"));
  AdvanceTo(kT0 + seconds(60));
  EXPECT_EQ(History(bad), (V{"failed@60"}));
  RunFilter of_bad;
  of_bad.job_id = bad.id;
  EXPECT_EQ(engine_->ListRuns(of_bad).value().front().error, "driver 'throws' threw: kaboom");
  EXPECT_EQ(History(good), (V{"succeeded@60"}));
}

TEST_F(EngineTest, HealthReportsALiveLoop) {
  StartEngine();
  Create(Spec("h", "0 * * * * *"));
  HealthSnapshot h = engine_->Health();
  EXPECT_TRUE(h.healthy) << (h.issues.empty() ? "" : h.issues.front());
  EXPECT_TRUE(h.loop_active);
  EXPECT_EQ(h.active_jobs, 1);
  StopEngine();
}

}  // namespace
}  // namespace sked
