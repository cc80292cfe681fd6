// `sked import crontab FILE`: a classic crontab's lines as shell jobs.

#include <pwd.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/render.h"
#include "daemon/crontab.h"
#include "sked/time_zone.h"

namespace sked::cli {
namespace {

struct ImportArgs {
  const ConfigFlag& config = Globals().config;  // --config, before or after the command
  std::string file;
  std::string zone;
  std::string prefix = "crontab";
  bool dry_run = false;
  bool system = false;
  const bool& json = Globals().json;  // --json, before or after the command
};

std::string LocalZoneName() {
  // The crontab ran in the host's zone: /etc/timezone (Debian), else UTC.
  std::ifstream in("/etc/timezone");
  std::string name;
  if (in && std::getline(in, name) && TimeZone::Find(name).ok()) return name;
  return "UTC";
}

std::string CurrentUser() {
  const passwd* pw = getpwuid(geteuid());
  return pw != nullptr ? pw->pw_name : std::to_string(geteuid());
}

// What becomes of one crontab line: created, updated (the line changed since
// the last import), unchanged, or refused, exactly as the import decides it;
// a dry run decides the same way and writes nothing.
enum class Outcome { kCreated, kUpdated, kUnchanged, kRefused };

int ImportCrontab(const ImportArgs& args) {
  std::string text;
  if (args.file == "-") {
    std::ostringstream s;
    s << std::cin.rdbuf();
    text = s.str();
  } else {
    std::ifstream in(args.file, std::ios::binary);
    if (!in) return Fail(NotFoundError("crontab file '" + args.file + "' cannot be read"));
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  const std::string zone = args.zone.empty() ? LocalZoneName() : args.zone;
  if (auto z = TimeZone::Find(zone); !z.ok()) return Fail(z.status().WithContext("--tz"));
  // /etc/crontab and /etc/cron.d/* have a user column, as `--system` says.
  const bool system =
      args.system || args.file == "/etc/crontab" || args.file.rfind("/etc/cron.d/", 0) == 0;
  daemon::CrontabImport parsed = daemon::ParseCrontab(
      text, {.prefix = args.prefix, .zone = zone, .system = system, .current_user = CurrentUser()});

  auto opened = OpenContext(args.config, SchemaCheck::kCurrent);
  if (!opened.ok()) return Fail(opened.status());
  Context& ctx = **opened;
  nlohmann::ordered_json jobs = nlohmann::ordered_json::array();
  nlohmann::ordered_json problems = nlohmann::ordered_json::array();
  for (const daemon::CrontabProblem& p : parsed.problems) {
    problems.push_back({{"line", p.line}, {"text", p.text}, {"reason", p.reason}});
  }
  for (const daemon::CrontabJob& j : parsed.jobs) {
    Outcome outcome = Outcome::kRefused;
    Result<Job> job = ctx.engine->ValidateJob(j.spec);  // every check CreateJob makes
    if (job.ok()) {
      auto existing = ctx.engine->GetJob(j.spec.name);
      if (existing.ok()) {
        if (existing->spec == j.spec) {
          outcome = Outcome::kUnchanged;
          job = *existing;
        } else if (existing->source != "api" ||
                   existing->spec.description.rfind("imported from crontab", 0) != 0) {
          job = AlreadyExistsError("a job named '" + j.spec.name +
                                   "' exists and was not imported from a crontab; use another "
                                   "--prefix");
        } else {
          outcome = Outcome::kUpdated;
          if (!args.dry_run) job = ctx.engine->UpdateJob(j.spec.name, j.spec, existing->version);
        }
      } else if (existing.status().code() != StatusCode::kNotFound) {
        job = existing.status();
      } else {
        outcome = Outcome::kCreated;
        if (!args.dry_run) job = ctx.engine->CreateJob(j.spec, "api");
      }
    }
    if (!job.ok()) {
      problems.push_back(
          {{"line", j.line}, {"text", j.spec.description}, {"reason", job.status().message()}});
      continue;
    }
    static constexpr const char* kWords[] = {"created", "updated", "unchanged", ""};
    nlohmann::ordered_json entry = {{"line", j.line},
                                    {"name", j.spec.name},
                                    {"outcome", kWords[static_cast<int>(outcome)]},
                                    {"schedule", j.spec.schedule},
                                    {"timezone", j.spec.time_zone},
                                    {"next_run_at", TimeJson(job->next_run_at)}};
    if (args.dry_run) entry["config"] = nlohmann::ordered_json::parse(j.spec.driver_config);
    jobs.push_back(std::move(entry));
  }
  if (args.json) {
    std::cout << nlohmann::ordered_json{{"dry_run", args.dry_run},
                                        {"jobs", jobs},
                                        {"not_imported", problems}}
                     .dump(2)
              << "\n";
  } else {
    int counts[3] = {0, 0, 0};
    for (const auto& c : jobs) {
      const std::string outcome = c["outcome"].get<std::string>();
      ++counts[outcome == "created" ? 0 : outcome == "updated" ? 1 : 2];
      std::cout << (args.dry_run && outcome != "unchanged" ? "would be " : "") << outcome << " "
                << c["name"].get<std::string>() << " (line " << c["line"].get<int>()
                << "): " << c["schedule"].get<std::string>() << " "
                << c["timezone"].get<std::string>() << "\n";
    }
    for (const auto& p : problems) {
      std::cerr << "sked: line " << p["line"].get<int>()
                << " not imported: " << p["reason"].get<std::string>() << "\n    "
                << p["text"].get<std::string>() << "\n";
    }
    std::cout << counts[0] << " job(s) " << (args.dry_run ? "to create" : "created") << ", "
              << counts[1] << (args.dry_run ? " to update" : " updated") << ", " << counts[2]
              << " unchanged, " << problems.size() << " line(s) not imported\n";
  }
  return problems.empty() ? kExitOk : kExitInvalidInput;
}

}  // namespace

void AddImportCommands(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ImportArgs>();
  CLI::App* import = app.add_subcommand("import", "import schedules from other tools");
  import->require_subcommand(1);
  CLI::App* crontab = import->add_subcommand("crontab", "a crontab file's lines as shell jobs");
  crontab->add_option("file", args->file, "crontab file ('-' for stdin)")->required();
  crontab->add_option("--tz", args->zone, "time zone of the schedules (default: the host's)");
  crontab->add_option("--prefix", args->prefix, "job names are PREFIX-LINE (crontab)");
  crontab->add_flag("--dry-run", args->dry_run,
                    "check every line as the import would and show the outcome; change nothing");
  crontab->add_flag("--system", args->system,
                    "a system crontab: a user column after the time fields (implied for "
                    "/etc/crontab and /etc/cron.d/*)");
  crontab->callback([args, exit_code] { *exit_code = ImportCrontab(*args); });
}

}  // namespace sked::cli
