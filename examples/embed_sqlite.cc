// Embedding the engine: a program that hosts sked on SQLite alone, with a
// driver of its own. It links sked_engine and sked_store_sqlite, not libpq
// (a test checks). Runs one job every second until it has run twice, at
// most 10 s, then stops gracefully.
//
//   sked_embed_example [DB_PATH]   (default: an in-memory database)

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "sked/clock.h"
#include "sked/driver.h"
#include "sked/engine.h"
#include "sked/sqlite_store.h"

namespace {

// The embedding program's own work: counts its runs.
class GreetDriver final : public sked::Driver {
 public:
  std::string_view name() const override { return "greet"; }
  std::string_view description() const override { return "prints a greeting"; }
  sked::Status Validate(std::string_view config) const override {
    if (config != "{}") return sked::InvalidArgumentError("greet takes no config ({})");
    return sked::Status::Ok();
  }
  sked::DriverResult Execute(const sked::RunContext& ctx, std::stop_token) override {
    std::printf("hello from run %lld of job %s\n", static_cast<long long>(ctx.run_id),
                ctx.job_name.c_str());
    std::fflush(stdout);
    runs_.fetch_add(1);
    return sked::DriverResult();
  }
  int runs() const { return runs_.load(); }

 private:
  std::atomic<int> runs_{0};
};

}  // namespace

int main(int argc, char** argv) {
  auto store = sked::OpenSqliteStore(argc > 1 ? argv[1] : ":memory:");
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  if (sked::Status s = (*store)->Migrate(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  auto drivers = sked::DriverRegistry::WithBuiltins();
  auto greet = std::make_unique<GreetDriver>();
  GreetDriver* counter = greet.get();
  if (sked::Status s = drivers->Register(std::move(greet)); !s.ok()) return 1;

  sked::EngineOptions options;
  options.min_interval = std::chrono::seconds(1);
  sked::Clock* clock = sked::Clock::Real();
  sked::Engine engine(options, store->get(), drivers.get(), clock);
  if (sked::Status s = engine.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  sked::JobSpec spec;
  spec.name = "greeting";
  spec.schedule = "* * * * * *";
  spec.driver = "greet";
  if (auto job = engine.CreateJob(spec); !job.ok()) {
    std::fprintf(stderr, "%s\n", job.status().ToString().c_str());
    engine.Stop();
    return 1;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  const sked::Instant give_up = clock->Now() + std::chrono::seconds(10);
  while (counter->runs() < 2 && clock->Now() < give_up) {
    clock->AwaitWithDeadline(lock, cv, clock->Now() + std::chrono::milliseconds(50),
                             [] { return false; });
  }
  lock.unlock();
  engine.Stop();
  return counter->runs() >= 2 ? 0 : 1;
}
