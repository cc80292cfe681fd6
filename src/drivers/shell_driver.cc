// The shell driver: runs a command in its own process group, captures its
// combined stdout and stderr (the tail, bounded), and on stop sends SIGTERM to
// the group, then SIGKILL after a grace period. It never leaves a zombie, and
// kills what is left of the group when the command exits.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "drivers/builtin_drivers.h"
#include "drivers/json_config.h"

extern char** environ;

namespace sked::drivers {
namespace {

#define SKED_SHELL_KEYS \
  { "command", "argv", "env", "inherit_env", "cwd", "max_output_bytes", "kill_grace" }
constexpr std::int64_t kDefaultMaxOutput = std::int64_t{64} * 1024;
constexpr std::int64_t kMaxOutputLimit = std::int64_t{16} * 1024 * 1024;

struct ShellConfig {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V"
  std::string cwd;
  std::int64_t max_output = kDefaultMaxOutput;
  Duration kill_grace = std::chrono::seconds(5);
};

Result<ShellConfig> ParseShellConfig(std::string_view text) {
  SKED_ASSIGN_OR_RETURN(nlohmann::json j, ParseConfigObject(text, SKED_SHELL_KEYS));
  ShellConfig c;
  const bool has_command = j.contains("command"), has_argv = j.contains("argv");
  if (has_command == has_argv) {
    return InvalidArgumentError(
        "config: give exactly one of 'command' (a shell string) or "
        "'argv' (a list of strings)");
  }
  if (has_command) {
    if (!j["command"].is_string() || j["command"].get<std::string>().empty()) {
      return InvalidArgumentError("config.command: must be a non-empty string");
    }
    c.argv = {"/bin/sh", "-c", j["command"].get<std::string>()};
  } else {
    if (!j["argv"].is_array() || j["argv"].empty()) {
      return InvalidArgumentError("config.argv: must be a non-empty list of strings");
    }
    for (const auto& a : j["argv"]) {
      if (!a.is_string()) return InvalidArgumentError("config.argv: must hold only strings");
      c.argv.push_back(a.get<std::string>());
    }
    if (c.argv[0].empty()) return InvalidArgumentError("config.argv: the program is empty");
  }
  SKED_RETURN_IF_ERROR(CheckBool(j, "inherit_env"));
  if (j.value("inherit_env", true)) {
    for (char** e = environ; *e != nullptr; ++e) c.env.emplace_back(*e);
  }
  if (j.contains("env")) {
    if (!j["env"].is_object()) {
      return InvalidArgumentError("config.env: must be an object of string values");
    }
    for (const auto& [k, v] : j["env"].items()) {
      if (k.empty() || k.find('=') != std::string::npos || !v.is_string()) {
        return InvalidArgumentError("config.env." + k +
                                    ": names must be non-empty without '=', values strings");
      }
      c.env.push_back(k + "=" + v.get<std::string>());
    }
  }
  if (j.contains("cwd")) {
    if (!j["cwd"].is_string() || j["cwd"].get<std::string>().empty()) {
      return InvalidArgumentError("config.cwd: must be a non-empty path");
    }
    c.cwd = j["cwd"].get<std::string>();
  }
  if (j.contains("max_output_bytes")) {
    if (!j["max_output_bytes"].is_number_integer() ||
        j["max_output_bytes"].get<std::int64_t>() < 0 ||
        j["max_output_bytes"].get<std::int64_t>() > kMaxOutputLimit) {
      return InvalidArgumentError("config.max_output_bytes: must be an integer 0-16777216");
    }
    c.max_output = j["max_output_bytes"].get<std::int64_t>();
  }
  SKED_ASSIGN_OR_RETURN(c.kill_grace, ConfigDuration(j, "kill_grace", std::chrono::seconds(5)));
  return c;
}

// Keeps the last `cap` bytes written to it.
class TailBuffer {
 public:
  explicit TailBuffer(std::int64_t cap) : cap_(static_cast<size_t>(cap)) {}
  void Append(const char* data, size_t n) {
    total_ += n;
    buf_.append(data, n);
    if (buf_.size() > 2 * cap_ + 4096) buf_.erase(0, buf_.size() - cap_);
  }
  std::string Take(bool* truncated) {
    *truncated = total_ > cap_;
    if (buf_.size() > cap_) buf_.erase(0, buf_.size() - cap_);
    return std::move(buf_);
  }

 private:
  size_t cap_;
  size_t total_ = 0;
  std::string buf_;
};

class ShellDriver final : public Driver {
 public:
  std::string_view name() const override { return "shell"; }
  std::string_view description() const override {
    return "runs a command (argv or a sh -c string) in its own process group";
  }
  Status Validate(std::string_view config) const override {
    return ParseShellConfig(config).status();
  }
  DriverResult Execute(const RunContext& context, std::stop_token stop) override;
};

DriverResult ShellDriver::Execute(const RunContext& context, std::stop_token stop) {
  auto parsed = ParseShellConfig(context.config);
  if (!parsed.ok()) return DriverResult::Failed(parsed.status().message());
  const ShellConfig& c = *parsed;

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return DriverResult::Failed(std::string("pipe: ") + std::strerror(errno));
  }
  const int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return DriverResult::Failed(std::string("eventfd: ") + std::strerror(errno));
  }
  std::stop_callback on_stop(stop, [stop_fd] {
    const std::uint64_t one = 1;
    (void)!write(stop_fd, &one, sizeof one);
  });

  std::vector<char*> argv, envp;
  for (const std::string& a : c.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : c.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (!c.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, c.cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);  // its own process group, led by the child
  sigset_t no_signals, default_signals;
  sigemptyset(&no_signals);
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGPIPE);
  sigaddset(&default_signals, SIGTERM);
  sigaddset(&default_signals, SIGINT);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  posix_spawnattr_setsigdefault(&attr, &default_signals);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    close(stop_fd);
    std::string what = "cannot run '" + c.argv[0] + "'";
    if (!c.cwd.empty()) what += " in '" + c.cwd + "'";
    return DriverResult::Failed(what + ": " + std::strerror(rc));
  }

  TailBuffer output(c.max_output);
  bool pipe_open = true, exited = false, term_sent = false, kill_sent = false;
  int wait_status = 0;
  auto term_at = std::chrono::steady_clock::time_point();
  char buf[65536];
  // Bounded: each round waits at most 100 ms; it ends when the child has
  // exited and the pipe is closed, and a stop escalates to SIGKILL.
  while (pipe_open || !exited) {
    if (!exited) {
      // Look without reaping, so the group id cannot be reused before the
      // group is killed: whatever the command left in it goes with it.
      siginfo_t info{};
      if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid) {
        kill(-pid, SIGKILL);
        waitpid(pid, &wait_status, 0);
        exited = true;
      }
    }
    if (stop.stop_requested() && !exited) {
      const auto now = std::chrono::steady_clock::now();
      if (!term_sent) {
        kill(-pid, SIGTERM);
        term_sent = true;
        term_at = now;
      } else if (!kill_sent && now - term_at >= c.kill_grace) {
        kill(-pid, SIGKILL);
        kill_sent = true;
      }
    }
    if (!pipe_open) {
      if (!exited) {
        pollfd p{stop_fd, POLLIN, 0};
        poll(&p, 1, 100);
      }
      continue;
    }
    pollfd fds[2] = {{pipe_fds[0], POLLIN, 0}, {stop_fd, POLLIN, 0}};
    const int n = poll(fds, 2, 100);
    if (n < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) {
      std::uint64_t v;
      (void)!read(stop_fd, &v, sizeof v);
    }
    if (fds[0].revents & (POLLIN | POLLHUP)) {
      const ssize_t got = read(pipe_fds[0], buf, sizeof buf);
      if (got > 0) {
        output.Append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        pipe_open = false;
      }
    }
  }
  close(pipe_fds[0]);
  close(stop_fd);
  if (!exited) waitpid(pid, &wait_status, 0);

  DriverResult r;
  r.output = output.Take(&r.output_truncated);
  if (WIFEXITED(wait_status)) {
    r.exit_code = WEXITSTATUS(wait_status);
    if (*r.exit_code != 0) {
      r.status = RunStatus::kFailed;
      r.error = "exit status " + std::to_string(*r.exit_code);
    }
  } else if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    r.exit_code = 128 + sig;
    r.status = RunStatus::kFailed;
    r.error = std::string("killed by signal ") + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  (void)context;
  return r;
}

}  // namespace

std::unique_ptr<Driver> NewShellDriver() { return std::make_unique<ShellDriver>(); }

}  // namespace sked::drivers
