// End-to-end tests of the `sked` binary: output, exit codes and messages.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

struct CommandResult {
  int exit_code;
  std::string out;  // stdout and stderr, in order written
};

// Runs `sked ARGS` through the shell; ARGS must be shell-quoted by the caller.
CommandResult Sked(const std::string& args) {
  const std::string command = std::string(SKED_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(CliTest, Version) {
  auto r = Sked("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("sked ", 0), 0u) << r.out;
}

TEST(CliTest, HelpListsCommands) {
  auto r = Sked("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("cron"), std::string::npos) << r.out;
  auto c = Sked("cron --help");
  EXPECT_EQ(c.exit_code, 0);
  EXPECT_NE(c.out.find("next"), std::string::npos);
  EXPECT_NE(c.out.find("validate"), std::string::npos);
  EXPECT_NE(c.out.find("explain"), std::string::npos);
}

TEST(CliTest, DriverListNamesEachDriverWithItsSchemaAndNeedsNoStore) {
  // The config is read (for its plugin folder); the store it names is not.
  const std::string config = std::filesystem::temp_directory_path() /
                             ("sked-cli-drivers-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(config) << "[store]\nurl = \"sqlite:///nonexistent/sked.db\"\n";
  auto r = Sked("driver list --json --config " + config);
  std::filesystem::remove(config);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  nlohmann::json drivers = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(drivers.is_array()) << r.out;
  std::vector<std::string> names;
  for (const nlohmann::json& d : drivers) {
    names.push_back(d["name"]);
    EXPECT_FALSE(d["description"].get<std::string>().empty());
    EXPECT_EQ(d["config_schema"]["type"], "object") << d.dump();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"http", "noop", "shell", "sleep"}));
  for (const nlohmann::json& d : drivers) EXPECT_TRUE(d["plugin"].is_null()) << d.dump();
  auto text = Sked("driver list");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("max_redirects"), std::string::npos) << text.out;
  // A config named on the command line must exist, as for every command.
  EXPECT_EQ(Sked("driver list --config /nonexistent/sked.toml").exit_code, 3);
}

TEST(CliTest, UsageErrorsExit2) {
  EXPECT_EQ(Sked("").exit_code, 2);
  EXPECT_EQ(Sked("frobnicate").exit_code, 2);
  EXPECT_EQ(Sked("cron next").exit_code, 2);
  EXPECT_EQ(Sked("cron next '* * * * *' --bogus").exit_code, 2);
}

TEST(CliTest, NextPrintsLocalRfc3339) {
  auto r = Sked("cron next '30 2 * * *' --tz America/New_York --from 2026-03-07T12:00:00Z -n 3");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out,
            "2026-03-08T03:00:00-04:00\n"
            "2026-03-09T02:30:00-04:00\n"
            "2026-03-10T02:30:00-04:00\n");
}

TEST(CliTest, NextDefaultsToFiveFiresFromNow) {
  auto r = Sked("cron next '@hourly'");
  EXPECT_EQ(r.exit_code, 0);
  int lines = 0;
  for (char c : r.out) lines += c == '\n';
  EXPECT_EQ(lines, 5) << r.out;
}

TEST(CliTest, NextJson) {
  auto r = Sked("cron next '0 0 * * *' --tz Asia/Kolkata --from 2026-01-01T00:00:00Z -n 1 --json");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out,
            "[\n"
            "  {\n"
            "    \"local\": \"2026-01-02T00:00:00\",\n"
            "    \"offset\": \"+05:30\",\n"
            "    \"utc\": \"2026-01-01T18:30:00Z\"\n"
            "  }\n"
            "]\n");
}

TEST(CliTest, NextRejectsBadInput) {
  auto r = Sked("cron next '0 0 * * *' --from yesterday");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.out.find("--from: invalid timestamp 'yesterday'"), std::string::npos) << r.out;
  EXPECT_EQ(Sked("cron next '0 0 * * *' -n 0").exit_code, 3);
  auto zone = Sked("cron next '0 0 * * *' --tz Mars/Olympus");
  EXPECT_EQ(zone.exit_code, 3);
  EXPECT_NE(zone.out.find("unknown time zone 'Mars/Olympus'"), std::string::npos);
}

TEST(CliTest, ValidateAcceptsAndSummarizes) {
  auto r = Sked("cron validate '30 9 * * 1-5' --tz Europe/Berlin --from 2026-01-01T00:00:00Z");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out,
            "valid: at 09:30 on Monday through Friday (Europe/Berlin); next fire "
            "2026-01-01T09:30:00+01:00\n");
}

TEST(CliTest, ValidateRejectsWithTheParserMessage) {
  auto r = Sked("cron validate '30 25 * * *'");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "sked: field 'hour': value 25 out of range 0-23 at column 4\n");
  auto never = Sked("cron validate '0 0 30 2 *'");
  EXPECT_EQ(never.exit_code, 3);
  EXPECT_EQ(never.out,
            "sked: expression never fires: day-of-month 30 does not occur in February\n");
  auto past = Sked("cron validate '0 0 0 1 1 * 2020'");
  EXPECT_EQ(past.exit_code, 3);
  EXPECT_NE(past.out.find("no fire after"), std::string::npos);
}

TEST(CliTest, ValidateMinInterval) {
  auto r = Sked("cron validate '0,1 * * * *' --min-interval 2m");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out,
            "sked: expression fires as often as every 1m, more often than the minimum interval "
            "of 2m\n");
  EXPECT_EQ(Sked("cron validate '* * * * * *'").exit_code, 3);  // default minimum 1m
  EXPECT_EQ(Sked("cron validate '* * * * * *' --min-interval 1s").exit_code, 0);
  auto bad = Sked("cron validate '* * * * *' --min-interval soon");
  EXPECT_EQ(bad.exit_code, 3);
  EXPECT_NE(bad.out.find("--min-interval: invalid duration 'soon'"), std::string::npos);
}

TEST(CliTest, ExplainFlagsDst) {
  auto r = Sked("cron explain '30 2 * * *' --tz America/New_York --from 2026-03-06T12:00:00Z");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out,
            "30 2 * * * (America/New_York)\n"
            "  at 02:30\n"
            "  fixed-time schedule; fires at most every 1d\n"
            "next 5 fires:\n"
            "  2026-03-07T02:30:00-05:00  Sat EST\n"
            "  2026-03-08T03:00:00-04:00  Sun EDT\n"
            "      ! DST: clocks jumped forward from 02:00 to 03:00 (-05:00 -> -04:00) before "
            "this fire\n"
            "      ! its local time was skipped by the jump, so it fires at the first instant "
            "after the gap\n"
            "  2026-03-09T02:30:00-04:00  Mon EDT\n"
            "  2026-03-10T02:30:00-04:00  Tue EDT\n"
            "  2026-03-11T02:30:00-04:00  Wed EDT\n");
}

TEST(CliTest, ExplainFlagsRepeatedHour) {
  auto r = Sked("cron explain '*/30 * * * *' --tz America/New_York --from 2026-11-01T05:10:00Z");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("2026-11-01T01:00:00-05:00  Sun EST\n"
                       "      ! DST: clocks fell back from 02:00 to 01:00 (-04:00 -> -05:00) "
                       "before this fire\n"
                       "      ! second pass of a repeated local time"),
            std::string::npos)
      << r.out;
}

TEST(CliTest, ExplainJson) {
  auto r = Sked("cron explain '@hourly' --from 2026-01-01T00:00:00Z --json");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("\"kind\": \"interval-like\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"utc\": \"2026-01-01T01:00:00Z\""), std::string::npos);
  EXPECT_NE(r.out.find("\"min_gap\": \"1h\""), std::string::npos);
}

}  // namespace
