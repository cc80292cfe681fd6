// Notification channels: where a notification is delivered (a webhook, a
// command, the daemon's log), and how channels are configured. A channel
// delivers one payload (the event as JSON) per call; an error means "not
// delivered, try again later" and says why.
//
// Thread safety: the dispatcher calls Deliver from one thread at a time per
// channel; a channel keeps no state between calls beyond its configuration.

#ifndef SKED_NOTIFY_CHANNEL_H_
#define SKED_NOTIFY_CHANNEL_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sked/notification.h"
#include "sked/status.h"
#include "sked/time.h"

namespace sked::notify {

// One [[channel]] of sked.toml. Secrets are read into `secret` where the
// config is loaded and never logged or echoed.
struct ChannelConfig {
  std::string name;
  std::string type;  // "webhook", "email", "command" or "log"
  Duration timeout = std::chrono::seconds(10);
  // webhook: POST the payload to `url` (http or https; TLS verified), with
  // `headers`; when `secret` is set, an HMAC-SHA256 signature header.
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string secret;
  std::string ca_file;  // webhook: a CA bundle to verify the server with (empty: the system's)
  // command: argv; the payload on its standard input; exit status 0 = delivered.
  std::vector<std::string> command;
  // email: an SMTP server (`url`: smtp://host:port or smtps://host:port),
  // `tls` "starttls" (required, the default), "implicit" (smtps) or "none"
  // (plain text: a relay on loopback), optional login, sender and recipients.
  std::string tls = "starttls";
  std::string username;
  std::string password;  // a secret: never logged
  std::string from;
  std::vector<std::string> to;
};

// [notify] and the [[channel]] tables.
struct NotifyConfig {
  NotifyDefaults defaults;                      // events and channels of jobs that name none
  int max_attempts = 5;                         // then the notification is failed for good
  Duration backoff = std::chrono::seconds(10);  // before the 2nd attempt; doubles
  Duration max_backoff = std::chrono::minutes(10);
  Duration keep = std::chrono::hours(24 * 30);  // delivered/failed ones deleted after (0: kept)
  std::vector<ChannelConfig> channels;
};

class Channel {
 public:
  virtual ~Channel() = default;
  // Delivers `payload` (JSON text) within the channel's timeout.
  virtual Status Deliver(const std::string& payload) = 0;
};

// Writes each payload to `sink` (the daemon's log) as one line.
std::unique_ptr<Channel> NewLogChannel(std::function<void(const std::string&)> sink);
// Runs config.command with the payload on standard input; killed (its
// process group) at config.timeout.
std::unique_ptr<Channel> NewCommandChannel(const ChannelConfig& config);
// POSTs the payload to config.url with libcurl.
std::unique_ptr<Channel> NewWebhookChannel(const ChannelConfig& config);
// Mails a plain-text summary of the payload (and the payload) over SMTP with
// libcurl.
std::unique_ptr<Channel> NewEmailChannel(const ChannelConfig& config);
// The message an email channel sends for `payload` (RFC 5322, CRLF lines):
// headers, a summary of the event, the payload. `now` dates it.
std::string EmailMessage(const ChannelConfig& config, const std::string& payload,
                         std::int64_t unix_seconds);

// The signature header value of a webhook body: "t=<unix seconds>,v1=<hex
// HMAC-SHA256 of "<t>.<body>" keyed by `secret`>". A receiver recomputes it
// and refuses an old `t` (a replayed delivery).
std::string WebhookSignature(const std::string& secret, std::int64_t unix_seconds,
                             const std::string& body);

// The channels of `config`, by name; `log_sink` receives the log channels'
// lines. INVALID_ARGUMENT for an unknown type.
Result<std::map<std::string, std::unique_ptr<Channel>>> BuildChannels(
    const NotifyConfig& config, const std::function<void(const std::string&)>& log_sink);

}  // namespace sked::notify

#endif  // SKED_NOTIFY_CHANNEL_H_
