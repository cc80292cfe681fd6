#include "sked/sqlite_store.h"

#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/notify_policy.h"
#include "core/run_policy.h"
#include "store/retention_sweep.h"
#include "store/sqlite/migrations.h"
#include "store/sqlite/pinned_sql.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/wal_checkpointer.h"
#include "store/store_codec.h"

namespace sked {
namespace {

using store_internal::AtUs;
using store_internal::IsFailure;
using store_internal::JoinNotifyList;
using store_internal::JoinTags;
using store_internal::OptUs;
using store_internal::RetryOn;
using store_internal::SetRetryOn;
using store_internal::SplitNotifyList;
using store_internal::SplitTags;
using store_internal::SqliteDb;
using store_internal::Stmt;
using store_internal::Transaction;
using store_internal::Us;
using store_internal::WalCheckpointer;

std::optional<Instant> OptInstant(const Stmt& s, int col) {
  return s.IsNull(col) ? std::nullopt : std::optional<Instant>(AtUs(s.Int(col)));
}
std::optional<std::string> OptText(const Stmt& s, int col) {
  return s.IsNull(col) ? std::nullopt : std::optional<std::string>(s.Text(col));
}
std::optional<int> OptSmallInt(const Stmt& s, int col) {
  return s.IsNull(col) ? std::nullopt : std::optional<int>(static_cast<int>(s.Int(col)));
}
std::optional<Duration> OptDuration(const Stmt& s, int col) {
  return s.IsNull(col) ? std::nullopt : std::optional<Duration>(Duration(s.Int(col)));
}

constexpr const char* kJobColumns =
    "j.id, j.name, j.description, j.driver, j.driver_config, j.schedule, j.time_zone, j.state, "
    "j.start_at, j.end_at, j.overlap, j.max_queued, j.max_concurrent, j.misfire, "
    "j.catchup_window_us, j.starting_deadline_us, j.timeout_us, j.priority, j.retry_max, "
    "j.retry_backoff_us, j.retry_multiplier, j.retry_max_backoff_us, j.retry_jitter, j.retry_on, "
    "j.tags, j.source, j.next_run_at, j.last_run_at, j.runs, j.successes, j.failures, j.version, "
    "j.created_at, j.updated_at, j.state_reason, j.last_success_at, j.notify_on, "
    "j.notify_channels, j.late_after_us, j.expected_duration_us, j.no_success_for_us, "
    "j.keep_age_us, j.keep_runs, j.keep_failures, j.overrun_factor";
constexpr int kJobColumnCount = 45;

Job ReadJob(const Stmt& s) {
  Job j;
  j.id = s.Int(0);
  JobSpec& spec = j.spec;
  spec.name = s.Text(1);
  spec.description = s.Text(2);
  spec.driver = s.Text(3);
  spec.driver_config = s.Text(4);
  spec.schedule = s.Text(5);
  spec.time_zone = s.Text(6);
  j.state = ParseJobState(s.Text(7)).value_or(JobState::kDisabled);
  spec.paused = j.state == JobState::kPaused;
  spec.start_at = OptInstant(s, 8);
  spec.end_at = OptInstant(s, 9);
  spec.overlap = ParseOverlapPolicy(s.Text(10)).value_or(OverlapPolicy::kSkip);
  spec.max_queued = static_cast<int>(s.Int(11));
  spec.max_concurrent = static_cast<int>(s.Int(12));
  spec.misfire = ParseMisfirePolicy(s.Text(13)).value_or(MisfirePolicy::kRunOnce);
  spec.catchup_window = Duration(s.Int(14));
  spec.starting_deadline = OptDuration(s, 15);
  spec.timeout = OptDuration(s, 16);
  spec.priority = static_cast<int>(s.Int(17));
  spec.retry.max_retries = static_cast<int>(s.Int(18));
  spec.retry.backoff = Duration(s.Int(19));
  spec.retry.multiplier = s.Double(20);
  spec.retry.max_backoff = Duration(s.Int(21));
  spec.retry.jitter = s.Double(22);
  SetRetryOn(s.Text(23), &spec.retry);
  spec.tags = SplitTags(s.Text(24));
  j.source = s.Text(25);
  j.next_run_at = OptInstant(s, 26);
  j.last_run_at = OptInstant(s, 27);
  j.runs = s.Int(28);
  j.successes = s.Int(29);
  j.failures = s.Int(30);
  j.version = s.Int(31);
  j.created_at = AtUs(s.Int(32));
  j.updated_at = AtUs(s.Int(33));
  j.state_reason = s.Text(34);
  j.last_success_at = OptInstant(s, 35);
  spec.notify.on = SplitNotifyList(OptText(s, 36));
  spec.notify.channels = SplitNotifyList(OptText(s, 37));
  spec.late_after = OptDuration(s, 38);
  spec.expected_duration = OptDuration(s, 39);
  spec.no_success_for = OptDuration(s, 40);
  spec.retention.max_age = OptDuration(s, 41);
  spec.retention.max_runs = OptSmallInt(s, 42);
  spec.retention.keep_failures = OptSmallInt(s, 43);
  if (!s.IsNull(44)) spec.overrun_factor = s.Double(44);
  return j;
}

// Binds the written job fields as parameters 1-37, in the order the INSERT names them.
void BindJobSpec(Stmt* s, const Job& j) {
  const JobSpec& spec = j.spec;
  s->Bind(1, spec.name)
      .Bind(2, spec.description)
      .Bind(3, spec.driver)
      .Bind(4, spec.driver_config)
      .Bind(5, spec.schedule)
      .Bind(6, spec.time_zone)
      .Bind(7, JobStateName(j.state))
      .Bind(8, OptUs(spec.start_at))
      .Bind(9, OptUs(spec.end_at))
      .Bind(10, OverlapPolicyName(spec.overlap))
      .Bind(11, spec.max_queued)
      .Bind(12, spec.max_concurrent)
      .Bind(13, MisfirePolicyName(spec.misfire))
      .Bind(14, Us(spec.catchup_window))
      .Bind(15, OptUs(spec.starting_deadline))
      .Bind(16, OptUs(spec.timeout))
      .Bind(17, spec.priority)
      .Bind(18, spec.retry.max_retries)
      .Bind(19, Us(spec.retry.backoff))
      .Bind(20, spec.retry.multiplier)
      .Bind(21, Us(spec.retry.max_backoff))
      .Bind(22, spec.retry.jitter)
      .Bind(23, RetryOn(spec.retry))
      .Bind(24, JoinTags(spec.tags))
      .Bind(25, j.source)
      .Bind(26, OptUs(j.next_run_at))
      .Bind(27, Us(j.updated_at))
      .Bind(28, j.state_reason)
      .Bind(29, JoinNotifyList(spec.notify.on))
      .Bind(30, JoinNotifyList(spec.notify.channels))
      .Bind(31, OptUs(spec.late_after))
      .Bind(32, OptUs(spec.expected_duration))
      .Bind(33, OptUs(spec.no_success_for))
      .Bind(34, OptUs(spec.retention.max_age))
      .Bind(35, spec.retention.max_runs)
      .Bind(36, spec.retention.keep_failures)
      .Bind(37, spec.overrun_factor);
}

constexpr const char* kRunColumns =
    "r.id, r.job_id, j.name, r.scheduled_for, r.attempt, r.trigger, r.status, r.priority, "
    "r.queued_at, r.not_before, r.started_at, r.finished_at, r.instance_id, r.lease_token, "
    "r.lease_expires_at, r.exit_code, r.output, r.output_truncated, r.result, r.error, r.reason, "
    "r.cancel_requested, j.version";

Run ReadRun(const Stmt& s) {
  Run r;
  r.id = s.Int(0);
  r.job_id = s.Int(1);
  r.job_name = s.Text(2);
  r.scheduled_for = AtUs(s.Int(3));
  r.attempt = static_cast<int>(s.Int(4));
  r.trigger = ParseRunTrigger(s.Text(5)).value_or(RunTrigger::kSchedule);
  r.status = ParseRunStatus(s.Text(6)).value_or(RunStatus::kFailed);
  r.priority = static_cast<int>(s.Int(7));
  r.queued_at = AtUs(s.Int(8));
  r.not_before = AtUs(s.Int(9));
  r.started_at = OptInstant(s, 10);
  r.finished_at = OptInstant(s, 11);
  r.instance_id = s.Text(12);
  r.lease_token = s.Int(13);
  r.lease_expires_at = OptInstant(s, 14);
  if (!s.IsNull(15)) r.exit_code = static_cast<int>(s.Int(15));
  r.output = s.Text(16);
  r.output_truncated = s.Int(17) != 0;
  r.result = s.Text(18);
  r.error = s.Text(19);
  r.reason = s.Text(20);
  r.cancel_requested = s.Int(21) != 0;
  r.job_version = s.Int(22);
  return r;
}

int CountFor(RunStatus status, RunStatus is) { return status == is ? 1 : 0; }

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<SqliteDb> db, std::unique_ptr<WalCheckpointer> checkpointer,
              NotifyDefaults notify)
      : notify_(std::move(notify)),
        db_(std::move(db)),
        checkpointer_(std::move(checkpointer)),
        rng_(std::random_device{}()) {}

  Status Migrate() override;
  Result<int> SchemaVersion() override;
  int LatestSchemaVersion() const override {
    return store_internal::SqliteMigrations().back().version;
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

 private:
  // Serializes use of the connection; every statement is reset when the
  // operation ends so no read transaction outlives it.
  class Op {
   public:
    explicit Op(SqliteStore* s) : s_(s), lock_(s->mu_) {}
    ~Op() { s_->db_->ResetAll(); }

   private:
    SqliteStore* s_;
    std::lock_guard<std::mutex> lock_;
  };

  Result<Stmt*> Sql(std::string_view sql) { return db_->Prepare(sql); }

  Result<Job> GetJobLocked(std::int64_t id);
  // StartQueued (reserve false: the runs start now, leased until `until`) and
  // ReserveQueued (reserved until `until`). REQUIRES: a transaction.
  Result<Reservation> TakeQueuedLocked(std::string_view instance, Instant now, int limit,
                                       Instant until, bool reserve);
  Result<Run> GetRunLocked(std::int64_t id);
  // Inserts `run` unless its (job, scheduled_for, attempt) exists; a queued
  // run is reserved for `request.instance` when a claim request is given.
  Result<std::optional<Run>> InsertRunLocked(std::int64_t job_id, const NewRun& run, Instant now,
                                             const ClaimRequest* request = nullptr);
  Status CountSettled(std::int64_t job_id, RunStatus status, std::optional<Instant> started_at);
  // Writes the outbox rows the settlement of run `run_id` as `status` raises
  // (policy::RouteSettlement). REQUIRES: a transaction, before CountSettled
  // (it reads whether the job was failing).
  Status WriteOutbox(std::int64_t job_id, std::int64_t run_id, RunStatus status, bool retry_follows,
                     Instant now);

  const NotifyDefaults notify_;
  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;  // guarded by mu_
  // Checkpoints db_'s file off the writing connection (none in memory);
  // destroyed first: it gives checkpoints back to db_.
  std::unique_ptr<WalCheckpointer> checkpointer_;
  std::mt19937_64 rng_;  // guarded by mu_ (lease tokens)
};

Result<int> SqliteStore::SchemaVersion() {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * exists,
                        Sql("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                            "name = 'schema_migrations'"));
  if (!exists->Step() || exists->Int(0) == 0) return 0;
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("SELECT coalesce(max(version), 0) FROM schema_migrations"));
  if (!s->Step()) return s->status().ok() ? InternalError("no schema version") : s->status();
  return static_cast<int>(s->Int(0));
}

Status SqliteStore::Migrate() {
  SKED_ASSIGN_OR_RETURN(int current, SchemaVersion());
  Op op(this);
  if (current > LatestSchemaVersion()) {
    return FailedPreconditionError("database '" + db_->path() + "' has schema version " +
                                   std::to_string(current) + ", newer than this sked knows (" +
                                   std::to_string(LatestSchemaVersion()) + "); upgrade sked");
  }
  for (const auto& m : store_internal::SqliteMigrations()) {
    // PRAGMA foreign_keys is a no-op inside a transaction: set it before.
    if (m.rebuilds_tables) SKED_RETURN_IF_ERROR(db_->Exec("PRAGMA foreign_keys=OFF"));
    struct ForeignKeysOn {
      SqliteDb* db;
      bool on;
      ~ForeignKeysOn() {
        if (on) (void)db->Exec("PRAGMA foreign_keys=ON");
      }
    } restore{db_.get(), m.rebuilds_tables};
    Transaction tx(db_.get());
    SKED_RETURN_IF_ERROR(tx.Begin());
    SKED_RETURN_IF_ERROR(
        db_->Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                  "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"));
    // Re-read inside the write transaction: another process may have migrated.
    SKED_ASSIGN_OR_RETURN(Stmt * done,
                          Sql("SELECT count(*) FROM schema_migrations WHERE version = ?"));
    done->Bind(1, m.version);
    if (!done->Step()) return done->status();
    const bool applied = done->Int(0) > 0;
    done->Reset();
    if (applied) continue;
    const std::string what =
        "migration " + std::to_string(m.version) + " (" + std::string(m.name) + ")";
    SKED_RETURN_IF_ERROR(db_->Exec(m.sql).WithContext(what));
    if (m.rebuilds_tables) {
      SKED_ASSIGN_OR_RETURN(Stmt * check, Sql("PRAGMA foreign_key_check"));
      if (check->Step()) {
        return InternalError(what + ": a row of table '" + check->Text(0) +
                             "' references a missing row; nothing was changed");
      }
      SKED_RETURN_IF_ERROR(check->status());
    }
    SKED_ASSIGN_OR_RETURN(Stmt * rec,
                          Sql("INSERT INTO schema_migrations (version, name) VALUES (?, ?)"));
    SKED_RETURN_IF_ERROR(rec->Bind(1, m.version).Bind(2, m.name).Run());
    SKED_RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

Result<Job> SqliteStore::GetJobLocked(std::int64_t id) {
  SKED_ASSIGN_OR_RETURN(Stmt * s,
                        Sql(std::string("SELECT ") + kJobColumns + " FROM jobs j WHERE j.id = ?"));
  s->Bind(1, id);
  if (!s->Step()) {
    if (!s->status().ok()) return s->status();
    return NotFoundError("job " + std::to_string(id) + " not found");
  }
  Job j = ReadJob(*s);
  s->Reset();  // the same statement may be needed again within this operation
  return j;
}

Result<Job> SqliteStore::CreateJob(const Job& job) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  SKED_ASSIGN_OR_RETURN(
      Stmt * s,
      Sql("INSERT INTO jobs (name, description, driver, driver_config, schedule, time_zone, "
          "state, start_at, end_at, overlap, max_queued, max_concurrent, misfire, "
          "catchup_window_us, starting_deadline_us, timeout_us, priority, retry_max, "
          "retry_backoff_us, retry_multiplier, retry_max_backoff_us, retry_jitter, retry_on, "
          "tags, source, next_run_at, updated_at, state_reason, notify_on, notify_channels, "
          "late_after_us, expected_duration_us, no_success_for_us, keep_age_us, keep_runs, "
          "keep_failures, overrun_factor, created_at, version, runs, successes, failures) VALUES "
          "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
          "?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, 0, 0)"));
  BindJobSpec(s, job);
  s->Bind(38, Us(job.created_at));
  Status st = s->Run();
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("a job named '" + job.spec.name + "' already exists");
  }
  SKED_RETURN_IF_ERROR(st);
  SKED_ASSIGN_OR_RETURN(Job created, GetJobLocked(db_->LastInsertId()));
  SKED_RETURN_IF_ERROR(tx.Commit());
  return created;
}

Result<Job> SqliteStore::UpdateJob(const Job& job) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  SKED_ASSIGN_OR_RETURN(
      Stmt * s,
      Sql("UPDATE jobs SET name = ?, description = ?, driver = ?, driver_config = ?, "
          "schedule = ?, time_zone = ?, state = ?, start_at = ?, end_at = ?, overlap = ?, "
          "max_queued = ?, max_concurrent = ?, misfire = ?, catchup_window_us = ?, "
          "starting_deadline_us = ?, timeout_us = ?, priority = ?, retry_max = ?, "
          "retry_backoff_us = ?, retry_multiplier = ?, retry_max_backoff_us = ?, "
          "retry_jitter = ?, retry_on = ?, tags = ?, source = ?, next_run_at = ?, "
          "updated_at = ?, state_reason = ?, notify_on = ?, notify_channels = ?, "
          "late_after_us = ?, expected_duration_us = ?, no_success_for_us = ?, keep_age_us = ?, "
          "keep_runs = ?, keep_failures = ?, overrun_factor = ?, version = version + 1 WHERE id = "
          "? AND version = ?"));
  BindJobSpec(s, job);
  s->Bind(38, job.id).Bind(39, job.version);
  Status st = s->Run();
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("a job named '" + job.spec.name + "' already exists");
  }
  SKED_RETURN_IF_ERROR(st);
  if (db_->Changes() == 0) {
    auto current = GetJobLocked(job.id);
    if (!current.ok()) return current.status();
    return AbortedError("job '" + current->spec.name + "' changed meanwhile (version " +
                        std::to_string(current->version) + ", expected " +
                        std::to_string(job.version) + "); reload it and retry");
  }
  SKED_ASSIGN_OR_RETURN(Job updated, GetJobLocked(job.id));
  SKED_RETURN_IF_ERROR(tx.Commit());
  return updated;
}

Result<Job> SqliteStore::GetJob(std::int64_t id) {
  Op op(this);
  return GetJobLocked(id);
}

Result<Job> SqliteStore::GetJobByName(std::string_view name) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(
      Stmt * s, Sql(std::string("SELECT ") + kJobColumns + " FROM jobs j WHERE j.name = ?"));
  s->Bind(1, name);
  if (!s->Step()) {
    if (!s->status().ok()) return s->status();
    return NotFoundError("job '" + std::string(name) + "' not found");
  }
  return ReadJob(*s);
}

Result<std::vector<Job>> SqliteStore::ListJobs(const JobFilter& filter) {
  Op op(this);
  // Only the conditions asked for (as ListRuns), so that the planner sees
  // them; each variant is prepared once and cached. The failing term is
  // jobs_failing's WHERE word for word; overdue active jobs come from
  // jobs_due (a few), sorted by id after.
  const bool due = filter.due_before && filter.state == JobState::kActive;
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs j" +
                    (due ? " INDEXED BY jobs_due" : "") + " WHERE j.id > ?1";
  // 'active' as a constant, not a parameter: SQLite matches a partial index's
  // WHERE (jobs_due: state = 'active') against the statement's text.
  if (filter.state == JobState::kActive) {
    sql += " AND j.state = 'active'";
  } else if (filter.state) {
    sql += " AND j.state = ?2";
  }
  if (filter.source) sql += " AND j.source = ?3";
  if (filter.tag) sql += " AND instr(',' || j.tags || ',', ',' || ?5 || ',') > 0";
  if (filter.driver) sql += " AND j.driver = ?6";
  if (!filter.name_prefix.empty()) sql += " AND substr(j.name, 1, length(?7)) = ?7";
  if (filter.failing) {
    sql +=
        " AND j.last_run_at IS NOT NULL AND (j.last_success_at IS NULL OR j.last_success_at < "
        "j.last_run_at)";
  }
  if (filter.due_before) sql += " AND j.next_run_at < ?8";
  sql += " ORDER BY j.id LIMIT ?4";
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql(sql));
  s->Bind(1, filter.after_id).Bind(4, filter.limit);
  if (filter.state && *filter.state != JobState::kActive) s->Bind(2, JobStateName(*filter.state));
  if (filter.source) s->Bind(3, *filter.source);
  if (filter.tag) s->Bind(5, *filter.tag);
  if (filter.driver) s->Bind(6, *filter.driver);
  if (!filter.name_prefix.empty()) s->Bind(7, filter.name_prefix);
  if (filter.due_before) s->Bind(8, Us(*filter.due_before));
  std::vector<Job> out;
  while (s->Step()) out.push_back(ReadJob(*s));
  SKED_RETURN_IF_ERROR(s->status());
  return out;
}

Result<std::int64_t> SqliteStore::CountJobs(JobState state) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("SELECT count(*) FROM jobs WHERE state = ?"));
  s->Bind(1, JobStateName(state));
  if (!s->Step()) return s->status();
  return s->Int(0);
}

Result<std::vector<std::string>> SqliteStore::ListFiringDrivers() {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("SELECT DISTINCT driver FROM jobs WHERE state IN "
                                      "('active', 'pending') ORDER BY driver"));
  std::vector<std::string> out;
  while (s->Step()) out.push_back(s->Text(0));
  SKED_RETURN_IF_ERROR(s->status());
  return out;
}

Status SqliteStore::DeleteJob(std::int64_t id) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("DELETE FROM jobs WHERE id = ?"));
  SKED_RETURN_IF_ERROR(s->Bind(1, id).Run());
  if (db_->Changes() == 0) return NotFoundError("job " + std::to_string(id) + " not found");
  return tx.Commit();
}

Result<std::optional<Run>> SqliteStore::InsertRunLocked(std::int64_t job_id, const NewRun& run,
                                                        Instant now, const ClaimRequest* request) {
  SKED_ASSIGN_OR_RETURN(
      Stmt * s,
      Sql("INSERT OR IGNORE INTO runs (job_id, scheduled_for, attempt, trigger, status, "
          "priority, queued_at, not_before, finished_at, reason, instance_id, lease_expires_at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  const bool terminal = IsTerminal(run.status);
  const bool reserve =
      request != nullptr && !request->instance.empty() && run.status == RunStatus::kQueued;
  s->Bind(1, job_id)
      .Bind(2, Us(run.scheduled_for))
      .Bind(3, run.attempt)
      .Bind(4, RunTriggerName(run.trigger))
      .Bind(5, RunStatusName(run.status))
      .Bind(6, run.priority)
      .Bind(7, Us(now))
      .Bind(8, Us(run.not_before))
      .Bind(9, terminal ? std::optional<std::int64_t>(Us(now)) : std::nullopt)
      .Bind(10, run.reason)
      .Bind(11, reserve ? std::string_view(request->instance) : std::string_view(""))
      .Bind(12, reserve ? std::optional<std::int64_t>(Us(request->reserve_until)) : std::nullopt);
  SKED_RETURN_IF_ERROR(s->Run());
  if (db_->Changes() == 0) return std::optional<Run>();
  // Built from what was written, not read back: this is the hot path of a claim.
  Run inserted;
  inserted.id = db_->LastInsertId();
  if (run.status == RunStatus::kSkipped) {
    SKED_RETURN_IF_ERROR(WriteOutbox(job_id, inserted.id, RunStatus::kSkipped, false, now));
  }
  inserted.job_id = job_id;
  inserted.scheduled_for = run.scheduled_for;
  inserted.attempt = run.attempt;
  inserted.trigger = run.trigger;
  inserted.status = run.status;
  inserted.priority = run.priority;
  inserted.queued_at = now;
  inserted.not_before = run.not_before;
  if (terminal) inserted.finished_at = now;
  inserted.reason = run.reason;
  if (reserve) {
    inserted.instance_id = request->instance;
    inserted.lease_expires_at = request->reserve_until;
  }
  return std::optional<Run>(std::move(inserted));
}

// SQLite uses the partial index runs_active (job_id, status) for a count only
// when the query repeats the index's predicate; without it a job's count
// walks its whole history (runs_by_job).
constexpr const char* kActive = "r.status IN ('queued', 'running')";

Result<std::vector<Run>> SqliteStore::ClaimDue(const ClaimRequest& request,
                                               const std::function<FirePlan(const DueJob&)>& plan) {
  SKED_RETURN_IF_ERROR(CheckClaimParts(request));
  const Instant now = request.now;
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql(store_internal::SqliteClaimDueSql()));
  s->Bind(1, Us(std::max(request.horizon, now)))
      .Bind(2, request.parts)
      .Bind(3, request.part)
      .Bind(4, request.limit);
  std::vector<DueJob> due;
  while (s->Step()) {
    DueJob d;
    d.job = ReadJob(*s);
    d.queued_runs = static_cast<int>(s->Int(kJobColumnCount));
    d.running_runs = static_cast<int>(s->Int(kJobColumnCount + 1));
    due.push_back(std::move(d));
  }
  SKED_RETURN_IF_ERROR(s->status());
  std::vector<Run> written;
  for (const DueJob& d : due) {
    const FirePlan p = plan(d);
    for (const NewRun& run : p.runs) {
      SKED_ASSIGN_OR_RETURN(std::optional<Run> r, InsertRunLocked(d.job.id, run, now, &request));
      if (r) {
        r->job_name = d.job.spec.name;
        r->job_version = d.job.version;
        written.push_back(std::move(*r));
      }
    }
    SKED_ASSIGN_OR_RETURN(Stmt * u, Sql("UPDATE jobs SET next_run_at = ?, state = ? WHERE id = ?"));
    SKED_RETURN_IF_ERROR(
        u->Bind(1, OptUs(p.next_run_at)).Bind(2, JobStateName(p.state)).Bind(3, d.job.id).Run());
    if (p.cancel_running) {
      SKED_ASSIGN_OR_RETURN(Stmt * c, Sql("UPDATE runs SET cancel_requested = 1, reason = "
                                          "'replaced' WHERE job_id = ? AND status = 'running'"));
      SKED_RETURN_IF_ERROR(c->Bind(1, d.job.id).Run());
    }
  }
  SKED_RETURN_IF_ERROR(tx.Commit());
  return written;
}

Result<std::int64_t> SqliteStore::CountDue(Instant by, std::int64_t limit) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql(store_internal::kSqliteCountDueSql));
  s->Bind(1, Us(by)).Bind(2, limit);
  if (!s->Step()) return s->status();
  return s->Int(0);
}

Result<std::optional<Instant>> SqliteStore::NextDueAt() {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql(store_internal::kSqliteNextDueSql));
  if (!s->Step()) return s->status();
  return OptInstant(*s, 0);
}

Result<Run> SqliteStore::InsertRun(std::int64_t job_id, const NewRun& run, Instant now) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  SKED_RETURN_IF_ERROR(GetJobLocked(job_id).status());
  SKED_ASSIGN_OR_RETURN(std::optional<Run> inserted, InsertRunLocked(job_id, run, now));
  std::optional<Run> r;
  if (inserted) {
    SKED_ASSIGN_OR_RETURN(Run full, GetRunLocked(inserted->id));
    r = std::move(full);
  }
  if (!r) {
    return AlreadyExistsError("job " + std::to_string(job_id) + " already has attempt " +
                              std::to_string(run.attempt) + " of the fire at " +
                              FormatRfc3339Utc(run.scheduled_for, 6));
  }
  SKED_RETURN_IF_ERROR(tx.Commit());
  return std::move(*r);
}

Result<std::vector<Run>> SqliteStore::StartQueued(std::string_view instance, Instant now, int limit,
                                                  Instant lease_until) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  SKED_ASSIGN_OR_RETURN(Reservation r, TakeQueuedLocked(instance, now, limit, lease_until, false));
  SKED_RETURN_IF_ERROR(tx.Commit());
  return std::move(r.runs);
}

Result<Store::Reservation> SqliteStore::ReserveQueued(std::string_view instance, Instant now,
                                                      int limit, Instant reserve_until) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  SKED_ASSIGN_OR_RETURN(Reservation r, TakeQueuedLocked(instance, now, limit, reserve_until, true));
  SKED_RETURN_IF_ERROR(tx.Commit());
  return r;
}

Result<Store::Reservation> SqliteStore::TakeQueuedLocked(std::string_view instance, Instant now,
                                                         int limit, Instant until, bool reserve) {
  // Candidates in queue order: runs past their starting deadline (to skip),
  // and runs whose job has room under its overlap policy: running runs, and
  // due runs reserved by any instance (they start from memory any moment),
  // take room; a fire claimed ahead does not keep a manual trigger waiting,
  // it meets the trigger's run when it starts. Runs held back by a busy job
  // are never candidates, so however many sit in front, the runs of other
  // jobs behind them are served. (Several runs of one idle job may be; the
  // look past `limit` covers most, and the engine asks again.) The room each
  // job has is counted once per pass from the runs instances hold (see the
  // statement).
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql(store_internal::kSqliteQueueCandidatesSql));
  s->Bind(1, Us(now)).Bind(2, limit + std::min(limit, store_internal::kLookAhead));
  struct Candidate {
    std::int64_t id, job_id, scheduled_for;
    OverlapPolicy overlap;
    int max_concurrent;
    std::optional<std::int64_t> deadline_us;
    int running;
  };
  std::vector<Candidate> candidates;
  while (s->Step()) {
    candidates.push_back({s->Int(0), s->Int(1), s->Int(2),
                          ParseOverlapPolicy(s->Text(3)).value_or(OverlapPolicy::kSkip),
                          static_cast<int>(s->Int(4)), s->OptInt(5), static_cast<int>(s->Int(6))});
  }
  SKED_RETURN_IF_ERROR(s->status());
  std::unordered_map<std::int64_t, int> running;
  std::vector<std::int64_t> changed;
  std::set<std::int64_t> taken_jobs;
  int taken = 0;
  for (const Candidate& c : candidates) {
    JobSpec spec;
    spec.overlap = c.overlap;
    spec.max_concurrent = c.max_concurrent;
    if (c.deadline_us) spec.starting_deadline = Duration(*c.deadline_us);
    auto [it, inserted] = running.try_emplace(c.job_id, c.running);
    const policy::StartVerdict verdict =
        policy::JudgeStart(spec, AtUs(c.scheduled_for), now, it->second, policy::StartFrom::kQueue);
    if (verdict == policy::StartVerdict::kSkipDeadline) {
      SKED_ASSIGN_OR_RETURN(Stmt * k, Sql("UPDATE runs SET status = 'skipped', reason = ?, "
                                          "finished_at = ? WHERE id = ?"));
      SKED_RETURN_IF_ERROR(
          k->Bind(1, policy::SkipReason(verdict)).Bind(2, Us(now)).Bind(3, c.id).Run());
      SKED_RETURN_IF_ERROR(WriteOutbox(c.job_id, c.id, RunStatus::kSkipped, false, now));
      changed.push_back(c.id);
      continue;
    }
    if (taken >= limit || verdict != policy::StartVerdict::kStart) continue;
    if (reserve) {
      SKED_ASSIGN_OR_RETURN(Stmt * u,
                            Sql("UPDATE runs SET instance_id = ?, lease_expires_at = ? WHERE id = "
                                "? AND status = 'queued' AND instance_id = ''"));
      SKED_RETURN_IF_ERROR(u->Bind(1, instance).Bind(2, Us(until)).Bind(3, c.id).Run());
    } else {
      SKED_ASSIGN_OR_RETURN(
          Stmt * u,
          Sql("UPDATE runs SET status = 'running', started_at = ?, instance_id = ?, "
              "lease_token = ?, lease_expires_at = ? WHERE id = ? AND status = 'queued'"));
      const std::int64_t token = policy::NewLeaseToken(rng_);
      SKED_RETURN_IF_ERROR(u->Bind(1, Us(now))
                               .Bind(2, instance)
                               .Bind(3, token)
                               .Bind(4, Us(until))
                               .Bind(5, c.id)
                               .Run());
    }
    ++it->second;
    ++taken;
    taken_jobs.insert(c.job_id);
    changed.push_back(c.id);
  }
  Reservation out;
  out.runs.reserve(changed.size());
  for (std::int64_t id : changed) {
    SKED_ASSIGN_OR_RETURN(Run r, GetRunLocked(id));
    out.runs.push_back(std::move(r));
  }
  if (reserve) {
    for (std::int64_t id : taken_jobs) {
      SKED_ASSIGN_OR_RETURN(Job j, GetJobLocked(id));
      out.jobs.push_back(std::move(j));
    }
  }
  return out;
}

Result<std::vector<bool>> SqliteStore::RecordDispatches(std::string_view instance,
                                                        const std::vector<Dispatch>& dispatches,
                                                        Instant lease_until) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  std::vector<bool> applied;
  applied.reserve(dispatches.size());
  for (const Dispatch& d : dispatches) {
    Stmt* s = nullptr;
    switch (d.kind) {
      case Dispatch::Kind::kStarted: {
        SKED_ASSIGN_OR_RETURN(
            s,
            Sql("UPDATE runs SET status = 'running', started_at = ?1, lease_token = ?2, "
                "lease_expires_at = ?3 WHERE id = ?4 AND status = 'queued' AND instance_id = ?5"));
        s->Bind(1, Us(d.at)).Bind(2, d.lease_token).Bind(3, Us(lease_until));
        break;
      }
      case Dispatch::Kind::kReleased: {
        SKED_ASSIGN_OR_RETURN(s, Sql("UPDATE runs SET instance_id = '', lease_expires_at = NULL "
                                     "WHERE id = ?4 AND status = 'queued' AND instance_id = ?5"));
        break;
      }
      case Dispatch::Kind::kSkipped: {
        SKED_ASSIGN_OR_RETURN(
            s, Sql("UPDATE runs SET status = 'skipped', finished_at = ?1, reason = ?2, "
                   "lease_expires_at = NULL WHERE id = ?4 AND status = 'queued' AND "
                   "instance_id = ?5"));
        s->Bind(1, Us(d.at)).Bind(2, d.reason);
        break;
      }
      case Dispatch::Kind::kGivenBack: {
        SKED_ASSIGN_OR_RETURN(
            Stmt * back,
            Sql("UPDATE jobs SET next_run_at = CASE WHEN jobs.next_run_at IS NULL OR "
                "jobs.next_run_at > r.scheduled_for THEN r.scheduled_for ELSE jobs.next_run_at "
                "END FROM runs r WHERE r.id = ?1 AND r.status = 'queued' AND r.instance_id = ?2 "
                "AND r.trigger IN ('schedule', 'catch-up') AND jobs.id = r.job_id AND "
                "jobs.state = 'active'"));
        SKED_RETURN_IF_ERROR(back->Bind(1, d.run_id).Bind(2, instance).Run());
        if (db_->Changes() > 0) {
          SKED_ASSIGN_OR_RETURN(s, Sql("DELETE FROM runs WHERE id = ?4 AND instance_id = ?5"));
        } else {
          SKED_ASSIGN_OR_RETURN(s, Sql("UPDATE runs SET instance_id = '', lease_expires_at = "
                                       "NULL WHERE id = ?4 AND status = 'queued' AND "
                                       "instance_id = ?5"));
        }
        break;
      }
    }
    SKED_RETURN_IF_ERROR(s->Bind(4, d.run_id).Bind(5, instance).Run());
    applied.push_back(db_->Changes() > 0);
    if (d.kind == Dispatch::Kind::kSkipped && applied.back()) {
      SKED_ASSIGN_OR_RETURN(Stmt * j, Sql("SELECT job_id FROM runs WHERE id = ?"));
      j->Bind(1, d.run_id);
      if (!j->Step()) return j->status().ok() ? InternalError("skipped run vanished") : j->status();
      const std::int64_t job_id = j->Int(0);
      j->Reset();
      SKED_RETURN_IF_ERROR(WriteOutbox(job_id, d.run_id, RunStatus::kSkipped, false, d.at));
    }
  }
  SKED_RETURN_IF_ERROR(tx.Commit());
  return applied;
}

Result<Store::RunningCounts> SqliteStore::CountRunning(Instant now) {
  Op op(this);
  // The first two terms are the runs_leases index's own: SQLite uses a
  // partial index only for a query that names its condition.
  SKED_ASSIGN_OR_RETURN(
      Stmt * s, Sql("SELECT count(*), coalesce(sum(lease_expires_at < ?), 0) FROM runs WHERE "
                    "status IN ('queued', 'running') AND lease_expires_at IS NOT NULL AND "
                    "status = 'running'"));
  s->Bind(1, Us(now));
  if (!s->Step()) return s->status();
  return RunningCounts{s->Int(0), s->Int(1)};
}

Result<std::optional<Instant>> SqliteStore::NextQueuedAt() {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("SELECT min(not_before) FROM runs WHERE status = 'queued' "
                                      "AND instance_id = ''"));
  if (!s->Step()) return s->status();
  return OptInstant(*s, 0);
}

Result<std::int64_t> SqliteStore::QueueDepth() {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql(store_internal::kSqliteQueueDepthSql));
  if (!s->Step()) return s->status();
  return s->Int(0);
}

Status SqliteStore::CountSettled(std::int64_t job_id, RunStatus status,
                                 std::optional<Instant> started_at) {
  SKED_ASSIGN_OR_RETURN(
      Stmt * s, Sql("UPDATE jobs SET runs = runs + 1, successes = successes + ?, failures = "
                    "failures + ?2, last_run_at = coalesce(max(last_run_at, ?3), last_run_at, ?3), "
                    "last_success_at = CASE WHEN ?1 = 1 THEN coalesce(max(last_success_at, ?3), "
                    "last_success_at, ?3) ELSE last_success_at END WHERE id = ?4"));
  // A run that never started (an expired reservation) leaves last_run_at alone.
  const std::optional<std::int64_t> last =
      started_at ? std::optional<std::int64_t>(Us(*started_at)) : std::nullopt;
  return s->Bind(1, CountFor(status, RunStatus::kSucceeded))
      .Bind(2, IsFailure(status) ? 1 : 0)
      .Bind(3, last)
      .Bind(4, job_id)
      .Run();
}

Status SqliteStore::WriteOutbox(std::int64_t job_id, std::int64_t run_id, RunStatus status,
                                bool retry_follows, Instant now) {
  SKED_ASSIGN_OR_RETURN(Stmt * j,
                        Sql("SELECT name, notify_on, notify_channels, last_run_at IS NOT NULL AND "
                            "(last_success_at IS NULL OR last_success_at < last_run_at) FROM jobs "
                            "WHERE id = ?"));
  j->Bind(1, job_id);
  if (!j->Step()) return j->status();
  NotifySpec spec;
  spec.on = SplitNotifyList(OptText(*j, 1));
  spec.channels = SplitNotifyList(OptText(*j, 2));
  policy::SettledAttempt attempt;
  attempt.status = status;
  attempt.retry_follows = retry_follows;
  attempt.was_failing = j->Int(3) != 0;
  const std::string job_name = j->Text(0);
  j->Reset();
  for (const policy::OutboxEntry& e : policy::RouteSettlement(attempt, spec, notify_)) {
    if (notify_.realert > Duration(0)) {
      SKED_ASSIGN_OR_RETURN(Stmt * last,
                            Sql("SELECT max(created_at) FROM notifications WHERE job_id = ? AND "
                                "event = ? AND channel = ? AND created_at > ?"));
      last->Bind(1, job_id)
          .Bind(2, policy::NotifyEventName(e.event))
          .Bind(3, e.channel)
          .Bind(4, Us(now - notify_.realert));
      if (!last->Step()) return last->status();
      const std::optional<Instant> at = OptInstant(*last, 0);
      last->Reset();
      if (policy::IsRepeat(e, attempt.was_failing, at, now, notify_.realert)) continue;
    }
    SKED_ASSIGN_OR_RETURN(
        Stmt * n, Sql("INSERT INTO notifications (job_id, job_name, run_id, event, channel, "
                      "created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?6)"));
    SKED_RETURN_IF_ERROR(n->Bind(1, job_id)
                             .Bind(2, job_name)
                             .Bind(3, run_id)
                             .Bind(4, policy::NotifyEventName(e.event))
                             .Bind(5, e.channel)
                             .Bind(6, Us(now))
                             .Run());
  }
  return Status::Ok();
}

Result<std::vector<bool>> SqliteStore::SettleRuns(const std::vector<RunOutcome>& outcomes) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  std::vector<bool> applied;
  applied.reserve(outcomes.size());
  for (const RunOutcome& o : outcomes) {
    if (!CanTransition(RunStatus::kRunning, o.status)) {
      return InvalidArgumentError("cannot settle run " + std::to_string(o.run_id) + " as " +
                                  std::string(RunStatusName(o.status)));
    }
    Stmt* u = nullptr;
    if (o.started_at) {
      // Its start was never recorded: recorded here, from its reservation.
      SKED_ASSIGN_OR_RETURN(
          u, Sql("UPDATE runs SET status = ?1, finished_at = ?2, exit_code = ?3, output = ?4, "
                 "output_truncated = ?5, result = ?6, error = ?7, reason = ?8, "
                 "lease_expires_at = NULL, lease_token = ?10, started_at = ?11 WHERE id = ?9 "
                 "AND status = 'queued' AND instance_id = ?12 "
                 "RETURNING job_id, started_at, attempt, priority"));
      u->Bind(11, Us(*o.started_at)).Bind(12, o.instance_id);
    } else {
      SKED_ASSIGN_OR_RETURN(
          u, Sql("UPDATE runs SET status = ?1, finished_at = ?2, exit_code = ?3, output = ?4, "
                 "output_truncated = ?5, result = ?6, error = ?7, reason = ?8, "
                 "lease_expires_at = NULL WHERE id = ?9 AND status = 'running' AND "
                 "lease_token = ?10 RETURNING job_id, started_at, attempt, priority"));
    }
    u->Bind(1, RunStatusName(o.status))
        .Bind(2, Us(o.finished_at))
        .Bind(3, o.exit_code ? std::optional<std::int64_t>(*o.exit_code) : std::nullopt)
        .Bind(4, o.output)
        .Bind(5, o.output_truncated ? 1 : 0)
        .Bind(6, o.result)
        .Bind(7, o.error)
        .Bind(8, o.reason)
        .Bind(9, o.run_id)
        .Bind(10, o.lease_token);
    if (!u->Step()) {
      SKED_RETURN_IF_ERROR(u->status());
      applied.push_back(false);  // fenced out: reaped, cancelled or settled elsewhere
      continue;
    }
    const std::int64_t job_id = u->Int(0);
    const std::optional<Instant> started = OptInstant(*u, 1);
    SKED_RETURN_IF_ERROR(u->Run());
    SKED_RETURN_IF_ERROR(
        WriteOutbox(job_id, o.run_id, o.status, o.retry.has_value(), o.finished_at));
    SKED_RETURN_IF_ERROR(CountSettled(job_id, o.status, started));
    if (o.retry) SKED_RETURN_IF_ERROR(InsertRunLocked(job_id, *o.retry, o.finished_at).status());
    applied.push_back(true);
  }
  SKED_RETURN_IF_ERROR(tx.Commit());
  return applied;
}

Status SqliteStore::ExtendLeases(std::string_view instance, Instant now, Instant renew_before,
                                 Instant lease_until) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("UPDATE runs SET lease_expires_at = ? WHERE status IN "
                                      "('queued', 'running') AND instance_id = ? AND "
                                      "lease_expires_at >= ? AND lease_expires_at < ?"));
  // (One statement: a SQLite file has one writer, and no row locks to hold.)
  return s->Bind(1, Us(lease_until))
      .Bind(2, instance)
      .Bind(3, Us(now))
      .Bind(4, Us(renew_before))
      .Run();
}

Result<std::vector<Run>> SqliteStore::ReapExpired(
    Instant now, int limit,
    const std::function<std::optional<NewRun>(const Job&, const Run&)>& retry) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("SELECT id, status FROM runs WHERE status IN ('queued', "
                                      "'running') AND lease_expires_at IS NOT NULL AND "
                                      "lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?"));
  s->Bind(1, Us(now)).Bind(2, limit);
  std::vector<std::int64_t> ids;
  while (s->Step()) {
    auto status = ParseRunStatus(s->Text(1));
    if (status.ok() && CanTransition(*status, RunStatus::kAbandoned)) ids.push_back(s->Int(0));
  }
  SKED_RETURN_IF_ERROR(s->status());
  std::vector<Run> out;
  for (std::int64_t id : ids) {
    SKED_ASSIGN_OR_RETURN(
        Stmt * u,
        Sql("UPDATE runs SET status = 'abandoned', finished_at = ?, reason = 'lease_expired', "
            "error = 'the lease of instance ''' || instance_id || ''' expired' || CASE status "
            "WHEN 'running' THEN ': it stopped heartbeating' ELSE ' before it recorded the "
            "run''s start' END, lease_expires_at = NULL WHERE id = ? AND status IN ('queued', "
            "'running')"));
    SKED_RETURN_IF_ERROR(u->Bind(1, Us(now)).Bind(2, id).Run());
    SKED_ASSIGN_OR_RETURN(Run run, GetRunLocked(id));
    SKED_ASSIGN_OR_RETURN(Job job, GetJobLocked(run.job_id));
    std::optional<NewRun> next = retry(job, run);
    SKED_RETURN_IF_ERROR(
        WriteOutbox(run.job_id, run.id, RunStatus::kAbandoned, next.has_value(), now));
    SKED_RETURN_IF_ERROR(CountSettled(run.job_id, RunStatus::kAbandoned, run.started_at));
    if (next) SKED_RETURN_IF_ERROR(InsertRunLocked(run.job_id, *next, now).status());
    out.push_back(std::move(run));
  }
  SKED_RETURN_IF_ERROR(tx.Commit());
  return out;
}

Result<bool> SqliteStore::RequestCancel(std::int64_t run_id, Instant now, std::string_view reason) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  SKED_ASSIGN_OR_RETURN(Run run, GetRunLocked(run_id));
  bool cancelled_now = false;
  if (run.status == RunStatus::kQueued) {
    SKED_ASSIGN_OR_RETURN(Stmt * u, Sql("UPDATE runs SET status = 'cancelled', finished_at = ?, "
                                        "reason = ?, cancel_requested = 1, lease_expires_at = "
                                        "NULL WHERE id = ?"));
    SKED_RETURN_IF_ERROR(u->Bind(1, Us(now)).Bind(2, reason).Bind(3, run_id).Run());
    cancelled_now = true;
  } else if (run.status == RunStatus::kRunning) {
    SKED_ASSIGN_OR_RETURN(Stmt * u, Sql("UPDATE runs SET cancel_requested = 1, reason = ? "
                                        "WHERE id = ?"));
    SKED_RETURN_IF_ERROR(u->Bind(1, reason).Bind(2, run_id).Run());
  } else {
    return FailedPreconditionError("run " + std::to_string(run_id) + " already finished (" +
                                   std::string(RunStatusName(run.status)) + ")");
  }
  SKED_RETURN_IF_ERROR(tx.Commit());
  return cancelled_now;
}

Result<std::vector<Run>> SqliteStore::CancelRequested(std::string_view instance) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql(store_internal::SqliteCancelRequestedSql()));
  s->Bind(1, instance);
  std::vector<Run> out;
  while (s->Step()) out.push_back(ReadRun(*s));
  SKED_RETURN_IF_ERROR(s->status());
  return out;
}

Result<Run> SqliteStore::GetRunLocked(std::int64_t id) {
  SKED_ASSIGN_OR_RETURN(Stmt * s,
                        Sql(std::string("SELECT ") + kRunColumns +
                            " FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?"));
  s->Bind(1, id);
  if (!s->Step()) {
    if (!s->status().ok()) return s->status();
    return NotFoundError("run " + std::to_string(id) + " not found");
  }
  Run r = ReadRun(*s);
  s->Reset();  // the same statement may be needed again within this operation
  return r;
}

Result<Run> SqliteStore::GetRun(std::int64_t id) {
  Op op(this);
  return GetRunLocked(id);
}

Result<std::vector<Run>> SqliteStore::ListRuns(const RunFilter& filter) {
  Op op(this);
  // Only the conditions asked for: "(?1 IS NULL OR ...)" hides the id range
  // and the job from the planner, which then walks every run from the newest
  // down to the page (measured: 238 ms a page at a random cursor in a million
  // runs). Each variant is prepared once and cached.
  // Runs of a status that is rare in a history come from its partial index
  // (pinned_sql.h).
  const std::string sql = store_internal::SqliteListRunsSql(filter);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql(sql));
  s->Bind(1, filter.before_id > 0 ? filter.before_id : std::numeric_limits<std::int64_t>::max())
      .Bind(6, filter.limit);
  if (filter.job_id) s->Bind(2, *filter.job_id);
  if (filter.status) s->Bind(3, RunStatusName(*filter.status));
  if (filter.since) s->Bind(4, Us(*filter.since));
  if (filter.until) s->Bind(5, Us(*filter.until));
  std::vector<Run> out;
  while (s->Step()) out.push_back(ReadRun(*s));
  SKED_RETURN_IF_ERROR(s->status());
  return out;
}

Status SqliteStore::UpsertJobType(const JobType& type) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(
      Stmt * s, Sql("INSERT INTO job_types (name, driver, description, notifications) VALUES "
                    "(?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET driver = excluded.driver, "
                    "description = excluded.description, notifications = excluded.notifications"));
  return s->Bind(1, type.name)
      .Bind(2, type.driver)
      .Bind(3, type.description)
      .Bind(4, type.notifications ? 1 : 0)
      .Run();
}

Result<std::vector<JobType>> SqliteStore::ListJobTypes() {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("SELECT name, driver, description, notifications FROM "
                                      "job_types ORDER BY name"));
  std::vector<JobType> out;
  while (s->Step()) out.push_back({s->Text(0), s->Text(1), s->Text(2), s->Int(3) != 0});
  SKED_RETURN_IF_ERROR(s->status());
  return out;
}

Status SqliteStore::RegisterInstance(const InstanceInfo& info,
                                     const std::optional<InstanceInfo>& replacing) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(
      Stmt * s, Sql("INSERT INTO instances (id, host, pid, version, started_at, heartbeat_at, "
                    "stopped_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL) ON CONFLICT (id) DO UPDATE "
                    "SET host = excluded.host, pid = excluded.pid, version = excluded.version, "
                    "started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
                    "stopped_at = NULL WHERE instances.host = ?7 AND instances.pid = ?8 AND "
                    "instances.started_at = ?9 AND instances.heartbeat_at = ?10"));
  SKED_RETURN_IF_ERROR(s->Bind(1, info.id)
                           .Bind(2, info.host)
                           .Bind(3, info.pid)
                           .Bind(4, info.version)
                           .Bind(5, Us(info.started_at))
                           .Bind(6, Us(info.heartbeat_at))
                           .Bind(7, replacing ? replacing->host : std::string())
                           .Bind(8, replacing ? replacing->pid : std::int64_t{-1})
                           .Bind(9, replacing ? Us(replacing->started_at) : std::int64_t{-1})
                           .Bind(10, replacing ? Us(replacing->heartbeat_at) : std::int64_t{-1})
                           .Run());
  if (db_->Changes() == 0) {
    return AlreadyExistsError("instance id '" + info.id + "' is registered by another process");
  }
  return Status::Ok();
}

Status SqliteStore::Heartbeat(std::string_view instance, Instant now) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("UPDATE instances SET heartbeat_at = ? WHERE id = ?"));
  SKED_RETURN_IF_ERROR(s->Bind(1, Us(now)).Bind(2, instance).Run());
  if (db_->Changes() == 0) {
    return NotFoundError("instance '" + std::string(instance) + "' is not registered");
  }
  return Status::Ok();
}

Status SqliteStore::DeregisterInstance(std::string_view instance, Instant now) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("UPDATE instances SET stopped_at = ? WHERE id = ?"));
  return s->Bind(1, Us(now)).Bind(2, instance).Run();
}

Result<std::vector<InstanceInfo>> SqliteStore::ListInstances() {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("SELECT id, host, pid, version, started_at, heartbeat_at, "
                                      "stopped_at FROM instances ORDER BY id"));
  std::vector<InstanceInfo> out;
  while (s->Step()) {
    out.push_back({s->Text(0), s->Text(1), s->Int(2), s->Text(3), AtUs(s->Int(4)), AtUs(s->Int(5)),
                   OptInstant(*s, 6)});
  }
  SKED_RETURN_IF_ERROR(s->status());
  return out;
}

constexpr const char* kTokenColumns =
    "id, name, role, secret_hash, created_by, created_at, revoked_at";

ApiToken ReadToken(const Stmt& s) {
  return {s.Int(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), AtUs(s.Int(5)), OptInstant(s, 6)};
}

Result<ApiToken> SqliteStore::CreateToken(const ApiToken& token) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(
      Stmt * s, Sql(std::string("INSERT INTO api_tokens (name, role, secret_hash, created_by, "
                                "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING "
                                "RETURNING ") +
                    kTokenColumns));
  s->Bind(1, token.name)
      .Bind(2, token.role)
      .Bind(3, token.secret_hash)
      .Bind(4, token.created_by)
      .Bind(5, Us(token.created_at));
  if (!s->Step()) {
    SKED_RETURN_IF_ERROR(s->status());
    return AlreadyExistsError("a token named '" + token.name + "' exists (revoke it first)");
  }
  ApiToken out = ReadToken(*s);
  SKED_RETURN_IF_ERROR(s->Run());
  return out;
}

Result<ApiToken> SqliteStore::GetToken(std::int64_t id) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(
      Stmt * s, Sql(std::string("SELECT ") + kTokenColumns + " FROM api_tokens WHERE id = ?"));
  s->Bind(1, id);
  if (!s->Step()) {
    SKED_RETURN_IF_ERROR(s->status());
    return NotFoundError("token " + std::to_string(id) + " not found");
  }
  return ReadToken(*s);
}

Result<std::vector<ApiToken>> SqliteStore::ListTokens() {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(
      Stmt * s, Sql(std::string("SELECT ") + kTokenColumns + " FROM api_tokens ORDER BY id"));
  std::vector<ApiToken> out;
  while (s->Step()) out.push_back(ReadToken(*s));
  SKED_RETURN_IF_ERROR(s->status());
  return out;
}

Result<ApiToken> SqliteStore::RevokeToken(std::string_view name, Instant now) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql(std::string("UPDATE api_tokens SET revoked_at = ? WHERE "
                                                  "name = ? AND revoked_at IS NULL RETURNING ") +
                                      kTokenColumns));
  s->Bind(1, Us(now)).Bind(2, name);
  if (!s->Step()) {
    SKED_RETURN_IF_ERROR(s->status());
    return NotFoundError("no token named '" + std::string(name) + "' (or it is revoked already)");
  }
  ApiToken out = ReadToken(*s);
  SKED_RETURN_IF_ERROR(s->Run());
  return out;
}

Result<std::int64_t> SqliteStore::AppendAudit(const AuditEntry& e) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(
      Stmt * s, Sql("INSERT INTO audit_log (at, actor, action, target, source, status, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)"));
  SKED_RETURN_IF_ERROR(s->Bind(1, Us(e.at))
                           .Bind(2, e.actor)
                           .Bind(3, e.action)
                           .Bind(4, e.target)
                           .Bind(5, e.source)
                           .Bind(6, e.status)
                           .Bind(7, e.detail)
                           .Run());
  return db_->LastInsertId();
}

Result<std::vector<AuditEntry>> SqliteStore::ListAudit(const AuditFilter& f) {
  Op op(this);
  // Only the conditions asked for, so that the id range reaches the planner.
  std::string sql =
      "SELECT id, at, actor, action, target, source, status, detail FROM audit_log WHERE id < ?1";
  if (f.actor) sql += " AND actor = ?2";
  if (f.action) sql += " AND action = ?3";
  if (f.since) sql += " AND at >= ?4";
  sql += " ORDER BY id DESC LIMIT ?5";
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql(sql));
  s->Bind(1, f.before_id > 0 ? f.before_id : std::numeric_limits<std::int64_t>::max())
      .Bind(5, f.limit);
  if (f.actor) s->Bind(2, *f.actor);
  if (f.action) s->Bind(3, *f.action);
  if (f.since) s->Bind(4, Us(*f.since));
  std::vector<AuditEntry> out;
  while (s->Step()) {
    out.push_back({s->Int(0), AtUs(s->Int(1)), s->Text(2), s->Text(3), s->Text(4), s->Text(5),
                   static_cast<int>(s->Int(6)), s->Text(7)});
  }
  SKED_RETURN_IF_ERROR(s->status());
  return out;
}

constexpr const char* kNotificationColumns =
    "id, job_id, job_name, run_id, event, channel, status, attempts, created_at, "
    "next_attempt_at, claimed_by, claim_expires_at, finished_at, last_error";

Notification ReadNotification(const Stmt& s) {
  Notification n;
  n.id = s.Int(0);
  n.job_id = s.Int(1);
  n.job_name = s.Text(2);
  n.run_id = s.OptInt(3);
  n.event = s.Text(4);
  n.channel = s.Text(5);
  n.status = ParseNotificationStatus(s.Text(6)).value_or(NotificationStatus::kFailed);
  n.attempts = static_cast<int>(s.Int(7));
  n.created_at = AtUs(s.Int(8));
  n.next_attempt_at = AtUs(s.Int(9));
  n.claimed_by = s.Text(10);
  n.claim_expires_at = OptInstant(s, 11);
  n.finished_at = OptInstant(s, 12);
  n.last_error = s.Text(13);
  return n;
}

Result<std::vector<Notification>> SqliteStore::ClaimNotifications(std::string_view instance,
                                                                  Instant now, int limit,
                                                                  Instant claim_until) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  // A claim moves next_attempt_at to its end: a claimer that dies leaves the
  // notification due again when its claim runs out.
  SKED_ASSIGN_OR_RETURN(
      Stmt * s,
      Sql(std::string("UPDATE notifications SET claimed_by = ?1, claim_expires_at = ?2, "
                      "next_attempt_at = ?2, attempts = attempts + 1 WHERE id IN (SELECT id "
                      "FROM notifications WHERE status = 'pending' AND next_attempt_at <= ?3 "
                      "ORDER BY next_attempt_at, id LIMIT ?4) RETURNING ") +
          kNotificationColumns));
  s->Bind(1, instance).Bind(2, Us(claim_until)).Bind(3, Us(now)).Bind(4, limit);
  std::vector<Notification> out;
  while (s->Step()) out.push_back(ReadNotification(*s));
  SKED_RETURN_IF_ERROR(s->status());
  SKED_RETURN_IF_ERROR(tx.Commit());
  std::sort(out.begin(), out.end(),
            [](const Notification& a, const Notification& b) { return a.id < b.id; });
  return out;
}

Result<std::vector<bool>> SqliteStore::RecordDeliveries(
    std::string_view instance, const std::vector<DeliveryResult>& results) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  std::vector<bool> applied;
  applied.reserve(results.size());
  for (const DeliveryResult& r : results) {
    // Delivered or given up: finished. To be retried: pending, unclaimed,
    // due at retry_at.
    const bool finished = r.delivered || !r.retry_at;
    SKED_ASSIGN_OR_RETURN(
        Stmt * u, Sql("UPDATE notifications SET status = ?1, finished_at = ?2, last_error = ?3, "
                      "next_attempt_at = ?4, claimed_by = '', claim_expires_at = NULL WHERE "
                      "id = ?5 AND status = 'pending' AND claimed_by = ?6"));
    u->Bind(1, r.delivered ? "delivered" : (finished ? "failed" : "pending"))
        .Bind(2, finished ? std::optional<std::int64_t>(Us(r.at)) : std::nullopt)
        .Bind(3, r.delivered ? std::string() : r.error)
        .Bind(4, Us(r.retry_at && !r.delivered ? *r.retry_at : r.at))
        .Bind(5, r.notification_id)
        .Bind(6, instance);
    SKED_RETURN_IF_ERROR(u->Run());
    const bool done = db_->Changes() > 0;
    applied.push_back(done);
    if (!done) continue;
    // The attempt's number is the claim's (ClaimNotifications counted it).
    SKED_ASSIGN_OR_RETURN(
        Stmt * a, Sql("INSERT INTO notification_attempts (notification_id, attempt, instance_id, "
                      "finished_at, delivered, error, retry_at) SELECT id, attempts, ?1, ?2, ?3, "
                      "?4, ?5 FROM notifications WHERE id = ?6 ON CONFLICT DO NOTHING"));
    a->Bind(1, instance)
        .Bind(2, Us(r.at))
        .Bind(3, r.delivered ? 1 : 0)
        .Bind(4, r.delivered ? std::string() : r.error)
        .Bind(5, r.retry_at && !r.delivered ? std::optional<std::int64_t>(Us(*r.retry_at))
                                            : std::nullopt)
        .Bind(6, r.notification_id);
    SKED_RETURN_IF_ERROR(a->Run());
  }
  SKED_RETURN_IF_ERROR(tx.Commit());
  return applied;
}

Result<std::vector<DeliveryAttempt>> SqliteStore::ListDeliveryAttempts(
    std::int64_t notification_id) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("SELECT attempt, instance_id, finished_at, delivered, error, "
                                      "retry_at FROM notification_attempts WHERE "
                                      "notification_id = ? ORDER BY attempt"));
  s->Bind(1, notification_id);
  std::vector<DeliveryAttempt> out;
  while (s->Step()) {
    DeliveryAttempt a;
    a.attempt = static_cast<int>(s->Int(0));
    a.instance = s->Text(1);
    a.finished_at = AtUs(s->Int(2));
    a.delivered = s->Int(3) != 0;
    a.error = s->Text(4);
    a.retry_at = OptInstant(*s, 5);
    out.push_back(std::move(a));
  }
  SKED_RETURN_IF_ERROR(s->status());
  return out;
}

Result<std::optional<Instant>> SqliteStore::NextNotificationAt() {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql("SELECT min(next_attempt_at) FROM notifications WHERE "
                                      "status = 'pending'"));
  if (!s->Step()) return s->status();
  return OptInstant(*s, 0);
}

Result<std::vector<Notification>> SqliteStore::ListNotifications(const NotificationFilter& f) {
  Op op(this);
  // Only the conditions asked for, so that the id range reaches the planner.
  std::string sql =
      std::string("SELECT ") + kNotificationColumns + " FROM notifications WHERE id < ?1";
  if (f.job_id) sql += " AND job_id = ?2";
  if (f.run_id) sql += " AND run_id = ?3";
  if (f.status) sql += " AND status = ?4";
  sql += " ORDER BY id DESC LIMIT ?5";
  SKED_ASSIGN_OR_RETURN(Stmt * s, Sql(sql));
  s->Bind(1, f.before_id > 0 ? f.before_id : std::numeric_limits<std::int64_t>::max())
      .Bind(5, f.limit);
  if (f.job_id) s->Bind(2, *f.job_id);
  if (f.run_id) s->Bind(3, *f.run_id);
  if (f.status) s->Bind(4, NotificationStatusName(*f.status));
  std::vector<Notification> out;
  while (s->Step()) out.push_back(ReadNotification(*s));
  SKED_RETURN_IF_ERROR(s->status());
  return out;
}

Result<std::int64_t> SqliteStore::PruneNotifications(Instant finished_before, int limit) {
  Op op(this);
  // The first condition is the notifications_finished index's own.
  SKED_ASSIGN_OR_RETURN(
      Stmt * s, Sql("DELETE FROM notifications WHERE id IN (SELECT id FROM notifications WHERE "
                    "status <> 'pending' AND finished_at < ? ORDER BY finished_at LIMIT ?)"));
  SKED_RETURN_IF_ERROR(s->Bind(1, Us(finished_before)).Bind(2, limit).Run());
  return static_cast<std::int64_t>(db_->Changes());
}

Result<PruneResult> SqliteStore::PruneRuns(const PruneRequest& request) {
  // Each statement takes the connection on its own, so the engine's claims and
  // settles get it between them: a batch never holds it for long.
  struct Backend {
    SqliteStore* store;
    Result<std::vector<store_internal::PruneJob>> PruneJobs(std::int64_t after_id, int limit) {
      Op op(store);
      SKED_ASSIGN_OR_RETURN(Stmt * s, store->Sql("SELECT id, name, keep_age_us, keep_runs, "
                                                 "keep_failures FROM jobs WHERE id > ? ORDER BY "
                                                 "id LIMIT ?"));
      s->Bind(1, after_id).Bind(2, limit);
      std::vector<store_internal::PruneJob> jobs;
      while (s->Step()) {
        store_internal::PruneJob j;
        j.id = s->Int(0);
        j.name = s->Text(1);
        j.retention.max_age = OptDuration(*s, 2);
        j.retention.max_runs = OptSmallInt(*s, 3);
        j.retention.keep_failures = OptSmallInt(*s, 4);
        jobs.push_back(std::move(j));
      }
      SKED_RETURN_IF_ERROR(s->status());
      return jobs;
    }
    Result<std::optional<std::int64_t>> NthNewestRun(std::int64_t job, int n, bool failures) {
      static const std::string kSettled =
          store_internal::NthNewestRunSql('?', store_internal::kSettledStatuses);
      static const std::string kFailures =
          store_internal::NthNewestRunSql('?', store_internal::kFailureStatuses);
      Op op(store);
      SKED_ASSIGN_OR_RETURN(Stmt * s, store->Sql(failures ? kFailures : kSettled));
      s->Bind(1, job).Bind(2, n - 1);
      if (!s->Step()) {
        SKED_RETURN_IF_ERROR(s->status());
        return std::optional<std::int64_t>();
      }
      return std::optional<std::int64_t>(s->Int(0));
    }
    Result<std::int64_t> PruneJobRuns(std::int64_t job, const store_internal::PruneBounds& b,
                                      int limit) {
      static const std::string kWhere = store_internal::PrunableRunsWhere('?');
      static const std::string kCount = "SELECT count(*) FROM runs WHERE " + kWhere;
      static const std::string kDelete =
          "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE " + kWhere +
          " ORDER BY id LIMIT ?6)";
      Op op(store);
      SKED_ASSIGN_OR_RETURN(Stmt * s, store->Sql(limit < 0 ? kCount : kDelete));
      s->Bind(1, job).Bind(2, b.newest).Bind(3, b.count_cut).Bind(4, b.age_cut).Bind(5, b.fail_cut);
      if (limit < 0) {
        if (!s->Step()) return s->status();
        return s->Int(0);
      }
      SKED_RETURN_IF_ERROR(s->Bind(6, limit).Run());
      return static_cast<std::int64_t>(store->db_->Changes());
    }
  };
  Backend backend{this};
  return store_internal::SweepRetention(backend, request);
}

Result<bool> SqliteStore::AcquireLease(std::string_view name, std::string_view holder, Instant now,
                                       Instant until) {
  Op op(this);
  SKED_ASSIGN_OR_RETURN(
      Stmt * s, Sql("INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?4) "
                    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = "
                    "excluded.expires_at WHERE leases.holder = excluded.holder OR "
                    "leases.expires_at <= ?3"));
  SKED_RETURN_IF_ERROR(s->Bind(1, name).Bind(2, holder).Bind(3, Us(now)).Bind(4, Us(until)).Run());
  return db_->Changes() > 0;
}

Result<std::vector<Notification>> SqliteStore::RaiseWatchdogEvents(Instant now) {
  Op op(this);
  Transaction tx(db_.get());
  SKED_RETURN_IF_ERROR(tx.Begin());
  // Each check reads only what it watches (its named index, pinned_sql.h)
  // and skips what was raised already (the dedupe key's index).
  struct Check {
    policy::NotifyEvent event;
    const char* sql;
  };
  const Check checks[] = {
      {policy::NotifyEvent::kLate, store_internal::kSqliteWatchLateSql},
      {policy::NotifyEvent::kOverrun, store_internal::kSqliteWatchOverrunSql},
      {policy::NotifyEvent::kStale, store_internal::kSqliteWatchStaleSql},
  };
  struct Found {
    std::int64_t job_id;
    std::string name;
    NotifySpec spec;
    std::optional<std::int64_t> run_id;
    std::string key;
    policy::NotifyEvent event;
  };
  std::vector<Found> found;
  for (const Check& check : checks) {
    SKED_ASSIGN_OR_RETURN(Stmt * q, Sql(check.sql));
    q->Bind(1, Us(now));
    while (q->Step()) {
      Found f{q->Int(0), q->Text(1), {}, q->OptInt(4), q->Text(5), check.event};
      f.spec.on = SplitNotifyList(OptText(*q, 2));
      f.spec.channels = SplitNotifyList(OptText(*q, 3));
      found.push_back(std::move(f));
    }
    SKED_RETURN_IF_ERROR(q->status());
  }
  // Overrun against a job's own history (overrun_factor): the running runs
  // not yet raised, each measured against its job's recent median (read
  // once per job), in the policy's words.
  std::set<std::string> keys;
  for (const Found& f : found) keys.insert(f.key);
  std::map<std::int64_t, std::optional<Duration>> limits;
  SKED_ASSIGN_OR_RETURN(Stmt * running, Sql(store_internal::kSqliteWatchOverrunHistorySql));
  while (running->Step()) {
    const std::int64_t job_id = running->Int(0);
    auto limit = limits.find(job_id);
    if (limit == limits.end()) {
      SKED_ASSIGN_OR_RETURN(Stmt * h, Sql("SELECT d FROM (SELECT id, finished_at - started_at AS "
                                          "d, status FROM runs WHERE job_id = ?1 ORDER BY id "
                                          "DESC LIMIT ?2) WHERE status = 'succeeded' AND d IS "
                                          "NOT NULL ORDER BY id DESC LIMIT ?3"));
      h->Bind(1, job_id).Bind(2, policy::kOverrunHistoryRuns).Bind(3, policy::kOverrunSamples);
      std::vector<Duration> recent;
      while (h->Step()) recent.emplace_back(h->Int(0));
      SKED_RETURN_IF_ERROR(h->status());
      h->Reset();
      limit =
          limits.emplace(job_id, policy::OverrunLimit(std::move(recent), running->Double(7))).first;
    }
    if (!limit->second || AtUs(running->Int(6)) + *limit->second > now) continue;
    Found f{job_id,          running->Text(1), {},
            running->Int(4), running->Text(5), policy::NotifyEvent::kOverrun};
    if (!keys.insert(f.key).second) continue;  // past expected_duration too
    f.spec.on = SplitNotifyList(OptText(*running, 2));
    f.spec.channels = SplitNotifyList(OptText(*running, 3));
    found.push_back(std::move(f));
  }
  SKED_RETURN_IF_ERROR(running->status());
  std::vector<std::int64_t> written;
  for (const Found& f : found) {
    for (const policy::OutboxEntry& e : policy::RouteEvent(f.event, f.spec, notify_)) {
      SKED_ASSIGN_OR_RETURN(
          Stmt * n, Sql("INSERT OR IGNORE INTO notifications (job_id, job_name, run_id, event, "
                        "channel, created_at, next_attempt_at, dedupe_key) VALUES (?1, ?2, ?3, ?4, "
                        "?5, ?6, ?6, ?7)"));
      SKED_RETURN_IF_ERROR(n->Bind(1, f.job_id)
                               .Bind(2, f.name)
                               .Bind(3, f.run_id)
                               .Bind(4, policy::NotifyEventName(e.event))
                               .Bind(5, e.channel)
                               .Bind(6, Us(now))
                               .Bind(7, f.key)
                               .Run());
      if (db_->Changes() > 0) written.push_back(db_->LastInsertId());
    }
  }
  std::vector<Notification> out;
  for (std::int64_t id : written) {
    SKED_ASSIGN_OR_RETURN(Stmt * r, Sql(std::string("SELECT ") + kNotificationColumns +
                                        " FROM notifications WHERE id = ?"));
    r->Bind(1, id);
    if (r->Step()) out.push_back(ReadNotification(*r));
    r->Reset();
  }
  SKED_RETURN_IF_ERROR(tx.Commit());
  return out;
}

}  // namespace

namespace store_internal {

const std::string& SqliteClaimDueSql() {
  static const std::string sql =
      std::string("SELECT ") + kJobColumns +
      ", (SELECT count(*) FROM runs r WHERE r.job_id = j.id AND " + kActive +
      " AND r.status = 'queued'), (SELECT count(*) FROM runs r WHERE r.job_id = j.id AND " +
      kActive +
      " AND r.status = 'running') FROM jobs j INDEXED BY jobs_due WHERE j.state = 'active' AND "
      "j.next_run_at IS NOT NULL AND j.next_run_at <= ?1 AND (?2 <= 1 OR j.id % ?2 = ?3) ORDER "
      "BY j.next_run_at LIMIT ?4";
  return sql;
}

const char kSqliteCountDueSql[] =
    "SELECT count(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_due WHERE state = 'active' AND "
    "next_run_at IS NOT NULL AND next_run_at <= ?1 LIMIT ?2)";
const char kSqliteNextDueSql[] =
    "SELECT min(next_run_at) FROM jobs INDEXED BY jobs_due WHERE state = 'active' AND "
    "next_run_at IS NOT NULL";

std::string SqliteListRunsSql(const RunFilter& filter) {
  // Queued and running runs of any job come from runs_active (a few), not from
  // walking the history by id for them (a million runs: ~140 ms a call, and
  // the dashboard's instances page asks every 5 s). Failed, timed out and
  // abandoned runs come from runs_failures (a job's) or runs_failures_by_id
  // (any job's): walking 3,000,000 runs that had none took 0.3-0.8 s a page,
  // holding the connection the engine claims with. SQLite matches a partial
  // index's WHERE against the statement's text, hence its term word for word.
  const bool active =
      !filter.job_id && filter.status &&
      (*filter.status == RunStatus::kQueued || *filter.status == RunStatus::kRunning);
  const bool failure = filter.status && IsFailure(*filter.status);
  std::string sql = std::string("SELECT ") + kRunColumns + " FROM runs r";
  if (active) {
    sql += " INDEXED BY runs_active";
  } else if (failure) {
    sql += filter.job_id ? " INDEXED BY runs_failures" : " INDEXED BY runs_failures_by_id";
  }
  sql += " JOIN jobs j ON j.id = r.job_id WHERE r.id < ?1";
  if (active) sql += " AND r.status IN ('queued', 'running')";
  if (failure) sql += std::string(" AND r.status IN ") + kFailureStatuses;
  if (filter.job_id) sql += " AND r.job_id = ?2";
  if (filter.status) sql += " AND r.status = ?3";
  if (filter.since) sql += " AND r.queued_at >= ?4";
  if (filter.until) sql += " AND r.queued_at < ?5";
  sql += " ORDER BY r.id DESC LIMIT ?6";
  return sql;
}

// How many runs are queued (/metrics, /readyz, the dashboard): from the
// active runs (runs_active), not by reading every run (0.53 s with
// 3,000,000 runs).
const char kSqliteQueueDepthSql[] =
    "SELECT count(*) FROM runs INDEXED BY runs_active WHERE status IN ('queued', 'running') AND "
    "status = 'queued'";

// The runs of this instance asked to stop, polled every poll interval while
// any runs: from the runs this instance holds (runs_owner), not by reading
// every run (0.35 s a poll with 3,000,000 runs, the engine waiting). Bound:
// ?1 instance.
const std::string& SqliteCancelRequestedSql() {
  static const std::string sql =
      std::string("SELECT ") + kRunColumns +
      " FROM runs r INDEXED BY runs_owner JOIN jobs j ON j.id = r.job_id WHERE r.status IN "
      "('queued', 'running') AND r.instance_id <> '' AND r.instance_id = ?1 AND r.status = "
      "'running' AND r.cancel_requested = 1";
  return sql;
}

// The queue's candidates (TakeQueuedLocked), in queue order, with the runs
// their job has that take room: running runs, and due runs an instance
// holds. Those are counted once per pass, from the runs instances hold
// (runs_owner: running and reserved ones, a few), then joined by job; a
// count per candidate read the job's whole queue for each of its runs, so a
// job with 200,000 queued runs made one pass take minutes.
// Bound: ?1 now, ?2 limit.
const char kSqliteQueueCandidatesSql[] =
    "WITH busy AS (SELECT job_id, count(*) AS n FROM runs INDEXED BY runs_owner WHERE status IN "
    "('queued', 'running') AND instance_id <> '' AND (status = 'running' OR not_before <= ?1) "
    "GROUP BY job_id) SELECT r.id, r.job_id, r.scheduled_for, j.overlap, j.max_concurrent, "
    "j.starting_deadline_us, coalesce(b.n, 0) AS running FROM runs r INDEXED BY runs_queue_free "
    "JOIN jobs j ON j.id = r.job_id LEFT JOIN busy b ON b.job_id = r.job_id WHERE r.status = "
    "'queued' AND r.instance_id = '' AND r.not_before <= ?1 AND ((j.starting_deadline_us IS NOT "
    "NULL AND ?1 > r.scheduled_for + j.starting_deadline_us) OR running < CASE WHEN j.overlap = "
    "'concurrent' THEN j.max_concurrent ELSE 1 END) ORDER BY r.priority DESC, r.scheduled_for, "
    "r.id LIMIT ?2";

// Late: the watched jobs first (jobs_watch_late), then each one's runs of
// the last day (its (job_id, scheduled_for) key); read the other way round,
// SQLite scanned every run ever kept.
const char kSqliteWatchLateSql[] =
    "SELECT j.id, j.name, j.notify_on, j.notify_channels, r.id, 'late:' || r.id FROM jobs j "
    "INDEXED BY jobs_watch_late CROSS JOIN runs r ON r.job_id = j.id WHERE j.late_after_us IS NOT "
    "NULL AND r.scheduled_for > ?1 - 86400000000 AND r.scheduled_for + j.late_after_us <= ?1 AND "
    "r.attempt = 1 AND r.status NOT IN ('skipped', 'cancelled') AND (r.started_at IS NULL OR "
    "r.started_at > r.scheduled_for + j.late_after_us) AND NOT EXISTS (SELECT 1 FROM "
    "notifications n WHERE n.dedupe_key = 'late:' || r.id)";
// Overrun (and by history, below): the running runs (runs_active), then
// their jobs. Each partial index is used only where its condition is said.
const char kSqliteWatchOverrunSql[] =
    "SELECT j.id, j.name, j.notify_on, j.notify_channels, r.id, 'overrun:' || r.id FROM runs r "
    "INDEXED BY runs_active CROSS JOIN jobs j ON j.id = r.job_id WHERE j.expected_duration_us IS "
    "NOT NULL AND r.status IN ('queued', 'running') AND r.status = 'running' AND r.started_at + "
    "j.expected_duration_us <= ?1 AND NOT EXISTS (SELECT 1 FROM notifications n WHERE "
    "n.dedupe_key = 'overrun:' || r.id)";
// Stale: the watched jobs (jobs_watch_stale), not every active one.
const char kSqliteWatchStaleSql[] =
    "SELECT j.id, j.name, j.notify_on, j.notify_channels, NULL, 'stale:' || j.id || ':' || "
    "coalesce(j.last_success_at, j.created_at) FROM jobs j INDEXED BY jobs_watch_stale WHERE "
    "j.no_success_for_us IS NOT NULL AND j.state = 'active' AND coalesce(j.last_success_at, "
    "j.created_at) + j.no_success_for_us <= ?1 AND NOT EXISTS (SELECT 1 FROM notifications n "
    "WHERE n.dedupe_key = 'stale:' || j.id || ':' || coalesce(j.last_success_at, j.created_at))";
const char kSqliteWatchOverrunHistorySql[] =
    "SELECT j.id, j.name, j.notify_on, j.notify_channels, r.id, 'overrun:' || r.id, "
    "r.started_at, j.overrun_factor FROM runs r INDEXED BY runs_active CROSS JOIN jobs j ON j.id "
    "= r.job_id WHERE j.overrun_factor IS NOT NULL AND r.status IN ('queued', 'running') AND "
    "r.status = 'running' AND r.started_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
    "notifications n WHERE n.dedupe_key = 'overrun:' || r.id)";

}  // namespace store_internal

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const StoreOptions& options) {
  SKED_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> db, SqliteDb::Open(path));
  std::unique_ptr<WalCheckpointer> checkpointer;
  if (path != ":memory:") {
    SKED_ASSIGN_OR_RETURN(checkpointer, WalCheckpointer::Start(path, db->handle()));
  }
  return std::unique_ptr<Store>(
      new SqliteStore(std::move(db), std::move(checkpointer), options.notify));
}

}  // namespace sked
