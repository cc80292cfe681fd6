// Structured logs for the daemon: one line per event, as text
// (`2026-11-27T16:40:00.123Z info run finished job=x run=12 ...`) or JSON
// (`{"time":"...","level":"info","msg":"run finished","job":"x",...}`), to a
// FILE (stderr by default). Thread-safe.

#ifndef SKED_DAEMON_LOGGER_H_
#define SKED_DAEMON_LOGGER_H_

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/config.h"
#include "sked/clock.h"

namespace sked::daemon {

using LogFields = std::vector<std::pair<std::string, std::string>>;

class Logger {
 public:
  Logger(LogLevel level, LogFormat format, std::FILE* out, Clock* clock)
      : level_(level), format_(format), out_(out), clock_(clock) {}

  void Log(LogLevel level, std::string_view msg, const LogFields& fields = {});
  void Debug(std::string_view msg, const LogFields& fields = {}) {
    Log(LogLevel::kDebug, msg, fields);
  }
  void Info(std::string_view msg, const LogFields& fields = {}) {
    Log(LogLevel::kInfo, msg, fields);
  }
  void Warn(std::string_view msg, const LogFields& fields = {}) {
    Log(LogLevel::kWarn, msg, fields);
  }
  void Error(std::string_view msg, const LogFields& fields = {}) {
    Log(LogLevel::kError, msg, fields);
  }

 private:
  const LogLevel level_;
  const LogFormat format_;
  std::FILE* const out_;
  Clock* const clock_;
  std::mutex mu_;
};

}  // namespace sked::daemon

#endif  // SKED_DAEMON_LOGGER_H_
