// `sked run list|show|logs|cancel|prune`, `sked health`, `sked instance list` and
// `sked migrate`: runs and the store, from any process.

#include <CLI/CLI.hpp>

#include <charconv>
#include <limits>

#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/render.h"

namespace sked::cli {
namespace {

struct RunArgs {
  const ConfigFlag& config = Globals().config;  // --config, before or after the command
  std::int64_t id = 0;
  std::string job, status, since;
  int limit = 20;
  bool dry_run = false;
  const bool& json = Globals().json;  // --json, before or after the command
};

void PrintJson(const nlohmann::ordered_json& j) { std::cout << j.dump(2) << "\n"; }

Result<std::unique_ptr<Context>> Open(const RunArgs& args) {
  return OpenContext(args.config, SchemaCheck::kCurrent);
}

int List(const RunArgs& args) {
  auto ctx = Open(args);
  if (!ctx.ok()) return Fail(ctx.status());
  RunFilter filter;
  if (args.limit < 1 || args.limit > 100000) {
    return Fail(InvalidArgumentError("--limit: must be from 1 to 100000, got " +
                                     std::to_string(args.limit)));
  }
  filter.limit = args.limit;
  if (!args.job.empty()) {
    auto job = (*ctx)->engine->GetJob(args.job);
    if (!job.ok()) return Fail(job.status());
    filter.job_id = job->id;
  }
  if (!args.status.empty()) {
    auto status = ParseRunStatus(args.status);
    if (!status.ok()) return Fail(status.status().WithContext("--status"));
    filter.status = *status;
  }
  if (!args.since.empty()) {
    auto since = ParseRfc3339(args.since);
    if (!since.ok()) {
      // Or a duration back from now: --since 1h.
      auto back = ParseDuration(args.since);
      if (!back.ok()) {
        return Fail(InvalidArgumentError("--since: '" + args.since +
                                         "' is neither an RFC 3339 time nor a duration (1h)"));
      }
      since = Clock::Real()->Now() - *back;
    }
    filter.since = *since;
  }
  auto runs = (*ctx)->engine->ListRuns(filter);
  if (!runs.ok()) return Fail(runs.status());
  if (args.json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const Run& r : *runs) out.push_back(RunJson(r, false));
    PrintJson(out);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const Run& r : *runs) {
    std::string note = r.error.empty() ? r.reason : r.error;
    if (note.size() > 60) note = note.substr(0, 57) + "...";
    rows.push_back({std::to_string(r.id), r.job_name, ShortTime(r.scheduled_for),
                    std::string(RunStatusName(r.status)), std::to_string(r.attempt),
                    std::string(RunTriggerName(r.trigger)), ShortTime(r.started_at), RunDuration(r),
                    r.exit_code ? std::to_string(*r.exit_code) : "-", note});
  }
  PrintTable(std::cout,
             {"ID", "JOB", "SCHEDULED (UTC)", "STATUS", "TRY", "TRIGGER", "STARTED (UTC)", "TOOK",
              "EXIT", "NOTE"},
             rows);
  return kExitOk;
}

int Show(const RunArgs& args, bool logs_only) {
  auto ctx = Open(args);
  if (!ctx.ok()) return Fail(ctx.status());
  auto run = (*ctx)->engine->GetRun(args.id);
  if (!run.ok()) return Fail(run.status());
  if (logs_only) {
    if (args.json) {
      PrintJson({{"id", run->id}, {"output", run->output}, {"truncated", run->output_truncated}});
    } else {
      if (run->output_truncated) std::cerr << "sked: (output truncated: the tail is kept)\n";
      std::cout << run->output;
    }
    return kExitOk;
  }
  if (args.json) {
    PrintJson(RunJson(*run, true));
    return kExitOk;
  }
  const Run& r = *run;
  std::cout << "run:           " << r.id << " (job '" << r.job_name << "', attempt " << r.attempt
            << ", trigger " << RunTriggerName(r.trigger) << ")\n"
            << "status:        " << RunStatusName(r.status) << "\n"
            << "scheduled for: " << FormatRfc3339Utc(r.scheduled_for, 3) << "\n"
            << "started:       "
            << (r.started_at ? FormatRfc3339Utc(*r.started_at, 3) : std::string("-")) << "\n"
            << "finished:      "
            << (r.finished_at ? FormatRfc3339Utc(*r.finished_at, 3) : std::string("-")) << " (took "
            << RunDuration(r) << ")\n";
  if (!r.instance_id.empty()) std::cout << "instance:      " << r.instance_id << "\n";
  if (r.exit_code) std::cout << "exit code:     " << *r.exit_code << "\n";
  if (!r.reason.empty()) std::cout << "reason:        " << Printable(r.reason) << "\n";
  if (!r.error.empty()) std::cout << "error:         " << Printable(r.error) << "\n";
  if (!r.output.empty()) {
    // `sked run logs` prints the output as it is; here it is escaped.
    std::cout << "output" << (r.output_truncated ? " (truncated, tail kept)" : "") << ":\n"
              << Printable(r.output, false);
    if (r.output.back() != '\n') std::cout << "\n";
  }
  return kExitOk;
}

int Cancel(const RunArgs& args) {
  auto ctx = Open(args);
  if (!ctx.ok()) return Fail(ctx.status());
  if (Status s = (*ctx)->engine->CancelRun(args.id); !s.ok()) {
    // A run that ended already conflicts with the request (exit 6), like a
    // concurrent change that won; the input itself was fine.
    if (s.code() == StatusCode::kFailedPrecondition) {
      Fail(s);
      return kExitConflict;
    }
    return Fail(s);
  }
  auto run = (*ctx)->engine->GetRun(args.id);
  if (!run.ok()) return Fail(run.status());
  if (args.json) {
    PrintJson(RunJson(*run, false));
  } else if (run->status == RunStatus::kCancelled) {
    std::cout << "run " << args.id << " cancelled\n";
  } else {
    std::cout << "run " << args.id << ": stop requested (its instance stops it within its poll "
              << "interval)\n";
  }
  return kExitOk;
}

// One sweep of the config's [retention] policy over every job, now (or, with
// --dry-run, what it would delete). Beside a running fleet's own sweep it
// deletes nothing twice: a settled run is deleted once, whoever gets there.
int Prune(const RunArgs& args) {
  auto ctx = Open(args);
  if (!ctx.ok()) return Fail(ctx.status());
  Store* store = (*ctx)->store.get();
  const daemon::RetentionConfig& rc = (*ctx)->config.retention;
  PruneRequest request;
  request.defaults = rc.policy;
  request.limit = rc.batch;
  request.dry_run = args.dry_run;
  std::map<std::string, std::int64_t> by_job;
  std::int64_t total = 0;
  for (int batch = 0; batch < 100000000; ++batch) {
    request.now = Clock::Real()->Now();
    auto r = store->PruneRuns(request);
    if (!r.ok()) return Fail(r.status().WithContext("pruning run history"));
    total += r->runs;
    for (const auto& [job, n] : r->by_job) by_job[job] += n;
    if (!r->resume_after) break;
    request.after_job_id = *r->resume_after;
  }
  if (args.json) {
    nlohmann::ordered_json j;
    j["dry_run"] = args.dry_run;
    j["runs"] = total;
    j["jobs"] = nlohmann::ordered_json::array();
    for (const auto& [job, n] : by_job) j["jobs"].push_back({{"job", job}, {"runs", n}});
    PrintJson(j);
    return kExitOk;
  }
  const char* verb = args.dry_run ? "would delete" : "deleted";
  for (const auto& [job, n] : by_job) std::cout << job << ": " << verb << " " << n << " run(s)\n";
  std::cout << verb << " " << total << " run(s) in all" << (args.dry_run ? " (dry run)" : "")
            << "\n";
  return kExitOk;
}

// The engine's liveness rule (InstanceStateAt), with this config's lease.
std::string InstanceState(const InstanceInfo& i, Instant now, Duration lease) {
  return std::string(InstanceStateName(InstanceStateAt(i, now, lease)));
}

// Health as the store shows it (StoreHealthAt, the engine's rule). Exit 1
// when unhealthy.
int Health(const RunArgs& args) {
  auto ctx = Open(args);
  if (!ctx.ok()) return Fail(ctx.status());
  auto health = StoreHealthAt(*(*ctx)->store, Clock::Real()->Now(), (*ctx)->config.engine.lease);
  if (!health.ok()) return Fail(health.status());
  const StoreHealth& h = *health;
  const bool healthy = h.healthy;
  if (args.json) {
    nlohmann::ordered_json j;
    j["healthy"] = healthy;
    j["store"] = Store::Redact((*ctx)->config.store_url);
    nlohmann::ordered_json live = nlohmann::ordered_json::array();
    for (const InstanceInfo& i : h.alive) live.push_back(InstanceJson(i));
    j["instances_alive"] = live;
    j["active_jobs"] = h.active_jobs;
    j["running_runs"] = h.running_runs;
    j["queue_depth"] = h.queue_depth;
    j["stale_leases"] = h.stale_leases;
    j["issues"] = h.issues;
    PrintJson(j);
  } else {
    std::cout << (healthy ? "healthy" : "UNHEALTHY") << "\n"
              << "store:        " << Store::Redact((*ctx)->config.store_url) << "\n"
              << "instances:    " << h.alive.size() << " alive\n";
    for (const InstanceInfo& i : h.alive) {
      std::cout << "  " << i.id << " (pid " << i.pid << ", heartbeat " << ShortTime(i.heartbeat_at)
                << ")\n";
    }
    std::cout << "active jobs:  " << h.active_jobs << "\n"
              << "running runs: " << h.running_runs << "\n"
              << "queue depth:  " << h.queue_depth << "\n";
    for (const std::string& issue : h.issues) std::cout << "issue: " << issue << "\n";
  }
  return healthy ? kExitOk : kExitFailure;
}

int Instances(const RunArgs& args) {
  auto ctx = Open(args);
  if (!ctx.ok()) return Fail(ctx.status());
  auto instances = (*ctx)->store->ListInstances();
  if (!instances.ok()) return Fail(instances.status());
  const Instant now = Clock::Real()->Now();
  const Duration lease = (*ctx)->config.engine.lease;
  auto state = [&](const InstanceInfo& i) { return InstanceState(i, now, lease); };
  if (args.json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const InstanceInfo& i : *instances) {
      nlohmann::ordered_json j = InstanceJson(i);
      j["state"] = state(i);
      out.push_back(j);
    }
    PrintJson(out);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const InstanceInfo& i : *instances) {
    rows.push_back({i.id, state(i), std::to_string(i.pid), i.version, ShortTime(i.started_at),
                    ShortTime(i.heartbeat_at)});
  }
  PrintTable(std::cout, {"ID", "STATE", "PID", "VERSION", "STARTED (UTC)", "HEARTBEAT (UTC)"},
             rows);
  return kExitOk;
}

int Migrate(const RunArgs& args) {
  auto ctx = OpenContext(args.config, SchemaCheck::kMayBeOlder);
  if (!ctx.ok()) return Fail(ctx.status());
  const int before = (*ctx)->schema_version;
  if (Status s = (*ctx)->store->Migrate(); !s.ok()) return Fail(s);
  const int after = (*ctx)->store->LatestSchemaVersion();
  if (args.json) {
    PrintJson(
        {{"store", Store::Redact((*ctx)->config.store_url)}, {"from", before}, {"to", after}});
  } else if (before == after) {
    std::cout << "store " << Store::Redact((*ctx)->config.store_url) << " is at schema version "
              << after << "; nothing to do\n";
  } else {
    std::cout << "store " << Store::Redact((*ctx)->config.store_url)
              << " migrated from schema version " << before << " to " << after << "\n";
  }
  return kExitOk;
}

// The run id argument: a whole number from 1 to 2^63-1, read strictly (the
// parser would clamp 99999999999999999999 to the largest id).
void AddRunIdArgument(CLI::App* cmd, std::int64_t* id) {
  cmd->add_option_function<std::string>(
         "id",
         [id](const std::string& text) {
           std::int64_t value = 0;
           const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
           if (ec != std::errc() || end != text.data() + text.size() || value < 1) {
             throw CLI::ValidationError(
                 "run id", "'" + text + "' is not a run id (a whole number from 1 to " +
                               std::to_string(std::numeric_limits<std::int64_t>::max()) + ")");
           }
           *id = value;
         },
         "run id")
      ->required()
      ->type_name("ID");
}

}  // namespace

void AddRunCommands(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* run = app.add_subcommand("run", "inspect, cancel and prune runs");
  run->require_subcommand(1);

  CLI::App* list = run->add_subcommand("list", "list runs, newest first");
  list->add_option("--job", args->job, "only this job's runs");
  list->add_option("--status", args->status,
                   "queued | running | succeeded | failed | timed_out | cancelled | skipped | "
                   "abandoned");
  list->add_option("--since", args->since, "queued at or after: RFC 3339 time, or a duration (1h)");
  list->add_option("-n,--limit", args->limit, "at most this many (20)");
  list->callback([args, exit_code] { *exit_code = List(*args); });

  CLI::App* show = run->add_subcommand("show", "show a run with its output");
  AddRunIdArgument(show, &args->id);
  show->callback([args, exit_code] { *exit_code = Show(*args, false); });

  CLI::App* logs = run->add_subcommand("logs", "print a run's captured output");
  AddRunIdArgument(logs, &args->id);
  logs->callback([args, exit_code] { *exit_code = Show(*args, true); });

  CLI::App* cancel = run->add_subcommand("cancel", "cancel a queued run, or stop a running one");
  AddRunIdArgument(cancel, &args->id);
  cancel->callback([args, exit_code] { *exit_code = Cancel(*args); });

  CLI::App* prune = run->add_subcommand(
      "prune",
      "delete the run history the [retention] policy lets go, now (a fleet does it "
      "itself every retention.every)");
  prune->add_flag("--dry-run", args->dry_run, "say what would be deleted; delete nothing");
  prune->callback([args, exit_code] { *exit_code = Prune(*args); });

  CLI::App* health = app.add_subcommand("health", "is a sked instance serving this store?");
  health->callback([args, exit_code] { *exit_code = Health(*args); });

  CLI::App* instance = app.add_subcommand("instance", "sked instances on this store");
  instance->require_subcommand(1);
  CLI::App* ilist = instance->add_subcommand("list", "every instance, live and dead");
  ilist->callback([args, exit_code] { *exit_code = Instances(*args); });

  CLI::App* migrate = app.add_subcommand("migrate", "apply the store's schema migrations");
  migrate->callback([args, exit_code] { *exit_code = Migrate(*args); });
}

}  // namespace sked::cli
