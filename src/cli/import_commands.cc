// `sked import crontab FILE`: a classic crontab's lines as shell jobs.

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
  ConfigFlag config;
  std::string file;
  std::string zone;
  std::string prefix = "crontab";
  bool dry_run = false;
  bool json = false;
};

std::string LocalZoneName() {
  // The crontab ran in the host's zone: /etc/timezone (Debian), else UTC.
  std::ifstream in("/etc/timezone");
  std::string name;
  if (in && std::getline(in, name) && TimeZone::Find(name).ok()) return name;
  return "UTC";
}

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
  daemon::CrontabImport parsed = daemon::ParseCrontab(text, args.prefix, zone);

  std::unique_ptr<Context> ctx;
  if (!args.dry_run) {
    auto opened = OpenContext(args.config, SchemaCheck::kCurrent);
    if (!opened.ok()) return Fail(opened.status());
    ctx = std::move(*opened);
  }
  nlohmann::ordered_json created = nlohmann::ordered_json::array();
  nlohmann::ordered_json problems = nlohmann::ordered_json::array();
  for (const daemon::CrontabProblem& p : parsed.problems) {
    problems.push_back({{"line", p.line}, {"text", p.text}, {"reason", p.reason}});
  }
  for (const daemon::CrontabJob& j : parsed.jobs) {
    if (args.dry_run) {
      created.push_back({{"line", j.line},
                         {"name", j.spec.name},
                         {"schedule", j.spec.schedule},
                         {"timezone", j.spec.time_zone},
                         {"config", nlohmann::ordered_json::parse(j.spec.driver_config)}});
      continue;
    }
    auto job = ctx->engine->CreateJob(j.spec, "api");
    if (!job.ok()) {
      problems.push_back(
          {{"line", j.line}, {"text", j.spec.description}, {"reason", job.status().message()}});
      continue;
    }
    created.push_back({{"line", j.line},
                       {"name", job->spec.name},
                       {"schedule", job->spec.schedule},
                       {"timezone", job->spec.time_zone},
                       {"next_run_at", TimeJson(job->next_run_at)}});
  }
  if (args.json) {
    std::cout << nlohmann::ordered_json{{"dry_run", args.dry_run},
                                        {"jobs", created},
                                        {"not_imported", problems}}
                     .dump(2)
              << "\n";
  } else {
    for (const auto& c : created) {
      std::cout << (args.dry_run ? "would create " : "created ") << c["name"].get<std::string>()
                << " (line " << c["line"].get<int>() << "): " << c["schedule"].get<std::string>()
                << " " << c["timezone"].get<std::string>() << "\n";
    }
    for (const auto& p : problems) {
      std::cerr << "sked: line " << p["line"].get<int>()
                << " not imported: " << p["reason"].get<std::string>() << "\n    "
                << p["text"].get<std::string>() << "\n";
    }
    std::cout << created.size() << " job(s) " << (args.dry_run ? "to create" : "created") << ", "
              << problems.size() << " line(s) not imported\n";
  }
  return problems.empty() ? kExitOk : kExitInvalidInput;
}

}  // namespace

void AddImportCommands(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ImportArgs>();
  CLI::App* import = app.add_subcommand("import", "import schedules from other tools");
  import->require_subcommand(1);
  CLI::App* crontab = import->add_subcommand("crontab", "a crontab file's lines as shell jobs");
  AddConfigFlag(crontab, &args->config);
  crontab->add_option("file", args->file, "crontab file ('-' for stdin)")->required();
  crontab->add_option("--tz", args->zone, "time zone of the schedules (default: the host's)");
  crontab->add_option("--prefix", args->prefix, "job names are PREFIX-LINE (crontab)");
  crontab->add_flag("--dry-run", args->dry_run, "show what would be created; change nothing");
  crontab->add_flag("--json", args->json, "print JSON");
  crontab->callback([args, exit_code] { *exit_code = ImportCrontab(*args); });
}

}  // namespace sked::cli
