#include "sked/postgres_store.h"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/notify_policy.h"
#include "core/run_policy.h"
#include "store/postgres/pg_client.h"
#include "store/postgres/pg_migrations.h"
#include "store/postgres/pg_sql.h"
#include "store/retention_sweep.h"
#include "store/store_codec.h"

namespace sked {

namespace store_internal {

const char kPgNextQueuedSql[] =
    "SELECT min(not_before) FROM runs WHERE status = 'queued' AND instance_id = ''";

}  // namespace store_internal
namespace {

using pg::ArrayLiteral;
using pg::Connection;
using pg::Params;
using pg::Rows;
using store_internal::AtUs;
using store_internal::IsFailure;
using store_internal::JoinNotifyList;
using store_internal::JoinTags;
using store_internal::OptUs;
using store_internal::RetryOn;
using store_internal::SetRetryOn;
using store_internal::SplitNotifyList;
using store_internal::SplitTags;
using store_internal::Us;

std::optional<Instant> OptInstant(const Rows& r, int row, int col) {
  return r.IsNull(row, col) ? std::nullopt : std::optional<Instant>(AtUs(r.Int(row, col)));
}
std::optional<std::string> OptText(const Rows& r, int row, int col) {
  return r.IsNull(row, col) ? std::nullopt : std::optional<std::string>(r.Text(row, col));
}
std::optional<Duration> OptDuration(const Rows& r, int row, int col) {
  return r.IsNull(row, col) ? std::nullopt : std::optional<Duration>(Duration(r.Int(row, col)));
}

constexpr const char* kJobColumns =
    "j.id, j.name, j.description, j.driver, j.driver_config, j.schedule, j.time_zone, j.state, "
    "j.start_at, j.end_at, j.overlap, j.max_queued, j.max_concurrent, j.misfire, "
    "j.catchup_window_us, j.starting_deadline_us, j.timeout_us, j.priority, j.retry_max, "
    "j.retry_backoff_us, j.retry_multiplier, j.retry_max_backoff_us, j.retry_jitter, j.retry_on, "
    "j.tags, j.source, js.next_run_at, s.last_run_at, s.runs, s.successes, s.failures, j.version, "
    "j.created_at, j.updated_at, j.state_reason, s.last_success_at, j.notify_on, "
    "j.notify_channels, j.late_after_us, j.expected_duration_us, j.no_success_for_us, "
    "j.keep_age_us, j.keep_runs, j.keep_failures, j.overrun_factor";
// A job row with its counters and its next fire (kept apart: settling a run
// never locks the row that claims lock, and claims lock and write a narrow row).
constexpr const char* kJobFrom =
    " FROM jobs j JOIN job_stats s ON s.job_id = j.id JOIN job_schedule js ON js.job_id = j.id";

Job ReadJob(const Rows& s, int row) {
  auto text = [&](int c) { return s.Text(row, c); };
  auto num = [&](int c) { return s.Int(row, c); };
  Job j;
  j.id = num(0);
  JobSpec& spec = j.spec;
  spec.name = text(1);
  spec.description = text(2);
  spec.driver = text(3);
  spec.driver_config = text(4);
  spec.schedule = text(5);
  spec.time_zone = text(6);
  j.state = ParseJobState(text(7)).value_or(JobState::kDisabled);
  spec.paused = j.state == JobState::kPaused;
  spec.start_at = OptInstant(s, row, 8);
  spec.end_at = OptInstant(s, row, 9);
  spec.overlap = ParseOverlapPolicy(text(10)).value_or(OverlapPolicy::kSkip);
  spec.max_queued = static_cast<int>(num(11));
  spec.max_concurrent = static_cast<int>(num(12));
  spec.misfire = ParseMisfirePolicy(text(13)).value_or(MisfirePolicy::kRunOnce);
  spec.catchup_window = Duration(num(14));
  spec.starting_deadline = OptDuration(s, row, 15);
  spec.timeout = OptDuration(s, row, 16);
  spec.priority = static_cast<int>(num(17));
  spec.retry.max_retries = static_cast<int>(num(18));
  spec.retry.backoff = Duration(num(19));
  spec.retry.multiplier = s.Double(row, 20);
  spec.retry.max_backoff = Duration(num(21));
  spec.retry.jitter = s.Double(row, 22);
  SetRetryOn(text(23), &spec.retry);
  spec.tags = SplitTags(text(24));
  j.source = text(25);
  j.next_run_at = OptInstant(s, row, 26);
  j.last_run_at = OptInstant(s, row, 27);
  j.runs = num(28);
  j.successes = num(29);
  j.failures = num(30);
  j.version = num(31);
  j.created_at = AtUs(num(32));
  j.updated_at = AtUs(num(33));
  j.state_reason = text(34);
  j.last_success_at = OptInstant(s, row, 35);
  spec.notify.on = SplitNotifyList(OptText(s, row, 36));
  spec.notify.channels = SplitNotifyList(OptText(s, row, 37));
  spec.late_after = OptDuration(s, row, 38);
  spec.expected_duration = OptDuration(s, row, 39);
  spec.no_success_for = OptDuration(s, row, 40);
  spec.retention.max_age = OptDuration(s, row, 41);
  if (!s.IsNull(row, 42)) spec.retention.max_runs = static_cast<int>(s.Int(row, 42));
  if (!s.IsNull(row, 43)) spec.retention.keep_failures = static_cast<int>(s.Int(row, 43));
  if (!s.IsNull(row, 44)) spec.overrun_factor = s.Double(row, 44);
  return j;
}

// The written job fields as parameters $1-$37, in the order the INSERT names them.
Params JobSpecParams(const Job& j) {
  const JobSpec& spec = j.spec;
  Params p;
  p.Add(spec.name)
      .Add(spec.description)
      .Add(spec.driver)
      .Add(spec.driver_config)
      .Add(spec.schedule)
      .Add(spec.time_zone)
      .Add(JobStateName(j.state))
      .Add(OptUs(spec.start_at))
      .Add(OptUs(spec.end_at))
      .Add(OverlapPolicyName(spec.overlap))
      .Add(spec.max_queued)
      .Add(spec.max_concurrent)
      .Add(MisfirePolicyName(spec.misfire))
      .Add(Us(spec.catchup_window))
      .Add(OptUs(spec.starting_deadline))
      .Add(OptUs(spec.timeout))
      .Add(spec.priority)
      .Add(spec.retry.max_retries)
      .Add(Us(spec.retry.backoff))
      .Add(spec.retry.multiplier)
      .Add(Us(spec.retry.max_backoff))
      .Add(spec.retry.jitter)
      .Add(RetryOn(spec.retry))
      .Add(JoinTags(spec.tags))
      .Add(j.source)
      .Add(OptUs(j.next_run_at))
      .Add(Us(j.updated_at))
      .Add(j.state_reason)
      .Add(JoinNotifyList(spec.notify.on))
      .Add(JoinNotifyList(spec.notify.channels))
      .Add(OptUs(spec.late_after))
      .Add(OptUs(spec.expected_duration))
      .Add(OptUs(spec.no_success_for))
      .Add(OptUs(spec.retention.max_age))
      .Add(spec.retention.max_runs)
      .Add(spec.retention.keep_failures)
      .Add(spec.overrun_factor);
  return p;
}

constexpr const char* kRunColumns =
    "r.id, r.job_id, j.name, r.scheduled_for, r.attempt, r.\"trigger\", r.status, r.priority, "
    "r.queued_at, r.not_before, r.started_at, r.finished_at, r.instance_id, r.lease_token, "
    "r.lease_expires_at, r.exit_code, r.output, r.output_truncated, r.result, r.error, r.reason, "
    "r.cancel_requested, j.version";

Run ReadRun(const Rows& s, int row) {
  Run r;
  r.id = s.Int(row, 0);
  r.job_id = s.Int(row, 1);
  r.job_name = s.Text(row, 2);
  r.scheduled_for = AtUs(s.Int(row, 3));
  r.attempt = static_cast<int>(s.Int(row, 4));
  r.trigger = ParseRunTrigger(s.Text(row, 5)).value_or(RunTrigger::kSchedule);
  r.status = ParseRunStatus(s.Text(row, 6)).value_or(RunStatus::kFailed);
  r.priority = static_cast<int>(s.Int(row, 7));
  r.queued_at = AtUs(s.Int(row, 8));
  r.not_before = AtUs(s.Int(row, 9));
  r.started_at = OptInstant(s, row, 10);
  r.finished_at = OptInstant(s, row, 11);
  r.instance_id = s.Text(row, 12);
  r.lease_token = s.Int(row, 13);
  r.lease_expires_at = OptInstant(s, row, 14);
  if (!s.IsNull(row, 15)) r.exit_code = static_cast<int>(s.Int(row, 15));
  r.output = s.Text(row, 16);
  r.output_truncated = s.Bool(row, 17);
  r.result = s.Text(row, 18);
  r.error = s.Text(row, 19);
  r.reason = s.Text(row, 20);
  r.cancel_requested = s.Bool(row, 21);
  r.job_version = s.Int(row, 22);
  return r;
}

// A transaction on one connection; rolled back unless committed.
class Tx {
 public:
  explicit Tx(Connection* c) : c_(c) {}
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;
  ~Tx() {
    if (open_) (void)c_->ExecScript("ROLLBACK");
  }
  Status Begin() {
    SKED_RETURN_IF_ERROR(c_->ExecScript("BEGIN"));
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    open_ = false;
    return c_->ExecScript("COMMIT");
  }

 private:
  Connection* c_;
  bool open_ = false;
};

// A run to insert, as one row of a batched INSERT ... SELECT FROM unnest.
struct RunRow {
  std::int64_t job_id;
  NewRun run;
  Instant queued_at;
  std::string instance;  // reservation, or empty
  std::optional<Instant> reserve_until;
};

// The NOTIFY channel of a schema: "sked_" and a 64-bit FNV-1a hash of its
// name in hex, so that any schema name (up to 63 bytes) gives a channel within
// PostgreSQL's 63-byte limit, the same in every sked version.
std::string ChannelFor(const std::string& schema) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : schema) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string("sked_") + hex;
}

// Batched updates join the table to unnest($1::bigint[], ...) by id and
// repeat the ids as `id = ANY($1::bigint[])`. Joined to the unnest alone, a
// table of some thousand rows (a queue being drained) is read whole and
// hashed for every batch, 4 of the 8 ms a 222-run settle took; the ANY makes
// the planner read only the rows named, by index once the table is large.

// Notification payloads on the store's channel.
constexpr const char* kNotifyJobs = "jobs";
constexpr const char* kNotifyQueued = "queued";
constexpr const char* kNotifyCancel = "cancel";

// LISTENs on the store's channel on a connection of its own and reports what
// other handles announced; reconnects with backoff when the server goes away.
class Listener {
 public:
  Listener(std::string url, std::string schema, std::string channel, pg::Pool* pool)
      : url_(std::move(url)),
        schema_(std::move(schema)),
        channel_(std::move(channel)),
        pool_(pool) {}
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener() {
    if (thread_.joinable()) {
      stop_ = true;
      const char byte = 1;
      (void)!::write(wake_[1], &byte, 1);
      thread_.join();
    }
    for (int fd : wake_) {
      if (fd >= 0) ::close(fd);
    }
  }

  bool Set(std::function<void(StoreEvent)> fn) {
    {
      std::lock_guard<std::mutex> l(mu_);
      fn_ = std::move(fn);
      if (!fn_ || thread_.joinable()) return true;
      if (::pipe(wake_) != 0) return false;
    }
    thread_ = std::thread([this] { Loop(); });
    return true;
  }

 private:
  void Emit(StoreEvent e) {
    std::lock_guard<std::mutex> l(mu_);
    if (fn_) fn_(e);
  }

  // Waits up to `ms` for the socket (or the stop pipe); false when stopping.
  bool Wait(int socket, int ms) {
    pollfd fds[2] = {{wake_[0], POLLIN, 0}, {socket, POLLIN, 0}};
    (void)::poll(fds, socket >= 0 ? 2 : 1, ms);
    return !stop_;
  }

  void Loop() {
    int backoff_ms = 50;
    bool connected_before = false;
    while (!stop_) {
      auto conn = Connection::Open(url_, schema_);
      if (!conn.ok()) {
        if (!Wait(-1, backoff_ms)) return;
        backoff_ms = std::min(backoff_ms * 2, 5000);
        continue;
      }
      auto quoted = pg::QuoteIdentifier((*conn)->raw(), channel_);
      if (!quoted.ok() || !(*conn)->ExecScript("LISTEN " + *quoted).ok()) {
        if (!Wait(-1, backoff_ms)) return;
        backoff_ms = std::min(backoff_ms * 2, 5000);
        continue;
      }
      backoff_ms = 50;
      // Whatever happened while no one listened must be looked at.
      if (connected_before) Emit(StoreEvent::kReconnected);
      connected_before = true;
      pg_conn* raw = (*conn)->raw();
      while (Wait(PQsocket(raw), 1000)) {
        if (PQconsumeInput(raw) == 0) break;  // connection lost: reconnect
        while (PGnotify* n = PQnotifies(raw)) {
          const std::string payload = n->extra != nullptr ? n->extra : "";
          const bool own = pool_->OwnsBackend(n->be_pid);
          PQfreemem(n);
          if (own) continue;  // this handle's own change: nothing to learn
          if (payload == kNotifyJobs) {
            Emit(StoreEvent::kJobsChanged);
          } else if (payload == kNotifyQueued) {
            Emit(StoreEvent::kRunQueued);
          } else if (payload == kNotifyCancel) {
            Emit(StoreEvent::kCancelRequested);
          }
        }
      }
    }
  }

  const std::string url_, schema_, channel_;
  pg::Pool* pool_;
  std::mutex mu_;  // held while fn_ runs: Set() waits for a call in flight
  std::function<void(StoreEvent)> fn_;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class PostgresStore final : public Store {
 public:
  PostgresStore(const std::string& url, const StoreOptions& options)
      : pool_(url, options.schema, options.max_connections, options.idle_transaction_timeout),
        channel_(ChannelFor(options.schema)),
        listener_(url, options.schema, channel_, &pool_),
        notify_(options.notify),
        rng_(std::random_device{}()) {}

  Status Migrate() override;
  Result<int> SchemaVersion() override;
  int LatestSchemaVersion() const override {
    return store_internal::PostgresMigrations().back().version;
  }

  Result<Job> CreateJob(const Job& job) override;
  Result<Job> UpdateJob(const Job& job) override;
  Result<Job> GetJob(std::int64_t id) override;
  Result<Job> GetJobByName(std::string_view name) override;
  Result<std::vector<Job>> ListJobs(const JobFilter& filter) override;
  Result<std::int64_t> CountJobs(JobState state) override;
  Result<std::vector<std::string>> ListFiringDrivers() override;
  Status DeleteJob(std::int64_t id) override;

  Result<std::vector<Run>> ClaimDue(const ClaimRequest& request,
                                    const std::function<FirePlan(const DueJob&)>& plan) override;
  Result<std::optional<Instant>> NextDueAt() override;
  Result<std::int64_t> CountDue(Instant by, std::int64_t limit) override;
  Result<Run> InsertRun(std::int64_t job_id, const NewRun& run, Instant now) override;

  Result<Reservation> ReserveQueued(std::string_view instance, Instant now, int limit,
                                    Instant reserve_until) override;
  Result<std::vector<Run>> StartQueued(std::string_view instance, Instant now, int limit,
                                       Instant lease_until) override;
  Result<std::vector<bool>> RecordDispatches(std::string_view instance,
                                             const std::vector<Dispatch>& dispatches,
                                             Instant lease_until) override;
  Result<RunningCounts> CountRunning(Instant now) override;
  Result<std::optional<Instant>> NextQueuedAt() override;
  Result<std::int64_t> QueueDepth() override;

  Result<std::vector<bool>> SettleRuns(const std::vector<RunOutcome>& outcomes) override;
  Status ExtendLeases(std::string_view instance, Instant now, Instant renew_before,
                      Instant lease_until) override;
  Result<std::vector<Run>> ReapExpired(
      Instant now, int limit,
      const std::function<std::optional<NewRun>(const Job&, const Run&)>& retry) override;

  Result<bool> RequestCancel(std::int64_t run_id, Instant now, std::string_view reason) override;
  Result<std::vector<Run>> CancelRequested(std::string_view instance) override;

  Result<Run> GetRun(std::int64_t id) override;
  Result<std::vector<Run>> ListRuns(const RunFilter& filter) override;

  Status UpsertJobType(const JobType& type) override;
  Result<std::vector<JobType>> ListJobTypes() override;
  Status RegisterInstance(const InstanceInfo& info,
                          const std::optional<InstanceInfo>& replacing) override;
  Status Heartbeat(std::string_view instance, Instant now) override;
  Status DeregisterInstance(std::string_view instance, Instant now) override;
  Result<std::vector<InstanceInfo>> ListInstances() override;

  Result<ApiToken> CreateToken(const ApiToken& token) override;
  Result<ApiToken> GetToken(std::int64_t id) override;
  Result<std::vector<ApiToken>> ListTokens() override;
  Result<ApiToken> RevokeToken(std::string_view name, Instant now) override;
  Result<std::int64_t> AppendAudit(const AuditEntry& entry) override;
  Result<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) override;

  Result<std::vector<Notification>> ClaimNotifications(std::string_view instance, Instant now,
                                                       int limit, Instant claim_until) override;
  Result<std::vector<bool>> RecordDeliveries(std::string_view instance,
                                             const std::vector<DeliveryResult>& results) override;
  Result<std::optional<Instant>> NextNotificationAt() override;
  Result<std::vector<DeliveryAttempt>> ListDeliveryAttempts(std::int64_t notification_id) override;
  Result<std::vector<Notification>> ListNotifications(const NotificationFilter& filter) override;
  Result<std::vector<Notification>> RaiseWatchdogEvents(Instant now) override;
  Result<std::int64_t> PruneNotifications(Instant finished_before, int limit) override;
  Result<PruneResult> PruneRuns(const PruneRequest& request) override;
  Result<bool> AcquireLease(std::string_view name, std::string_view holder, Instant now,
                            Instant until) override;

  bool SetListener(const std::function<void(StoreEvent)>& listener) override {
    return listener_.Set(listener);
  }

  Status Check() {
    SKED_ASSIGN_OR_RETURN(auto conn, pool_.Acquire());
    return Status::Ok();
  }

 private:
  // Runs `fn` on a pooled connection; a transaction that failed on a
  // serialization failure or deadlock is run again (a few times).
  template <typename Fn>
  auto With(Fn fn) -> decltype(fn(std::declval<Connection*>())) {
    for (int attempt = 1;; ++attempt) {
      auto conn = pool_.Acquire();
      if (!conn.ok()) return conn.status();
      auto result = fn(&**conn);
      if (result.ok() || attempt >= 5 || !(*conn)->last_error_retryable()) return result;
    }
  }

  Status Notify(Connection* c, const char* what) {
    return c->Exec("SELECT pg_notify($1, $2)", Params().Add(channel_).Add(what)).status();
  }
  std::int64_t NewToken() {
    std::lock_guard<std::mutex> l(rng_mu_);
    return policy::NewLeaseToken(rng_);
  }

  static Result<Job> GetJobOn(Connection* c, std::int64_t id);
  // StartQueued (reserve false: the runs start now, leased until `until`) and
  // ReserveQueued (reserved until `until`).
  Result<Reservation> TakeQueued(std::string_view instance, Instant now, int limit, Instant until,
                                 bool reserve);
  static Result<Run> GetRunOn(Connection* c, std::int64_t id);
  // Inserts runs unless their (job, scheduled_for, attempt) exists; returns
  // per row the run written (nullopt: it existed).
  static Result<std::vector<std::optional<Run>>> InsertRuns(Connection* c,
                                                            const std::vector<RunRow>& rows);
  struct Settled {
    std::int64_t job_id;
    RunStatus status;
    std::optional<Instant> started_at;
    std::int64_t run_id;
    bool retry_follows;
    Instant at;  // when it was settled
  };
  // Counts settled runs in their jobs' counters and writes the outbox rows
  // their settlement raises (policy::RouteSettlement).
  Status CountSettled(Connection* c, const std::vector<Settled>& settled);
  // REQUIRES: `jobs` holds, per settled job, its id, whether it was failing,
  // its name and notify settings (CountSettled's locking read).
  Status WriteOutbox(Connection* c, const std::vector<Settled>& settled, const Rows& jobs);
  // The outbox rows of runs recorded skipped (missed): `rows` holds per run
  // its id, job id and finished_at (RETURNING id, job_id, finished_at).
  Status WriteMissed(Connection* c, const Rows& rows);
  Status WriteMissed(Connection* c, const std::vector<Settled>& skipped);
  // Queued and running runs per job, for the jobs in `job_ids` (an array
  // literal); jobs with neither are absent. One pass over the active runs
  // whatever plan the server picks.
  using ActiveCounts = std::unordered_map<std::int64_t, std::pair<int, int>>;
  static Result<ActiveCounts> CountActiveRuns(Connection* c, const ArrayLiteral& job_ids);

  pg::Pool pool_;
  const std::string channel_;
  Listener listener_;
  const NotifyDefaults notify_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;  // guarded by rng_mu_ (lease tokens)
};

// ---------------------------------------------------------------- schema

Result<int> PostgresStore::SchemaVersion() {
  return With([](Connection* c) -> Result<int> {
    SKED_ASSIGN_OR_RETURN(Rows t, c->Exec("SELECT to_regclass('schema_migrations') IS NOT NULL"));
    if (t.empty() || !t.Bool(0, 0)) return 0;
    SKED_ASSIGN_OR_RETURN(Rows v, c->Exec("SELECT coalesce(max(version), 0) FROM "
                                          "schema_migrations"));
    return static_cast<int>(v.Int(0, 0));
  });
}

Status PostgresStore::Migrate() {
  SKED_ASSIGN_OR_RETURN(auto conn, pool_.Acquire());
  Connection* c = &*conn;
  SKED_ASSIGN_OR_RETURN(std::string schema, pg::QuoteIdentifier(c->raw(), pool_.schema()));
  const std::string lock_key = "sked migrate " + pool_.schema();
  for (const auto& m : store_internal::PostgresMigrations()) {
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    // Instances starting together take turns: the first migrates, the others
    // find the work done.
    SKED_RETURN_IF_ERROR(
        c->Exec("SELECT pg_advisory_xact_lock(hashtext($1))", Params().Add(lock_key)).status());
    SKED_RETURN_IF_ERROR(c->ExecScript("CREATE SCHEMA IF NOT EXISTS " + schema));
    SKED_RETURN_IF_ERROR(
        c->ExecScript("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                      "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"));
    SKED_ASSIGN_OR_RETURN(Rows newest,
                          c->Exec("SELECT coalesce(max(version), 0) FROM schema_migrations"));
    if (newest.Int(0, 0) > LatestSchemaVersion()) {
      return FailedPreconditionError("database schema " + pool_.schema() + " has schema version " +
                                     std::to_string(newest.Int(0, 0)) +
                                     ", newer than this sked knows (" +
                                     std::to_string(LatestSchemaVersion()) + "); upgrade sked");
    }
    SKED_ASSIGN_OR_RETURN(Rows done, c->Exec("SELECT 1 FROM schema_migrations WHERE version = $1",
                                             Params().Add(m.version)));
    if (!done.empty()) continue;
    SKED_RETURN_IF_ERROR(c->ExecScript(m.sql).WithContext("migration " + std::to_string(m.version) +
                                                          " (" + std::string(m.name) + ")"));
    SKED_RETURN_IF_ERROR(c->Exec("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                 Params().Add(m.version).Add(m.name))
                             .status());
    SKED_RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- jobs

Result<Job> PostgresStore::GetJobOn(Connection* c, std::int64_t id) {
  SKED_ASSIGN_OR_RETURN(
      Rows r, c->Exec(std::string("SELECT ") + kJobColumns + kJobFrom + " WHERE j.id = $1",
                      Params().Add(id)));
  if (r.empty()) return NotFoundError("job " + std::to_string(id) + " not found");
  return ReadJob(r, 0);
}

Result<Job> PostgresStore::CreateJob(const Job& job) {
  return With([&](Connection* c) -> Result<Job> {
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    Params p = JobSpecParams(job);
    p.Add(Us(job.created_at));
    // The job's row, then its schedule row ($26: next_run_at) and its
    // counters, in one statement.
    auto r = c->Exec(
        std::string("WITH w AS (INSERT INTO jobs (name, description, driver, driver_config, "
                    "schedule, time_zone, state, start_at, end_at, overlap, max_queued, "
                    "max_concurrent, misfire, catchup_window_us, starting_deadline_us, "
                    "timeout_us, priority, retry_max, retry_backoff_us, retry_multiplier, "
                    "retry_max_backoff_us, retry_jitter, retry_on, tags, source, updated_at, "
                    "state_reason, notify_on, notify_channels, late_after_us, "
                    "expected_duration_us, no_success_for_us, keep_age_us, keep_runs, "
                    "keep_failures, overrun_factor, created_at) VALUES ($1, $2, $3, $4, $5, $6, "
                    "$7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, "
                    "$23, $24, $25, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38) "
                    "RETURNING id, state), "
                    "s AS (INSERT INTO job_schedule (job_id, next_run_at, active) SELECT id, "
                    "$26::bigint, state = 'active' FROM w), "
                    "t AS (INSERT INTO job_stats (job_id) SELECT id FROM w) SELECT id FROM w"),
        p);
    if (r.status().code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("a job named '" + job.spec.name + "' already exists");
    }
    SKED_RETURN_IF_ERROR(r.status());
    SKED_ASSIGN_OR_RETURN(Job created, GetJobOn(c, r->Int(0, 0)));
    SKED_RETURN_IF_ERROR(Notify(c, kNotifyJobs));
    SKED_RETURN_IF_ERROR(tx.Commit());
    return created;
  });
}

Result<Job> PostgresStore::UpdateJob(const Job& job) {
  return With([&](Connection* c) -> Result<Job> {
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    Params p = JobSpecParams(job);
    p.Add(job.id).Add(job.version);
    // The schedule row first, as claims lock it (then, rarely, the job's).
    SKED_RETURN_IF_ERROR(
        c->Exec("SELECT 1 FROM job_schedule WHERE job_id = $1 FOR UPDATE", Params().Add(job.id))
            .status());
    auto r = c->Exec(
        std::string(
            "WITH w AS (UPDATE jobs j SET name = $1, description = $2, driver = $3, "
            "driver_config = $4, schedule = $5, time_zone = $6, state = $7, start_at = "
            "$8, end_at = $9, overlap = $10, max_queued = $11, max_concurrent = $12, "
            "misfire = $13, catchup_window_us = $14, starting_deadline_us = $15, "
            "timeout_us = $16, priority = $17, retry_max = $18, retry_backoff_us = $19, "
            "retry_multiplier = $20, retry_max_backoff_us = $21, retry_jitter = $22, "
            "retry_on = $23, tags = $24, source = $25, updated_at = "
            "$27, state_reason = $28, notify_on = $29, notify_channels = $30, "
            "late_after_us = $31, expected_duration_us = $32, no_success_for_us = $33, "
            "keep_age_us = $34, keep_runs = $35, keep_failures = $36, overrun_factor = $37, "
            "version = version + 1 WHERE id = $38 AND version = $39 RETURNING id, state), "
            "s AS (UPDATE job_schedule js SET next_run_at = $26::bigint, active = w.state = "
            "'active' "
            "FROM w WHERE js.job_id = w.id) SELECT id FROM w"),
        p);
    if (r.status().code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("a job named '" + job.spec.name + "' already exists");
    }
    SKED_RETURN_IF_ERROR(r.status());
    if (r->empty()) {
      SKED_ASSIGN_OR_RETURN(Job current, GetJobOn(c, job.id));
      return AbortedError("job '" + current.spec.name + "' changed meanwhile (version " +
                          std::to_string(current.version) + ", expected " +
                          std::to_string(job.version) + "); reload it and retry");
    }
    SKED_ASSIGN_OR_RETURN(Job updated, GetJobOn(c, job.id));
    SKED_RETURN_IF_ERROR(Notify(c, kNotifyJobs));
    SKED_RETURN_IF_ERROR(tx.Commit());
    return updated;
  });
}

Result<Job> PostgresStore::GetJob(std::int64_t id) {
  return With([&](Connection* c) { return GetJobOn(c, id); });
}

Result<Job> PostgresStore::GetJobByName(std::string_view name) {
  return With([&](Connection* c) -> Result<Job> {
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec(std::string("SELECT ") + kJobColumns + kJobFrom + " WHERE j.name = $1",
                        Params().Add(name)));
    if (r.empty()) return NotFoundError("job '" + std::string(name) + "' not found");
    return ReadJob(r, 0);
  });
}

Result<std::vector<Job>> PostgresStore::ListJobs(const JobFilter& filter) {
  return With([&](Connection* c) -> Result<std::vector<Job>> {
    // Only the conditions asked for, numbered as they are added: a generic
    // plan for "($n IS NULL OR ...)" cannot use an index for any of them.
    Params p;
    std::string sql = std::string("SELECT ") + kJobColumns + kJobFrom + " WHERE j.id > $1";
    p.Add(filter.after_id);
    auto param = [&](const auto& value) {
      p.Add(value);
      return "$" + std::to_string(p.size());
    };
    if (filter.state) sql += " AND j.state = " + param(std::string(JobStateName(*filter.state)));
    if (filter.source) sql += " AND j.source = " + param(*filter.source);
    if (filter.tag) {
      sql +=
          " AND strpos(',' || j.tags || ',', ',' || " + param(*filter.tag) + "::text || ',') > 0";
    }
    if (filter.driver) sql += " AND j.driver = " + param(*filter.driver);
    if (!filter.name_prefix.empty()) {
      const std::string n = param(filter.name_prefix);
      sql += " AND left(j.name, length(" + n + "::text)) = " + n;
    }
    if (filter.failing) {
      sql +=
          " AND s.last_run_at IS NOT NULL AND (s.last_success_at IS NULL OR s.last_success_at < "
          "s.last_run_at)";
    }
    if (filter.due_before) sql += " AND js.next_run_at < " + param(OptUs(filter.due_before));
    sql += " ORDER BY j.id LIMIT " + param(filter.limit);
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec(sql, p));
    std::vector<Job> out;
    out.reserve(static_cast<size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadJob(r, i));
    return out;
  });
}

Result<std::int64_t> PostgresStore::CountJobs(JobState state) {
  return With([&](Connection* c) -> Result<std::int64_t> {
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec("SELECT count(*) FROM jobs WHERE state = $1",
                                          Params().Add(JobStateName(state))));
    return r.Int(0, 0);
  });
}

Result<std::vector<std::string>> PostgresStore::ListFiringDrivers() {
  return With([&](Connection* c) -> Result<std::vector<std::string>> {
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec("SELECT DISTINCT driver COLLATE \"C\" FROM jobs WHERE "
                                          "state IN ('active', 'pending') ORDER BY 1",
                                          Params()));
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) out.push_back(r.Text(i, 0));
    return out;
  });
}

Status PostgresStore::DeleteJob(std::int64_t id) {
  return With([&](Connection* c) -> Status {
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    // The schedule row first, as claims lock it.
    SKED_RETURN_IF_ERROR(
        c->Exec("SELECT 1 FROM job_schedule WHERE job_id = $1 FOR UPDATE", Params().Add(id))
            .status());
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec("DELETE FROM jobs WHERE id = $1", Params().Add(id)));
    if (r.affected() == 0) return NotFoundError("job " + std::to_string(id) + " not found");
    SKED_RETURN_IF_ERROR(Notify(c, kNotifyJobs));
    return tx.Commit();
  });
}

// ---------------------------------------------------------------- fires

Result<std::vector<std::optional<Run>>> PostgresStore::InsertRuns(Connection* c,
                                                                  const std::vector<RunRow>& rows) {
  std::vector<std::optional<Run>> out(rows.size());
  if (rows.empty()) return out;
  // A batch never carries one fire twice (the statement could not tell which
  // to keep): later copies are dropped here, as the database would.
  using Key = std::tuple<std::int64_t, std::int64_t, int>;
  std::map<Key, size_t> index;
  ArrayLiteral job_id, scheduled_for, attempt, trigger, status, priority, queued_at, not_before,
      finished_at, reason, instance, lease;
  for (size_t i = 0; i < rows.size(); ++i) {
    const RunRow& row = rows[i];
    const NewRun& run = row.run;
    if (!index.emplace(Key{row.job_id, Us(run.scheduled_for), run.attempt}, i).second) continue;
    const bool terminal = IsTerminal(run.status);
    const bool reserve = !row.instance.empty() && run.status == RunStatus::kQueued;
    job_id.Add(row.job_id);
    scheduled_for.Add(Us(run.scheduled_for));
    attempt.Add(static_cast<std::int64_t>(run.attempt));
    trigger.Add(RunTriggerName(run.trigger));
    status.Add(RunStatusName(run.status));
    priority.Add(static_cast<std::int64_t>(run.priority));
    queued_at.Add(Us(row.queued_at));
    not_before.Add(Us(run.not_before));
    finished_at.Add(terminal ? std::optional<std::int64_t>(Us(row.queued_at)) : std::nullopt);
    reason.Add(run.reason);
    instance.Add(reserve ? std::string_view(row.instance) : std::string_view(""));
    lease.Add(reserve ? OptUs(row.reserve_until) : std::nullopt);
  }
  Params p;
  for (const ArrayLiteral* a :
       {&job_id, &scheduled_for, &attempt, &trigger, &status, &priority, &queued_at, &not_before,
        &finished_at, &reason, &instance, &lease}) {
    p.Add(a->str());
  }
  SKED_ASSIGN_OR_RETURN(
      Rows r,
      c->Exec("INSERT INTO runs (job_id, scheduled_for, attempt, \"trigger\", status, priority, "
              "queued_at, not_before, finished_at, reason, instance_id, lease_expires_at) "
              "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], "
              "$5::text[], $6::int[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], "
              "$11::text[], $12::bigint[]) ON CONFLICT (job_id, scheduled_for, attempt) DO "
              "NOTHING RETURNING id, job_id, scheduled_for, attempt",
              p));
  for (int i = 0; i < r.size(); ++i) {
    auto it = index.find(Key{r.Int(i, 1), r.Int(i, 2), static_cast<int>(r.Int(i, 3))});
    if (it == index.end()) continue;
    const RunRow& row = rows[it->second];
    const NewRun& run = row.run;
    // Built from what was written, not read back: this is the hot path of a claim.
    Run inserted;
    inserted.id = r.Int(i, 0);
    inserted.job_id = row.job_id;
    inserted.scheduled_for = run.scheduled_for;
    inserted.attempt = run.attempt;
    inserted.trigger = run.trigger;
    inserted.status = run.status;
    inserted.priority = run.priority;
    inserted.queued_at = row.queued_at;
    inserted.not_before = run.not_before;
    if (IsTerminal(run.status)) inserted.finished_at = row.queued_at;
    inserted.reason = run.reason;
    if (!row.instance.empty() && run.status == RunStatus::kQueued) {
      inserted.instance_id = row.instance;
      inserted.lease_expires_at = row.reserve_until;
    }
    out[it->second] = std::move(inserted);
  }
  return out;
}

Result<std::vector<Run>> PostgresStore::ClaimDue(
    const ClaimRequest& request, const std::function<FirePlan(const DueJob&)>& plan) {
  return With([&](Connection* c) -> Result<std::vector<Run>> {
    SKED_RETURN_IF_ERROR(CheckClaimParts(request));
    const Instant now = request.now;
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    // Due jobs another instance is claiming right now are skipped, not waited
    // for: each instance takes its own share. The jobs' active runs are
    // counted afterwards, in one statement over the locked ids: a count per
    // candidate row (a subquery here) is planned once, while the runs table
    // is small, and then costs O(runs) per job when a burst fills the table.
    // The jobs' schedule rows are what is locked and written (narrow: a
    // wide job row would be dirtied by the lock alone).
    SKED_ASSIGN_OR_RETURN(
        Rows s,
        c->Exec(std::string("SELECT ") + kJobColumns + kJobFrom +
                    " WHERE js.active AND js.next_run_at IS NOT NULL AND "
                    "js.next_run_at <= $1 AND ($3::int <= 1 OR js.job_id % $3::int = $4::int) "
                    "ORDER BY js.next_run_at LIMIT $2 FOR UPDATE OF js SKIP LOCKED",
                Params()
                    .Add(Us(std::max(request.horizon, now)))
                    .Add(request.limit)
                    .Add(request.parts)
                    .Add(request.part)));
    if (s.empty()) return std::vector<Run>();
    ArrayLiteral due_ids;
    for (int i = 0; i < s.size(); ++i) due_ids.Add(s.Int(i, 0));
    SKED_ASSIGN_OR_RETURN(ActiveCounts active, CountActiveRuns(c, due_ids));
    std::vector<RunRow> rows;
    std::vector<std::pair<std::string, std::int64_t>> names;  // per row: job name, version
    ArrayLiteral ids, next, fires, ended_ids, ended_state, replace;
    bool any_replace = false, any_ended = false;
    for (int i = 0; i < s.size(); ++i) {
      DueJob d;
      d.job = ReadJob(s, i);
      if (auto it = active.find(d.job.id); it != active.end()) {
        d.queued_runs = it->second.first;
        d.running_runs = it->second.second;
      }
      const FirePlan p = plan(d);
      for (const NewRun& run : p.runs) {
        rows.push_back({d.job.id, run, now, request.instance, request.reserve_until});
        names.emplace_back(d.job.spec.name, d.job.version);
      }
      ids.Add(d.job.id);
      next.Add(OptUs(p.next_run_at));
      fires.Add(p.state == JobState::kActive);
      if (p.state != d.job.state) {  // its schedule ended (rare)
        ended_ids.Add(d.job.id);
        ended_state.Add(JobStateName(p.state));
        any_ended = true;
      }
      if (p.cancel_running) {
        replace.Add(d.job.id);
        any_replace = true;
      }
    }
    SKED_ASSIGN_OR_RETURN(std::vector<std::optional<Run>> inserted, InsertRuns(c, rows));
    std::vector<Settled> missed;
    for (const std::optional<Run>& r : inserted) {
      if (r && r->status == RunStatus::kSkipped) {
        missed.push_back({r->job_id, RunStatus::kSkipped, std::nullopt, r->id, false, now});
      }
    }
    SKED_RETURN_IF_ERROR(WriteMissed(c, missed));
    SKED_RETURN_IF_ERROR(
        c->Exec("UPDATE job_schedule SET next_run_at = u.next, active = u.active FROM "
                "unnest($1::bigint[], $2::bigint[], $3::boolean[]) AS u(id, next, active) WHERE "
                "job_schedule.job_id = u.id AND job_schedule.job_id = ANY($1::bigint[])",
                Params().Add(ids.str()).Add(next.str()).Add(fires.str()))
            .status());
    if (any_ended) {
      SKED_RETURN_IF_ERROR(
          c->Exec("UPDATE jobs SET state = u.state FROM unnest($1::bigint[], $2::text[]) AS "
                  "u(id, state) WHERE jobs.id = u.id AND jobs.id = ANY($1::bigint[])",
                  Params().Add(ended_ids.str()).Add(ended_state.str()))
              .status());
    }
    if (any_replace) {
      SKED_RETURN_IF_ERROR(c->Exec("UPDATE runs SET cancel_requested = true, reason = 'replaced' "
                                   "WHERE job_id = ANY($1::bigint[]) AND status = 'running'",
                                   Params().Add(replace.str()))
                               .status());
      SKED_RETURN_IF_ERROR(Notify(c, kNotifyCancel));
    }
    SKED_RETURN_IF_ERROR(tx.Commit());
    std::vector<Run> written;
    written.reserve(rows.size());
    for (size_t i = 0; i < inserted.size(); ++i) {
      if (!inserted[i]) continue;
      inserted[i]->job_name = names[i].first;
      inserted[i]->job_version = names[i].second;
      written.push_back(std::move(*inserted[i]));
    }
    return written;
  });
}

Result<PostgresStore::ActiveCounts> PostgresStore::CountActiveRuns(Connection* c,
                                                                   const ArrayLiteral& job_ids) {
  SKED_ASSIGN_OR_RETURN(
      Rows r, c->Exec("SELECT job_id, count(*) FILTER (WHERE status = 'queued'), count(*) FILTER "
                      "(WHERE status = 'running') FROM runs WHERE status IN ('queued', "
                      "'running') AND job_id = ANY($1::bigint[]) GROUP BY job_id",
                      Params().Add(job_ids.str())));
  ActiveCounts counts;
  for (int i = 0; i < r.size(); ++i) {
    counts[r.Int(i, 0)] = {static_cast<int>(r.Int(i, 1)), static_cast<int>(r.Int(i, 2))};
  }
  return counts;
}

Result<std::int64_t> PostgresStore::CountDue(Instant by, std::int64_t limit) {
  return With([&](Connection* c) -> Result<std::int64_t> {
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec("SELECT count(*) FROM (SELECT 1 FROM job_schedule WHERE active AND "
                        "next_run_at IS NOT NULL AND next_run_at <= $1 LIMIT $2) t",
                        Params().Add(Us(by)).Add(limit)));
    return r.Int(0, 0);
  });
}

Result<std::optional<Instant>> PostgresStore::NextDueAt() {
  return With([](Connection* c) -> Result<std::optional<Instant>> {
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec("SELECT min(next_run_at) FROM job_schedule WHERE "
                                          "active AND next_run_at IS NOT NULL"));
    return OptInstant(r, 0, 0);
  });
}

Result<Run> PostgresStore::InsertRun(std::int64_t job_id, const NewRun& run, Instant now) {
  return With([&](Connection* c) -> Result<Run> {
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    SKED_RETURN_IF_ERROR(GetJobOn(c, job_id).status());
    SKED_ASSIGN_OR_RETURN(auto inserted, InsertRuns(c, {RunRow{job_id, run, now, "", {}}}));
    if (!inserted[0]) {
      return AlreadyExistsError("job " + std::to_string(job_id) + " already has attempt " +
                                std::to_string(run.attempt) + " of the fire at " +
                                FormatRfc3339Utc(run.scheduled_for, 6));
    }
    SKED_ASSIGN_OR_RETURN(Run full, GetRunOn(c, inserted[0]->id));
    if (run.status == RunStatus::kQueued) SKED_RETURN_IF_ERROR(Notify(c, kNotifyQueued));
    SKED_RETURN_IF_ERROR(tx.Commit());
    return full;
  });
}

// ---------------------------------------------------------------- queue

Result<std::vector<Run>> PostgresStore::StartQueued(std::string_view instance, Instant now,
                                                    int limit, Instant lease_until) {
  SKED_ASSIGN_OR_RETURN(Reservation r, TakeQueued(instance, now, limit, lease_until, false));
  return std::move(r.runs);
}

Result<Store::Reservation> PostgresStore::ReserveQueued(std::string_view instance, Instant now,
                                                        int limit, Instant reserve_until) {
  return TakeQueued(instance, now, limit, reserve_until, true);
}

Result<Store::Reservation> PostgresStore::TakeQueued(std::string_view instance, Instant now,
                                                     int limit, Instant until, bool reserve) {
  return With([&](Connection* c) -> Result<Reservation> {
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    // Candidates in queue order, skipping those another instance is taking:
    // runs past their starting deadline (to skip), and runs whose job has room
    // under its overlap policy. Runs held back by a busy job are never
    // candidates, so however many sit in front, other jobs' runs are served.
    // (The counts are checked again below, under the jobs' locks.) Busy runs
    // are counted once per statement (a materialized CTE), not per
    // candidate: a per-row count is O(history) or O(runs) per row under a
    // plan made while the tables were small. The jobs they fill are tested
    // with NOT IN, which PostgreSQL hashes once: joined to the counts, the
    // candidates were matched against every busy job in turn (the plan,
    // made while nothing was busy, expects one), 3.5 of a 4.6 ms statement
    // with 77 busy jobs.
    // Runs reserved by any instance take room once due (they start from
    // memory any moment); a fire claimed ahead does not keep a manual trigger
    // waiting, it meets the trigger's run when it starts.
    // (Written to match the partial index runs_owner: only busy runs are read.)
    const std::string busy =
        "status IN ('queued', 'running') AND instance_id <> '' AND (status = 'running' OR "
        "not_before <= $1)";
    SKED_ASSIGN_OR_RETURN(
        Rows s,
        c->Exec("WITH busy AS MATERIALIZED (SELECT job_id, count(*) AS n FROM runs WHERE " + busy +
                    " GROUP BY job_id), full_jobs AS MATERIALIZED (SELECT b.job_id FROM busy b "
                    "JOIN jobs fj ON fj.id = b.job_id WHERE b.n >= CASE WHEN fj.overlap = "
                    "'concurrent' THEN fj.max_concurrent ELSE 1 END) "
                    "SELECT r.id, r.job_id, r.scheduled_for, j.overlap, j.max_concurrent, "
                    "j.starting_deadline_us FROM runs r JOIN jobs j ON j.id = r.job_id "
                    "WHERE r.status = 'queued' AND r.instance_id = '' AND r.not_before <= $1 AND "
                    "((j.starting_deadline_us IS NOT NULL AND $1 > r.scheduled_for + "
                    "j.starting_deadline_us) OR r.job_id NOT IN (SELECT job_id FROM full_jobs)) "
                    "ORDER BY r.priority DESC, r.scheduled_for, r.id LIMIT $2 "
                    "FOR UPDATE OF r SKIP LOCKED",
                Params().Add(Us(now)).Add(limit + std::min(limit, store_internal::kLookAhead))));
    if (s.empty()) return Reservation();
    // The jobs' rows are locked before their busy runs are counted, so two
    // instances cannot both take a run one policy allows. A job another
    // transaction holds (a peer reserving its other runs, a claim, a job
    // change) is passed over, not waited for: the peers' reservations would
    // otherwise take turns whenever a job's runs straddle their batches.
    std::set<std::int64_t> job_ids;
    for (int i = 0; i < s.size(); ++i) job_ids.insert(s.Int(i, 1));
    ArrayLiteral candidate_jobs;
    for (std::int64_t id : job_ids) candidate_jobs.Add(id);
    SKED_ASSIGN_OR_RETURN(Rows held, c->Exec("SELECT job_id FROM job_schedule WHERE job_id = "
                                             "ANY($1::bigint[]) FOR UPDATE SKIP LOCKED",
                                             Params().Add(candidate_jobs.str())));
    std::unordered_set<std::int64_t> locked;
    ArrayLiteral jobs;
    for (int i = 0; i < held.size(); ++i) {
      locked.insert(held.Int(i, 0));
      jobs.Add(held.Int(i, 0));
    }
    Reservation out;
    out.contended = locked.size() < job_ids.size();
    if (locked.empty()) return out;
    SKED_ASSIGN_OR_RETURN(Rows counts, c->Exec("SELECT job_id, count(*) FROM runs WHERE job_id = "
                                               "ANY($2::bigint[]) AND " +
                                                   busy + " GROUP BY job_id",
                                               Params().Add(Us(now)).Add(jobs.str())));
    std::unordered_map<std::int64_t, int> running;
    for (int i = 0; i < counts.size(); ++i) {
      running[counts.Int(i, 0)] = static_cast<int>(counts.Int(i, 1));
    }
    std::vector<std::int64_t> changed;
    std::set<std::int64_t> taken_jobs;
    ArrayLiteral skipped, taken, tokens;
    bool any_skipped = false, any_taken = false;
    int n_taken = 0;
    for (int i = 0; i < s.size(); ++i) {
      const std::int64_t id = s.Int(i, 0), job_id = s.Int(i, 1);
      if (!locked.contains(job_id)) continue;  // held elsewhere: a later pass
      JobSpec spec;
      spec.overlap = ParseOverlapPolicy(s.Text(i, 3)).value_or(OverlapPolicy::kSkip);
      spec.max_concurrent = static_cast<int>(s.Int(i, 4));
      if (auto deadline = s.OptInt(i, 5)) spec.starting_deadline = Duration(*deadline);
      int& count = running[job_id];
      const policy::StartVerdict verdict =
          policy::JudgeStart(spec, AtUs(s.Int(i, 2)), now, count, policy::StartFrom::kQueue);
      if (verdict == policy::StartVerdict::kSkipDeadline) {
        skipped.Add(id);
        any_skipped = true;
        changed.push_back(id);
        continue;
      }
      if (n_taken >= limit || verdict != policy::StartVerdict::kStart) continue;
      ++count;
      ++n_taken;
      taken.Add(id);
      tokens.Add(NewToken());
      any_taken = true;
      changed.push_back(id);
      taken_jobs.insert(job_id);
    }
    if (any_skipped) {
      SKED_ASSIGN_OR_RETURN(
          Rows r, c->Exec("UPDATE runs SET status = 'skipped', reason = $3, "
                          "finished_at = $1 WHERE id = ANY($2::bigint[]) RETURNING id, job_id, "
                          "finished_at",
                          Params()
                              .Add(Us(now))
                              .Add(skipped.str())
                              .Add(policy::SkipReason(policy::StartVerdict::kSkipDeadline))));
      SKED_RETURN_IF_ERROR(WriteMissed(c, r));
    }
    // The runs taken are read back as they are updated; the few skipped
    // past their deadline are read afterwards.
    std::unordered_map<std::int64_t, Run> by_id;
    auto keep = [&by_id](const Rows& r) {
      for (int i = 0; i < r.size(); ++i) {
        Run run = ReadRun(r, i);
        by_id.emplace(run.id, std::move(run));
      }
    };
    if (any_taken && reserve) {
      SKED_ASSIGN_OR_RETURN(
          Rows r, c->Exec(std::string("UPDATE runs r SET instance_id = $1, lease_expires_at = $2 "
                                      "FROM jobs j WHERE r.id = ANY($3::bigint[]) AND j.id = "
                                      "r.job_id RETURNING ") +
                              kRunColumns,
                          Params().Add(instance).Add(Us(until)).Add(taken.str())));
      keep(r);
    } else if (any_taken) {
      SKED_ASSIGN_OR_RETURN(
          Rows r,
          c->Exec(std::string("UPDATE runs r SET status = 'running', started_at = $1, "
                              "instance_id = $2, lease_token = u.token, lease_expires_at "
                              "= $3 FROM unnest($4::bigint[], $5::bigint[]) AS u(id, "
                              "token), jobs j WHERE r.id = u.id AND r.id = ANY($4::bigint[]) "
                              "AND j.id = r.job_id RETURNING ") +
                      kRunColumns,
                  Params()
                      .Add(Us(now))
                      .Add(instance)
                      .Add(Us(until))
                      .Add(taken.str())
                      .Add(tokens.str())));
      keep(r);
    }
    if (changed.empty()) return out;
    if (any_skipped) {
      SKED_ASSIGN_OR_RETURN(Rows r, c->Exec(std::string("SELECT ") + kRunColumns +
                                                " FROM runs r JOIN jobs j ON j.id = r.job_id "
                                                "WHERE r.id = ANY($1::bigint[])",
                                            Params().Add(skipped.str())));
      keep(r);
    }
    out.runs.reserve(changed.size());
    for (std::int64_t id : changed) {
      auto it = by_id.find(id);
      if (it != by_id.end()) out.runs.push_back(std::move(it->second));
    }
    if (reserve && !taken_jobs.empty()) {
      ArrayLiteral job_list;
      for (std::int64_t id : taken_jobs) job_list.Add(id);
      SKED_ASSIGN_OR_RETURN(Rows j, c->Exec(std::string("SELECT ") + kJobColumns + kJobFrom +
                                                " WHERE j.id = ANY($1::bigint[])",
                                            Params().Add(job_list.str())));
      for (int i = 0; i < j.size(); ++i) out.jobs.push_back(ReadJob(j, i));
    }
    SKED_RETURN_IF_ERROR(tx.Commit());
    return out;
  });
}

Result<std::vector<bool>> PostgresStore::RecordDispatches(std::string_view instance,
                                                          const std::vector<Dispatch>& dispatches,
                                                          Instant lease_until) {
  return With([&](Connection* c) -> Result<std::vector<bool>> {
    ArrayLiteral started, started_at, tokens, released, skipped, skipped_at, reasons, given_back;
    bool any_started = false, any_released = false, any_skipped = false, any_given_back = false;
    for (const Dispatch& d : dispatches) {
      switch (d.kind) {
        case Dispatch::Kind::kStarted:
          started.Add(d.run_id);
          started_at.Add(Us(d.at));
          tokens.Add(d.lease_token);
          any_started = true;
          break;
        case Dispatch::Kind::kReleased:
          released.Add(d.run_id);
          any_released = true;
          break;
        case Dispatch::Kind::kSkipped:
          skipped.Add(d.run_id);
          skipped_at.Add(Us(d.at));
          reasons.Add(d.reason);
          any_skipped = true;
          break;
        case Dispatch::Kind::kGivenBack:
          // Deleted below if its job is active; released (with the others) if not.
          given_back.Add(d.run_id);
          released.Add(d.run_id);
          any_given_back = any_released = true;
          break;
      }
    }
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    std::set<std::int64_t> applied_ids;
    auto collect = [&](const Rows& r) {
      for (int i = 0; i < r.size(); ++i) applied_ids.insert(r.Int(i, 0));
    };
    if (any_started) {
      SKED_ASSIGN_OR_RETURN(
          Rows r, c->Exec("UPDATE runs SET status = 'running', started_at = u.at, lease_token = "
                          "u.token, lease_expires_at = $1 FROM unnest($2::bigint[], $3::bigint[], "
                          "$4::bigint[]) AS u(id, at, token) WHERE runs.id = u.id AND runs.id = "
                          "ANY($2::bigint[]) AND runs.status = 'queued' AND runs.instance_id = $5 "
                          "RETURNING runs.id",
                          Params()
                              .Add(Us(lease_until))
                              .Add(started.str())
                              .Add(started_at.str())
                              .Add(tokens.str())
                              .Add(instance)));
      collect(r);
    }
    if (any_given_back) {
      // Un-claimed: the runs of active jobs go, and their jobs' next_run_at
      // moves back to them (the rest are released just below).
      SKED_ASSIGN_OR_RETURN(
          Rows gone,
          c->Exec("WITH gone AS (DELETE FROM runs r USING jobs j WHERE r.id = ANY($1::bigint[]) "
                  "AND r.status = 'queued' AND r.instance_id = $2 AND r.\"trigger\" IN "
                  "('schedule', 'catch-up') AND j.id = r.job_id AND j.state = 'active' "
                  "RETURNING r.id, r.job_id, r.scheduled_for), "
                  "back AS (UPDATE job_schedule js SET next_run_at = LEAST(coalesce("
                  "js.next_run_at, g.sf), g.sf) FROM (SELECT job_id, min(scheduled_for) AS sf "
                  "FROM gone GROUP BY job_id) g WHERE js.job_id = g.job_id) SELECT id FROM gone",
                  Params().Add(given_back.str()).Add(instance)));
      collect(gone);
      if (!gone.empty()) SKED_RETURN_IF_ERROR(Notify(c, kNotifyJobs));
    }
    if (any_released) {
      SKED_ASSIGN_OR_RETURN(
          Rows r, c->Exec("UPDATE runs SET instance_id = '', lease_expires_at = NULL WHERE id = "
                          "ANY($1::bigint[]) AND status = 'queued' AND instance_id = $2 "
                          "RETURNING id",
                          Params().Add(released.str()).Add(instance)));
      collect(r);
      if (!r.empty()) SKED_RETURN_IF_ERROR(Notify(c, kNotifyQueued));
    }
    if (any_skipped) {
      SKED_ASSIGN_OR_RETURN(
          Rows r,
          c->Exec(
              "UPDATE runs SET status = 'skipped', finished_at = u.at, reason = "
              "u.reason, lease_expires_at = NULL FROM unnest($1::bigint[], "
              "$2::bigint[], $3::text[]) AS u(id, at, reason) WHERE runs.id = u.id "
              "AND runs.id = ANY($1::bigint[]) AND runs.status = 'queued' AND runs.instance_id = "
              "$4 RETURNING runs.id, "
              "runs.job_id, runs.finished_at",
              Params().Add(skipped.str()).Add(skipped_at.str()).Add(reasons.str()).Add(instance)));
      collect(r);
      SKED_RETURN_IF_ERROR(WriteMissed(c, r));
    }
    SKED_RETURN_IF_ERROR(tx.Commit());
    // One entry per run: a run listed twice is applied once (its first entry).
    std::vector<bool> applied;
    applied.reserve(dispatches.size());
    for (const Dispatch& d : dispatches) applied.push_back(applied_ids.erase(d.run_id) > 0);
    return applied;
  });
}

Result<Store::RunningCounts> PostgresStore::CountRunning(Instant now) {
  return With([&](Connection* c) -> Result<RunningCounts> {
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec("SELECT count(*), count(*) FILTER (WHERE lease_expires_at < $1) FROM runs "
                        "WHERE status IN ('queued', 'running') AND lease_expires_at IS NOT NULL "
                        "AND status = 'running'",
                        Params().Add(Us(now))));
    return RunningCounts{r.Int(0, 0), r.Int(0, 1)};
  });
}

Result<std::optional<Instant>> PostgresStore::NextQueuedAt() {
  return With([](Connection* c) -> Result<std::optional<Instant>> {
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec(store_internal::kPgNextQueuedSql));
    return OptInstant(r, 0, 0);
  });
}

Result<std::int64_t> PostgresStore::QueueDepth() {
  return With([](Connection* c) -> Result<std::int64_t> {
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec("SELECT count(*) FROM runs WHERE status = 'queued'"));
    return r.Int(0, 0);
  });
}

// ---------------------------------------------------------------- settling

Status PostgresStore::WriteMissed(Connection* c, const Rows& rows) {
  std::vector<Settled> skipped;
  skipped.reserve(static_cast<size_t>(rows.size()));
  for (int i = 0; i < rows.size(); ++i) {
    skipped.push_back({rows.Int(i, 1), RunStatus::kSkipped, std::nullopt, rows.Int(i, 0), false,
                       AtUs(rows.Int(i, 2))});
  }
  return WriteMissed(c, skipped);
}

Status PostgresStore::WriteMissed(Connection* c, const std::vector<Settled>& skipped) {
  if (skipped.empty()) return Status::Ok();
  ArrayLiteral ids;
  std::set<std::int64_t> seen;
  for (const Settled& s : skipped) {
    if (seen.insert(s.job_id).second) ids.Add(s.job_id);
  }
  SKED_ASSIGN_OR_RETURN(Rows jobs, c->Exec("SELECT j.id, false, j.name, j.notify_on, "
                                           "j.notify_channels FROM jobs j WHERE j.id = "
                                           "ANY($1::bigint[])",
                                           Params().Add(ids.str())));
  return WriteOutbox(c, skipped, jobs);
}

Status PostgresStore::WriteOutbox(Connection* c, const std::vector<Settled>& settled,
                                  const Rows& jobs) {
  struct JobNotify {
    std::string name;
    NotifySpec spec;
    bool failing = false;
  };
  std::unordered_map<std::int64_t, JobNotify> by_job;
  for (int i = 0; i < jobs.size(); ++i) {
    JobNotify& j = by_job[jobs.Int(i, 0)];
    j.failing = jobs.Bool(i, 1);
    j.name = jobs.Text(i, 2);
    j.spec.on = SplitNotifyList(OptText(jobs, i, 3));
    j.spec.channels = SplitNotifyList(OptText(jobs, i, 4));
  }
  // De-duplication: the newest of each (job, event, channel) raised within
  // realert, for these jobs (one read, only when some job was failing or a
  // fire was missed).
  std::map<std::tuple<std::int64_t, std::string, std::string>, std::int64_t> last;
  const bool may_repeat =
      notify_.realert > Duration(0) &&
      std::any_of(settled.begin(), settled.end(), [&](const Settled& s) {
        auto it = by_job.find(s.job_id);
        return s.status == RunStatus::kSkipped || (it != by_job.end() && it->second.failing);
      });
  if (may_repeat) {
    ArrayLiteral ids;
    for (const auto& [id, j] : by_job) ids.Add(id);
    const Instant newest =
        std::max_element(settled.begin(), settled.end(), [](const Settled& a, const Settled& b) {
          return a.at < b.at;
        })->at;
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec("SELECT job_id, event, channel, max(created_at) FROM notifications WHERE "
                        "job_id = ANY($1::bigint[]) AND created_at > $2 GROUP BY job_id, event, "
                        "channel",
                        Params().Add(ids.str()).Add(Us(newest - notify_.realert))));
    for (int i = 0; i < r.size(); ++i) {
      last[{r.Int(i, 0), r.Text(i, 1), r.Text(i, 2)}] = r.Int(i, 3);
    }
  }
  ArrayLiteral job_ids, names, run_ids, events, channels, at;
  int rows = 0;
  for (const Settled& s : settled) {
    auto it = by_job.find(s.job_id);
    if (it == by_job.end()) continue;  // deleted meanwhile
    JobNotify& j = it->second;
    policy::SettledAttempt attempt;
    attempt.status = s.status;
    attempt.retry_follows = s.retry_follows;
    attempt.was_failing = j.failing;
    // Runs of one job settled together: each sees the ones before it.
    if (s.started_at && s.status == RunStatus::kSucceeded) j.failing = false;
    if (s.started_at && IsFailure(s.status)) j.failing = true;
    for (const policy::OutboxEntry& e : policy::RouteSettlement(attempt, j.spec, notify_)) {
      const std::string event(policy::NotifyEventName(e.event));
      if (may_repeat) {
        auto prev = last.find({s.job_id, event, e.channel});
        const std::optional<Instant> prev_at =
            prev != last.end() ? std::optional<Instant>(AtUs(prev->second)) : std::nullopt;
        if (policy::IsRepeat(e, attempt.was_failing, prev_at, s.at, notify_.realert)) continue;
      }
      // Later runs of this batch see this one.
      last[{s.job_id, event, e.channel}] = Us(s.at);
      ++rows;
      job_ids.Add(s.job_id);
      names.Add(j.name);
      run_ids.Add(s.run_id);
      events.Add(policy::NotifyEventName(e.event));
      channels.Add(e.channel);
      at.Add(Us(s.at));
    }
  }
  if (rows == 0) return Status::Ok();
  return c
      ->Exec(
          "INSERT INTO notifications (job_id, job_name, run_id, event, channel, created_at, "
          "next_attempt_at) SELECT u.job_id, u.name, u.run_id, u.event, u.channel, u.at, u.at "
          "FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], "
          "$6::bigint[]) AS u(job_id, name, run_id, event, channel, at)",
          Params()
              .Add(job_ids.str())
              .Add(names.str())
              .Add(run_ids.str())
              .Add(events.str())
              .Add(channels.str())
              .Add(at.str()))
      .status();
}

Status PostgresStore::CountSettled(Connection* c, const std::vector<Settled>& settled) {
  struct Counts {
    std::int64_t runs = 0, successes = 0, failures = 0;
    std::optional<std::int64_t> last, last_success;
  };
  std::map<std::int64_t, Counts> by_job;  // in id order
  for (const Settled& s : settled) {
    Counts& n = by_job[s.job_id];
    ++n.runs;
    if (s.status == RunStatus::kSucceeded) ++n.successes;
    if (IsFailure(s.status)) ++n.failures;
    // A run that never started (an expired reservation) leaves last_run_at alone.
    if (s.started_at) n.last = std::max(n.last.value_or(Us(*s.started_at)), Us(*s.started_at));
    if (s.started_at && s.status == RunStatus::kSucceeded) {
      n.last_success = std::max(n.last_success.value_or(Us(*s.started_at)), Us(*s.started_at));
    }
  }
  if (by_job.empty()) return Status::Ok();
  ArrayLiteral ids, runs, successes, failures, last, last_success;
  for (const auto& [id, n] : by_job) {
    ids.Add(id);
    runs.Add(n.runs);
    successes.Add(n.successes);
    failures.Add(n.failures);
    last.Add(n.last);
    last_success.Add(n.last_success);
  }
  // Two instances settling runs of the same jobs would deadlock if each
  // updated the counter rows in its own order (an UPDATE ... FROM unnest has
  // none): lock them in id order first. A deadlock costs PostgreSQL's
  // deadlock_timeout (1 s) before one side is aborted.
  // The same read gives what the outbox needs: whether each job was failing
  // before these runs, and its notify settings.
  SKED_ASSIGN_OR_RETURN(
      Rows locked,
      c->Exec("SELECT s.job_id, s.last_run_at IS NOT NULL AND (s.last_success_at IS NULL OR "
              "s.last_success_at < s.last_run_at), j.name, j.notify_on, j.notify_channels FROM "
              "job_stats s JOIN jobs j ON j.id = s.job_id WHERE s.job_id = ANY($1::bigint[]) "
              "ORDER BY s.job_id FOR UPDATE OF s",
              Params().Add(ids.str())));
  SKED_RETURN_IF_ERROR(WriteOutbox(c, settled, locked));
  return c
      ->Exec(
          "UPDATE job_stats s SET runs = s.runs + u.runs, successes = s.successes + "
          "u.successes, failures = s.failures + u.failures, last_run_at = "
          "GREATEST(s.last_run_at, u.last), last_success_at = GREATEST(s.last_success_at, "
          "u.last_success) FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], "
          "$5::bigint[], $6::bigint[]) AS u(id, runs, successes, failures, last, last_success) "
          "WHERE s.job_id = u.id AND s.job_id = ANY($1::bigint[])",
          Params()
              .Add(ids.str())
              .Add(runs.str())
              .Add(successes.str())
              .Add(failures.str())
              .Add(last.str())
              .Add(last_success.str()))
      .status();
}

Result<std::vector<bool>> PostgresStore::SettleRuns(const std::vector<RunOutcome>& outcomes) {
  for (const RunOutcome& o : outcomes) {
    if (!CanTransition(RunStatus::kRunning, o.status)) {
      return InvalidArgumentError("cannot settle run " + std::to_string(o.run_id) + " as " +
                                  std::string(RunStatusName(o.status)));
    }
  }
  return With([&](Connection* c) -> Result<std::vector<bool>> {
    // One outcome per run in the statement: a second one for the same run
    // is fenced out, as it would be after the first settled it.
    std::set<std::int64_t> seen;
    std::vector<size_t> sent;
    ArrayLiteral ids, tokens, status, finished, exit_code, output, truncated, result, error, reason,
        started, owner;
    for (size_t i = 0; i < outcomes.size(); ++i) {
      const RunOutcome& o = outcomes[i];
      if (!seen.insert(o.run_id).second) continue;
      sent.push_back(i);
      ids.Add(o.run_id);
      tokens.Add(o.lease_token);
      status.Add(RunStatusName(o.status));
      finished.Add(Us(o.finished_at));
      exit_code.Add(o.exit_code ? std::optional<std::int64_t>(*o.exit_code) : std::nullopt);
      output.Add(o.output);
      truncated.Add(o.output_truncated);
      result.Add(o.result);
      error.Add(o.error);
      reason.Add(o.reason);
      started.Add(OptUs(o.started_at));
      owner.Add(o.instance_id);
    }
    std::vector<bool> applied(outcomes.size(), false);
    if (sent.empty()) return applied;
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    Params p;
    for (const ArrayLiteral* a : {&ids, &tokens, &status, &finished, &exit_code, &output,
                                  &truncated, &result, &error, &reason, &started, &owner}) {
      p.Add(a->str());
    }
    SKED_ASSIGN_OR_RETURN(
        Rows r,
        // An outcome with a start time records the start too (it was never
        // written), from the run's reservation by that instance. The ids are
        // repeated as `= ANY` (see "Batched updates" above).
        c->Exec("UPDATE runs SET status = u.status, finished_at = u.finished, exit_code = "
                "u.exit_code, output = u.output, output_truncated = u.truncated, result = "
                "u.result, error = u.error, reason = u.reason, lease_expires_at = NULL, "
                "lease_token = u.token, started_at = coalesce(u.started, runs.started_at) FROM "
                "unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::int[], "
                "$6::text[], $7::bool[], $8::text[], $9::text[], $10::text[], $11::bigint[], "
                "$12::text[]) AS u(id, token, status, finished, exit_code, output, truncated, "
                "result, error, reason, started, owner) WHERE runs.id = u.id AND runs.id = "
                "ANY($1::bigint[]) AND ((u.started IS NULL AND runs.status = 'running' AND "
                "runs.lease_token = u.token) "
                "OR (u.started IS NOT NULL AND runs.status = 'queued' AND runs.instance_id = "
                "u.owner)) RETURNING runs.id, runs.job_id, runs.started_at",
                p));
    std::unordered_map<std::int64_t, std::pair<std::int64_t, std::optional<Instant>>> done;
    for (int i = 0; i < r.size(); ++i) {
      done.emplace(r.Int(i, 0), std::make_pair(r.Int(i, 1), OptInstant(r, i, 2)));
    }
    std::vector<Settled> settled;
    std::vector<RunRow> retries;
    for (size_t i : sent) {
      const RunOutcome& o = outcomes[i];
      auto it = done.find(o.run_id);
      if (it == done.end()) continue;  // fenced out: reaped, cancelled or settled elsewhere
      applied[i] = true;
      settled.push_back({it->second.first, o.status, it->second.second, o.run_id,
                         o.retry.has_value(), o.finished_at});
      if (o.retry) retries.push_back({it->second.first, *o.retry, o.finished_at, "", {}});
    }
    SKED_RETURN_IF_ERROR(CountSettled(c, settled));
    if (!retries.empty()) {
      SKED_RETURN_IF_ERROR(InsertRuns(c, retries).status());
      SKED_RETURN_IF_ERROR(Notify(c, kNotifyQueued));
    }
    SKED_RETURN_IF_ERROR(tx.Commit());
    return applied;
  });
}

Status PostgresStore::ExtendLeases(std::string_view instance, Instant now, Instant renew_before,
                                   Instant lease_until) {
  // In batches, each its own transaction: a heartbeat never holds the row
  // locks of thousands of runs at once (a settle or a start waiting on them
  // waited for the whole statement: ~1 s for 10,000 reserved fires). A
  // renewed lease no longer matches (it is `lease_until`), so each batch
  // takes the next ones. The conditions are checked again on each row as it
  // is updated: a run settled meanwhile keeps no lease.
  constexpr int kBatch = 1000;
  for (int batch = 0; batch < 100000; ++batch) {  // bounded: 100 million leases
    SKED_ASSIGN_OR_RETURN(
        Rows r, With([&](Connection* c) {
          return c->Exec(
              "WITH batch AS (SELECT id FROM runs WHERE status IN ('queued', "
              "'running') AND instance_id = $2 AND lease_expires_at >= $3 AND "
              "lease_expires_at < $4 AND lease_expires_at <> $1 LIMIT $5), "
              "extended AS (UPDATE runs SET lease_expires_at = $1 FROM batch WHERE "
              "runs.id = batch.id AND runs.status IN ('queued', 'running') AND "
              "runs.instance_id = $2 AND runs.lease_expires_at >= $3 AND "
              "runs.lease_expires_at < $4 AND runs.lease_expires_at <> $1) "
              "SELECT count(*) FROM batch",
              Params()
                  .Add(Us(lease_until))
                  .Add(instance)
                  .Add(Us(now))
                  .Add(Us(renew_before))
                  .Add(kBatch));
        }));
    if (r.Int(0, 0) < kBatch) return Status::Ok();
  }
  return Status::Ok();
}

Result<std::vector<Run>> PostgresStore::ReapExpired(
    Instant now, int limit,
    const std::function<std::optional<NewRun>(const Job&, const Run&)>& retry) {
  return With([&](Connection* c) -> Result<std::vector<Run>> {
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    // Any instance may reap; runs another reaper holds are left to it.
    SKED_ASSIGN_OR_RETURN(Rows ids,
                          c->Exec("SELECT id, status FROM runs WHERE status IN ('queued', "
                                  "'running') AND "
                                  "lease_expires_at IS NOT NULL AND lease_expires_at < $1 ORDER BY "
                                  "lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                                  Params().Add(Us(now)).Add(limit)));
    std::vector<Run> out;
    std::vector<Settled> settled;
    std::vector<RunRow> retries;
    for (int i = 0; i < ids.size(); ++i) {
      const std::int64_t id = ids.Int(i, 0);
      auto status = ParseRunStatus(ids.Text(i, 1));
      if (!status.ok() || !CanTransition(*status, RunStatus::kAbandoned)) continue;
      SKED_RETURN_IF_ERROR(
          c->Exec("UPDATE runs SET status = 'abandoned', finished_at = $1, reason = "
                  "'lease_expired', error = 'the lease of instance ''' || instance_id || ''' "
                  "expired' || CASE status WHEN 'running' THEN ': it stopped heartbeating' ELSE "
                  "' before it recorded the run''s start' END, lease_expires_at = NULL WHERE "
                  "id = $2",
                  Params().Add(Us(now)).Add(id))
              .status());
      SKED_ASSIGN_OR_RETURN(Run run, GetRunOn(c, id));
      SKED_ASSIGN_OR_RETURN(Job job, GetJobOn(c, run.job_id));
      std::optional<NewRun> next = retry(job, run);
      settled.push_back(
          {run.job_id, RunStatus::kAbandoned, run.started_at, run.id, next.has_value(), now});
      if (next) retries.push_back({run.job_id, *next, now, "", {}});
      out.push_back(std::move(run));
    }
    SKED_RETURN_IF_ERROR(CountSettled(c, settled));
    if (!retries.empty()) {
      SKED_RETURN_IF_ERROR(InsertRuns(c, retries).status());
      SKED_RETURN_IF_ERROR(Notify(c, kNotifyQueued));
    }
    SKED_RETURN_IF_ERROR(tx.Commit());
    return out;
  });
}

// ---------------------------------------------------------------- cancellation

Result<bool> PostgresStore::RequestCancel(std::int64_t run_id, Instant now,
                                          std::string_view reason) {
  return With([&](Connection* c) -> Result<bool> {
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec("SELECT status FROM runs WHERE id = $1 FOR UPDATE", Params().Add(run_id)));
    if (r.empty()) return NotFoundError("run " + std::to_string(run_id) + " not found");
    const std::string status = r.Text(0, 0);
    bool cancelled_now = false;
    if (status == "queued") {
      SKED_RETURN_IF_ERROR(c->Exec("UPDATE runs SET status = 'cancelled', finished_at = $1, "
                                   "reason = $2, cancel_requested = true, lease_expires_at = "
                                   "NULL WHERE id = $3",
                                   Params().Add(Us(now)).Add(reason).Add(run_id))
                               .status());
      cancelled_now = true;
    } else if (status == "running") {
      SKED_RETURN_IF_ERROR(
          c->Exec("UPDATE runs SET cancel_requested = true, reason = $1 WHERE id = $2",
                  Params().Add(reason).Add(run_id))
              .status());
      SKED_RETURN_IF_ERROR(Notify(c, kNotifyCancel));
    } else {
      return FailedPreconditionError("run " + std::to_string(run_id) + " already finished (" +
                                     status + ")");
    }
    SKED_RETURN_IF_ERROR(tx.Commit());
    return cancelled_now;
  });
}

Result<std::vector<Run>> PostgresStore::CancelRequested(std::string_view instance) {
  return With([&](Connection* c) -> Result<std::vector<Run>> {
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec(std::string("SELECT ") + kRunColumns +
                                              " FROM runs r JOIN jobs j ON j.id = r.job_id "
                                              "WHERE r.status = 'running' AND r.instance_id = "
                                              "$1 AND r.cancel_requested",
                                          Params().Add(instance)));
    std::vector<Run> out;
    out.reserve(static_cast<size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadRun(r, i));
    return out;
  });
}

// ---------------------------------------------------------------- runs

Result<Run> PostgresStore::GetRunOn(Connection* c, std::int64_t id) {
  SKED_ASSIGN_OR_RETURN(Rows r, c->Exec(std::string("SELECT ") + kRunColumns +
                                            " FROM runs r JOIN jobs j ON j.id = r.job_id "
                                            "WHERE r.id = $1",
                                        Params().Add(id)));
  if (r.empty()) return NotFoundError("run " + std::to_string(id) + " not found");
  return ReadRun(r, 0);
}

Result<Run> PostgresStore::GetRun(std::int64_t id) {
  return With([&](Connection* c) { return GetRunOn(c, id); });
}

Result<std::vector<Run>> PostgresStore::ListRuns(const RunFilter& filter) {
  return With([&](Connection* c) -> Result<std::vector<Run>> {
    // Only the conditions asked for (as on SQLite): the id range and the job
    // reach the planner whatever plan it caches.
    Params p;
    int n = 0;
    auto param = [&n] { return "$" + std::to_string(++n); };
    std::string sql = std::string("SELECT ") + kRunColumns +
                      " FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id < " + param();
    p.Add(filter.before_id > 0 ? filter.before_id : std::numeric_limits<std::int64_t>::max());
    if (filter.job_id) {
      sql += " AND r.job_id = " + param();
      p.Add(*filter.job_id);
    }
    if (filter.status) {
      sql += " AND r.status = " + param();
      p.Add(RunStatusName(*filter.status));
    }
    if (filter.since) {
      sql += " AND r.queued_at >= " + param();
      p.Add(Us(*filter.since));
    }
    if (filter.until) {
      sql += " AND r.queued_at < " + param();
      p.Add(Us(*filter.until));
    }
    sql += " ORDER BY r.id DESC LIMIT " + param();
    p.Add(filter.limit);
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec(sql, p));
    std::vector<Run> out;
    out.reserve(static_cast<size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadRun(r, i));
    return out;
  });
}

// ---------------------------------------------------------------- job types, instances

Status PostgresStore::UpsertJobType(const JobType& type) {
  return With([&](Connection* c) -> Status {
    return c
        ->Exec(
            "INSERT INTO job_types (name, driver, description, notifications) VALUES ($1, $2, "
            "$3, $4) ON CONFLICT (name) DO UPDATE SET driver = excluded.driver, description = "
            "excluded.description, notifications = excluded.notifications",
            Params().Add(type.name).Add(type.driver).Add(type.description).Add(type.notifications))
        .status();
  });
}

Result<std::vector<JobType>> PostgresStore::ListJobTypes() {
  return With([](Connection* c) -> Result<std::vector<JobType>> {
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec("SELECT name, driver, description, notifications FROM "
                                          "job_types ORDER BY name"));
    std::vector<JobType> out;
    out.reserve(static_cast<size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) {
      out.push_back({r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.Bool(i, 3)});
    }
    return out;
  });
}

Status PostgresStore::RegisterInstance(const InstanceInfo& info,
                                       const std::optional<InstanceInfo>& replacing) {
  return With([&](Connection* c) -> Status {
    SKED_ASSIGN_OR_RETURN(
        Rows r,
        c->Exec("INSERT INTO instances (id, host, pid, version, started_at, heartbeat_at, "
                "stopped_at) VALUES ($1, $2, $3, $4, $5, $6, NULL) ON CONFLICT (id) DO UPDATE "
                "SET host = excluded.host, pid = excluded.pid, version = excluded.version, "
                "started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
                "stopped_at = NULL WHERE instances.host = $7 AND instances.pid = $8 AND "
                "instances.started_at = $9 AND instances.heartbeat_at = $10 RETURNING id",
                Params()
                    .Add(info.id)
                    .Add(info.host)
                    .Add(info.pid)
                    .Add(info.version)
                    .Add(Us(info.started_at))
                    .Add(Us(info.heartbeat_at))
                    .Add(replacing ? replacing->host : std::string())
                    .Add(replacing ? replacing->pid : std::int64_t{-1})
                    .Add(replacing ? Us(replacing->started_at) : std::int64_t{-1})
                    .Add(replacing ? Us(replacing->heartbeat_at) : std::int64_t{-1})));
    if (r.empty()) {
      return AlreadyExistsError("instance id '" + info.id + "' is registered by another process");
    }
    return Status::Ok();
  });
}

Status PostgresStore::Heartbeat(std::string_view instance, Instant now) {
  return With([&](Connection* c) -> Status {
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec("UPDATE instances SET heartbeat_at = $1 WHERE id = $2",
                                          Params().Add(Us(now)).Add(instance)));
    if (r.affected() == 0) {
      return NotFoundError("instance '" + std::string(instance) + "' is not registered");
    }
    return Status::Ok();
  });
}

Status PostgresStore::DeregisterInstance(std::string_view instance, Instant now) {
  return With([&](Connection* c) -> Status {
    return c
        ->Exec("UPDATE instances SET stopped_at = $1 WHERE id = $2",
               Params().Add(Us(now)).Add(instance))
        .status();
  });
}

Result<std::vector<InstanceInfo>> PostgresStore::ListInstances() {
  return With([](Connection* c) -> Result<std::vector<InstanceInfo>> {
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec("SELECT id, host, pid, version, started_at, "
                                          "heartbeat_at, stopped_at FROM instances ORDER BY id"));
    std::vector<InstanceInfo> out;
    out.reserve(static_cast<size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) {
      out.push_back({r.Text(i, 0), r.Text(i, 1), r.Int(i, 2), r.Text(i, 3), AtUs(r.Int(i, 4)),
                     AtUs(r.Int(i, 5)), OptInstant(r, i, 6)});
    }
    return out;
  });
}

// ---------------------------------------------------------------- tokens, audit log

constexpr const char* kTokenColumns =
    "id, name, role, secret_hash, created_by, created_at, revoked_at";

ApiToken ReadToken(const Rows& r, int i) {
  return {r.Int(i, 0),  r.Text(i, 1),      r.Text(i, 2),       r.Text(i, 3),
          r.Text(i, 4), AtUs(r.Int(i, 5)), OptInstant(r, i, 6)};
}

Result<ApiToken> PostgresStore::CreateToken(const ApiToken& token) {
  return With([&](Connection* c) -> Result<ApiToken> {
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec(std::string("INSERT INTO api_tokens (name, role, secret_hash, created_by, "
                                    "created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO "
                                    "NOTHING RETURNING ") +
                            kTokenColumns,
                        Params()
                            .Add(token.name)
                            .Add(token.role)
                            .Add(token.secret_hash)
                            .Add(token.created_by)
                            .Add(Us(token.created_at))));
    if (r.empty()) {
      return AlreadyExistsError("a token named '" + token.name + "' exists (revoke it first)");
    }
    return ReadToken(r, 0);
  });
}

Result<ApiToken> PostgresStore::GetToken(std::int64_t id) {
  return With([&](Connection* c) -> Result<ApiToken> {
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec(std::string("SELECT ") + kTokenColumns + " FROM api_tokens WHERE id = $1",
                        Params().Add(id)));
    if (r.empty()) return NotFoundError("token " + std::to_string(id) + " not found");
    return ReadToken(r, 0);
  });
}

Result<std::vector<ApiToken>> PostgresStore::ListTokens() {
  return With([](Connection* c) -> Result<std::vector<ApiToken>> {
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec(std::string("SELECT ") + kTokenColumns + " FROM api_tokens ORDER BY id"));
    std::vector<ApiToken> out;
    out.reserve(static_cast<size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadToken(r, i));
    return out;
  });
}

Result<ApiToken> PostgresStore::RevokeToken(std::string_view name, Instant now) {
  return With([&](Connection* c) -> Result<ApiToken> {
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec(std::string("UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND "
                                    "revoked_at IS NULL RETURNING ") +
                            kTokenColumns,
                        Params().Add(Us(now)).Add(name)));
    if (r.empty()) {
      return NotFoundError("no token named '" + std::string(name) + "' (or it is revoked already)");
    }
    return ReadToken(r, 0);
  });
}

Result<std::int64_t> PostgresStore::AppendAudit(const AuditEntry& e) {
  return With([&](Connection* c) -> Result<std::int64_t> {
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec("INSERT INTO audit_log (at, actor, action, target, source, status, "
                        "detail) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                        Params()
                            .Add(Us(e.at))
                            .Add(e.actor)
                            .Add(e.action)
                            .Add(e.target)
                            .Add(e.source)
                            .Add(e.status)
                            .Add(e.detail)));
    return r.Int(0, 0);
  });
}

Result<std::vector<AuditEntry>> PostgresStore::ListAudit(const AuditFilter& f) {
  return With([&](Connection* c) -> Result<std::vector<AuditEntry>> {
    Params p;
    int n = 0;
    auto param = [&n] { return "$" + std::to_string(++n); };
    std::string sql =
        "SELECT id, at, actor, action, target, source, status, detail FROM audit_log WHERE id < " +
        param();
    p.Add(f.before_id > 0 ? f.before_id : std::numeric_limits<std::int64_t>::max());
    if (f.actor) {
      sql += " AND actor = " + param();
      p.Add(*f.actor);
    }
    if (f.action) {
      sql += " AND action = " + param();
      p.Add(*f.action);
    }
    if (f.since) {
      sql += " AND at >= " + param();
      p.Add(Us(*f.since));
    }
    sql += " ORDER BY id DESC LIMIT " + param();
    p.Add(f.limit);
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec(sql, p));
    std::vector<AuditEntry> out;
    out.reserve(static_cast<size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) {
      out.push_back({r.Int(i, 0), AtUs(r.Int(i, 1)), r.Text(i, 2), r.Text(i, 3), r.Text(i, 4),
                     r.Text(i, 5), static_cast<int>(r.Int(i, 6)), r.Text(i, 7)});
    }
    return out;
  });
}

constexpr const char* kNotificationColumns =
    "id, job_id, job_name, run_id, event, channel, status, attempts, created_at, "
    "next_attempt_at, claimed_by, claim_expires_at, finished_at, last_error";

Notification ReadNotification(const Rows& r, int i) {
  Notification n;
  n.id = r.Int(i, 0);
  n.job_id = r.Int(i, 1);
  n.job_name = r.Text(i, 2);
  if (!r.IsNull(i, 3)) n.run_id = r.Int(i, 3);
  n.event = r.Text(i, 4);
  n.channel = r.Text(i, 5);
  n.status = ParseNotificationStatus(r.Text(i, 6)).value_or(NotificationStatus::kFailed);
  n.attempts = static_cast<int>(r.Int(i, 7));
  n.created_at = AtUs(r.Int(i, 8));
  n.next_attempt_at = AtUs(r.Int(i, 9));
  n.claimed_by = r.Text(i, 10);
  n.claim_expires_at = OptInstant(r, i, 11);
  n.finished_at = OptInstant(r, i, 12);
  n.last_error = r.Text(i, 13);
  return n;
}

Result<std::vector<Notification>> PostgresStore::ClaimNotifications(std::string_view instance,
                                                                    Instant now, int limit,
                                                                    Instant claim_until) {
  return With([&](Connection* c) -> Result<std::vector<Notification>> {
    // One statement: what another claimer holds is skipped, never waited
    // for. A claim moves next_attempt_at to its end: a claimer that dies
    // leaves the notification due again when its claim runs out.
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec(std::string("UPDATE notifications SET claimed_by = $1, "
                                    "claim_expires_at = $2, next_attempt_at = $2, attempts = "
                                    "attempts + 1 WHERE id IN (SELECT id FROM notifications "
                                    "WHERE status = 'pending' AND next_attempt_at <= $3 ORDER BY "
                                    "next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) "
                                    "RETURNING ") +
                            kNotificationColumns,
                        Params().Add(instance).Add(Us(claim_until)).Add(Us(now)).Add(limit)));
    std::vector<Notification> out;
    out.reserve(static_cast<size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadNotification(r, i));
    std::sort(out.begin(), out.end(),
              [](const Notification& a, const Notification& b) { return a.id < b.id; });
    return out;
  });
}

Result<std::vector<bool>> PostgresStore::RecordDeliveries(
    std::string_view instance, const std::vector<DeliveryResult>& results) {
  return With([&](Connection* c) -> Result<std::vector<bool>> {
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    std::vector<bool> applied;
    applied.reserve(results.size());
    for (const DeliveryResult& r : results) {
      // Delivered or given up: finished. To be retried: pending, unclaimed,
      // due at retry_at.
      const bool finished = r.delivered || !r.retry_at;
      SKED_ASSIGN_OR_RETURN(
          Rows u,
          c->Exec("UPDATE notifications SET status = $1, finished_at = $2, last_error = $3, "
                  "next_attempt_at = $4, claimed_by = '', claim_expires_at = NULL WHERE id = $5 "
                  "AND status = 'pending' AND claimed_by = $6 RETURNING id",
                  Params()
                      .Add(r.delivered ? "delivered" : (finished ? "failed" : "pending"))
                      .Add(finished ? std::optional<std::int64_t>(Us(r.at)) : std::nullopt)
                      .Add(r.delivered ? std::string() : r.error)
                      .Add(Us(r.retry_at && !r.delivered ? *r.retry_at : r.at))
                      .Add(r.notification_id)
                      .Add(instance)));
      applied.push_back(!u.empty());
      if (u.empty()) continue;
      // The attempt's number is the claim's (ClaimNotifications counted it).
      SKED_RETURN_IF_ERROR(
          c->Exec("INSERT INTO notification_attempts (notification_id, attempt, instance_id, "
                  "finished_at, delivered, error, retry_at) SELECT id, attempts, $1, $2, $3, $4, "
                  "$5 FROM notifications WHERE id = $6 ON CONFLICT DO NOTHING",
                  Params()
                      .Add(instance)
                      .Add(Us(r.at))
                      .Add(r.delivered)
                      .Add(r.delivered ? std::string() : r.error)
                      .Add(r.retry_at && !r.delivered ? std::optional<std::int64_t>(Us(*r.retry_at))
                                                      : std::nullopt)
                      .Add(r.notification_id))
              .status());
    }
    SKED_RETURN_IF_ERROR(tx.Commit());
    return applied;
  });
}

Result<std::vector<DeliveryAttempt>> PostgresStore::ListDeliveryAttempts(
    std::int64_t notification_id) {
  return With([&](Connection* c) -> Result<std::vector<DeliveryAttempt>> {
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec("SELECT attempt, instance_id, finished_at, delivered, error, retry_at FROM "
                        "notification_attempts WHERE notification_id = $1 ORDER BY attempt",
                        Params().Add(notification_id)));
    std::vector<DeliveryAttempt> out;
    for (int i = 0; i < r.size(); ++i) {
      DeliveryAttempt a;
      a.attempt = static_cast<int>(r.Int(i, 0));
      a.instance = r.Text(i, 1);
      a.finished_at = AtUs(r.Int(i, 2));
      a.delivered = r.Bool(i, 3);
      a.error = r.Text(i, 4);
      a.retry_at = OptInstant(r, i, 5);
      out.push_back(std::move(a));
    }
    return out;
  });
}

Result<std::optional<Instant>> PostgresStore::NextNotificationAt() {
  return With([&](Connection* c) -> Result<std::optional<Instant>> {
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec("SELECT min(next_attempt_at) FROM notifications WHERE "
                                          "status = 'pending'"));
    return OptInstant(r, 0, 0);
  });
}

Result<std::vector<Notification>> PostgresStore::ListNotifications(const NotificationFilter& f) {
  return With([&](Connection* c) -> Result<std::vector<Notification>> {
    Params p;
    int n = 0;
    auto param = [&n] { return "$" + std::to_string(++n); };
    std::string sql =
        std::string("SELECT ") + kNotificationColumns + " FROM notifications WHERE id < " + param();
    p.Add(f.before_id > 0 ? f.before_id : std::numeric_limits<std::int64_t>::max());
    if (f.job_id) {
      sql += " AND job_id = " + param();
      p.Add(*f.job_id);
    }
    if (f.run_id) {
      sql += " AND run_id = " + param();
      p.Add(*f.run_id);
    }
    if (f.status) {
      sql += " AND status = " + param();
      p.Add(NotificationStatusName(*f.status));
    }
    sql += " ORDER BY id DESC LIMIT " + param();
    p.Add(f.limit);
    SKED_ASSIGN_OR_RETURN(Rows r, c->Exec(sql, p));
    std::vector<Notification> out;
    out.reserve(static_cast<size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadNotification(r, i));
    return out;
  });
}

Result<std::int64_t> PostgresStore::PruneNotifications(Instant finished_before, int limit) {
  return With([&](Connection* c) -> Result<std::int64_t> {
    // Rows another pruner holds are left to it (SKIP LOCKED).
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec("DELETE FROM notifications WHERE id IN (SELECT id FROM notifications WHERE "
                        "status <> 'pending' AND finished_at < $1 ORDER BY finished_at LIMIT $2 "
                        "FOR UPDATE SKIP LOCKED) RETURNING id",
                        Params().Add(Us(finished_before)).Add(limit)));
    return static_cast<std::int64_t>(r.size());
  });
}

Result<PruneResult> PostgresStore::PruneRuns(const PruneRequest& request) {
  // Each statement is its own transaction on a pooled connection. A delete
  // locks only the settled runs it deletes, which no claim, start or settle
  // touches again.
  struct Backend {
    PostgresStore* store;
    Result<std::vector<store_internal::PruneJob>> PruneJobs(std::int64_t after_id, int limit) {
      return store->With([&](Connection* c) -> Result<std::vector<store_internal::PruneJob>> {
        SKED_ASSIGN_OR_RETURN(
            Rows r, c->Exec("SELECT id, name, keep_age_us, keep_runs, keep_failures FROM jobs "
                            "WHERE id > $1 ORDER BY id LIMIT $2",
                            Params().Add(after_id).Add(limit)));
        std::vector<store_internal::PruneJob> jobs;
        jobs.reserve(r.size());
        for (int i = 0; i < r.size(); ++i) {
          store_internal::PruneJob j;
          j.id = r.Int(i, 0);
          j.name = r.Text(i, 1);
          j.retention.max_age = OptDuration(r, i, 2);
          if (!r.IsNull(i, 3)) j.retention.max_runs = static_cast<int>(r.Int(i, 3));
          if (!r.IsNull(i, 4)) j.retention.keep_failures = static_cast<int>(r.Int(i, 4));
          jobs.push_back(std::move(j));
        }
        return jobs;
      });
    }
    Result<std::optional<std::int64_t>> NthNewestRun(std::int64_t job, int n, bool failures) {
      static const std::string kSettled =
          store_internal::NthNewestRunSql('$', store_internal::kSettledStatuses);
      static const std::string kFailures =
          store_internal::NthNewestRunSql('$', store_internal::kFailureStatuses);
      return store->With([&](Connection* c) -> Result<std::optional<std::int64_t>> {
        SKED_ASSIGN_OR_RETURN(
            Rows r, c->Exec(failures ? kFailures : kSettled, Params().Add(job).Add(n - 1)));
        if (r.empty()) return std::optional<std::int64_t>();
        return std::optional<std::int64_t>(r.Int(0, 0));
      });
    }
    Result<std::int64_t> PruneJobRuns(std::int64_t job, const store_internal::PruneBounds& b,
                                      int limit) {
      static const std::string kWhere = store_internal::PrunableRunsWhere('$');
      static const std::string kCount = "SELECT count(*) FROM runs WHERE " + kWhere;
      static const std::string kDelete =
          "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE " + kWhere +
          " ORDER BY id LIMIT $6)";
      return store->With([&](Connection* c) -> Result<std::int64_t> {
        Params p;
        p.Add(job).Add(b.newest).Add(b.count_cut).Add(b.age_cut).Add(b.fail_cut);
        if (limit < 0) {
          SKED_ASSIGN_OR_RETURN(Rows r, c->Exec(kCount, p));
          return r.Int(0, 0);
        }
        p.Add(limit);
        SKED_ASSIGN_OR_RETURN(Rows r, c->Exec(kDelete, p));
        return r.affected();
      });
    }
  };
  Backend backend{this};
  return store_internal::SweepRetention(backend, request);
}

Result<bool> PostgresStore::AcquireLease(std::string_view name, std::string_view holder,
                                         Instant now, Instant until) {
  return With([&](Connection* c) -> Result<bool> {
    SKED_ASSIGN_OR_RETURN(
        Rows r, c->Exec("INSERT INTO leases AS l (name, holder, expires_at) VALUES ($1, $2, $4) "
                        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = "
                        "excluded.expires_at WHERE l.holder = excluded.holder OR "
                        "l.expires_at <= $3 RETURNING holder",
                        Params().Add(name).Add(holder).Add(Us(now)).Add(Us(until))));
    return !r.empty();
  });
}

Result<std::vector<Notification>> PostgresStore::RaiseWatchdogEvents(Instant now) {
  return With([&](Connection* c) -> Result<std::vector<Notification>> {
    Tx tx(c);
    SKED_RETURN_IF_ERROR(tx.Begin());
    // Columns: job id, name, notify_on, notify_channels, run id (or NULL),
    // the key. What was raised already is skipped (the dedupe key's index);
    // two instances checking at once write each once (ON CONFLICT).
    struct Check {
      policy::NotifyEvent event;
      const char* sql;
    };
    const Check checks[] = {
        {policy::NotifyEvent::kLate,
         "SELECT j.id, j.name, j.notify_on, j.notify_channels, r.id, 'late:' || r.id FROM jobs j "
         "JOIN runs r ON r.job_id = j.id WHERE j.late_after_us IS NOT NULL AND r.scheduled_for > "
         "$1::bigint - 86400000000 AND r.scheduled_for + j.late_after_us <= $1 AND r.attempt = 1 "
         "AND r.status NOT IN ('skipped', 'cancelled') AND (r.started_at IS NULL OR "
         "r.started_at > r.scheduled_for + j.late_after_us) AND NOT EXISTS (SELECT 1 FROM "
         "notifications n WHERE n.dedupe_key = 'late:' || r.id)"},
        {policy::NotifyEvent::kOverrun,
         "SELECT j.id, j.name, j.notify_on, j.notify_channels, r.id, 'overrun:' || r.id FROM "
         "jobs j JOIN runs r ON r.job_id = j.id WHERE j.expected_duration_us IS NOT NULL AND "
         "r.status = 'running' AND r.started_at + j.expected_duration_us <= $1 AND NOT EXISTS "
         "(SELECT 1 FROM notifications n WHERE n.dedupe_key = 'overrun:' || r.id)"},
        {policy::NotifyEvent::kStale,
         "SELECT j.id, j.name, j.notify_on, j.notify_channels, NULL::bigint, 'stale:' || j.id || "
         "':' || coalesce(s.last_success_at, j.created_at) FROM jobs j JOIN job_stats s ON "
         "s.job_id = j.id WHERE j.no_success_for_us IS NOT NULL AND j.state = 'active' AND "
         "coalesce(s.last_success_at, j.created_at) + j.no_success_for_us <= $1 AND NOT EXISTS "
         "(SELECT 1 FROM notifications n WHERE n.dedupe_key = 'stale:' || j.id || ':' || "
         "coalesce(s.last_success_at, j.created_at))"},
    };
    ArrayLiteral job_ids, names, run_ids, events, channels, keys;
    int rows = 0;
    std::set<std::string> raised;  // keys found in this pass
    auto add = [&](policy::NotifyEvent event, const Rows& r, int i) {
      if (!raised.insert(r.Text(i, 5)).second) return;  // an overrun both ways
      NotifySpec spec;
      spec.on = SplitNotifyList(OptText(r, i, 2));
      spec.channels = SplitNotifyList(OptText(r, i, 3));
      for (const policy::OutboxEntry& e : policy::RouteEvent(event, spec, notify_)) {
        ++rows;
        job_ids.Add(r.Int(i, 0));
        names.Add(r.Text(i, 1));
        run_ids.Add(r.IsNull(i, 4) ? std::nullopt : std::optional<std::int64_t>(r.Int(i, 4)));
        events.Add(policy::NotifyEventName(e.event));
        channels.Add(e.channel);
        keys.Add(r.Text(i, 5));
      }
    };
    for (const Check& check : checks) {
      SKED_ASSIGN_OR_RETURN(Rows r, c->Exec(check.sql, Params().Add(Us(now))));
      for (int i = 0; i < r.size(); ++i) add(check.event, r, i);
    }
    // Overrun against a job's own history (overrun_factor): the running runs
    // not yet raised, each measured against its job's recent median (the
    // jobs' histories read in one statement), in the policy's words.
    SKED_ASSIGN_OR_RETURN(
        Rows running,
        c->Exec("SELECT j.id, j.name, j.notify_on, j.notify_channels, r.id, 'overrun:' || r.id, "
                "r.started_at, j.overrun_factor FROM jobs j JOIN runs r ON r.job_id = j.id WHERE "
                "j.overrun_factor IS NOT NULL AND r.status = 'running' AND r.started_at IS NOT "
                "NULL AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.dedupe_key = "
                "'overrun:' || r.id)",
                Params()));
    if (!running.empty()) {
      std::set<std::int64_t> watched;
      for (int i = 0; i < running.size(); ++i) watched.insert(running.Int(i, 0));
      ArrayLiteral watched_ids;
      for (std::int64_t id : watched) watched_ids.Add(id);
      SKED_ASSIGN_OR_RETURN(
          Rows h, c->Exec("SELECT u.job_id, h.d FROM unnest($1::bigint[]) AS u(job_id) CROSS "
                          "JOIN LATERAL (SELECT x.d FROM (SELECT id, finished_at - started_at "
                          "AS d, status FROM runs WHERE job_id = u.job_id ORDER BY id DESC LIMIT "
                          "$2) x WHERE x.status = 'succeeded' AND x.d IS NOT NULL ORDER BY x.id "
                          "DESC LIMIT $3) h",
                          Params()
                              .Add(watched_ids.str())
                              .Add(policy::kOverrunHistoryRuns)
                              .Add(policy::kOverrunSamples)));
      std::map<std::int64_t, std::vector<Duration>> recent;
      for (int i = 0; i < h.size(); ++i) recent[h.Int(i, 0)].emplace_back(h.Int(i, 1));
      // One limit per job, however many of its runs are running.
      std::map<std::int64_t, std::optional<Duration>> limits;
      for (int i = 0; i < running.size(); ++i) {
        const std::int64_t job_id = running.Int(i, 0);
        auto limit = limits.find(job_id);
        if (limit == limits.end()) {
          limit = limits
                      .emplace(job_id, policy::OverrunLimit(std::move(recent[job_id]),
                                                            running.Double(i, 7)))
                      .first;
        }
        if (limit->second && AtUs(running.Int(i, 6)) + *limit->second <= now) {
          add(policy::NotifyEvent::kOverrun, running, i);
        }
      }
    }
    std::vector<Notification> out;
    if (rows > 0) {
      SKED_ASSIGN_OR_RETURN(
          Rows w, c->Exec(std::string("INSERT INTO notifications (job_id, job_name, run_id, event, "
                                      "channel, created_at, next_attempt_at, dedupe_key) SELECT "
                                      "u.job_id, u.name, u.run_id, u.event, u.channel, $7, $7, "
                                      "u.key FROM unnest($1::bigint[], $2::text[], $3::bigint[], "
                                      "$4::text[], $5::text[], $6::text[]) AS u(job_id, name, "
                                      "run_id, event, channel, key) ON CONFLICT DO NOTHING "
                                      "RETURNING ") +
                              kNotificationColumns,
                          Params()
                              .Add(job_ids.str())
                              .Add(names.str())
                              .Add(run_ids.str())
                              .Add(events.str())
                              .Add(channels.str())
                              .Add(keys.str())
                              .Add(Us(now))));
      for (int i = 0; i < w.size(); ++i) out.push_back(ReadNotification(w, i));
    }
    SKED_RETURN_IF_ERROR(tx.Commit());
    return out;
  });
}

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                 const StoreOptions& options) {
  if (options.schema.empty()) return InvalidArgumentError("store schema: must not be empty");
  if (options.schema.size() > 63) {
    return InvalidArgumentError("store schema '" + options.schema +
                                "': longer than PostgreSQL's 63-byte identifiers");
  }
  auto store = std::make_unique<PostgresStore>(url, options);
  SKED_RETURN_IF_ERROR(store->Check());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace sked
