// `sked cron next|validate|explain`: the cron engine from the command line.

#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "sked/cron.h"
#include "sked/schedule.h"
#include "sked/time.h"
#include "sked/time_zone.h"

namespace sked::cli {
namespace {

struct CronArgs {
  std::string expression;
  std::string zone = "UTC";
  std::string from;
  std::string min_interval;  // empty: the config's (default 1 minute)
  int count = 5;
  const bool& json = Globals().json;  // --json, before or after the command
};

Result<Instant> FromTime(const CronArgs& args) {
  if (args.from.empty()) {
    return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
  }
  auto parsed = ParseRfc3339(args.from);
  if (!parsed.ok()) return parsed.status().WithContext("--from");
  return parsed;
}

// Parses with no minimum interval: `next` and `explain` show any schedule.
Result<CronSchedule> ParseForDisplay(const CronArgs& args) {
  SKED_ASSIGN_OR_RETURN(TimeZone zone, TimeZone::Find(args.zone));
  return CronSchedule::Parse(args.expression, zone, std::chrono::seconds(0));
}

std::string LocalWallClock(Instant t, std::chrono::seconds offset) {
  std::string s = FormatRfc3339(t, offset);
  return s.substr(0, 19);
}

int RunNext(const CronArgs& args) {
  if (args.count < 1 || args.count > 10000) {
    return Fail(
        InvalidArgumentError("-n: count " + std::to_string(args.count) + " out of range 1-10000"));
  }
  auto from = FromTime(args);
  if (!from.ok()) return Fail(from.status());
  auto schedule = ParseForDisplay(args);
  if (!schedule.ok()) return Fail(schedule.status());
  const std::vector<Instant> fires = schedule->NextN(*from, args.count);
  const TimeZone& zone = schedule->time_zone();
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (Instant t : fires) {
      const std::chrono::seconds offset = zone.OffsetAt(t);
      out.push_back({{"utc", FormatRfc3339Utc(t)},
                     {"local", LocalWallClock(t, offset)},
                     {"offset", FormatUtcOffset(offset)}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    for (Instant t : fires) std::cout << zone.Format(t) << "\n";
  }
  if (fires.empty()) {
    std::cerr << "sked: no fire after " << zone.Format(*from) << " (the supported range ends in "
              << "2199)\n";
  }
  return kExitOk;
}

// The minimum interval the daemon applies: --min-interval, else the
// config's [scheduler] min_interval (whose default is 1 minute too).
Result<std::chrono::seconds> MinInterval(const CronArgs& args) {
  if (!args.min_interval.empty()) {
    auto d = ParseDuration(args.min_interval);
    if (!d.ok()) return d.status().WithContext("--min-interval");
    return std::chrono::duration_cast<std::chrono::seconds>(*d);
  }
  SKED_ASSIGN_OR_RETURN(
      daemon::Config config,
      daemon::LoadConfig(Globals().config.path, Globals().config.given, daemon::SkedEnvironment()));
  return config.engine.min_interval;
}

// Accepts every schedule form a job takes (cron, macros, `every 90s`,
// `at ...`), checked as `sked job add` checks it.
int RunValidate(const CronArgs& args) {
  auto min_interval = MinInterval(args);
  if (!min_interval.ok()) return Fail(min_interval.status());
  auto zone = TimeZone::Find(args.zone);
  if (!zone.ok()) return Fail(zone.status());
  auto from = FromTime(args);
  if (!from.ok()) return Fail(from.status());
  auto schedule = Schedule::Parse(args.expression, *zone, *min_interval, *from);
  if (!schedule.ok()) {
    // The argument is the schedule: its errors need no "schedule: " prefix.
    std::string message = schedule.status().message();
    if (message.rfind("schedule: ", 0) == 0) message.erase(0, 10);
    return Fail(Status(schedule.status().code(), message));
  }
  const std::optional<Instant> next = schedule->Next(*from);
  if (!next) {
    return Fail(InvalidArgumentError("schedule has no fire after " + zone->Format(*from)));
  }
  std::string summary = schedule->text();
  if (schedule->kind() == Schedule::Kind::kCron) {
    summary = CronSchedule::Parse(args.expression, *zone, std::chrono::seconds(0))->Describe();
  }
  std::cout << "valid: " << summary << " (" << zone->name() << "); next fire "
            << zone->Format(*next) << "\n";
  return kExitOk;
}

std::string WeekdayName(Instant t, std::chrono::seconds offset) {
  static constexpr const char* kNames[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  const auto day = std::chrono::floor<std::chrono::days>(t + offset);
  return kNames[std::chrono::weekday(std::chrono::sys_days(day)).c_encoding()];
}

int RunExplain(const CronArgs& args) {
  auto from = FromTime(args);
  if (!from.ok()) return Fail(from.status());
  auto schedule = ParseForDisplay(args);
  if (!schedule.ok()) return Fail(schedule.status());
  const TimeZone& zone = schedule->time_zone();
  const std::vector<Instant> fires = schedule->NextN(*from, 5);
  if (args.json) {
    nlohmann::json out;
    out["expression"] = schedule->expression();
    out["timezone"] = zone.name();
    out["description"] = schedule->Describe();
    out["kind"] = schedule->interval_like() ? "interval-like" : "fixed-time";
    const auto gap = schedule->min_gap();
    out["min_gap"] = gap ? nlohmann::json(FormatDuration(*gap)) : nlohmann::json(nullptr);
    nlohmann::json list = nlohmann::json::array();
    Instant prev = *from;
    for (Instant t : fires) {
      const std::chrono::seconds offset = zone.OffsetAt(t);
      list.push_back({{"utc", FormatRfc3339Utc(t)},
                      {"local", LocalWallClock(t, offset)},
                      {"offset", FormatUtcOffset(offset)},
                      {"dst_notes", DstNotes(schedule->time_zone(), &*schedule, prev, t)}});
      prev = t;
    }
    out["next"] = list;
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << schedule->expression() << " (" << zone.name() << ")\n";
  std::cout << "  " << schedule->Describe() << "\n";
  std::cout << "  " << (schedule->interval_like() ? "interval-like" : "fixed-time") << " schedule";
  if (const auto gap = schedule->min_gap()) {
    std::cout << "; fires at most every " << FormatDuration(*gap);
  }
  std::cout << "\n";
  std::cout << "next " << fires.size() << " fires:\n";
  Instant prev = *from;
  for (Instant t : fires) {
    const std::chrono::seconds offset = zone.OffsetAt(t);
    std::cout << "  " << zone.Format(t) << "  " << WeekdayName(t, offset) << " "
              << zone.AbbreviationAt(t) << "\n";
    for (const std::string& note : DstNotes(schedule->time_zone(), &*schedule, prev, t)) {
      std::cout << "      ! " << note << "\n";
    }
    prev = t;
  }
  return kExitOk;
}

}  // namespace

void AddCronCommands(CLI::App& app, int* exit_code) {
  CLI::App* cron = app.add_subcommand("cron", "Check cron expressions and preview their fires");
  cron->require_subcommand(1);
  auto args = std::make_shared<CronArgs>();

  auto add_common = [&](CLI::App* cmd) {
    cmd->add_option("expression", args->expression,
                    "Cron expression (5, 6 or 7 fields, or a macro such as @daily); quote it")
        ->required();
    cmd->add_option("--tz", args->zone, "IANA time zone the schedule runs in")->default_val("UTC");
  };

  CLI::App* next = cron->add_subcommand("next", "Print the next fires of an expression");
  add_common(next);
  next->add_option("-n", args->count, "How many fires to print (1-10000)")->default_val(5);
  next->add_option("--from", args->from, "Start after this RFC 3339 time (default: now)");
  next->callback([args, exit_code] { *exit_code = RunNext(*args); });

  CLI::App* validate = cron->add_subcommand(
      "validate", "Check an expression; exit 0 and print a summary if it is valid");
  add_common(validate);
  validate->add_option(
      "--min-interval", args->min_interval,
      "Reject schedules that fire more often than this (e.g. 1m, 30s; default: the "
      "config's [scheduler] min_interval, 1m unless set)");
  validate->add_option("--from", args->from, "Check for fires after this RFC 3339 time");
  validate->callback([args, exit_code] { *exit_code = RunValidate(*args); });

  CLI::App* explain = cron->add_subcommand(
      "explain", "Describe an expression in words and show its next 5 fires, flagging DST");
  add_common(explain);
  explain->add_option("--from", args->from, "Start after this RFC 3339 time (default: now)");
  explain->callback([args, exit_code] { *exit_code = RunExplain(*args); });
}

}  // namespace sked::cli
