// `sked serve`: the daemon. Loads the config, migrates the store (unless
// --no-migrate), syncs the declared jobs, runs the engine until SIGTERM or
// SIGINT, then shuts down gracefully; a second signal ends the grace period.

#include <signal.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "daemon/job_sync.h"
#include "daemon/logger.h"
#include "engine/retention.h"
#include "notify/channel.h"
#include "notify/dispatcher.h"
#include "server/api_server.h"
#include "server/timed_store.h"

namespace sked::cli {
namespace {

using daemon::LogFields;
using daemon::Logger;

// Run starts and ends, and store errors, as log lines.
class LogObserver final : public RunObserver {
 public:
  explicit LogObserver(Logger* log) : log_(log) {}
  void OnRunStarted(const Run& run) override {
    log_->Info("run started", {{"job", run.job_name},
                               {"run", std::to_string(run.id)},
                               {"scheduled_for", FormatRfc3339Utc(run.scheduled_for, 3)},
                               {"attempt", std::to_string(run.attempt)},
                               {"trigger", std::string(RunTriggerName(run.trigger))}});
  }
  void OnRunFinished(const Run& run, const RunOutcome& o) override {
    LogFields fields = {{"job", run.job_name},
                        {"run", std::to_string(run.id)},
                        {"scheduled_for", FormatRfc3339Utc(run.scheduled_for, 3)},
                        {"status", std::string(RunStatusName(o.status))},
                        {"duration", FormatDuration(o.finished_at - *run.started_at)}};
    if (o.exit_code) fields.emplace_back("exit_code", std::to_string(*o.exit_code));
    if (!o.error.empty()) fields.emplace_back("error", o.error);
    if (o.retry) fields.emplace_back("retry_at", FormatRfc3339Utc(o.retry->not_before, 3));
    if (o.status == RunStatus::kSucceeded) {
      log_->Info("run finished", fields);
    } else {
      log_->Warn("run finished", fields);
    }
  }
  void OnStoreError(const Status& status) override {
    log_->Error("store error", {{"error", status.message()}});
  }

 private:
  Logger* log_;
};

// With plugins in use, a job that fires with a driver nobody provides would
// fail every run: refuse to serve instead, naming the jobs and the plugins
// that failed. The store names the drivers in use (one scan, however many
// jobs); only the jobs of a missing driver are read, a page at a time.
Status CheckJobsHaveDrivers(Store& store, Engine& engine, const DriverRegistry& drivers) {
  auto used = store.ListFiringDrivers();
  if (!used.ok()) return used.status().WithContext("checking the jobs' drivers");
  std::vector<std::string> named;
  std::string first_driver;
  std::int64_t missing = 0;
  for (const std::string& driver : *used) {
    if (drivers.Find(driver) != nullptr) continue;
    JobFilter filter;
    filter.driver = driver;
    filter.limit = 1000;
    for (int page = 0; page < 1'000'000; ++page) {
      auto jobs = engine.ListJobs(filter);
      if (!jobs.ok()) return jobs.status().WithContext("checking the jobs' drivers");
      for (const Job& job : *jobs) {
        // A paused, disabled or expired job does not fire: its runs are
        // triggered by hand, and fail saying why.
        if (job.state != JobState::kActive && job.state != JobState::kPending) continue;
        if (++missing == 1) first_driver = driver;
        if (named.size() < 5) named.push_back("'" + job.spec.name + "' (" + driver + ")");
      }
      if (static_cast<int>(jobs->size()) < filter.limit) break;
      filter.after_id = jobs->back().id;
    }
  }
  if (missing == 0) return Status::Ok();
  std::string list;
  for (const std::string& n : named) list += (list.empty() ? "" : ", ") + n;
  if (missing > static_cast<std::int64_t>(named.size())) list += ", ...";
  return FailedPreconditionError(
      std::to_string(missing) + " active job(s) need a driver that is not registered: " + list +
      " (load the plugin that provides it, or pause or delete the job); " +
      drivers.UnknownDriverMessage(first_driver));
}

struct ServeArgs {
  const ConfigFlag& config = Globals().config;  // --config, before or after the command
  bool no_migrate = false;
  bool prune = false;  // --prune-undeclared
};

int Serve(const ServeArgs& args) {
  // Signals go to the thread that waits for them, not to engine or driver
  // threads (which inherit this mask; the shell driver resets it for children).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // --no-migrate: the schema must be current already; else it is migrated here.
  auto ctx =
      OpenContext(args.config, args.no_migrate ? SchemaCheck::kCurrent : SchemaCheck::kMayBeOlder);
  if (!ctx.ok()) return Fail(ctx.status());
  Context& c = **ctx;
  Logger log(c.config.log_level, c.config.log_format, stderr, Clock::Real());
  if (c.created_database) {
    log.Warn(
        "the store's database file did not exist: created a new, empty one (if you expected "
        "existing jobs, check [store] url)",
        {{"path", *c.created_database}});
  }
  const int latest = c.store->LatestSchemaVersion();
  if (c.schema_version < latest) {
    if (Status s = c.store->Migrate(); !s.ok()) return Fail(s);
    log.Info("store migrated",
             {{"from", std::to_string(c.schema_version)}, {"to", std::to_string(latest)}});
  }

  // A plugin that failed to load is said, and only stops sked when a job
  // needs a driver that is missing (the config's jobs at the sync below, the
  // store's in CheckJobsHaveDrivers).
  for (const std::string& name : c.drivers->Names()) {
    if (const std::string origin = c.drivers->Origin(name); !origin.empty()) {
      log.Info("driver plugin loaded", {{"driver", name}, {"plugin", origin}});
    }
  }
  for (const Status& failure : c.drivers->plugin_failures()) {
    log.Error("driver plugin not loaded", {{"error", failure.message()}});
  }

  LogObserver observer(&log);
  EngineOptions options = c.config.engine;
  options.observer = &observer;
  // The engine's store calls are timed for /metrics.
  server::StoreTimings timings;
  server::TimedStore timed_store(c.store.get(), &timings);
  Engine engine(options, &timed_store, c.drivers.get(), Clock::Real());
  auto synced = daemon::SyncDeclaredJobs(
      engine, c.config.jobs, c.config.path.empty() ? "config" : c.config.path, args.prune);
  if (!synced.ok()) return Fail(synced.status());
  for (const std::string& n : synced->created) log.Info("job created", {{"job", n}});
  for (const std::string& n : synced->updated) log.Info("job updated", {{"job", n}});
  for (const std::string& n : synced->disabled) {
    log.Warn(
        "declared job removed from the config: disabled, history kept (add it back to "
        "enable it, or start with --prune-undeclared to delete it)",
        {{"job", n}});
  }
  for (const std::string& n : synced->deleted) {
    log.Warn("declared job removed from the config: deleted with its history (--prune-undeclared)",
             {{"job", n}});
  }
  if (!c.config.plugin_dir.empty()) {
    if (Status s = CheckJobsHaveDrivers(timed_store, engine, *c.drivers); !s.ok()) {
      return Fail(s);
    }
  }
  // Notifications: delivered from the outbox by a dispatcher of their own
  // (when any channel is declared), claimed like runs so a fleet sends each once.
  std::unique_ptr<notify::Dispatcher> dispatcher;
  const notify::NotifyConfig& nc = c.config.notify;
  if (!nc.channels.empty()) {
    auto channels = notify::BuildChannels(nc, [&log](const std::string& payload) {
      log.Warn("notification", {{"payload", payload}});
    });
    if (!channels.ok()) return Fail(channels.status());
    notify::DispatcherOptions d;
    d.instance_id = engine.instance_id();
    d.max_attempts = nc.max_attempts;
    d.backoff = nc.backoff;
    d.max_backoff = nc.max_backoff;
    d.keep = nc.keep;
    Duration longest{0};
    for (const notify::ChannelConfig& ch : nc.channels) longest = std::max(longest, ch.timeout);
    d.on_raised = [&log](const Notification& n) {
      log.Warn("watchdog", {{"event", n.event},
                            {"job", n.job_name},
                            {"run", n.run_id ? std::to_string(*n.run_id) : "-"},
                            {"channel", n.channel}});
    };
    // A claim outlasts a whole batch of deliveries that all time out.
    d.claim = longest * d.batch + std::chrono::seconds(5);
    dispatcher = std::make_unique<notify::Dispatcher>(
        d, &timed_store, Clock::Real(), std::move(*channels),
        [&log](const Notification& n, const Status& st) {
          LogFields fields = {{"notification", std::to_string(n.id)},
                              {"event", n.event},
                              {"job", n.job_name},
                              {"channel", n.channel},
                              {"attempt", std::to_string(n.attempts)}};
          if (st.ok()) {
            log.Info("notification delivered", fields);
          } else {
            fields.emplace_back("error", st.message());
            log.Warn("notification not delivered", fields);
          }
        });
  }
  // History retention: one sweep per [retention] every, by whichever
  // instance of a fleet holds the store's retention lease.
  std::unique_ptr<RetentionService> retention;
  const daemon::RetentionConfig& rc = c.config.retention;
  if (rc.every > Duration(0)) {
    RetentionOptions r;
    r.instance_id = engine.instance_id();
    r.policy = rc.policy;
    r.every = rc.every;
    r.batch = rc.batch;
    r.on_sweep = [&log](const Result<std::int64_t>& deleted, Duration took) {
      if (!deleted.ok()) {
        log.Warn("retention sweep failed", {{"error", deleted.status().message()}});
      } else if (*deleted > 0) {
        log.Info("retention sweep",
                 {{"runs_deleted", std::to_string(*deleted)}, {"took", FormatDuration(took)}});
      }
    };
    retention = std::make_unique<RetentionService>(r, c.store.get(), Clock::Real());
  }
  if (Status s = engine.Start(); !s.ok()) return Fail(s);
  if (dispatcher) dispatcher->Start();
  if (retention) retention->Start();
  std::unique_ptr<server::ApiServer> api;
  if (!c.config.server.listen.empty()) {
    server::ServeContext context{&engine, c.store.get(), Clock::Real(), &log, options, &timings, {},
                                 {}};
    if (dispatcher) {
      context.notify_metrics = [&dispatcher] {
        const notify::DispatcherStats s = dispatcher->Stats();
        return server::NotifyMetrics{s.delivered, s.attempts_failed, s.given_up, s.watchdog};
      };
    }
    if (retention) {
      context.retention_metrics = [&retention] {
        const RetentionStats s = retention->Stats();
        return server::RetentionMetrics{s.sweeps, s.runs_deleted, s.failures, s.last_sweep_at};
      };
    }
    api = std::make_unique<server::ApiServer>(c.config.server, context);
    if (Status s = api->Start(); !s.ok()) {
      engine.Stop();
      if (dispatcher) dispatcher->Stop();
      if (retention) retention->Stop();
      return Fail(s);
    }
    log.Info("api listening", {{"url", api->url()}});
    if (c.config.server.dashboard) log.Info("dashboard", {{"url", api->url() + "/ui/"}});
  }
  log.Info("sked serving", {{"store", Store::Redact(c.config.store_url)},
                            {"instance", engine.instance_id()},
                            {"workers", std::to_string(options.workers)},
                            {"jobs_declared", std::to_string(c.config.jobs.size())},
                            {"pid", std::to_string(::getpid())}});

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  log.Info("stopping", {{"signal", std::string(strsignal(signal_number))},
                        {"grace", FormatDuration(options.shutdown_grace)}});
  // The API stays up while the engine stops: /readyz says so (503).
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    engine.Stop();
    stopped = true;
  });
  // A second signal forces: the grace period ends and running runs are
  // stopped now. Bounded: Stop() returns once every driver has returned.
  bool forced = false;
  const timespec tick{0, 50'000'000L};
  while (!stopped) {
    if (sigtimedwait(&signals, nullptr, &tick) > 0 && !forced) {
      forced = true;
      log.Warn("second signal: stopping running runs now");
      engine.EndShutdownGrace();
    }
  }
  stopper.join();
  // After the engine: a delivery in progress finishes; what is still pending
  // stays in the outbox for the next start or another instance.
  if (dispatcher) dispatcher->Stop();
  if (retention) retention->Stop();
  if (api) api->Stop();
  log.Info("stopped", {{"forced", forced ? "true" : "false"}});
  return forced ? kExitFailure : kExitOk;
}

}  // namespace

void AddServeCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* serve = app.add_subcommand("serve", "run the scheduler (until SIGTERM or SIGINT)");
  serve->add_flag("--no-migrate", args->no_migrate,
                  "refuse to start on an older schema instead of migrating it");
  serve->add_flag("--prune-undeclared", args->prune,
                  "delete (with their history) jobs declared in an earlier config but not in "
                  "this one; without it they are disabled and kept");
  serve->callback([args, exit_code] { *exit_code = Serve(*args); });
}

}  // namespace sked::cli
