// End-to-end tests of `sked serve` with the real binary: a temp config and
// SQLite file, management commands from second processes, signals. Every wait
// is on a condition with a bounded timeout.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct Output {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Microseconds since the epoch of "2026-11-27T16:46:40.000Z".
std::int64_t ToUnixMicros(const std::string& rfc3339) {
  std::tm tm{};
  strptime(rfc3339.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  const std::int64_t whole = timegm(&tm);
  const std::int64_t millis = rfc3339.size() >= 23 ? std::stoll(rfc3339.substr(20, 3)) : 0;
  return whole * 1000000 + millis * 1000;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sked-e2e-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_ = (dir_ / "sked.toml").string();
  }
  void TearDown() override {
    if (serve_pid_ > 0) {
      kill(serve_pid_, SIGKILL);
      waitpid(serve_pid_, nullptr, 0);
    }
    if (HasFailure() && std::filesystem::exists(dir_ / "serve.log")) {
      std::printf("serve.log:\n%s\n", ReadFile((dir_ / "serve.log").string()).c_str());
    }
    std::filesystem::remove_all(dir_);
  }

  void WriteConfig(const std::string& text) { std::ofstream(config_) << text; }

  // `sked ARGS --config <the temp config>`, its stdout and stderr apart.
  Output Sked(const std::vector<std::string>& args, bool with_config = true) {
    std::string command = SKED_BINARY;
    for (const std::string& a : args) command += " " + Quote(a);
    if (with_config) command += " --config " + Quote(config_);
    const std::string err_path = (dir_ / "stderr.txt").string();
    command += " 2>" + Quote(err_path);
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return {-1, "", "popen failed"};
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
    const int status = pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, ReadFile(err_path)};
  }

  json SkedJson(const std::vector<std::string>& args) {
    std::vector<std::string> a = args;
    a.push_back("--json");
    Output o = Sked(a);
    EXPECT_EQ(o.exit_code, 0) << o.err;
    json j = json::parse(o.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << o.out;
    return j;
  }

  void StartServe() {
    const std::string log = (dir_ / "serve.log").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<std::string> args = {SKED_BINARY, "serve", "--config", config_};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&serve_pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
  }

  // Waits (real time, bounded) for `ready`; false on timeout.
  static bool WaitFor(const std::function<bool()>& ready, std::chrono::milliseconds timeout) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < give_up) {
      if (ready()) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return ready();
  }

  // Waits for the serve process to exit; its exit code, or -1 on timeout.
  int WaitServeExit(std::chrono::milliseconds timeout) {
    int status = 0;
    const bool exited =
        WaitFor([&] { return waitpid(serve_pid_, &status, WNOHANG) == serve_pid_; }, timeout);
    if (!exited) return -1;
    serve_pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // Triggers the "slow" job and waits until its run is running; its id, or
  // "" if it did not start in time.
  std::string StartSlowRun() {
    json queued = SkedJson({"job", "trigger", "slow"});
    if (!queued.is_object()) return "";
    const std::string id = std::to_string(queued["id"].get<int>());
    const bool running = WaitFor(
        [&] {
          return SkedJson({"run", "show", id})["status"] == "running";
        },
        seconds(10));
    return running ? id : "";
  }

  json Runs(const std::string& job) { return SkedJson({"run", "list", "--job", job, "-n", "100"}); }

  static int Count(const json& runs, const std::string& status) {
    int n = 0;
    for (const json& r : runs) n += r["status"] == status ? 1 : 0;
    return n;
  }

  std::filesystem::path dir_;
  std::string config_;
  pid_t serve_pid_ = -1;
};

const char* kConfig = R"(
[store]
url = "sqlite://sked.db"

[scheduler]
workers = 4
min_interval = "1s"
shutdown_grace = "1s"
poll_interval = "200ms"

[log]
format = "json"

[[job]]
name = "tick"
schedule = "* * * * * *"
driver = "shell"
config = { command = "echo tick" }

[[job]]
name = "slow"
schedule = "0 0 1 1 *"
driver = "shell"
config = { command = "echo started; exec sleep 30" }
)";

TEST_F(ServeTest, RunsJobsAndObeysCommandsFromOtherProcesses) {
  WriteConfig(kConfig);
  StartServe();
  // serve migrates and syncs the declared jobs; then runs appear every second.
  ASSERT_TRUE(WaitFor([&] { return Sked({"job", "show", "tick"}).exit_code == 0; }, seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return Count(Runs("tick"), "succeeded") >= 2; }, seconds(15)));
  json run = Runs("tick")[0];
  for (const char* key : {"id", "job", "scheduled_for", "started_at", "finished_at", "status",
                          "attempt", "trigger", "exit_code", "error", "reason", "instance"}) {
    EXPECT_TRUE(run.contains(key)) << key;
  }
  EXPECT_EQ(run["scheduled_for"].get<std::string>().size(), 24u);  // ...T12:00:01.000Z
  json job = SkedJson({"job", "show", "tick"});
  EXPECT_EQ(job["source"], "config");
  EXPECT_EQ(job["next_fires"].size(), 5u);
  for (const char* key :
       {"name", "schedule", "timezone", "state", "next_run_at", "last_run_at", "driver"}) {
    EXPECT_TRUE(job.contains(key)) << key;
  }

  // An edit from this process reaches the serving one.
  Output edit = Sked({"job", "edit", "tick", "--command", "echo tock"});
  ASSERT_EQ(edit.exit_code, 0) << edit.err;
  ASSERT_TRUE(WaitFor(
      [&] {
        json runs = Runs("tick");
        for (const json& r : runs) {
          if (r["status"] == "succeeded" &&
              SkedJson({"run", "show", std::to_string(r["id"].get<int>())})["output"] == "tock\n") {
            return true;
          }
        }
        return false;
      },
      seconds(15)));

  // Paused: no new fire for two seconds.
  ASSERT_EQ(Sked({"job", "pause", "tick"}).exit_code, 0);
  EXPECT_EQ(SkedJson({"job", "show", "tick"})["state"], "paused");
  size_t seen = Runs("tick").size();
  int quiet_checks = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        const size_t now = Runs("tick").size();
        quiet_checks = now == seen ? quiet_checks + 1 : 0;
        seen = now;
        return quiet_checks >= 20;  // ~2.5 s without a new run
      },
      seconds(15)));

  // A manual run, cancelled while it runs.
  const std::string id = StartSlowRun();
  ASSERT_FALSE(id.empty());
  Output cancel = Sked({"run", "cancel", id});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  ASSERT_TRUE(WaitFor(
      [&] {
        return SkedJson({"run", "show", id})["status"] == "cancelled";
      },
      seconds(10)));
  json cancelled = SkedJson({"run", "show", id});
  EXPECT_EQ(cancelled["reason"], "cancelled by user");
  EXPECT_EQ(cancelled["output"], "started\n");

  // Health sees the live instance.
  Output health = Sked({"health"});
  EXPECT_EQ(health.exit_code, 0) << health.out << health.err;

  // SIGTERM mid-run: the run is stopped after the 1 s grace and settled.
  const std::string id2 = StartSlowRun();
  ASSERT_FALSE(id2.empty());
  kill(serve_pid_, SIGTERM);
  EXPECT_EQ(WaitServeExit(seconds(20)), 0);
  json settled = SkedJson({"run", "show", id2});
  EXPECT_EQ(settled["status"], "cancelled");
  EXPECT_EQ(settled["reason"], "shutdown");
  EXPECT_FALSE(settled["finished_at"].is_null());
  EXPECT_EQ(SkedJson({"run", "list", "--status", "running"}).size(), 0u);
  // Logs are JSON lines with each run's start and end.
  const std::string log = ReadFile((dir_ / "serve.log").string());
  EXPECT_NE(log.find(R"("msg":"run finished","job":"slow","run":")" + id2), std::string::npos)
      << log;
  EXPECT_NE(log.find(R"("msg":"stopped")"), std::string::npos);
  // After the stop no instance is alive: health says so.
  EXPECT_EQ(Sked({"health"}).exit_code, 1);
}

// True once process `pid` is gone or a zombie.
bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string id, comm, state;
  stat >> id >> comm >> state;
  return state == "Z";
}

pid_t PidIn(const std::string& path) {
  std::ifstream in(path);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// kill -9 of the daemon while a shell job runs: the shell and its child die
// with it (they used to live on under init, and ran again, twice at once,
// when the abandoned run was retried).
TEST_F(ServeTest, KillingTheDaemonKillsTheProcessesOfItsRuns) {
  const std::string sh_pid = (dir_ / "sh.pid").string(), child_pid = (dir_ / "child.pid").string();
  WriteConfig(std::string(kConfig) + R"(
[[job]]
name = "family"
schedule = "0 0 1 1 *"
driver = "shell"
config = { command = "echo $$ > )" +
              sh_pid + R"(; sleep 300 & echo $! > )" + child_pid +
              R"(; wait" }
)");
  StartServe();
  ASSERT_TRUE(WaitFor([&] { return Sked({"job", "show", "family"}).exit_code == 0; }, seconds(10)));
  ASSERT_EQ(Sked({"job", "trigger", "family"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return PidIn(sh_pid) > 0 && PidIn(child_pid) > 0; }, seconds(10)));
  const pid_t sh = PidIn(sh_pid), child = PidIn(child_pid);
  kill(serve_pid_, SIGKILL);
  waitpid(serve_pid_, nullptr, 0);
  serve_pid_ = -1;
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(sh) && ProcessGone(child); }, seconds(10)))
      << "sh " << sh << " or its child " << child << " outlived the daemon";
  kill(sh, SIGKILL);  // whatever the outcome, leave nothing behind
  kill(child, SIGKILL);
}

// SIGTERM while a fire is claimed ahead, restart after it is past the
// misfire threshold: the fire is given back at shutdown and then judged by
// the job's misfire policy (skipped), never run late as if on schedule.
TEST_F(ServeTest, AFireClaimedBeforeShutdownIsNeverRunLate) {
  std::string text = kConfig;
  text.replace(text.find("[scheduler]\n"), 12,
               "[scheduler]\nclaim_ahead = \"3s\"\nmisfire_threshold = \"2s\"\n");
  WriteConfig(text + R"(
[[job]]
name = "every5"
schedule = "*/5 * * * * *"
driver = "shell"
misfire = "skip"
config = { command = "echo on time" }
)");
  StartServe();
  ASSERT_TRUE(WaitFor([&] { return Sked({"job", "show", "every5"}).exit_code == 0; }, seconds(10)));
  // A queued run of every5 whose fire is still a second or more ahead:
  // claimed ahead. (A fire claimed at once because the daemon started just
  // before it is too close: the shutdown below could come after it started.)
  std::string fire;
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto soon = std::chrono::system_clock::now() + seconds(1);
        for (const json& r : Runs("every5")) {
          const std::string at = r["scheduled_for"].get<std::string>();
          if (r["status"] == "queued" && std::chrono::system_clock::time_point(
                                             std::chrono::microseconds(ToUnixMicros(at))) > soon) {
            fire = at;
          }
        }
        return !fire.empty();
      },
      seconds(15)));
  kill(serve_pid_, SIGTERM);
  ASSERT_EQ(WaitServeExit(seconds(20)), 0);
  auto runs_for = [&](const std::string& at) {
    std::vector<std::string> statuses;
    for (const json& r : Runs("every5")) {
      if (r["scheduled_for"] == at) statuses.push_back(r["status"].get<std::string>());
    }
    return statuses;
  };
  // Given back: nothing of that fire is left queued to start later.
  // (The fire was seen queued over a second ahead of its instant: the
  // shutdown comes before it.)
  const std::vector<std::string> after_stop = runs_for(fire);
  ASSERT_TRUE(after_stop.empty()) << "fire " << fire << " left as " << after_stop[0];
  // Restart once the fire is more than the misfire threshold in the past.
  const auto fire_at =
      std::chrono::system_clock::time_point(std::chrono::microseconds(ToUnixMicros(fire)));
  while (std::chrono::system_clock::now() < fire_at + seconds(3)) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  StartServe();
  ASSERT_TRUE(WaitFor([&] { return Sked({"health"}).exit_code == 0; }, seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return !runs_for(fire).empty(); }, seconds(15)));
  EXPECT_EQ(runs_for(fire), (std::vector<std::string>{"skipped"}));
  for (const json& r : Runs("every5")) {
    if (r["scheduled_for"] == fire) {
      EXPECT_EQ(r["reason"], "misfire") << r.dump();
    }
  }
}

// One liveness rule everywhere: a second serve under a live instance's id is
// refused, naming it; a SIGKILLed daemon on this host is dead at once for
// `sked health` and `sked instance list` (not 30 s later), and its id is free.
TEST_F(ServeTest, InstanceIdsAndLivenessFollowOneRule) {
  std::string text = kConfig;
  text.replace(text.find("[scheduler]\n"), 12, "[scheduler]\ninstance_id = \"node-a\"\n");
  WriteConfig(text);
  StartServe();
  ASSERT_TRUE(WaitFor([&] { return Sked({"health"}).exit_code == 0; }, seconds(10)));
  Output second = Sked({"serve"});
  EXPECT_EQ(second.exit_code, 3) << second.err;
  EXPECT_NE(second.err.find("instance id 'node-a' is in use by a live instance (host "),
            std::string::npos)
      << second.err;
  EXPECT_NE(second.err.find("pid " + std::to_string(serve_pid_)), std::string::npos) << second.err;
  EXPECT_EQ(Sked({"health"}).exit_code, 0);  // the first one is untouched

  kill(serve_pid_, SIGKILL);
  waitpid(serve_pid_, nullptr, 0);
  serve_pid_ = -1;
  const auto killed = std::chrono::steady_clock::now();
  Output health = Sked({"health"});
  EXPECT_EQ(health.exit_code, 1) << health.out;
  EXPECT_LT(std::chrono::steady_clock::now() - killed, seconds(5));
  json instances = SkedJson({"instance", "list"});
  ASSERT_EQ(instances.size(), 1u);
  EXPECT_EQ(instances[0]["state"], "dead");
  // Its process is gone, so the id may be taken over at once.
  StartServe();
  EXPECT_TRUE(WaitFor([&] { return Sked({"health"}).exit_code == 0; }, seconds(10)));
}

// A run whose grandchild leaves the process group, ignores SIGTERM and keeps
// the output open settles within timeout + kill_grace + the 2 s escape bound
// (it used to hold its worker 300 s), timed out or cancelled; the escapee is
// killed and the run's note says so.
TEST_F(ServeTest, TimeoutAndCancelBoundARunWhoseGrandchildLeftTheGroup) {
  const std::string pidfile = (dir_ / "escaped.pid").string();
  WriteConfig(std::string(kConfig) + R"(
[[job]]
name = "escape"
schedule = "0 0 1 1 *"
driver = "shell"
timeout = "3s"
config = { command = "setsid sh -c 'trap \"\" TERM; echo $$ > )" +
              pidfile +
              R"(; exec sleep 300' & echo parent; wait", kill_grace = "1s" }
)");
  StartServe();
  ASSERT_TRUE(WaitFor([&] { return Sked({"job", "show", "escape"}).exit_code == 0; }, seconds(10)));
  for (const bool cancel : {false, true}) {
    std::remove(pidfile.c_str());
    json queued = SkedJson({"job", "trigger", "escape"});
    ASSERT_TRUE(queued.is_object());
    const std::string id = std::to_string(queued["id"].get<int>());
    ASSERT_TRUE(WaitFor([&] { return PidIn(pidfile) > 0; }, seconds(10)));
    const pid_t escaped = PidIn(pidfile);
    const auto t0 = std::chrono::steady_clock::now();
    if (cancel) {
      ASSERT_EQ(Sked({"run", "cancel", id}).exit_code, 0);
    }
    ASSERT_TRUE(WaitFor(
        [&] {
          return !SkedJson({"run", "show", id})["finished_at"].is_null();
        },
        seconds(15)))
        << "run " << id << " did not settle";
    EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(cancel ? 6 : 9));
    json run = SkedJson({"run", "show", id});
    EXPECT_EQ(run["status"], cancel ? "cancelled" : "timed_out");
    EXPECT_NE(run["reason"].get<std::string>().find("killed 1 process(es) that left the run's"),
              std::string::npos)
        << run.dump();
    EXPECT_TRUE(WaitFor([&] { return ProcessGone(escaped); }, seconds(5)));
    kill(escaped, SIGKILL);
  }
}

TEST_F(ServeTest, ASecondSignalEndsTheGracePeriod) {
  std::string text = kConfig;
  text.replace(text.find("shutdown_grace = \"1s\""), 21, "shutdown_grace = \"60s\"");
  WriteConfig(text);
  StartServe();
  ASSERT_TRUE(WaitFor([&] { return Sked({"job", "show", "slow"}).exit_code == 0; }, seconds(10)));
  const std::string id = StartSlowRun();
  ASSERT_FALSE(id.empty());
  kill(serve_pid_, SIGTERM);
  ASSERT_TRUE(WaitFor(
      [&] { return ReadFile((dir_ / "serve.log").string()).find("stopping") != std::string::npos; },
      seconds(5)));
  kill(serve_pid_, SIGINT);
  EXPECT_EQ(WaitServeExit(seconds(20)), 1);  // forced: not a clean stop
  EXPECT_EQ(SkedJson({"run", "show", id})["status"], "cancelled");
}

TEST_F(ServeTest, BadConfigsAndFlagsGiveTheDocumentedErrors) {
  WriteConfig("[scheduler]\nworkers = 4\nbogus = 1\n");
  Output unknown = Sked({"serve"});
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_NE(unknown.err.find("sked.toml:3: scheduler.bogus: unknown key"), std::string::npos)
      << unknown.err;

  WriteConfig(
      "[[job]]\nname = \"bad\"\nschedule = \"61 * * * *\"\ndriver = \"shell\"\n"
      "config = { command = \"true\" }\n");
  Output invalid = Sked({"serve"});
  EXPECT_EQ(invalid.exit_code, 3);
  EXPECT_NE(invalid.err.find("job 'bad': schedule: field 'minute': value 61 out of range"),
            std::string::npos)
      << invalid.err;

  WriteConfig(
      "[[job]]\nname = \"x\"\nschedule = \"* * * * *\"\ndriver = \"shell\"\n"
      "config = { comand = \"true\" }\n");
  Output driver = Sked({"serve"});
  EXPECT_EQ(driver.exit_code, 3);
  EXPECT_NE(driver.err.find("driver_config"), std::string::npos) << driver.err;

  WriteConfig("");
  EXPECT_EQ(Sked({"migrate"}).exit_code, 0);
  EXPECT_EQ(Sked({"job", "add", "x", "--frobnicate"}).exit_code, 2);
  EXPECT_EQ(Sked({"run", "show", "not-a-number"}).exit_code, 2);
  EXPECT_EQ(Sked({"job", "show", "missing"}).exit_code, 4);
  EXPECT_EQ(Sked({"run", "show", "999"}).exit_code, 4);
  Output no_schedule = Sked({"job", "add", "x", "--command", "true"});
  EXPECT_EQ(no_schedule.exit_code, 3);
  EXPECT_EQ(no_schedule.err, "sked: --schedule is required\n");
  EXPECT_EQ(Sked({"job", "add", "x", "--command", "true", "--schedule", "* * * * *"}).exit_code, 0);
  EXPECT_EQ(Sked({"job", "add", "x", "--command", "true", "--schedule", "* * * * *"}).exit_code,
            6);  // the name is taken
  Output missing = Sked({"run", "list", "--config", (dir_ / "nope.toml").string()}, false);
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("nope.toml' cannot be read"), std::string::npos) << missing.err;
}

// What a newcomer meets first: global flags on either side of the command,
// sked's own parse errors, JSON errors, strict ids, no control characters
// from stored text on the terminal, and the small things that surprised.
TEST_F(ServeTest, TheCommandLineSaysWhatItMeans) {
  WriteConfig("[scheduler]\nmin_interval = \"1s\"\n");
  ASSERT_EQ(Sked({"migrate"}).exit_code, 0);
  // --config before the command, as docs/getting-started.md shows, and after it.
  EXPECT_EQ(Sked({"--config", config_, "job", "list"}, false).exit_code, 0);
  EXPECT_EQ(Sked({"job", "list", "--config", config_}, false).exit_code, 0);
  EXPECT_EQ(Sked({"--json", "job", "list"}).out, "[]\n");

  Output bad_id = Sked({"run", "show", "abc"});
  EXPECT_EQ(bad_id.exit_code, 2);
  EXPECT_EQ(bad_id.err.rfind("sked: run id: 'abc' is not a run id", 0), 0u) << bad_id.err;
  Output huge = Sked({"run", "show", "99999999999999999999"});
  EXPECT_EQ(huge.exit_code, 2);  // rejected, not clamped to the largest id
  EXPECT_NE(huge.err.find("'99999999999999999999' is not a run id"), std::string::npos);
  Output extra = Sked({"job", "list", "surplus"});
  EXPECT_EQ(extra.exit_code, 2);
  EXPECT_EQ(extra.err.rfind("sked: unexpected argument 'surplus'", 0), 0u) << extra.err;
  Output limit = Sked({"run", "list", "-n", "abc"});
  EXPECT_EQ(limit.err.rfind("sked: --limit: 'abc' is not an integer", 0), 0u) << limit.err;
  Output json_error = Sked({"run", "show", "999", "--json"});
  EXPECT_EQ(json_error.exit_code, 4);
  json e = json::parse(json_error.err, nullptr, false);
  ASSERT_FALSE(e.is_discarded()) << json_error.err;
  EXPECT_EQ(e["error"]["exit_code"], 4);
  EXPECT_EQ(e["error"]["message"], "run 999 not found");
  json usage = json::parse(Sked({"--json", "run", "show", "x"}).err, nullptr, false);
  ASSERT_FALSE(usage.is_discarded());
  EXPECT_EQ(usage["error"]["code"], "USAGE");

  // cron validate applies the config's minimum interval (1s here; 1m by
  // default, as for the daemon) and takes every form a job takes.
  EXPECT_EQ(Sked({"cron", "validate", "*/2 * * * * *"}).exit_code, 0);
  EXPECT_EQ(Sked({"cron", "validate", "*/2 * * * * *"}, false).exit_code, 3);
  Output every = Sked({"cron", "validate", "every 90s"}, false);
  EXPECT_EQ(every.exit_code, 0) << every.err;
  EXPECT_EQ(every.out.rfind("valid: every 90s (UTC); next fire ", 0), 0u) << every.out;
  EXPECT_EQ(Sked({"cron", "validate", "at 2099-01-01T09:00:00"}, false).exit_code, 0);
  EXPECT_EQ(Sked({"cron", "validate", "every 10s"}, false).exit_code, 3);

  // Control characters: refused in a description, escaped in what is shown.
  Output evil = Sked(
      {"job", "add", "evil", "-s", "* * * * *", "--command", "true", "--description", "x\x1b[2J"});
  EXPECT_EQ(evil.exit_code, 3);
  EXPECT_NE(evil.err.find("description: holds control character 27"), std::string::npos)
      << evil.err;

  // --timeout '' is an error, not the default; an edit that changes nothing
  // keeps the version; a paused job shows no next run.
  ASSERT_EQ(
      Sked({"job", "add", "j", "-s", "* * * * *", "--command", "printf '\\033[2J'"}).exit_code, 0);
  Output empty_timeout = Sked({"job", "edit", "j", "--timeout", ""});
  EXPECT_EQ(empty_timeout.exit_code, 3);
  EXPECT_NE(empty_timeout.err.find("--timeout: give a duration"), std::string::npos)
      << empty_timeout.err;
  EXPECT_EQ(Sked({"job", "edit", "j", "--priority", "0"}).exit_code, 0);
  EXPECT_EQ(SkedJson({"job", "show", "j"})["version"], 1);
  ASSERT_EQ(Sked({"job", "pause", "j"}).exit_code, 0);
  EXPECT_TRUE(SkedJson({"job", "show", "j"})["next_run_at"].is_null());
  const std::string listing = Sked({"job", "list"}).out;
  EXPECT_NE(listing.find("paused  -"), std::string::npos) << listing;

  // A run whose output is a terminal control sequence: shown escaped.
  StartServe();
  json queued = SkedJson({"job", "trigger", "j"});
  ASSERT_TRUE(queued.is_object());
  const std::string id = std::to_string(queued["id"].get<int>());
  ASSERT_TRUE(WaitFor(
      [&] {
        return SkedJson({"run", "show", id})["status"] == "succeeded";
      },
      seconds(10)));
  const Output shown = Sked({"run", "show", id});
  EXPECT_EQ(shown.out.find('\x1b'), std::string::npos);
  EXPECT_NE(shown.out.find("\\x1b[2J"), std::string::npos) << shown.out;
  EXPECT_EQ(Sked({"run", "logs", id}).out, "\x1b[2J");  // logs: the output as captured
  // Cancelling a run that ended is a conflict (6), not invalid input.
  Output cancel = Sked({"run", "cancel", id});
  EXPECT_EQ(cancel.exit_code, 6);
  EXPECT_NE(cancel.err.find("already finished"), std::string::npos) << cancel.err;
  // Store errors name the file once.
  kill(serve_pid_, SIGTERM);
  EXPECT_EQ(WaitServeExit(seconds(20)), 0);
}

// A mistyped SQLite path: management commands refuse it; serve says it
// created a new database.
TEST_F(ServeTest, AMissingDatabaseFileIsNamed) {
  WriteConfig("[store]\nurl = \"sqlite://typo.db\"\n");
  Output list = Sked({"job", "list"});
  EXPECT_EQ(list.exit_code, 3);
  EXPECT_NE(list.err.find("there is no database file '" + (dir_ / "typo.db").string() + "'"),
            std::string::npos)
      << list.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "typo.db"));  // and nothing was created
  StartServe();
  ASSERT_TRUE(WaitFor(
      [&] {
        return ReadFile((dir_ / "serve.log").string()).find("did not exist: created a new") !=
               std::string::npos;
      },
      seconds(10)))
      << ReadFile((dir_ / "serve.log").string());
}

TEST_F(ServeTest, ManagementCommandsRefuseAStoreWithoutSchema) {
  WriteConfig("");
  Output o = Sked({"job", "list"});
  EXPECT_EQ(o.exit_code, 3);
  EXPECT_NE(o.err.find("run `sked migrate`"), std::string::npos) << o.err;
  Output m = Sked({"migrate"});
  EXPECT_EQ(m.exit_code, 0) << m.err;
  EXPECT_NE(m.out.find("migrated from schema version 0 to"), std::string::npos) << m.out;
  EXPECT_EQ(Sked({"job", "list"}).exit_code, 0);
}

TEST_F(ServeTest, ImportsACrontab) {
  WriteConfig("");
  ASSERT_EQ(Sked({"migrate"}).exit_code, 0);
  const std::string crontab = (dir_ / "crontab").string();
  std::ofstream(crontab) << "# backups\nMAILTO=\"\"\n*/15 * * * * /usr/local/bin/backup\n"
                            "@reboot /usr/bin/warmup\n0 3 * * * echo 100\\% done\n";
  Output o = Sked({"import", "crontab", crontab, "--tz", "Europe/Berlin", "--prefix", "host"});
  EXPECT_EQ(o.exit_code, 3) << o.err;  // one line could not be taken
  EXPECT_NE(o.err.find("line 4 not imported: @reboot is not supported"), std::string::npos)
      << o.err;
  json jobs = SkedJson({"job", "list"});
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0]["name"], "host-3");
  EXPECT_EQ(jobs[0]["schedule"], "*/15 * * * *");
  EXPECT_EQ(jobs[0]["timezone"], "Europe/Berlin");
  EXPECT_EQ(jobs[1]["config"]["command"], "echo 100% done");
  // Importing the same file again changes nothing, and says so.
  Output again = Sked({"import", "crontab", crontab, "--tz", "Europe/Berlin", "--prefix", "host"});
  EXPECT_NE(again.out.find("0 job(s) created, 0 updated, 2 unchanged, 1 line(s) not imported"),
            std::string::npos)
      << again.out;
  EXPECT_EQ(SkedJson({"job", "show", "host-3"})["version"], 1);
}

// A dry run checks each line exactly as the import does: what it accepts
// the import accepts, what the import refuses it refuses, and it writes nothing.
TEST_F(ServeTest, ADryRunDecidesExactlyAsTheImport) {
  WriteConfig("");
  ASSERT_EQ(Sked({"migrate"}).exit_code, 0);
  const std::string crontab = (dir_ / "crontab").string();
  std::ofstream(crontab) << "61 * * * * echo bad-minute\n0 0 30 2 * echo never\n"
                            "*/5 * * * * echo fine\n0 * * * * echo hi # note %touch /tmp/x\n";
  Output dry = Sked({"import", "crontab", crontab, "--tz", "UTC", "--dry-run", "--json"});
  EXPECT_EQ(dry.exit_code, 3) << dry.err;
  json preview = json::parse(dry.out, nullptr, false);
  ASSERT_FALSE(preview.is_discarded()) << dry.out;
  EXPECT_TRUE(SkedJson({"job", "list"}).empty());  // nothing written
  Output real = Sked({"import", "crontab", crontab, "--tz", "UTC", "--json"});
  EXPECT_EQ(real.exit_code, 3) << real.err;
  json done = json::parse(real.out, nullptr, false);
  ASSERT_FALSE(done.is_discarded()) << real.out;
  auto lines = [](const json& list) {
    std::vector<int> out;
    for (const json& e : list) out.push_back(e["line"].get<int>());
    return out;
  };
  EXPECT_EQ(lines(preview["jobs"]), (std::vector<int>{3, 4}));
  EXPECT_EQ(lines(done["jobs"]), lines(preview["jobs"]));
  EXPECT_EQ(lines(done["not_imported"]), (std::vector<int>{1, 2}));
  EXPECT_EQ(lines(preview["not_imported"]), lines(done["not_imported"]));
  EXPECT_EQ(preview["not_imported"][1]["reason"], done["not_imported"][1]["reason"]);
  // The `%` text is the command's input, not shell code.
  json hi = SkedJson({"job", "show", "crontab-4"});
  EXPECT_EQ(hi["config"]["command"], "echo hi # note ");
  EXPECT_EQ(hi["config"]["stdin"], "touch /tmp/x\n");
}

// Driver plugins through the real binary: the example plugin loaded from
// `[drivers] plugin_dir`, listed, validating and running jobs from the config
// and the CLI; then the same folder holding a build for another ABI version:
// sked refuses to serve while an active job needs its driver, naming the
// file and both versions, and serves (saying the plugin failed) once none does.
TEST_F(ServeTest, DriverPluginsLoadRunAndFailOnlyWhenAJobNeedsThem) {
  const std::filesystem::path plugins = dir_ / "plugins";
  std::filesystem::create_directories(plugins);
  const std::string plugin = (plugins / "hello.so").string();
  std::filesystem::copy_file(SKED_HELLO_PLUGIN, plugin);
  const std::string head =
      "[scheduler]\nmin_interval = \"1s\"\nworkers = 2\npoll_interval = \"200ms\"\n"
      "shutdown_grace = \"1s\"\n[log]\nformat = \"json\"\n[drivers]\nplugin_dir = \"plugins\"\n";
  WriteConfig(head +
              "[[job]]\nname = \"greet\"\nschedule = \"* * * * * *\"\ndriver = \"hello\"\n"
              "config = { greeting = \"hi\", times = 2 }\n");

  json drivers = SkedJson({"driver", "list"});
  json hello;
  for (const json& d : drivers) {
    if (d["name"] == "hello") hello = d;
  }
  ASSERT_TRUE(hello.is_object()) << drivers.dump();
  EXPECT_EQ(hello["plugin"], plugin);
  EXPECT_TRUE(hello["config_schema"]["properties"].contains("times"));
  EXPECT_NE(Sked({"driver", "list"}).out.find(plugin), std::string::npos);

  StartServe();
  ASSERT_TRUE(WaitFor([&] { return Sked({"job", "show", "greet"}).exit_code == 0; }, seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return Count(Runs("greet"), "succeeded") >= 1; }, seconds(15)));
  json runs = Runs("greet");
  std::string id;
  for (const json& r : runs) {
    if (r["status"] == "succeeded") id = std::to_string(r["id"].get<int>());
  }
  json shown = SkedJson({"run", "show", id});
  EXPECT_EQ(shown["output"], "hi, greet (attempt 1)\nhi, greet (attempt 1)\n");
  EXPECT_EQ(shown["result"]["greetings"], 2) << shown.dump();
  EXPECT_NE(ReadFile((dir_ / "serve.log").string()).find("driver plugin loaded"),
            std::string::npos);

  // The plugin validates what the CLI writes, naming the key.
  Output bad = Sked({"job", "add", "cli-greet", "--driver", "hello", "--config-json",
                     R"({"times": 0})", "--schedule", "0 0 1 1 *"});
  EXPECT_EQ(bad.exit_code, 3);
  EXPECT_NE(bad.err.find("times: must be an integer from 1 to 1000"), std::string::npos) << bad.err;
  ASSERT_EQ(Sked({"job", "add", "cli-greet", "--driver", "hello", "--config-json",
                  R"({"times": 1, "fail": true})", "--schedule", "0 0 1 1 *"})
                .exit_code,
            0);
  Output triggered = Sked({"job", "trigger", "cli-greet", "--wait", "--wait-timeout", "20s"});
  EXPECT_NE(triggered.exit_code, 0);
  EXPECT_NE(triggered.out.find("hello, cli-greet (attempt 1)"), std::string::npos) << triggered.out;
  kill(serve_pid_, SIGTERM);
  ASSERT_EQ(WaitServeExit(seconds(15)), 0);

  // The folder now holds a build for another ABI version.
  std::filesystem::copy_file(SKED_HELLO_ABI2_PLUGIN, plugin,
                             std::filesystem::copy_options::overwrite_existing);
  Output refused = Sked({"serve"});
  EXPECT_EQ(refused.exit_code, 3);
  // Both jobs, the config's (unchanged, so not validated again at the sync)
  // and the CLI's, are found by the check of the store.
  EXPECT_NE(refused.err.find("2 active job(s) need a driver that is not registered: 'greet' "
                             "(hello), 'cli-greet' (hello)"),
            std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("level\":\"error\",\"msg\":\"driver plugin not loaded"),
            std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("plugin " + plugin +
                             " was built for plugin ABI version 2, and this "
                             "sked speaks version 1"),
            std::string::npos)
      << refused.err;
  Output listed = Sked({"driver", "list"});
  EXPECT_EQ(listed.exit_code, 0);  // the drivers that loaded, and a warning
  EXPECT_NE(listed.err.find("sked: warning: plugin " + plugin), std::string::npos) << listed.err;

  // The config no longer declares "greet" (disabled at sync), but the store
  // still has the CLI's active job that needs the plugin.
  WriteConfig(head);
  refused = Sked({"serve"});
  EXPECT_EQ(refused.exit_code, 3);
  EXPECT_NE(refused.err.find("1 active job(s) need a driver that is not registered: 'cli-greet' "
                             "(hello)"),
            std::string::npos)
      << refused.err;
  // Paused, it needs nothing: sked serves and says the plugin failed.
  Output paused = Sked({"job", "pause", "cli-greet"});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  StartServe();
  ASSERT_TRUE(WaitFor(
      [&] {
        return ReadFile((dir_ / "serve.log").string()).find("sked serving") != std::string::npos;
      },
      seconds(15)));
  const std::string log = ReadFile((dir_ / "serve.log").string());
  EXPECT_NE(log.find("driver plugin not loaded"), std::string::npos) << log;
  kill(serve_pid_, SIGTERM);
  EXPECT_EQ(WaitServeExit(seconds(15)), 0);
}

}  // namespace
