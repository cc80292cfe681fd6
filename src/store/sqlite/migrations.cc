#include "store/sqlite/migrations.h"

namespace sked::store_internal {

// Times are INTEGER microseconds since the Unix epoch (UTC); durations are
// INTEGER microseconds; enums are their lower-case names.
const std::vector<Migration>& SqliteMigrations() {
  static const std::vector<Migration> migrations = {
      {1, "initial schema", R"sql(
CREATE TABLE job_types (
  name          TEXT PRIMARY KEY,
  driver        TEXT NOT NULL,
  description   TEXT NOT NULL DEFAULT '',
  notifications INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE jobs (
  id                   INTEGER PRIMARY KEY,
  name                 TEXT NOT NULL UNIQUE,
  description          TEXT NOT NULL DEFAULT '',
  driver               TEXT NOT NULL,
  driver_config        TEXT NOT NULL DEFAULT '{}',
  schedule             TEXT NOT NULL,
  time_zone            TEXT NOT NULL DEFAULT 'UTC',
  state                TEXT NOT NULL,
  start_at             INTEGER,
  end_at               INTEGER,
  overlap              TEXT NOT NULL,
  max_queued           INTEGER NOT NULL,
  max_concurrent       INTEGER NOT NULL,
  misfire              TEXT NOT NULL,
  catchup_window_us    INTEGER NOT NULL,
  starting_deadline_us INTEGER,
  timeout_us           INTEGER,
  priority             INTEGER NOT NULL DEFAULT 0,
  retry_max            INTEGER NOT NULL DEFAULT 0,
  retry_backoff_us     INTEGER NOT NULL,
  retry_multiplier     REAL NOT NULL,
  retry_max_backoff_us INTEGER NOT NULL,
  retry_jitter         REAL NOT NULL,
  retry_on             TEXT NOT NULL,
  tags                 TEXT NOT NULL DEFAULT '',
  source               TEXT NOT NULL DEFAULT 'api',
  next_run_at          INTEGER,
  last_run_at          INTEGER,
  runs                 INTEGER NOT NULL DEFAULT 0,
  successes            INTEGER NOT NULL DEFAULT 0,
  failures             INTEGER NOT NULL DEFAULT 0,
  version              INTEGER NOT NULL DEFAULT 1,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL
);
-- Each scheduling pass reads only what is due.
CREATE INDEX jobs_due ON jobs (next_run_at) WHERE state = 'active' AND next_run_at IS NOT NULL;

CREATE TABLE runs (
  id               INTEGER PRIMARY KEY,
  job_id           INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  scheduled_for    INTEGER NOT NULL,
  attempt          INTEGER NOT NULL,
  trigger          TEXT NOT NULL,
  status           TEXT NOT NULL,
  priority         INTEGER NOT NULL DEFAULT 0,
  queued_at        INTEGER NOT NULL,
  not_before       INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  instance_id      TEXT NOT NULL DEFAULT '',
  lease_token      INTEGER NOT NULL DEFAULT 0,
  lease_expires_at INTEGER,
  exit_code        INTEGER,
  output           TEXT NOT NULL DEFAULT '',
  output_truncated INTEGER NOT NULL DEFAULT 0,
  result           TEXT NOT NULL DEFAULT '',
  error            TEXT NOT NULL DEFAULT '',
  reason           TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  -- Exactly one run per fire and attempt: the last line of defence.
  UNIQUE (job_id, scheduled_for, attempt)
);
-- The queue, served by priority then scheduled_for.
CREATE INDEX runs_queue ON runs (priority DESC, scheduled_for, id) WHERE status = 'queued';
-- Leases to reap, and each owner's running runs.
CREATE INDEX runs_leases ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_owner ON runs (instance_id) WHERE status = 'running';
-- A job's active runs (overlap policy) and its history, newest first.
CREATE INDEX runs_active ON runs (job_id, status) WHERE status IN ('queued', 'running');
CREATE INDEX runs_by_job ON runs (job_id, id);

CREATE TABLE instances (
  id           TEXT PRIMARY KEY,
  host         TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  version      TEXT NOT NULL,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  stopped_at   INTEGER
);
)sql"},
      {2, "reservations: leases on queued runs claimed ahead", R"sql(
DROP INDEX runs_leases;
DROP INDEX runs_owner;
-- Leases to reap: running runs, and queued runs reserved by an instance.
CREATE INDEX runs_leases ON runs (lease_expires_at)
  WHERE status IN ('queued', 'running') AND lease_expires_at IS NOT NULL;
CREATE INDEX runs_owner ON runs (instance_id)
  WHERE status IN ('queued', 'running') AND instance_id <> '';
)sql"},
      // Without AUTOINCREMENT, SQLite hands the largest deleted id to the next
      // row: a new job took a deleted one's id (and cache entries), and run ids
      // named other jobs' runs. Tables are rebuilt (foreign keys off, checked
      // before commit), keeping every row and id.
      {3, "ids never reused; a job's state reason", R"sql(
CREATE TABLE jobs_v3 (
  id                   INTEGER PRIMARY KEY AUTOINCREMENT,
  name                 TEXT NOT NULL UNIQUE,
  description          TEXT NOT NULL DEFAULT '',
  driver               TEXT NOT NULL,
  driver_config        TEXT NOT NULL DEFAULT '{}',
  schedule             TEXT NOT NULL,
  time_zone            TEXT NOT NULL DEFAULT 'UTC',
  state                TEXT NOT NULL,
  start_at             INTEGER,
  end_at               INTEGER,
  overlap              TEXT NOT NULL,
  max_queued           INTEGER NOT NULL,
  max_concurrent       INTEGER NOT NULL,
  misfire              TEXT NOT NULL,
  catchup_window_us    INTEGER NOT NULL,
  starting_deadline_us INTEGER,
  timeout_us           INTEGER,
  priority             INTEGER NOT NULL DEFAULT 0,
  retry_max            INTEGER NOT NULL DEFAULT 0,
  retry_backoff_us     INTEGER NOT NULL,
  retry_multiplier     REAL NOT NULL,
  retry_max_backoff_us INTEGER NOT NULL,
  retry_jitter         REAL NOT NULL,
  retry_on             TEXT NOT NULL,
  tags                 TEXT NOT NULL DEFAULT '',
  source               TEXT NOT NULL DEFAULT 'api',
  next_run_at          INTEGER,
  last_run_at          INTEGER,
  runs                 INTEGER NOT NULL DEFAULT 0,
  successes            INTEGER NOT NULL DEFAULT 0,
  failures             INTEGER NOT NULL DEFAULT 0,
  version              INTEGER NOT NULL DEFAULT 1,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL,
  state_reason         TEXT NOT NULL DEFAULT ''
);
INSERT INTO jobs_v3 (id, name, description, driver, driver_config, schedule, time_zone, state,
  start_at, end_at, overlap, max_queued, max_concurrent, misfire, catchup_window_us,
  starting_deadline_us, timeout_us, priority, retry_max, retry_backoff_us, retry_multiplier,
  retry_max_backoff_us, retry_jitter, retry_on, tags, source, next_run_at, last_run_at, runs,
  successes, failures, version, created_at, updated_at)
SELECT id, name, description, driver, driver_config, schedule, time_zone, state,
  start_at, end_at, overlap, max_queued, max_concurrent, misfire, catchup_window_us,
  starting_deadline_us, timeout_us, priority, retry_max, retry_backoff_us, retry_multiplier,
  retry_max_backoff_us, retry_jitter, retry_on, tags, source, next_run_at, last_run_at, runs,
  successes, failures, version, created_at, updated_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v3 RENAME TO jobs;
CREATE INDEX jobs_due ON jobs (next_run_at) WHERE state = 'active' AND next_run_at IS NOT NULL;

CREATE TABLE runs_v3 (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id           INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  scheduled_for    INTEGER NOT NULL,
  attempt          INTEGER NOT NULL,
  trigger          TEXT NOT NULL,
  status           TEXT NOT NULL,
  priority         INTEGER NOT NULL DEFAULT 0,
  queued_at        INTEGER NOT NULL,
  not_before       INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  instance_id      TEXT NOT NULL DEFAULT '',
  lease_token      INTEGER NOT NULL DEFAULT 0,
  lease_expires_at INTEGER,
  exit_code        INTEGER,
  output           TEXT NOT NULL DEFAULT '',
  output_truncated INTEGER NOT NULL DEFAULT 0,
  result           TEXT NOT NULL DEFAULT '',
  error            TEXT NOT NULL DEFAULT '',
  reason           TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  UNIQUE (job_id, scheduled_for, attempt)
);
INSERT INTO runs_v3 SELECT * FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v3 RENAME TO runs;
CREATE INDEX runs_queue ON runs (priority DESC, scheduled_for, id) WHERE status = 'queued';
CREATE INDEX runs_leases ON runs (lease_expires_at)
  WHERE status IN ('queued', 'running') AND lease_expires_at IS NOT NULL;
CREATE INDEX runs_owner ON runs (instance_id)
  WHERE status IN ('queued', 'running') AND instance_id <> '';
CREATE INDEX runs_active ON runs (job_id, status) WHERE status IN ('queued', 'running');
CREATE INDEX runs_by_job ON runs (job_id, id);
)sql",
       true},
      {4, "API tokens, the audit log, a job's last success", R"sql(
ALTER TABLE jobs ADD COLUMN last_success_at INTEGER;
UPDATE jobs SET last_success_at = (SELECT max(r.started_at) FROM runs r
  WHERE r.job_id = jobs.id AND r.status = 'succeeded');

CREATE TABLE api_tokens (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL,
  role        TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  secret_hash TEXT NOT NULL,
  created_by  TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);
-- A name names one live token; revoked ones keep theirs for the audit log.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
  id     INTEGER PRIMARY KEY AUTOINCREMENT,
  at     INTEGER NOT NULL,
  actor  TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL DEFAULT '',
  status INTEGER NOT NULL DEFAULT 0,
  detail TEXT NOT NULL DEFAULT ''
);
)sql"},
      {5, "indexes for a dashboard: jobs by state, failing jobs", R"sql(
CREATE INDEX jobs_state ON jobs (state);
-- The expression is the one ListJobs writes for JobFilter::failing (SQLite
-- uses a partial index only for a query whose terms imply its WHERE).
CREATE INDEX jobs_failing ON jobs (id)
  WHERE last_run_at IS NOT NULL AND (last_success_at IS NULL OR last_success_at < last_run_at);
)sql"},
      {6, "notifications: a job's notify settings and watchdog thresholds, the outbox", R"sql(
-- NULL: the defaults apply; else a comma list ('' for none).
ALTER TABLE jobs ADD COLUMN notify_on TEXT;
ALTER TABLE jobs ADD COLUMN notify_channels TEXT;
-- The watchdog's thresholds (microseconds; NULL: not watched).
ALTER TABLE jobs ADD COLUMN late_after_us INTEGER;
ALTER TABLE jobs ADD COLUMN expected_duration_us INTEGER;
ALTER TABLE jobs ADD COLUMN no_success_for_us INTEGER;

-- One row per (event, channel), written in the transaction that settles the
-- run. Not tied to the job by a foreign key: an alert outlives a deleted job.
CREATE TABLE notifications (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id           INTEGER NOT NULL,
  job_name         TEXT NOT NULL,
  run_id           INTEGER,
  event            TEXT NOT NULL,
  channel          TEXT NOT NULL,
  status           TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  created_at       INTEGER NOT NULL,
  next_attempt_at  INTEGER NOT NULL,
  claimed_by       TEXT NOT NULL DEFAULT '',
  claim_expires_at INTEGER,
  finished_at      INTEGER,
  last_error       TEXT NOT NULL DEFAULT '',
  -- A watchdog event's identity ('late:<run>', 'stale:<job>:<since>'), so
  -- that instances checking at once raise it once.
  dedupe_key       TEXT
);
CREATE UNIQUE INDEX notifications_dedupe ON notifications (dedupe_key, channel)
  WHERE dedupe_key IS NOT NULL;
-- The watchdog reads only the jobs it watches.
CREATE INDEX jobs_watch_late ON jobs (id) WHERE late_after_us IS NOT NULL;
CREATE INDEX jobs_watch_overrun ON jobs (id) WHERE expected_duration_us IS NOT NULL;
CREATE INDEX jobs_watch_stale ON jobs (id) WHERE no_success_for_us IS NOT NULL;
CREATE INDEX notifications_pending ON notifications (next_attempt_at, id)
  WHERE status = 'pending';
CREATE INDEX notifications_by_job ON notifications (job_id, id);
-- Retention: the finished ones, oldest first.
CREATE INDEX notifications_finished ON notifications (finished_at) WHERE status <> 'pending';
-- The newest of a (job, event, channel), for de-duplication.
CREATE INDEX notifications_recent ON notifications (job_id, event, channel, created_at);
CREATE INDEX notifications_by_run ON notifications (run_id) WHERE run_id IS NOT NULL;
)sql"},
      {7, "history retention: a job's own settings; fleet-wide leases", R"sql(
-- NULL: the [retention] default applies (microseconds; counts).
ALTER TABLE jobs ADD COLUMN keep_age_us INTEGER;
ALTER TABLE jobs ADD COLUMN keep_runs INTEGER;
ALTER TABLE jobs ADD COLUMN keep_failures INTEGER;

-- A chore one instance of a fleet does at a time (retention): whoever holds
-- the row's unexpired lease.
CREATE TABLE leases (
  name       TEXT PRIMARY KEY,
  holder     TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
)sql"},
      {8, "each delivery attempt of a notification", R"sql(
-- One row per attempt, written with its outcome; gone with its notification.
CREATE TABLE notification_attempts (
  notification_id INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  attempt         INTEGER NOT NULL,
  instance_id     TEXT NOT NULL,
  finished_at     INTEGER NOT NULL,
  delivered       INTEGER NOT NULL,
  error           TEXT NOT NULL,
  retry_at        INTEGER,
  PRIMARY KEY (notification_id, attempt)
);
)sql"},
      {9, "the watchdog's overrun against a job's recent median duration", R"sql(
-- NULL: not watched; else k: "overrun" past k x the median of the job's
-- recent successful runs.
ALTER TABLE jobs ADD COLUMN overrun_factor REAL;
CREATE INDEX jobs_watch_overrun_factor ON jobs (id) WHERE overrun_factor IS NOT NULL;
)sql"},
      // PostgreSQL's version 10 moves a job's next fire to a narrow table; a
      // SQLite file is one writer's, with no row locks or page images to save.
      {10, "(PostgreSQL only: a job's next fire in a narrow row of its own)", R"sql(
SELECT 1;
)sql"},
      {11, "the queue index holds only runs no instance has reserved", R"sql(
CREATE INDEX runs_queue_free ON runs (priority DESC, scheduled_for, id)
  WHERE status = 'queued' AND instance_id = '';
DROP INDEX runs_queue;
)sql"},
      {12, "the free queue by the time its runs become due", R"sql(
CREATE INDEX runs_queue_wait ON runs (not_before)
  WHERE status = 'queued' AND instance_id = '';
)sql"},
      {13, "failed runs by job and by id, for retention's keep_failures and listing failures",
       R"sql(
-- Retention keeps a job's newest keep_failures failed runs: it asks for the
-- n-th newest failure on every batch, which read the job's whole history
-- when it had fewer (0.9 s on SQLite, 0.4 s on PostgreSQL with 3,000,000
-- runs; on SQLite the engine waited that long for the connection). Listing
-- the failures of all jobs, newest first, walked the history the same way.
CREATE INDEX runs_failures ON runs (job_id, id)
  WHERE status IN ('failed', 'timed_out', 'abandoned');
CREATE INDEX runs_failures_by_id ON runs (id)
  WHERE status IN ('failed', 'timed_out', 'abandoned');
)sql"},
  };
  return migrations;
}

}  // namespace sked::store_internal
