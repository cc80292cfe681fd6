#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "drivers/builtin_drivers.h"
#include "sked/driver.h"

namespace sked {
namespace {

DriverResult RunShell(const std::string& config, std::stop_token stop = {}) {
  auto driver = drivers::NewShellDriver();
  EXPECT_TRUE(driver->Validate(config).ok()) << driver->Validate(config).ToString();
  RunContext ctx;
  ctx.config = config;
  ctx.clock = Clock::Real();
  return driver->Execute(ctx, stop);
}

std::string ShellError(const std::string& config) {
  return drivers::NewShellDriver()->Validate(config).message();
}

TEST(RegistryTest, BuiltinsAndDuplicates) {
  auto registry = DriverRegistry::WithBuiltins();
  EXPECT_EQ(registry->Names(), (std::vector<std::string>{"noop", "shell", "sleep"}));
  EXPECT_NE(registry->Find("shell"), nullptr);
  EXPECT_EQ(registry->Find("http"), nullptr);
  EXPECT_EQ(registry->Register(drivers::NewNoopDriver()).code(), StatusCode::kAlreadyExists);
}

TEST(NoopDriverTest, SucceedsOrFailsAsConfigured) {
  auto noop = drivers::NewNoopDriver();
  RunContext ctx;
  ctx.clock = Clock::Real();
  ctx.config = "{}";
  EXPECT_EQ(noop->Execute(ctx, {}).status, RunStatus::kSucceeded);
  ctx.config = R"({"fail": true})";
  EXPECT_EQ(noop->Execute(ctx, {}).status, RunStatus::kFailed);
  EXPECT_EQ(noop->Validate(R"({"fail": 1})").message(), "config.fail: must be true or false");
  EXPECT_EQ(noop->Validate(R"({"bogus": 1})").message(),
            "config: unknown key 'bogus' (expected fail)");
  EXPECT_EQ(noop->Validate("[1]").message(), "config: must be a JSON object");
  EXPECT_EQ(noop->Validate("{").message(), "config: not valid JSON");
}

TEST(SleepDriverTest, ValidatesDuration) {
  auto sleep = drivers::NewSleepDriver();
  EXPECT_TRUE(sleep->Validate(R"({"duration": "2s"})").ok());
  EXPECT_EQ(sleep->Validate(R"({"duration": 2})").message(),
            "config.duration: must be a duration string such as \"10s\"");
  EXPECT_EQ(sleep->Validate(R"({"duration": "2 weeks"})").message().rfind("config.duration: ", 0),
            0u);
}

TEST(ShellDriverTest, CommandOutputAndExitCode) {
  DriverResult r = RunShell(R"({"command": "echo out; echo err >&2; exit 3"})");
  EXPECT_EQ(r.status, RunStatus::kFailed);
  EXPECT_EQ(*r.exit_code, 3);
  EXPECT_EQ(r.output, "out\nerr\n");
  EXPECT_FALSE(r.output_truncated);
  EXPECT_EQ(r.error, "exit status 3");
  DriverResult ok = RunShell(R"({"command": "true"})");
  EXPECT_EQ(ok.status, RunStatus::kSucceeded);
  EXPECT_EQ(*ok.exit_code, 0);
}

TEST(ShellDriverTest, ArgvEnvAndCwd) {
  DriverResult r = RunShell(
      R"({"argv": ["/bin/sh", "-c", "echo $GREETING; pwd"], "env": {"GREETING": "hi"},
          "cwd": "/tmp", "inherit_env": false})");
  EXPECT_EQ(r.status, RunStatus::kSucceeded) << r.error;
  EXPECT_EQ(r.output, "hi\n/tmp\n");
  DriverResult path = RunShell(R"({"argv": ["env"], "env": {"ONLY": "1"}, "inherit_env": false})");
  EXPECT_EQ(path.output, "ONLY=1\n");
}

TEST(ShellDriverTest, MissingProgramOrFolderFails) {
  DriverResult r = RunShell(R"({"argv": ["/nonexistent/program"]})");
  EXPECT_EQ(r.status, RunStatus::kFailed);
  EXPECT_EQ(r.error, "cannot run '/nonexistent/program': No such file or directory");
  DriverResult cwd = RunShell(R"({"command": "true", "cwd": "/nonexistent-dir"})");
  EXPECT_EQ(cwd.status, RunStatus::kFailed);
  EXPECT_EQ(cwd.error, "cannot run '/bin/sh' in '/nonexistent-dir': No such file or directory");
}

TEST(ShellDriverTest, OutputKeepsTheTail) {
  DriverResult r = RunShell(R"({"command": "seq 1 100000", "max_output_bytes": 20})");
  EXPECT_EQ(r.status, RunStatus::kSucceeded);
  EXPECT_TRUE(r.output_truncated);
  EXPECT_EQ(r.output.size(), 20u);
  EXPECT_EQ(r.output.substr(r.output.size() - 7), "100000\n");
}

// Requests `stop` once `path` exists (the command's signal that it is ready),
// polling for at most 10 s.
std::thread StopWhenExists(std::stop_source stop, std::string path) {
  return std::thread([stop, path]() mutable {
    for (int i = 0; i < 1000 && access(path.c_str(), F_OK) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop.request_stop();
  });
}

TEST(ShellDriverTest, StopSendsTermToTheGroup) {
  const std::string ready = "/tmp/sked-term-ready-" + std::to_string(::getpid());
  std::stop_source stop;
  std::thread stopper = StopWhenExists(stop, ready);
  const auto t0 = std::chrono::steady_clock::now();
  DriverResult r =
      RunShell(R"({"command": "sleep 30 & touch )" + ready + R"(; wait"})", stop.get_token());
  stopper.join();
  std::remove(ready.c_str());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(r.status, RunStatus::kFailed);
  EXPECT_EQ(*r.exit_code, 128 + SIGTERM);
  EXPECT_EQ(r.error, "killed by signal 15 (Terminated)");
}

TEST(ShellDriverTest, IgnoredTermEscalatesToKill) {
  const std::string ready = "/tmp/sked-kill-ready-" + std::to_string(::getpid());
  std::stop_source stop;
  std::thread stopper = StopWhenExists(stop, ready);
  const auto t0 = std::chrono::steady_clock::now();
  DriverResult r = RunShell(
      R"({"command": "trap '' TERM; touch )" + ready + R"(; sleep 30", "kill_grace": "300ms"})",
      stop.get_token());
  stopper.join();
  std::remove(ready.c_str());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(*r.exit_code, 128 + SIGKILL);
}

// True once `pid` is gone (or a zombie), polling for at most `timeout`.
bool GoneWithin(pid_t pid, std::chrono::milliseconds timeout) {
  auto gone_now = [pid] {
    if (kill(pid, 0) != 0) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string id, comm, state;
    stat >> id >> comm >> state;
    return state == "Z";
  };
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < give_up) {
    if (gone_now()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return gone_now();
}

pid_t ReadPid(const std::string& path) {
  std::ifstream in(path);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

TEST(ShellDriverTest, LeavesNoProcessBehind) {
  const std::string pidfile = "/tmp/sked-shell-test-" + std::to_string(::getpid());
  DriverResult r = RunShell(R"({"command": "sleep 30 & echo $! > )" + pidfile + R"(; exit 0"})");
  EXPECT_EQ(r.status, RunStatus::kSucceeded);
  const pid_t orphan = ReadPid(pidfile);
  ASSERT_GT(orphan, 0);
  // Killed with its group when the command exited: gone within a bounded wait.
  EXPECT_TRUE(GoneWithin(orphan, std::chrono::seconds(2)));
  std::remove(pidfile.c_str());
}

TEST(ShellDriverTest, AStoppedRunEndsAndKillsAGrandchildThatLeftTheGroup) {
  const std::string pidfile = "/tmp/sked-escape-" + std::to_string(::getpid());
  std::remove(pidfile.c_str());
  std::stop_source stop;
  std::thread stopper = StopWhenExists(stop, pidfile);
  const auto t0 = std::chrono::steady_clock::now();
  DriverResult r = RunShell(R"({"command": "setsid sh -c 'trap \"\" TERM; echo $$ > )" + pidfile +
                                R"(; exec sleep 300' & echo parent; wait", "kill_grace": "1s"})",
                            stop.get_token());
  stopper.join();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, std::chrono::seconds(8));
  const pid_t escaped = ReadPid(pidfile);
  std::remove(pidfile.c_str());
  ASSERT_GT(escaped, 0);
  EXPECT_TRUE(GoneWithin(escaped, std::chrono::seconds(5)));
  EXPECT_EQ(r.escaped_processes, 1);
  EXPECT_EQ(r.note,
            "killed 1 process(es) that left the run's process group and held its output open");
  EXPECT_EQ(r.output.substr(0, 7), "parent\n");
}

// Not stopped: the command exits at once, its escaped child holds the pipe.
TEST(ShellDriverTest, AFinishedRunDoesNotWaitForAnEscapedChild) {
  const std::string pidfile = "/tmp/sked-escape2-" + std::to_string(::getpid());
  std::remove(pidfile.c_str());
  const auto t0 = std::chrono::steady_clock::now();
  DriverResult r = RunShell(R"({"command": "setsid sh -c 'echo $$ > )" + pidfile +
                            R"(; exec sleep 300' & sleep 0.2; echo done"})");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(6));
  EXPECT_EQ(r.status, RunStatus::kSucceeded) << r.error;
  const pid_t escaped = ReadPid(pidfile);
  std::remove(pidfile.c_str());
  ASSERT_GT(escaped, 0);
  EXPECT_TRUE(GoneWithin(escaped, std::chrono::seconds(5)));
  EXPECT_EQ(r.escaped_processes, 1);
}

// The keeper (the command's parent, leading its group) killed alone: the
// driver sees the leader gone, kills the group and returns.
TEST(ShellDriverTest, AKilledKeeperTakesTheCommandWithIt) {
  const std::string pidfile = "/tmp/sked-keeper-" + std::to_string(::getpid());
  std::remove(pidfile.c_str());
  std::thread killer([&] {
    for (int i = 0; i < 1000 && ReadPid(pidfile) <= 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (ReadPid(pidfile) > 0) kill(ReadPid(pidfile), SIGKILL);
  });
  const auto t0 = std::chrono::steady_clock::now();
  DriverResult r = RunShell(R"({"command": "echo $$ > )" + pidfile + R"(.sh; echo $PPID > )" +
                            pidfile + R"(; exec sleep 300"})");
  killer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(*r.exit_code, 128 + SIGKILL);
  const pid_t command = ReadPid(pidfile + ".sh");
  ASSERT_GT(command, 0);
  EXPECT_TRUE(GoneWithin(command, std::chrono::seconds(5)));
  std::remove(pidfile.c_str());
  std::remove((pidfile + ".sh").c_str());
}

TEST(ShellDriverTest, StdinAndShell) {
  DriverResult r = RunShell(
      R"({"command": "cat; echo; echo $0", "stdin": "a%b\n# not a command", "shell": "/bin/bash"})");
  EXPECT_EQ(r.status, RunStatus::kSucceeded) << r.error;
  EXPECT_EQ(r.output, "a%b\n# not a command\n/bin/bash\n");
  // Without stdin the command reads end of file at once.
  EXPECT_EQ(RunShell(R"({"command": "cat; echo end"})").output, "end\n");
}

TEST(ShellDriverTest, ConfigErrorsNameTheKey) {
  EXPECT_EQ(ShellError("{}"),
            "config: give exactly one of 'command' (a shell string) or 'argv' (a list of "
            "strings)");
  EXPECT_EQ(ShellError(R"({"command": "x", "argv": ["y"]})"),
            "config: give exactly one of 'command' (a shell string) or 'argv' (a list of "
            "strings)");
  EXPECT_EQ(ShellError(R"({"argv": []})"), "config.argv: must be a non-empty list of strings");
  EXPECT_EQ(ShellError(R"({"argv": ["a", 1]})"), "config.argv: must hold only strings");
  EXPECT_EQ(ShellError(R"({"command": "x", "env": {"A": 1}})"),
            "config.env.A: names must be non-empty without '=', values strings");
  EXPECT_EQ(ShellError(R"({"command": "x", "max_output_bytes": -1})"),
            "config.max_output_bytes: must be an integer 0-16777216");
  EXPECT_EQ(ShellError(R"({"command": "x", "kill_grace": "soon"})").rfind("config.kill_grace: ", 0),
            0u);
  EXPECT_EQ(ShellError(R"({"command": "x", "shell": "bash"})"),
            "config.shell: must be an absolute path such as /bin/bash");
  EXPECT_EQ(ShellError(R"({"argv": ["x"], "shell": "/bin/bash"})"),
            "config.shell: only applies to 'command' (argv runs no shell)");
  EXPECT_EQ(ShellError(R"({"command": "x", "stdin": 1})"),
            "config.stdin: must be a string of at most 1 MiB");
  EXPECT_EQ(ShellError(R"({"command": "x", "bogus": 1})"),
            "config: unknown key 'bogus' (expected command, argv, shell, stdin, env, "
            "inherit_env, cwd, max_output_bytes, kill_grace)");
}

}  // namespace
}  // namespace sked
