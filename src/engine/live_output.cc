#include "engine/live_output.h"

#include <algorithm>

namespace sked::engine_internal {

void LiveOutput::Open(std::int64_t run_id) {
  std::lock_guard<std::mutex> l(mu_);
  runs_[run_id] = std::make_shared<Entry>();
}

void LiveOutput::Append(std::int64_t run_id, std::string_view data) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = runs_.find(run_id);
    if (it == runs_.end()) return;
    Entry& e = *it->second;
    e.tail.append(data);
    e.end += static_cast<std::int64_t>(data.size());
    if (e.tail.size() > kLiveTailBytes) e.tail.erase(0, e.tail.size() - kLiveTailBytes);
  }
  cv_.notify_all();
}

void LiveOutput::Close(std::int64_t run_id) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = runs_.find(run_id);
    if (it == runs_.end()) return;
    it->second->closed = true;  // a waiter holding the entry sees it
    runs_.erase(it);
  }
  cv_.notify_all();
}

std::optional<OutputChunk> LiveOutput::Read(std::int64_t run_id, std::int64_t from,
                                            std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> l(mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return std::nullopt;
  std::shared_ptr<Entry> e = it->second;
  cv_.wait_for(l, wait, [&] { return e->closed || e->end > from; });
  OutputChunk out;
  const std::int64_t start = e->end - static_cast<std::int64_t>(e->tail.size());
  out.offset = std::clamp(from, start, e->end);
  out.end = e->end;
  out.data = e->tail.substr(static_cast<size_t>(out.offset - start));
  out.running = !e->closed;
  return out;
}

}  // namespace sked::engine_internal
