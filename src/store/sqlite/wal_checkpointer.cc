#include "store/sqlite/wal_checkpointer.h"

#include <utility>

#include "base/thread_name.h"

namespace sked::store_internal {

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(const std::string& path,
                                                                sqlite3* writer,
                                                                int background_pages,
                                                                int inline_pages) {
  SKED_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> own, SqliteDb::Open(path));
  std::unique_ptr<WalCheckpointer> c(
      new WalCheckpointer(std::move(own), writer, background_pages, inline_pages));
  c->thread_ = std::thread([p = c.get()] { p->Run(); });
  NameThread(c->thread_, "sked-checkpoint");
  sqlite3_wal_hook(writer, &WalCheckpointer::OnCommit, c.get());
  return c;
}

WalCheckpointer::~WalCheckpointer() {
  // SQLite's automatic checkpoint again (it, too, is a WAL hook).
  sqlite3_wal_autocheckpoint(writer_, kBackgroundPages);
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int WalCheckpointer::OnCommit(void* self, sqlite3* db, const char* schema, int pages) {
  auto* c = static_cast<WalCheckpointer*>(self);
  if (pages >= c->inline_pages_) {
    // The log has not restarted for a long while (the writer never paused):
    // bound it here, as SQLite's own checkpoint would.
    (void)sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    std::lock_guard<std::mutex> l(c->mu_);
    ++c->inline_;
    return SQLITE_OK;
  }
  if (pages >= c->background_pages_) {
    bool wake;
    {
      std::lock_guard<std::mutex> l(c->mu_);
      wake = !std::exchange(c->wanted_, true);
    }
    if (wake) c->cv_.notify_all();
  }
  return SQLITE_OK;
}

void WalCheckpointer::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [this] { return stopping_ || wanted_; });
    if (stopping_) return;
    wanted_ = false;
    l.unlock();
    // PASSIVE: copies what no reader needs, never waits for the writer or
    // the readers (the busy handler is not called). A failure (the disk is
    // full, say) leaves the pages in the log for the next one.
    (void)sqlite3_wal_checkpoint_v2(own_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                    nullptr);
    l.lock();
    ++background_;
    cv_.notify_all();  // WaitForBackgroundCheckpoints
  }
}

std::int64_t WalCheckpointer::background_checkpoints() const {
  std::lock_guard<std::mutex> l(mu_);
  return background_;
}

std::int64_t WalCheckpointer::inline_checkpoints() const {
  std::lock_guard<std::mutex> l(mu_);
  return inline_;
}

bool WalCheckpointer::WaitForBackgroundCheckpoints(std::int64_t n,
                                                   std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> l(mu_);
  return cv_.wait_for(l, timeout, [&] { return background_ >= n; });
}

}  // namespace sked::store_internal
