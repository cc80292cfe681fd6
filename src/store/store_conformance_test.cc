// The Store conformance suite: every backend must pass these unchanged.
// Add a backend by adding a factory to the INSTANTIATE_TEST_SUITE_P list.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sked/store.h"
#include "store/postgres/pg_client.h"
#include "testing/run_history.h"

namespace sked {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

const Instant kT0 = Instant(seconds(1'800'000'000));  // 2027-01-15T08:00:00Z

struct StoreFactory {
  std::string name;
  // Opens a fresh, empty store; `path` names the database, so a test may open
  // a second handle on it.
  std::function<Result<std::unique_ptr<Store>>(const std::string& path,
                                               const StoreOptions& options)>
      open;
  bool shares_between_handles;
  // Why the backend cannot be tested here (empty: it can).
  std::function<std::string()> unavailable = [] { return std::string(); };
  // Removes the database named by `path`.
  std::function<void(const std::string& path)> remove = [](const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  };
};

void PrintTo(const StoreFactory& f, std::ostream* os) { *os << f.name; }

// PostgreSQL: the server the test script started (SKED_TEST_PG_URL); each
// test gets a schema of its own, named after its path, dropped afterwards.
std::string PgUrl() {
  const char* url = std::getenv("SKED_TEST_PG_URL");
  return url != nullptr ? url : "";
}

std::string PgSchema(const std::string& path) {
  std::string stem = std::filesystem::path(path).stem().string();
  for (char& c : stem) {
    if (c == '-') c = '_';
  }
  return "conformance_" + stem;
}

void DropPgSchema(const std::string& schema) {
  auto c = pg::Connection::Open(PgUrl(), "public");
  if (!c.ok()) return;
  auto quoted = pg::QuoteIdentifier((*c)->raw(), schema);
  if (quoted.ok()) (void)(*c)->ExecScript("DROP SCHEMA IF EXISTS " + *quoted + " CASCADE");
}

std::string TempDbPath() {
  static std::atomic<int> counter{0};
  const auto dir = std::filesystem::temp_directory_path() / "sked-store-test";
  std::filesystem::create_directories(dir);
  return (dir / (std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".db")).string();
}

class StoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    const std::string why = GetParam().unavailable();
    if (!why.empty()) GTEST_SKIP() << why;
    path_ = TempDbPath();
    store_ = Open();
  }
  void TearDown() override {
    store_.reset();
    if (!path_.empty()) GetParam().remove(path_);
  }

  std::unique_ptr<Store> Open(const StoreOptions& options = {}) {
    auto s = GetParam().open(path_, options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    EXPECT_TRUE((*s)->Migrate().ok());
    return std::move(*s);
  }

  Job NewJob(const std::string& name, std::optional<Instant> next = kT0) {
    Job j;
    j.spec.name = name;
    j.spec.driver = "noop";
    j.spec.schedule = "* * * * *";
    j.next_run_at = next;
    j.created_at = j.updated_at = kT0 - seconds(3600);
    return j;
  }

  Job Create(const std::string& name, std::optional<Instant> next = kT0) {
    auto j = store_->CreateJob(NewJob(name, next));
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.value_or(Job());
  }
  // Three jobs with queued runs due at kT0: "one-at-a-time" (3 runs, one may
  // run), "many" (3 runs, two may run at once), "late" (one run past its
  // 5 s starting deadline).
  struct QueueJobs {
    Job one, many, late;
  };
  QueueJobs QueueOfThreeJobs() {
    QueueJobs q;
    q.one = Create("one-at-a-time");
    q.many = NewJob("many");
    q.many.spec.overlap = OverlapPolicy::kConcurrent;
    q.many.spec.max_concurrent = 2;
    q.many = *store_->CreateJob(q.many);
    q.late = NewJob("late");
    q.late.spec.starting_deadline = seconds(5);
    q.late = *store_->CreateJob(q.late);
    for (int i = 0; i < 3; ++i) {
      for (const Job& j : {q.one, q.many}) {
        NewRun r;
        r.scheduled_for = kT0 + seconds(i);
        r.not_before = kT0;
        EXPECT_TRUE(store_->InsertRun(j.id, r, kT0).ok());
      }
    }
    NewRun stale;
    stale.scheduled_for = kT0 - seconds(60);
    stale.not_before = kT0 - seconds(60);
    EXPECT_TRUE(store_->InsertRun(q.late.id, stale, kT0).ok());
    return q;
  }

  // Claims every fire due by `horizon` (default: now) as one queued run,
  // advancing by a minute; reserved for `instance` when one is given.
  std::vector<sked::Run> ClaimAll(Instant now, Store* store = nullptr,
                                  std::optional<Instant> horizon = std::nullopt,
                                  const std::string& instance = "") {
    ClaimRequest request{now, horizon.value_or(now), 100, instance, now + seconds(30)};
    auto runs = (store ? store : store_.get())->ClaimDue(request, [](const DueJob& d) {
      FirePlan p;
      NewRun r;
      r.scheduled_for = *d.job.next_run_at;
      r.not_before = r.scheduled_for;
      r.priority = d.job.spec.priority;
      p.runs.push_back(r);
      p.next_run_at = *d.job.next_run_at + seconds(60);
      return p;
    });
    EXPECT_TRUE(runs.ok()) << runs.status().ToString();
    return runs.value_or(std::vector<sked::Run>());
  }

  sked::Run Start(Instant now = kT0) {
    auto started = store_->StartQueued("inst-a", now, 1, now + seconds(30));
    EXPECT_TRUE(started.ok() && started->size() == 1);
    return started.ok() && !started->empty() ? started->front() : sked::Run();
  }

  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreConformanceTest, MigrationsAreRecordedAndIdempotent) {
  EXPECT_EQ(*store_->SchemaVersion(), store_->LatestSchemaVersion());
  EXPECT_TRUE(store_->Migrate().ok());
  EXPECT_EQ(*store_->SchemaVersion(), store_->LatestSchemaVersion());
}

TEST_P(StoreConformanceTest, JobCrud) {
  Job created = Create("report");
  EXPECT_GT(created.id, 0);
  EXPECT_EQ(created.version, 1);
  EXPECT_EQ(created.spec.name, "report");
  EXPECT_EQ(created.state, JobState::kActive);
  EXPECT_EQ(*created.next_run_at, kT0);

  EXPECT_EQ(store_->GetJob(created.id)->spec.name, "report");
  EXPECT_EQ(store_->GetJobByName("report")->id, created.id);
  EXPECT_EQ(store_->GetJob(9999).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetJobByName("nope").status().message(), "job 'nope' not found");
  EXPECT_EQ(store_->CreateJob(NewJob("report")).status().message(),
            "a job named 'report' already exists");

  Job edit = created;
  edit.spec.description = "daily numbers";
  edit.spec.tags = {"team-a", "reports"};
  edit.spec.retry.max_retries = 3;
  edit.spec.retry.on_timed_out = false;
  edit.spec.timeout = seconds(90);
  edit.spec.overlap = OverlapPolicy::kConcurrent;
  edit.spec.max_concurrent = 4;
  edit.spec.start_at = kT0 - seconds(10);
  Result<Job> updated = store_->UpdateJob(edit);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version, 2);
  EXPECT_EQ(updated->spec, edit.spec);

  // A stale version loses.
  EXPECT_EQ(store_->UpdateJob(edit).status().code(), StatusCode::kAborted);

  Create("other");
  EXPECT_EQ(*store_->CountJobs(JobState::kActive), 2);
  EXPECT_EQ(*store_->CountJobs(JobState::kPaused), 0);
  auto all = store_->ListJobs({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  JobFilter page;
  page.limit = 1;
  EXPECT_EQ(store_->ListJobs(page)->front().spec.name, "report");
  page.after_id = created.id;
  EXPECT_EQ(store_->ListJobs(page)->front().spec.name, "other");
  JobFilter by_source;
  by_source.source = "config";
  EXPECT_TRUE(store_->ListJobs(by_source)->empty());
  by_source.source = "api";
  EXPECT_EQ(store_->ListJobs(by_source)->size(), 2u);

  EXPECT_TRUE(store_->DeleteJob(created.id).ok());
  EXPECT_EQ(store_->DeleteJob(created.id).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ListJobs({})->size(), 1u);
}

// A claim whose plan ends a job's schedule (past its end_at) leaves it with
// no next fire and its new state; the other jobs claimed with it go on.
TEST_P(StoreConformanceTest, AClaimThatEndsAJobsScheduleChangesItsStateAlone) {
  Job ending = Create("ending");
  Job going = Create("going");
  ClaimRequest request{kT0, kT0, 100, "", kT0 + seconds(30)};
  auto runs = store_->ClaimDue(request, [&](const DueJob& d) {
    FirePlan p;
    NewRun r;
    r.scheduled_for = r.not_before = *d.job.next_run_at;
    p.runs.push_back(r);
    if (d.job.id == ending.id) {
      p.state = JobState::kExpired;
    } else {
      p.next_run_at = *d.job.next_run_at + seconds(60);
    }
    return p;
  });
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  EXPECT_EQ(runs->size(), 2u);
  Job ended = *store_->GetJob(ending.id);
  EXPECT_EQ(ended.state, JobState::kExpired);
  EXPECT_FALSE(ended.next_run_at.has_value());
  EXPECT_EQ(ended.version, ending.version) << "not a change of the job's definition";
  Job next = *store_->GetJob(going.id);
  EXPECT_EQ(next.state, JobState::kActive);
  EXPECT_EQ(next.next_run_at, kT0 + seconds(60));
  EXPECT_EQ(*store_->NextDueAt(), kT0 + seconds(60));
  EXPECT_EQ(ClaimAll(kT0 + seconds(3600)).size(), 1u) << "only the job still active fires";
}

// A deleted job's id, or its runs' ids, never name anything else: a new job
// that took a deleted job's id once ran the deleted job's command.
TEST_P(StoreConformanceTest, IdsOfDeletedJobsAndRunsAreNeverReused) {
  Job old_job = Create("old");
  ClaimAll(kT0);
  ClaimAll(kT0 + seconds(60));
  auto old_runs = store_->ListRuns({});
  ASSERT_TRUE(old_runs.ok());
  ASSERT_EQ(old_runs->size(), 2u);
  std::int64_t max_run = 0;
  for (const sked::Run& r : *old_runs) max_run = std::max(max_run, r.id);
  ASSERT_TRUE(store_->DeleteJob(old_job.id).ok());

  Job new_job = Create("new", kT0 + seconds(120));
  EXPECT_GT(new_job.id, old_job.id);
  std::vector<sked::Run> runs = ClaimAll(kT0 + seconds(120));
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_GT(runs[0].id, max_run);
  EXPECT_EQ(runs[0].job_id, new_job.id);
  EXPECT_EQ(store_->GetRun(max_run).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetJob(old_job.id).status().code(), StatusCode::kNotFound);

  // Nor after the store is opened again.
  if (!GetParam().shares_between_handles) return;  // an in-memory database ends with its handle
  ASSERT_TRUE(store_->DeleteJob(new_job.id).ok());
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_GT(Create("newer").id, new_job.id);
}

// The reason a job was put in its state (the declared-job sync disables a
// job removed from the config) is kept, and cleared by an update that says so.
TEST_P(StoreConformanceTest, StateReasonIsStored) {
  Job job = Create("declared");
  job.state = JobState::kDisabled;
  job.state_reason = "removed from sked.toml";
  auto disabled = store_->UpdateJob(job);
  ASSERT_TRUE(disabled.ok()) << disabled.status().ToString();
  EXPECT_EQ(disabled->state, JobState::kDisabled);
  EXPECT_EQ(store_->GetJob(job.id)->state_reason, "removed from sked.toml");
  Job enabled = *disabled;
  enabled.state = JobState::kActive;
  enabled.state_reason.clear();
  EXPECT_EQ(store_->UpdateJob(enabled)->state_reason, "");
}

TEST_P(StoreConformanceTest, ClaimDueTakesOnlyDueActiveJobsOnce) {
  Job due = Create("due", kT0 - seconds(5));
  Create("later", kT0 + seconds(5));
  Create("never", std::nullopt);
  Job paused = NewJob("paused", kT0 - seconds(5));
  paused.state = JobState::kPaused;
  ASSERT_TRUE(store_->CreateJob(paused).ok());

  EXPECT_EQ(*store_->NextDueAt(), kT0 - seconds(5));
  std::vector<sked::Run> runs = ClaimAll(kT0);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].job_id, due.id);
  EXPECT_EQ(runs[0].job_name, "due");
  EXPECT_EQ(runs[0].scheduled_for, kT0 - seconds(5));
  EXPECT_EQ(runs[0].status, RunStatus::kQueued);
  EXPECT_EQ(runs[0].attempt, 1);
  EXPECT_EQ(*store_->GetJob(due.id)->next_run_at, kT0 + seconds(55));
  EXPECT_TRUE(ClaimAll(kT0).empty());
  EXPECT_EQ(*store_->QueueDepth(), 1);
}

// Instances claiming a burst ahead each take the jobs of their own part
// (id % parts); the rest stay due for whoever claims them at their instant.
TEST_P(StoreConformanceTest, AClaimOfOnePartTakesOnlyThatPartsJobs) {
  std::vector<Job> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(Create("part-" + std::to_string(i), kT0));
  auto claim = [&](int parts, int part) {
    ClaimRequest request{kT0, kT0, 100, "", {}};
    request.parts = parts;
    request.part = part;
    return store_->ClaimDue(request, [](const DueJob& d) {
      FirePlan p;
      NewRun r;
      r.scheduled_for = r.not_before = *d.job.next_run_at;
      p.runs.push_back(r);
      p.next_run_at = *d.job.next_run_at + seconds(60);
      return p;
    });
  };
  for (auto [parts, part] :
       {std::pair{3, 3}, std::pair{3, -1}, std::pair{-1, 0}, std::pair{1, 1}, std::pair{0, 2}}) {
    auto bad = claim(parts, part);
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << parts << " " << part;
    EXPECT_NE(bad.status().message().find("claim part"), std::string::npos);
  }
  EXPECT_TRUE(store_->ListRuns({})->empty()) << "nothing written by a refused claim";
  auto first = claim(3, 1);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 2u);
  for (const sked::Run& r : *first) EXPECT_EQ(r.job_id % 3, 1) << r.job_name;
  EXPECT_EQ(*store_->NextDueAt(), kT0) << "the other parts are still due";
  auto second = claim(3, 1);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->empty());
  auto rest = claim(0, 0);  // at the instant: every part
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->size(), 4u);
  EXPECT_EQ(store_->ListRuns({})->size(), 6u);
}

TEST_P(StoreConformanceTest, AFireIsWrittenOnceWhateverThePlanSays) {
  Job job = Create("dup", kT0);
  auto runs = store_->ClaimDue({kT0, kT0, 10, "", {}}, [](const DueJob& d) {
    FirePlan p;
    NewRun r;
    r.scheduled_for = *d.job.next_run_at;
    p.runs = {r, r};                     // the same fire twice
    p.next_run_at = *d.job.next_run_at;  // and not advanced
    return p;
  });
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->size(), 1u);
  // A second claim of the same fire (a racing instance) writes nothing.
  EXPECT_EQ(ClaimAll(kT0).size(), 0u);
  EXPECT_EQ(store_->ListRuns({})->size(), 1u);
  NewRun manual;
  manual.scheduled_for = kT0;
  EXPECT_EQ(store_->InsertRun(job.id, manual, kT0).status().code(), StatusCode::kAlreadyExists);
}

TEST_P(StoreConformanceTest, PlanCanSkipExpireAndReplace) {
  Job job = Create("planned", kT0);
  auto runs = store_->ClaimDue({kT0, kT0, 10, "", {}}, [](const DueJob&) {
    FirePlan p;
    NewRun skipped;
    skipped.scheduled_for = kT0;
    skipped.status = RunStatus::kSkipped;
    skipped.reason = "overlap";
    p.runs.push_back(skipped);
    p.state = JobState::kExpired;
    p.cancel_running = true;
    return p;
  });
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].status, RunStatus::kSkipped);
  EXPECT_EQ((*runs)[0].reason, "overlap");
  EXPECT_EQ(*(*runs)[0].finished_at, kT0);
  Job after = *store_->GetJob(job.id);
  EXPECT_EQ(after.state, JobState::kExpired);
  EXPECT_FALSE(after.next_run_at.has_value());
  EXPECT_FALSE(store_->NextDueAt()->has_value());
}

TEST_P(StoreConformanceTest, QueueServesPriorityThenScheduledFor) {
  Job low = NewJob("low", kT0 - seconds(30));
  Job high = NewJob("high", kT0 - seconds(10));
  high.spec.priority = 5;
  ASSERT_TRUE(store_->CreateJob(low).ok());
  ASSERT_TRUE(store_->CreateJob(high).ok());
  ASSERT_EQ(ClaimAll(kT0).size(), 2u);
  EXPECT_EQ(*store_->NextQueuedAt(), kT0 - seconds(30));
  auto started = store_->StartQueued("inst-a", kT0, 1, kT0 + seconds(30));
  ASSERT_TRUE(started.ok());
  ASSERT_EQ(started->size(), 1u);
  const sked::Run& r = started->front();
  EXPECT_EQ(r.job_name, "high");
  EXPECT_EQ(r.status, RunStatus::kRunning);
  EXPECT_EQ(r.instance_id, "inst-a");
  EXPECT_EQ(*r.started_at, kT0);
  EXPECT_EQ(*r.lease_expires_at, kT0 + seconds(30));
  EXPECT_NE(r.lease_token, 0);
  EXPECT_EQ(store_->StartQueued("inst-a", kT0, 5, kT0 + seconds(30))->front().job_name, "low");
  EXPECT_EQ(*store_->QueueDepth(), 0);
}

TEST_P(StoreConformanceTest, QueueHonoursNotBeforeOverlapAndDeadline) {
  auto [one, many, late] = QueueOfThreeJobs();
  NewRun future;
  future.scheduled_for = kT0 + seconds(100);
  future.not_before = kT0 + seconds(100);
  ASSERT_TRUE(store_->InsertRun(one.id, future, kT0).ok());

  auto started = store_->StartQueued("inst-a", kT0, 10, kT0 + seconds(30));
  ASSERT_TRUE(started.ok());
  int one_running = 0, many_running = 0, skipped = 0;
  for (const sked::Run& r : *started) {
    if (r.status == RunStatus::kSkipped) {
      ++skipped;
      EXPECT_EQ(r.reason, "deadline");
      EXPECT_EQ(r.job_id, late.id);
    } else if (r.job_id == one.id) {
      ++one_running;
    } else if (r.job_id == many.id) {
      ++many_running;
    }
  }
  EXPECT_EQ(one_running, 1);
  EXPECT_EQ(many_running, 2);
  EXPECT_EQ(skipped, 1);
  // Nothing more may start until runs end; the future run waits for its time.
  EXPECT_TRUE(store_->StartQueued("inst-a", kT0, 10, kT0 + seconds(30))->empty());
  EXPECT_EQ(*store_->QueueDepth(), 4);
}

// The batch path of the queue: reserved runs take their job's room for every
// instance until they are started, released or their reservation ends.
TEST_P(StoreConformanceTest, ReserveQueuedTakesRoomAndReturnsTheJobs) {
  auto [one, many, late] = QueueOfThreeJobs();

  auto a = store_->ReserveQueued("inst-a", kT0, 2, kT0 + seconds(30));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  int reserved = 0, skipped = 0;
  for (const sked::Run& r : a->runs) {
    if (r.status == RunStatus::kSkipped) {
      ++skipped;
      EXPECT_EQ(r.reason, "deadline");
      continue;
    }
    ++reserved;
    EXPECT_EQ(r.status, RunStatus::kQueued);
    EXPECT_EQ(r.instance_id, "inst-a");
    EXPECT_EQ(*r.lease_expires_at, kT0 + seconds(30));
    EXPECT_FALSE(r.started_at.has_value());
  }
  EXPECT_EQ(reserved, 2);  // the limit
  EXPECT_EQ(skipped, 1);
  std::set<std::string> names;
  for (const Job& j : a->jobs) names.insert(j.spec.name);
  std::set<std::string> want;
  for (const sked::Run& r : a->runs) {
    if (r.status == RunStatus::kQueued) want.insert(r.job_name);
  }
  EXPECT_EQ(names, want) << "the jobs of the reserved runs, no others";

  // Another instance gets what room is left: "one" is taken by a's
  // reservation (or by b now), "many" has two slots in all.
  auto b = store_->ReserveQueued("inst-b", kT0, 10, kT0 + seconds(30));
  ASSERT_TRUE(b.ok());
  std::map<std::int64_t, int> per_job;
  for (const auto* batch : {&a->runs, &b->runs}) {
    for (const sked::Run& r : *batch) {
      if (r.status == RunStatus::kQueued) ++per_job[r.job_id];
    }
  }
  EXPECT_EQ(per_job[one.id], 1);
  EXPECT_EQ(per_job[many.id], 2);
  EXPECT_TRUE(store_->ReserveQueued("inst-b", kT0, 10, kT0 + seconds(30))->runs.empty());
  EXPECT_TRUE(store_->StartQueued("inst-c", kT0, 10, kT0 + seconds(30))->empty())
      << "due reservations take room for StartQueued too";

  // a starts one of its runs and releases the other: the released run is
  // plain queued again, and its room is free for any instance.
  std::vector<Dispatch> d;
  const sked::Run& first = a->runs[0].status == RunStatus::kQueued ? a->runs[0] : a->runs[1];
  const sked::Run* second = nullptr;
  for (const sked::Run& r : a->runs) {
    if (r.status == RunStatus::kQueued && r.id != first.id) second = &r;
  }
  ASSERT_NE(second, nullptr);
  d.push_back({first.id, Dispatch::Kind::kStarted, kT0, 42, ""});
  d.push_back({second->id, Dispatch::Kind::kReleased, kT0, 0, ""});
  auto applied = store_->RecordDispatches("inst-a", d, kT0 + seconds(30));
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(*applied, (std::vector<bool>{true, true}));
  EXPECT_EQ(store_->GetRun(first.id)->status, RunStatus::kRunning);
  EXPECT_EQ(store_->GetRun(second->id)->instance_id, "");
  auto c = store_->ReserveQueued("inst-c", kT0, 10, kT0 + seconds(30));
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->runs.size(), 1u);
  EXPECT_EQ(c->runs[0].id, second->id);
}

// A fire claimed ahead (reserved, not yet due) does not keep a manual run of
// its job from starting now.
TEST_P(StoreConformanceTest, AFireClaimedAheadTakesNoRoomUntilItIsDue) {
  Job job = Create("ahead");  // due at kT0
  ClaimRequest request{kT0 - milliseconds(200), kT0, 10, "inst-a", kT0 + seconds(30)};
  auto claimed = store_->ClaimDue(request, [](const DueJob& due) {
    FirePlan p;
    NewRun r;
    r.scheduled_for = *due.job.next_run_at;
    r.not_before = r.scheduled_for;
    p.runs.push_back(r);
    return p;
  });
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  NewRun manual;
  manual.trigger = RunTrigger::kManual;
  manual.scheduled_for = kT0 - milliseconds(100);
  manual.not_before = kT0 - milliseconds(100);
  ASSERT_TRUE(store_->InsertRun(job.id, manual, kT0 - milliseconds(100)).ok());
  auto now = store_->ReserveQueued("inst-b", kT0 - milliseconds(100), 10, kT0 + seconds(30));
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->runs.size(), 1u);
}

// Many runs held back by their busy job, in front of the queue (manual
// triggers of a running job), never keep other jobs' runs from starting:
// the store once looked at most limit + 256 candidates, all of them held.
TEST_P(StoreConformanceTest, HeldRunsInFrontDoNotBlockTheQueue) {
  Job busy = Create("busy");
  Job other = Create("other");
  NewRun first;
  first.scheduled_for = kT0 - seconds(3600);
  first.not_before = first.scheduled_for;
  first.priority = 5;
  ASSERT_TRUE(store_->InsertRun(busy.id, first, kT0).ok());
  ASSERT_EQ(Start().job_id, busy.id);  // busy now has its one allowed run going
  for (int i = 0; i < 600; ++i) {
    NewRun r;
    r.scheduled_for = kT0 - seconds(3000) + seconds(i);
    r.not_before = r.scheduled_for;
    r.priority = 5;  // and ahead of everything else in queue order
    ASSERT_TRUE(store_->InsertRun(busy.id, r, kT0).ok());
  }
  NewRun behind;
  behind.scheduled_for = kT0;
  behind.not_before = kT0;
  ASSERT_TRUE(store_->InsertRun(other.id, behind, kT0).ok());
  auto started = store_->StartQueued("inst-a", kT0, 1, kT0 + seconds(30));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  ASSERT_EQ(started->size(), 1u);
  EXPECT_EQ(started->front().job_id, other.id);
  EXPECT_EQ(started->front().status, RunStatus::kRunning);
  EXPECT_EQ(*store_->QueueDepth(), 600);
}

// A short run that finished before its start was recorded is settled in one
// write from its reservation: fenced by the reserving instance, and by the
// run still being queued (a cancel or the reaper got there first).
TEST_P(StoreConformanceTest, ASettleRecordsAnUnrecordedStartFromTheReservation) {
  auto [one, many, late] = QueueOfThreeJobs();
  auto a = store_->ReserveQueued("inst-a", kT0, 3, kT0 + seconds(30));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  std::vector<sked::Run> reserved;
  for (const sked::Run& r : a->runs) {
    if (r.status == RunStatus::kQueued) reserved.push_back(r);
  }
  ASSERT_EQ(reserved.size(), 3u);
  auto outcome = [&](const sked::Run& r, const std::string& instance) {
    RunOutcome o;
    o.run_id = r.id;
    o.lease_token = 77;
    o.status = RunStatus::kSucceeded;
    o.started_at = kT0 + milliseconds(1);
    o.finished_at = kT0 + milliseconds(3);
    o.instance_id = instance;
    return o;
  };
  // Another instance's reservation, and a cancelled run, are fenced out.
  EXPECT_EQ(*store_->SettleRuns({outcome(reserved[0], "inst-b")}), std::vector<bool>{false});
  ASSERT_TRUE(store_->RequestCancel(reserved[1].id, kT0, "cancelled by user").ok());
  EXPECT_EQ(*store_->SettleRuns({outcome(reserved[1], "inst-a")}), std::vector<bool>{false});
  EXPECT_EQ(store_->GetRun(reserved[1].id)->status, RunStatus::kCancelled);

  const Job before = *store_->GetJob(reserved[0].job_id);
  auto applied =
      store_->SettleRuns({outcome(reserved[0], "inst-a"), outcome(reserved[2], "inst-a")});
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, (std::vector<bool>{true, true}));
  sked::Run done = *store_->GetRun(reserved[0].id);
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.started_at, kT0 + milliseconds(1));
  EXPECT_EQ(*done.finished_at, kT0 + milliseconds(3));
  EXPECT_EQ(done.lease_token, 77);
  EXPECT_FALSE(done.lease_expires_at.has_value());
  EXPECT_EQ(store_->GetJob(reserved[0].job_id)->runs, before.runs + 1);
  // Settled: the same outcome again, or as a running run, changes nothing.
  EXPECT_EQ(*store_->SettleRuns({outcome(reserved[0], "inst-a")}), std::vector<bool>{false});
  RunOutcome as_running = outcome(reserved[0], "");
  as_running.started_at.reset();
  EXPECT_EQ(*store_->SettleRuns({as_running}), std::vector<bool>{false});
}

TEST_P(StoreConformanceTest, SettleCountsFencesAndWritesRetries) {
  Job job = Create("settle");
  ASSERT_EQ(ClaimAll(kT0).size(), 1u);
  sked::Run run = Start();

  RunOutcome wrong;
  wrong.run_id = run.id;
  wrong.lease_token = run.lease_token + 1;
  wrong.status = RunStatus::kSucceeded;
  wrong.finished_at = kT0 + seconds(1);
  EXPECT_EQ(*store_->SettleRuns({wrong}), std::vector<bool>{false});

  RunOutcome failed;
  failed.run_id = run.id;
  failed.lease_token = run.lease_token;
  failed.status = RunStatus::kFailed;
  failed.finished_at = kT0 + seconds(2);
  failed.exit_code = 3;
  failed.output = "boom\n";
  failed.output_truncated = true;
  failed.error = "exit status 3";
  NewRun retry;
  retry.scheduled_for = run.scheduled_for;
  retry.attempt = 2;
  retry.trigger = RunTrigger::kRetry;
  retry.not_before = kT0 + seconds(12);
  failed.retry = retry;
  EXPECT_EQ(*store_->SettleRuns({failed}), std::vector<bool>{true});
  // Settling twice is fenced: the run is no longer running.
  EXPECT_EQ(*store_->SettleRuns({failed}), std::vector<bool>{false});

  sked::Run settled = *store_->GetRun(run.id);
  EXPECT_EQ(settled.status, RunStatus::kFailed);
  EXPECT_EQ(*settled.exit_code, 3);
  EXPECT_EQ(settled.output, "boom\n");
  EXPECT_TRUE(settled.output_truncated);
  EXPECT_EQ(settled.error, "exit status 3");
  EXPECT_EQ(*settled.finished_at, kT0 + seconds(2));
  EXPECT_FALSE(settled.lease_expires_at.has_value());

  Job counted = *store_->GetJob(job.id);
  EXPECT_EQ(counted.runs, 1);
  EXPECT_EQ(counted.failures, 1);
  EXPECT_EQ(counted.successes, 0);
  EXPECT_EQ(*counted.last_run_at, kT0);

  RunFilter queued;
  queued.status = RunStatus::kQueued;
  auto retries = store_->ListRuns(queued);
  ASSERT_EQ(retries->size(), 1u);
  EXPECT_EQ(retries->front().attempt, 2);
  EXPECT_EQ(retries->front().trigger, RunTrigger::kRetry);
  EXPECT_EQ(*store_->NextQueuedAt(), kT0 + seconds(12));

  RunOutcome bad = failed;
  bad.status = RunStatus::kQueued;
  EXPECT_EQ(store_->SettleRuns({bad}).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreConformanceTest, ClaimAheadReservesQueuedRunsForTheClaimer) {
  Job soon = Create("soon", kT0 + milliseconds(80));
  Create("later", kT0 + seconds(5));
  std::vector<sked::Run> runs = ClaimAll(kT0, nullptr, kT0 + milliseconds(100), "inst-a");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].job_id, soon.id);
  EXPECT_EQ(runs[0].status, RunStatus::kQueued);
  EXPECT_EQ(runs[0].instance_id, "inst-a");
  EXPECT_EQ(*runs[0].lease_expires_at, kT0 + seconds(30));
  EXPECT_EQ(store_->GetRun(runs[0].id)->instance_id, "inst-a");
  // Nobody else starts a reserved run, not even once it is due.
  EXPECT_TRUE(store_->StartQueued("inst-b", kT0 + seconds(1), 10, kT0 + seconds(31))->empty());
  EXPECT_FALSE(store_->NextQueuedAt()->has_value());
  EXPECT_EQ(*store_->QueueDepth(), 1);
}

// A claimed fire given back (shutdown) is un-claimed: its run is gone and
// its job's next fire is that fire again, for the next claim; a run whose
// job is no longer active is released to the queue instead.
TEST_P(StoreConformanceTest, GivenBackFiresAreUnclaimed) {
  Job active = Create("active", kT0);
  Job paused = Create("paused", kT0);
  std::vector<sked::Run> runs = ClaimAll(kT0, nullptr, kT0, "inst-a");
  ASSERT_EQ(runs.size(), 2u);
  ASSERT_EQ(*store_->GetJob(active.id)->next_run_at, kT0 + seconds(60));
  Job p = *store_->GetJob(paused.id);
  p.state = JobState::kPaused;
  ASSERT_TRUE(store_->UpdateJob(p).ok());
  std::vector<Dispatch> back;
  for (const sked::Run& r : runs) back.push_back({r.id, Dispatch::Kind::kGivenBack, kT0, 0, ""});
  // Not this instance's to give back.
  EXPECT_EQ(*store_->RecordDispatches("inst-b", back, kT0 + seconds(30)),
            std::vector<bool>({false, false}));
  auto applied = store_->RecordDispatches("inst-a", back, kT0 + seconds(30));
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, std::vector<bool>({true, true}));
  const sked::Run& of_active = runs[0].job_id == active.id ? runs[0] : runs[1];
  const sked::Run& of_paused = runs[0].job_id == active.id ? runs[1] : runs[0];
  EXPECT_EQ(store_->GetRun(of_active.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*store_->GetJob(active.id)->next_run_at, kT0);
  sked::Run released = *store_->GetRun(of_paused.id);
  EXPECT_EQ(released.status, RunStatus::kQueued);
  EXPECT_EQ(released.instance_id, "");
  // Claimed again: once, at its own instant.
  std::vector<sked::Run> again = ClaimAll(kT0);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].job_id, active.id);
  EXPECT_EQ(again[0].scheduled_for, kT0);
}

TEST_P(StoreConformanceTest, DispatchesAreFencedByTheReservation) {
  Create("a", kT0);
  Create("b", kT0);
  Create("c", kT0);
  Create("d", kT0);
  std::vector<sked::Run> runs = ClaimAll(kT0, nullptr, kT0, "inst-a");
  ASSERT_EQ(runs.size(), 4u);
  ASSERT_TRUE(store_->RequestCancel(runs[3].id, kT0, "cancelled by user").value_or(false));
  const Instant at = kT0 + milliseconds(1);
  std::vector<Dispatch> dispatches = {
      {runs[0].id, Dispatch::Kind::kStarted, at, 77, ""},
      {runs[1].id, Dispatch::Kind::kReleased, at, 0, ""},
      {runs[2].id, Dispatch::Kind::kSkipped, at, 0, "deadline"},
      {runs[3].id, Dispatch::Kind::kStarted, at, 78, ""},  // cancelled meanwhile
  };
  // Another instance cannot record anything about these runs.
  auto foreign = store_->RecordDispatches("inst-b", dispatches, kT0 + seconds(30));
  ASSERT_TRUE(foreign.ok()) << foreign.status().ToString();
  EXPECT_EQ(*foreign, std::vector<bool>({false, false, false, false}));

  auto applied = store_->RecordDispatches("inst-a", dispatches, kT0 + seconds(30));
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, std::vector<bool>({true, true, true, false}));
  sked::Run started = *store_->GetRun(runs[0].id);
  EXPECT_EQ(started.status, RunStatus::kRunning);
  EXPECT_EQ(*started.started_at, at);
  EXPECT_EQ(started.lease_token, 77);
  EXPECT_EQ(*started.lease_expires_at, kT0 + seconds(30));
  sked::Run released = *store_->GetRun(runs[1].id);
  EXPECT_EQ(released.status, RunStatus::kQueued);
  EXPECT_EQ(released.instance_id, "");
  EXPECT_FALSE(released.lease_expires_at.has_value());
  sked::Run skipped = *store_->GetRun(runs[2].id);
  EXPECT_EQ(skipped.status, RunStatus::kSkipped);
  EXPECT_EQ(skipped.reason, "deadline");
  EXPECT_EQ(*skipped.finished_at, at);
  EXPECT_EQ(store_->GetRun(runs[3].id)->status, RunStatus::kCancelled);
  // Recording again changes nothing: each dispatch applies once.
  EXPECT_EQ(*store_->RecordDispatches("inst-a", dispatches, kT0 + seconds(30)),
            std::vector<bool>({false, false, false, false}));

  // The released run is an ordinary queued run now; the started one settles.
  auto other = store_->StartQueued("inst-b", at, 10, kT0 + seconds(30));
  ASSERT_EQ(other->size(), 1u);
  EXPECT_EQ(other->front().id, runs[1].id);
  RunOutcome done;
  done.run_id = runs[0].id;
  done.lease_token = 77;
  done.finished_at = at + milliseconds(5);
  EXPECT_EQ(*store_->SettleRuns({done}), std::vector<bool>({true}));
}

TEST_P(StoreConformanceTest, ReservationsAreExtendedAndReapedLikeLeases) {
  Job kept = Create("kept", kT0);
  Job released = Create("released", kT0);
  ASSERT_EQ(ClaimAll(kT0, nullptr, kT0, "alive").size(), 2u);
  // Both are reserved for "alive" until kT0 + 30 s; it releases one.
  auto runs = store_->ListRuns({});
  std::int64_t released_run = 0, kept_run = 0;
  for (const sked::Run& r : *runs) (r.job_id == released.id ? released_run : kept_run) = r.id;
  ASSERT_EQ(*store_->RecordDispatches("alive",
                                      {{released_run, Dispatch::Kind::kReleased, kT0, 0, ""}}, kT0),
            std::vector<bool>({true}));
  ASSERT_TRUE(store_->ExtendLeases("alive", kT0, Instant::max(), kT0 + seconds(90)).ok());
  EXPECT_EQ(*store_->GetRun(kept_run)->lease_expires_at, kT0 + seconds(90));
  // Unreserved queued runs have no lease to extend or reap.
  EXPECT_FALSE(store_->GetRun(released_run)->lease_expires_at.has_value());

  auto reaped = store_->ReapExpired(
      kT0 + seconds(60), 10, [](const Job&, const sked::Run&) { return std::optional<NewRun>(); });
  ASSERT_TRUE(reaped.ok());
  EXPECT_TRUE(reaped->empty());
  reaped = store_->ReapExpired(
      kT0 + seconds(91), 10, [](const Job&, const sked::Run&) { return std::optional<NewRun>(); });
  ASSERT_TRUE(reaped.ok()) << reaped.status().ToString();
  ASSERT_EQ(reaped->size(), 1u);
  EXPECT_EQ(reaped->front().id, kept_run);
  EXPECT_EQ(reaped->front().status, RunStatus::kAbandoned);
  EXPECT_EQ(reaped->front().error,
            "the lease of instance 'alive' expired before it recorded the run's start");
  Job after = *store_->GetJob(kept.id);
  EXPECT_EQ(after.failures, 1);
  EXPECT_FALSE(after.last_run_at.has_value());  // it never started
}

// A heartbeat renews the leases set a while ago, every one of them however
// many (PostgreSQL writes them in batches), and leaves recent ones alone.
TEST_P(StoreConformanceTest, AHeartbeatRenewsEveryOldLeaseAndLeavesRecentOnes) {
  Job many = Create("many", kT0);
  Job recent = Create("recent", kT0);
  const int n = 2500;
  auto claim = [&](const Job& job, Instant reserve_until, int runs) {
    ClaimRequest request{kT0, kT0, 10, "alive", reserve_until};
    auto claimed = store_->ClaimDue(request, [&](const DueJob& d) {
      FirePlan p;
      if (d.job.id != job.id) {  // left due, as it was
        p.next_run_at = d.job.next_run_at;
        return p;
      }
      for (int i = 0; i < runs; ++i) {
        NewRun r;
        r.scheduled_for = r.not_before = kT0 - microseconds(i);
        r.trigger = RunTrigger::kCatchUp;
        p.runs.push_back(r);
      }
      p.next_run_at = kT0 + seconds(60);
      return p;
    });
    ASSERT_TRUE(claimed.ok()) << claimed.status().ToString();
  };
  claim(many, kT0 + seconds(30), n);
  claim(recent, kT0 + seconds(60), 1);
  ASSERT_TRUE(store_->ExtendLeases("alive", kT0, kT0 + seconds(45), kT0 + seconds(90)).ok());
  RunFilter f;
  f.limit = 2 * n;
  f.job_id = many.id;
  auto runs = store_->ListRuns(f);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), static_cast<size_t>(n));
  int renewed = 0;
  for (const sked::Run& r : *runs) renewed += r.lease_expires_at == kT0 + seconds(90);
  EXPECT_EQ(renewed, n);
  f.job_id = recent.id;
  runs = store_->ListRuns(f);
  ASSERT_TRUE(runs.ok() && runs->size() == 1u);
  EXPECT_EQ(runs->front().lease_expires_at, kT0 + seconds(60)) << "left alone";
}

TEST_P(StoreConformanceTest, ReaperAbandonsExpiredLeasesOnly) {
  Job job = Create("reap");
  Create("kept");
  ASSERT_EQ(ClaimAll(kT0).size(), 2u);
  auto started = store_->StartQueued("dead", kT0, 1, kT0 + seconds(10));
  ASSERT_EQ(started->size(), 1u);
  auto other = store_->StartQueued("alive", kT0, 1, kT0 + seconds(10));
  ASSERT_EQ(other->size(), 1u);
  ASSERT_TRUE(store_->ExtendLeases("alive", kT0, Instant::max(), kT0 + seconds(40)).ok());
  // Counted from the leases: two running, one expired by 0:20; the queued
  // retry of neither and no finished run counts.
  auto counts = store_->CountRunning(kT0 + seconds(20));
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(counts->running, 2);
  EXPECT_EQ(counts->expired, 1);
  EXPECT_EQ(store_->CountRunning(kT0 + seconds(5))->expired, 0);

  int retried = 0;
  auto reaped = store_->ReapExpired(kT0 + seconds(20), 10, [&](const Job& j, const sked::Run& r) {
    ++retried;
    NewRun next;
    next.scheduled_for = r.scheduled_for;
    next.attempt = r.attempt + 1;
    next.trigger = RunTrigger::kRetry;
    next.not_before = kT0 + seconds(20);
    EXPECT_EQ(j.spec.name, r.job_name);
    return std::optional<NewRun>(next);
  });
  ASSERT_TRUE(reaped.ok()) << reaped.status().ToString();
  ASSERT_EQ(reaped->size(), 1u);
  EXPECT_EQ(retried, 1);
  const sked::Run& r = reaped->front();
  EXPECT_EQ(r.id, started->front().id);
  EXPECT_EQ(r.status, RunStatus::kAbandoned);
  EXPECT_EQ(r.reason, "lease_expired");
  EXPECT_EQ(r.error, "the lease of instance 'dead' expired: it stopped heartbeating");
  EXPECT_EQ(store_->GetJob(r.job_id)->failures, 1);
  EXPECT_EQ(*store_->QueueDepth(), 1);
  EXPECT_EQ(store_->CountRunning(kT0 + seconds(20))->running, 1);  // the reaped one is not
  EXPECT_EQ(store_->CountRunning(kT0 + seconds(20))->expired, 0);
  // The stalled owner's late completion is fenced out.
  RunOutcome late;
  late.run_id = r.id;
  late.lease_token = started->front().lease_token;
  late.status = RunStatus::kSucceeded;
  late.finished_at = kT0 + seconds(30);
  EXPECT_EQ(*store_->SettleRuns({late}), std::vector<bool>{false});
  EXPECT_EQ(store_->GetRun(r.id)->status, RunStatus::kAbandoned);
  (void)job;
}

TEST_P(StoreConformanceTest, Cancellation) {
  Create("a");
  Create("b");
  std::vector<sked::Run> runs = ClaimAll(kT0);
  ASSERT_EQ(runs.size(), 2u);
  sked::Run running = Start();
  const sked::Run& queued = runs[0].id == running.id ? runs[1] : runs[0];

  EXPECT_TRUE(*store_->RequestCancel(queued.id, kT0, "user"));
  EXPECT_EQ(store_->GetRun(queued.id)->status, RunStatus::kCancelled);
  EXPECT_FALSE(*store_->RequestCancel(running.id, kT0, "user"));
  auto flagged = store_->CancelRequested("inst-a");
  ASSERT_EQ(flagged->size(), 1u);
  EXPECT_EQ(flagged->front().id, running.id);
  EXPECT_TRUE(flagged->front().cancel_requested);
  EXPECT_TRUE(store_->CancelRequested("inst-b")->empty());
  EXPECT_EQ(store_->RequestCancel(queued.id, kT0, "again").status().message(),
            "run " + std::to_string(queued.id) + " already finished (cancelled)");
  EXPECT_EQ(store_->RequestCancel(99999, kT0, "x").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, ListRunsFiltersAndPages) {
  Job a = Create("a");
  Job b = Create("b");
  for (int i = 0; i < 3; ++i) ClaimAll(kT0 + seconds(60 * i));
  RunFilter by_job;
  by_job.job_id = a.id;
  auto runs = store_->ListRuns(by_job);
  ASSERT_EQ(runs->size(), 3u);
  EXPECT_GT((*runs)[0].id, (*runs)[1].id);  // newest first
  RunFilter page;
  page.limit = 2;
  auto first = store_->ListRuns(page);
  ASSERT_EQ(first->size(), 2u);
  page.before_id = first->back().id;
  page.limit = 10;
  EXPECT_EQ(store_->ListRuns(page)->size(), 4u);
  RunFilter since;
  since.since = kT0 + seconds(120);
  EXPECT_EQ(store_->ListRuns(since)->size(), 2u);
  RunFilter until;
  until.until = kT0 + seconds(60);  // before: the first claim's two runs
  EXPECT_EQ(store_->ListRuns(until)->size(), 2u);
  until.since = kT0 + seconds(60);
  until.until = kT0 + seconds(120);
  EXPECT_EQ(store_->ListRuns(until)->size(), 2u);
  (void)b;
}

// Failures are listed from their own indexes (schema version 13): each
// status alone, of one job or of all, newest first, page by page.
TEST_P(StoreConformanceTest, ListRunsOfAFailureStatusPagesThroughThoseRunsAlone) {
  Job a = Create("a");
  Job b = Create("b");
  const RunStatus outcomes[] = {RunStatus::kFailed, RunStatus::kSucceeded, RunStatus::kTimedOut,
                                RunStatus::kFailed, RunStatus::kSucceeded, RunStatus::kFailed};
  std::vector<std::int64_t> failed_ids;  // oldest first
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(ClaimAll(kT0 + seconds(60 * i)).size(), 2u);
    for (int k = 0; k < 2; ++k) {
      sked::Run run = Start(kT0 + seconds(60 * i));
      RunOutcome o;
      o.run_id = run.id;
      o.lease_token = run.lease_token;
      o.status = outcomes[2 * i + k];
      o.finished_at = kT0 + seconds(60 * i + 1);
      ASSERT_EQ(*store_->SettleRuns({o}), std::vector<bool>{true});
      if (o.status == RunStatus::kFailed) failed_ids.push_back(run.id);
    }
  }
  ASSERT_EQ(failed_ids.size(), 3u);
  RunFilter failed;
  failed.status = RunStatus::kFailed;
  auto all = store_->ListRuns(failed);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ((*all)[i].id, failed_ids[2 - i]);  // newest first
  failed.limit = 2;
  auto first = store_->ListRuns(failed);
  ASSERT_EQ(first->size(), 2u);
  failed.before_id = first->back().id;
  auto rest = store_->ListRuns(failed);
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ(rest->front().id, failed_ids[0]);
  RunFilter timed_out;
  timed_out.status = RunStatus::kTimedOut;
  auto t = store_->ListRuns(timed_out);
  ASSERT_EQ(t->size(), 1u);
  EXPECT_EQ(t->front().status, RunStatus::kTimedOut);
  for (const Job& job : {a, b}) {
    RunFilter of_job;
    of_job.status = RunStatus::kFailed;
    of_job.job_id = job.id;
    auto runs = store_->ListRuns(of_job);
    ASSERT_TRUE(runs.ok());
    size_t expected = 0;
    for (const sked::Run& r : *all) expected += r.job_id == job.id ? 1 : 0;
    EXPECT_EQ(runs->size(), expected) << job.spec.name;
    for (const sked::Run& r : *runs) {
      EXPECT_EQ(r.job_id, job.id);
      EXPECT_EQ(r.status, RunStatus::kFailed);
    }
  }
  RunFilter abandoned;
  abandoned.status = RunStatus::kAbandoned;
  EXPECT_TRUE(store_->ListRuns(abandoned)->empty());
}

TEST_P(StoreConformanceTest, ListJobsFiltersByTagDriverAndNamePrefix) {
  Job a = NewJob("etl.daily");
  a.spec.tags = {"etl", "nightly"};
  a = *store_->CreateJob(a);
  Job b = NewJob("etl.hourly");
  b.spec.tags = {"etl-extra"};  // not the tag "etl"
  b.spec.driver = "shell";
  b = *store_->CreateJob(b);
  Job c = NewJob("report");
  c.spec.tags = {"nightly"};
  c = *store_->CreateJob(c);
  auto names = [&](const JobFilter& f) {
    std::vector<std::string> out;
    const std::vector<Job> jobs = store_->ListJobs(f).value_or(std::vector<Job>());
    for (const Job& j : jobs) out.push_back(j.spec.name);
    return out;
  };
  JobFilter tag;
  tag.tag = "etl";
  EXPECT_EQ(names(tag), std::vector<std::string>{"etl.daily"});
  tag.tag = "nightly";
  EXPECT_EQ(names(tag), (std::vector<std::string>{"etl.daily", "report"}));
  tag.tag = "%";  // no wildcard meaning
  EXPECT_TRUE(names(tag).empty());
  JobFilter driver;
  driver.driver = "shell";
  EXPECT_EQ(names(driver), std::vector<std::string>{"etl.hourly"});
  JobFilter prefix;
  prefix.name_prefix = "etl.";
  EXPECT_EQ(names(prefix), (std::vector<std::string>{"etl.daily", "etl.hourly"}));
  prefix.name_prefix = "etl_";  // '_' is no wildcard either
  EXPECT_TRUE(names(prefix).empty());
  prefix.name_prefix = "etl.' OR 1=1 --";
  EXPECT_TRUE(names(prefix).empty());
  prefix.name_prefix = "etl.";
  prefix.tag = "nightly";
  EXPECT_EQ(names(prefix), std::vector<std::string>{"etl.daily"});
}

TEST_P(StoreConformanceTest, LastSuccessIsTheStartOfTheNewestSucceededRun) {
  Job job = Create("success");
  ASSERT_EQ(ClaimAll(kT0).size(), 1u);
  sked::Run first = Start();
  RunOutcome ok;
  ok.run_id = first.id;
  ok.lease_token = first.lease_token;
  ok.finished_at = kT0 + seconds(1);
  ASSERT_EQ(*store_->SettleRuns({ok}), std::vector<bool>{true});
  EXPECT_EQ(store_->GetJob(job.id)->last_success_at, kT0);

  ASSERT_EQ(ClaimAll(kT0 + seconds(60)).size(), 1u);
  sked::Run second = Start(kT0 + seconds(60));
  RunOutcome failed;
  failed.run_id = second.id;
  failed.lease_token = second.lease_token;
  failed.status = RunStatus::kFailed;
  failed.finished_at = kT0 + seconds(61);
  ASSERT_EQ(*store_->SettleRuns({failed}), std::vector<bool>{true});
  Job after = *store_->GetJob(job.id);
  EXPECT_EQ(after.last_success_at, kT0);  // a failure leaves it
  EXPECT_EQ(after.last_run_at, kT0 + seconds(60));
}

TEST_P(StoreConformanceTest, ListJobsFindsTheFailingAndTheOverdue) {
  // "healthy" succeeds, "broken" fails after a success, "fresh" never ran;
  // "later" is due an hour on.
  Job healthy = Create("healthy");
  Job broken = Create("broken");
  Create("fresh", kT0 + seconds(1800));
  Create("later", kT0 + seconds(3600));
  auto names = [&](const JobFilter& f) {
    std::vector<std::string> out;
    const std::vector<Job> jobs = store_->ListJobs(f).value_or(std::vector<Job>());
    for (const Job& j : jobs) out.push_back(j.spec.name);
    return out;
  };
  JobFilter due;
  due.due_before = kT0 + seconds(1);
  EXPECT_EQ(names(due), (std::vector<std::string>{"healthy", "broken"}));
  due.due_before = kT0;  // strictly before
  EXPECT_TRUE(names(due).empty());
  due.due_before = kT0 + seconds(1);
  due.state = JobState::kActive;  // SQLite reads these from jobs_due
  EXPECT_EQ(names(due), (std::vector<std::string>{"healthy", "broken"}));
  due.after_id = healthy.id;  // and pages by id all the same
  EXPECT_EQ(names(due), std::vector<std::string>{"broken"});

  auto settle = [&](Instant at, const std::vector<RunStatus>& statuses) {
    const std::vector<sked::Run> claimed = ClaimAll(at);
    ASSERT_EQ(claimed.size(), statuses.size());
    RunFilter queued;
    queued.status = RunStatus::kQueued;
    ASSERT_EQ(store_->ListRuns(queued)->size(), statuses.size());
    auto started = store_->StartQueued("inst-a", at, 10, at + seconds(30));
    ASSERT_TRUE(started.ok());
    RunFilter running;
    running.status = RunStatus::kRunning;  // SQLite reads these from runs_active
    const std::vector<sked::Run> listed = *store_->ListRuns(running);
    ASSERT_EQ(listed.size(), statuses.size());
    EXPECT_GT(listed.front().id, listed.back().id);  // newest first
    EXPECT_TRUE(store_->ListRuns(queued)->empty());
    std::vector<RunOutcome> outcomes;
    for (const sked::Run& r : *started) {
      RunOutcome o;
      o.run_id = r.id;
      o.lease_token = r.lease_token;
      o.status = r.job_id == healthy.id ? statuses[0] : statuses[1];
      o.finished_at = at + seconds(1);
      outcomes.push_back(o);
    }
    ASSERT_TRUE(store_->SettleRuns(outcomes).ok());
  };
  JobFilter failing;
  failing.failing = true;
  settle(kT0, {RunStatus::kSucceeded, RunStatus::kSucceeded});
  EXPECT_TRUE(names(failing).empty());
  settle(kT0 + seconds(60), {RunStatus::kSucceeded, RunStatus::kFailed});
  EXPECT_EQ(names(failing), std::vector<std::string>{"broken"});
  failing.name_prefix = "h";  // combined with the other filters
  EXPECT_TRUE(names(failing).empty());
  failing.name_prefix.clear();
  (void)broken;
}

TEST_P(StoreConformanceTest, TokensKeepOnlyAHashAndRevokedNamesMayBeReused) {
  ApiToken t;
  t.name = "ci";
  t.role = "operator";
  t.secret_hash = std::string(64, 'a');
  t.created_by = "cli:root";
  t.created_at = kT0;
  auto created = store_->CreateToken(t);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_GT(created->id, 0);
  EXPECT_EQ(created->role, "operator");
  EXPECT_FALSE(created->revoked_at.has_value());
  EXPECT_EQ(store_->CreateToken(t).status().code(), StatusCode::kAlreadyExists);
  ApiToken bad = t;
  bad.name = "other";
  bad.role = "root";  // the database refuses a role it does not know
  EXPECT_FALSE(store_->CreateToken(bad).ok());
  EXPECT_EQ(store_->ListTokens()->size(), 1u);

  EXPECT_EQ(store_->GetToken(created->id)->secret_hash, t.secret_hash);
  EXPECT_EQ(store_->GetToken(created->id + 100).status().code(), StatusCode::kNotFound);
  auto revoked = store_->RevokeToken("ci", kT0 + seconds(5));
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->revoked_at, kT0 + seconds(5));
  EXPECT_EQ(store_->GetToken(created->id)->revoked_at, kT0 + seconds(5));
  EXPECT_EQ(store_->RevokeToken("ci", kT0).status().code(), StatusCode::kNotFound);
  auto again = store_->CreateToken(t);  // the name is free once revoked
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->id, created->id);
  EXPECT_EQ(store_->ListTokens()->size(), 2u);
}

TEST_P(StoreConformanceTest, AuditLogIsNewestFirstFilteredAndPaged) {
  for (int i = 0; i < 5; ++i) {
    AuditEntry e;
    e.at = kT0 + seconds(i);
    e.actor = i % 2 == 0 ? "ci" : "alice";
    e.action = i < 3 ? "job.create" : "run.cancel";
    e.target = "job/j" + std::to_string(i);
    e.source = "127.0.0.1";
    e.status = 201;
    e.detail = "it's <b>fine</b>";
    ASSERT_TRUE(store_->AppendAudit(e).ok());
  }
  auto all = store_->ListAudit({});
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ(all->front().target, "job/j4");
  EXPECT_EQ(all->front().detail, "it's <b>fine</b>");
  EXPECT_EQ(all->front().status, 201);
  AuditFilter by_actor;
  by_actor.actor = "ci";
  EXPECT_EQ(store_->ListAudit(by_actor)->size(), 3u);
  AuditFilter by_action;
  by_action.action = "run.cancel";
  by_action.since = kT0 + seconds(4);
  EXPECT_EQ(store_->ListAudit(by_action)->size(), 1u);
  AuditFilter page;
  page.limit = 2;
  auto first = store_->ListAudit(page);
  ASSERT_EQ(first->size(), 2u);
  page.before_id = first->back().id;
  page.limit = 10;
  EXPECT_EQ(store_->ListAudit(page)->size(), 3u);
}

TEST_P(StoreConformanceTest, JobTypesAndInstances) {
  ASSERT_TRUE(store_->UpsertJobType({"backup", "shell", "nightly backups", true}).ok());
  ASSERT_TRUE(store_->UpsertJobType({"backup", "shell", "backups", false}).ok());
  auto types = store_->ListJobTypes();
  ASSERT_EQ(types->size(), 1u);
  EXPECT_EQ(types->front().description, "backups");
  EXPECT_FALSE(types->front().notifications);

  const InstanceInfo first{"host-1:42", "host-1", 42, "0.1.0", kT0, kT0, {}};
  ASSERT_TRUE(store_->RegisterInstance(first, std::nullopt).ok());
  // The id is taken: registering it again must say whom it replaces, exactly.
  InstanceInfo second{"host-1:42", "host-2", 7, "0.1.0", kT0 + seconds(1), kT0 + seconds(1), {}};
  EXPECT_EQ(store_->RegisterInstance(second, std::nullopt).code(), StatusCode::kAlreadyExists);
  InstanceInfo stale = first;
  stale.heartbeat_at = kT0 - seconds(1);
  EXPECT_EQ(store_->RegisterInstance(second, stale).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->ListInstances()->front().pid, 42);
  ASSERT_TRUE(store_->RegisterInstance(second, first).ok());
  EXPECT_EQ(store_->ListInstances()->front().host, "host-2");
  EXPECT_EQ(store_->RegisterInstance(first, first).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->RegisterInstance(first, second).ok());
  ASSERT_TRUE(store_->Heartbeat("host-1:42", kT0 + seconds(2)).ok());
  EXPECT_EQ(store_->Heartbeat("ghost", kT0).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->DeregisterInstance("host-1:42", kT0 + seconds(3)).ok());
  auto instances = store_->ListInstances();
  ASSERT_EQ(instances->size(), 1u);
  EXPECT_EQ(instances->front().heartbeat_at, kT0 + seconds(2));
  EXPECT_EQ(*instances->front().stopped_at, kT0 + seconds(3));
}

// Two handles on one database (two processes would behave the same): racing
// claimers never write a fire twice and never lose one.
TEST_P(StoreConformanceTest, RacingClaimersClaimEachFireOnce) {
  if (!GetParam().shares_between_handles) GTEST_SKIP() << "handles do not share a database";
  constexpr int kJobs = 50;
  for (int i = 0; i < kJobs; ++i) Create("job-" + std::to_string(i), kT0);
  std::unique_ptr<Store> second = Open();
  ASSERT_NE(second, nullptr);
  std::vector<sked::Run> got_a, got_b;
  std::thread ta([&] {
    for (int step = 0; step < 5; ++step) {
      for (sked::Run& r : ClaimAll(kT0 + seconds(60 * step), store_.get())) got_a.push_back(r);
    }
  });
  std::thread tb([&] {
    for (int step = 0; step < 5; ++step) {
      for (sked::Run& r : ClaimAll(kT0 + seconds(60 * step), second.get())) got_b.push_back(r);
    }
  });
  ta.join();
  tb.join();
  // A claimer may pass over jobs the other holds at that moment (PostgreSQL's
  // SKIP LOCKED); the holder claims one fire per job per call here, so fires
  // due by the last step may still be waiting: due, not lost. Claim them.
  for (int pass = 0; pass < 10; ++pass) {
    std::vector<sked::Run> more = ClaimAll(kT0 + seconds(60 * 4), store_.get());
    if (more.empty()) break;
    got_a.insert(got_a.end(), more.begin(), more.end());
  }
  std::set<std::pair<std::int64_t, std::int64_t>> fires;
  for (const auto* list : {&got_a, &got_b}) {
    for (const sked::Run& r : *list) {
      EXPECT_TRUE(fires.insert({r.job_id, r.scheduled_for.time_since_epoch().count()}).second)
          << "fire claimed twice";
    }
  }
  EXPECT_EQ(fires.size(), static_cast<size_t>(kJobs * 5));
}

// --- Notifications: the outbox ---

// Settling writes, in its transaction, one notification per event the job
// notifies on and per channel: the job's own settings, else the defaults; a
// fenced-out settle writes none.
TEST_P(StoreConformanceTest, SettlingWritesTheNotificationsItsJobAsksFor) {
  StoreOptions options;
  options.notify.channels = {"default-ops"};  // on: the defaults (the final failure, ...)
  store_.reset();
  store_ = Open(options);
  Job own = NewJob("own");
  own.spec.notify.on = std::vector<std::string>{"failed", "recovered"};
  own.spec.notify.channels = std::vector<std::string>{"pager", "chat"};
  own = *store_->CreateJob(own);
  Job inherits = Create("inherits");
  Job silent = NewJob("silent");
  silent.spec.notify.channels = std::vector<std::string>{};
  silent = *store_->CreateJob(silent);
  EXPECT_EQ(store_->GetJob(own.id)->spec.notify, own.spec.notify);
  EXPECT_FALSE(store_->GetJob(inherits.id)->spec.notify.on.has_value());
  EXPECT_EQ(store_->GetJob(silent.id)->spec.notify.channels, std::vector<std::string>{});

  ASSERT_EQ(ClaimAll(kT0).size(), 3u);
  auto started = store_->StartQueued("inst-a", kT0, 10, kT0 + seconds(30));
  ASSERT_TRUE(started.ok() && started->size() == 3u);
  std::map<std::int64_t, sked::Run> by_job;
  for (const sked::Run& r : *started) by_job[r.job_id] = r;
  auto outcome = [](const sked::Run& r, RunStatus status, bool retry) {
    RunOutcome o;
    o.run_id = r.id;
    o.lease_token = r.lease_token;
    o.status = status;
    o.finished_at = kT0 + seconds(1);
    if (retry) {
      NewRun next;
      next.scheduled_for = r.scheduled_for;
      next.attempt = r.attempt + 1;
      next.trigger = RunTrigger::kRetry;
      next.not_before = kT0 + seconds(5);
      o.retry = next;
    }
    return o;
  };
  RunOutcome fenced = outcome(by_job[own.id], RunStatus::kFailed, true);
  fenced.lease_token += 1;
  ASSERT_EQ(*store_->SettleRuns({fenced}), std::vector<bool>{false});
  EXPECT_TRUE(store_->ListNotifications({})->empty()) << "a fenced-out settle wrote one";
  // own: failed with a retry to follow -> "failed" to both its channels (not
  // retries_exhausted: it did not ask for it). inherits: the final failure ->
  // the default channel. silent: nothing.
  ASSERT_EQ(*store_->SettleRuns({outcome(by_job[own.id], RunStatus::kFailed, true),
                                 outcome(by_job[inherits.id], RunStatus::kFailed, false),
                                 outcome(by_job[silent.id], RunStatus::kFailed, false)}),
            (std::vector<bool>{true, true, true}));
  auto all = store_->ListNotifications({});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::multiset<std::string> got;
  for (const Notification& n : *all) {
    got.insert(n.job_name + ":" + n.event + ":" + n.channel);
    EXPECT_EQ(n.status, NotificationStatus::kPending);
    EXPECT_EQ(n.attempts, 0);
    EXPECT_EQ(n.created_at, kT0 + seconds(1));
    EXPECT_EQ(n.next_attempt_at, kT0 + seconds(1));
    EXPECT_EQ(*n.run_id, by_job[n.job_id].id);
  }
  EXPECT_EQ(got, (std::multiset<std::string>{"own:failed:pager", "own:failed:chat",
                                             "inherits:retries_exhausted:default-ops"}));

  // The retry succeeds: own was failing, so it recovered.
  auto retry = store_->StartQueued("inst-a", kT0 + seconds(5), 10, kT0 + seconds(35));
  ASSERT_TRUE(retry.ok() && retry->size() == 1u);
  ASSERT_EQ(*store_->SettleRuns({outcome(retry->front(), RunStatus::kSucceeded, false)}),
            std::vector<bool>{true});
  NotificationFilter of_run;
  of_run.run_id = retry->front().id;
  auto recovered = store_->ListNotifications(of_run);
  ASSERT_EQ(recovered->size(), 2u);
  for (const Notification& n : *recovered) EXPECT_EQ(n.event, "recovered");
  NotificationFilter of_job;
  of_job.job_id = inherits.id;
  EXPECT_EQ(store_->ListNotifications(of_job)->size(), 1u);
}

// A run whose instance died raises abandoned and, with no retry, the final
// failure, written by the reaper's transaction.
TEST_P(StoreConformanceTest, ReapingWritesTheNotificationsOfAnAbandonedRun) {
  Job job = NewJob("reaped");
  job.spec.notify.on = std::vector<std::string>{"abandoned", "retries_exhausted"};
  job.spec.notify.channels = std::vector<std::string>{"ops"};
  job = *store_->CreateJob(job);
  ASSERT_EQ(ClaimAll(kT0).size(), 1u);
  sked::Run run = Start();
  auto reaped = store_->ReapExpired(kT0 + seconds(31), 10,
                                    [](const Job&, const sked::Run&) { return std::nullopt; });
  ASSERT_TRUE(reaped.ok() && reaped->size() == 1u);
  auto all = store_->ListNotifications({});
  ASSERT_EQ(all->size(), 2u);
  std::set<std::string> events;
  for (const Notification& n : *all) {
    events.insert(n.event);
    EXPECT_EQ(*n.run_id, run.id);
    EXPECT_EQ(n.channel, "ops");
  }
  EXPECT_EQ(events, (std::set<std::string>{"abandoned", "retries_exhausted"}));
}

// A notification is claimed by one instance at a time; a claim that runs
// out makes it due again (its claimer died), and the late claimer's record
// is fenced out; a failed attempt is retried at its time, then delivered
// or given up.
TEST_P(StoreConformanceTest, NotificationsAreClaimedOnceAndRetriedUntilDelivered) {
  StoreOptions options;
  options.notify.channels = {"ops"};
  store_.reset();
  store_ = Open(options);
  Create("a");
  Create("b", kT0 + seconds(1));
  ASSERT_EQ(ClaimAll(kT0 + seconds(1)).size(), 2u);
  auto started = store_->StartQueued("inst-a", kT0 + seconds(1), 10, kT0 + seconds(30));
  ASSERT_EQ(started->size(), 2u);
  std::vector<RunOutcome> failed;
  for (const sked::Run& r : *started) {
    RunOutcome o;
    o.run_id = r.id;
    o.lease_token = r.lease_token;
    o.status = RunStatus::kTimedOut;
    o.finished_at = kT0 + seconds(2);
    failed.push_back(o);
  }
  ASSERT_EQ(*store_->SettleRuns(failed), (std::vector<bool>{true, true}));
  EXPECT_EQ(*store_->NextNotificationAt(), kT0 + seconds(2));
  EXPECT_TRUE(store_->ClaimNotifications("x", kT0 + seconds(1), 10, kT0 + seconds(60))->empty())
      << "claimed before it was due";

  const Instant t = kT0 + seconds(3);
  auto first = store_->ClaimNotifications("inst-a", t, 1, t + seconds(10));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ(first->front().claimed_by, "inst-a");
  EXPECT_EQ(first->front().attempts, 1);
  auto second = store_->ClaimNotifications("inst-b", t, 10, t + seconds(10));
  ASSERT_EQ(second->size(), 1u) << "the other one only";
  EXPECT_NE(second->front().id, first->front().id);
  EXPECT_TRUE(store_->ClaimNotifications("inst-c", t, 10, t + seconds(10))->empty());
  EXPECT_EQ(*store_->NextNotificationAt(), t + seconds(10));

  // inst-b delivers its own; it cannot record inst-a's.
  DeliveryResult ok{second->front().id, true, "", std::nullopt, t + seconds(1)};
  DeliveryResult not_yours{first->front().id, true, "", std::nullopt, t + seconds(1)};
  EXPECT_EQ(*store_->RecordDeliveries("inst-b", {ok, not_yours}), (std::vector<bool>{true, false}));
  const std::vector<Notification> listed = *store_->ListNotifications({});
  Notification delivered;
  for (const Notification& n : listed) {
    if (n.id == ok.notification_id) delivered = n;
  }
  EXPECT_EQ(delivered.status, NotificationStatus::kDelivered);
  EXPECT_EQ(*delivered.finished_at, t + seconds(1));
  EXPECT_EQ(delivered.claimed_by, "");

  // inst-a's claim runs out (it died): inst-c takes it, and inst-a's late
  // record changes nothing.
  auto again = store_->ClaimNotifications("inst-c", t + seconds(10), 10, t + seconds(20));
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ(again->front().id, first->front().id);
  EXPECT_EQ(again->front().attempts, 2);
  EXPECT_EQ(*store_->RecordDeliveries("inst-a", {not_yours}), std::vector<bool>{false});
  // inst-c fails and asks for a retry at t+30s: pending, unclaimed, due then.
  DeliveryResult retry{again->front().id, false, "HTTP 503", t + seconds(30), t + seconds(11)};
  EXPECT_EQ(*store_->RecordDeliveries("inst-c", {retry}), std::vector<bool>{true});
  EXPECT_EQ(*store_->NextNotificationAt(), t + seconds(30));
  EXPECT_TRUE(store_->ClaimNotifications("inst-c", t + seconds(29), 10, t + seconds(60))->empty());
  auto third = store_->ClaimNotifications("inst-c", t + seconds(30), 10, t + seconds(60));
  ASSERT_EQ(third->size(), 1u);
  EXPECT_EQ(third->front().last_error, "HTTP 503");
  EXPECT_EQ(third->front().attempts, 3);
  // Given up: failed for good, never claimed again.
  DeliveryResult give_up{third->front().id, false, "HTTP 500", std::nullopt, t + seconds(31)};
  EXPECT_EQ(*store_->RecordDeliveries("inst-c", {give_up}), std::vector<bool>{true});
  EXPECT_FALSE(store_->NextNotificationAt()->has_value());
  NotificationFilter failed_only;
  failed_only.status = NotificationStatus::kFailed;
  auto given_up = store_->ListNotifications(failed_only);
  ASSERT_EQ(given_up->size(), 1u);
  EXPECT_EQ(given_up->front().last_error, "HTTP 500");
  EXPECT_EQ(given_up->front().attempts, 3);
  EXPECT_TRUE(store_->ClaimNotifications("inst-c", t + seconds(99), 10, t + seconds(120))->empty());

  // Each attempt on record, as it ended: inst-a's first never was (it died,
  // its late record was refused); inst-c's two are, with their errors.
  auto attempts = store_->ListDeliveryAttempts(first->front().id);
  ASSERT_TRUE(attempts.ok()) << attempts.status().ToString();
  ASSERT_EQ(attempts->size(), 2u);
  const DeliveryAttempt& a2 = (*attempts)[0];
  EXPECT_EQ(a2.attempt, 2);
  EXPECT_EQ(a2.instance, "inst-c");
  EXPECT_EQ(a2.finished_at, t + seconds(11));
  EXPECT_FALSE(a2.delivered);
  EXPECT_EQ(a2.error, "HTTP 503");
  EXPECT_EQ(a2.retry_at, t + seconds(30));
  const DeliveryAttempt& a3 = (*attempts)[1];
  EXPECT_EQ(a3.attempt, 3);
  EXPECT_EQ(a3.error, "HTTP 500");
  EXPECT_FALSE(a3.retry_at.has_value()) << "given up";
  auto delivered_attempts = store_->ListDeliveryAttempts(ok.notification_id);
  ASSERT_EQ(delivered_attempts->size(), 1u);
  EXPECT_EQ(delivered_attempts->front().attempt, 1);
  EXPECT_EQ(delivered_attempts->front().instance, "inst-b");
  EXPECT_TRUE(delivered_attempts->front().delivered);
  EXPECT_EQ(delivered_attempts->front().error, "");
  EXPECT_TRUE(store_->ListDeliveryAttempts(999999)->empty());
}

// A fire that did not run, for any reason, raises "missed" in the
// transaction that records it skipped: skipped by the planner (overlap,
// misfire), past its starting deadline in the queue, or skipped by the
// instance that had reserved it.
TEST_P(StoreConformanceTest, EveryWayAFireIsSkippedRaisesMissed) {
  StoreOptions options;
  options.notify.channels = {"ops"};  // the defaults include missed
  store_.reset();
  store_ = Open(options);
  Job planner = Create("skipped-by-planner");
  ClaimRequest request{kT0, kT0, 100, "", kT0};
  ASSERT_TRUE(store_
                  ->ClaimDue(request,
                             [](const DueJob& d) {
                               FirePlan p;
                               NewRun r;
                               r.scheduled_for = *d.job.next_run_at;
                               r.status = RunStatus::kSkipped;
                               r.reason = "overlap";
                               p.runs.push_back(r);
                               p.next_run_at = *d.job.next_run_at + seconds(60);
                               return p;
                             })
                  .ok());
  auto [one, many, late] = QueueOfThreeJobs();
  // "late" has a queued run past its 5 s deadline: skipped as the queue is served.
  ASSERT_TRUE(store_->StartQueued("inst-a", kT0 + seconds(10), 1, kT0 + seconds(40)).ok());
  Job reserved = Create("skipped-by-its-instance", kT0 + seconds(60));
  auto claimed = ClaimAll(kT0 + seconds(60), nullptr, std::nullopt, "inst-b");
  std::int64_t reserved_run = 0;
  for (const sked::Run& r : claimed) {
    if (r.job_id == reserved.id) reserved_run = r.id;
  }
  ASSERT_NE(reserved_run, 0);
  Dispatch skip;
  skip.run_id = reserved_run;
  skip.kind = Dispatch::Kind::kSkipped;
  skip.at = kT0 + seconds(61);
  skip.reason = "deadline";
  ASSERT_EQ(*store_->RecordDispatches("inst-b", {skip}, kT0 + seconds(90)),
            std::vector<bool>{true});
  // Given again: already skipped, nothing more is written.
  ASSERT_EQ(*store_->RecordDispatches("inst-b", {skip}, kT0 + seconds(90)),
            std::vector<bool>{false});

  std::multiset<std::string> got;
  const std::vector<Notification> all = *store_->ListNotifications({});
  for (const Notification& n : all) got.insert(n.job_name + ":" + n.event + ":" + n.channel);
  EXPECT_EQ(got, (std::multiset<std::string>{"skipped-by-planner:missed:ops", "late:missed:ops",
                                             "skipped-by-its-instance:missed:ops"}));
  (void)planner;
  (void)one;
  (void)many;
  (void)late;
}

// A job that keeps failing alerts once per incident, then again only after
// realert; a success ends the incident; the first failure after it alerts.
TEST_P(StoreConformanceTest, AJobThatKeepsFailingAlertsOncePerRealert) {
  StoreOptions options;
  options.notify.channels = {"ops"};
  options.notify.realert = std::chrono::minutes(10);
  store_.reset();
  store_ = Open(options);
  Job job = Create("keeps-failing", std::nullopt);
  auto settle_at = [&](Instant t, RunStatus status) {
    NewRun manual;
    manual.scheduled_for = t;
    manual.not_before = t;
    manual.trigger = RunTrigger::kManual;
    EXPECT_TRUE(store_->InsertRun(job.id, manual, t).ok());
    auto started = store_->StartQueued("inst-a", t, 1, t + seconds(30));
    EXPECT_TRUE(started.ok() && started->size() == 1u);
    RunOutcome o;
    o.run_id = started->front().id;
    o.lease_token = started->front().lease_token;
    o.status = status;
    o.finished_at = t + seconds(1);
    EXPECT_EQ(*store_->SettleRuns({o}), std::vector<bool>{true});
  };
  auto count = [&] { return store_->ListNotifications({})->size(); };
  settle_at(kT0, RunStatus::kFailed);
  EXPECT_EQ(count(), 1u) << "the first failure alerts";
  settle_at(kT0 + std::chrono::minutes(1), RunStatus::kFailed);
  settle_at(kT0 + std::chrono::minutes(5), RunStatus::kTimedOut);
  EXPECT_EQ(count(), 1u) << "still failing, within realert: no repeat";
  settle_at(kT0 + std::chrono::minutes(11), RunStatus::kFailed);
  EXPECT_EQ(count(), 2u) << "still failing, realert passed: alerts again";
  settle_at(kT0 + std::chrono::minutes(12), RunStatus::kSucceeded);
  settle_at(kT0 + std::chrono::minutes(13), RunStatus::kFailed);
  EXPECT_EQ(count(), 3u) << "a new incident after a success alerts at once";
}

// One watchdog pass at `t`: "job:event:channel" of each notification raised.
std::multiset<std::string> RaiseWatchdog(Store* store, Instant t) {
  auto raised = store->RaiseWatchdogEvents(t);
  EXPECT_TRUE(raised.ok()) << raised.status().ToString();
  std::multiset<std::string> got;
  for (const Notification& n : raised.value_or(std::vector<Notification>{})) {
    got.insert(n.job_name + ":" + n.event + ":" + n.channel);
  }
  return got;
}

// The watchdog's pass raises late (not started in time), overrun (running
// too long) and stale (no success for too long), each once however often
// it runs, and only for the jobs that set a threshold.
TEST_P(StoreConformanceTest, TheWatchdogRaisesLateOverrunAndStaleOnce) {
  StoreOptions options;
  options.notify.channels = {"ops"};
  store_.reset();
  store_ = Open(options);
  Job late = NewJob("late", std::nullopt);
  late.spec.late_after = seconds(30);
  late = *store_->CreateJob(late);
  Job slow = NewJob("slow", std::nullopt);
  slow.spec.expected_duration = seconds(60);
  slow = *store_->CreateJob(slow);
  Job quiet = NewJob("quiet", std::nullopt);  // created an hour before kT0
  quiet.spec.no_success_for = seconds(3600);
  quiet = *store_->CreateJob(quiet);
  Job unwatched = Create("unwatched", std::nullopt);
  Job muted = NewJob("muted", std::nullopt);
  muted.spec.late_after = seconds(1);
  muted.spec.notify.channels = std::vector<std::string>{};
  muted = *store_->CreateJob(muted);
  EXPECT_EQ(store_->GetJob(late.id)->spec.late_after, seconds(30));
  EXPECT_EQ(store_->GetJob(slow.id)->spec.expected_duration, seconds(60));
  EXPECT_EQ(store_->GetJob(quiet.id)->spec.no_success_for, seconds(3600));

  // slow's run starts at kT0; late's, muted's and unwatched's stay queued.
  auto insert = [&](const Job& j) {
    NewRun r;
    r.scheduled_for = kT0;
    r.not_before = kT0 + seconds(3600);  // not startable in this test
    r.trigger = RunTrigger::kManual;
    EXPECT_TRUE(store_->InsertRun(j.id, r, kT0).ok());
  };
  NewRun now_run;
  now_run.scheduled_for = kT0;
  now_run.not_before = kT0;
  now_run.trigger = RunTrigger::kManual;
  ASSERT_TRUE(store_->InsertRun(slow.id, now_run, kT0).ok());
  ASSERT_EQ(store_->StartQueued("inst-a", kT0, 1, kT0 + seconds(600))->size(), 1u);
  insert(late);
  insert(muted);
  insert(unwatched);

  auto raise = [&](Instant t) { return RaiseWatchdog(store_.get(), t); };
  EXPECT_EQ(raise(kT0 + seconds(29)), std::multiset<std::string>{"quiet:stale:ops"});
  EXPECT_EQ(raise(kT0 + seconds(30)), std::multiset<std::string>{"late:late:ops"});
  EXPECT_TRUE(raise(kT0 + seconds(45)).empty()) << "raised twice";
  EXPECT_EQ(raise(kT0 + seconds(60)), std::multiset<std::string>{"slow:overrun:ops"});
  EXPECT_TRUE(raise(kT0 + seconds(300)).empty()) << "raised twice";
  // A second handle checking too raises nothing more.
  if (GetParam().shares_between_handles) {
    std::unique_ptr<Store> other = Open(options);
    EXPECT_TRUE(other->RaiseWatchdogEvents(kT0 + seconds(301))->empty());
  }
  const std::vector<Notification> all = *store_->ListNotifications({});
  ASSERT_EQ(all.size(), 3u);
  for (const Notification& n : all) {
    EXPECT_EQ(n.status, NotificationStatus::kPending);
    EXPECT_EQ(n.run_id.has_value(), n.event != "stale") << n.event;
  }
}

// The drivers a process must have: those of active and pending jobs, each
// once, sorted; a paused, disabled or expired job's driver is not needed.
TEST_P(StoreConformanceTest, FiringDriversAreTheDistinctDriversOfJobsThatFire) {
  EXPECT_TRUE(store_->ListFiringDrivers()->empty());
  auto create = [&](const char* name, const char* driver, JobState state) {
    Job j = NewJob(name);
    j.spec.driver = driver;
    j.state = state;
    ASSERT_TRUE(store_->CreateJob(j).ok());
  };
  create("a", "shell", JobState::kActive);
  create("b", "shell", JobState::kActive);
  create("c", "http", JobState::kPending);
  create("d", "paused-driver", JobState::kPaused);
  create("e", "gone-driver", JobState::kDisabled);
  create("f", "over-driver", JobState::kExpired);
  create("g", "x'); DROP TABLE jobs; --", JobState::kActive);
  EXPECT_EQ(*store_->ListFiringDrivers(),
            (std::vector<std::string>{"http", "shell", "x'); DROP TABLE jobs; --"}));
  EXPECT_EQ(store_->ListJobs({})->size(), 7u);
}

// overrun_factor: a run is an overrun past k x the median of its job's
// recent successes, once there are enough of them; failures are not
// samples, one slow success does not move the median, a run past both
// thresholds is raised once, and two runs of one job running at once are
// each raised (against the same median).
TEST_P(StoreConformanceTest, TheWatchdogRaisesOverrunPastKTimesTheRecentMedian) {
  StoreOptions options;
  options.notify.channels = {"ops"};
  store_.reset();
  store_ = Open(options);
  auto create = [&](const char* name, std::optional<Duration> expected) {
    Job j = NewJob(name, std::nullopt);
    j.spec.overrun_factor = 3;
    j.spec.expected_duration = expected;
    j.spec.overlap = OverlapPolicy::kConcurrent;
    j.spec.max_concurrent = 2;
    return *store_->CreateJob(j);
  };
  const Job typical = create("typical", std::nullopt);
  const Job both = create("both", seconds(30));
  const Job flaky = create("flaky", std::nullopt);
  EXPECT_EQ(store_->GetJob(typical.id)->spec.overrun_factor, 3.0);
  EXPECT_EQ(store_->GetJob(Create("plain", std::nullopt).id)->spec.overrun_factor, std::nullopt);
  Instant t = kT0;
  // Starts a run of `job` at t; settles it `took` later with `status`
  // unless `took` is unset (left running).
  auto run = [&](const Job& job, std::optional<Duration> took,
                 RunStatus status = RunStatus::kSucceeded) {
    NewRun r;
    r.scheduled_for = t;
    r.not_before = t;
    r.trigger = RunTrigger::kManual;
    EXPECT_TRUE(store_->InsertRun(job.id, r, t).ok());
    auto started = store_->StartQueued("inst-a", t, 1, t + std::chrono::hours(10));
    EXPECT_TRUE(started.ok() && started->size() == 1u);
    if (!took || !started.ok() || started->empty()) return;
    RunOutcome o;
    o.run_id = started->front().id;
    o.lease_token = started->front().lease_token;
    o.status = status;
    o.finished_at = t + *took;
    EXPECT_EQ(*store_->SettleRuns({o}), std::vector<bool>{true});
    t += *took + seconds(1);
  };
  auto raise = [&](Instant at) { return RaiseWatchdog(store_.get(), at); };
  for (const Job* j : {&typical, &both}) {
    for (int s : {10, 12, 8, 10}) run(*j, seconds(s));
    run(*j, seconds(1), RunStatus::kFailed);  // not a sample
  }
  for (int i = 0; i < 6; ++i) run(flaky, seconds(1), RunStatus::kFailed);
  // Four successes are not enough: a run far past 3 x 10 s is not raised.
  const Instant first = t;
  run(typical, std::nullopt);
  run(flaky, std::nullopt);
  EXPECT_TRUE(raise(first + seconds(100)).empty());
  // It ends as the slow fifth success; the median stays 10 s.
  {
    auto running = store_->ListRuns({});
    ASSERT_TRUE(running.ok());
    for (const sked::Run& r : *running) {
      if (r.job_id != typical.id || r.status != RunStatus::kRunning) continue;
      RunOutcome o;
      o.run_id = r.id;
      o.lease_token = r.lease_token;
      o.status = RunStatus::kSucceeded;
      o.finished_at = first + seconds(3600);
      EXPECT_EQ(*store_->SettleRuns({o}), std::vector<bool>{true});
    }
  }
  t = first + seconds(3601);
  run(both, seconds(10));  // both: five successes too
  const Instant start = t;
  run(typical, std::nullopt);
  t = start - Duration(1);     // another fire of it (a fire's time is its run's key)
  run(typical, std::nullopt);  // running beside the first
  t = start;
  run(both, std::nullopt);
  EXPECT_TRUE(raise(start + seconds(29)).empty());
  EXPECT_EQ(raise(start + seconds(30)),
            (std::multiset<std::string>{"both:overrun:ops", "typical:overrun:ops",
                                        "typical:overrun:ops"}))
      << "both thresholds at once: one alert; each of typical's two runs: one each";
  EXPECT_TRUE(raise(start + seconds(3000)).empty()) << "raised twice";
  int overruns = 0;
  std::set<std::optional<std::int64_t>> overrun_runs;
  const std::vector<Notification> all = *store_->ListNotifications({});
  for (const Notification& n : all) {
    if (n.event != "overrun") continue;
    ++overruns;
    overrun_runs.insert(n.run_id);
  }
  EXPECT_EQ(overruns, 3);
  EXPECT_EQ(overrun_runs.size(), 3u) << "one per run";
}

// Retention deletes finished notifications before the cut, in batches, and
// never a pending one.
TEST_P(StoreConformanceTest, PruningDeletesFinishedNotificationsOnly) {
  StoreOptions options;
  options.notify.channels = {"ops"};
  store_.reset();
  store_ = Open(options);
  for (const char* name : {"a", "b", "c"}) Create(name);
  ASSERT_EQ(ClaimAll(kT0).size(), 3u);
  auto started = store_->StartQueued("inst-a", kT0, 10, kT0 + seconds(30));
  ASSERT_EQ(started->size(), 3u);
  std::vector<RunOutcome> failed;
  for (const sked::Run& r : *started) {
    RunOutcome o;
    o.run_id = r.id;
    o.lease_token = r.lease_token;
    o.status = RunStatus::kFailed;
    o.finished_at = kT0;
    failed.push_back(o);
  }
  ASSERT_EQ(store_->SettleRuns(failed)->size(), 3u);
  auto claimed = store_->ClaimNotifications("inst-a", kT0, 2, kT0 + seconds(60));
  ASSERT_EQ(claimed->size(), 2u);
  const Instant t1 = kT0 + seconds(5);
  DeliveryResult ok{claimed->at(0).id, true, "", std::nullopt, t1};
  DeliveryResult gave_up{claimed->at(1).id, false, "HTTP 500", std::nullopt, t1};
  ASSERT_EQ(store_->RecordDeliveries("inst-a", {ok, gave_up})->size(), 2u);
  ASSERT_EQ(store_->ListDeliveryAttempts(ok.notification_id)->size(), 1u);
  ASSERT_EQ(store_->ListDeliveryAttempts(gave_up.notification_id)->size(), 1u);

  EXPECT_EQ(*store_->PruneNotifications(t1, 100), 0) << "finished at the cut, not before";
  EXPECT_EQ(*store_->PruneNotifications(t1 + seconds(1), 1), 1) << "a batch of one";
  EXPECT_EQ(*store_->PruneNotifications(t1 + seconds(1), 100), 1);
  EXPECT_EQ(*store_->PruneNotifications(kT0 + seconds(999999), 100), 0) << "a pending one went";
  const std::vector<Notification> left = *store_->ListNotifications({});
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].status, NotificationStatus::kPending);
  // Their attempts went with them.
  EXPECT_TRUE(store_->ListDeliveryAttempts(ok.notification_id)->empty());
  EXPECT_TRUE(store_->ListDeliveryAttempts(gave_up.notification_id)->empty());
}

using sked::testing::RunIdsOf;
using sked::testing::WriteSettledRuns;

// Retention deletes a job's settled runs past max_runs, oldest first, but
// keeps its newest failures, never a queued or running run; a dry run counts
// the same runs and deletes none.
TEST_P(StoreConformanceTest, RetentionKeepsTheNewestRunsAndFailuresAndNothingUnsettled) {
  Job job = Create("busy", std::nullopt);
  using S = RunStatus;
  const std::vector<std::int64_t> ids =
      WriteSettledRuns(store_.get(), job,
                       {S::kSucceeded, S::kFailed, S::kSucceeded, S::kTimedOut, S::kSucceeded,
                        S::kCancelled, S::kSucceeded, S::kCancelled, S::kSucceeded, S::kSucceeded},
                       kT0);
  ASSERT_EQ(ids.size(), 10u);
  // A running run and a queued run, older by fire than every settled one.
  NewRun old;
  old.scheduled_for = kT0 - seconds(3600);
  old.not_before = kT0 - seconds(3600);
  const std::int64_t running = store_->InsertRun(job.id, old, kT0 + seconds(900))->id;
  ASSERT_EQ(store_->StartQueued("inst-b", kT0 + seconds(900), 1, kT0 + seconds(930))->size(), 1u);
  old.scheduled_for -= seconds(60);
  const std::int64_t queued = store_->InsertRun(job.id, old, kT0 + seconds(900))->id;

  PruneRequest request;
  request.now = kT0 + seconds(1000);
  request.defaults.max_runs = 3;
  request.defaults.keep_failures = 1;
  request.dry_run = true;
  PruneResult dry = *store_->PruneRuns(request);
  EXPECT_EQ(dry.runs, 6);
  ASSERT_EQ(dry.by_job.size(), 1u);
  EXPECT_EQ(dry.by_job[0], (std::pair<std::string, std::int64_t>{"busy", 6}));
  EXPECT_FALSE(dry.resume_after) << "one job: the sweep is done";
  EXPECT_EQ(RunIdsOf(store_.get(), job).size(), 12u) << "a dry run deleted something";

  request.dry_run = false;
  EXPECT_EQ(store_->PruneRuns(request)->runs, 6);
  // Kept: the newest three settled, the newest failure (timed out), the
  // running and the queued run.
  std::vector<std::int64_t> kept = {ids[3], ids[7], ids[8], ids[9], running, queued};
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(RunIdsOf(store_.get(), job), kept);
  EXPECT_EQ(store_->PruneRuns(request)->runs, 0) << "a second sweep found more";
  EXPECT_EQ(store_->GetJob(job.id)->runs, 10) << "the job's counters are its whole life";
}

// max_age deletes what finished before the cut, but never a job's newest
// settled run; a job's own settings override the defaults, field by field.
TEST_P(StoreConformanceTest, RetentionByAgeAndAJobsOwnSettings) {
  using S = RunStatus;
  Job aged = Create("aged", std::nullopt);
  Job own = NewJob("own", std::nullopt);
  own.spec.retention.max_age = std::chrono::hours(24 * 365);
  own.spec.retention.max_runs = 2;
  own = *store_->CreateJob(own);
  EXPECT_EQ(own.spec.retention.max_runs, 2) << "retention settings were not stored";
  EXPECT_EQ(store_->GetJob(own.id)->spec.retention.max_age, std::chrono::hours(24 * 365));
  EXPECT_FALSE(store_->GetJob(own.id)->spec.retention.keep_failures);
  Job unlimited = NewJob("unlimited", std::nullopt);
  unlimited.spec.retention.max_age = Duration(0);
  unlimited = *store_->CreateJob(unlimited);

  std::vector<std::int64_t> a =
      WriteSettledRuns(store_.get(), aged, {S::kSucceeded, S::kFailed, S::kSucceeded}, kT0);
  std::vector<std::int64_t> o = WriteSettledRuns(
      store_.get(), own, {S::kSucceeded, S::kSucceeded, S::kSucceeded, S::kFailed}, kT0);
  std::vector<std::int64_t> u =
      WriteSettledRuns(store_.get(), unlimited, {S::kSucceeded, S::kSucceeded}, kT0);

  PruneRequest request;
  request.now = kT0 + std::chrono::hours(48);
  request.defaults.max_age = std::chrono::hours(24);
  PruneResult result = *store_->PruneRuns(request);
  EXPECT_EQ(result.runs, 4);
  EXPECT_EQ(RunIdsOf(store_.get(), aged), std::vector<std::int64_t>{a[2]})
      << "newest settled stays";
  EXPECT_EQ(RunIdsOf(store_.get(), own), (std::vector<std::int64_t>{o[2], o[3]}));
  EXPECT_EQ(RunIdsOf(store_.get(), unlimited), u);
  // Cut exactly at a finish: finished at the cut is kept.
  Job edge = Create("edge", std::nullopt);
  std::vector<std::int64_t> e =
      WriteSettledRuns(store_.get(), edge, {S::kSucceeded, S::kSucceeded}, kT0);
  request.now = kT0 + seconds(1) + std::chrono::hours(24);
  (void)store_->PruneRuns(request);
  EXPECT_EQ(RunIdsOf(store_.get(), edge), e);
}

// A sweep goes job by job in batches: at most `limit` runs per call, and a
// job cut short by the limit is where the next batch starts.
TEST_P(StoreConformanceTest, RetentionGoesInBoundedBatches) {
  using S = RunStatus;
  Job first = Create("first", std::nullopt);
  Job second = Create("second", std::nullopt);
  (void)WriteSettledRuns(store_.get(), first, std::vector<S>(5, S::kSucceeded), kT0);
  (void)WriteSettledRuns(store_.get(), second, std::vector<S>(4, S::kSucceeded), kT0);
  PruneRequest request;
  request.now = kT0 + std::chrono::hours(1);
  request.defaults.max_runs = 1;
  request.limit = 3;
  request.max_jobs = 1;
  PruneResult r = *store_->PruneRuns(request);
  EXPECT_EQ(r.runs, 3);
  ASSERT_TRUE(r.resume_after);
  EXPECT_EQ(*r.resume_after, first.id - 1) << "the limit cut the first job short";
  request.after_job_id = *r.resume_after;
  r = *store_->PruneRuns(request);
  EXPECT_EQ(r.runs, 1);
  ASSERT_TRUE(r.resume_after);
  EXPECT_EQ(*r.resume_after, first.id);
  request.after_job_id = *r.resume_after;
  r = *store_->PruneRuns(request);
  EXPECT_EQ(r.runs, 3);
  ASSERT_TRUE(r.resume_after);
  EXPECT_EQ(*r.resume_after, second.id - 1) << "the limit reached: the job is looked at again";
  request.after_job_id = *r.resume_after;
  r = *store_->PruneRuns(request);
  EXPECT_EQ(r.runs, 0);
  ASSERT_TRUE(r.resume_after);
  request.after_job_id = *r.resume_after;
  r = *store_->PruneRuns(request);
  EXPECT_EQ(r.runs, 0);
  EXPECT_FALSE(r.resume_after) << "past the last job";
  EXPECT_EQ(RunIdsOf(store_.get(), first).size(), 1u);
  EXPECT_EQ(RunIdsOf(store_.get(), second).size(), 1u);
  request.limit = 0;
  EXPECT_EQ(store_->PruneRuns(request).status().code(), StatusCode::kInvalidArgument);
}

// A lease is held by one holder until it runs out; its holder renews it.
TEST_P(StoreConformanceTest, ALeaseHasOneHolderUntilItRunsOut) {
  EXPECT_TRUE(*store_->AcquireLease("retention", "a", kT0, kT0 + seconds(60)));
  EXPECT_FALSE(*store_->AcquireLease("retention", "b", kT0 + seconds(30), kT0 + seconds(90)));
  EXPECT_TRUE(*store_->AcquireLease("other", "b", kT0, kT0 + seconds(60))) << "leases are by name";
  EXPECT_TRUE(*store_->AcquireLease("retention", "a", kT0 + seconds(50), kT0 + seconds(110)));
  EXPECT_FALSE(*store_->AcquireLease("retention", "b", kT0 + seconds(100), kT0 + seconds(160)))
      << "the renewal did not hold";
  EXPECT_TRUE(*store_->AcquireLease("retention", "b", kT0 + seconds(110), kT0 + seconds(170)));
  EXPECT_FALSE(*store_->AcquireLease("retention", "a", kT0 + seconds(120), kT0 + seconds(180)));
}

INSTANTIATE_TEST_SUITE_P(
    Backends, StoreConformanceTest,
    ::testing::Values(StoreFactory{"sqlite_file",
                                   [](const std::string& path, const StoreOptions& options) {
                                     return Store::Open("sqlite://" + path, options);
                                   },
                                   true},
                      StoreFactory{"sqlite_memory",
                                   [](const std::string&, const StoreOptions& options) {
                                     return Store::Open("sqlite::memory:", options);
                                   },
                                   false},
                      StoreFactory{
                          "postgres",
                          [](const std::string& path, StoreOptions options) {
                            options.schema = PgSchema(path);
                            return Store::Open(PgUrl(), options);
                          },
                          true,
                          [] {
                            return PgUrl().empty()
                                       ? std::string(
                                             "SKED_TEST_PG_URL is not set (scripts/test.sh "
                                             "starts PostgreSQL and sets it)")
                                       : std::string();
                          },
                          [](const std::string& path) { DropPgSchema(PgSchema(path)); }}),
    [](const ::testing::TestParamInfo<StoreFactory>& p) { return p.param.name; });

}  // namespace
}  // namespace sked
