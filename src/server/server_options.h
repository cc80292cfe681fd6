// What `[server]` in sked.toml sets (docs/configuration.md). A plain struct:
// the config loader fills it, the API server reads it.

#ifndef SKED_SERVER_SERVER_OPTIONS_H_
#define SKED_SERVER_SERVER_OPTIONS_H_

#include <chrono>
#include <cstddef>
#include <string>

namespace sked::server {

struct ServerOptions {
  // "HOST:PORT" ("127.0.0.1:8080", "[::1]:8080", "0.0.0.0:8080"); port 0
  // picks a free one. Empty: no server.
  std::string listen;
  std::string tls_cert;  // PEM files; both or neither (HTTPS)
  std::string tls_key;
  std::size_t max_body_bytes = std::size_t{1024} * 1024;
  std::chrono::seconds read_timeout{10};
  std::chrono::seconds write_timeout{10};
  // Connections served at once: an idle kept-alive connection holds one (a
  // browser keeps up to six open per dashboard tab).
  int threads = 32;
  int max_streams = 4;        // output streams open at once (each holds a thread)
  bool metrics_auth = false;  // /metrics needs a viewer token too
  bool dashboard = true;      // serve the web dashboard at /ui/
};

}  // namespace sked::server

#endif  // SKED_SERVER_SERVER_OPTIONS_H_
