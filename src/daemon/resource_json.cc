#include "daemon/resource_json.h"

#include <set>
#include <string>
#include <vector>

#include "sked/cron.h"
#include "sked/schedule.h"
#include "sked/time_zone.h"

namespace sked::daemon {

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

std::optional<Instant> NextRunShown(const Job& job) {
  const bool claims = job.state == JobState::kActive || job.state == JobState::kPending;
  return claims ? job.next_run_at : std::nullopt;
}

std::vector<Instant> NextFires(const Job& job, int n) {
  std::vector<Instant> fires;
  auto zone = TimeZone::Find(job.spec.time_zone);
  if (!zone.ok() || n <= 0) return fires;
  auto schedule = Schedule::Parse(job.spec.schedule, *zone, std::chrono::seconds(0),
                                  job.spec.start_at.value_or(job.created_at));
  std::optional<Instant> t = NextRunShown(job);
  while (schedule.ok() && t && static_cast<int>(fires.size()) < n) {
    if (job.spec.end_at && *t > *job.spec.end_at) break;
    fires.push_back(*t);
    t = schedule->Next(*t);
  }
  return fires;
}

nlohmann::ordered_json FiresJson(const Job& job, int n) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  const std::vector<Instant> fires = NextFires(job, n);
  if (fires.empty()) return list;
  const TimeZone zone = *TimeZone::Find(job.spec.time_zone);  // NextFires found it
  // Cron schedules also say when a fire's local time was skipped by a jump.
  auto cron = CronSchedule::Parse(job.spec.schedule, zone, std::chrono::seconds(0));
  Instant prev = fires.front() - Duration(1);
  for (Instant t : fires) {
    const std::vector<std::string> notes = DstNotes(zone, cron.ok() ? &*cron : nullptr, prev, t);
    list.push_back({{"utc", FormatRfc3339Utc(t)},
                    {"local", FormatRfc3339(t, zone.OffsetAt(t))},
                    {"dst", !notes.empty()},
                    {"dst_notes", notes}});
    prev = t;
  }
  return list;
}

nlohmann::ordered_json JobJson(const Job& job) {
  const JobSpec& s = job.spec;
  nlohmann::ordered_json j;
  j["id"] = job.id;
  j["name"] = s.name;
  j["description"] = s.description;
  j["schedule"] = s.schedule;
  j["timezone"] = s.time_zone;
  j["state"] = std::string(JobStateName(job.state));
  j["state_reason"] = job.state_reason;
  j["next_run_at"] = TimeJson(NextRunShown(job));
  j["last_run_at"] = TimeJson(job.last_run_at);
  j["last_success_at"] = TimeJson(job.last_success_at);
  j["driver"] = s.driver;
  j["config"] = ConfigObject(s.driver_config);
  j["overlap"] = std::string(OverlapPolicyName(s.overlap));
  j["max_queued"] = s.max_queued;
  j["max_concurrent"] = s.max_concurrent;
  j["misfire"] = std::string(MisfirePolicyName(s.misfire));
  j["catchup_window"] = FormatDuration(s.catchup_window);
  j["starting_deadline"] = OptDuration(s.starting_deadline);
  j["timeout"] = OptDuration(s.timeout);
  j["late_after"] = OptDuration(s.late_after);
  j["expected_duration"] = OptDuration(s.expected_duration);
  j["no_success_for"] = OptDuration(s.no_success_for);
  j["overrun_factor"] = s.overrun_factor ? nlohmann::ordered_json(*s.overrun_factor) : nullptr;
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
  nlohmann::ordered_json notify;
  notify["on"] = s.notify.on ? nlohmann::ordered_json(*s.notify.on) : nullptr;
  notify["channels"] = s.notify.channels ? nlohmann::ordered_json(*s.notify.channels) : nullptr;
  j["notify"] = notify;
  nlohmann::ordered_json keep;
  keep["max_age"] = OptDuration(s.retention.max_age);
  keep["max_runs"] = s.retention.max_runs ? nlohmann::ordered_json(*s.retention.max_runs) : nullptr;
  keep["keep_failures"] =
      s.retention.keep_failures ? nlohmann::ordered_json(*s.retention.keep_failures) : nullptr;
  j["retention"] = keep;
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

nlohmann::ordered_json TokenJson(const ApiToken& t) {
  nlohmann::ordered_json j;
  j["id"] = t.id;
  j["name"] = t.name;
  j["role"] = t.role;
  j["created_by"] = t.created_by;
  j["created_at"] = TimeJson(t.created_at);
  j["revoked_at"] = TimeJson(t.revoked_at);
  return j;
}

nlohmann::ordered_json NotificationJson(const Notification& n) {
  nlohmann::ordered_json j;
  j["id"] = n.id;
  j["event"] = n.event;
  j["channel"] = n.channel;
  j["job"] = n.job_name;
  j["job_id"] = n.job_id;
  j["run"] = n.run_id ? nlohmann::ordered_json(*n.run_id) : nlohmann::ordered_json(nullptr);
  j["status"] = NotificationStatusName(n.status);
  j["attempts"] = n.attempts;
  j["created_at"] = TimeJson(n.created_at);
  j["next_attempt_at"] =
      n.status == NotificationStatus::kPending ? TimeJson(n.next_attempt_at) : nullptr;
  j["claimed_by"] = n.claimed_by;
  j["finished_at"] = n.finished_at ? TimeJson(*n.finished_at) : nullptr;
  j["last_error"] = n.last_error;
  return j;
}

nlohmann::ordered_json DeliveryAttemptJson(const DeliveryAttempt& a) {
  nlohmann::ordered_json j;
  j["attempt"] = a.attempt;
  j["instance"] = a.instance;
  j["finished_at"] = TimeJson(a.finished_at);
  j["delivered"] = a.delivered;
  j["error"] = a.error;
  j["retry_at"] = a.retry_at ? TimeJson(*a.retry_at) : nullptr;
  return j;
}

nlohmann::ordered_json AuditJson(const AuditEntry& e) {
  nlohmann::ordered_json j;
  j["id"] = e.id;
  j["at"] = TimeJson(e.at);
  j["actor"] = e.actor;
  j["action"] = e.action;
  j["target"] = e.target;
  j["source"] = e.source;
  j["status"] = e.status;
  j["detail"] = e.detail;
  return j;
}

namespace {

using Json = nlohmann::json;

SpecError Wrong(std::string field, std::string message) {
  return {std::move(field), std::move(message)};
}

std::optional<SpecError> ReadString(const Json& v, const std::string& field, std::string* out) {
  if (!v.is_string()) return Wrong(field, "must be a string");
  *out = v.get<std::string>();
  return std::nullopt;
}

std::optional<SpecError> ReadInt(const Json& v, const std::string& field, int lo, int hi,
                                 int* out) {
  if (!v.is_number_integer()) return Wrong(field, "must be an integer");
  const auto n = v.get<std::int64_t>();
  if (n < lo || n > hi) {
    return Wrong(field, "must be " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                            std::to_string(n));
  }
  *out = static_cast<int>(n);
  return std::nullopt;
}

std::optional<SpecError> ReadDouble(const Json& v, const std::string& field, double* out) {
  if (!v.is_number()) return Wrong(field, "must be a number");
  *out = v.get<double>();
  return std::nullopt;
}

std::optional<SpecError> ReadDuration(const Json& v, const std::string& field, Duration* out) {
  if (!v.is_string()) return Wrong(field, "must be a duration string such as \"90s\" or \"1h30m\"");
  auto d = ParseDuration(v.get<std::string>());
  if (!d.ok()) return Wrong(field, d.status().message());
  *out = *d;
  return std::nullopt;
}

template <typename T>
std::optional<SpecError> ReadOptional(const Json& v, const std::string& field,
                                      std::optional<T>* out,
                                      std::optional<SpecError> (*read)(const Json&,
                                                                       const std::string&, T*)) {
  if (v.is_null()) {
    out->reset();
    return std::nullopt;
  }
  T value{};
  if (auto e = read(v, field, &value)) return e;
  *out = value;
  return std::nullopt;
}

std::optional<SpecError> ReadInstant(const Json& v, const std::string& field, Instant* out) {
  if (!v.is_string())
    return Wrong(field, "must be an RFC 3339 time such as \"2027-01-01T09:00:00Z\"");
  auto t = ParseRfc3339(v.get<std::string>());
  if (!t.ok()) return Wrong(field, t.status().message());
  *out = *t;
  return std::nullopt;
}

template <typename Enum>
std::optional<SpecError> ReadEnum(const Json& v, const std::string& field,
                                  Result<Enum> (*parse)(std::string_view), Enum* out) {
  if (!v.is_string()) return Wrong(field, "must be a string");
  auto e = parse(v.get<std::string>());
  if (!e.ok()) return Wrong(field, e.status().message());
  *out = *e;
  return std::nullopt;
}

std::optional<SpecError> ApplyRetry(const Json& body, RetryPolicy* r) {
  if (!body.is_object()) return Wrong("retry", "must be an object");
  for (const auto& [key, v] : body.items()) {
    const std::string field = "retry." + key;
    std::optional<SpecError> e;
    if (key == "max") {
      e = ReadInt(v, field, 0, 100, &r->max_retries);
    } else if (key == "backoff") {
      e = ReadDuration(v, field, &r->backoff);
    } else if (key == "multiplier") {
      e = ReadDouble(v, field, &r->multiplier);
    } else if (key == "max_backoff") {
      e = ReadDuration(v, field, &r->max_backoff);
    } else if (key == "jitter") {
      e = ReadDouble(v, field, &r->jitter);
    } else if (key == "on") {
      if (!v.is_array()) return Wrong(field, "must be a list of failed, timed_out, abandoned");
      r->on_failed = r->on_timed_out = r->on_abandoned = false;
      for (const Json& s : v) {
        const std::string name = s.is_string() ? s.get<std::string>() : "";
        if (name == "failed") {
          r->on_failed = true;
        } else if (name == "timed_out") {
          r->on_timed_out = true;
        } else if (name == "abandoned") {
          r->on_abandoned = true;
        } else {
          return Wrong(field, "must be a list of failed, timed_out, abandoned");
        }
      }
    } else {
      return Wrong(field, "unknown key (known: max, backoff, multiplier, max_backoff, jitter, on)");
    }
    if (e) return e;
  }
  return std::nullopt;
}

// `retention`: {"max_age": "30d" | null, "max_runs": n | null,
// "keep_failures": n | null}; null takes the [retention] default, a key left
// out keeps what is set.
std::optional<SpecError> ApplyRetention(const Json& body, RetentionSpec* keep) {
  if (!body.is_object()) {
    return Wrong("retention", "must be an object with max_age, max_runs, keep_failures");
  }
  // Bounds as the config file's; the job's validation says the same.
  for (const auto& [key, v] : body.items()) {
    const std::string field = "retention." + key;
    std::optional<SpecError> e;
    if (key == "max_age") {
      e = ReadOptional<Duration>(v, field, &keep->max_age, ReadDuration);
    } else if (key == "max_runs") {
      e = ReadOptional<int>(
          v, field, &keep->max_runs, +[](const Json& x, const std::string& f, int* o) {
            return ReadInt(x, f, 0, 100000000, o);
          });
    } else if (key == "keep_failures") {
      e = ReadOptional<int>(
          v, field, &keep->keep_failures, +[](const Json& x, const std::string& f, int* o) {
            return ReadInt(x, f, 0, 1000000, o);
          });
    } else {
      return Wrong(field, "unknown key (known: max_age, max_runs, keep_failures)");
    }
    if (e) return e;
  }
  return std::nullopt;
}

// `notify`: {"on": [...] | null, "channels": [...] | null}; a key left out
// keeps what is set.
std::optional<SpecError> ApplyNotify(const Json& body, NotifySpec* n) {
  if (!body.is_object()) return Wrong("notify", "must be an object with on and channels");
  for (const auto& [key, v] : body.items()) {
    const std::string field = "notify." + key;
    std::optional<std::vector<std::string>>* target = nullptr;
    if (key == "on") {
      target = &n->on;
    } else if (key == "channels") {
      target = &n->channels;
    } else {
      return Wrong(field, "unknown key (known: on, channels)");
    }
    if (v.is_null()) {
      target->reset();
      continue;
    }
    if (!v.is_array()) return Wrong(field, "must be a list of strings or null");
    std::vector<std::string> names;
    for (const Json& s : v) {
      if (!s.is_string()) return Wrong(field, "must be a list of strings or null");
      names.push_back(s.get<std::string>());
    }
    *target = std::move(names);
  }
  return std::nullopt;
}

}  // namespace

std::optional<SpecError> ApplySpecJson(const Json& body, bool allow_read_only, JobSpec* spec) {
  if (!body.is_object()) return Wrong("", "the body must be a JSON object");
  static const std::set<std::string, std::less<>> kReadOnly = {"id",
                                                               "state",
                                                               "state_reason",
                                                               "next_run_at",
                                                               "last_run_at",
                                                               "last_success_at",
                                                               "source",
                                                               "runs",
                                                               "successes",
                                                               "failures",
                                                               "version",
                                                               "created_at",
                                                               "updated_at",
                                                               "next_fires",
                                                               "failing",
                                                               "late",
                                                               "schedule_description",
                                                               "recent_runs"};
  for (const auto& [key, v] : body.items()) {
    std::optional<SpecError> e;
    if (key == "name") {
      e = ReadString(v, key, &spec->name);
    } else if (key == "description") {
      e = ReadString(v, key, &spec->description);
    } else if (key == "schedule") {
      e = ReadString(v, key, &spec->schedule);
    } else if (key == "timezone") {
      e = ReadString(v, key, &spec->time_zone);
    } else if (key == "driver") {
      e = ReadString(v, key, &spec->driver);
    } else if (key == "config") {
      if (!v.is_object()) return Wrong(key, "must be a JSON object (the driver's config)");
      spec->driver_config = v.dump();
    } else if (key == "overlap") {
      e = ReadEnum<OverlapPolicy>(v, key, ParseOverlapPolicy, &spec->overlap);
    } else if (key == "max_queued") {
      e = ReadInt(v, key, 1, 1000, &spec->max_queued);
    } else if (key == "max_concurrent") {
      e = ReadInt(v, key, 1, 1000, &spec->max_concurrent);
    } else if (key == "misfire") {
      e = ReadEnum<MisfirePolicy>(v, key, ParseMisfirePolicy, &spec->misfire);
    } else if (key == "catchup_window") {
      e = ReadDuration(v, key, &spec->catchup_window);
    } else if (key == "starting_deadline") {
      e = ReadOptional<Duration>(v, key, &spec->starting_deadline, ReadDuration);
    } else if (key == "late_after") {
      e = ReadOptional<Duration>(v, key, &spec->late_after, ReadDuration);
    } else if (key == "expected_duration") {
      e = ReadOptional<Duration>(v, key, &spec->expected_duration, ReadDuration);
    } else if (key == "no_success_for") {
      e = ReadOptional<Duration>(v, key, &spec->no_success_for, ReadDuration);
    } else if (key == "overrun_factor") {
      e = ReadOptional<double>(v, key, &spec->overrun_factor, ReadDouble);
    } else if (key == "timeout") {
      e = ReadOptional<Duration>(v, key, &spec->timeout, ReadDuration);
    } else if (key == "priority") {
      e = ReadInt(v, key, -1000, 1000, &spec->priority);
    } else if (key == "retry") {
      e = ApplyRetry(v, &spec->retry);
    } else if (key == "start_at") {
      e = ReadOptional<Instant>(v, key, &spec->start_at, ReadInstant);
    } else if (key == "end_at") {
      e = ReadOptional<Instant>(v, key, &spec->end_at, ReadInstant);
    } else if (key == "tags") {
      if (!v.is_array()) return Wrong(key, "must be a list of strings");
      std::vector<std::string> tags;
      for (const Json& t : v) {
        if (!t.is_string()) return Wrong(key, "must be a list of strings");
        tags.push_back(t.get<std::string>());
      }
      spec->tags = std::move(tags);
    } else if (key == "notify") {
      e = ApplyNotify(v, &spec->notify);
    } else if (key == "retention") {
      e = ApplyRetention(v, &spec->retention);
    } else if (key == "paused") {
      if (!v.is_boolean()) return Wrong(key, "must be true or false");
      spec->paused = v.get<bool>();
    } else if (kReadOnly.count(key) != 0) {
      if (!allow_read_only) return Wrong(key, "is set by sked and cannot be written");
    } else {
      return Wrong(key, "unknown key");
    }
    if (e) return e;
  }
  return std::nullopt;
}

}  // namespace sked::daemon
