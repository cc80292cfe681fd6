// The http driver against loopback HTTP and HTTPS servers started here:
// config validation, status codes, a request's method, headers and body,
// redirects (followed, bounded, or the answer), the request timeout, a stop,
// a response larger than the bound, and TLS with a self-signed certificate.

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "sked/http_driver.h"

namespace sked {
namespace {

// A loopback server (HTTP, or HTTPS with `cert`/`key`) on a free port, with
// the routes the tests use; stopped and joined when destroyed.
class Server {
 public:
  Server(const std::string& cert = "", const std::string& key = "") {
    if (cert.empty()) {
      server_ = std::make_unique<httplib::Server>();
    } else {
      server_ = std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
    }
    httplib::Server& s = *server_;
    s.Get("/ok", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("fine\n", "text/plain");
    });
    s.Get("/fail", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content("down for maintenance\n", "text/plain");
    });
    s.Get(R"(/hop/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
      const int n = std::stoi(req.matches[1]);
      res.set_redirect(n <= 1 ? "/ok" : "/hop/" + std::to_string(n - 1));
    });
    s.Get("/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(200000, 'x'), "text/plain");
    });
    s.Get("/slow", [this](const httplib::Request&, httplib::Response& res) {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::seconds(10), [this] { return released_; });
      res.set_content("late\n", "text/plain");
    });
    s.Post("/echo", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> l(mu_);
        last_body_ = req.body;
        last_header_ = req.get_header_value("X-Team");
        last_method_ = req.method;
      }
      res.status = 201;
      res.set_content("created\n", "text/plain");
    });
    port_ = s.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // Bounded: listen_after_bind sets is_running at once on a bound socket.
    for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~Server() {
    {
      std::lock_guard<std::mutex> l(mu_);
      released_ = true;
    }
    cv_.notify_all();
    server_->stop();
    thread_.join();
  }
  std::string Url(const std::string& path, bool tls = false) const {
    return std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string last_body() {
    std::lock_guard<std::mutex> l(mu_);
    return last_body_;
  }
  std::string last_header() {
    std::lock_guard<std::mutex> l(mu_);
    return last_header_;
  }

 private:
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::string last_body_, last_header_, last_method_;
};

DriverResult Request(const nlohmann::json& config, std::stop_token stop = {},
                     std::string* live = nullptr) {
  std::unique_ptr<Driver> d = MakeHttpDriver();
  EXPECT_TRUE(d->Validate(config.dump()).ok()) << d->Validate(config.dump()).ToString();
  RunContext ctx;
  ctx.run_id = 1;
  ctx.job_name = "http-test";
  ctx.config = config.dump();
  if (live != nullptr) ctx.on_output = [live](std::string_view s) { live->append(s); };
  return d->Execute(ctx, std::move(stop));
}

std::string Invalid(const nlohmann::json& config) {
  Status s = MakeHttpDriver()->Validate(config.dump());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << config.dump();
  return s.message();
}

TEST(HttpDriverTest, ConfigIsCheckedWhenTheJobIsCreated) {
  EXPECT_EQ(Invalid(nlohmann::json::object()),
            "config.url: required, a string such as \"https://host/path\"");
  EXPECT_EQ(Invalid({{"url", "ftp://127.0.0.1/x"}}),
            "config.url: the scheme must be http or https, got 'ftp'");
  EXPECT_EQ(Invalid({{"url", "file:///etc/passwd"}}),
            "config.url: the scheme must be http or https, got 'file'");
  EXPECT_NE(Invalid({{"url", "not a url"}}).find("is not a URL"), std::string::npos);
  EXPECT_NE(Invalid({{"url", "http://h/"}, {"method", "TRACE"}}).find("config.method"),
            std::string::npos);
  EXPECT_EQ(Invalid({{"url", "http://h/"}, {"headers", {{"X-A", "1\r\nX-Injected: 2"}}}}),
            "config.headers.X-A: must be a string without line breaks");
  EXPECT_EQ(Invalid({{"url", "http://h/"}, {"headers", {{"Bad Name", "1"}}}}),
            "config.headers: 'Bad Name' is not a header name");
  EXPECT_NE(Invalid({{"url", "http://h/"}, {"body", "x"}}).find("a GET request has no body"),
            std::string::npos);
  EXPECT_NE(Invalid({{"url", "http://h/"}, {"expect_status", {200, 700}}}).find("expect_status"),
            std::string::npos);
  EXPECT_NE(Invalid({{"url", "http://h/"}, {"expect_status", {"6xx"}}}).find("expect_status"),
            std::string::npos);
  EXPECT_NE(Invalid({{"url", "http://h/"}, {"timeout", "soon"}}).find("config.timeout"),
            std::string::npos);
  EXPECT_NE(Invalid({{"url", "http://h/"}, {"max_redirects", 50}}).find("max_redirects"),
            std::string::npos);
  EXPECT_NE(
      Invalid({{"url", "http://h/"}, {"max_response_bytes", 1 << 30}}).find("max_response_bytes"),
      std::string::npos);
  EXPECT_NE(Invalid({{"url", "http://h/"}, {"verify", false}}).find("unknown key 'verify'"),
            std::string::npos);
}

TEST(HttpDriverTest, TheStatusDecidesTheOutcome) {
  Server server;
  std::string live;
  DriverResult ok = Request({{"url", server.Url("/ok")}}, {}, &live);
  EXPECT_EQ(ok.status, RunStatus::kSucceeded) << ok.error;
  EXPECT_EQ(ok.output, "fine\n");
  EXPECT_EQ(live, "fine\n") << "the body is live output too";
  nlohmann::json result = nlohmann::json::parse(ok.result);
  EXPECT_EQ(result["status"], 200);
  EXPECT_EQ(result["redirects"], 0);

  DriverResult down = Request({{"url", server.Url("/fail")}});
  EXPECT_EQ(down.status, RunStatus::kFailed);
  EXPECT_EQ(down.error, "HTTP 503 (expected 2xx)");
  EXPECT_EQ(down.output, "down for maintenance\n");
  DriverResult expected = Request({{"url", server.Url("/fail")}, {"expect_status", {503, "2xx"}}});
  EXPECT_EQ(expected.status, RunStatus::kSucceeded) << expected.error;
  DriverResult missing = Request({{"url", server.Url("/nothing-here")}, {"expect_status", {200}}});
  EXPECT_EQ(missing.error, "HTTP 404 (expected 200)");
}

TEST(HttpDriverTest, MethodHeadersAndBodyAreSent) {
  Server server;
  DriverResult r =
      Request({{"url", server.Url("/echo")},
               {"method", "POST"},
               {"headers", {{"X-Team", "infra"}, {"Content-Type", "application/json"}}},
               {"body", R"({"n": 1})"}});
  EXPECT_EQ(r.status, RunStatus::kSucceeded) << r.error;
  EXPECT_EQ(server.last_body(), R"({"n": 1})");
  EXPECT_EQ(server.last_header(), "infra");
}

TEST(HttpDriverTest, RedirectsAreFollowedUpToTheBound) {
  Server server;
  DriverResult followed = Request({{"url", server.Url("/hop/3")}});
  EXPECT_EQ(followed.status, RunStatus::kSucceeded) << followed.error;
  EXPECT_EQ(nlohmann::json::parse(followed.result)["redirects"], 3);
  EXPECT_EQ(nlohmann::json::parse(followed.result)["url"], server.Url("/ok"));
  DriverResult too_many = Request({{"url", server.Url("/hop/3")}, {"max_redirects", 2}});
  EXPECT_EQ(too_many.status, RunStatus::kFailed);
  EXPECT_NE(too_many.error.find("edirects"), std::string::npos) << too_many.error;
  DriverResult answer = Request({{"url", server.Url("/hop/1")}, {"max_redirects", 0}});
  EXPECT_EQ(answer.error, "HTTP 302 (expected 2xx)") << "not followed: the redirect is the answer";
}

TEST(HttpDriverTest, TheRequestTimeoutAndAStopEndTheRequest) {
  Server server;
  const auto t0 = std::chrono::steady_clock::now();
  DriverResult timed = Request({{"url", server.Url("/slow")}, {"timeout", "300ms"}});
  EXPECT_EQ(timed.status, RunStatus::kFailed);
  EXPECT_NE(timed.error.find("timed out"), std::string::npos) << timed.error;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));

  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop.request_stop();
  });
  const auto t1 = std::chrono::steady_clock::now();
  DriverResult stopped = Request({{"url", server.Url("/slow")}}, stop.get_token());
  stopper.join();
  EXPECT_EQ(stopped.error, "http: stopped");
  EXPECT_LT(std::chrono::steady_clock::now() - t1, std::chrono::seconds(5))
      << "a stop must end the request long before the server answers";
}

TEST(HttpDriverTest, AResponseLargerThanTheBoundIsCutThere) {
  Server server;
  DriverResult r = Request({{"url", server.Url("/big")}, {"max_response_bytes", 1000}});
  EXPECT_EQ(r.status, RunStatus::kSucceeded) << r.error;
  EXPECT_EQ(r.output, std::string(1000, 'x'));
  EXPECT_TRUE(r.output_truncated);
  DriverResult whole = Request({{"url", server.Url("/big")}, {"max_response_bytes", 300000}});
  EXPECT_EQ(whole.output.size(), 200000u);
  EXPECT_FALSE(whole.output_truncated);
}

TEST(HttpDriverTest, TlsIsVerifiedAgainstTheSystemOrTheGivenCa) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("sked-http-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext "
      "subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a certificate";
  {
    Server server(cert, key);
    DriverResult untrusted = Request({{"url", server.Url("/ok", true)}});
    EXPECT_EQ(untrusted.status, RunStatus::kFailed);
    EXPECT_NE(untrusted.error.find("certificate"), std::string::npos) << untrusted.error;
    DriverResult trusted = Request({{"url", server.Url("/ok", true)}, {"ca_file", cert}});
    EXPECT_EQ(trusted.status, RunStatus::kSucceeded) << trusted.error;
    EXPECT_EQ(trusted.output, "fine\n");
    DriverResult unverified = Request({{"url", server.Url("/ok", true)}, {"verify_tls", false}});
    EXPECT_EQ(unverified.status, RunStatus::kSucceeded) << unverified.error;
  }
  std::filesystem::remove_all(dir);
}

// `sked driver list` shows each driver's config schema: for every driver sked
// registers, the schema is a JSON object schema whose properties are exactly
// the keys the driver accepts (its unknown-key error lists them).
TEST(DriverSchemaTest, EachSchemaNamesExactlyTheKeysItsDriverAccepts) {
  std::unique_ptr<DriverRegistry> registry = DriverRegistry::WithBuiltins();
  ASSERT_TRUE(registry->Register(MakeHttpDriver()).ok());
  for (const std::string& name : registry->Names()) {
    const Driver* d = registry->Find(name);
    nlohmann::json schema = nlohmann::json::parse(d->config_schema(), nullptr, false);
    ASSERT_FALSE(schema.is_discarded()) << name << ": the schema is not JSON";
    EXPECT_EQ(schema["type"], "object") << name;
    EXPECT_EQ(schema["additionalProperties"], false) << name;
    std::string keys;
    for (const auto& [key, value] : schema["properties"].items()) {
      keys += (keys.empty() ? "" : ", ") + key;
    }
    const std::string message = d->Validate(R"({"not-a-key": 1})").message();
    const size_t open = message.find("(expected ");
    ASSERT_NE(open, std::string::npos) << name << ": " << message;
    std::string expected = message.substr(open + 10, message.size() - open - 11);
    // Both as sorted lists.
    auto sorted = [](const std::string& list) {
      std::vector<std::string> v;
      size_t start = 0;
      while (start <= list.size()) {
        size_t comma = list.find(", ", start);
        if (comma == std::string::npos) comma = list.size();
        v.push_back(list.substr(start, comma - start));
        start = comma + 2;
      }
      std::sort(v.begin(), v.end());
      return v;
    };
    EXPECT_EQ(sorted(keys), sorted(expected)) << name;
  }
}

TEST(HttpDriverTest, NothingListeningFailsWithTheReason) {
  // A port that was free a moment ago: bound, never listened on, closed.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  DriverResult r = Request(
      {{"url", "http://127.0.0.1:" + std::to_string(port) + "/"}, {"connect_timeout", "2s"}});
  EXPECT_EQ(r.status, RunStatus::kFailed);
  EXPECT_EQ(r.error.rfind("http: ", 0), 0u) << r.error;
}

}  // namespace
}  // namespace sked
