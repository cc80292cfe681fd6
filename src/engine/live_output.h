// The output of runs executing in this process, as their drivers write it,
// for watchers (the API's Server-Sent Events stream). Bounded: the newest
// kLiveTailBytes of each run are kept; a watcher that falls behind is told
// where the bytes it gets start. An entry lives from the run's start until
// it ends; then waiters wake and see `running == false`.

#ifndef SKED_ENGINE_LIVE_OUTPUT_H_
#define SKED_ENGINE_LIVE_OUTPUT_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sked/engine.h"

namespace sked::engine_internal {

inline constexpr std::size_t kLiveTailBytes = std::size_t{256} * 1024;

class LiveOutput {
 public:
  void Open(std::int64_t run_id);
  void Append(std::int64_t run_id, std::string_view data);
  // The run ended: waiters wake; later reads find nothing.
  void Close(std::int64_t run_id);
  // Bytes from offset `from` on (or from the oldest kept, if those are gone),
  // waiting up to `wait` (real time) while there are none and the run goes
  // on. nullopt: the run is not executing here.
  std::optional<OutputChunk> Read(std::int64_t run_id, std::int64_t from,
                                  std::chrono::milliseconds wait);

 private:
  struct Entry {
    std::string tail;      // the newest bytes, ending at `end`
    std::int64_t end = 0;  // bytes written in all
    bool closed = false;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::int64_t, std::shared_ptr<Entry>> runs_;  // guarded by mu_
};

}  // namespace sked::engine_internal

#endif  // SKED_ENGINE_LIVE_OUTPUT_H_
