// The HTTP face of `sked serve` (docs/api.md): JSON under /api/v1 for jobs,
// runs, instances, cron previews, tokens and the audit log, with bearer
// tokens and roles; /metrics in the Prometheus text format; /healthz and
// /readyz. A thin layer over the Engine's public API and the Store: nothing
// here decides anything the engine decides.

#ifndef SKED_SERVER_API_SERVER_H_
#define SKED_SERVER_API_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "daemon/logger.h"
#include "server/metrics_text.h"
#include "server/server_options.h"
#include "sked/clock.h"
#include "sked/engine.h"
#include "sked/status.h"
#include "sked/store.h"

namespace sked::server {

// What the probes and /metrics need to know of the engine's settings.
struct ServeContext {
  Engine* engine = nullptr;
  Store* store = nullptr;
  Clock* clock = nullptr;
  daemon::Logger* log = nullptr;
  EngineOptions engine_options;
  // Store operation latencies (nullable): rendered into /metrics.
  const class StoreTimings* timings = nullptr;
  // The notification dispatcher's counters (empty: none runs here).
  std::function<NotifyMetrics()> notify_metrics;
  // The retention service's counters (empty: none runs here).
  std::function<RetentionMetrics()> retention_metrics;
};

class ApiServer {
 public:
  ApiServer(ServerOptions options, const ServeContext& context);
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;
  ~ApiServer();  // Stop()

  // Binds and starts serving on a thread of its own. INVALID_ARGUMENT for a
  // bad listen address or TLS files, UNAVAILABLE when the port is taken.
  Status Start();
  // Stops accepting, ends open streams, joins. Safe before Start and twice.
  void Stop();
  // "http://127.0.0.1:8080" once started (the port bound, when 0 was asked).
  std::string url() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sked::server

#endif  // SKED_SERVER_API_SERVER_H_
