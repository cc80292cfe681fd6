#include "server/api_server.h"

#include <httplib.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "daemon/resource_json.h"
#include "server/auth.h"
#include "server/metrics_text.h"
#include "server/openapi.h"
#include "server/timed_store.h"
#include "server/ui_assets.h"
#include "sked/cron.h"
#include "sked/schedule.h"
#include "sked/time_zone.h"

namespace sked::server {
namespace {

using Json = nlohmann::json;
using OJson = nlohmann::ordered_json;
using daemon::LogFields;

constexpr int kDefaultPage = 50;
constexpr int kMaxPage = 1000;

// An answer: status, JSON body (or text), headers.
struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string error;  // for the audit log: what failed
};

std::string Dump(const OJson& j) {
  // Output and names may hold bytes that are not UTF-8: replaced, never thrown.
  return j.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

Reply JsonReply(int status, const OJson& body) {
  Reply r;
  r.status = status;
  r.body = Dump(body) + "\n";
  return r;
}

Reply ErrorReply(int status, const std::string& code, const std::string& message,
                 const std::string& field = "") {
  OJson e;
  e["code"] = code;
  e["message"] = message;
  e["field"] = field.empty() ? OJson(nullptr) : OJson(field);
  Reply r = JsonReply(status, OJson{{"error", e}});
  r.error = message;
  return r;
}

// The one mapping of a Status to HTTP.
int HttpStatus(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kUnavailable:
    case StatusCode::kCancelled:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

std::string ErrorCode(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
      return "invalid_argument";
    case StatusCode::kNotFound:
      return "not_found";
    case StatusCode::kAlreadyExists:
      return "already_exists";
    case StatusCode::kFailedPrecondition:
      return "failed_precondition";
    case StatusCode::kAborted:
      return "conflict";
    case StatusCode::kUnavailable:
    case StatusCode::kCancelled:
      return "unavailable";
    case StatusCode::kDeadlineExceeded:
      return "deadline_exceeded";
    default:
      return "internal";
  }
}

// The field a validation message starts with ("schedule: ..." -> schedule).
std::string FieldOf(const std::string& message) {
  static const std::set<std::string, std::less<>> kFields = {"name",
                                                             "description",
                                                             "driver",
                                                             "driver_config",
                                                             "config",
                                                             "schedule",
                                                             "time_zone",
                                                             "timezone",
                                                             "start_at",
                                                             "end_at",
                                                             "overlap",
                                                             "max_queued",
                                                             "max_concurrent",
                                                             "misfire",
                                                             "catchup_window",
                                                             "starting_deadline",
                                                             "timeout",
                                                             "priority",
                                                             "retry.max",
                                                             "retry.backoff",
                                                             "retry.max_backoff",
                                                             "retry.multiplier",
                                                             "retry.jitter",
                                                             "tags",
                                                             "late_after",
                                                             "expected_duration",
                                                             "no_success_for",
                                                             "overrun_factor",
                                                             "notify.on",
                                                             "notify.channels",
                                                             "retention.max_age",
                                                             "retention.max_runs",
                                                             "retention.keep_failures",
                                                             "role"};
  const size_t colon = message.find(": ");
  if (colon == std::string::npos) return "";
  std::string field = message.substr(0, colon);
  if (field == "driver_config") field = "config";
  if (field == "time_zone") field = "timezone";
  return kFields.count(message.substr(0, colon)) != 0 ? field : "";
}

Reply StatusReply(const Status& s) {
  if (s.code() == StatusCode::kInternal) {
    return ErrorReply(500, "internal", "internal error (see the server's log)");
  }
  return ErrorReply(HttpStatus(s.code()), ErrorCode(s.code()), s.message(), FieldOf(s.message()));
}

// Per request, on the thread that serves it (httplib runs the pre-routing
// handler, the handler and the logger of one request on one thread).
struct RequestScope {
  std::chrono::steady_clock::time_point start;
  std::string route;
  std::string actor;
};
thread_local RequestScope t_request;

// A whole number, the whole of `text`, or nothing.
std::optional<std::int64_t> ParseInt(std::string_view text) {
  std::int64_t n = 0;
  const char* last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(text.data(), last, n);
  if (ec != std::errc() || end != last) return std::nullopt;
  return n;
}

struct QueryError {
  std::string field, message;
};

// Reads the query parameters a route knows; any other is an error.
class Query {
 public:
  Query(const httplib::Request& req, const std::set<std::string>& known) : req_(req) {
    for (const auto& [k, v] : req.params) {
      if (known.count(k) == 0 && !error_) {
        std::string list;
        for (const std::string& n : known) list += (list.empty() ? "" : ", ") + n;
        error_ = QueryError{k, "unknown query parameter (known: " +
                                   (list.empty() ? std::string("none") : list) + ")"};
      }
      if (req.params.count(k) > 1 && !error_) {
        error_ = QueryError{k, "given more than once"};
      }
    }
  }
  std::optional<std::string> Get(const std::string& name) const {
    if (!req_.has_param(name.c_str())) return std::nullopt;
    return req_.get_param_value(name.c_str());
  }
  std::optional<std::int64_t> Int(const std::string& name, std::int64_t lo, std::int64_t hi) {
    const std::optional<std::string> v = Get(name);
    if (!v) return std::nullopt;
    const std::optional<std::int64_t> n = ParseInt(*v);
    if (!n || *n < lo || *n > hi) {
      Fail(name, "must be an integer " + std::to_string(lo) + "-" + std::to_string(hi));
      return std::nullopt;
    }
    return n;
  }
  std::optional<Instant> Time(const std::string& name) {
    auto v = Get(name);
    if (!v) return std::nullopt;
    auto t = ParseRfc3339(*v);
    if (!t.ok()) {
      Fail(name, "must be an RFC 3339 time: " + t.status().message());
      return std::nullopt;
    }
    return *t;
  }
  void Fail(const std::string& field, const std::string& message) {
    if (!error_) error_ = QueryError{field, message};
  }
  std::optional<Reply> Error() const {
    if (!error_) return std::nullopt;
    return ErrorReply(400, "invalid_argument", error_->field + ": " + error_->message,
                      error_->field);
  }

 private:
  const httplib::Request& req_;
  std::optional<QueryError> error_;
};

// The page size asked for (limit), and the cursor (an id) to go on from.
struct Page {
  int limit = kDefaultPage;
  std::int64_t cursor = 0;
};
Page ReadPage(Query& q) {
  Page p;
  if (auto l = q.Int("limit", 1, kMaxPage)) p.limit = static_cast<int>(*l);
  if (const std::optional<std::string> c = q.Get("cursor")) {
    const std::optional<std::int64_t> n = ParseInt(*c);
    if (!n || *n <= 0) {
      q.Fail("cursor", "is not a cursor this API returned");
    } else {
      p.cursor = *n;
    }
  }
  return p;
}

// A page of `rows` (fetched with limit + 1, so one more means there is a next
// page, which starts after the last id shown): {"items", "next_cursor"}.
// `add` appends a row's JSON to the items (or skips the row).
template <typename Row, typename Add>
OJson PageJson(const std::vector<Row>& rows, int limit, Add add) {
  OJson items = OJson::array();
  std::optional<std::int64_t> next;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (static_cast<int>(i) == limit) {
      next = rows[i - 1].id;
      break;
    }
    add(items, rows[i]);
  }
  OJson out;
  out["items"] = std::move(items);
  out["next_cursor"] = next ? OJson(std::to_string(*next)) : OJson(nullptr);
  return out;
}

// The request's JSON body: an object, or a 4xx saying what is wrong.
std::variant<Json, Reply> ReadBody(const httplib::Request& req, bool required) {
  if (req.body.empty()) {
    if (required) return ErrorReply(400, "invalid_argument", "the request needs a JSON body");
    return Json::object();
  }
  const std::string type = req.get_header_value("Content-Type");
  if (type.rfind("application/json", 0) != 0) {
    return ErrorReply(415, "unsupported_media_type",
                      "the body must be JSON, sent with Content-Type: application/json");
  }
  Json body;
  try {
    body = Json::parse(req.body);
  } catch (const Json::parse_error& e) {
    // nlohmann's message says where: "parse error at line 1, column 12: ...
    // invalid string: ill-formed UTF-8 byte" (non-UTF-8 is refused here too).
    std::string what = e.what();
    if (const size_t at = what.find("] "); at != std::string::npos) what = what.substr(at + 2);
    return ErrorReply(400, "invalid_argument", "the body is not valid JSON: " + what);
  }
  if (!body.is_object())
    return ErrorReply(400, "invalid_argument", "the body must be a JSON object");
  return body;
}

// What a page needs to know at once about a job: its newest settled run did
// not succeed, or its next fire is overdue (an active job whose fire was not
// claimed within `grace`: no instance is scheduling it).
bool Failing(const Job& j) {
  return j.last_run_at && (!j.last_success_at || *j.last_success_at < *j.last_run_at);
}
bool Late(const Job& j, Instant now, Duration grace) {
  return j.state == JobState::kActive && j.next_run_at && *j.next_run_at < now - grace;
}

// The dashboard may run only its own scripts and talk only to this server.
constexpr const char* kUiPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace

class ApiServer::Impl {
 public:
  Impl(ServerOptions options, const ServeContext& ctx) : o_(std::move(options)), ctx_(ctx) {}

  Status Start();
  void Stop();
  std::string url() const { return url_; }

 private:
  using Handler = std::function<Reply(const httplib::Request&, const Principal&)>;
  struct RouteSpec {
    std::string method;
    std::string pattern;       // as the OpenAPI document names it
    std::optional<Role> role;  // nullopt: no token needed
    std::string action;        // audited (mutating) routes: "job.create", ...
  };

  void Add(const RouteSpec& spec, const std::string& regex, Handler handler);
  void Routes();
  Reply Serve(const RouteSpec& spec, const httplib::Request& req, const Handler& handler);
  void Audit(const RouteSpec& spec, const httplib::Request& req, const Reply& reply,
             const std::string& actor);
  std::string Target(const RouteSpec& spec, const httplib::Request& req) const;

  // Readiness: the reasons it is not ready (empty: ready).
  std::vector<std::string> NotReady(OJson* checks);

  Reply ListJobs(const httplib::Request& req);
  Reply GetJob(const httplib::Request& req);
  Reply CreateJob(const httplib::Request& req);
  Reply UpdateJob(const httplib::Request& req, bool merge);
  Reply ListRuns(const httplib::Request& req);
  Reply RunOutput(const httplib::Request& req);
  void StreamOutput(const httplib::Request& req, httplib::Response& res);
  Reply CronPreview(const httplib::Request& req);
  Reply Metrics();
  Reply Summary();
  Reply Instances();
  Reply Drivers();
  void UiRoutes();
  Duration LateGrace() const {
    return std::max<Duration>(std::chrono::seconds(60), 3 * ctx_.engine_options.poll_interval);
  }
  OJson Annotated(const Job& j, Instant now) const {
    OJson out = daemon::JobJson(j);
    out["failing"] = Failing(j);
    out["late"] = Late(j, now, LateGrace());
    return out;
  }

  const ServerOptions o_;
  const ServeContext ctx_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::string url_;
  std::atomic<int> streams_{0};
  std::atomic<bool> stopping_{false};
};

void ApiServer::Impl::Add(const RouteSpec& spec, const std::string& regex, Handler handler) {
  auto serve = [this, spec, handler = std::move(handler)](const httplib::Request& req,
                                                          httplib::Response& res) {
    Reply r = Serve(spec, req, handler);
    res.status = r.status;
    for (const auto& [k, v] : r.headers) res.set_header(k, v);
    res.set_content(r.body, r.content_type.c_str());
  };
  if (spec.method == "GET") {
    http_->Get(regex, serve);
  } else if (spec.method == "POST") {
    http_->Post(regex, serve);
  } else if (spec.method == "PUT") {
    http_->Put(regex, serve);
  } else if (spec.method == "PATCH") {
    http_->Patch(regex, serve);
  } else if (spec.method == "DELETE") {
    http_->Delete(regex, serve);
  }
}

Reply ApiServer::Impl::Serve(const RouteSpec& spec, const httplib::Request& req,
                             const Handler& handler) {
  t_request.route = spec.method + " " + spec.pattern;
  Principal who{"", Role::kViewer};
  Reply reply;
  if (spec.role) {
    AuthResult auth = Authenticate(*ctx_.store, req.get_header_value("Authorization"));
    if (!auth.principal) {
      reply = auth.failure == AuthFailure::kStoreDown
                  ? ErrorReply(503, "unavailable", auth.message)
                  : ErrorReply(401, "unauthenticated", auth.message);
      if (reply.status == 401) reply.headers.emplace_back("WWW-Authenticate", "Bearer");
    } else if (auth.principal->role < *spec.role) {
      who = *auth.principal;
      reply = ErrorReply(403, "forbidden",
                         "token '" + who.name + "' has role " + std::string(RoleName(who.role)) +
                             "; this needs " + std::string(RoleName(*spec.role)));
    } else {
      who = *auth.principal;
      reply = handler(req, who);
    }
  } else {
    reply = handler(req, who);
  }
  t_request.actor = who.name;
  if (!spec.action.empty()) Audit(spec, req, reply, who.name);
  return reply;
}

std::string ApiServer::Impl::Target(const RouteSpec& spec, const httplib::Request& req) const {
  std::string kind = spec.action.substr(0, spec.action.find('.'));
  std::string id = req.matches.size() > 1 ? std::string(req.matches[1]) : "";
  if (id.empty()) {
    // A create names its target in the body.
    Json body = Json::parse(req.body, nullptr, false);
    if (body.is_object() && body.contains("name") && body["name"].is_string()) {
      id = body["name"].get<std::string>();
    }
  }
  return id.empty() ? kind : kind + "/" + id;
}

void ApiServer::Impl::Audit(const RouteSpec& spec, const httplib::Request& req, const Reply& reply,
                            const std::string& actor) {
  AuditEntry e;
  e.at = ctx_.clock->Now();
  e.actor = actor.empty() ? "anonymous" : actor;
  e.action = spec.action;
  e.target = Target(spec, req).substr(0, 300);
  e.source = req.remote_addr;
  e.status = reply.status;
  e.detail = reply.error.substr(0, 1000);
  if (Status s = ctx_.store->AppendAudit(e).status(); !s.ok()) {
    ctx_.log->Error("audit log not written", {{"action", e.action}, {"error", s.message()}});
  }
}

std::vector<std::string> ApiServer::Impl::NotReady(OJson* checks) {
  std::vector<std::string> why;
  auto version = ctx_.store->SchemaVersion();
  if (!version.ok()) {
    why.push_back("store unreachable: " + version.status().message());
    (*checks)["store"] = "unreachable";
  } else {
    (*checks)["store"] = "ok";
    const int latest = ctx_.store->LatestSchemaVersion();
    if (*version != latest) {
      why.push_back("schema version " + std::to_string(*version) + ", this binary needs " +
                    std::to_string(latest) + " (run sked migrate)");
      (*checks)["migrations"] = "pending";
    } else {
      (*checks)["migrations"] = "current";
    }
  }
  HealthSnapshot h = ctx_.engine->Health();
  const Instant now = ctx_.clock->Now();
  const Duration max_silence = 3 * ctx_.engine_options.poll_interval + std::chrono::seconds(5);
  if (!h.loop_active) {
    why.emplace_back("the scheduler loop is not running");
    (*checks)["scheduler_loop"] = "stopped";
  } else if (!h.last_pass_at || now - *h.last_pass_at > max_silence) {
    why.push_back("the scheduler loop has not run a pass for longer than " +
                  FormatDuration(max_silence));
    (*checks)["scheduler_loop"] = "stalled";
  } else {
    (*checks)["scheduler_loop"] = "ok";
  }
  (*checks)["last_pass_at"] = daemon::TimeJson(h.last_pass_at);
  return why;
}

Reply ApiServer::Impl::ListJobs(const httplib::Request& req) {
  Query q(req, {"state", "tag", "driver", "prefix", "attention", "recent", "limit", "cursor"});
  Page page = ReadPage(q);
  const Instant now = ctx_.clock->Now();
  const int recent = static_cast<int>(q.Int("recent", 0, 50).value_or(0));
  JobFilter f;
  if (auto a = q.Get("attention")) {
    if (*a == "failing") {
      f.failing = true;
    } else if (*a == "late") {
      f.state = JobState::kActive;
      f.due_before = now - LateGrace();
    } else {
      q.Fail("attention", "must be failing or late");
    }
  }
  std::optional<JobState> shown;
  if (auto s = q.Get("state")) {
    auto state = ParseJobState(*s);
    if (!state.ok()) {
      q.Fail("state", state.status().message());
    } else {
      shown = *state;
      // "pending" is how an active job before its start_at is shown.
      const JobState stored = *state == JobState::kPending ? JobState::kActive : *state;
      if (f.state && *f.state != stored) q.Fail("state", "late jobs are active ones");
      f.state = stored;
    }
  }
  f.tag = q.Get("tag");
  f.driver = q.Get("driver");
  f.name_prefix = q.Get("prefix").value_or("");
  if (auto e = q.Error()) return *e;
  f.after_id = page.cursor;
  f.limit = page.limit + 1;
  auto jobs = ctx_.engine->ListJobs(f);
  if (!jobs.ok()) return StatusReply(jobs.status());
  Status failed = Status::Ok();
  OJson out = PageJson(*jobs, page.limit, [&](OJson& items, const Job& j) {
    if (shown && j.state != *shown) return;
    OJson item = Annotated(j, now);
    if (recent > 0 && failed.ok()) {
      // The newest runs, for the page's strip (one indexed read per job shown).
      RunFilter rf;
      rf.job_id = j.id;
      rf.limit = recent;
      auto runs = ctx_.engine->ListRuns(rf);
      if (!runs.ok()) {
        failed = runs.status();
        return;
      }
      OJson strip = OJson::array();
      for (const Run& r : *runs) strip.push_back(daemon::RunJson(r, false));
      item["recent_runs"] = std::move(strip);
    }
    items.push_back(std::move(item));
  });
  if (!failed.ok()) return StatusReply(failed);
  return JsonReply(200, out);
}

Reply ApiServer::Impl::GetJob(const httplib::Request& req) {
  Query q(req, {"fires"});
  const int fires = static_cast<int>(q.Int("fires", 0, 100).value_or(5));
  if (auto e = q.Error()) return *e;
  auto job = ctx_.engine->GetJob(req.matches[1].str());
  if (!job.ok()) return StatusReply(job.status());
  OJson j = Annotated(*job, ctx_.clock->Now());
  if (auto zone = TimeZone::Find(job->spec.time_zone); zone.ok()) {
    auto schedule = Schedule::Parse(job->spec.schedule, *zone, std::chrono::seconds(0),
                                    job->spec.start_at.value_or(job->created_at));
    j["schedule_description"] =
        schedule.ok() ? OJson(schedule->Describe()) : OJson(schedule.status().message());
  }
  j["next_fires"] = daemon::FiresJson(*job, fires);
  Reply r = JsonReply(200, j);
  r.headers.emplace_back("ETag", "\"" + std::to_string(job->version) + "\"");
  return r;
}

Reply ApiServer::Impl::CreateJob(const httplib::Request& req) {
  auto body = ReadBody(req, true);
  if (auto* r = std::get_if<Reply>(&body)) return *r;
  JobSpec spec;
  if (auto e = daemon::ApplySpecJson(std::get<Json>(body), false, &spec)) {
    return ErrorReply(400, "invalid_argument",
                      (e->field.empty() ? "" : e->field + ": ") + e->message, e->field);
  }
  for (const char* required : {"name", "schedule", "driver"}) {
    if (!std::get<Json>(body).contains(required)) {
      return ErrorReply(400, "invalid_argument", std::string(required) + ": is required", required);
    }
  }
  auto job = ctx_.engine->CreateJob(spec, "api");
  if (!job.ok()) return StatusReply(job.status());
  Reply r = JsonReply(201, daemon::JobJson(*job));
  r.headers.emplace_back("Location", "/api/v1/jobs/" + job->spec.name);
  r.headers.emplace_back("ETag", "\"" + std::to_string(job->version) + "\"");
  return r;
}

Reply ApiServer::Impl::UpdateJob(const httplib::Request& req, bool merge) {
  auto body_or = ReadBody(req, true);
  if (auto* r = std::get_if<Reply>(&body_or)) return *r;
  Json body = std::get<Json>(std::move(body_or));
  const std::string name = req.matches[1].str();
  // The version the client saw: If-Match ("3" or 3) or a version field.
  std::optional<std::int64_t> version;
  if (req.has_header("If-Match")) {
    std::string tag = req.get_header_value("If-Match");
    if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"')
      tag = tag.substr(1, tag.size() - 2);
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(tag.data(), tag.data() + tag.size(), v);
    if (ec != std::errc() || end != tag.data() + tag.size()) {
      return ErrorReply(400, "invalid_argument", "If-Match: must be the job's ETag, such as \"3\"",
                        "If-Match");
    }
    version = v;
  }
  if (body.contains("version")) {
    if (!body["version"].is_number_integer()) {
      return ErrorReply(400, "invalid_argument", "version: must be an integer", "version");
    }
    const auto v = body["version"].get<std::int64_t>();
    if (version && *version != v) {
      return ErrorReply(400, "invalid_argument", "version: differs from If-Match", "version");
    }
    version = v;
    body.erase("version");
  }
  if (!version) {
    return ErrorReply(428, "precondition_required",
                      "an update needs the version it changes: an If-Match header with the job's "
                      "ETag, or a version field",
                      "version");
  }
  if (body.contains("name") &&
      !(body["name"].is_string() && body["name"].get<std::string>() == name)) {
    return ErrorReply(400, "invalid_argument", "name: a job cannot be renamed", "name");
  }
  auto current = ctx_.engine->GetJob(name);
  if (!current.ok()) return StatusReply(current.status());
  JobSpec spec = merge ? current->spec : JobSpec();
  spec.name = name;
  if (auto e = daemon::ApplySpecJson(body, merge, &spec)) {
    return ErrorReply(400, "invalid_argument",
                      (e->field.empty() ? "" : e->field + ": ") + e->message, e->field);
  }
  auto job = ctx_.engine->UpdateJob(name, spec, *version);
  if (!job.ok()) return StatusReply(job.status());
  Reply r = JsonReply(200, daemon::JobJson(*job));
  r.headers.emplace_back("ETag", "\"" + std::to_string(job->version) + "\"");
  return r;
}

Reply ApiServer::Impl::ListRuns(const httplib::Request& req) {
  Query q(req, {"job", "status", "since", "until", "limit", "cursor"});
  Page page = ReadPage(q);
  RunFilter f;
  if (auto s = q.Get("status")) {
    auto status = ParseRunStatus(*s);
    if (!status.ok()) {
      q.Fail("status", status.status().message());
    } else {
      f.status = *status;
    }
  }
  f.since = q.Time("since");
  f.until = q.Time("until");
  const std::optional<std::string> job_name = q.Get("job");
  if (auto e = q.Error()) return *e;
  if (job_name) {
    auto job = ctx_.engine->GetJob(*job_name);
    if (!job.ok()) return StatusReply(job.status());
    f.job_id = job->id;
  }
  f.before_id = page.cursor;
  f.limit = page.limit + 1;
  auto runs = ctx_.engine->ListRuns(f);
  if (!runs.ok()) return StatusReply(runs.status());
  return JsonReply(200, PageJson(*runs, page.limit, [](OJson& items, const Run& r) {
                     items.push_back(daemon::RunJson(r, false));
                   }));
}

std::optional<std::int64_t> RunId(const httplib::Request& req) {
  const std::string text = req.matches[1].str();
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

Reply BadRunId() { return ErrorReply(400, "invalid_argument", "id: must be a run id", "id"); }

Reply ApiServer::Impl::RunOutput(const httplib::Request& req) {
  Query q(req, {});
  if (auto e = q.Error()) return *e;
  auto id = RunId(req);
  if (!id) return BadRunId();
  auto run = ctx_.engine->GetRun(*id);
  if (!run.ok()) return StatusReply(run.status());
  OJson j;
  j["run"] = run->id;
  j["status"] = std::string(RunStatusName(run->status));
  if (auto live = ctx_.engine->WatchOutput(*id, 0, std::chrono::milliseconds(0))) {
    // Running here: what it has written so far.
    j["output"] = live->data;
    j["truncated"] = live->offset > 0;
    j["live"] = true;
  } else {
    j["output"] = run->output;
    j["truncated"] = run->output_truncated;
    j["live"] = false;
  }
  return JsonReply(200, j);
}

// Server-Sent Events: "output" events carry chunks ({"offset", "data"}),
// then one "end" event with the run's final record; comments keep the
// connection alive. A run executing on another instance streams no output
// (it is captured there) but still ends with its final status.
void ApiServer::Impl::StreamOutput(const httplib::Request& req, httplib::Response& res) {
  auto id = RunId(req);
  auto fail = [&](const Reply& r) {
    res.status = r.status;
    res.set_content(r.body, "application/json");
  };
  if (!id) return fail(BadRunId());
  auto run = ctx_.engine->GetRun(*id);
  if (!run.ok()) return fail(StatusReply(run.status()));
  if (streams_.fetch_add(1) >= o_.max_streams) {
    streams_.fetch_sub(1);
    return fail(ErrorReply(503, "unavailable",
                           "too many output streams are open (server.max_streams = " +
                               std::to_string(o_.max_streams) + "); try again later"));
  }
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Accel-Buffering", "no");
  const std::int64_t run_id = *id;
  struct StreamState {
    std::int64_t offset = 0;
    bool ended = false;
    std::atomic<bool> released{false};  // its slot given back (by whichever callback ends it)
  };
  auto st = std::make_shared<StreamState>();
  // The slot is given back as the stream ends, before its last chunk goes
  // out, so that a client that read the end and opens the next stream finds
  // it free; the releaser gives it back for a stream cut short.
  auto release = [this, st] {
    if (!st->released.exchange(true)) streams_.fetch_sub(1);
  };
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, run_id, st, release](size_t, httplib::DataSink& sink) -> bool {
        if (st->ended || stopping_) {
          release();
          sink.done();
          return true;
        }
        auto send = [&](const std::string& event, const OJson& data) {
          const std::string text = "event: " + event + "\ndata: " + Dump(data) + "\n\n";
          return sink.write(text.data(), text.size());
        };
        if (auto chunk = ctx_.engine->WatchOutput(run_id, st->offset, std::chrono::seconds(1))) {
          if (!chunk->data.empty()) {
            if (!send("output", {{"offset", chunk->offset}, {"data", chunk->data}})) return false;
          } else if (!sink.write(": keep-alive\n\n", 14)) {
            return false;
          }
          st->offset = chunk->end;
          if (chunk->running) return sink.is_writable();
        }
        // Not executing here (or just ended): the store has its record.
        auto now_run = ctx_.engine->GetRun(run_id);
        if (!now_run.ok()) {
          send("end", {{"error", now_run.status().message()}});
          st->ended = true;
          release();
          sink.done();
          return true;
        }
        if (IsTerminal(now_run->status)) {
          OJson end = daemon::RunJson(*now_run, false);
          if (st->offset == 0 && !now_run->output.empty()) {
            // Never seen live (it ran elsewhere, or before the stream began).
            if (!send("output", {{"offset", 0}, {"data", now_run->output}})) return false;
          }
          send("end", end);
          st->ended = true;
          release();
          sink.done();
          return true;
        }
        // Queued, or running elsewhere, or settling: look again shortly.
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        return sink.write(": waiting\n\n", 11);
      },
      [release](bool) { release(); });
}

Reply ApiServer::Impl::CronPreview(const httplib::Request& req) {
  Query q(req, {"expr", "tz", "n", "from"});
  const std::optional<std::string> expr = q.Get("expr");
  const std::string tz = q.Get("tz").value_or("UTC");
  const int n = static_cast<int>(q.Int("n", 1, 100).value_or(5));
  const std::optional<Instant> from = q.Time("from");
  if (!expr) q.Fail("expr", "is required (a cron expression, such as \"30 2 * * *\")");
  if (auto e = q.Error()) return *e;
  auto zone = TimeZone::Find(tz);
  if (!zone.ok()) {
    return ErrorReply(400, "invalid_argument", "tz: " + zone.status().message(), "tz");
  }
  auto schedule = CronSchedule::Parse(*expr, *zone, ctx_.engine_options.min_interval);
  OJson out;
  out["expression"] = *expr;
  out["timezone"] = zone->name();
  if (!schedule.ok()) {
    out["valid"] = false;
    out["message"] = schedule.status().message();
    return JsonReply(200, out);
  }
  out["valid"] = true;
  out["description"] = schedule->Describe();
  out["kind"] = schedule->interval_like() ? "interval-like" : "fixed-time";
  OJson list = OJson::array();
  Instant prev = from.value_or(ctx_.clock->Now());
  for (Instant t : schedule->NextN(prev, n)) {
    const std::vector<std::string> notes = DstNotes(*zone, &*schedule, prev, t);
    list.push_back({{"utc", FormatRfc3339Utc(t)},
                    {"local", FormatRfc3339(t, zone->OffsetAt(t))},
                    {"dst", !notes.empty()},
                    {"dst_notes", notes}});
    prev = t;
  }
  out["next"] = list;
  return JsonReply(200, out);
}

Reply ApiServer::Impl::Metrics() {
  MetricsInput in;
  in.engine = ctx_.engine->Metrics();
  in.now = ctx_.clock->Now();
  in.lease = ctx_.engine_options.lease;
  in.version = SKED_VERSION;
  JobFilter f;
  f.limit = 1000;
  for (int page = 0; page < 10000; ++page) {  // bounded: ten million jobs
    auto jobs = ctx_.engine->ListJobs(f);
    if (!jobs.ok()) {
      in.jobs_complete = false;
      break;
    }
    for (Job& j : *jobs) in.jobs.push_back(std::move(j));
    if (static_cast<int>(jobs->size()) < f.limit) break;
    f.after_id = in.jobs.back().id;
  }
  if (auto instances = ctx_.store->ListInstances(); instances.ok()) in.instances = *instances;
  if (ctx_.timings != nullptr) in.store_operations = ctx_.timings->Snapshot();
  if (ctx_.notify_metrics) in.notify = ctx_.notify_metrics();
  if (ctx_.retention_metrics) in.retention = ctx_.retention_metrics();
  OJson checks;
  in.ready = NotReady(&checks).empty();
  Reply r;
  r.body = RenderMetrics(in);
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  return r;
}

// Counts for the dashboard's header: jobs by state, failing and late ones
// (counted up to kMaxPage: "1000" means at least that many), runs running
// and queued, instances alive.
Reply ApiServer::Impl::Summary() {
  const Instant now = ctx_.clock->Now();
  OJson jobs;
  std::int64_t total = 0;
  for (JobState state :
       {JobState::kActive, JobState::kPaused, JobState::kDisabled, JobState::kExpired}) {
    auto n = ctx_.store->CountJobs(state);
    if (!n.ok()) return StatusReply(n.status());
    jobs[std::string(JobStateName(state))] = *n;
    total += *n;
  }
  jobs["total"] = total;
  auto count = [&](JobFilter f) -> Result<std::int64_t> {
    f.limit = kMaxPage;
    SKED_ASSIGN_OR_RETURN(std::vector<Job> found, ctx_.engine->ListJobs(f));
    return static_cast<std::int64_t>(found.size());
  };
  JobFilter failing;
  failing.failing = true;
  JobFilter late;
  late.state = JobState::kActive;
  late.due_before = now - LateGrace();
  auto failing_n = count(failing);
  if (!failing_n.ok()) return StatusReply(failing_n.status());
  auto late_n = count(late);
  if (!late_n.ok()) return StatusReply(late_n.status());
  jobs["failing"] = *failing_n;
  jobs["late"] = *late_n;
  jobs["counts_capped_at"] = kMaxPage;
  auto running = ctx_.store->CountRunning(now);
  if (!running.ok()) return StatusReply(running.status());
  auto queued = ctx_.store->QueueDepth();
  if (!queued.ok()) return StatusReply(queued.status());
  auto instances = ctx_.store->ListInstances();
  if (!instances.ok()) return StatusReply(instances.status());
  std::int64_t alive = 0;
  for (const InstanceInfo& i : *instances) {
    if (InstanceStateAt(i, now, ctx_.engine_options.lease) == InstanceState::kAlive) ++alive;
  }
  OJson out;
  out["jobs"] = jobs;
  out["runs"] = {{"running", running->running}, {"queued", *queued}};
  out["instances"] = {{"alive", alive}, {"total", instances->size()}};
  out["now"] = daemon::TimeJson(now);
  return JsonReply(200, out);
}

Reply ApiServer::Impl::Instances() {
  auto instances = ctx_.store->ListInstances();
  if (!instances.ok()) return StatusReply(instances.status());
  // Running runs by instance (bounded: a page of the running runs).
  RunFilter rf;
  rf.status = RunStatus::kRunning;
  rf.limit = 10000;
  auto running = ctx_.engine->ListRuns(rf);
  if (!running.ok()) return StatusReply(running.status());
  std::map<std::string, std::int64_t, std::less<>> by_instance;
  for (const Run& r : *running) ++by_instance[r.instance_id];
  const Instant now = ctx_.clock->Now();
  OJson items = OJson::array();
  for (const InstanceInfo& i : *instances) {
    OJson j = daemon::InstanceJson(i);
    j["state"] = std::string(InstanceStateName(InstanceStateAt(i, now, ctx_.engine_options.lease)));
    j["self"] = i.id == ctx_.engine->instance_id();
    const auto it = by_instance.find(i.id);
    j["running"] = it == by_instance.end() ? 0 : it->second;
    items.push_back(j);
  }
  return JsonReply(200, OJson{{"items", items}});
}

// The drivers jobs may name, each with its config's JSON Schema.
Reply ApiServer::Impl::Drivers() {
  const DriverRegistry& drivers = ctx_.engine->drivers();
  OJson items = OJson::array();
  for (const std::string& name : drivers.Names()) {
    const Driver* d = drivers.Find(name);
    OJson schema = OJson::parse(d->config_schema(), nullptr, /*allow_exceptions=*/false);
    if (schema.is_discarded()) schema = OJson::object();
    // A plugin's file name, not its path: the host's layout is not a viewer's.
    const std::string origin = drivers.Origin(name);
    items.push_back(
        OJson{{"name", name},
              {"description", std::string(d->description())},
              {"plugin",
               origin.empty() ? OJson() : OJson(std::filesystem::path(origin).filename().string())},
              {"config_schema", schema}});
  }
  return JsonReply(200, OJson{{"items", items}});
}

// The dashboard: static files compiled in, each with its hash as ETag (a
// reload asks, and gets 304 while the binary is the same), and a policy that
// runs no inline script. The token never travels in a URL or a cookie: the
// page keeps it in session storage and sends it as the bearer header.
void ApiServer::Impl::UiRoutes() {
  auto security = [](httplib::Response& res) {
    res.set_header("Content-Security-Policy", kUiPolicy);
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Referrer-Policy", "no-referrer");
  };
  auto redirect = [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/ui/", 302);
  };
  http_->Get("/", redirect);
  http_->Get("/ui", redirect);
  http_->Get("/ui/(.*)", [security](const httplib::Request& req, httplib::Response& res) {
    std::string path = req.path;
    if (path == "/ui/") path = "/ui/index.html";
    for (const UiAsset& a : UiAssets()) {
      if (a.path != path) continue;
      security(res);
      res.set_header("ETag", std::string(a.etag));
      // Revalidated on every load, so a new binary's files are seen at once.
      res.set_header("Cache-Control", "no-cache");
      if (req.get_header_value("If-None-Match") == a.etag) {
        res.status = 304;
        return;
      }
      res.set_content(reinterpret_cast<const char*>(a.data), a.size,
                      std::string(a.content_type).c_str());
      return;
    }
    res.status = 404;
  });
}

void ApiServer::Impl::Routes() {
  const std::string kName = "([A-Za-z0-9._-]{1,128})";
  const std::string kId = "([^/]+)";
  auto route = [&](const RouteSpec& spec, const std::string& regex, Handler h) {
    Add(spec, regex, std::move(h));
  };
  using R = const httplib::Request&;
  using P = const Principal&;

  route({"GET", "/healthz", std::nullopt, ""}, "/healthz", [](R, P) {
    return JsonReply(200, OJson{{"status", "ok"}});
  });
  route({"GET", "/readyz", std::nullopt, ""}, "/readyz", [this](R, P) {
    OJson checks;
    const std::vector<std::string> why = NotReady(&checks);
    if (why.empty()) return JsonReply(200, OJson{{"status", "ready"}, {"checks", checks}});
    Reply r = JsonReply(503, OJson{{"status", "not_ready"}, {"reasons", why}, {"checks", checks}});
    r.error = why.front();
    return r;
  });
  std::optional<Role> metrics_role;
  if (o_.metrics_auth) metrics_role = Role::kViewer;
  route({"GET", "/metrics", metrics_role, ""}, "/metrics", [this](R, P) { return Metrics(); });
  route({"GET", "/api/v1/openapi.json", Role::kViewer, ""}, "/api/v1/openapi.json", [](R, P) {
    Reply r;
    r.body = std::string(OpenApiDocument());
    return r;
  });

  // Jobs.
  route({"GET", "/api/v1/jobs", Role::kViewer, ""}, "/api/v1/jobs",
        [this](R req, P) { return ListJobs(req); });
  route({"POST", "/api/v1/jobs", Role::kAdmin, "job.create"}, "/api/v1/jobs",
        [this](R req, P) { return CreateJob(req); });
  route({"GET", "/api/v1/jobs/{name}", Role::kViewer, ""}, "/api/v1/jobs/" + kName,
        [this](R req, P) { return GetJob(req); });
  route({"PUT", "/api/v1/jobs/{name}", Role::kAdmin, "job.update"}, "/api/v1/jobs/" + kName,
        [this](R req, P) { return UpdateJob(req, false); });
  route({"PATCH", "/api/v1/jobs/{name}", Role::kAdmin, "job.update"}, "/api/v1/jobs/" + kName,
        [this](R req, P) { return UpdateJob(req, true); });
  route({"DELETE", "/api/v1/jobs/{name}", Role::kAdmin, "job.delete"}, "/api/v1/jobs/" + kName,
        [this](R req, P) {
          if (Status s = ctx_.engine->DeleteJob(req.matches[1].str()); !s.ok()) {
            return StatusReply(s);
          }
          Reply r;
          r.status = 204;
          return r;
        });
  auto job_action = [this](Result<Job> (Engine::*act)(std::string_view)) {
    return [this, act](R req, P) {
      auto job = (ctx_.engine->*act)(req.matches[1].str());
      if (!job.ok()) return StatusReply(job.status());
      return JsonReply(200, daemon::JobJson(*job));
    };
  };
  route({"POST", "/api/v1/jobs/{name}/pause", Role::kOperator, "job.pause"},
        "/api/v1/jobs/" + kName + "/pause", job_action(&Engine::PauseJob));
  route({"POST", "/api/v1/jobs/{name}/resume", Role::kOperator, "job.resume"},
        "/api/v1/jobs/" + kName + "/resume", job_action(&Engine::ResumeJob));
  route({"POST", "/api/v1/jobs/{name}/trigger", Role::kOperator, "job.trigger"},
        "/api/v1/jobs/" + kName + "/trigger", [this](R req, P) {
          auto run = ctx_.engine->TriggerJob(req.matches[1].str());
          if (!run.ok()) return StatusReply(run.status());
          Reply r = JsonReply(202, daemon::RunJson(*run, false));
          r.headers.emplace_back("Location", "/api/v1/runs/" + std::to_string(run->id));
          return r;
        });

  // Runs.
  route({"GET", "/api/v1/runs", Role::kViewer, ""}, "/api/v1/runs",
        [this](R req, P) { return ListRuns(req); });
  route({"GET", "/api/v1/runs/{id}", Role::kViewer, ""}, "/api/v1/runs/" + kId, [this](R req, P) {
    auto id = RunId(req);
    if (!id) return BadRunId();
    auto run = ctx_.engine->GetRun(*id);
    if (!run.ok()) return StatusReply(run.status());
    return JsonReply(200, daemon::RunJson(*run, true));
  });
  route({"GET", "/api/v1/runs/{id}/output", Role::kViewer, ""}, "/api/v1/runs/" + kId + "/output",
        [this](R req, P) { return RunOutput(req); });
  route({"POST", "/api/v1/runs/{id}/cancel", Role::kOperator, "run.cancel"},
        "/api/v1/runs/" + kId + "/cancel", [this](R req, P) {
          auto id = RunId(req);
          if (!id) return BadRunId();
          if (Status s = ctx_.engine->CancelRun(*id); !s.ok()) return StatusReply(s);
          auto run = ctx_.engine->GetRun(*id);
          if (!run.ok()) return StatusReply(run.status());
          return JsonReply(202, daemon::RunJson(*run, false));
        });
  // The stream writes its own response (chunked); auth as for any route.
  {
    RouteSpec spec{"GET", "/api/v1/runs/{id}/output/stream", Role::kViewer, ""};
    http_->Get("/api/v1/runs/" + kId + "/output/stream",
               [this, spec](const httplib::Request& req, httplib::Response& res) {
                 bool allowed = false;
                 Reply r = Serve(spec, req, [&](R, P) {
                   allowed = true;
                   return Reply();
                 });
                 if (!allowed) {
                   res.status = r.status;
                   for (const auto& [k, v] : r.headers) res.set_header(k, v);
                   res.set_content(r.body, r.content_type.c_str());
                   return;
                 }
                 StreamOutput(req, res);
               });
  }

  // Instances, cron preview.
  route({"GET", "/api/v1/instances", Role::kViewer, ""}, "/api/v1/instances",
        [this](R, P) { return Instances(); });
  route({"GET", "/api/v1/drivers", Role::kViewer, ""}, "/api/v1/drivers",
        [this](R, P) { return Drivers(); });
  route({"GET", "/api/v1/summary", Role::kViewer, ""}, "/api/v1/summary",
        [this](R, P) { return Summary(); });
  route({"GET", "/api/v1/whoami", Role::kViewer, ""}, "/api/v1/whoami", [](R, P who) {
    return JsonReply(200, OJson{{"name", who.name}, {"role", std::string(RoleName(who.role))}});
  });
  route({"GET", "/api/v1/cron/preview", Role::kViewer, ""}, "/api/v1/cron/preview",
        [this](R req, P) { return CronPreview(req); });

  // Audit log and tokens (admin).
  route({"GET", "/api/v1/audit", Role::kAdmin, ""}, "/api/v1/audit", [this](R req, P) {
    Query q(req, {"actor", "action", "since", "limit", "cursor"});
    Page page = ReadPage(q);
    AuditFilter f;
    f.actor = q.Get("actor");
    f.action = q.Get("action");
    f.since = q.Time("since");
    if (auto e = q.Error()) return *e;
    f.before_id = page.cursor;
    f.limit = page.limit + 1;
    auto entries = ctx_.store->ListAudit(f);
    if (!entries.ok()) return StatusReply(entries.status());
    return JsonReply(200, PageJson(*entries, page.limit, [](OJson& items, const AuditEntry& e) {
                       items.push_back(daemon::AuditJson(e));
                     }));
  });
  // Notifications (viewer: what was sent where, never a channel's secret).
  route({"GET", "/api/v1/notifications", Role::kViewer, ""}, "/api/v1/notifications",
        [this](R req, P) {
          Query q(req, {"job", "run", "status", "limit", "cursor"});
          Page page = ReadPage(q);
          NotificationFilter f;
          f.run_id = q.Int("run", 1, std::numeric_limits<std::int64_t>::max());
          const std::optional<std::string> status = q.Get("status");
          const std::optional<std::string> job = q.Get("job");
          if (auto e = q.Error()) return *e;
          if (status) {
            auto parsed = ParseNotificationStatus(*status);
            if (!parsed.ok()) return StatusReply(parsed.status().WithContext("status"));
            f.status = *parsed;
          }
          if (job) {
            auto j = ctx_.store->GetJobByName(*job);
            if (!j.ok()) return StatusReply(j.status());
            f.job_id = j->id;
          }
          f.before_id = page.cursor;
          f.limit = page.limit + 1;
          auto list = ctx_.store->ListNotifications(f);
          if (!list.ok()) return StatusReply(list.status());
          return JsonReply(200,
                           PageJson(*list, page.limit, [](OJson& items, const Notification& n) {
                             items.push_back(daemon::NotificationJson(n));
                           }));
        });
  route({"GET", "/api/v1/notifications/{id}/attempts", Role::kViewer, ""},
        "/api/v1/notifications/" + kId + "/attempts", [this](R req, P) {
          Query q(req, {});
          if (auto e = q.Error()) return *e;
          auto id = RunId(req);  // a positive whole number, as a run's
          if (!id)
            return ErrorReply(400, "invalid_argument", "id: must be a notification id", "id");
          auto list = ctx_.store->ListDeliveryAttempts(*id);
          if (!list.ok()) return StatusReply(list.status());
          OJson items = OJson::array();
          for (const DeliveryAttempt& a : *list) items.push_back(daemon::DeliveryAttemptJson(a));
          return JsonReply(200, OJson{{"items", items}});
        });
  route({"GET", "/api/v1/tokens", Role::kAdmin, ""}, "/api/v1/tokens", [this](R, P) {
    auto tokens = ctx_.store->ListTokens();
    if (!tokens.ok()) return StatusReply(tokens.status());
    OJson items = OJson::array();
    for (const ApiToken& t : *tokens) items.push_back(daemon::TokenJson(t));
    return JsonReply(200, OJson{{"items", items}});
  });
  route({"POST", "/api/v1/tokens", Role::kAdmin, "token.create"}, "/api/v1/tokens",
        [this](R req, P who) {
          auto body_or = ReadBody(req, true);
          if (auto* r = std::get_if<Reply>(&body_or)) return *r;
          const Json& body = std::get<Json>(body_or);
          for (const auto& [k, v] : body.items()) {
            if (k != "name" && k != "role") {
              return ErrorReply(400, "invalid_argument", k + ": unknown key (known: name, role)",
                                k);
            }
          }
          if (!body.contains("name") || !body["name"].is_string()) {
            return ErrorReply(400, "invalid_argument", "name: is required (a string)", "name");
          }
          if (!body.contains("role") || !body["role"].is_string()) {
            return ErrorReply(400, "invalid_argument",
                              "role: is required (viewer, operator or admin)", "role");
          }
          auto role = ParseRole(body["role"].get<std::string>());
          if (!role.ok()) return StatusReply(role.status());
          auto minted = MintToken(*ctx_.store, body["name"].get<std::string>(), *role,
                                  "token:" + who.name, ctx_.clock->Now());
          if (!minted.ok()) return StatusReply(minted.status());
          OJson j = daemon::TokenJson(minted->stored);
          j["token"] = minted->secret;  // shown once, never stored
          return JsonReply(201, j);
        });
  route({"DELETE", "/api/v1/tokens/{name}", Role::kAdmin, "token.revoke"},
        "/api/v1/tokens/" + kName, [this](R req, P) {
          auto t = ctx_.store->RevokeToken(req.matches[1].str(), ctx_.clock->Now());
          if (!t.ok()) return StatusReply(t.status());
          return JsonReply(200, daemon::TokenJson(*t));
        });
}

Status ApiServer::Impl::Start() {
  // "HOST:PORT", "[V6]:PORT".
  const size_t colon = o_.listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgumentError("server.listen: expected HOST:PORT, got '" + o_.listen + "'");
  }
  std::string host = o_.listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port_text = o_.listen.substr(colon + 1);
  int port = -1;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return InvalidArgumentError("server.listen: port must be 0-65535, got '" + port_text + "'");
  }
  const bool tls = !o_.tls_cert.empty();
  if (tls) {
    auto ssl = std::make_unique<httplib::SSLServer>(o_.tls_cert.c_str(), o_.tls_key.c_str());
    if (!ssl->is_valid()) {
      return InvalidArgumentError("server.tls_cert/tls_key: '" + o_.tls_cert + "' and '" +
                                  o_.tls_key + "' are not a valid PEM certificate and key pair");
    }
    http_ = std::move(ssl);
  } else {
    http_ = std::make_unique<httplib::Server>();
  }
  const int threads = o_.threads;
  http_->new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  http_->set_payload_max_length(o_.max_body_bytes);
  http_->set_read_timeout(o_.read_timeout);
  http_->set_write_timeout(o_.write_timeout);
  http_->set_keep_alive_max_count(100);
  // Headers and body go out in separate writes: with Nagle's algorithm the
  // body waits for the client's delayed ACK, 40 ms a request on a kept-alive
  // connection (measured: 46 requests/s per client without this).
  http_->set_tcp_nodelay(true);
  http_->set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    t_request = RequestScope{std::chrono::steady_clock::now(), "", ""};
    // Job names and run output are data: no browser may sniff an answer into HTML.
    res.set_header("X-Content-Type-Options", "nosniff");
    // A request with neither Content-Length nor Transfer-Encoding has no body
    // (RFC 9112 6.3), but cpp-httplib 0.11 reads a POST's body until the
    // connection closes: `curl -X POST` would hang for read_timeout. The
    // request object is not const where httplib made it; the handler runs
    // before the body is read.
    if (!req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
      const_cast<httplib::Request&>(req).headers.emplace("Content-Length", "0");
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Every error answer is JSON, whoever produced it (413, 404, 405, ...).
  http_->set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) -> httplib::Server::HandlerResponse {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        Reply r;
        if (res.status == 413) {
          r = ErrorReply(413, "payload_too_large",
                         "the request body is larger than server.max_body_bytes");
        } else if (res.status == 404) {
          r = ErrorReply(404, "not_found", "no such route: " + req.method + " " + req.path);
        } else if (res.status == 405) {
          r = ErrorReply(405, "method_not_allowed", req.method + " is not allowed here");
        } else {
          r = ErrorReply(res.status, "bad_request", "the request could not be handled");
        }
        res.set_content(r.body, "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  http_->set_exception_handler(
      [this](const httplib::Request& req, httplib::Response& res, const std::exception_ptr& ep) {
        std::string what = "unknown exception";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        ctx_.log->Error("request failed",
                        {{"method", req.method}, {"path", req.path}, {"error", what}});
        Reply r = ErrorReply(500, "internal", "internal error (see the server's log)");
        res.status = 500;
        res.set_content(r.body, "application/json");
      });
  http_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                                t_request.start)
                          .count();
    char took[32];
    std::snprintf(took, sizeof took, "%.2f", ms);
    LogFields fields = {
        {"method", req.method}, {"route", t_request.route.empty() ? "(none)" : t_request.route},
        {"path", req.path},     {"status", std::to_string(res.status)},
        {"duration_ms", took},  {"remote", req.remote_addr}};
    if (!t_request.actor.empty()) fields.emplace_back("token", t_request.actor);
    ctx_.log->Info("http request", fields);
  });
  Routes();
  if (o_.dashboard) UiRoutes();
  int bound = port;
  if (port == 0) {
    bound = http_->bind_to_any_port(host);
    if (bound <= 0) return UnavailableError("server.listen: cannot bind " + o_.listen);
  } else if (!http_->bind_to_port(host, port)) {
    return UnavailableError("server.listen: cannot bind " + o_.listen +
                            " (taken, or not an address of this host)");
  }
  const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  url_ = std::string(tls ? "https" : "http") + "://" + shown + ":" + std::to_string(bound);
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  return Status::Ok();
}

void ApiServer::Impl::Stop() {
  stopping_ = true;
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

ApiServer::ApiServer(ServerOptions options, const ServeContext& context)
    : impl_(std::make_unique<Impl>(std::move(options), context)) {}
ApiServer::~ApiServer() { Stop(); }
Status ApiServer::Start() { return impl_->Start(); }
void ApiServer::Stop() { impl_->Stop(); }
std::string ApiServer::url() const { return impl_->url(); }

}  // namespace sked::server
