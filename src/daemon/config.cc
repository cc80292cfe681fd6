#include "daemon/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/notify_policy.h"

extern char** environ;

namespace sked::daemon {
namespace {

// Where a value came from, for messages: "sked.toml:7: scheduler.workers".
struct Where {
  std::string text;
  std::string Say(const std::string& what) const { return text + ": " + what; }
};

Where At(const std::string& file, const toml::node& node, const std::string& key) {
  return {file + ":" + std::to_string(node.source().begin.line) + ": " + key};
}

// A scalar from the file or from the environment, with its location.
struct Value {
  const toml::node* node = nullptr;  // from the file
  std::string env;                   // from the environment (node == nullptr)
  Where where;
};

Result<std::string> AsString(const Value& v) {
  if (v.node == nullptr) return v.env;
  if (auto s = v.node->value<std::string>(); s && v.node->is_string()) return *s;
  return InvalidArgumentError(v.where.Say("must be a string"));
}

Result<std::int64_t> AsInt(const Value& v, std::int64_t lo, std::int64_t hi) {
  std::int64_t n = 0;
  const std::string range =
      "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  if (v.node == nullptr) {
    char* end = nullptr;
    errno = 0;
    const long long parsed = std::strtoll(v.env.c_str(), &end, 10);
    if (v.env.empty() || *end != '\0' || errno != 0) {
      return InvalidArgumentError(v.where.Say(range + ", got '" + v.env + "'"));
    }
    n = parsed;
  } else if (v.node->is_integer()) {
    n = *v.node->value<std::int64_t>();
  } else {
    return InvalidArgumentError(v.where.Say(range));
  }
  if (n < lo || n > hi) {
    return InvalidArgumentError(v.where.Say(range + ", got " + std::to_string(n)));
  }
  return n;
}

Result<double> AsDouble(const Value& v, double lo, double hi) {
  double d = 0;
  std::ostringstream range;
  range << "must be a number from " << lo << " to " << hi;
  if (v.node == nullptr) {
    char* end = nullptr;
    d = std::strtod(v.env.c_str(), &end);
    if (v.env.empty() || *end != '\0') {
      return InvalidArgumentError(v.where.Say(range.str() + ", got '" + v.env + "'"));
    }
  } else if (v.node->is_number()) {
    d = *v.node->value<double>();
  } else {
    return InvalidArgumentError(v.where.Say(range.str()));
  }
  if (!(d >= lo && d <= hi)) return InvalidArgumentError(v.where.Say(range.str()));
  return d;
}

Result<bool> AsBool(const Value& v) {
  if (v.node == nullptr) {
    if (v.env == "true" || v.env == "1") return true;
    if (v.env == "false" || v.env == "0") return false;
    return InvalidArgumentError(v.where.Say("must be true or false, got '" + v.env + "'"));
  }
  if (v.node->is_boolean()) return *v.node->value<bool>();
  return InvalidArgumentError(v.where.Say("must be true or false"));
}

Result<Duration> AsDuration(const Value& v, Duration lo) {
  SKED_ASSIGN_OR_RETURN(std::string text, AsString(v));
  auto d = ParseDuration(text);
  if (!d.ok()) return InvalidArgumentError(v.where.Say(d.status().message()));
  if (*d < lo) {
    return InvalidArgumentError(
        v.where.Say("must be at least " + FormatDuration(lo) + ", got '" + text + "'"));
  }
  return *d;
}

Result<Instant> AsInstant(const Value& v) {
  if (v.node != nullptr && v.node->is_date_time()) {
    const toml::date_time dt = *v.node->value<toml::date_time>();
    if (!dt.offset) {
      return InvalidArgumentError(
          v.where.Say("needs a UTC offset (e.g. 2026-12-01T09:00:00Z or +01:00)"));
    }
    std::ostringstream text;
    text << dt;
    auto t = ParseRfc3339(text.str());
    if (!t.ok()) return InvalidArgumentError(v.where.Say(t.status().message()));
    return *t;
  }
  SKED_ASSIGN_OR_RETURN(std::string text, AsString(v));
  auto t = ParseRfc3339(text);
  if (!t.ok()) return InvalidArgumentError(v.where.Say(t.status().message()));
  return *t;
}

template <typename T>
Result<T> OneOf(const Value& v, const std::function<Result<T>(std::string_view)>& parse,
                const char* choices) {
  SKED_ASSIGN_OR_RETURN(std::string text, AsString(v));
  auto parsed = parse(text);
  if (!parsed.ok()) {
    return InvalidArgumentError(
        v.where.Say(std::string("must be one of ") + choices + ", got '" + text + "'"));
  }
  return *parsed;
}

// TOML values as JSON (a driver's config).
nlohmann::json ToJson(const toml::node& node) {
  if (const toml::table* t = node.as_table()) {
    nlohmann::json j = nlohmann::json::object();
    for (auto&& [k, v] : *t) j[std::string(k.str())] = ToJson(v);
    return j;
  }
  if (const toml::array* a = node.as_array()) {
    nlohmann::json j = nlohmann::json::array();
    for (const toml::node& v : *a) j.push_back(ToJson(v));
    return j;
  }
  if (node.is_string()) return *node.value<std::string>();
  if (node.is_integer()) return *node.value<std::int64_t>();
  if (node.is_floating_point()) return *node.value<double>();
  if (node.is_boolean()) return *node.value<bool>();
  std::ostringstream text;  // dates and times: their TOML text
  node.visit([&](auto&& n) {
    if constexpr (toml::is_date<decltype(n)> || toml::is_time<decltype(n)> ||
                  toml::is_date_time<decltype(n)>) {
      text << *n;
    }
  });
  return text.str();
}

// Setters for a table's keys; unknown keys are errors.
using Setter = std::function<Status(const Value&)>;

Status ApplyTable(const std::string& file, const std::string& section, const toml::table& table,
                  const std::map<std::string, Setter>& setters) {
  for (auto&& [k, v] : table) {
    const std::string key(k.str());
    std::string name = section;
    if (!name.empty()) name += ".";
    name += key;
    auto it = setters.find(key);
    if (it == setters.end()) {
      std::string known;
      for (const auto& [n, s] : setters) known += (known.empty() ? "" : ", ") + n;
      return InvalidArgumentError(At(file, v, name).Say("unknown key (known: " + known + ")"));
    }
    SKED_RETURN_IF_ERROR(it->second(Value{&v, "", At(file, v, name)}));
  }
  return Status::Ok();
}

// Environment overrides for a section: SKED_<SECTION>_<KEY>.
Status ApplyEnv(const std::string& section, const std::map<std::string, Setter>& setters,
                const std::map<std::string, std::string>& env) {
  std::string prefix = "SKED_" + section + "_";
  for (char& c : prefix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& [name, value] : env) {
    if (name.rfind(prefix, 0) != 0) continue;
    std::string key = name.substr(prefix.size());
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = setters.find(key);
    if (it == setters.end()) {
      std::string message = "environment " + name + ": no key ";
      message.append(section).append(".").append(key);
      return InvalidArgumentError(message);
    }
    SKED_RETURN_IF_ERROR(it->second(Value{nullptr, value, {"environment " + name}}));
  }
  return Status::Ok();
}

#define SKED_SET(target, expr)           \
  [&](const Value& v) -> Status {        \
    SKED_ASSIGN_OR_RETURN(auto x, expr); \
    (target) = x;                        \
    return Status::Ok();                 \
  }

std::string ResolveStoreUrl(const std::string& url, const std::string& dir) {
  constexpr std::string_view kSqlite = "sqlite://";
  if (url.rfind(kSqlite, 0) != 0 || dir.empty()) return url;
  const std::string path = url.substr(kSqlite.size());
  if (path.empty() || path[0] == '/') return url;
  return std::string(kSqlite) + (std::filesystem::path(dir) / path).lexically_normal().string();
}

Status ParseRetry(const std::string& file, const toml::node& node, const std::string& name,
                  RetryPolicy* retry) {
  const toml::table* t = node.as_table();
  if (t == nullptr) return InvalidArgumentError(At(file, node, name).Say("must be a table"));
  std::map<std::string, Setter> setters = {
      {"max", SKED_SET(retry->max_retries, AsInt(v, 0, 1000))},
      {"backoff", SKED_SET(retry->backoff, AsDuration(v, Duration(0)))},
      {"multiplier", SKED_SET(retry->multiplier, AsDouble(v, 1.0, 100.0))},
      {"max_backoff", SKED_SET(retry->max_backoff, AsDuration(v, Duration(0)))},
      {"jitter", SKED_SET(retry->jitter, AsDouble(v, 0.0, 1.0))},
      {"on",
       [&](const Value& v) -> Status {
         const toml::array* a = v.node->as_array();
         if (a == nullptr) {
           return InvalidArgumentError(
               v.where.Say("must be a list of failed, timed_out, abandoned"));
         }
         retry->on_failed = retry->on_timed_out = retry->on_abandoned = false;
         for (const toml::node& e : *a) {
           const std::string s = e.value<std::string>().value_or("");
           if (s == "failed") {
             retry->on_failed = true;
           } else if (s == "timed_out") {
             retry->on_timed_out = true;
           } else if (s == "abandoned") {
             retry->on_abandoned = true;
           } else {
             return InvalidArgumentError(
                 v.where.Say("must be a list of failed, timed_out, abandoned, got '" + s + "'"));
           }
         }
         return Status::Ok();
       }},
  };
  return ApplyTable(file, name, *t, setters);
}

Result<std::vector<std::string>> AsStringList(const Value& v) {
  const toml::array* a = v.node != nullptr ? v.node->as_array() : nullptr;
  if (a == nullptr) {
    // From the environment: a comma list.
    if (v.node == nullptr) {
      std::vector<std::string> out;
      size_t start = 0;
      while (start < v.env.size()) {
        size_t comma = v.env.find(',', start);
        if (comma == std::string::npos) comma = v.env.size();
        if (comma > start) out.push_back(v.env.substr(start, comma - start));
        start = comma + 1;
      }
      return out;
    }
    return InvalidArgumentError(v.where.Say("must be a list of strings"));
  }
  std::vector<std::string> out;
  for (const toml::node& e : *a) {
    if (!e.is_string()) return InvalidArgumentError(v.where.Say("must be a list of strings"));
    out.push_back(*e.value<std::string>());
  }
  return out;
}

// A job's `retention = { max_age = "30d", max_runs = 100, keep_failures = 5 }`.
Status ParseJobRetention(const std::string& file, const toml::node& node, const std::string& name,
                         RetentionSpec* keep) {
  const toml::table* t = node.as_table();
  if (t == nullptr) return InvalidArgumentError(At(file, node, name).Say("must be a table"));
  std::map<std::string, Setter> setters = {
      {"max_age", SKED_SET(keep->max_age, AsDuration(v, Duration(0)))},
      {"max_runs", SKED_SET(keep->max_runs, AsInt(v, 0, 100000000))},
      {"keep_failures", SKED_SET(keep->keep_failures, AsInt(v, 0, 1000000))},
  };
  return ApplyTable(file, name, *t, setters);
}

// A job's `notify = { on = [...], channels = [...] }`.
Status ParseJobNotify(const std::string& file, const toml::node& node, const std::string& name,
                      NotifySpec* notify) {
  const toml::table* t = node.as_table();
  if (t == nullptr) return InvalidArgumentError(At(file, node, name).Say("must be a table"));
  std::map<std::string, Setter> setters = {
      {"on", SKED_SET(notify->on, AsStringList(v))},
      {"channels", SKED_SET(notify->channels, AsStringList(v))},
  };
  SKED_RETURN_IF_ERROR(ApplyTable(file, name, *t, setters));
  if (Status st = policy::ValidateNotifySpec(*notify); !st.ok()) {
    return InvalidArgumentError(At(file, node, name).Say(st.message()));
  }
  return Status::Ok();
}

// A plain address (no display name): local@domain, no spaces, CR/LF, angle
// brackets or commas (it goes into mail headers and SMTP commands).
bool IsMailbox(const std::string& a) {
  const size_t at = a.find('@');
  return at != std::string::npos && at > 0 && at + 1 < a.size() && a.size() <= 254 &&
         a.find_first_of(" \t\r\n<>,;\"()") == std::string::npos &&
         a.find('@', at + 1) == std::string::npos;
}

// A secret named by `<key>_env` (an environment variable) or `<key>_file`
// (a file, trailing newline dropped); never logged.
Result<std::string> ReadSecret(const Value& v, bool from_file,
                               const std::map<std::string, std::string>& env) {
  SKED_ASSIGN_OR_RETURN(std::string ref, AsString(v));
  if (!from_file) {
    auto it = env.find(ref);
    const char* value = it != env.end() ? it->second.c_str() : std::getenv(ref.c_str());
    if (value == nullptr || *value == '\0') {
      return InvalidArgumentError(v.where.Say("environment variable '" + ref + "' is not set"));
    }
    return std::string(value);
  }
  std::ifstream in(ref, std::ios::binary);
  if (!in) {
    return InvalidArgumentError(v.where.Say("cannot read '" + ref + "': " + std::strerror(errno)));
  }
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) return InvalidArgumentError(v.where.Say("'" + ref + "' is empty"));
  return secret;
}

Result<notify::ChannelConfig> ParseChannel(const std::string& file, const toml::table& t,
                                           size_t index,
                                           const std::map<std::string, std::string>& env) {
  notify::ChannelConfig c;
  const std::string section = "channel[" + std::to_string(index) + "]";
  std::map<std::string, Setter> setters = {
      {"name", SKED_SET(c.name, AsString(v))},
      {"type",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(c.type, AsString(v));
         if (c.type != "webhook" && c.type != "email" && c.type != "command" && c.type != "log") {
           return InvalidArgumentError(
               v.where.Say("must be one of webhook, email, command, log, got '" + c.type + "'"));
         }
         return Status::Ok();
       }},
      {"timeout", SKED_SET(c.timeout, AsDuration(v, std::chrono::milliseconds(100)))},
      {"url", SKED_SET(c.url, AsString(v))},
      {"ca_file", SKED_SET(c.ca_file, AsString(v))},
      {"secret_env", SKED_SET(c.secret, ReadSecret(v, false, env))},
      {"secret_file", SKED_SET(c.secret, ReadSecret(v, true, env))},
      {"headers",
       [&](const Value& v) -> Status {
         const toml::table* h = v.node->as_table();
         if (h == nullptr) return InvalidArgumentError(v.where.Say("must be a table"));
         for (auto&& [k, hv] : *h) {
           const std::string key(k.str());
           const bool token = !key.empty() && std::all_of(key.begin(), key.end(), [](char ch) {
             return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
           });
           const std::string value = hv.value<std::string>().value_or("");
           if (!token || !hv.is_string() || value.find_first_of("\r\n") != std::string::npos) {
             return InvalidArgumentError(
                 v.where.Say("header '" + key +
                             "': a name of letters, digits, '-', '_' and a one-line "
                             "string value"));
           }
           c.headers.emplace_back(key, value);
         }
         return Status::Ok();
       }},
      {"command", SKED_SET(c.command, AsStringList(v))},
      {"tls",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(c.tls, AsString(v));
         if (c.tls != "starttls" && c.tls != "implicit" && c.tls != "none") {
           return InvalidArgumentError(
               v.where.Say("must be one of starttls, implicit, none, got '" + c.tls + "'"));
         }
         return Status::Ok();
       }},
      {"username", SKED_SET(c.username, AsString(v))},
      {"password_env", SKED_SET(c.password, ReadSecret(v, false, env))},
      {"password_file", SKED_SET(c.password, ReadSecret(v, true, env))},
      {"from",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(c.from, AsString(v));
         if (!IsMailbox(c.from)) return InvalidArgumentError(v.where.Say("must be an address"));
         return Status::Ok();
       }},
      {"to",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(c.to, AsStringList(v));
         for (const std::string& to : c.to) {
           if (!IsMailbox(to)) {
             return InvalidArgumentError(v.where.Say("'" + to + "' is not an address"));
           }
         }
         return Status::Ok();
       }},
  };
  SKED_RETURN_IF_ERROR(ApplyTable(file, section, t, setters));
  const Where where = At(file, t, section);
  for (const char* required : {"name", "type"}) {
    if (!t.contains(required)) {
      return InvalidArgumentError(
          where.Say(std::string("missing required key '") + required + "'"));
    }
  }
  NotifySpec name_check;
  name_check.channels = std::vector<std::string>{c.name};
  if (!policy::ValidateNotifySpec(name_check).ok()) {
    return InvalidArgumentError(
        where.Say("name '" + c.name + "': 1-64 letters, digits, '.', '_' or '-'"));
  }
  const auto only = [&](std::initializer_list<const char*> keys, const char* type) -> Status {
    for (auto&& [k, kv] : t) {
      const std::string key(k.str());
      if (key == "name" || key == "type" || key == "timeout") continue;
      if (std::find_if(keys.begin(), keys.end(), [&](const char* x) { return key == x; }) ==
          keys.end()) {
        return InvalidArgumentError(
            where.Say("key '" + key + "' does not apply to a " + type + " channel"));
      }
    }
    return Status::Ok();
  };
  auto url_of = [&](std::initializer_list<const char*> schemes, const char* what) -> Status {
    const bool known = std::any_of(schemes.begin(), schemes.end(), [&](const char* scheme) {
      return c.url.rfind(scheme, 0) == 0 && c.url.size() > std::strlen(scheme);
    });
    if (!known || c.url.find_first_of(" \t\r\n") != std::string::npos) {
      return InvalidArgumentError(At(file, *t.get("url"), section + ".url").Say(what));
    }
    return Status::Ok();
  };
  if (c.type == "webhook") {
    if (c.url.empty()) return InvalidArgumentError(where.Say("a webhook channel needs url"));
    SKED_RETURN_IF_ERROR(url_of({"http://", "https://"}, "must be an http:// or https:// URL"));
    SKED_RETURN_IF_ERROR(
        only({"url", "headers", "secret_env", "secret_file", "ca_file"}, "webhook"));
  } else if (c.type == "email") {
    if (c.url.empty() || c.from.empty() || c.to.empty()) {
      return InvalidArgumentError(where.Say("an email channel needs url, from and to"));
    }
    SKED_RETURN_IF_ERROR(url_of({"smtp://", "smtps://"}, "must be an smtp:// or smtps:// URL"));
    if (c.url.rfind("smtps://", 0) == 0) c.tls = "implicit";
    if (c.password.empty() != c.username.empty()) {
      return InvalidArgumentError(
          where.Say("username and password_env (or password_file) go together"));
    }
    SKED_RETURN_IF_ERROR(
        only({"url", "tls", "username", "password_env", "password_file", "from", "to", "ca_file"},
             "email"));
  } else if (c.type == "command") {
    if (c.command.empty() || c.command[0].empty()) {
      return InvalidArgumentError(
          where.Say("a command channel needs command = [\"program\", ...]"));
    }
    SKED_RETURN_IF_ERROR(only({"command"}, "command"));
  } else {
    SKED_RETURN_IF_ERROR(only({}, "log"));
  }
  return c;
}

Result<JobSpec> ParseJob(const std::string& file, const toml::table& t, size_t index) {
  JobSpec spec;
  const std::string section = "job[" + std::to_string(index) + "]";
  std::map<std::string, Setter> setters = {
      {"name", SKED_SET(spec.name, AsString(v))},
      {"description", SKED_SET(spec.description, AsString(v))},
      {"schedule", SKED_SET(spec.schedule, AsString(v))},
      {"timezone", SKED_SET(spec.time_zone, AsString(v))},
      {"time_zone", SKED_SET(spec.time_zone, AsString(v))},
      {"driver", SKED_SET(spec.driver, AsString(v))},
      {"config",
       [&](const Value& v) -> Status {
         if (!v.node->is_table()) return InvalidArgumentError(v.where.Say("must be a table"));
         spec.driver_config = ToJson(*v.node).dump();
         return Status::Ok();
       }},
      {"start_at", SKED_SET(spec.start_at, AsInstant(v))},
      {"end_at", SKED_SET(spec.end_at, AsInstant(v))},
      {"overlap", SKED_SET(spec.overlap, OneOf<OverlapPolicy>(v, ParseOverlapPolicy,
                                                              "skip, queue, concurrent, replace"))},
      {"max_queued", SKED_SET(spec.max_queued, AsInt(v, 1, 1000))},
      {"max_concurrent", SKED_SET(spec.max_concurrent, AsInt(v, 1, 1000))},
      {"misfire", SKED_SET(spec.misfire,
                           OneOf<MisfirePolicy>(v, ParseMisfirePolicy, "run_once, skip, run_all"))},
      {"catchup_window", SKED_SET(spec.catchup_window, AsDuration(v, Duration(0)))},
      {"starting_deadline", SKED_SET(spec.starting_deadline, AsDuration(v, Duration(1)))},
      {"timeout", SKED_SET(spec.timeout, AsDuration(v, Duration(1)))},
      {"late_after", SKED_SET(spec.late_after, AsDuration(v, std::chrono::seconds(1)))},
      {"expected_duration",
       SKED_SET(spec.expected_duration, AsDuration(v, std::chrono::seconds(1)))},
      {"no_success_for", SKED_SET(spec.no_success_for, AsDuration(v, std::chrono::seconds(1)))},
      {"overrun_factor", SKED_SET(spec.overrun_factor, AsDouble(v, 1.1, 100.0))},
      {"priority", SKED_SET(spec.priority, AsInt(v, -1000, 1000))},
      {"retry",
       [&](const Value& v) { return ParseRetry(file, *v.node, section + ".retry", &spec.retry); }},
      {"tags",
       [&](const Value& v) -> Status {
         const toml::array* a = v.node->as_array();
         if (a == nullptr) return InvalidArgumentError(v.where.Say("must be a list of strings"));
         for (const toml::node& e : *a) {
           if (!e.is_string()) {
             return InvalidArgumentError(v.where.Say("must be a list of strings"));
           }
           spec.tags.push_back(*e.value<std::string>());
         }
         return Status::Ok();
       }},
      {"paused", SKED_SET(spec.paused, AsBool(v))},
      {"notify",
       [&](const Value& v) {
         return ParseJobNotify(file, *v.node, section + ".notify", &spec.notify);
       }},
      {"retention",
       [&](const Value& v) {
         return ParseJobRetention(file, *v.node, section + ".retention", &spec.retention);
       }},
  };
  SKED_RETURN_IF_ERROR(ApplyTable(file, section, t, setters));
  const Where where = At(file, t, section);
  for (const char* required : {"name", "schedule", "driver"}) {
    if (!t.contains(required)) {
      return InvalidArgumentError(
          where.Say(std::string("missing required key '") + required + "'"));
    }
  }
  return spec;
}

}  // namespace

Result<Config> ParseConfig(const std::string& text, const std::string& name, const std::string& dir,
                           const std::map<std::string, std::string>& env) {
  Config c;
  c.path = name;
  c.store_url = "sqlite://sked.db";
  c.engine.min_interval =
      std::chrono::minutes(1);  // as the engine's, cron validate's, docs/cron.md
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    return InvalidArgumentError(name + ":" + std::to_string(e.source().begin.line) + ": " +
                                std::string(e.description()));
  }

  std::map<std::string, Setter> store = {
      {"url",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(std::string url, AsString(v));
         bool known = url == "sqlite::memory:";
         for (std::string_view scheme : {"sqlite://", "postgresql://", "postgres://"}) {
           known = known || url.rfind(scheme, 0) == 0;
         }
         if (!known) {
           return InvalidArgumentError(v.where.Say(
               "expected sqlite://PATH or a postgresql:// URI, got '" + Store::Redact(url) + "'"));
         }
         c.store_url = url;
         return Status::Ok();
       }},
      {"schema",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(std::string schema, AsString(v));
         if (schema.empty() || schema.size() > 63) {
           return InvalidArgumentError(v.where.Say("must be 1 to 63 bytes (a PostgreSQL name)"));
         }
         c.store.schema = schema;
         return Status::Ok();
       }},
      {"max_connections",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(c.store.max_connections, AsInt(v, 1, 1000));
         c.store_max_connections_set = true;
         return Status::Ok();
       }},
  };
  EngineOptions& e = c.engine;
  std::map<std::string, Setter> scheduler = {
      {"instance_id", SKED_SET(e.instance_id, AsString(v))},
      {"workers", SKED_SET(e.workers, AsInt(v, 1, 4096))},
      {"min_interval",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(Duration d, AsDuration(v, std::chrono::seconds(1)));
         if (d % std::chrono::seconds(1) != Duration(0)) {
           return InvalidArgumentError(v.where.Say("must be whole seconds"));
         }
         e.min_interval = std::chrono::duration_cast<std::chrono::seconds>(d);
         return Status::Ok();
       }},
      {"default_timeout", SKED_SET(e.default_timeout, AsDuration(v, std::chrono::seconds(1)))},
      {"lease", SKED_SET(e.lease, AsDuration(v, std::chrono::seconds(2)))},
      {"heartbeat", SKED_SET(e.heartbeat, AsDuration(v, std::chrono::milliseconds(100)))},
      {"shutdown_grace", SKED_SET(e.shutdown_grace, AsDuration(v, Duration(0)))},
      {"misfire_threshold",
       SKED_SET(e.misfire_threshold, AsDuration(v, std::chrono::milliseconds(1)))},
      {"poll_interval", SKED_SET(e.poll_interval, AsDuration(v, std::chrono::milliseconds(10)))},
      {"claim_ahead", SKED_SET(e.claim_ahead, AsDuration(v, Duration(0)))},
      {"max_catchup_runs", SKED_SET(e.max_catchup_runs, AsInt(v, 1, 100000))},
      {"metrics_max_jobs", SKED_SET(e.metrics_max_jobs, AsInt(v, 0, 1000000))},
  };
  std::map<std::string, Setter> log = {
      {"level",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(std::string s, AsString(v));
         static const std::map<std::string, LogLevel> kLevels = {{"debug", LogLevel::kDebug},
                                                                 {"info", LogLevel::kInfo},
                                                                 {"warn", LogLevel::kWarn},
                                                                 {"error", LogLevel::kError}};
         auto it = kLevels.find(s);
         if (it == kLevels.end()) {
           return InvalidArgumentError(
               v.where.Say("must be one of debug, info, warn, error, got '" + s + "'"));
         }
         c.log_level = it->second;
         return Status::Ok();
       }},
      {"format",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(std::string s, AsString(v));
         if (s != "text" && s != "json") {
           return InvalidArgumentError(v.where.Say("must be text or json, got '" + s + "'"));
         }
         c.log_format = s == "json" ? LogFormat::kJson : LogFormat::kText;
         return Status::Ok();
       }},
  };

  server::ServerOptions& srv = c.server;
  auto whole_seconds = [](const Value& v, std::chrono::seconds* out) -> Status {
    SKED_ASSIGN_OR_RETURN(Duration d, AsDuration(v, std::chrono::seconds(1)));
    if (d % std::chrono::seconds(1) != Duration(0)) {
      return InvalidArgumentError(v.where.Say("must be whole seconds"));
    }
    *out = std::chrono::duration_cast<std::chrono::seconds>(d);
    return Status::Ok();
  };
  std::map<std::string, Setter> server = {
      {"listen",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(std::string s, AsString(v));
         const size_t colon = s.rfind(':');
         const std::string port = colon == std::string::npos ? "" : s.substr(colon + 1);
         const bool digits = !port.empty() && port.size() <= 5 &&
                             port.find_first_not_of("0123456789") == std::string::npos &&
                             std::stoi(port) <= 65535;
         if (!s.empty() && (colon == 0 || !digits)) {
           return InvalidArgumentError(v.where.Say(
               "expected HOST:PORT such as \"127.0.0.1:8080\" (or \"\" for no server), got '" + s +
               "'"));
         }
         srv.listen = s;
         return Status::Ok();
       }},
      {"tls_cert", SKED_SET(srv.tls_cert, AsString(v))},
      {"tls_key", SKED_SET(srv.tls_key, AsString(v))},
      {"max_body_bytes",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(std::int64_t n, AsInt(v, 1024, std::int64_t{64} * 1024 * 1024));
         srv.max_body_bytes = static_cast<std::size_t>(n);
         return Status::Ok();
       }},
      {"read_timeout", [&](const Value& v) { return whole_seconds(v, &srv.read_timeout); }},
      {"write_timeout", [&](const Value& v) { return whole_seconds(v, &srv.write_timeout); }},
      {"threads", SKED_SET(srv.threads, AsInt(v, 2, 256))},
      {"max_streams", SKED_SET(srv.max_streams, AsInt(v, 0, 255))},
      {"metrics_auth", SKED_SET(srv.metrics_auth, AsBool(v))},
      {"dashboard", SKED_SET(srv.dashboard, AsBool(v))},
  };

  notify::NotifyConfig& nc = c.notify;
  std::map<std::string, Setter> notify_section = {
      {"on",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(nc.defaults.on, AsStringList(v));
         NotifySpec check;
         check.on = nc.defaults.on;
         if (Status st = policy::ValidateNotifySpec(check); !st.ok()) {
           return InvalidArgumentError(v.where.Say(st.message()));
         }
         return Status::Ok();
       }},
      {"channels", SKED_SET(nc.defaults.channels, AsStringList(v))},
      {"max_attempts", SKED_SET(nc.max_attempts, AsInt(v, 1, 100))},
      {"realert", SKED_SET(nc.defaults.realert, AsDuration(v, Duration(0)))},
      {"keep", SKED_SET(nc.keep, AsDuration(v, Duration(0)))},
      {"backoff", SKED_SET(nc.backoff, AsDuration(v, std::chrono::seconds(1)))},
      {"max_backoff", SKED_SET(nc.max_backoff, AsDuration(v, std::chrono::seconds(1)))},
  };

  RetentionConfig& rc = c.retention;
  std::map<std::string, Setter> retention = {
      {"max_age", SKED_SET(rc.policy.max_age, AsDuration(v, Duration(0)))},
      {"max_runs", SKED_SET(rc.policy.max_runs, AsInt(v, 0, 100000000))},
      {"keep_failures", SKED_SET(rc.policy.keep_failures, AsInt(v, 0, 1000000))},
      {"max_output", SKED_SET(c.engine.max_output_bytes, AsInt(v, 0, std::int64_t{1} << 30))},
      {"every", SKED_SET(rc.every, AsDuration(v, Duration(0)))},
      {"batch", SKED_SET(rc.batch, AsInt(v, 1, 100000))},
  };

  std::map<std::string, Setter> drivers = {
      {"plugin_dir",
       [&](const Value& v) -> Status {
         SKED_ASSIGN_OR_RETURN(c.plugin_dir, AsString(v));
         if (c.plugin_dir.empty()) return InvalidArgumentError(v.where.Say("must not be empty"));
         return Status::Ok();
       }},
  };

  for (auto&& entry : root) {
    // Not a structured binding: clang 14 cannot capture those in lambdas.
    const std::string key(entry.first.str());
    const toml::node& v = entry.second;
    auto section = [&](const std::map<std::string, Setter>& setters) -> Status {
      const toml::table* t = v.as_table();
      if (t == nullptr) return InvalidArgumentError(At(name, v, key).Say("must be a table"));
      return ApplyTable(name, key, *t, setters);
    };
    if (key == "store") {
      SKED_RETURN_IF_ERROR(section(store));
    } else if (key == "scheduler") {
      SKED_RETURN_IF_ERROR(section(scheduler));
    } else if (key == "log") {
      SKED_RETURN_IF_ERROR(section(log));
    } else if (key == "server") {
      SKED_RETURN_IF_ERROR(section(server));
    } else if (key == "notify") {
      SKED_RETURN_IF_ERROR(section(notify_section));
    } else if (key == "retention") {
      SKED_RETURN_IF_ERROR(section(retention));
    } else if (key == "drivers") {
      SKED_RETURN_IF_ERROR(section(drivers));
    } else if (key == "channel") {
      const toml::array* channels = v.as_array();
      if (channels == nullptr || !channels->is_array_of_tables()) {
        return InvalidArgumentError(At(name, v, key).Say("must be [[channel]] tables"));
      }
      for (size_t i = 0; i < channels->size(); ++i) {
        const toml::table& t = *channels->get(i)->as_table();
        SKED_ASSIGN_OR_RETURN(notify::ChannelConfig channel, ParseChannel(name, t, i, env));
        for (const notify::ChannelConfig& other : nc.channels) {
          if (other.name == channel.name) {
            return InvalidArgumentError(
                At(name, t, "channel[" + std::to_string(i) + "]")
                    .Say("channel name '" + channel.name + "' is declared twice"));
          }
        }
        nc.channels.push_back(std::move(channel));
      }
    } else if (key == "job") {
      const toml::array* jobs = v.as_array();
      if (jobs == nullptr || !jobs->is_array_of_tables()) {
        return InvalidArgumentError(At(name, v, key).Say("must be [[job]] tables"));
      }
      std::set<std::string> names;
      for (size_t i = 0; i < jobs->size(); ++i) {
        const toml::table& t = *jobs->get(i)->as_table();
        SKED_ASSIGN_OR_RETURN(JobSpec spec, ParseJob(name, t, i));
        if (!names.insert(spec.name).second) {
          return InvalidArgumentError(At(name, t, "job[" + std::to_string(i) + "]")
                                          .Say("job name '" + spec.name + "' is declared twice"));
        }
        c.jobs.push_back(std::move(spec));
      }
    } else {
      return InvalidArgumentError(
          At(name, v, key)
              .Say("unknown section (known: store, scheduler, log, server, notify, channel, "
                   "retention, drivers, job)"));
    }
  }
  // Relative to the config file's folder (the default too, when there is a
  // file); an environment override stays relative to the working directory.
  c.store_url = ResolveStoreUrl(c.store_url, dir);
  SKED_RETURN_IF_ERROR(ApplyEnv("store", store, env));
  SKED_RETURN_IF_ERROR(ApplyEnv("scheduler", scheduler, env));
  SKED_RETURN_IF_ERROR(ApplyEnv("log", log, env));
  SKED_RETURN_IF_ERROR(ApplyEnv("server", server, env));
  SKED_RETURN_IF_ERROR(ApplyEnv("notify", notify_section, env));
  SKED_RETURN_IF_ERROR(ApplyEnv("retention", retention, env));
  // Relative to the config file's folder, as the store's path; an
  // environment override stays relative to the working directory.
  if (!c.plugin_dir.empty() && !dir.empty() && c.plugin_dir[0] != '/') {
    c.plugin_dir = (std::filesystem::path(dir) / c.plugin_dir).string();
  }
  SKED_RETURN_IF_ERROR(ApplyEnv("drivers", drivers, env));
  // Every channel named (by [notify] or a job) is declared.
  auto declared = [&](const std::string& channel) {
    return std::any_of(nc.channels.begin(), nc.channels.end(),
                       [&](const notify::ChannelConfig& x) { return x.name == channel; });
  };
  auto undeclared = [&](std::string who, const std::string& channel) {
    who.append("notify.channels names '")
        .append(channel)
        .append("', which no [[channel]] declares");
    return InvalidArgumentError(name + ": " + who);
  };
  for (const std::string& channel : nc.defaults.channels) {
    if (!declared(channel)) return undeclared("", channel);
  }
  for (const JobSpec& job : c.jobs) {
    for (const std::string& channel : job.notify.channels.value_or(std::vector<std::string>{})) {
      if (!declared(channel)) return undeclared("job '" + job.name + "': ", channel);
    }
  }
  if (nc.max_backoff < nc.backoff) {
    return InvalidArgumentError(name + ": notify.max_backoff is less than notify.backoff");
  }
  c.store.notify = nc.defaults;
  if (srv.tls_cert.empty() != srv.tls_key.empty()) {
    return InvalidArgumentError(name +
                                ": server.tls_cert and server.tls_key go together (HTTPS "
                                "needs both files)");
  }
  for (std::string* file : {&srv.tls_cert, &srv.tls_key}) {
    if (file->empty()) continue;
    if (!dir.empty() && (*file)[0] != '/') *file = (std::filesystem::path(dir) / *file).string();
    if (std::ifstream probe(*file); !probe) {
      return InvalidArgumentError(name + ": server TLS file '" + *file +
                                  "' cannot be read: " + std::strerror(errno));
    }
  }
  if (srv.max_streams >= srv.threads) {
    return InvalidArgumentError(name + ": server.max_streams (" + std::to_string(srv.max_streams) +
                                ") must be less than server.threads (" +
                                std::to_string(srv.threads) + "): each open stream holds a thread");
  }
  // Enough connections for every worker slot and the engine's own threads
  // (opened only as they are needed).
  if (!c.store_max_connections_set) c.store.max_connections = e.workers + 4;
  if (e.heartbeat >= e.lease) {
    return InvalidArgumentError(name + ": scheduler.heartbeat (" + FormatDuration(e.heartbeat) +
                                ") must be shorter than scheduler.lease (" +
                                FormatDuration(e.lease) + ")");
  }
  // A transaction left open longer than a lease belongs to a stalled
  // process whose runs are reaped anyway: PostgreSQL ends it, so its row
  // locks do not hold up the other instances.
  c.store.idle_transaction_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(e.lease);
  return c;
}

Result<Config> LoadConfig(const std::string& path, bool must_exist,
                          const std::map<std::string, std::string>& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (must_exist) {
      return InvalidArgumentError("config file '" + path +
                                  "' cannot be read: " + std::strerror(errno));
    }
    return ParseConfig("", "(defaults)", "", env);
  }
  std::ostringstream text;
  text << in.rdbuf();
  const std::string dir = std::filesystem::absolute(path).parent_path().string();
  return ParseConfig(text.str(), path, dir, env);
}

std::map<std::string, std::string> SkedEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.rfind("SKED_", 0) != 0) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

}  // namespace sked::daemon
