// `sked job add|list|show|edit|pause|resume|delete|trigger`: jobs in the
// config's store, from any process (a running `sked serve` sees changes
// within its poll interval).

#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/render.h"
#include "sked/time_zone.h"

namespace sked::cli {
namespace {

// Every job field as a flag; each is applied only when given.
struct JobFlags {
  std::string schedule, timezone, driver, config, command, description, start_at, end_at;
  std::string overlap, misfire, catchup_window, starting_deadline, timeout;
  std::string retry_backoff, retry_max_backoff, retry_on;
  int max_queued = 1, max_concurrent = 1, priority = 0, retry_max = 0;
  double retry_multiplier = 2, retry_jitter = 0.1;
  std::vector<std::string> tags;
  bool paused = false;
  std::map<std::string, CLI::Option*> opts;

  bool Given(const std::string& name) const {
    auto it = opts.find(name);
    return it != opts.end() && it->second->count() > 0;
  }

  void Add(CLI::App* cmd) {
    opts["schedule"] = cmd->add_option("-s,--schedule", schedule,
                                       "cron expression, 'every 90s' or 'at 2026-12-01T09:00:00'");
    opts["timezone"] =
        cmd->add_option("--tz,--timezone", timezone, "IANA time zone of the schedule (UTC)");
    opts["driver"] =
        cmd->add_option("-d,--driver", driver,
                        "driver: shell, http, noop, sleep, or a plugin's (sked driver list)");
    opts["config"] = cmd->add_option("--config-json", config, "the driver's config, a JSON object");
    opts["command"] = cmd->add_option("--command", command,
                                      "shell command (sets driver shell and config.command)");
    opts["description"] = cmd->add_option("--description", description, "free text");
    opts["start_at"] = cmd->add_option("--start-at", start_at, "RFC 3339: no fire before");
    opts["end_at"] = cmd->add_option("--end-at", end_at, "RFC 3339: no fire after (then expired)");
    opts["overlap"] = cmd->add_option("--overlap", overlap, "skip | queue | concurrent | replace");
    opts["max_queued"] = cmd->add_option("--max-queued", max_queued, "overlap=queue: fires held");
    opts["max_concurrent"] =
        cmd->add_option("--max-concurrent", max_concurrent, "overlap=concurrent: runs at once");
    opts["misfire"] = cmd->add_option("--misfire", misfire, "run_once | skip | run_all");
    opts["catchup_window"] =
        cmd->add_option("--catchup-window", catchup_window, "misfire=run_all: how far back");
    opts["starting_deadline"] = cmd->add_option("--starting-deadline", starting_deadline,
                                                "skip a run that cannot start within this");
    opts["timeout"] = cmd->add_option("--timeout", timeout, "stop a run after this (e.g. 10m)");
    opts["priority"] = cmd->add_option("--priority", priority, "higher starts first (-1000..1000)");
    opts["retry_max"] = cmd->add_option("--retry-max", retry_max, "retries after a failure");
    opts["retry_backoff"] = cmd->add_option("--retry-backoff", retry_backoff, "first delay");
    opts["retry_multiplier"] =
        cmd->add_option("--retry-multiplier", retry_multiplier, "delay factor per attempt");
    opts["retry_max_backoff"] =
        cmd->add_option("--retry-max-backoff", retry_max_backoff, "delay cap");
    opts["retry_jitter"] = cmd->add_option("--retry-jitter", retry_jitter, "0..1 random extra");
    opts["retry_on"] =
        cmd->add_option("--retry-on", retry_on, "comma list of failed, timed_out, abandoned");
    opts["tags"] = cmd->add_option("--tag", tags, "a tag (repeatable)");
    opts["paused"] = cmd->add_flag("--paused", paused, "create paused");
  }

  // Applies the given flags to `spec`; messages name the flag.
  Status Apply(JobSpec* spec) const {
    if (Given("schedule")) spec->schedule = schedule;
    if (Given("timezone")) spec->time_zone = timezone;
    if (Given("driver")) spec->driver = driver;
    if (Given("config")) spec->driver_config = config;
    if (Given("command")) {
      if (Given("config")) {
        return InvalidArgumentError("--command and --config-json: give one or the other");
      }
      if (Given("driver") && driver != "shell") {
        return InvalidArgumentError("--command: needs driver shell, not '" + driver + "'");
      }
      spec->driver = "shell";
      spec->driver_config = nlohmann::json{{"command", command}}.dump();
    }
    if (Given("description")) spec->description = description;
    auto instant = [&](const std::string& flag, const std::string& text,
                       std::optional<Instant>* out) -> Status {
      if (text == "none") {
        out->reset();
        return Status::Ok();
      }
      if (text.empty()) {
        return InvalidArgumentError(flag + ": give an RFC 3339 time, or 'none' to clear it");
      }
      auto t = ParseRfc3339(text);
      if (!t.ok()) return t.status().WithContext(flag);
      *out = *t;
      return Status::Ok();
    };
    auto duration = [&](const std::string& flag, const std::string& text) -> Result<Duration> {
      if (text.empty()) {
        return InvalidArgumentError(flag +
                                    ": give a duration such as 10m (an empty value is not "
                                    "one)");
      }
      auto d = ParseDuration(text);
      if (!d.ok()) return d.status().WithContext(flag);
      return *d;
    };
    if (Given("start_at")) SKED_RETURN_IF_ERROR(instant("--start-at", start_at, &spec->start_at));
    if (Given("end_at")) SKED_RETURN_IF_ERROR(instant("--end-at", end_at, &spec->end_at));
    if (Given("overlap")) {
      auto p = ParseOverlapPolicy(overlap);
      if (!p.ok()) return p.status().WithContext("--overlap");
      spec->overlap = *p;
    }
    if (Given("max_queued")) spec->max_queued = max_queued;
    if (Given("max_concurrent")) spec->max_concurrent = max_concurrent;
    if (Given("misfire")) {
      auto p = ParseMisfirePolicy(misfire);
      if (!p.ok()) return p.status().WithContext("--misfire");
      spec->misfire = *p;
    }
    if (Given("catchup_window")) {
      SKED_ASSIGN_OR_RETURN(spec->catchup_window, duration("--catchup-window", catchup_window));
    }
    if (Given("starting_deadline")) {
      if (starting_deadline == "none") {
        spec->starting_deadline.reset();
      } else {
        SKED_ASSIGN_OR_RETURN(spec->starting_deadline,
                              duration("--starting-deadline", starting_deadline));
      }
    }
    if (Given("timeout")) {
      if (timeout == "none") {  // the engine's default
        spec->timeout.reset();
      } else {
        SKED_ASSIGN_OR_RETURN(spec->timeout, duration("--timeout", timeout));
      }
    }
    if (Given("priority")) spec->priority = priority;
    if (Given("retry_max")) spec->retry.max_retries = retry_max;
    if (Given("retry_backoff")) {
      SKED_ASSIGN_OR_RETURN(spec->retry.backoff, duration("--retry-backoff", retry_backoff));
    }
    if (Given("retry_multiplier")) spec->retry.multiplier = retry_multiplier;
    if (Given("retry_max_backoff")) {
      SKED_ASSIGN_OR_RETURN(spec->retry.max_backoff,
                            duration("--retry-max-backoff", retry_max_backoff));
    }
    if (Given("retry_jitter")) spec->retry.jitter = retry_jitter;
    if (Given("retry_on")) {
      RetryPolicy& r = spec->retry;
      r.on_failed = r.on_timed_out = r.on_abandoned = false;
      std::string item;
      std::istringstream in(retry_on);
      while (std::getline(in, item, ',')) {
        if (item == "failed") {
          r.on_failed = true;
        } else if (item == "timed_out") {
          r.on_timed_out = true;
        } else if (item == "abandoned") {
          r.on_abandoned = true;
        } else if (!item.empty()) {
          return InvalidArgumentError("--retry-on: '" + item +
                                      "' is not one of failed, timed_out, abandoned");
        }
      }
    }
    if (Given("tags")) spec->tags = tags;
    if (Given("paused")) spec->paused = paused;
    return Status::Ok();
  }
};

struct JobArgs {
  const ConfigFlag& config = Globals().config;  // --config, before or after the command
  std::string name;
  std::string state;
  const bool& json = Globals().json;  // --json, before or after the command
  bool wait = false;
  std::string wait_timeout = "10m";
  JobFlags flags;
};

void PrintJson(const nlohmann::ordered_json& j) { std::cout << j.dump(2) << "\n"; }

int Open(const JobArgs& args, std::unique_ptr<Context>* ctx) {
  auto opened = OpenContext(args.config, SchemaCheck::kCurrent);
  if (!opened.ok()) return Fail(opened.status());
  *ctx = std::move(*opened);
  return kExitOk;
}

void PrintJobLine(const Job& job, const char* verb) {
  std::cout << "job '" << job.spec.name << "' " << verb;
  if (job.state == JobState::kActive || job.state == JobState::kPending) {
    std::cout << "; next run " << ShortTime(job.next_run_at);
  } else {
    std::cout << "; " << JobStateName(job.state);
  }
  std::cout << "\n";
}

int Add(const JobArgs& args) {
  std::unique_ptr<Context> ctx;
  if (int rc = Open(args, &ctx); rc != kExitOk) return rc;
  JobSpec spec;
  spec.name = args.name;
  if (Status s = args.flags.Apply(&spec); !s.ok()) return Fail(s);
  if (spec.schedule.empty()) return Fail(InvalidArgumentError("--schedule is required"));
  if (spec.driver.empty()) {
    return Fail(InvalidArgumentError("--driver (or --command for a shell job) is required"));
  }
  auto job = ctx->engine->CreateJob(spec, "api");
  if (!job.ok()) return Fail(job.status());
  if (args.json) {
    PrintJson(JobJson(*job));
  } else {
    PrintJobLine(*job, "created");
  }
  return kExitOk;
}

int Edit(const JobArgs& args) {
  std::unique_ptr<Context> ctx;
  if (int rc = Open(args, &ctx); rc != kExitOk) return rc;
  auto job = ctx->engine->GetJob(args.name);
  if (!job.ok()) return Fail(job.status());
  JobSpec spec = job->spec;
  if (Status s = args.flags.Apply(&spec); !s.ok()) return Fail(s);
  if (spec == job->spec) {
    // Nothing to write: the version (and the job's next fire) stay as they are.
    if (args.json) {
      PrintJson(JobJson(*job));
    } else {
      PrintJobLine(*job, "unchanged");
    }
    return kExitOk;
  }
  auto updated = ctx->engine->UpdateJob(args.name, spec, job->version);
  if (!updated.ok()) return Fail(updated.status());
  if (job->source == "config") {
    std::cerr << "sked: note: job '" << args.name
              << "' is declared in the config file; `sked serve` puts the declared version "
                 "back when it starts\n";
  }
  if (args.json) {
    PrintJson(JobJson(*updated));
  } else {
    PrintJobLine(*updated, "updated");
  }
  return kExitOk;
}

int List(const JobArgs& args) {
  std::unique_ptr<Context> ctx;
  if (int rc = Open(args, &ctx); rc != kExitOk) return rc;
  JobFilter filter;
  if (!args.state.empty()) {
    auto state = ParseJobState(args.state);
    if (!state.ok()) return Fail(state.status().WithContext("--state"));
    filter.state = *state;
  }
  std::vector<Job> all;
  for (int page = 0; page < 100000; ++page) {
    auto jobs = ctx->engine->ListJobs(filter);
    if (!jobs.ok()) return Fail(jobs.status());
    all.insert(all.end(), jobs->begin(), jobs->end());
    if (static_cast<int>(jobs->size()) < filter.limit) break;
    filter.after_id = jobs->back().id;
  }
  if (args.json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const Job& j : all) out.push_back(JobJson(j));
    PrintJson(out);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  rows.reserve(all.size());
  for (const Job& j : all) {
    rows.push_back({j.spec.name, j.spec.schedule, j.spec.time_zone, StateText(j),
                    ShortTime(NextRunShown(j)), ShortTime(j.last_run_at), j.spec.driver,
                    std::to_string(j.successes) + "/" + std::to_string(j.runs)});
  }
  PrintTable(std::cout,
             {"NAME", "SCHEDULE", "TIMEZONE", "STATE", "NEXT RUN (UTC)", "LAST RUN (UTC)", "DRIVER",
              "OK/RUNS"},
             rows);
  return kExitOk;
}

int Show(const JobArgs& args) {
  std::unique_ptr<Context> ctx;
  if (int rc = Open(args, &ctx); rc != kExitOk) return rc;
  auto job = ctx->engine->GetJob(args.name);
  if (!job.ok()) return Fail(job.status());
  if (args.json) {
    nlohmann::ordered_json j = JobJson(*job);
    j["next_fires"] = daemon::FiresJson(*job, 5);  // as the API's GET /api/v1/jobs/{name}
    PrintJson(j);
    return kExitOk;
  }
  // The next 5 fires, from the schedule (as the engine computes them).
  const std::vector<Instant> fires = daemon::NextFires(*job, 5);
  auto zone = TimeZone::Find(job->spec.time_zone);
  const JobSpec& s = job->spec;
  std::cout << "name:        " << s.name << "\n";
  if (!s.description.empty()) {
    std::cout << "description: " << Printable(s.description) << "\n";
  }
  std::cout << "state:       " << Printable(StateText(*job)) << " (source: " << job->source
            << ", version " << job->version << ")\n"
            << "schedule:    " << s.schedule << " (" << s.time_zone << ")\n"
            << "driver:      " << s.driver << " " << Printable(s.driver_config) << "\n"
            << "overlap:     " << OverlapPolicyName(s.overlap)
            << "   misfire: " << MisfirePolicyName(s.misfire)
            << "   timeout: " << (s.timeout ? FormatDuration(*s.timeout) : "default")
            << "   priority: " << s.priority << "\n"
            << "retry:       " << s.retry.max_retries << " x, backoff "
            << FormatDuration(s.retry.backoff) << " x" << s.retry.multiplier << " up to "
            << FormatDuration(s.retry.max_backoff) << "\n"
            << "runs:        " << job->runs << " (" << job->successes << " succeeded, "
            << job->failures << " failed); last " << ShortTime(job->last_run_at) << "\n"
            << "next fires:\n";
  for (Instant t : fires) {
    std::cout << "  " << (zone.ok() ? zone->Format(t) : FormatRfc3339Utc(t)) << "\n";
  }
  if (fires.empty()) std::cout << "  (none)\n";
  return kExitOk;
}

int Pause(const JobArgs& args, bool pause) {
  std::unique_ptr<Context> ctx;
  if (int rc = Open(args, &ctx); rc != kExitOk) return rc;
  auto job = pause ? ctx->engine->PauseJob(args.name) : ctx->engine->ResumeJob(args.name);
  if (!job.ok()) return Fail(job.status());
  if (args.json) {
    PrintJson(JobJson(*job));
  } else {
    PrintJobLine(*job, pause ? "paused" : "resumed");
  }
  return kExitOk;
}

int Delete(const JobArgs& args) {
  std::unique_ptr<Context> ctx;
  if (int rc = Open(args, &ctx); rc != kExitOk) return rc;
  if (Status s = ctx->engine->DeleteJob(args.name); !s.ok()) return Fail(s);
  if (args.json) {
    PrintJson({{"deleted", args.name}});
  } else {
    std::cout << "job '" << args.name << "' deleted\n";
  }
  return kExitOk;
}

int Trigger(const JobArgs& args) {
  std::unique_ptr<Context> ctx;
  if (int rc = Open(args, &ctx); rc != kExitOk) return rc;
  auto timeout = ParseDuration(args.wait_timeout);
  if (!timeout.ok()) return Fail(timeout.status().WithContext("--wait-timeout"));
  auto run = ctx->engine->TriggerJob(args.name);
  if (!run.ok()) return Fail(run.status());
  if (!args.wait) {
    if (args.json) {
      PrintJson(RunJson(*run, false));
    } else {
      std::cout << "run " << run->id << " of job '" << args.name << "' queued\n";
    }
    return kExitOk;
  }
  // Wait for a serving instance to run it: bounded, polling the store.
  const auto give_up = std::chrono::steady_clock::now() + *timeout;
  Result<Run> current = *run;
  while (current.ok() && !IsTerminal(current->status)) {
    if (std::chrono::steady_clock::now() > give_up) {
      return Fail(DeadlineExceededError("run " + std::to_string(run->id) + " still " +
                                        std::string(RunStatusName(current->status)) + " after " +
                                        args.wait_timeout +
                                        " (is `sked serve` running on this store?)"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    current = ctx->engine->GetRun(run->id);
  }
  if (!current.ok()) return Fail(current.status());
  if (args.json) {
    PrintJson(RunJson(*current, true));
  } else {
    std::cout << current->output;
    if (!current->output.empty() && current->output.back() != '\n') std::cout << "\n";
    std::cerr << "run " << current->id << ": " << RunStatusName(current->status)
              << (current->exit_code ? " (exit " + std::to_string(*current->exit_code) + ")" : "")
              << (current->error.empty() ? "" : ": " + current->error) << "\n";
  }
  return current->status == RunStatus::kSucceeded ? kExitOk : kExitFailure;
}

}  // namespace

void AddJobCommands(CLI::App& app, int* exit_code) {
  CLI::App* job = app.add_subcommand("job", "manage jobs in the store");
  job->require_subcommand(1);
  auto args = std::make_shared<JobArgs>();
  auto common = [&](CLI::App* cmd, bool named) {
    if (named) cmd->add_option("name", args->name, "job name")->required();
  };

  CLI::App* add = job->add_subcommand("add", "create a job");
  common(add, true);
  args->flags.Add(add);
  add->callback([args, exit_code] { *exit_code = Add(*args); });

  CLI::App* edit = job->add_subcommand("edit", "change a job's fields (only the flags given)");
  common(edit, true);
  auto edit_flags = std::make_shared<JobFlags>();
  edit_flags->Add(edit);
  edit->callback([args, edit_flags, exit_code] {
    JobArgs a = *args;
    a.flags = *edit_flags;
    *exit_code = Edit(a);
  });

  CLI::App* list = job->add_subcommand("list", "list jobs");
  common(list, false);
  list->add_option("--state", args->state, "pending | active | paused | disabled | expired");
  list->callback([args, exit_code] { *exit_code = List(*args); });

  CLI::App* show = job->add_subcommand("show", "show a job and its next 5 fires");
  common(show, true);
  show->callback([args, exit_code] { *exit_code = Show(*args); });

  CLI::App* pause = job->add_subcommand("pause", "stop firing (runs in progress go on)");
  common(pause, true);
  pause->callback([args, exit_code] { *exit_code = Pause(*args, true); });

  CLI::App* resume = job->add_subcommand("resume", "fire again, from now on");
  common(resume, true);
  resume->callback([args, exit_code] { *exit_code = Pause(*args, false); });

  CLI::App* del = job->add_subcommand("delete", "delete a job and its runs");
  common(del, true);
  del->callback([args, exit_code] { *exit_code = Delete(*args); });

  CLI::App* trigger = job->add_subcommand("trigger", "queue a manual run now");
  common(trigger, true);
  trigger->add_flag("--wait", args->wait, "wait for the run to end and print its output");
  trigger->add_option("--wait-timeout", args->wait_timeout, "give up waiting after (10m)");
  trigger->callback([args, exit_code] { *exit_code = Trigger(*args); });
}

}  // namespace sked::cli
