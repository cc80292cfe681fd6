// The shell driver: runs a command in its own process group, captures its
// combined stdout and stderr (the tail, bounded), and on stop sends SIGTERM to
// the group, then SIGKILL after a grace period. It never leaves a zombie, and
// kills what is left of the group when the command exits.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "drivers/builtin_drivers.h"
#include "drivers/json_config.h"

extern char** environ;

namespace sked::drivers {
namespace {

#define SKED_SHELL_KEYS                                                                   \
  {                                                                                       \
    "command", "argv", "shell", "stdin", "env", "inherit_env", "cwd", "max_output_bytes", \
        "kill_grace"                                                                      \
  }
constexpr std::int64_t kDefaultMaxOutput = std::int64_t{64} * 1024;
constexpr std::int64_t kMaxOutputLimit = std::int64_t{16} * 1024 * 1024;
constexpr size_t kMaxStdin = size_t{1} << 20;
// After the command's process group is gone, how long its output may stay
// open before the processes holding it are looked for and killed.
constexpr auto kEscapeWait = std::chrono::seconds(1);

struct ShellConfig {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V"
  std::string cwd;
  std::string stdin_text;  // the command's standard input ("": /dev/null)
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
    std::string shell = "/bin/sh";
    if (j.contains("shell")) {
      if (!j["shell"].is_string() || j["shell"].get<std::string>().empty() ||
          j["shell"].get<std::string>()[0] != '/') {
        return InvalidArgumentError("config.shell: must be an absolute path such as /bin/bash");
      }
      shell = j["shell"].get<std::string>();
    }
    c.argv = {shell, "-c", j["command"].get<std::string>()};
  } else {
    if (j.contains("shell")) {
      return InvalidArgumentError("config.shell: only applies to 'command' (argv runs no shell)");
    }
    if (!j["argv"].is_array() || j["argv"].empty()) {
      return InvalidArgumentError("config.argv: must be a non-empty list of strings");
    }
    for (const auto& a : j["argv"]) {
      if (!a.is_string()) return InvalidArgumentError("config.argv: must hold only strings");
      c.argv.push_back(a.get<std::string>());
    }
    if (c.argv[0].empty()) return InvalidArgumentError("config.argv: the program is empty");
  }
  if (j.contains("stdin")) {
    if (!j["stdin"].is_string() || j["stdin"].get<std::string>().size() > kMaxStdin) {
      return InvalidArgumentError("config.stdin: must be a string of at most 1 MiB");
    }
    c.stdin_text = j["stdin"].get<std::string>();
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
  std::string_view config_schema() const override {
    return R"json({"type": "object", "additionalProperties": false,
 "oneOf": [{"required": ["command"]}, {"required": ["argv"]}],
 "properties": {
  "command": {"type": "string", "minLength": 1, "description": "run by the shell, SHELL -c"},
  "argv": {"type": "array", "items": {"type": "string"}, "minItems": 1,
           "description": "the program, searched in PATH, and its arguments: no shell"},
  "shell": {"type": "string", "default": "/bin/sh", "description": "with command: an absolute path"},
  "stdin": {"type": "string", "maxLength": 1048576, "description": "the command's standard input"},
  "env": {"type": "object", "additionalProperties": {"type": "string"},
          "description": "extra environment variables"},
  "inherit_env": {"type": "boolean", "default": true, "description": "see sked's environment"},
  "cwd": {"type": "string", "description": "working directory"},
  "max_output_bytes": {"type": "integer", "minimum": 0, "maximum": 16777216, "default": 65536,
                       "description": "bytes of output kept, the tail"},
  "kill_grace": {"type": "string", "default": "5s",
                 "description": "after SIGTERM on cancel or timeout, wait this long, then SIGKILL"}}})json";
  }
  Status Validate(std::string_view config) const override {
    return ParseShellConfig(config).status();
  }
  DriverResult Execute(const RunContext& context, std::stop_token stop) override;
};

// Process groups of the commands running now (their keepers' pids), so the
// search for escaped processes never touches another run's processes that
// still hold a copy of this run's pipe between fork and exec.
struct ActiveGroups {
  std::mutex mu;
  std::set<pid_t> groups;  // guarded by mu
};
ActiveGroups& Active() {
  static ActiveGroups* active = new ActiveGroups();  // never destroyed: used until exit
  return *active;
}

// The program `file` as execve needs it: searched in PATH unless it holds a
// '/', as posix_spawnp and execvp do. Empty if not found.
std::string ResolveProgram(const std::string& file) {
  if (file.find('/') != std::string::npos) return file;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t from = 0;
  while (from <= dirs.size()) {
    size_t to = dirs.find(':', from);
    if (to == std::string::npos) to = dirs.size();
    std::string candidate = to == from ? "." : dirs.substr(from, to - from);
    candidate += "/";
    candidate += file;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    from = to + 1;
  }
  return "";
}

// What the spawned child tells the parent when it cannot exec.
struct SpawnError {
  int stage;  // 0: chdir, 1: exec, 2: fork
  int error;
};

[[noreturn]] void ChildFail(int fd, int stage) {
  const SpawnError e{stage, errno};
  (void)!write(fd, &e, sizeof e);
  _exit(127);
}

// Runs in the forked child (async-signal-safe calls only). It leads the
// run's process group and is its keeper: it forks the command, passes on its
// exit status, and when sked dies (its parent-death signal) kills the group,
// so no command outlives its daemon however the daemon ends.
[[noreturn]] void RunKeeper(pid_t parent, const char* program, char* const* argv, char* const* envp,
                            const char* cwd, int out_fd, int in_fd, int error_fd) {
  setpgid(0, 0);
  // Its own name in ps, and not "sked": `killall sked` ends the daemon (and
  // so, through the keepers, every run), never a keeper alone.
  prctl(PR_SET_NAME, "sked-keeper");
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &dfl, nullptr);  // sked may ignore it; the keeper must see its child
  // SIGUSR1 stays blocked (all signals are, from the parent): it is taken by
  // sigwaitinfo below, as is SIGCHLD; SIGTERM sent to the group stays pending
  // here and reaches only the command.
  prctl(PR_SET_PDEATHSIG, SIGUSR1);
  if (getppid() != parent) _exit(127);  // sked died before the signal was set
  const pid_t command = fork();
  if (command < 0) ChildFail(error_fd, 2);
  if (command == 0) {
    dup2(in_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    if (cwd != nullptr && chdir(cwd) != 0) ChildFail(error_fd, 0);
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(program, argv, envp);
    ChildFail(error_fd, 1);
  }
  // Hold nothing: not the output pipe (its end is the command's), not sked's files.
  close_range(0, ~0U, 0);
  // The keeper re-raises the command's fatal signal: it dumps no core of its
  // own (set after the fork, so the command keeps the limits it was given).
  const rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  sigset_t wait_for;
  sigemptyset(&wait_for);
  sigaddset(&wait_for, SIGCHLD);
  sigaddset(&wait_for, SIGUSR1);
  while (true) {
    siginfo_t info;
    const int sig = sigwaitinfo(&wait_for, &info);
    if (sig == SIGUSR1 && getppid() != parent) {
      kill(0, SIGKILL);  // the whole group, this keeper with it
      _exit(128 + SIGKILL);
    }
    int status = 0;
    if (sig == SIGCHLD && waitpid(command, &status, WNOHANG) == command) {
      if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
      const int term = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
      sigaction(term, &dfl, nullptr);
      sigset_t only;
      sigemptyset(&only);
      sigaddset(&only, term);
      sigprocmask(SIG_UNBLOCK, &only, nullptr);
      raise(term);
      _exit(128 + term);
    }
  }
}

// Processes outside the run's group that hold the write end of its output
// pipe (inode `pipe_inode`): they left the group (setsid, setpgid) and kept
// the run's output open. Killed with SIGKILL; returns how many were found.
int KillPipeHolders(ino_t pipe_inode, pid_t own_group) {
  const std::string link = "pipe:[" + std::to_string(pipe_inode) + "]";
  const pid_t self = getpid();
  int found = 0;
  ActiveGroups& active = Active();
  std::lock_guard<std::mutex> l(active.mu);
  std::error_code ec;
  for (const auto& proc : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = proc.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == self) continue;
    const pid_t group = getpgid(pid);
    if (group < 0 || (group != own_group && active.groups.contains(group))) continue;
    std::error_code fd_ec;
    for (const auto& fd : std::filesystem::directory_iterator(proc.path() / "fd", fd_ec)) {
      std::error_code read_ec;
      if (std::filesystem::read_symlink(fd.path(), read_ec).string() == link) {
        if (kill(pid, SIGKILL) == 0) ++found;
        break;
      }
    }
  }
  return found;
}

DriverResult ShellDriver::Execute(const RunContext& context, std::stop_token stop) {
  auto parsed = ParseShellConfig(context.config);
  if (!parsed.ok()) return DriverResult::Failed(parsed.status().message());
  const ShellConfig& c = *parsed;
  const std::string program = ResolveProgram(c.argv[0]);
  auto cannot_run = [&](int error) {
    std::string what = "cannot run '" + c.argv[0] + "'";
    if (!c.cwd.empty()) what += " in '" + c.cwd + "'";
    return DriverResult::Failed(what + ": " + std::strerror(error));
  };
  if (program.empty()) return cannot_run(ENOENT);

  // Every descriptor is close-on-exec: a command started by another worker
  // meanwhile never inherits this run's pipe (so its end of file is not held up).
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return DriverResult::Failed(std::string("pipe: ") + std::strerror(errno));
  }
  int error_fds[2];
  if (pipe2(error_fds, O_CLOEXEC) != 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return DriverResult::Failed(std::string("pipe: ") + std::strerror(errno));
  }
  // Standard input: the config's `stdin` text (from a memory file, so no
  // writer can block), or /dev/null.
  int in_fd = -1;
  if (c.stdin_text.empty()) {
    in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  } else {
    in_fd = memfd_create("sked-stdin", MFD_CLOEXEC);
    if (in_fd >= 0) {
      size_t done = 0;
      while (done < c.stdin_text.size()) {
        const ssize_t n = write(in_fd, c.stdin_text.data() + done, c.stdin_text.size() - done);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      lseek(in_fd, 0, SEEK_SET);
    }
  }
  const int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  auto close_all = [&] {
    for (int fd : {pipe_fds[0], pipe_fds[1], error_fds[0], error_fds[1], in_fd, stop_fd}) {
      if (fd >= 0) close(fd);
    }
  };
  if (stop_fd < 0 || in_fd < 0) {
    const int error = errno;
    close_all();
    return DriverResult::Failed(std::string("stdin or eventfd: ") + std::strerror(error));
  }
  struct stat pipe_stat {};
  fstat(pipe_fds[0], &pipe_stat);
  std::stop_callback on_stop(stop, [stop_fd] {
    const std::uint64_t one = 1;
    (void)!write(stop_fd, &one, sizeof one);
  });

  std::vector<char*> argv, envp;
  for (const std::string& a : c.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : c.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  // The child starts with every signal blocked, so no handler of sked's runs in it.
  sigset_t all, old_mask;
  sigfillset(&all);
  pid_t pid = -1;
  ActiveGroups& active = Active();
  {
    std::lock_guard<std::mutex> l(active.mu);
    pthread_sigmask(SIG_SETMASK, &all, &old_mask);
    pid = fork();
    if (pid == 0) {
      RunKeeper(parent, program.c_str(), argv.data(), envp.data(),
                c.cwd.empty() ? nullptr : c.cwd.c_str(), pipe_fds[1], in_fd, error_fds[1]);
    }
    const int fork_error = errno;
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    if (pid < 0) {
      close_all();
      return DriverResult::Failed(std::string("fork: ") + std::strerror(fork_error));
    }
    active.groups.insert(pid);
  }
  struct Unregister {
    ActiveGroups& active;
    pid_t pid;
    ~Unregister() {
      std::lock_guard<std::mutex> l(active.mu);
      active.groups.erase(pid);
    }
  } unregister{active, pid};
  setpgid(pid, pid);  // also from here, so the group exists before any kill below
  // Readable when the keeper exits (-1 on kernels before 5.3: polled every 100 ms).
  const int pid_fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  struct ClosePidFd {
    int fd;
    ~ClosePidFd() {
      if (fd >= 0) close(fd);
    }
  } close_pid_fd{pid_fd};
  close(pipe_fds[1]);
  close(error_fds[1]);
  close(in_fd);
  pipe_fds[1] = error_fds[1] = in_fd = -1;
  // End of file once the command has exec'd; a SpawnError if it could not.
  SpawnError spawn_error{-1, 0};
  ssize_t got_error;
  do {
    got_error = read(error_fds[0], &spawn_error, sizeof spawn_error);
  } while (got_error < 0 && errno == EINTR);
  close(error_fds[0]);
  error_fds[0] = -1;
  if (got_error == static_cast<ssize_t>(sizeof spawn_error)) {
    waitpid(pid, nullptr, 0);
    close_all();
    return spawn_error.stage == 2
               ? DriverResult::Failed(std::string("fork: ") + std::strerror(spawn_error.error))
               : cannot_run(spawn_error.error);
  }

  TailBuffer output(c.max_output);
  bool pipe_open = true, exited = false, term_sent = false, kill_sent = false;
  int wait_status = 0, escaped = 0;
  auto term_at = std::chrono::steady_clock::time_point();
  auto exited_at = std::chrono::steady_clock::time_point();
  bool holders_killed = false;
  char buf[65536];
  // Bounded: each round waits at most 100 ms; it ends when the child has
  // exited and the pipe is closed (or, held open by processes that left the
  // group, 2 s after the exit at most), and a stop escalates to SIGKILL.
  while (pipe_open || !exited) {
    const auto now = std::chrono::steady_clock::now();
    if (!exited) {
      // Look without reaping, so the group id cannot be reused before the
      // group is killed: whatever the command left in it goes with it.
      siginfo_t info{};
      if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid) {
        kill(-pid, SIGKILL);
        waitpid(pid, &wait_status, 0);
        exited = true;
        exited_at = now;
      }
    } else if (pipe_open && !holders_killed && now - exited_at >= kEscapeWait) {
      // The group is gone but the output is still open: held by processes
      // that left the group. They die now; the run settles regardless.
      escaped = KillPipeHolders(pipe_stat.st_ino, pid);
      holders_killed = true;
    } else if (pipe_open && holders_killed && now - exited_at >= 2 * kEscapeWait) {
      break;  // held by something that could not be killed: stop reading
    }
    if (stop.stop_requested() && !exited) {
      if (!term_sent) {
        kill(-pid, SIGTERM);
        term_sent = true;
        term_at = now;
      } else if (!kill_sent && now - term_at >= c.kill_grace) {
        kill(-pid, SIGKILL);
        kill_sent = true;
      }
    }
    if (!pipe_open && exited) break;
    // Wakes for output, a stop, or the keeper's exit (its pidfd).
    pollfd fds[3] = {{pipe_open ? pipe_fds[0] : -1, POLLIN, 0},
                     {stop_fd, POLLIN, 0},
                     {exited ? -1 : pid_fd, POLLIN, 0}};
    const int n = poll(fds, 3, 100);
    if (n < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) {
      std::uint64_t v;
      (void)!read(stop_fd, &v, sizeof v);
    }
    if (pipe_open && (fds[0].revents & (POLLIN | POLLHUP))) {
      const ssize_t got = read(pipe_fds[0], buf, sizeof buf);
      if (got > 0) {
        output.Append(buf, static_cast<size_t>(got));
        if (context.on_output) context.on_output(std::string_view(buf, static_cast<size_t>(got)));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        pipe_open = false;
      }
    }
  }
  if (!exited) waitpid(pid, &wait_status, 0);
  close_all();

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
  if (holders_killed) {
    r.escaped_processes = escaped;
    r.note = escaped > 0 ? "killed " + std::to_string(escaped) +
                               " process(es) that left the run's process group and held its "
                               "output open"
                         : "the run's output was held open after it exited by a process that "
                           "could not be killed; stopped reading";
  }
  (void)context;
  return r;
}

}  // namespace

std::unique_ptr<Driver> NewShellDriver() { return std::make_unique<ShellDriver>(); }

}  // namespace sked::drivers
