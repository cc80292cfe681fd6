#include "cli/render.h"

#include <algorithm>
#include <ostream>

namespace sked::cli {

nlohmann::ordered_json TimeJson(const std::optional<Instant>& t) {
  if (!t) return nullptr;
  return FormatRfc3339Utc(*t, 3);
}

namespace {

nlohmann::ordered_json OptDuration(const std::optional<Duration>& d) {
  if (!d) return nullptr;
  return FormatDuration(*d);
}

nlohmann::ordered_json ConfigObject(const std::string& text) {
  auto j = nlohmann::ordered_json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::ordered_json(text) : j;
}

}  // namespace

std::string Printable(std::string_view text, bool one_line) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool control = u < 0x20 || u == 0x7f;
    const bool kept = !control || (!one_line && (c == '\n' || c == '\t'));
    if (kept) {
      out += c;
    } else if (c == '\n' || c == '\t') {
      out += c == '\n' ? "\\n" : "\\t";
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::optional<Instant> NextRunShown(const Job& job) {
  const bool claims = job.state == JobState::kActive || job.state == JobState::kPending;
  return claims ? job.next_run_at : std::nullopt;
}

std::string StateText(const Job& job) {
  std::string text(JobStateName(job.state));
  if (!job.state_reason.empty()) text += " (" + job.state_reason + ")";
  return text;
}

nlohmann::ordered_json JobJson(const Job& job) {
  const JobSpec& s = job.spec;
  nlohmann::ordered_json j;
  j["name"] = s.name;
  j["description"] = s.description;
  j["schedule"] = s.schedule;
  j["timezone"] = s.time_zone;
  j["state"] = std::string(JobStateName(job.state));
  j["state_reason"] = job.state_reason;
  j["next_run_at"] = TimeJson(NextRunShown(job));
  j["last_run_at"] = TimeJson(job.last_run_at);
  j["driver"] = s.driver;
  j["config"] = ConfigObject(s.driver_config);
  j["overlap"] = std::string(OverlapPolicyName(s.overlap));
  j["max_queued"] = s.max_queued;
  j["max_concurrent"] = s.max_concurrent;
  j["misfire"] = std::string(MisfirePolicyName(s.misfire));
  j["catchup_window"] = FormatDuration(s.catchup_window);
  j["starting_deadline"] = OptDuration(s.starting_deadline);
  j["timeout"] = OptDuration(s.timeout);
  j["priority"] = s.priority;
  nlohmann::ordered_json retry;
  retry["max"] = s.retry.max_retries;
  retry["backoff"] = FormatDuration(s.retry.backoff);
  retry["multiplier"] = s.retry.multiplier;
  retry["max_backoff"] = FormatDuration(s.retry.max_backoff);
  retry["jitter"] = s.retry.jitter;
  nlohmann::ordered_json on = nlohmann::ordered_json::array();
  if (s.retry.on_failed) on.push_back("failed");
  if (s.retry.on_timed_out) on.push_back("timed_out");
  if (s.retry.on_abandoned) on.push_back("abandoned");
  retry["on"] = on;
  j["retry"] = retry;
  j["start_at"] = TimeJson(s.start_at);
  j["end_at"] = TimeJson(s.end_at);
  j["tags"] = s.tags;
  j["source"] = job.source;
  j["runs"] = job.runs;
  j["successes"] = job.successes;
  j["failures"] = job.failures;
  j["version"] = job.version;
  j["created_at"] = TimeJson(job.created_at);
  j["updated_at"] = TimeJson(job.updated_at);
  return j;
}

nlohmann::ordered_json RunJson(const Run& run, bool with_output) {
  nlohmann::ordered_json j;
  j["id"] = run.id;
  j["job"] = run.job_name;
  j["scheduled_for"] = TimeJson(run.scheduled_for);
  j["queued_at"] = TimeJson(run.queued_at);
  j["started_at"] = TimeJson(run.started_at);
  j["finished_at"] = TimeJson(run.finished_at);
  j["status"] = std::string(RunStatusName(run.status));
  j["attempt"] = run.attempt;
  j["trigger"] = std::string(RunTriggerName(run.trigger));
  j["exit_code"] = run.exit_code ? nlohmann::ordered_json(*run.exit_code) : nullptr;
  j["error"] = run.error;
  j["reason"] = run.reason;
  j["instance"] = run.instance_id.empty() ? nlohmann::ordered_json(nullptr)
                                          : nlohmann::ordered_json(run.instance_id);
  if (run.started_at && run.finished_at) {
    j["duration_ms"] =
        std::chrono::duration<double, std::milli>(*run.finished_at - *run.started_at).count();
  } else {
    j["duration_ms"] = nullptr;
  }
  if (with_output) {
    j["output"] = run.output;
    j["output_truncated"] = run.output_truncated;
    j["result"] = run.result.empty() ? nlohmann::ordered_json(nullptr) : ConfigObject(run.result);
  }
  return j;
}

nlohmann::ordered_json InstanceJson(const InstanceInfo& i) {
  nlohmann::ordered_json j;
  j["id"] = i.id;
  j["host"] = i.host;
  j["pid"] = i.pid;
  j["version"] = i.version;
  j["started_at"] = TimeJson(i.started_at);
  j["heartbeat_at"] = TimeJson(i.heartbeat_at);
  j["stopped_at"] = TimeJson(i.stopped_at);
  return j;
}

void PrintTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size(), 0);
  // Cells come from users and commands: no control character reaches the terminal.
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size());
  for (const auto& r : rows) {
    std::vector<std::string> row;
    row.reserve(r.size());
    for (const std::string& cell : r) row.push_back(Printable(cell));
    cells.push_back(std::move(row));
  }
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  };
  measure(header);
  for (const auto& r : cells) measure(r);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  };
  print(header);
  for (const auto& r : cells) print(r);
}

std::string ShortTime(const std::optional<Instant>& t) {
  if (!t) return "-";
  std::string s = FormatRfc3339Utc(*t, 0);  // 2026-11-27T16:40:00Z
  if (s.size() > 10) s[10] = ' ';
  return s;
}

std::string RunDuration(const Run& run) {
  if (!run.started_at || !run.finished_at) return "-";
  const double ms =
      std::chrono::duration<double, std::milli>(*run.finished_at - *run.started_at).count();
  char buf[32];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%.0fms", ms);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fs", ms / 1000);
  }
  return buf;
}

}  // namespace sked::cli
