// Store: where jobs, runs, job types and instances live. One interface, one
// conformance suite (src/store/store_conformance_test.cc), one backend per
// database: SQLite (embedded, one file) and PostgreSQL (many instances on
// many hosts).
//
// Every method is one transaction and every statement is parameterized.
// Methods take `now` from the caller's Clock; a store never reads the time.
// Implementations are safe for concurrent use from many threads, and several
// processes may share one database: uniqueness and fencing are enforced by the
// database, not by the caller.

#ifndef SKED_STORE_H_
#define SKED_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sked/job.h"
#include "sked/notification.h"
#include "sked/run.h"
#include "sked/status.h"
#include "sked/time.h"

namespace sked {

struct JobFilter {
  std::optional<JobState> state;
  std::optional<std::string> source;  // "api" or "config"
  std::optional<std::string> tag;     // jobs carrying this tag
  std::optional<std::string> driver;  // jobs of this driver
  std::string name_prefix;            // names starting with this (compared byte for byte)
  // Jobs whose newest settled run (by start) did not succeed: failed, timed
  // out, abandoned or cancelled after it started.
  bool failing = false;
  std::optional<Instant> due_before;  // jobs whose next fire is before this
  std::int64_t after_id = 0;          // paging: ids greater than this
  int limit = 1000;
};

struct RunFilter {
  std::optional<std::int64_t> job_id;
  std::optional<RunStatus> status;
  std::optional<Instant> since;  // queued_at at or after
  std::optional<Instant> until;  // queued_at before
  std::int64_t before_id = 0;    // paging: ids lower than this (0: from the newest)
  int limit = 100;
};

// A run the engine wants written (a fire, a retry, a manual trigger).
struct NewRun {
  Instant scheduled_for{};
  int attempt = 1;
  RunTrigger trigger = RunTrigger::kSchedule;
  RunStatus status = RunStatus::kQueued;  // queued, or skipped (with reason)
  Instant not_before{};
  int priority = 0;
  std::string reason;
};

// A due job as ClaimDue shows it to the planner.
struct DueJob {
  Job job;
  int queued_runs = 0;
  int running_runs = 0;
};

// What the planner decided for one due job.
struct FirePlan {
  std::vector<NewRun> runs;
  std::optional<Instant> next_run_at;  // nullopt: no further fire
  JobState state = JobState::kActive;  // e.g. expired after end_at
  bool cancel_running = false;         // overlap=replace: ask running runs to stop
};

// Which fires to claim: due by `horizon` (which may be ahead of `now`).
struct ClaimRequest {
  Instant now{};
  Instant horizon{};
  int limit = 512;
  std::string instance;     // empty: no reservation
  Instant reserve_until{};  // the reservation's lease
  // Only the jobs whose id % parts == part (parts 0 or 1: every job). Live
  // instances claiming a burst ahead each take their own part, so a burst is
  // split evenly whichever starts first; what is left is claimed at its
  // instant by anyone. 0 <= part < parts, else InvalidArgument.
  int parts = 0;
  int part = 0;
};

// InvalidArgument when a ClaimRequest's part is not one of its parts.
inline Status CheckClaimParts(const ClaimRequest& request) {
  if (request.parts < 0 || request.part < 0 || (request.parts <= 1 && request.part != 0) ||
      (request.parts > 1 && request.part >= request.parts)) {
    return InvalidArgumentError("claim part " + std::to_string(request.part) + " of " +
                                std::to_string(request.parts) +
                                ": expected 0 <= part < parts, or part 0 of 0 or 1");
  }
  return Status::Ok();
}

// What an instance did with a queued run reserved for it.
struct Dispatch {
  // kReleased: to the shared queue, for any instance. kGivenBack: a claimed
  // fire not started (shutdown) is un-claimed: its run is removed and its
  // job's next_run_at moved back to it, so whoever claims it next applies the
  // job's misfire policy; a run whose job is no longer active is released.
  enum class Kind { kStarted, kReleased, kSkipped, kGivenBack };
  std::int64_t run_id = 0;
  Kind kind = Kind::kStarted;
  Instant at{};                  // started_at, or finished_at of a skip
  std::int64_t lease_token = 0;  // kStarted
  std::string reason;            // kSkipped
};

// The end of a running run, fenced by its lease token.
struct RunOutcome {
  std::int64_t run_id = 0;
  std::int64_t lease_token = 0;
  RunStatus status = RunStatus::kSucceeded;
  Instant finished_at{};
  std::optional<int> exit_code;
  std::string output;
  bool output_truncated = false;
  std::string result;
  std::string error;
  std::string reason;
  std::optional<NewRun> retry;  // written in the same transaction
  // Set when the run finished before its start was recorded (a short run
  // taken from memory): the settle records the start too, at `started_at`
  // under `lease_token`, and applies only while the run is still queued and
  // reserved by `instance_id` (one write instead of RecordDispatches' start
  // and then the settle).
  std::optional<Instant> started_at;
  std::string instance_id;
  std::string job_name;  // not stored: for the engine's metrics
  Duration ran{};        // not stored: how long the driver ran, for the engine's metrics
};

struct JobType {
  std::string name;
  std::string driver;
  std::string description;
  bool notifications = false;
};

struct InstanceInfo {
  std::string id;
  std::string host;
  std::int64_t pid = 0;
  std::string version;
  Instant started_at{};
  Instant heartbeat_at{};
  std::optional<Instant> stopped_at;
};

// An API bearer token as stored: only a hash of its secret is kept, so the
// store's contents never let anyone act as the token's holder.
struct ApiToken {
  std::int64_t id = 0;
  std::string name;         // unique among tokens not revoked
  std::string role;         // "viewer", "operator" or "admin"
  std::string secret_hash;  // hex SHA-256 of the secret
  std::string created_by;
  Instant created_at{};
  std::optional<Instant> revoked_at;
};

// One change made through the API or the CLI: who, what, when, from where.
struct AuditEntry {
  std::int64_t id = 0;
  Instant at{};
  std::string actor;   // the token's name, or "cli:<user>"
  std::string action;  // "job.create", "run.cancel", "token.revoke", ...
  std::string target;  // "job/hello", "run/42", "token/ci"
  std::string source;  // the client's address, or "cli"
  int status = 0;      // the HTTP status answered (0 for the CLI)
  std::string detail;  // why it failed, or a short summary
};

struct AuditFilter {
  std::optional<std::string> actor;
  std::optional<std::string> action;
  std::optional<Instant> since;  // at or after
  std::int64_t before_id = 0;    // paging: ids lower than this (0: from the newest)
  int limit = 100;
};

// History retention: which settled runs of a job are deleted. A job's own
// RetentionSpec overrides each field it sets. Zero means no limit.
struct RetentionPolicy {
  Duration max_age{0};    // settled runs that finished longer ago than this go
  int max_runs = 0;       // a job keeps its newest this many settled runs
  int keep_failures = 0;  // a job's newest this many failed, timed out or abandoned
                          // runs stay whatever their age and count
};

// One batch of a retention sweep over the jobs, in id order.
struct PruneRequest {
  Instant now{};
  RetentionPolicy defaults;
  std::int64_t after_job_id = 0;  // the sweep goes on with the jobs after this one
  int max_jobs = 100;             // jobs looked at in this batch
  int limit = 1000;               // runs deleted at most (a dry run counts them all)
  bool dry_run = false;           // count what would go, delete nothing
};

struct PruneResult {
  std::int64_t runs = 0;  // deleted (a dry run: that would be)
  // Where the next batch starts (PruneRequest::after_job_id); nullopt when
  // this batch reached the last job.
  std::optional<std::int64_t> resume_after;
  // Per job with something to prune: its name and how many runs went (or
  // would).
  std::vector<std::pair<std::string, std::int64_t>> by_job;
};

struct StoreOptions {
  // PostgreSQL: the schema holding sked's tables (created by Migrate).
  std::string schema = "sked";
  // PostgreSQL: connections opened at most (on demand); the engine's worker
  // slots plus its own threads is enough.
  int max_connections = 10;
  // PostgreSQL: the server ends a session of this handle that stays idle
  // inside a transaction longer than this (idle_in_transaction_session_timeout;
  // zero: never). sked's own transactions take milliseconds; one left open
  // this long belongs to a process that is stopped or stalled, and the row
  // locks it holds would block every other instance's claims, settles and
  // reaps until it woke up. `sked serve` sets it to its lease.
  std::chrono::milliseconds idle_transaction_timeout{30000};
  // Where a settled run's notifications go when its job does not say (no
  // channels: none are written).
  NotifyDefaults notify;
};

// What another handle (usually another process) changed, as a backend with
// change notifications reports it.
enum class StoreEvent {
  kJobsChanged,      // a job was created, updated or deleted
  kRunQueued,        // a run became startable from the shared queue
  kCancelRequested,  // a running run was asked to stop
  kReconnected,      // notifications may have been missed: look at everything
};

class Store {
 public:
  virtual ~Store() = default;

  // "sqlite://PATH" (PATH relative to the working directory, or absolute),
  // "sqlite::memory:", or a PostgreSQL URI "postgresql://..." (or
  // "postgres://..."; any libpq URI, unix sockets too). Opening does not
  // migrate. INVALID_ARGUMENT for a malformed url, UNAVAILABLE when the
  // database cannot be reached.
  static Result<std::unique_ptr<Store>> Open(std::string_view url,
                                             const StoreOptions& options = {});
  // `url` with any password replaced by "***", for messages and logs.
  static std::string Redact(std::string_view url);

  // Applies pending migrations, each in its own transaction. Refuses
  // (FAILED_PRECONDITION) a database whose schema is newer than this binary.
  virtual Status Migrate() = 0;
  // The schema version of the database (0 when empty).
  virtual Result<int> SchemaVersion() = 0;
  // The newest schema version this binary knows.
  virtual int LatestSchemaVersion() const = 0;

  // --- Jobs ---
  // Inserts `job` (its id, version and counters are assigned). ALREADY_EXISTS
  // when the name is taken.
  virtual Result<Job> CreateJob(const Job& job) = 0;
  // Replaces the job with id `job.id` if its stored version is still
  // `job.version` (else ABORTED), and bumps the version. Counters and
  // last_run_at are kept as stored.
  virtual Result<Job> UpdateJob(const Job& job) = 0;
  virtual Result<Job> GetJob(std::int64_t id) = 0;
  virtual Result<Job> GetJobByName(std::string_view name) = 0;
  virtual Result<std::vector<Job>> ListJobs(const JobFilter& filter) = 0;
  // How many jobs are in `state`.
  virtual Result<std::int64_t> CountJobs(JobState state) = 0;
  // The distinct drivers of the jobs that fire (active or pending), sorted:
  // what a process must have registered before it runs them (one scan in
  // the database, no job read into memory).
  virtual Result<std::vector<std::string>> ListFiringDrivers() = 0;
  // Deletes the job and its runs. NOT_FOUND if absent.
  virtual Status DeleteJob(std::int64_t id) = 0;

  // --- Fires ---
  // In one transaction: takes up to `limit` active jobs whose next_run_at is
  // at or before `request.horizon` (earliest first), asks `plan` what to do
  // with each, writes the runs it returns and the job's new next_run_at and
  // state. A run whose (job, scheduled_for, attempt) already exists is not
  // written again: a fire is claimed once, whoever races for it. With an
  // `instance`, the queued runs written are reserved for it until
  // `reserve_until` (see RecordDispatches); without, they are plain queued
  // runs any instance may start. Returns the runs written.
  virtual Result<std::vector<Run>> ClaimDue(const ClaimRequest& request,
                                            const std::function<FirePlan(const DueJob&)>& plan) = 0;
  // The earliest next_run_at among active jobs.
  virtual Result<std::optional<Instant>> NextDueAt() = 0;
  // How many active jobs are due by `by` (next_run_at at or before it),
  // counting at most `limit`: the engine starts claiming a large burst early
  // enough to have claimed it by its instant.
  virtual Result<std::int64_t> CountDue(Instant by, std::int64_t limit) = 0;

  // Inserts one run (a manual trigger). ALREADY_EXISTS on a duplicate key.
  virtual Result<Run> InsertRun(std::int64_t job_id, const NewRun& run, Instant now) = 0;

  // --- Queue ---
  // Starts up to `limit` unreserved queued runs with not_before at or before `now`, by
  // priority (highest first) then scheduled_for, as long as each job's
  // overlap policy allows another run beside its running runs and its due
  // runs reserved by any instance (a fire claimed ahead, not yet due, takes
  // no room). Started runs become running,
  // owned by `instance` with a new lease token until `lease_until`. A queued
  // run past its job's starting deadline becomes skipped (reason "deadline")
  // instead; those are returned too, with their final status.
  virtual Result<std::vector<Run>> StartQueued(std::string_view instance, Instant now, int limit,
                                               Instant lease_until) = 0;
  // Reserves for `instance`, until `reserve_until`, up to `limit` unreserved
  // queued runs with not_before at or before `now`, in the same order and
  // under the same rule as StartQueued: the engine starts them from memory and
  // records what became of them with RecordDispatches, as for claimed fires
  // (many runs per transaction, where StartQueued starts one per free
  // worker). Runs past their starting deadline become skipped and are
  // returned too. `jobs` holds the jobs of the returned runs. A store that
  // lets instances reserve at once may pass over the runs of a job another
  // transaction holds (taking a peer's, or a job change's, turn would make
  // the instances take turns): it says so in `contended`, and the caller
  // looks again soon.
  struct Reservation {
    std::vector<Run> runs;
    std::vector<Job> jobs;
    bool contended = false;
  };
  virtual Result<Reservation> ReserveQueued(std::string_view instance, Instant now, int limit,
                                            Instant reserve_until) = 0;
  // Records, in one transaction, what became of queued runs reserved for
  // `instance` by ClaimDue: started (running, owned by `instance` with the
  // given lease token until `lease_until`, started at `at`), released (plain
  // queued runs again, for StartQueued), or skipped (finished at `at` with
  // the reason). A run no longer queued under this instance's reservation
  // (cancelled, reaped, deleted) changes nothing. Returns, per entry,
  // whether it was applied.
  virtual Result<std::vector<bool>> RecordDispatches(std::string_view instance,
                                                     const std::vector<Dispatch>& dispatches,
                                                     Instant lease_until) = 0;
  // Running runs, and how many of them hold a lease that expired before
  // `now` (not reaped yet): counted from the leases' index, never by reading
  // the history.
  struct RunningCounts {
    std::int64_t running = 0;
    std::int64_t expired = 0;
  };
  virtual Result<RunningCounts> CountRunning(Instant now) = 0;
  // The earliest not_before among unreserved queued runs.
  virtual Result<std::optional<Instant>> NextQueuedAt() = 0;
  // Queued runs in total (a metric).
  virtual Result<std::int64_t> QueueDepth() = 0;

  // --- Settling ---
  // Settles running runs in one transaction: status, output and times, the
  // job's counters (runs, successes, failures) and last_run_at, and any retry
  // run. An outcome whose run is no longer running under that lease token
  // (reaped, or settled elsewhere) changes nothing; nor does one with
  // `started_at` whose run is no longer queued and reserved by its
  // `instance_id` (cancelled, reaped). Returns, per outcome, whether it was
  // applied.
  virtual Result<std::vector<bool>> SettleRuns(const std::vector<RunOutcome>& outcomes) = 0;
  // Extends to `lease_until` the leases of every running run owned by
  // `instance`, and its reservations of queued runs, that have not expired by
  // `now` and expire before `renew_before`: an expired lease is never revived
  // (the run is the reaper's, whatever its owner thinks), and one set a short
  // while ago is left alone (a heartbeat writes the leases of the runs that
  // lived a while, not every run of a burst; Instant::max() extends all). A
  // `lease_until` before `now` ends the leases at once.
  virtual Status ExtendLeases(std::string_view instance, Instant now, Instant renew_before,
                              Instant lease_until) = 0;
  // Marks up to `limit` running runs whose lease expired before `now`, and
  // queued runs whose reservation did (their owner may have dispatched them
  // before it died), as abandoned (error says whose lease expired), counts
  // them as failures, and
  // writes the retry `retry` returns for each (if any), all in one
  // transaction. Returns the abandoned runs.
  virtual Result<std::vector<Run>> ReapExpired(
      Instant now, int limit,
      const std::function<std::optional<NewRun>(const Job&, const Run&)>& retry) = 0;

  // --- Cancellation ---
  // A queued run is cancelled at once (true); a running run is flagged for
  // its owner to stop (false). NOT_FOUND if absent; FAILED_PRECONDITION if
  // already finished.
  virtual Result<bool> RequestCancel(std::int64_t run_id, Instant now, std::string_view reason) = 0;
  // Running runs of `instance` whose cancellation was requested.
  virtual Result<std::vector<Run>> CancelRequested(std::string_view instance) = 0;

  // --- Runs ---
  virtual Result<Run> GetRun(std::int64_t id) = 0;
  // Newest first.
  virtual Result<std::vector<Run>> ListRuns(const RunFilter& filter) = 0;

  // --- Job types and instances ---
  virtual Status UpsertJobType(const JobType& type) = 0;
  virtual Result<std::vector<JobType>> ListJobTypes() = 0;
  // Registers `info` if no instance of its id is on record, or if the one on
  // record is still exactly `replacing` (what the caller judged dead: a
  // compare-and-set, so two processes starting under one id cannot both
  // win). ALREADY_EXISTS otherwise.
  virtual Status RegisterInstance(const InstanceInfo& info,
                                  const std::optional<InstanceInfo>& replacing) = 0;
  virtual Status Heartbeat(std::string_view instance, Instant now) = 0;
  virtual Status DeregisterInstance(std::string_view instance, Instant now) = 0;
  virtual Result<std::vector<InstanceInfo>> ListInstances() = 0;

  // --- API tokens and the audit log ---
  // Inserts `token` (its id is assigned). ALREADY_EXISTS when a token of
  // that name is not revoked.
  virtual Result<ApiToken> CreateToken(const ApiToken& token) = 0;
  // NOT_FOUND if absent (a revoked token is returned, revoked_at set).
  virtual Result<ApiToken> GetToken(std::int64_t id) = 0;
  // Every token, revoked ones too, by id.
  virtual Result<std::vector<ApiToken>> ListTokens() = 0;
  // Revokes the token of that name that is not revoked yet, at `now`, and
  // returns it. NOT_FOUND if there is none.
  virtual Result<ApiToken> RevokeToken(std::string_view name, Instant now) = 0;
  // Appends `entry` (its id is assigned) and returns the id.
  virtual Result<std::int64_t> AppendAudit(const AuditEntry& entry) = 0;
  // Newest first.
  virtual Result<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) = 0;

  // --- Notifications: the outbox ---
  // Settling a run (SettleRuns, ReapExpired) writes, in its transaction, one
  // pending notification per event it raises that the job notifies on and
  // per channel (policy::RouteSettlement, with the job's notify settings and
  // StoreOptions::notify).
  //
  // Claims for `instance`, until `claim_until`, up to `limit` pending
  // notifications due by `now` (next_attempt_at) that no live claim holds,
  // oldest first; each counts one more attempt. Two instances never hold one
  // notification at once.
  virtual Result<std::vector<Notification>> ClaimNotifications(std::string_view instance,
                                                               Instant now, int limit,
                                                               Instant claim_until) = 0;
  // Records attempts of notifications claimed by `instance`: delivered, to
  // be retried at `retry_at`, or failed for good; each applied one is also
  // kept as a DeliveryAttempt. One whose claim `instance`
  // no longer holds (expired and taken by another) changes nothing. Returns,
  // per result, whether it was applied.
  virtual Result<std::vector<bool>> RecordDeliveries(
      std::string_view instance, const std::vector<DeliveryResult>& results) = 0;
  // A notification's delivery attempts, oldest first (empty for an unknown
  // id). Each applied result of RecordDeliveries is one, written in its
  // transaction; they go with the notification.
  virtual Result<std::vector<DeliveryAttempt>> ListDeliveryAttempts(
      std::int64_t notification_id) = 0;
  // The earliest next_attempt_at among pending notifications, or the end of
  // the earliest claim on one (nullopt: none pending).
  virtual Result<std::optional<Instant>> NextNotificationAt() = 0;
  // Newest first.
  virtual Result<std::vector<Notification>> ListNotifications(const NotificationFilter& filter) = 0;
  // The watchdog's pass, in one transaction: raises (writes, as for a
  // settle) "late" for each first attempt of a job with late_after that had
  // not started by scheduled_for + late_after (fires of the last day),
  // "overrun" for each running run of a job with expected_duration running
  // longer than it, and "stale" for each active job with no_success_for
  // whose last success (or creation) is older than that. Each is raised once
  // per run (per job and last success, for stale), whoever checks, however
  // often. Returns what was written.
  virtual Result<std::vector<Notification>> RaiseWatchdogEvents(Instant now) = 0;
  // Retention: deletes up to `limit` delivered or failed notifications that
  // finished before `finished_before` (never a pending one). Returns how
  // many were deleted.
  virtual Result<std::int64_t> PruneNotifications(Instant finished_before, int limit) = 0;

  // --- Retention and fleet-wide leases ---
  // One batch of retention: for up to `max_jobs` jobs after `after_job_id`,
  // deletes (a dry run: counts) the settled runs the job's retention (its own
  // settings, else `defaults`) lets go, oldest first, at most `limit` in all.
  // Never a queued or running run, nor a job's newest settled run; a job's
  // newest `keep_failures` failures stay. Settled runs never change again, so
  // this takes no lock the claim or settle paths wait on beyond the delete's
  // own rows.
  virtual Result<PruneResult> PruneRuns(const PruneRequest& request) = 0;
  // Takes or renews the lease `name` for `holder` until `until` when no other
  // holder's lease on it runs past `now`: one instance of a fleet does a
  // fleet-wide chore (retention). Returns whether `holder` holds it.
  virtual Result<bool> AcquireLease(std::string_view name, std::string_view holder, Instant now,
                                    Instant until) = 0;

  // --- Change notifications ---
  // Calls `listener` (from a store thread; it must be quick) when another
  // handle changes jobs, queues a run or requests a cancel, so the engine
  // acts within milliseconds instead of at its next poll. Returns false when
  // the backend has no notifications (the caller polls). An empty function
  // removes the listener; once that call returns, none is running.
  virtual bool SetListener(const std::function<void(StoreEvent)>& listener) {
    (void)listener;
    return false;
  }
};

}  // namespace sked

#endif  // SKED_STORE_H_
