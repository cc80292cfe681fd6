#include "daemon/crontab.h"

#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
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

// cron's `%` rule: unescaped `%` ends the command; what follows (with `%` as
// newlines) is its stdin, given here as a here-document.
std::string ShellCommand(const std::string& cron_command) {
  std::string command, input;
  bool in_input = false;
  for (size_t i = 0; i < cron_command.size(); ++i) {
    const char c = cron_command[i];
    if (c == '\\' && i + 1 < cron_command.size() && cron_command[i + 1] == '%') {
      (in_input ? input : command) += '%';
      ++i;
    } else if (c == '%') {
      if (in_input) {
        input += '\n';
      } else {
        in_input = true;
      }
    } else {
      (in_input ? input : command) += c;
    }
  }
  if (!in_input) return command;
  std::string marker = "SKED_STDIN";
  while (input.find(marker) != std::string::npos) marker += "_";
  return command + " <<'" + marker + "'\n" + input + "\n" + marker;
}

}  // namespace

CrontabImport ParseCrontab(const std::string& text, const std::string& prefix,
                           const std::string& zone) {
  CrontabImport out;
  std::map<std::string, std::string> env;
  std::string tz = zone;
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
          out.problems.push_back({number, raw,
                                  "MAILTO is not supported: sked keeps each run's output "
                                  "(sked run logs ID) instead of mailing it"});
        }
      } else {
        env[name] = value;
      }
      continue;
    }
    std::vector<std::string> fields;
    std::string command;
    if (line[0] == '@') {
      if (!SplitFields(line, 1, &fields, &command)) {
        out.problems.push_back({number, raw, "no command after " + line});
        continue;
      }
      if (fields[0] == "@reboot") {
        out.problems.push_back({number, raw,
                                "@reboot is not supported: sked runs schedules, "
                                "not boot hooks (use a systemd unit)"});
        continue;
      }
    } else if (!SplitFields(line, 5, &fields, &command)) {
      out.problems.push_back(
          {number, raw, "expected five time fields and a command, or an environment line"});
      continue;
    }
    std::string schedule;
    for (const std::string& f : fields) schedule += (schedule.empty() ? "" : " ") + f;
    CrontabJob job;
    job.line = number;
    job.spec.name = prefix + "-" + std::to_string(number);
    job.spec.description = "imported from crontab line " + std::to_string(number) + ": " + line;
    if (job.spec.description.size() > 500) job.spec.description.resize(500);
    job.spec.schedule = schedule;
    job.spec.time_zone = tz;
    job.spec.driver = "shell";
    nlohmann::json config = {{"command", ShellCommand(command)}};
    if (!env.empty()) config["env"] = env;
    job.spec.driver_config = config.dump();
    out.jobs.push_back(std::move(job));
  }
  return out;
}

}  // namespace sked::daemon
