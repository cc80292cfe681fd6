#include "daemon/crontab.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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
                                 "ct", "America/New_York");
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
  EXPECT_EQ(r.jobs[1].spec.schedule, "30 2 * * 1-5");
  EXPECT_EQ(nlohmann::json::parse(r.jobs[1].spec.driver_config)["command"],
            "echo \"weekday report\" | mail -s hi root");
  EXPECT_EQ(r.jobs[2].spec.schedule, "@daily");
  EXPECT_EQ(r.jobs[3].spec.time_zone, "Europe/Berlin");
}

TEST(CrontabTest, PercentSignsAreNewlinesAndStdin) {
  CrontabImport r = ParseCrontab("0 * * * * mail -s 100\\% root%line one%line two\n", "c", "UTC");
  ASSERT_EQ(r.jobs.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(r.jobs[0].spec.driver_config)["command"],
            "mail -s 100% root <<'SKED_STDIN'\nline one\nline two\nSKED_STDIN");
}

TEST(CrontabTest, UnsupportedAndMalformedLinesAreReported) {
  CrontabImport r = ParseCrontab(
      "@reboot /usr/bin/startup\nMAILTO=ops@example.com\n* * * cmd\n@hourly\n0 0 * * * ok\n", "c",
      "UTC");
  ASSERT_EQ(r.jobs.size(), 1u);
  EXPECT_EQ(r.jobs[0].line, 5);
  ASSERT_EQ(r.problems.size(), 4u);
  EXPECT_EQ(r.problems[0].line, 1);
  EXPECT_NE(r.problems[0].reason.find("@reboot is not supported"), std::string::npos);
  EXPECT_EQ(r.problems[1].line, 2);
  EXPECT_NE(r.problems[1].reason.find("MAILTO"), std::string::npos);
  EXPECT_EQ(r.problems[2].line, 3);
  EXPECT_EQ(r.problems[2].reason,
            "expected five time fields and a command, or an environment line");
  EXPECT_EQ(r.problems[3].line, 4);
  EXPECT_EQ(r.problems[3].text, "@hourly");
}

}  // namespace
}  // namespace sked::daemon
