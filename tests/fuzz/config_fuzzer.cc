// libFuzzer target: loading a config file must never crash or hang on any
// input, and a config it accepts must hold what the daemon relies on. Built
// with -DSKED_FUZZ=ON (clang).

#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/config.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = sked::daemon::ParseConfig(text, "fuzz.toml", "/srv/sked", {});
  if (!config.ok()) {
    // Every message says where.
    Check(config.status().message().rfind("fuzz.toml", 0) == 0);
    return 0;
  }
  Check(config->engine.workers >= 1);
  Check(config->engine.heartbeat < config->engine.lease);
  Check(!config->store_url.empty());
  for (const sked::JobSpec& job : config->jobs) {
    Check(!job.driver_config.empty() && job.driver_config[0] == '{');
  }
  return 0;
}
