#include "daemon/crontab.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "drivers/builtin_drivers.h"
#include "sked/driver.h"

namespace sked::daemon {
namespace {

TEST(CrontabTest, LinesBecomeShellJobs) {
  CrontabImport r = ParseCrontab(R"(# m h dom mon dow command
SHELL=/bin/bash
PATH = "/usr/local/bin:/usr/bin:/bin"

*/5 * * * * /usr/bin/backup --quick
30 2 * * 1-5   echo "weekday report" | mail -s hi root
@daily  /usr/sbin/logrotate /etc/logrotate.conf
CRON_TZ=Europe/Berlin
0 9 * * * echo guten morgen
)",
                                 {.prefix = "ct", .zone = "America/New_York"});
  EXPECT_TRUE(r.problems.empty());
  ASSERT_EQ(r.jobs.size(), 4u);
  EXPECT_EQ(r.jobs[0].line, 5);
  EXPECT_EQ(r.jobs[0].spec.name, "ct-5");
  EXPECT_EQ(r.jobs[0].spec.schedule, "*/5 * * * *");
  EXPECT_EQ(r.jobs[0].spec.time_zone, "America/New_York");
  EXPECT_EQ(r.jobs[0].spec.driver, "shell");
  const auto config = nlohmann::json::parse(r.jobs[0].spec.driver_config);
  EXPECT_EQ(config["command"], "/usr/bin/backup --quick");
  EXPECT_EQ(config["env"]["PATH"], "/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(config["env"]["SHELL"], "/bin/bash");
  EXPECT_EQ(config["shell"], "/bin/bash");  // SHELL runs the commands, not only their environment
  EXPECT_EQ(r.jobs[1].spec.schedule, "30 2 * * 1-5");
  EXPECT_EQ(nlohmann::json::parse(r.jobs[1].spec.driver_config)["command"],
            "echo \"weekday report\" | mail -s hi root");
  EXPECT_EQ(r.jobs[2].spec.schedule, "@daily");
  EXPECT_EQ(r.jobs[3].spec.time_zone, "Europe/Berlin");
}

TEST(CrontabTest, PercentSignsAreNewlinesAndStdin) {
  CrontabImport r =
      ParseCrontab("0 * * * * mail -s 100\\% root%line one%line two%50\\%\n", {.prefix = "c"});
  ASSERT_EQ(r.jobs.size(), 1u);
  const auto config = nlohmann::json::parse(r.jobs[0].spec.driver_config);
  EXPECT_EQ(config["command"], "mail -s 100% root");
  EXPECT_EQ(config["stdin"], "line one\nline two\n50%\n");
  EXPECT_FALSE(config.contains("shell"));
  // No `%`: no stdin key at all (the command reads /dev/null).
  EXPECT_FALSE(
      nlohmann::json::parse(ParseCrontab("0 * * * * date\n", {}).jobs[0].spec.driver_config)
          .contains("stdin"));
}

// Text after `%` is input, never shell code, whatever precedes it: it once
// became a here-document after a comment, and ran as a command.
TEST(CrontabTest, TextAfterPercentNeverRunsAsACommand) {
  const std::string marker = "/tmp/sked-crontab-injected-" + std::to_string(::getpid());
  std::remove(marker.c_str());
  for (const std::string& line :
       {"0 * * * * echo hi # note %touch " + marker, "0 * * * * echo hi %touch " + marker,
        "0 * * * * echo hi; cat # %touch " + marker + "%x"}) {
    CrontabImport r = ParseCrontab(line + "\n", {});
    ASSERT_EQ(r.jobs.size(), 1u) << line;
    auto driver = drivers::NewShellDriver();
    RunContext ctx;
    ctx.config = r.jobs[0].spec.driver_config;
    ctx.clock = Clock::Real();
    ASSERT_TRUE(driver->Validate(ctx.config).ok()) << ctx.config;
    DriverResult result = driver->Execute(ctx, {});
    EXPECT_EQ(result.status, RunStatus::kSucceeded) << result.error;
    EXPECT_EQ(result.output.substr(0, 3), "hi\n") << line;
    EXPECT_NE(access(marker.c_str(), F_OK), 0) << line << " ran the text after %";
    std::remove(marker.c_str());
  }
}

TEST(CrontabTest, SystemCrontabsHaveAUserColumn) {
  const std::string text =
      "SHELL=/bin/bash\n0 0 * * * root /usr/sbin/cleanup%in\n@daily www-data php cron.php\n"
      "5 4 * * * bad;user rm -rf /\n";
  CrontabImport as_root = ParseCrontab(text, {.system = true, .current_user = "root"});
  ASSERT_EQ(as_root.jobs.size(), 2u);
  ASSERT_EQ(as_root.problems.size(), 1u);
  EXPECT_EQ(as_root.problems[0].reason, "'bad;user' is not a user name");
  auto root_job = nlohmann::json::parse(as_root.jobs[0].spec.driver_config);
  EXPECT_EQ(as_root.jobs[0].spec.schedule, "0 0 * * *");
  EXPECT_EQ(root_job["command"], "/usr/sbin/cleanup");
  EXPECT_EQ(root_job["shell"], "/bin/bash");
  EXPECT_EQ(root_job["stdin"], "in\n");
  auto www = nlohmann::json::parse(as_root.jobs[1].spec.driver_config);
  EXPECT_EQ(as_root.jobs[1].spec.schedule, "@daily");
  EXPECT_EQ(www["argv"],
            nlohmann::json({"runuser", "-u", "www-data", "--", "/bin/bash", "-c", "php cron.php"}));
  CrontabImport as_alice = ParseCrontab(text, {.system = true, .current_user = "alice"});
  ASSERT_EQ(as_alice.jobs.size(), 0u);
  EXPECT_EQ(as_alice.problems[0].reason,
            "runs as user 'root', but sked runs commands as 'alice' (only a sked running as root "
            "can run them as another user)");
}

TEST(CrontabTest, UnsupportedAndMalformedLinesAreReported) {
  CrontabImport r = ParseCrontab(
      "@reboot /usr/bin/startup\nMAILTO=ops@example.com\n* * * cmd\n@hourly\n0 0 * * * ok\n",
      {.prefix = "c"});
  ASSERT_EQ(r.jobs.size(), 1u);
  EXPECT_EQ(r.jobs[0].line, 5);
  ASSERT_EQ(r.problems.size(), 4u);
  EXPECT_EQ(r.problems[0].line, 1);
  EXPECT_NE(r.problems[0].reason.find("@reboot is not supported"), std::string::npos);
  EXPECT_EQ(r.problems[1].line, 2);
  EXPECT_EQ(r.problems[1].reason, "MAILTO not imported (no notifications yet)");
  EXPECT_EQ(r.problems[2].line, 3);
  EXPECT_EQ(r.problems[2].reason,
            "expected five time fields and a command, or an environment line");
  EXPECT_EQ(r.problems[3].line, 4);
  EXPECT_EQ(r.problems[3].text, "@hourly");
}

}  // namespace
}  // namespace sked::daemon
