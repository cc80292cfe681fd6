// Two engine processes on one SQLite file: every fire in the window is run
// exactly once, none is lost.

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "sked/clock.h"
#include "sked/driver.h"
#include "sked/engine.h"
#include "sked/store.h"

namespace sked {
namespace {

pid_t Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return pid;
}

// Waits for `pid` to exit, at most `timeout` of real time; kills it after.
int WaitExit(pid_t pid, std::chrono::seconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > give_up) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(MultiProcessTest, TwoEnginesOnOneSqliteFileRunEachFireOnce) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("sked-mp-" + std::to_string(::getpid()) + ".db"))
          .string();
  const std::string url = "sqlite://" + path;
  auto store = Store::Open(url);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Migrate().ok());
  auto drivers = DriverRegistry::WithBuiltins();
  EngineOptions options;
  options.min_interval = std::chrono::seconds(1);
  Engine admin(options, store->get(), drivers.get(), Clock::Real());  // never started

  // Every job fires each second for 5 seconds, starting 3 seconds from now.
  constexpr int kJobs = 30;
  const Instant start =
      std::chrono::ceil<std::chrono::seconds>(Clock::Real()->Now()) + std::chrono::seconds(3);
  const Instant end = start + std::chrono::seconds(4);
  for (int i = 0; i < kJobs; ++i) {
    JobSpec spec;
    spec.name = "mp-" + std::to_string(i);
    spec.schedule = "* * * * * *";
    spec.driver = "noop";
    spec.start_at = start;
    spec.end_at = end;
    ASSERT_TRUE(admin.CreateJob(spec).ok());
  }
  const pid_t a = Spawn({SKED_ENGINE_WORKER, url, "proc-a", "9"});
  const pid_t b = Spawn({SKED_ENGINE_WORKER, url, "proc-b", "9"});
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  EXPECT_EQ(WaitExit(a, std::chrono::seconds(60)), 0);
  EXPECT_EQ(WaitExit(b, std::chrono::seconds(60)), 0);

  RunFilter all;
  all.limit = 100000;
  auto runs = (*store)->ListRuns(all);
  ASSERT_TRUE(runs.ok());
  std::set<std::pair<std::int64_t, std::int64_t>> fires;
  std::map<std::string, int> by_instance;
  for (const sked::Run& r : *runs) {
    EXPECT_TRUE(fires.insert({r.job_id, r.scheduled_for.time_since_epoch().count()}).second)
        << "fire run twice: job " << r.job_name << " at " << FormatRfc3339Utc(r.scheduled_for);
    EXPECT_EQ(r.status, RunStatus::kSucceeded)
        << r.job_name << " " << RunStatusName(r.status) << " " << r.reason << " " << r.error;
    EXPECT_GE(r.scheduled_for, start);
    EXPECT_LE(r.scheduled_for, end);
    ++by_instance[r.instance_id];
  }
  EXPECT_EQ(fires.size(), static_cast<size_t>(kJobs * 5)) << "fires lost";
  for (const auto& [instance, count] : by_instance) {
    std::printf("instance %s ran %d runs\n", instance.c_str(), count);
  }
  if (std::getenv("SKED_KEEP_DB") == nullptr) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  }
}

}  // namespace
}  // namespace sked
