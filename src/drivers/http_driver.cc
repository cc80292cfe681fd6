// The http driver: one request per run through libcurl. Only http and https
// (redirects too), TLS verified unless the job says otherwise, redirects
// followed up to a bound, the response body kept up to a bound (the transfer
// ends there), the request's own timeout, and a stop (cancel, the job's
// timeout, shutdown) noticed by the progress callback.

#include "sked/http_driver.h"

#include <curl/curl.h>

#include <cctype>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "drivers/json_config.h"

namespace sked {
namespace {

using drivers::CheckBool;
using drivers::ConfigDuration;
using drivers::ParseConfigObject;

#define SKED_HTTP_KEYS                                                                 \
  {                                                                                    \
    "url", "method", "headers", "body", "expect_status", "timeout", "connect_timeout", \
        "verify_tls", "ca_file", "max_redirects", "max_response_bytes"                 \
  }
constexpr std::int64_t kDefaultMaxResponse = std::int64_t{64} * 1024;
constexpr std::int64_t kMaxResponseLimit = std::int64_t{16} * 1024 * 1024;
constexpr std::size_t kMaxBody = std::size_t{1} << 20;

struct HttpConfig {
  std::string url;
  std::string method = "GET";
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  std::vector<int> expect_codes;    // exact codes
  std::vector<int> expect_classes;  // 2 for "2xx"
  Duration timeout = std::chrono::seconds(30);
  Duration connect_timeout = std::chrono::seconds(10);
  bool verify_tls = true;
  std::string ca_file;
  long max_redirects = 5;
  std::int64_t max_response = kDefaultMaxResponse;

  bool Expected(long code) const {
    for (int c : expect_codes) {
      if (c == code) return true;
    }
    for (int k : expect_classes) {
      if (code / 100 == k) return true;
    }
    return false;
  }
  std::string ExpectedText() const {
    std::string out;
    for (int c : expect_codes) out += (out.empty() ? "" : ", ") + std::to_string(c);
    for (int k : expect_classes) out += (out.empty() ? "" : ", ") + std::to_string(k) + "xx";
    return out;
  }
};

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool IsToken(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) == 0 &&
        std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(ch)) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// The URL as libcurl parses it: http or https with a host.
Status CheckUrl(const std::string& url) {
  GlobalInit();
  CURLU* u = curl_url();
  if (u == nullptr) return InternalError("curl_url failed");
  Status st;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    st = InvalidArgumentError("config.url: '" + url +
                              "' is not a URL (expected http://host/... or https://host/...)");
  } else {
    char* scheme = nullptr;
    char* host = nullptr;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    const std::string s = scheme != nullptr ? scheme : "";
    if (s != "http" && s != "https") {
      st = InvalidArgumentError("config.url: the scheme must be http or https, got '" + s + "'");
    } else if (host == nullptr || host[0] == '\0') {
      st = InvalidArgumentError("config.url: has no host");
    }
    curl_free(scheme);
    curl_free(host);
  }
  curl_url_cleanup(u);
  return st;
}

Result<HttpConfig> ParseHttpConfig(std::string_view text) {
  SKED_ASSIGN_OR_RETURN(nlohmann::json j, ParseConfigObject(text, SKED_HTTP_KEYS));
  HttpConfig c;
  if (!j.contains("url") || !j["url"].is_string()) {
    return InvalidArgumentError("config.url: required, a string such as \"https://host/path\"");
  }
  c.url = j["url"].get<std::string>();
  SKED_RETURN_IF_ERROR(CheckUrl(c.url));
  if (j.contains("method")) {
    if (!j["method"].is_string()) return InvalidArgumentError("config.method: must be a string");
    c.method = j["method"].get<std::string>();
    static const char* kMethods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    bool known = false;
    for (const char* m : kMethods) known = known || c.method == m;
    if (!known) {
      return InvalidArgumentError(
          "config.method: must be GET, HEAD, POST, PUT, PATCH, DELETE or "
          "OPTIONS, got '" +
          c.method + "'");
    }
  }
  if (j.contains("headers")) {
    if (!j["headers"].is_object()) {
      return InvalidArgumentError("config.headers: must be an object of string values");
    }
    for (const auto& [name, value] : j["headers"].items()) {
      if (!IsToken(name)) {
        return InvalidArgumentError("config.headers: '" + name + "' is not a header name");
      }
      if (!value.is_string() ||
          value.get<std::string>().find_first_of("\r\n") != std::string::npos) {
        return InvalidArgumentError("config.headers." + name +
                                    ": must be a string without line breaks");
      }
      c.headers.push_back(name + ": " + value.get<std::string>());
    }
  }
  if (j.contains("body")) {
    if (!j["body"].is_string() || j["body"].get<std::string>().size() > kMaxBody) {
      return InvalidArgumentError("config.body: must be a string of at most 1 MiB");
    }
    c.body = j["body"].get<std::string>();
    if (c.method == "GET" || c.method == "HEAD") {
      return InvalidArgumentError("config.body: a " + c.method +
                                  " request has no body (use POST, PUT or PATCH)");
    }
  }
  if (j.contains("expect_status")) {
    const nlohmann::json& e = j["expect_status"];
    const char* what =
        "config.expect_status: must be a non-empty list of status codes (100-599) or classes "
        "(\"2xx\")";
    if (!e.is_array() || e.empty()) return InvalidArgumentError(what);
    for (const nlohmann::json& x : e) {
      if (x.is_number_integer() && x.get<std::int64_t>() >= 100 && x.get<std::int64_t>() <= 599) {
        c.expect_codes.push_back(x.get<int>());
      } else if (x.is_string() && x.get<std::string>().size() == 3 &&
                 x.get<std::string>().substr(1) == "xx" && x.get<std::string>()[0] >= '1' &&
                 x.get<std::string>()[0] <= '5') {
        c.expect_classes.push_back(x.get<std::string>()[0] - '0');
      } else {
        return InvalidArgumentError(what);
      }
    }
  } else {
    c.expect_classes = {2};
  }
  SKED_ASSIGN_OR_RETURN(c.timeout, ConfigDuration(j, "timeout", c.timeout));
  SKED_ASSIGN_OR_RETURN(c.connect_timeout, ConfigDuration(j, "connect_timeout", c.connect_timeout));
  if (c.timeout < std::chrono::milliseconds(1) ||
      c.connect_timeout < std::chrono::milliseconds(1)) {
    return InvalidArgumentError("config.timeout, config.connect_timeout: must be at least 1ms");
  }
  SKED_RETURN_IF_ERROR(CheckBool(j, "verify_tls"));
  c.verify_tls = j.value("verify_tls", true);
  if (j.contains("ca_file")) {
    if (!j["ca_file"].is_string() || j["ca_file"].get<std::string>().empty()) {
      return InvalidArgumentError("config.ca_file: must be a path");
    }
    c.ca_file = j["ca_file"].get<std::string>();
  }
  if (j.contains("max_redirects")) {
    if (!j["max_redirects"].is_number_integer() || j["max_redirects"].get<std::int64_t>() < 0 ||
        j["max_redirects"].get<std::int64_t>() > 20) {
      return InvalidArgumentError("config.max_redirects: must be an integer from 0 to 20");
    }
    c.max_redirects = j["max_redirects"].get<long>();
  }
  if (j.contains("max_response_bytes")) {
    const nlohmann::json& m = j["max_response_bytes"];
    if (!m.is_number_integer() || m.get<std::int64_t>() < 0 ||
        m.get<std::int64_t>() > kMaxResponseLimit) {
      return InvalidArgumentError("config.max_response_bytes: must be an integer from 0 to " +
                                  std::to_string(kMaxResponseLimit));
    }
    c.max_response = m.get<std::int64_t>();
  }
  return c;
}

struct Transfer {
  const HttpConfig* config;
  const RunContext* context;
  const std::stop_token* stop;
  std::string body;
  bool truncated = false;
};

size_t KeepBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  const size_t room = static_cast<size_t>(t->config->max_response) - t->body.size();
  const size_t keep = std::min(room, bytes);
  t->body.append(data, keep);
  if (keep > 0 && t->context->on_output) t->context->on_output(std::string_view(data, keep));
  if (keep < bytes) {
    t->truncated = true;
    return 0;  // the bound is reached: the transfer ends here
  }
  return bytes;
}

int Progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Transfer*>(user)->stop->stop_requested() ? 1 : 0;
}

class HttpDriver final : public Driver {
 public:
  std::string_view name() const override { return "http"; }
  std::string_view description() const override {
    return "one HTTP(S) request; succeeds on an expected status (default 2xx)";
  }
  std::string_view config_schema() const override {
    return R"json({"type": "object", "additionalProperties": false, "required": ["url"],
 "properties": {
  "url": {"type": "string", "format": "uri", "description": "http:// or https:// with a host"},
  "method": {"enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
             "default": "GET"},
  "headers": {"type": "object", "additionalProperties": {"type": "string"}},
  "body": {"type": "string", "maxLength": 1048576, "description": "not with GET or HEAD"},
  "expect_status": {"type": "array", "minItems": 1, "default": ["2xx"],
                    "items": {"anyOf": [{"type": "integer", "minimum": 100, "maximum": 599},
                                        {"enum": ["1xx", "2xx", "3xx", "4xx", "5xx"]}]}},
  "timeout": {"type": "string", "default": "30s", "description": "the request's own limit"},
  "connect_timeout": {"type": "string", "default": "10s"},
  "verify_tls": {"type": "boolean", "default": true},
  "ca_file": {"type": "string", "description": "PEM CAs to trust instead of the system's"},
  "max_redirects": {"type": "integer", "minimum": 0, "maximum": 20, "default": 5},
  "max_response_bytes": {"type": "integer", "minimum": 0, "maximum": 16777216,
                         "default": 65536}}})json";
  }
  Status Validate(std::string_view config) const override {
    return ParseHttpConfig(config).status();
  }

  DriverResult Execute(const RunContext& ctx, std::stop_token stop) override {
    auto parsed = ParseHttpConfig(ctx.config);
    if (!parsed.ok()) return DriverResult::Failed(parsed.status().message());
    const HttpConfig& c = *parsed;
    GlobalInit();
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return DriverResult::Failed("http: curl_easy_init failed");
    curl_slist* headers = curl_slist_append(nullptr, "User-Agent: sked");
    for (const std::string& h : c.headers) headers = curl_slist_append(headers, h.c_str());
    Transfer t{&c, &ctx, &stop, {}, false};
    char error[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_URL, c.url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, c.max_redirects > 0 ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, c.max_redirects);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (c.method == "HEAD") {
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (c.method != "GET") {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, c.method.c_str());
      if (!c.body.empty() || c.method == "POST") {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c.body.c_str());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(c.body.size()));
      }
    }
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(
                         std::chrono::duration_cast<std::chrono::milliseconds>(c.timeout).count()));
    curl_easy_setopt(
        curl, CURLOPT_CONNECTTIMEOUT_MS,
        static_cast<long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(c.connect_timeout).count()));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, c.verify_tls ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, c.verify_tls ? 2L : 0L);
    if (!c.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, c.ca_file.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, KeepBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, Progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    const CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    long redirects = 0;
    double seconds = 0;
    char* effective = nullptr;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(curl, CURLINFO_REDIRECT_COUNT, &redirects);
    curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME, &seconds);
    curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &effective);
    const std::string effective_url = effective != nullptr ? effective : c.url;
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);

    DriverResult r;
    r.output = std::move(t.body);
    r.output_truncated = t.truncated;
    const bool answered = rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.truncated);
    if (!answered) {
      r.status = RunStatus::kFailed;
      if (rc == CURLE_ABORTED_BY_CALLBACK) {
        r.error = "http: stopped";
      } else {
        r.error = std::string("http: ") + (error[0] != '\0' ? error : curl_easy_strerror(rc));
      }
      return r;
    }
    nlohmann::json result = {
        {"status", code}, {"url", effective_url}, {"redirects", redirects}, {"seconds", seconds}};
    r.result = result.dump();
    if (!c.Expected(code)) {
      r.status = RunStatus::kFailed;
      r.error = "HTTP " + std::to_string(code) + " (expected " + c.ExpectedText() + ")";
    }
    return r;
  }
};

}  // namespace

std::unique_ptr<Driver> MakeHttpDriver() { return std::make_unique<HttpDriver>(); }

}  // namespace sked
