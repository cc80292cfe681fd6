// The built-in channels: log, command and webhook.

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "notify/channel.h"

namespace sked::notify {
namespace {

// What a failed delivery's message quotes of the peer's answer, at most.
constexpr size_t kQuoted = 512;

std::string Quote(std::string text) {
  if (text.size() > kQuoted) text = text.substr(0, kQuoted) + "...";
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

class LogChannel final : public Channel {
 public:
  explicit LogChannel(std::function<void(const std::string&)> sink) : sink_(std::move(sink)) {}
  Status Deliver(const std::string& payload) override {
    sink_(payload);
    return Status::Ok();
  }

 private:
  std::function<void(const std::string&)> sink_;
};

class CommandChannel final : public Channel {
 public:
  explicit CommandChannel(ChannelConfig config) : config_(std::move(config)) {}

  Status Deliver(const std::string& payload) override {
    // A socket, not a pipe, for standard input: writing to a command that
    // exited without reading it gives EPIPE, never SIGPIPE to the daemon.
    int in[2], out[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) {
      return InternalError(std::string("socketpair: ") + std::strerror(errno));
    }
    if (::pipe2(out, O_CLOEXEC) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      return InternalError(std::string("pipe: ") + std::strerror(errno));
    }
    std::vector<char*> argv;
    for (const std::string& a : config_.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
      return InternalError(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
      // The child: its own process group (killed whole at the timeout), and
      // it dies with the daemon. Only async-signal-safe calls from here.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(in[1], 0);
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      ::execvp(argv[0], argv.data());
      static const char kFailed[] = "cannot execute the command\n";
      (void)!::write(2, kFailed, sizeof(kFailed) - 1);
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    ::close(in[1]);
    ::close(out[1]);
    const auto deadline = std::chrono::steady_clock::now() + config_.timeout;
    size_t written = 0;
    ::fcntl(in[0], F_SETFL, O_NONBLOCK);
    std::string output;
    bool out_open = true, in_open = true, timed_out = false;
    while (out_open) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        break;
      }
      if (in_open && written == payload.size()) {
        ::close(in[0]);
        in_open = false;
      }
      pollfd fds[2] = {{out[0], POLLIN, 0}, {in_open ? in[0] : -1, POLLOUT, 0}};
      if (::poll(fds, 2, static_cast<int>(std::min<std::int64_t>(left.count(), 1000))) < 0 &&
          errno != EINTR) {
        break;
      }
      if (in_open && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
        const ssize_t n =
            ::send(in[0], payload.data() + written, payload.size() - written, MSG_NOSIGNAL);
        if (n > 0) {
          written += static_cast<size_t>(n);
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          written = payload.size();  // it stopped reading: its exit status decides
        }
      }
      if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        char buf[4096];
        const ssize_t n = ::read(out[0], buf, sizeof(buf));
        if (n > 0) {
          if (output.size() < kQuoted * 2) output.append(buf, static_cast<size_t>(n));
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
          out_open = false;
        }
      }
    }
    if (in_open) ::close(in[0]);
    ::close(out[0]);
    if (timed_out) ::kill(-pid, SIGKILL);
    int status = 0;
    // Bounded: after its output closed (or the kill) the command ends at once;
    // a child that closed its output and lingers is killed at the deadline.
    while (true) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid || (w < 0 && errno != EINTR)) break;
      if (std::chrono::steady_clock::now() >= deadline && !timed_out) {
        timed_out = true;
        ::kill(-pid, SIGKILL);
      }
      ::usleep(2000);
    }
    ::kill(-pid, SIGKILL);  // whatever it left behind in its group
    if (timed_out) {
      return DeadlineExceededError("command '" + config_.command[0] + "' did not finish within " +
                                   FormatDuration(config_.timeout));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
    std::string why = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                        : "killed by signal " + std::to_string(WTERMSIG(status));
    const std::string said = Quote(output);
    return UnavailableError("command '" + config_.command[0] + "': " + why +
                            (said.empty() ? "" : ": " + said));
  }

 private:
  const ChannelConfig config_;
};

void InitCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t KeepBody(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() < kQuoted * 2) body->append(data, std::min(size * n, kQuoted * 2));
  return size * n;
}

class WebhookChannel final : public Channel {
 public:
  explicit WebhookChannel(ChannelConfig config) : config_(std::move(config)) { InitCurl(); }

  Status Deliver(const std::string& payload) override {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return InternalError("curl_easy_init failed");
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "User-Agent: sked");
    for (const auto& [k, v] : config_.headers) {
      std::string line = k;
      line.append(": ").append(v);
      headers = curl_slist_append(headers, line.c_str());
    }
    if (!config_.secret.empty()) {
      const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
      const std::string sig = WebhookSignature(config_.secret, now, payload);
      headers = curl_slist_append(headers, ("X-Sked-Signature: " + sig).c_str());
    }
    std::string body;
    char error[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_URL, config_.url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
    curl_easy_setopt(
        curl, CURLOPT_TIMEOUT_MS,
        static_cast<long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(config_.timeout).count()));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is an answer, not a delivery
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!config_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, config_.ca_file.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, KeepBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    const CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
      const std::string why = error[0] != '\0' ? error : curl_easy_strerror(rc);
      if (rc == CURLE_OPERATION_TIMEDOUT) return DeadlineExceededError("webhook: " + why);
      return UnavailableError("webhook: " + why);
    }
    if (code >= 200 && code < 300) return Status::Ok();
    const std::string said = Quote(body);
    return UnavailableError("webhook: HTTP " + std::to_string(code) +
                            (said.empty() ? "" : ": " + said));
  }

 private:
  const ChannelConfig config_;
};

// Feeds a message to libcurl's SMTP upload.
struct Upload {
  const std::string* text;
  size_t at = 0;
};
size_t ReadUpload(char* buf, size_t size, size_t n, void* user) {
  auto* u = static_cast<Upload*>(user);
  const size_t len = u->text->copy(buf, size * n, u->at);
  u->at += len;
  return len;
}

class EmailChannel final : public Channel {
 public:
  explicit EmailChannel(ChannelConfig config) : config_(std::move(config)) { InitCurl(); }

  Status Deliver(const std::string& payload) override {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    const std::string message = EmailMessage(config_, payload, now);
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return InternalError("curl_easy_init failed");
    curl_slist* rcpt = nullptr;
    for (const std::string& to : config_.to)
      rcpt = curl_slist_append(rcpt, ("<" + to + ">").c_str());
    Upload upload{&message};
    char error[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_URL, config_.url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    if (config_.tls == "starttls")
      curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!config_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, config_.ca_file.c_str());
    if (!config_.username.empty()) {
      curl_easy_setopt(curl, CURLOPT_USERNAME, config_.username.c_str());
      curl_easy_setopt(curl, CURLOPT_PASSWORD, config_.password.c_str());
    }
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, ("<" + config_.from + ">").c_str());
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, ReadUpload);
    curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(
        curl, CURLOPT_TIMEOUT_MS,
        static_cast<long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(config_.timeout).count()));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    const CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(curl);
    if (rc == CURLE_OK) return Status::Ok();
    const std::string why = error[0] != '\0' ? error : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) return DeadlineExceededError("email: " + why);
    return UnavailableError("email: " + why);
  }

 private:
  const ChannelConfig config_;
};

std::string OrDash(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>().empty() ? "-" : v.get<std::string>();
  return v.dump();
}

}  // namespace

std::string EmailMessage(const ChannelConfig& config, const std::string& payload,
                         std::int64_t unix_seconds) {
  const nlohmann::json p = nlohmann::json::parse(payload, nullptr, false);
  const bool ok = p.is_object();
  const std::string event = ok ? OrDash(p.value("event", nlohmann::json())) : "notification";
  const std::string job =
      ok && p.contains("job") ? OrDash(p["job"].value("name", nlohmann::json())) : "-";
  char date[64];
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
  std::string to;
  for (const std::string& r : config.to) to += (to.empty() ? "" : ", ") + r;
  std::string m;
  m += "Date: " + std::string(date) + "\r\n";
  m += "From: sked <" + config.from + ">\r\n";
  m += "To: " + to + "\r\n";
  m += "Subject: [sked] " + job + ": " + event + "\r\n";
  if (ok && p.contains("id")) {
    m += "Message-ID: <sked-notification-" + p["id"].dump() + "-" + std::to_string(unix_seconds) +
         "@sked>\r\n";
  }
  m += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n";
  m += "Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n";
  std::string body = "sked: job '" + job + "': " + event + "\n\n";
  if (ok && p.contains("run") && p["run"].is_object()) {
    const nlohmann::json& r = p["run"];
    body += "Run:       " + OrDash(r.value("id", nlohmann::json())) + " (attempt " +
            OrDash(r.value("attempt", nlohmann::json())) + ", " +
            OrDash(r.value("trigger", nlohmann::json())) + ")\n";
    body += "Status:    " + OrDash(r.value("status", nlohmann::json())) + "\n";
    body += "Scheduled: " + OrDash(r.value("scheduled_for", nlohmann::json())) + "\n";
    body += "Started:   " + OrDash(r.value("started_at", nlohmann::json())) + "\n";
    body += "Finished:  " + OrDash(r.value("finished_at", nlohmann::json())) + "\n";
    body += "Exit code: " + OrDash(r.value("exit_code", nlohmann::json())) + "\n";
    body += "Error:     " + OrDash(r.value("error", nlohmann::json())) + "\n";
    body += "Reason:    " + OrDash(r.value("reason", nlohmann::json())) + "\n";
    const std::string output = r.value("output_tail", std::string());
    if (!output.empty()) body += "\nOutput (its end):\n" + output + "\n";
  }
  body += "\nThe notification as JSON:\n" + payload + "\n";
  // CRLF line ends, whatever the output held.
  for (size_t i = 0; i < body.size(); ++i) {
    const bool bare_lf = body[i] == '\n' && (i == 0 || body[i - 1] != '\r');
    const bool bare_cr = body[i] == '\r' && (i + 1 >= body.size() || body[i + 1] != '\n');
    if (bare_lf || bare_cr) {
      m += "\r\n";
    } else {
      m += body[i];
    }
  }
  return m;
}

std::string WebhookSignature(const std::string& secret, std::int64_t unix_seconds,
                             const std::string& body) {
  const std::string t = std::to_string(unix_seconds);
  const std::string signed_text = t + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += kHex[mac[i] >> 4];
    hex += kHex[mac[i] & 0xf];
  }
  return "t=" + t + ",v1=" + hex;
}

std::unique_ptr<Channel> NewLogChannel(std::function<void(const std::string&)> sink) {
  return std::make_unique<LogChannel>(std::move(sink));
}
std::unique_ptr<Channel> NewCommandChannel(const ChannelConfig& config) {
  return std::make_unique<CommandChannel>(config);
}
std::unique_ptr<Channel> NewWebhookChannel(const ChannelConfig& config) {
  return std::make_unique<WebhookChannel>(config);
}
std::unique_ptr<Channel> NewEmailChannel(const ChannelConfig& config) {
  return std::make_unique<EmailChannel>(config);
}

Result<std::map<std::string, std::unique_ptr<Channel>>> BuildChannels(
    const NotifyConfig& config, const std::function<void(const std::string&)>& log_sink) {
  std::map<std::string, std::unique_ptr<Channel>> out;
  for (const ChannelConfig& c : config.channels) {
    if (c.type == "log") {
      out[c.name] = NewLogChannel(log_sink);
    } else if (c.type == "command") {
      if (c.command.empty()) {
        return InvalidArgumentError("channel '" + c.name + "': command is empty");
      }
      out[c.name] = NewCommandChannel(c);
    } else if (c.type == "webhook") {
      out[c.name] = NewWebhookChannel(c);
    } else if (c.type == "email") {
      out[c.name] = NewEmailChannel(c);
    } else {
      return InvalidArgumentError("channel '" + c.name + "': unknown type '" + c.type +
                                  "' (expected webhook, email, command or log)");
    }
  }
  return out;
}

}  // namespace sked::notify
