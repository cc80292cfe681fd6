// Driver plugins (include/sked/plugin.h, docs/plugins.md): loading a shared
// library, checking its ABI version, registering its drivers all or none,
// and the Driver that calls a plugin's C callbacks.

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sked/driver.h"
#include "sked/plugin.h"

namespace sked {
namespace {

// A plugin keeps at most this much output whatever the engine allows.
constexpr std::int64_t kMaxPluginOutput = std::int64_t{16} << 20;
// Text a plugin hands over for a message, bounded and without control
// characters (a plugin's error may end up in a log line or a terminal).
constexpr size_t kMaxMessage = 4096;

std::string Printable(std::string_view text) {
  std::string out;
  out.reserve(std::min(text.size(), kMaxMessage));
  for (const char c : text.substr(0, kMaxMessage)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 && c != '\n' && c != '\t' ? '?' : (u == 0x7f ? '?' : c));
  }
  return out;
}

bool ValidDriverName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// What one execute() call shares with the host functions it is given. The
// plugin may call them from threads of its own until execute() returns.
struct RunState {
  RunState(const RunContext& c, std::stop_token s) : context(c), stop(std::move(s)) {}
  const RunContext& context;
  std::stop_token stop;
  std::int64_t keep = kMaxPluginOutput;  // bytes of output kept (the tail)

  std::mutex mu;
  std::condition_variable cv;  // notified when a stop is requested
  std::string output;
  std::int64_t written = 0;
  std::string error;
  std::optional<int> exit_code;
  std::string result;
};

RunState& StateOf(const sked_plugin_run* run) { return *static_cast<RunState*>(run->host); }

int StopRequested(const sked_plugin_run* run) { return StateOf(run).stop.stop_requested() ? 1 : 0; }

int WaitForStop(const sked_plugin_run* run, int64_t timeout_ms) {
  RunState& state = StateOf(run);
  std::unique_lock<std::mutex> lock(state.mu);
  const Instant until =
      state.context.clock->Now() + std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0));
  return state.context.clock->AwaitWithDeadline(lock, state.cv, until,
                                                [&] { return state.stop.stop_requested(); })
             ? 1
             : 0;
}

void WriteOutput(const sked_plugin_run* run, const char* data, size_t len) {
  if (data == nullptr || len == 0) return;
  RunState& state = StateOf(run);
  const std::string_view chunk(data, len);
  std::lock_guard<std::mutex> l(state.mu);
  state.written += static_cast<std::int64_t>(len);
  state.output.append(chunk);
  // Keep the tail; trim in large steps so appending stays linear.
  const auto keep = static_cast<size_t>(state.keep);
  if (state.output.size() > 2 * keep) state.output.erase(0, state.output.size() - keep);
  if (state.context.on_output) state.context.on_output(chunk);
}

void SetError(const sked_plugin_run* run, const char* message, size_t len) {
  RunState& state = StateOf(run);
  std::lock_guard<std::mutex> l(state.mu);
  state.error = message == nullptr ? "" : Printable(std::string_view(message, len));
}

void SetExitCode(const sked_plugin_run* run, int32_t code) {
  RunState& state = StateOf(run);
  std::lock_guard<std::mutex> l(state.mu);
  state.exit_code = code;
}

void SetResult(const sked_plugin_run* run, const char* json, size_t len) {
  RunState& state = StateOf(run);
  std::string text = json == nullptr ? "" : std::string(json, len);
  if (!text.empty() && !nlohmann::json::accept(text)) text.clear();
  std::lock_guard<std::mutex> l(state.mu);
  state.result = std::move(text);
}

class PluginDriver final : public Driver {
 public:
  PluginDriver(const sked_plugin_driver& d, std::string name, std::string description,
               std::string schema)
      : d_(d),
        name_(std::move(name)),
        description_(std::move(description)),
        schema_(std::move(schema)) {}

  std::string_view name() const override { return name_; }
  std::string_view description() const override { return description_; }
  std::string_view config_schema() const override { return schema_; }

  Status Validate(std::string_view config) const override {
    std::array<char, 1024> error{};
    if (d_.validate(d_.data, config.data(), config.size(), error.data(), error.size()) == 0) {
      return Status::Ok();
    }
    error.back() = '\0';
    std::string message = Printable(error.data());
    if (message.empty()) message = "refused by driver '" + name_ + "' (it gave no reason)";
    return InvalidArgumentError(message);
  }

  DriverResult Execute(const RunContext& context, std::stop_token stop) override {
    RunState state(context, stop);
    if (context.max_output_bytes > 0) {
      state.keep = std::min(state.keep, context.max_output_bytes);
    }
    std::stop_callback wake(stop, [&state] {
      std::lock_guard<std::mutex> l(state.mu);
      state.cv.notify_all();
    });
    sked_plugin_run run{};
    run.run_id = context.run_id;
    run.job_name = context.job_name.c_str();
    run.attempt = context.attempt;
    run.scheduled_for_unix_us = context.scheduled_for.time_since_epoch().count();
    run.config = context.config.data();
    run.config_len = context.config.size();
    run.stop_requested = &StopRequested;
    run.wait_for_stop = &WaitForStop;
    run.write_output = &WriteOutput;
    run.set_error = &SetError;
    run.set_exit_code = &SetExitCode;
    run.set_result = &SetResult;
    run.host = &state;
    const int rc = d_.execute(d_.data, &run);

    std::lock_guard<std::mutex> l(state.mu);
    DriverResult result;
    result.exit_code = state.exit_code;
    result.result = std::move(state.result);
    const auto keep = static_cast<size_t>(state.keep);
    if (state.output.size() > keep) state.output.erase(0, state.output.size() - keep);
    result.output_truncated = state.written > static_cast<std::int64_t>(state.output.size());
    result.output = std::move(state.output);
    if (rc == SKED_PLUGIN_RUN_SUCCEEDED) {
      result.status = RunStatus::kSucceeded;
      return result;
    }
    result.status = RunStatus::kFailed;
    if (!state.error.empty()) {
      result.error = std::move(state.error);
    } else if (rc == SKED_PLUGIN_RUN_FAILED) {
      result.error = "driver '" + name_ + "' reported a failure (it gave no reason)";
    } else {
      result.error = "driver '" + name_ + "' returned " + std::to_string(rc) +
                     ", which is neither succeeded (0) nor failed (1)";
    }
    return result;
  }

 private:
  const sked_plugin_driver d_;
  const std::string name_;
  const std::string description_;
  const std::string schema_;
};

// What sked_plugin_register() fills through the host: drivers registered
// only if the whole registration succeeds.
struct Staging {
  const DriverRegistry* registry = nullptr;
  std::vector<std::unique_ptr<Driver>> drivers;
  std::string error;  // the first refusal
};

int RegisterDriver(const sked_plugin_host* host, const sked_plugin_driver* d) {
  auto& staging = *static_cast<Staging*>(host->host);
  auto refuse = [&staging](std::string why) {
    if (staging.error.empty()) staging.error = std::move(why);
    return 1;
  };
  if (d == nullptr) return refuse("registered a null driver");
  const std::string name = d->name == nullptr ? "" : d->name;
  if (!ValidDriverName(name)) {
    return refuse("driver name '" + Printable(name) +
                  "' is not 1-64 characters of a-z, 0-9, '_' and '-'");
  }
  if (d->validate == nullptr || d->execute == nullptr) {
    return refuse("driver '" + name + "' lacks a validate or execute function");
  }
  std::string schema = d->config_schema == nullptr ? "{}" : d->config_schema;
  const nlohmann::json parsed = nlohmann::json::parse(schema, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    return refuse("driver '" + name + "': its config_schema is not a JSON object");
  }
  const bool staged_twice =
      std::any_of(staging.drivers.begin(), staging.drivers.end(),
                  [&](const std::unique_ptr<Driver>& x) { return x->name() == name; });
  if (staged_twice || staging.registry->Find(name) != nullptr) {
    return refuse("a driver named '" + name + "' is already registered");
  }
  staging.drivers.push_back(std::make_unique<PluginDriver>(
      *d, name, Printable(d->description == nullptr ? "" : d->description), std::move(schema)));
  return 0;
}

// Who may have written `st`'s file: refuse what another user could replace.
std::string UnsafeOwnership(const struct stat& st, std::string_view what) {
  if ((st.st_mode & S_IWOTH) != 0 && !(S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) != 0)) {
    return std::string(what) + " may be written by any user";
  }
  if (st.st_uid != 0 && st.st_uid != geteuid()) {
    return std::string(what) + " is owned by uid " + std::to_string(st.st_uid) +
           ", neither root nor the user sked runs as";
  }
  return "";
}

}  // namespace

Status DriverRegistry::LoadPlugin(const std::string& path) {
  const std::string who = "plugin " + path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Refuse(NotFoundError(who + ": " + std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return Refuse(InvalidArgumentError(who + ": not a regular file"));
  std::string unsafe = UnsafeOwnership(st, "the file");
  const std::string dir = std::filesystem::path(path).parent_path().string();
  struct stat dir_st {};
  if (unsafe.empty() && ::stat(dir.empty() ? "." : dir.c_str(), &dir_st) == 0) {
    unsafe = UnsafeOwnership(dir_st, "its folder");
  }
  if (!unsafe.empty()) {
    return Refuse(FailedPreconditionError(who + ": refused, " + unsafe +
                                          " (a plugin runs inside sked: keep it writable by "
                                          "sked's user or root only)"));
  }
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return Refuse(InvalidArgumentError(
        who + ": cannot be loaded: " + Printable(why == nullptr ? "unknown error" : why)));
  }
  auto find = [handle](const char* symbol) { return ::dlsym(handle, symbol); };
  void* version_symbol = find("sked_plugin_abi_version");
  void* register_symbol = find("sked_plugin_register");
  if (version_symbol == nullptr || register_symbol == nullptr) {
    ::dlclose(handle);
    return Refuse(
        InvalidArgumentError(who +
                             ": not a sked plugin (it does not export sked_plugin_abi_version and "
                             "sked_plugin_register; see include/sked/plugin.h)"));
  }
  using VersionFn = uint32_t (*)();
  using RegisterFn = int (*)(const sked_plugin_host*);
  const uint32_t version = reinterpret_cast<VersionFn>(version_symbol)();
  if (version != SKED_PLUGIN_ABI_VERSION) {
    ::dlclose(handle);
    return Refuse(FailedPreconditionError(
        who + " was built for plugin ABI version " + std::to_string(version) +
        ", and this sked speaks version " + std::to_string(SKED_PLUGIN_ABI_VERSION) +
        ": rebuild it against this sked's include/sked/plugin.h"));
  }
  // From here on the library stays loaded for the life of the process, even
  // when it is refused: its register function ran and may have left threads
  // or handlers behind that unloading would pull the code from under.
  Staging staging;
  staging.registry = this;
  sked_plugin_host host{};
  host.abi_version = SKED_PLUGIN_ABI_VERSION;
  host.register_driver = &RegisterDriver;
  host.host = &staging;
  const int rc = reinterpret_cast<RegisterFn>(register_symbol)(&host);
  if (!staging.error.empty()) {
    return Refuse(InvalidArgumentError(who + ": " + staging.error));
  }
  if (rc != 0) {
    return Refuse(FailedPreconditionError(who + ": sked_plugin_register returned " +
                                          std::to_string(rc) + " (the plugin refused to load)"));
  }
  if (staging.drivers.empty()) {
    return Refuse(InvalidArgumentError(who + ": registered no driver"));
  }
  for (std::unique_ptr<Driver>& driver : staging.drivers) {
    std::string name(driver->name());
    drivers_.emplace(std::move(name), Entry{std::move(driver), path});
  }
  return Status::Ok();
}

std::vector<Status> DriverRegistry::LoadPlugins(const std::string& dir) {
  std::vector<Status> failures;
  std::error_code ec;
  std::vector<std::string> files;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    // Every "*.so" entry, whatever it is: LoadPlugin refuses, naming why, a
    // link to nothing or a folder (silently skipping one would hide a typo).
    const std::filesystem::path& p = it->path();
    if (p.extension() == ".so") files.push_back(p.string());
  }
  if (ec) {
    failures.push_back(Refuse(NotFoundError("plugin_dir " + dir + ": " + ec.message())));
    return failures;
  }
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) {
    if (Status s = LoadPlugin(file); !s.ok()) failures.push_back(std::move(s));
  }
  return failures;
}

}  // namespace sked
