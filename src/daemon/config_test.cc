#include "daemon/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

namespace sked::daemon {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

// The example from the daemon issue and docs/configuration.md, verbatim.
const char* kExample = R"(
[store]
url = "sqlite://sked.db"          # relative to the config file's folder

[scheduler]
workers = 8
min_interval = "1s"               # minimum gap between fires a schedule may have (default 1m)
shutdown_grace = "5s"

[retention]
max_age = "30d"                   # run history older than this is deleted (default 90d)

[[job]]
name = "heartbeat"
schedule = "* * * * * *"
timezone = "UTC"
driver = "shell"
config = { command = "echo alive" }
retention = { max_runs = 100 }    # 86,400 runs a day: keep the newest 100 (and 10 failures)

[[job]]
name = "nightly-report"
schedule = "30 2 * * *"
timezone = "Europe/Berlin"
driver = "shell"
config = { argv = ["/usr/bin/env", "python3", "report.py"], cwd = "/srv/reports" }
timeout = "10m"
overlap = "skip"                  # skip | queue | concurrent | replace
retry = { max = 2, backoff = "30s", multiplier = 2.0, max_backoff = "10m" }
)";

Result<Config> Parse(const std::string& text, const std::map<std::string, std::string>& env = {}) {
  return ParseConfig(text, "sked.toml", "/etc/sked", env);
}

std::string Error(const std::string& text, const std::map<std::string, std::string>& env = {}) {
  auto c = Parse(text, env);
  EXPECT_FALSE(c.ok());
  return c.ok() ? "" : c.status().message();
}

TEST(ConfigTest, TheDocumentedExampleWorksAsWritten) {
  auto c = Parse(kExample);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->store_url, "sqlite:///etc/sked/sked.db");
  EXPECT_EQ(c->engine.workers, 8);
  EXPECT_EQ(c->engine.min_interval, seconds(1));
  EXPECT_EQ(c->engine.shutdown_grace, seconds(5));
  ASSERT_EQ(c->jobs.size(), 2u);
  const JobSpec& hb = c->jobs[0];
  EXPECT_EQ(hb.name, "heartbeat");
  EXPECT_EQ(hb.schedule, "* * * * * *");
  EXPECT_EQ(hb.driver, "shell");
  EXPECT_EQ(nlohmann::json::parse(hb.driver_config), nlohmann::json({{"command", "echo alive"}}));
  EXPECT_EQ(hb.retention.max_runs, 100);
  EXPECT_EQ(c->retention.policy.max_age, std::chrono::hours(24 * 30));
  const JobSpec& nr = c->jobs[1];
  EXPECT_EQ(nr.time_zone, "Europe/Berlin");
  EXPECT_EQ(nlohmann::json::parse(nr.driver_config),
            nlohmann::json::parse(
                R"({"argv": ["/usr/bin/env", "python3", "report.py"], "cwd": "/srv/reports"})"));
  EXPECT_EQ(*nr.timeout, minutes(10));
  EXPECT_EQ(nr.overlap, OverlapPolicy::kSkip);
  EXPECT_EQ(nr.retry.max_retries, 2);
  EXPECT_EQ(nr.retry.backoff, seconds(30));
  EXPECT_EQ(nr.retry.multiplier, 2.0);
  EXPECT_EQ(nr.retry.max_backoff, minutes(10));
}

TEST(ConfigTest, DefaultsWhenEmpty) {
  auto c = Parse("");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->store_url, "sqlite:///etc/sked/sked.db");  // beside the config file
  EXPECT_EQ(c->engine.workers, EngineOptions().workers);
  EXPECT_EQ(c->engine.min_interval, seconds(60));  // as EngineOptions and cron validate
  EXPECT_EQ(c->log_level, LogLevel::kInfo);
  EXPECT_EQ(c->log_format, LogFormat::kText);
  EXPECT_TRUE(c->jobs.empty());
}

TEST(ConfigTest, AbsoluteAndMemoryStoreUrlsAreKept) {
  EXPECT_EQ(Parse("[store]\nurl = \"sqlite:///var/lib/sked.db\"")->store_url,
            "sqlite:///var/lib/sked.db");
  EXPECT_EQ(Parse("[store]\nurl = \"sqlite::memory:\"")->store_url, "sqlite::memory:");
}

TEST(ConfigTest, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(Error("[scheduler]\nworkers = 8\nworkerz = 9\n"),
            "sked.toml:3: scheduler.workerz: unknown key (known: claim_ahead, default_timeout, "
            "heartbeat, instance_id, lease, max_catchup_runs, metrics_max_jobs, min_interval, "
            "misfire_threshold, "
            "poll_interval, shutdown_grace, workers)");
  EXPECT_EQ(Error("[scheduler]\nworkers = \"eight\"\n"),
            "sked.toml:2: scheduler.workers: must be an integer from 1 to 4096");
  EXPECT_EQ(Error("[scheduler]\nworkers = 0\n"),
            "sked.toml:2: scheduler.workers: must be an integer from 1 to 4096, got 0");
  EXPECT_EQ(Error("[scheduler]\nshutdown_grace = \"5 parsecs\"\n")
                .rfind("sked.toml:2: scheduler.shutdown_grace: ", 0),
            0u);
  EXPECT_EQ(Error("[log]\nlevel = \"loud\"\n"),
            "sked.toml:2: log.level: must be one of debug, info, warn, error, got 'loud'");
  EXPECT_EQ(Error("[storage]\nurl = \"x\"\n"),
            "sked.toml:1: storage: unknown section (known: store, scheduler, log, server, notify, "
            "channel, retention, drivers, job)");
  EXPECT_EQ(Error("[scheduler]\nworkers = 8\n[scheduler\n").rfind("sked.toml:3: ", 0), 0u);
}

TEST(ConfigTest, RetentionHasDefaultsAndEachKeyIsChecked) {
  auto defaults = Parse("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->retention.policy.max_age, std::chrono::hours(24 * 90));
  EXPECT_EQ(defaults->retention.policy.max_runs, 1000);
  EXPECT_EQ(defaults->retention.policy.keep_failures, 10);
  EXPECT_EQ(defaults->engine.max_output_bytes, 1 << 20);
  auto c = Parse(R"([retention]
max_age = "7d"
max_runs = 50
keep_failures = 0
max_output = 4096
every = "1m"
batch = 100
[[job]]
name = "audit"
schedule = "@daily"
driver = "noop"
retention = { max_age = "0s", max_runs = 5 }
)",
                 {{"SKED_RETENTION_BATCH", "200"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->retention.policy.max_age, std::chrono::hours(24 * 7));
  EXPECT_EQ(c->retention.policy.max_runs, 50);
  EXPECT_EQ(c->retention.policy.keep_failures, 0);
  EXPECT_EQ(c->engine.max_output_bytes, 4096);
  EXPECT_EQ(c->retention.every, std::chrono::minutes(1));
  EXPECT_EQ(c->retention.batch, 200) << "the environment overrides the file";
  ASSERT_EQ(c->jobs.size(), 1u);
  EXPECT_EQ(c->jobs[0].retention.max_age, Duration(0));
  EXPECT_EQ(c->jobs[0].retention.max_runs, 5);
  EXPECT_FALSE(c->jobs[0].retention.keep_failures);

  EXPECT_EQ(Error("[retention]\nmax_runs = -1\n"),
            "sked.toml:2: retention.max_runs: must be an integer from 0 to 100000000, got -1");
  EXPECT_EQ(
      Error("[retention]\nmax_age = \"forever\"\n").rfind("sked.toml:2: retention.max_age: ", 0),
      0u);
  EXPECT_EQ(Error("[retention]\nkeep = 3\n").rfind("sked.toml:2: retention.keep: unknown key", 0),
            0u);
  EXPECT_EQ(Error("[[job]]\nname = \"a\"\nschedule = \"@daily\"\ndriver = \"noop\"\n"
                  "retention = { keep_failures = \"all\" }\n")
                .rfind("sked.toml:5: job[0].retention.keep_failures: ", 0),
            0u);
  EXPECT_EQ(Error("[[job]]\nname = \"a\"\nschedule = \"@daily\"\ndriver = \"noop\"\n"
                  "retention = 3\n"),
            "sked.toml:5: job[0].retention: must be a table");
}

TEST(ConfigTest, PluginDirIsResolvedAgainstTheConfigsFolder) {
  EXPECT_EQ(Parse("")->plugin_dir, "");  // no plugins unless asked
  EXPECT_EQ(Parse("[drivers]\nplugin_dir = \"plugins\"\n")->plugin_dir, "/etc/sked/plugins");
  EXPECT_EQ(Parse("[drivers]\nplugin_dir = \"/usr/lib/sked\"\n")->plugin_dir, "/usr/lib/sked");
  // The environment's stays as given (relative to the working directory).
  EXPECT_EQ(Parse("[drivers]\nplugin_dir = \"plugins\"\n", {{"SKED_DRIVERS_PLUGIN_DIR", "p2"}})
                ->plugin_dir,
            "p2");
  EXPECT_EQ(Error("[drivers]\nplugin_dir = \"\"\n"),
            "sked.toml:2: drivers.plugin_dir: must not be empty");
  EXPECT_EQ(Error("[drivers]\nplugin_dir = 3\n").rfind("sked.toml:2: drivers.plugin_dir: ", 0), 0u);
  EXPECT_EQ(
      Error("[drivers]\nplugins = \"x\"\n").rfind("sked.toml:2: drivers.plugins: unknown key", 0),
      0u);
}

TEST(ConfigTest, ServerIsOffUnlessListenIsSetAndItsKeysAreChecked) {
  auto off = Parse("");
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(off->server.listen.empty());
  EXPECT_FALSE(off->server.metrics_auth);
  EXPECT_TRUE(off->server.dashboard);
  auto on = Parse(
      "[server]\nlisten = \"127.0.0.1:8080\"\nmax_body_bytes = 65536\nread_timeout = \"5s\"\n"
      "threads = 4\nmax_streams = 2\nmetrics_auth = true\ndashboard = false\n");
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  EXPECT_EQ(on->server.listen, "127.0.0.1:8080");
  EXPECT_EQ(on->server.max_body_bytes, 65536u);
  EXPECT_EQ(on->server.read_timeout, seconds(5));
  EXPECT_EQ(on->server.threads, 4);
  EXPECT_TRUE(on->server.metrics_auth);
  EXPECT_FALSE(on->server.dashboard);
  EXPECT_EQ(Parse("[server]\nlisten = \"[::1]:0\"\n")->server.listen, "[::1]:0");
  EXPECT_EQ(
      Error("[server]\nlisten = \"localhost\"\n"),
      "sked.toml:2: server.listen: expected HOST:PORT such as \"127.0.0.1:8080\" (or \"\" for "
      "no server), got 'localhost'");
  EXPECT_EQ(
      Error("[server]\nlisten = \"127.0.0.1:99999\"\n").rfind("sked.toml:2: server.listen", 0), 0u);
  EXPECT_EQ(Error("[server]\nlisten = \"127.0.0.1:80\"\ntls_cert = \"c.pem\"\n"),
            "sked.toml: server.tls_cert and server.tls_key go together (HTTPS needs both files)");
  EXPECT_EQ(Error("[server]\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n")
                .rfind("sked.toml: server TLS file '/nonexistent/c.pem' cannot be read", 0),
            0u);
  EXPECT_EQ(Error("[server]\nthreads = 4\nmax_streams = 4\n"),
            "sked.toml: server.max_streams (4) must be less than server.threads (4): each open "
            "stream holds a thread");
  EXPECT_EQ(Error("[server]\nport = 80\n").rfind("sked.toml:2: server.port: unknown key", 0), 0u);
  EXPECT_EQ(Parse("", {{"SKED_SERVER_LISTEN", "127.0.0.1:9090"}})->server.listen, "127.0.0.1:9090");
}

TEST(ConfigTest, NotifyAndChannelsAreCheckedWhereTheyEnter) {
  const std::string secret_file = ::testing::TempDir() + "/sked-hook-secret";
  {
    std::ofstream out(secret_file);
    out << "from-a-file\n";
  }
  auto c = Parse(R"(
[notify]
on = ["retries_exhausted", "recovered"]
channels = ["hook"]
max_attempts = 7
backoff = "5s"
realert = "30m"
keep = "7d"
[[channel]]
name = "hook"
type = "webhook"
url = "https://hooks.example.test/sked"
secret_env = "HOOK_SECRET"
headers = { "X-Team" = "infra" }
timeout = "3s"
[[channel]]
name = "filed"
type = "webhook"
url = "http://127.0.0.1:9/x"
secret_file = ")" + secret_file +
                     R"("
[[channel]]
name = "script"
type = "command"
command = ["/usr/local/bin/page", "--json"]
[[job]]
name = "a"
schedule = "* * * * *"
driver = "noop"
notify = { on = ["failed"], channels = ["script"] }
)",
                 {{"HOOK_SECRET", "s3cret"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->notify.defaults.on, (std::vector<std::string>{"retries_exhausted", "recovered"}));
  EXPECT_EQ(c->store.notify.channels, std::vector<std::string>{"hook"}) << "the store's defaults";
  EXPECT_EQ(c->notify.max_attempts, 7);
  EXPECT_EQ(c->store.notify.realert, std::chrono::minutes(30));
  EXPECT_EQ(c->notify.keep, std::chrono::hours(24 * 7));
  ASSERT_EQ(c->notify.channels.size(), 3u);
  EXPECT_EQ(c->notify.channels[0].secret, "s3cret");
  EXPECT_EQ(c->notify.channels[0].timeout, std::chrono::seconds(3));
  EXPECT_EQ(c->notify.channels[1].secret, "from-a-file");
  EXPECT_EQ(c->notify.channels[2].command,
            (std::vector<std::string>{"/usr/local/bin/page", "--json"}));
  EXPECT_EQ(c->jobs[0].notify.channels, std::vector<std::string>{"script"});

  const std::string hook = "[[channel]]\nname = \"hook\"\ntype = \"webhook\"\n";
  EXPECT_EQ(Error("[notify]\nchannels = [\"pager\"]\n"),
            "sked.toml: notify.channels names 'pager', which no [[channel]] declares");
  EXPECT_EQ(Error("[[job]]\nname = \"a\"\nschedule = \"* * * * *\"\ndriver = \"noop\"\n"
                  "notify = { channels = [\"pager\"] }\n"),
            "sked.toml: job 'a': notify.channels names 'pager', which no [[channel]] declares");
  EXPECT_EQ(Error("[[job]]\nname = \"a\"\nschedule = \"* * * * *\"\ndriver = \"noop\"\n"
                  "notify = { on = [\"exploded\"] }\n")
                .rfind("sked.toml:5: job[0].notify: notify.on: unknown notification event "
                       "'exploded'",
                       0),
            0u);
  EXPECT_EQ(Error(hook + "url = \"ftp://x/y\"\n"),
            "sked.toml:4: channel[0].url: must be an http:// or https:// URL");
  EXPECT_EQ(Error(hook + "url = \"https://x/y\"\nsecret_env = \"NOT_SET_ANYWHERE_42\"\n"),
            "sked.toml:5: channel[0].secret_env: environment variable 'NOT_SET_ANYWHERE_42' is "
            "not set");
  EXPECT_EQ(
      Error(hook + "url = \"https://x/y\"\nheaders = { \"X-A\" = \"1\\r\\nX-Injected: 2\" }\n")
          .rfind("sked.toml:5: channel[0].headers: header 'X-A'", 0),
      0u);
  EXPECT_EQ(Error(hook), "sked.toml:1: channel[0]: a webhook channel needs url");
  EXPECT_EQ(Error(hook + "url = \"https://x/y\"\ncommand = [\"x\"]\n"),
            "sked.toml:1: channel[0]: key 'command' does not apply to a webhook channel");
  EXPECT_EQ(Error("[[channel]]\nname = \"<b>\"\ntype = \"log\"\n"),
            "sked.toml:1: channel[0]: name '<b>': 1-64 letters, digits, '.', '_' or '-'");
  EXPECT_EQ(Error("[[channel]]\nname = \"x\"\ntype = \"pigeon\"\n"),
            "sked.toml:3: channel[0].type: must be one of webhook, email, command, log, got "
            "'pigeon'");
  const std::string mail = "[[channel]]\nname = \"m\"\ntype = \"email\"\n";
  EXPECT_EQ(Error(mail + "url = \"smtp://x\"\nfrom = \"a@b\"\nto = [\"ops@x\\r\\nBcc: evil@x\"]\n"),
            "sked.toml:6: channel[0].to: 'ops@x\r\nBcc: evil@x' is not an address");
  EXPECT_EQ(Error(mail + "url = \"http://x\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n"),
            "sked.toml:4: channel[0].url: must be an smtp:// or smtps:// URL");
  EXPECT_EQ(Error(mail + "url = \"smtp://x\"\n"),
            "sked.toml:1: channel[0]: an email channel needs url, from and to");
  EXPECT_EQ(Error(mail + "url = \"smtp://x\"\nfrom = \"a@b\"\nto = [\"c@d\"]\nusername = \"u\"\n"),
            "sked.toml:1: channel[0]: username and password_env (or password_file) go together");
  auto mailed =
      Parse(mail +
                "url = \"smtps://mail.example.test\"\nfrom = \"sked@example.test\"\n"
                "to = [\"ops@example.test\"]\nusername = \"sked\"\npassword_env = \"PW\"\n",
            {{"PW", "pw"}});
  ASSERT_TRUE(mailed.ok()) << mailed.status().ToString();
  EXPECT_EQ(mailed->notify.channels[0].tls, "implicit");
  EXPECT_EQ(mailed->notify.channels[0].password, "pw");
  EXPECT_EQ(Error("[[channel]]\nname = \"x\"\ntype = \"log\"\n[[channel]]\nname = \"x\"\n"
                  "type = \"log\"\n"),
            "sked.toml:4: channel[1]: channel name 'x' is declared twice");
  EXPECT_EQ(Error("[[channel]]\nname = \"x\"\ntype = \"command\"\n"),
            "sked.toml:1: channel[0]: a command channel needs command = [\"program\", ...]");
}

TEST(ConfigTest, JobErrorsNameTheJobTable) {
  EXPECT_EQ(Error("[[job]]\nname = \"a\"\nschedule = \"* * * * *\"\n"),
            "sked.toml:1: job[0]: missing required key 'driver'");
  EXPECT_EQ(Error("[[job]]\nname = \"a\"\nschedule = \"* * * * *\"\ndriver = \"noop\"\n"
                  "overlap = \"sometimes\"\n"),
            "sked.toml:5: job[0].overlap: must be one of skip, queue, concurrent, replace, got "
            "'sometimes'");
  EXPECT_EQ(Error("[[job]]\nname = \"a\"\nschedule = \"* * * * *\"\ndriver = \"noop\"\n"
                  "retry = { max = 2, tries = 3 }\n")
                .rfind("sked.toml:5: job[0].retry.tries: unknown key", 0),
            0u);
  EXPECT_EQ(Error("[[job]]\nname = \"a\"\nschedule = \"* * * * *\"\ndriver = \"noop\"\n"
                  "[[job]]\nname = \"a\"\nschedule = \"* * * * *\"\ndriver = \"noop\"\n"),
            "sked.toml:5: job[1]: job name 'a' is declared twice");
  EXPECT_EQ(Error("[[job]]\nname = \"a\"\nschedule = \"* * * * *\"\ndriver = \"noop\"\n"
                  "start_at = 2026-01-01T00:00:00\n"),
            "sked.toml:5: job[0].start_at: needs a UTC offset (e.g. 2026-12-01T09:00:00Z or "
            "+01:00)");
  EXPECT_EQ(Error("[[job]]\nname = \"a\"\nschedule = \"* * * * *\"\ndriver = \"noop\"\n"
                  "overrun_factor = 0.5\n"),
            "sked.toml:5: job[0].overrun_factor: must be a number from 1.1 to 100");
}

TEST(ConfigTest, JobFieldsAndAliases) {
  auto c = Parse(R"(
[[job]]
name = "all"
description = "every field"
schedule = "every 90s"
time_zone = "Asia/Tokyo"
driver = "sleep"
config = { duration = "1s", nested = { list = [1, 2.5, true] } }
start_at = 2026-12-01T09:00:00+09:00
end_at = "2027-01-01T00:00:00Z"
overlap = "concurrent"
max_concurrent = 3
misfire = "run_all"
catchup_window = "2h"
starting_deadline = "30s"
priority = 7
retry = { max = 1, on = ["timed_out"], jitter = 0.0 }
tags = ["a", "b"]
paused = true
overrun_factor = 2.5
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const JobSpec& j = c->jobs[0];
  EXPECT_EQ(j.time_zone, "Asia/Tokyo");
  EXPECT_EQ(nlohmann::json::parse(j.driver_config)["nested"]["list"][1], 2.5);
  EXPECT_EQ(FormatRfc3339Utc(*j.start_at), "2026-12-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339Utc(*j.end_at), "2027-01-01T00:00:00Z");
  EXPECT_EQ(j.overlap, OverlapPolicy::kConcurrent);
  EXPECT_EQ(j.max_concurrent, 3);
  EXPECT_EQ(j.misfire, MisfirePolicy::kRunAll);
  EXPECT_EQ(j.catchup_window, std::chrono::hours(2));
  EXPECT_EQ(*j.starting_deadline, seconds(30));
  EXPECT_EQ(j.priority, 7);
  EXPECT_FALSE(j.retry.on_failed);
  EXPECT_TRUE(j.retry.on_timed_out);
  EXPECT_EQ(j.tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(j.paused);
  EXPECT_EQ(j.overrun_factor, 2.5);
}

TEST(ConfigTest, EnvironmentOverridesTheFile) {
  auto c = Parse(kExample, {{"SKED_SCHEDULER_WORKERS", "3"},
                            {"SKED_STORE_URL", "sqlite:///tmp/other.db"},
                            {"SKED_LOG_FORMAT", "json"},
                            {"SKED_UNRELATED", "x"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->engine.workers, 3);
  EXPECT_EQ(c->store_url, "sqlite:///tmp/other.db");
  EXPECT_EQ(c->log_format, LogFormat::kJson);
  EXPECT_EQ(Error("", {{"SKED_SCHEDULER_WORKERS", "many"}}),
            "environment SKED_SCHEDULER_WORKERS: must be an integer from 1 to 4096, got 'many'");
  EXPECT_EQ(Error("", {{"SKED_SCHEDULER_WORKRS", "2"}}),
            "environment SKED_SCHEDULER_WORKRS: no key scheduler.workrs");
}

TEST(ConfigTest, HeartbeatMustBeShorterThanTheLease) {
  EXPECT_EQ(Error("[scheduler]\nlease = \"5s\"\nheartbeat = \"5s\"\n"),
            "sked.toml: scheduler.heartbeat (5s) must be shorter than scheduler.lease (5s)");
}

TEST(ConfigTest, MissingFile) {
  auto must = LoadConfig("/nonexistent/sked.toml", true, {});
  ASSERT_FALSE(must.ok());
  EXPECT_EQ(must.status().message().rfind("config file '/nonexistent/sked.toml' cannot be read", 0),
            0u);
  auto optional = LoadConfig("/nonexistent/sked.toml", false, {});
  ASSERT_TRUE(optional.ok());
  EXPECT_EQ(optional->store_url, "sqlite://sked.db");
}

}  // namespace
}  // namespace sked::daemon
