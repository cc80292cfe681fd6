// PostgreSQL-specific behaviour beyond the conformance suite: schema quoting,
// concurrent migrations, notifications between handles, text the database
// would refuse, connection errors. Needs SKED_TEST_PG_URL (scripts/test.sh).

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/retention.h"
#include "sked/store.h"
#include "store/postgres/pg_client.h"
#include "store/postgres/pg_migrations.h"
#include "store/postgres/pg_sql.h"
#include "store/store_codec.h"
#include "testing/run_history.h"
#include "testing/simulated_clock.h"

namespace sked {
namespace {

using std::chrono::seconds;

const Instant kT0 = Instant(seconds(1'800'000'000));

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("SKED_TEST_PG_URL");
    if (url == nullptr) GTEST_SKIP() << "SKED_TEST_PG_URL is not set (scripts/test.sh sets it)";
    url_ = url;
    // A name that needs quoting: a quote, a space, upper case.
    schema_ = "Pg \"test\" " + std::to_string(::getpid()) + " " +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    schema_ = schema_.substr(0, 63);
    Drop();
  }
  void TearDown() override {
    if (!url_.empty()) Drop();
  }
  void Drop() {
    auto c = pg::Connection::Open(url_, "public");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto q = pg::QuoteIdentifier((*c)->raw(), schema_);
    ASSERT_TRUE(q.ok());
    ASSERT_TRUE((*c)->ExecScript("DROP SCHEMA IF EXISTS " + *q + " CASCADE").ok());
  }
  std::unique_ptr<Store> Open() {
    StoreOptions options;
    options.schema = schema_;
    auto s = Store::Open(url_, options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  static Job NewJob(const std::string& name) {
    Job j;
    j.spec.name = name;
    j.spec.driver = "noop";
    j.spec.schedule = "* * * * *";
    j.next_run_at = kT0;
    j.created_at = j.updated_at = kT0;
    return j;
  }

  std::string url_, schema_;
};

TEST_F(PostgresStoreTest, InstancesStartingTogetherMigrateOnceIntoAQuotedSchema) {
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(Open());
  std::vector<Status> results(stores.size());
  std::vector<std::thread> threads;
  threads.reserve(stores.size());
  for (size_t i = 0; i < stores.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = stores[i]->Migrate(); });
  }
  for (std::thread& t : threads) t.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(*stores[0]->SchemaVersion(), stores[0]->LatestSchemaVersion());
  auto created = stores[1]->CreateJob(NewJob("in-a-quoted-schema"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(stores[2]->GetJobByName("in-a-quoted-schema")->spec.name, "in-a-quoted-schema");
}

// Version 10 moves each job's next fire into job_schedule, which runs then
// reference: a database filled at version 9 keeps every job's next fire and
// state, its runs, and a deleted job still takes its runs with it.
TEST_F(PostgresStoreTest, UpgradingMovesEachJobsNextFireToItsScheduleRow) {
  {
    auto c = pg::Connection::Open(url_, schema_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto q = pg::QuoteIdentifier((*c)->raw(), schema_);
    ASSERT_TRUE(q.ok());
    ASSERT_TRUE((*c)->ExecScript("CREATE SCHEMA " + *q).ok());
    ASSERT_TRUE((*c)->ExecScript("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                                 "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT "
                                 "now())")
                    .ok());
    for (const auto& m : store_internal::PostgresMigrations()) {
      if (m.version > 9) break;
      ASSERT_TRUE((*c)->ExecScript(m.sql).ok()) << m.version;
      ASSERT_TRUE((*c)->Exec("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                             pg::Params().Add(m.version).Add(m.name))
                      .ok());
    }
    const std::string columns =
        "(name, driver, schedule, state, overlap, max_queued, max_concurrent, misfire, "
        "catchup_window_us, retry_backoff_us, retry_multiplier, retry_max_backoff_us, "
        "retry_jitter, retry_on, next_run_at, created_at, updated_at)";
    const std::string values =
        "'skip', 1, 1, 'run_once', 0, 1000000, 2, 60000000, 0, 'failure', $1, 0, 0";
    const std::int64_t t0_us =
        std::chrono::duration_cast<std::chrono::microseconds>(kT0.time_since_epoch()).count();
    for (const char* row : {"('active-job', 'noop', '* * * * *', 'active', ",
                            "('paused-job', 'noop', '* * * * *', 'paused', "}) {
      ASSERT_TRUE((*c)->Exec("INSERT INTO jobs " + columns + " VALUES " + row + values + ")",
                             pg::Params().Add(t0_us))
                      .ok());
    }
    ASSERT_TRUE((*c)->ExecScript("INSERT INTO job_stats (job_id) SELECT id FROM jobs").ok());
    ASSERT_TRUE((*c)->ExecScript("INSERT INTO runs (job_id, scheduled_for, attempt, \"trigger\", "
                                 "status, queued_at, not_before) SELECT id, 1, 1, 'manual', "
                                 "'succeeded', 1, 1 FROM jobs")
                    .ok());
  }
  std::unique_ptr<Store> store = Open();
  ASSERT_EQ(*store->SchemaVersion(), 9);
  ASSERT_TRUE(store->Migrate().ok());
  EXPECT_EQ(*store->SchemaVersion(), store->LatestSchemaVersion());
  Job active = *store->GetJobByName("active-job");
  Job paused = *store->GetJobByName("paused-job");
  EXPECT_EQ(active.next_run_at, kT0);
  EXPECT_EQ(paused.next_run_at, kT0);
  EXPECT_EQ(paused.state, JobState::kPaused);
  EXPECT_EQ(*store->CountDue(kT0, 10), 1) << "only the active job is due";
  EXPECT_EQ(*store->NextDueAt(), kT0);
  RunFilter f;
  f.job_id = active.id;
  EXPECT_EQ(store->ListRuns(f)->size(), 1u);
  // Resumed: its schedule row follows the job's state.
  paused.state = JobState::kActive;
  ASSERT_TRUE(store->UpdateJob(paused).ok());
  EXPECT_EQ(*store->CountDue(kT0, 10), 2);
  ASSERT_TRUE(store->DeleteJob(active.id).ok());
  EXPECT_TRUE(store->ListRuns(f)->empty()) << "a deleted job's runs go with it";
  EXPECT_EQ(*store->CountDue(kT0, 10), 1);
}

TEST_F(PostgresStoreTest, OtherHandlesChangesArriveAsNotificationsOwnDoNot) {
  std::unique_ptr<Store> listener = Open(), writer = Open();
  ASSERT_TRUE(listener->Migrate().ok());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<StoreEvent> events;
  ASSERT_TRUE(listener->SetListener([&](StoreEvent e) {
    std::lock_guard<std::mutex> l(mu);
    events.push_back(e);
    cv.notify_all();
  }));
  auto wait_for = [&](StoreEvent want) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, seconds(5), [&] {
      return std::find(events.begin(), events.end(), want) != events.end();
    });
  };
  // The listener connects in the background: a first change may precede it,
  // so create jobs until one is heard (bounded).
  bool heard = false;
  for (int i = 0; i < 10 && !heard; ++i) {
    ASSERT_TRUE(writer->CreateJob(NewJob("job-" + std::to_string(i))).ok());
    std::unique_lock<std::mutex> l(mu);
    heard = cv.wait_for(l, std::chrono::milliseconds(500), [&] { return !events.empty(); });
  }
  ASSERT_TRUE(heard) << "no notification of a job created by another handle";
  EXPECT_EQ(events.front(), StoreEvent::kJobsChanged);

  auto job = writer->GetJobByName("job-0");
  NewRun manual;
  manual.scheduled_for = kT0;
  manual.trigger = RunTrigger::kManual;
  auto run = writer->InsertRun(job->id, manual, kT0);
  ASSERT_TRUE(run.ok());
  EXPECT_TRUE(wait_for(StoreEvent::kRunQueued));
  ASSERT_EQ(listener->StartQueued("inst", kT0, 1, kT0 + seconds(30))->size(), 1u);
  ASSERT_FALSE(*writer->RequestCancel(run->id, kT0, "stop"));
  EXPECT_TRUE(wait_for(StoreEvent::kCancelRequested));

  // The listener's own changes are not reported back to it.
  {
    std::lock_guard<std::mutex> l(mu);
    events.clear();
  }
  ASSERT_TRUE(listener->CreateJob(NewJob("own")).ok());
  ASSERT_TRUE(writer->CreateJob(NewJob("theirs")).ok());
  EXPECT_TRUE(wait_for(StoreEvent::kJobsChanged));
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_EQ(events.size(), 1u);  // "theirs" only
  }
  // Removing the listener: no call after it returns.
  ASSERT_TRUE(listener->SetListener({}));
  {
    std::lock_guard<std::mutex> l(mu);
    events.clear();
  }
  ASSERT_TRUE(writer->CreateJob(NewJob("unheard")).ok());
  ASSERT_TRUE(writer->CreateJob(NewJob("unheard-2")).ok());
  std::unique_lock<std::mutex> l(mu);
  EXPECT_FALSE(cv.wait_for(l, std::chrono::milliseconds(300), [&] { return !events.empty(); }));
}

// An instance stopped (SIGSTOP, a frozen VM) inside a transaction holds its
// row locks; the server ends its session after idle_transaction_timeout, so
// another instance's write to the same job goes on instead of waiting for it
// to wake (a fleet once stalled whole while one instance was stopped).
TEST_F(PostgresStoreTest, AStalledTransactionIsEndedAndReleasesItsLocks) {
  StoreOptions options;
  options.schema = schema_;
  options.idle_transaction_timeout = std::chrono::milliseconds(300);
  auto stalled = Store::Open(url_, options);
  ASSERT_TRUE(stalled.ok()) << stalled.status().ToString();
  std::unique_ptr<Store> other = Open();
  ASSERT_TRUE(other->Migrate().ok());
  auto job = other->CreateJob(NewJob("locked"));
  ASSERT_TRUE(job.ok());

  // The stalled handle claims the job (locking its row) and stops inside the
  // transaction until the other handle's update of that job has returned
  // (bounded: 20 s, so the test ends whatever happens).
  std::mutex mu;
  std::condition_variable cv;
  bool updated = false, in_claim = false;
  Status claim_status;
  std::thread claimer([&] {
    ClaimRequest request;
    request.now = request.horizon = kT0;
    auto claimed = (*stalled)->ClaimDue(request, [&](const DueJob& due) {
      std::unique_lock<std::mutex> l(mu);
      in_claim = true;
      cv.notify_all();
      cv.wait_for(l, seconds(20), [&] { return updated; });
      FirePlan plan;
      plan.next_run_at = due.job.next_run_at;
      return plan;
    });
    claim_status = claimed.status();
  });
  {
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(cv.wait_for(l, seconds(20), [&] { return in_claim; }));
  }
  const auto asked = std::chrono::steady_clock::now();
  Job edit = *job;
  edit.spec.description = "changed while another instance was stopped";
  auto result = other->UpdateJob(edit);
  const auto waited = std::chrono::steady_clock::now() - asked;
  {
    std::lock_guard<std::mutex> l(mu);
    updated = true;
    cv.notify_all();
  }
  claimer.join();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_LT(waited, seconds(10)) << "the update waited for the stalled transaction";
  // The stalled handle finds its transaction gone: nothing of it was written.
  EXPECT_FALSE(claim_status.ok());
  EXPECT_EQ(other->GetJob(job->id)->spec.description, edit.spec.description);
  // And it recovers: its next call opens a new session.
  ClaimRequest again;
  again.now = again.horizon = kT0;
  auto claimed = (*stalled)->ClaimDue(again, [](const DueJob& due) {
    FirePlan plan;
    plan.next_run_at = *due.job.next_run_at + seconds(60);
    return plan;
  });
  EXPECT_TRUE(claimed.ok()) << claimed.status().ToString();
}

// Two instances, each on its own connections, sweep at the same moment while
// one of them also runs and claims: one sweeps (the lease), the runs past the
// policy go once, and a running run and a queued run stay.
// Two instances reserving at once do not take turns on a job whose runs
// straddle their batches: the runs of a job another transaction holds are
// passed over (and the reservation says so), not waited for; once the job is
// free they are reserved as usual.
TEST_F(PostgresStoreTest, AReservationPassesOverAJobAnotherTransactionHolds) {
  std::unique_ptr<Store> store = Open();
  ASSERT_TRUE(store->Migrate().ok());
  Job held = store->CreateJob(NewJob("held")).value();
  Job free = store->CreateJob(NewJob("free")).value();
  for (const Job& job : {held, free}) {
    NewRun r;
    r.scheduled_for = r.not_before = kT0;
    r.trigger = RunTrigger::kManual;
    ASSERT_TRUE(store->InsertRun(job.id, r, kT0).ok());
  }
  auto c = pg::Connection::Open(url_, schema_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE((*c)->ExecScript("BEGIN").ok());
  ASSERT_TRUE((*c)->Exec("SELECT 1 FROM job_schedule WHERE job_id = $1 FOR UPDATE",
                         pg::Params().Add(held.id))
                  .ok());
  auto first = store->ReserveQueued("i-1", kT0, 10, kT0 + seconds(30));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->contended);
  ASSERT_EQ(first->runs.size(), 1u) << "not waited for";
  EXPECT_EQ(first->runs[0].job_id, free.id);
  ASSERT_TRUE((*c)->ExecScript("COMMIT").ok());
  auto second = store->ReserveQueued("i-2", kT0, 10, kT0 + seconds(30));
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->contended);
  ASSERT_EQ(second->runs.size(), 1u);
  EXPECT_EQ(second->runs[0].job_id, held.id);
  EXPECT_EQ(second->runs[0].instance_id, "i-2");
}

TEST_F(PostgresStoreTest, AFleetOfTwoSweepsRetentionOnceAndNeverTouchesLiveRuns) {
  std::unique_ptr<Store> a = Open(), b = Open();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Migrate().ok());
  std::vector<Job> jobs;
  for (int i = 0; i < 6; ++i) {
    Job j = NewJob("job-" + std::to_string(i));
    j.next_run_at.reset();
    jobs.push_back(*a->CreateJob(j));
    (void)testing::WriteSettledRuns(a.get(), jobs.back(),
                                    std::vector<RunStatus>(8, RunStatus::kSucceeded), kT0);
  }
  // A live run of job-0: started long ago (older than every settled run), and
  // another still queued.
  NewRun live;
  live.scheduled_for = live.not_before = kT0 - seconds(86400);
  ASSERT_TRUE(b->InsertRun(jobs[0].id, live, kT0).ok());
  ASSERT_EQ(b->StartQueued("b", kT0, 1, kT0 + std::chrono::hours(24))->size(), 1u);
  live.scheduled_for -= seconds(60);
  ASSERT_TRUE(b->InsertRun(jobs[0].id, live, kT0).ok());

  testing::SimulatedClock clock(kT0 + std::chrono::hours(1));
  RetentionOptions options;
  options.policy.max_runs = 3;
  options.batch = 4;
  options.jobs_per_batch = 2;
  options.pause = Duration(0);
  options.instance_id = "a";
  RetentionService sa(options, a.get(), &clock);
  options.instance_id = "b";
  RetentionService sb(options, b.get(), &clock);
  Result<std::optional<std::int64_t>> ra = std::optional<std::int64_t>(), rb = ra;
  std::thread ta([&] { ra = sa.SweepOnce(); });
  std::thread tb([&] { rb = sb.SweepOnce(); });
  ta.join();
  tb.join();
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_NE(ra->has_value(), rb->has_value()) << "both or neither swept";
  EXPECT_EQ(ra->value_or(0) + rb->value_or(0), 6 * 5);
  for (const Job& j : jobs) {
    EXPECT_EQ(testing::RunIdsOf(a.get(), j).size(), j.id == jobs[0].id ? 5u : 3u) << j.spec.name;
  }
  RunFilter running;
  running.status = RunStatus::kRunning;
  EXPECT_EQ(a->ListRuns(running)->size(), 1u);
  RunFilter queued;
  queued.status = RunStatus::kQueued;
  EXPECT_EQ(a->ListRuns(queued)->size(), 1u);
}

// When the next free queued run becomes due is asked after most passes that
// took less than a full batch; with thousands queued, reading them all took
// 2.7 ms a call. Schema version 12's index answers it from its first entry.
TEST_F(PostgresStoreTest, TheNextQueuedRunIsFoundWithoutReadingTheQueue) {
  std::unique_ptr<Store> store = Open();
  ASSERT_TRUE(store->Migrate().ok());
  Job job = store->CreateJob(NewJob("queued")).value();
  for (int i = 0; i < 200; ++i) {
    NewRun r;
    r.scheduled_for = kT0 + seconds(i);
    r.not_before = kT0 + seconds(1000 - i);
    r.trigger = RunTrigger::kManual;
    ASSERT_TRUE(store->InsertRun(job.id, r, kT0).ok());
  }
  EXPECT_EQ(store->NextQueuedAt().value(), kT0 + seconds(801));
  auto c = pg::Connection::Open(url_, schema_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE((*c)->ExecScript("ANALYZE runs").ok());
  auto plan = (*c)->Exec(std::string("EXPLAIN ") + store_internal::kPgNextQueuedSql);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::string text;
  for (int i = 0; i < plan->size(); ++i) text += plan->Text(i, 0) + "\n";
  EXPECT_NE(text.find("runs_queue_wait"), std::string::npos) << text;
}

// Retention asks for a job's n-th newest failure on every batch it deletes;
// without schema version 13's index that read the job's whole history (0.4 s
// a batch, in parallel on both cores, with 3,000,000 runs).
TEST_F(PostgresStoreTest, RetentionFindsTheNewestFailuresWithoutReadingTheHistory) {
  std::unique_ptr<Store> store = Open();
  ASSERT_TRUE(store->Migrate().ok());
  Job job = store->CreateJob(NewJob("history")).value();
  auto c = pg::Connection::Open(url_, schema_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  // A history of 20,000 succeeded runs: big enough that reading it all costs
  // the planner more than an index would.
  ASSERT_TRUE((*c)->Exec("INSERT INTO runs (job_id, scheduled_for, attempt, \"trigger\", status, "
                         "queued_at, not_before) SELECT $1::bigint, g, 1, 'schedule', "
                         "'succeeded', 0, 0 FROM generate_series(1, 20000) g",
                         pg::Params().Add(job.id))
                  .ok());
  ASSERT_TRUE((*c)->ExecScript("ANALYZE runs").ok());
  auto plan = (*c)->Exec(
      "EXPLAIN " + store_internal::NthNewestRunSql('$', store_internal::kFailureStatuses),
      pg::Params().Add(job.id).Add(std::int64_t{9}));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::string text;
  for (int i = 0; i < plan->size(); ++i) text += plan->Text(i, 0) + "\n";
  EXPECT_NE(text.find("runs_failures"), std::string::npos) << text;
}

TEST_F(PostgresStoreTest, OutputThatIsNotUtf8IsStoredWithReplacementCharacters) {
  std::unique_ptr<Store> store = Open();
  ASSERT_TRUE(store->Migrate().ok());
  auto job = store->CreateJob(NewJob("bytes"));
  ASSERT_TRUE(job.ok());
  NewRun r;
  r.scheduled_for = kT0;
  ASSERT_TRUE(store->InsertRun(job->id, r, kT0).ok());
  auto started = store->StartQueued("inst", kT0, 1, kT0 + seconds(30));
  ASSERT_EQ(started->size(), 1u);
  RunOutcome o;
  o.run_id = started->front().id;
  o.lease_token = started->front().lease_token;
  o.status = RunStatus::kFailed;
  o.finished_at = kT0 + seconds(1);
  o.output =
      std::string("ok \xff\xfe nul:") + '\0' + " caf\xc3\xa9 \xe2\x82";  // bad, NUL, good, cut
  o.error = "exit 1";
  ASSERT_EQ(*store->SettleRuns({o}), std::vector<bool>({true}));
  EXPECT_EQ(store->GetRun(o.run_id)->output,
            "ok \xEF\xBF\xBD\xEF\xBF\xBD nul:\xEF\xBF\xBD caf\xc3\xa9 \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_F(PostgresStoreTest, UnreachableServerAndBadUrlsGiveClearErrorsWithoutThePassword) {
  auto down = Store::Open("postgresql://sked:hunter2@127.0.0.1:1/sked");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(down.status().message().find("postgresql://sked:***@127.0.0.1:1/sked"),
            std::string::npos)
      << down.status().message();
  EXPECT_EQ(down.status().message().find("hunter2"), std::string::npos);

  auto bad = Store::Open("postgresql://sked@127.0.0.1:5432/sked?nosuchoption=1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().ToString();

  StoreOptions long_schema;
  long_schema.schema = std::string(64, 's');
  EXPECT_EQ(Store::Open(url_, long_schema).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Store::Redact("postgresql://u:p%40ss@h/db"), "postgresql://u:***@h/db");
  EXPECT_EQ(Store::Redact("host=h password=secret dbname=x"), "host=h password=*** dbname=x");
  EXPECT_EQ(Store::Redact("sqlite:///var/lib/sked.db"), "sqlite:///var/lib/sked.db");
}

}  // namespace
}  // namespace sked
