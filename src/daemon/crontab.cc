#include "daemon/crontab.h"

#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

namespace sked::daemon {
namespace {

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// NAME=value (spaces around '=' allowed; value may be quoted).
bool ParseEnvLine(const std::string& line, std::string* name, std::string* value) {
  const size_t eq = line.find('=');
  if (eq == std::string::npos) return false;
  std::string n = Trim(line.substr(0, eq));
  if (n.empty() || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  for (char c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  std::string v = Trim(line.substr(eq + 1));
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  *name = n;
  *value = v;
  return true;
}

// Splits off `n` whitespace-separated fields; the rest is the command.
bool SplitFields(const std::string& line, int n, std::vector<std::string>* fields,
                 std::string* rest) {
  size_t i = 0;
  for (int f = 0; f < n; ++f) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    const size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (start == i) return false;
    fields->push_back(line.substr(start, i - start));
  }
  *rest = Trim(line.substr(i));
  return !rest->empty();
}

// cron's `%` rule: the first unescaped `%` ends the command; what follows,
// with each further unescaped `%` a newline, is its standard input (ending
// in a newline, as cron sends it). `\%` is a literal `%` in either part.
struct CronCommand {
  std::string command;
  std::optional<std::string> input;
};

CronCommand SplitPercent(const std::string& cron_command) {
  CronCommand out;
  std::string* part = &out.command;
  for (size_t i = 0; i < cron_command.size(); ++i) {
    const char c = cron_command[i];
    if (c == '\\' && i + 1 < cron_command.size() && cron_command[i + 1] == '%') {
      *part += '%';
      ++i;
    } else if (c == '%') {
      if (out.input) {
        *part += '\n';
      } else {
        out.input.emplace();
        part = &*out.input;
      }
    } else {
      *part += c;
    }
  }
  if (out.input && (out.input->empty() || out.input->back() != '\n')) *out.input += '\n';
  return out;
}

// A user name as useradd accepts it.
bool ValidUserName(const std::string& user) {
  if (user.empty() || user.size() > 32 || user[0] == '-') return false;
  for (char c : user) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

CrontabImport ParseCrontab(const std::string& text, const CrontabOptions& options) {
  CrontabImport out;
  std::map<std::string, std::string> env;
  std::string tz = options.zone;
  std::string shell = "/bin/sh";
  std::istringstream in(text);
  std::string raw;
  int number = 0;
  while (std::getline(in, raw)) {
    ++number;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    const std::string line = Trim(raw);
    if (line.empty() || line[0] == '#') continue;
    std::string name, value;
    if (line[0] != '@' && !std::isdigit(static_cast<unsigned char>(line[0])) && line[0] != '*' &&
        ParseEnvLine(line, &name, &value)) {
      if (name == "CRON_TZ") {
        tz = value;
      } else if (name == "MAILTO" || name == "MAILFROM") {
        if (!value.empty()) {
          out.problems.push_back({number, raw, name + " not imported (no notifications yet)"});
        }
      } else if (name == "SHELL") {
        if (value.empty() || value[0] != '/') {
          out.problems.push_back(
              {number, raw, "SHELL must be an absolute path; the commands below use " + shell});
          continue;
        }
        shell = value;
        env[name] = value;  // cron sets it in the commands' environment too
      } else {
        env[name] = value;
      }
      continue;
    }
    const int user_fields = options.system ? 1 : 0;
    std::vector<std::string> fields;
    std::string command;
    if (line[0] == '@') {
      if (!SplitFields(line, 1 + user_fields, &fields, &command)) {
        out.problems.push_back({number, raw,
                                options.system ? "expected a user and a command after " + line
                                               : "no command after " + line});
        continue;
      }
      if (fields[0] == "@reboot") {
        out.problems.push_back({number, raw,
                                "@reboot is not supported: sked runs schedules, "
                                "not boot hooks (use a systemd unit)"});
        continue;
      }
    } else if (!SplitFields(line, 5 + user_fields, &fields, &command)) {
      out.problems.push_back({number, raw,
                              options.system
                                  ? "expected five time fields, a user and a command, or an "
                                    "environment line"
                                  : "expected five time fields and a command, or an environment "
                                    "line"});
      continue;
    }
    std::string user;
    if (options.system) {
      user = fields.back();
      fields.pop_back();
      if (!ValidUserName(user)) {
        out.problems.push_back({number, raw, "'" + user + "' is not a user name"});
        continue;
      }
      if (user == options.current_user) {
        user.clear();
      } else if (options.current_user != "root") {
        out.problems.push_back({number, raw,
                                "runs as user '" + user + "', but sked runs commands as '" +
                                    options.current_user +
                                    "' (only a sked running as root can run them as another "
                                    "user)"});
        continue;
      }
    }
    std::string schedule;
    for (const std::string& f : fields) schedule += (schedule.empty() ? "" : " ") + f;
    const CronCommand parts = SplitPercent(command);
    CrontabJob job;
    job.line = number;
    job.spec.name = options.prefix + "-" + std::to_string(number);
    job.spec.description = "imported from crontab line " + std::to_string(number) + ": ";
    for (char c : line) {  // a description holds no control characters
      const auto u = static_cast<unsigned char>(c);
      job.spec.description += u < 0x20 || u == 0x7f ? '?' : c;
    }
    if (job.spec.description.size() > 500) job.spec.description.resize(500);
    job.spec.schedule = schedule;
    job.spec.time_zone = tz;
    job.spec.driver = "shell";
    nlohmann::json config;
    if (user.empty()) {
      config["command"] = parts.command;
      if (shell != "/bin/sh") config["shell"] = shell;
    } else {
      config["argv"] = {"runuser", "-u", user, "--", shell, "-c", parts.command};
    }
    if (parts.input) config["stdin"] = *parts.input;
    if (!env.empty()) config["env"] = env;
    job.spec.driver_config = config.dump();
    out.jobs.push_back(std::move(job));
  }
  return out;
}

}  // namespace sked::daemon
