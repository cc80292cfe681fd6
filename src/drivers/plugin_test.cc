// Driver plugins: the example plugin (examples/plugins/hello) loaded and run
// through the C ABI, and every refusal the loader makes: another ABI
// version, a library that is not a plugin, a file that is not a library, a
// name already taken, a file or folder other users may write, a missing
// folder. Waits are on the simulated clock.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "sked/driver.h"
#include "sked/plugin.h"
#include "testing/simulated_clock.h"

namespace sked {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

class PluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sked-plugin-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms::owner_all);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Copies a built plugin into the test's folder as `name`.
  std::string Put(const char* built, const std::string& name) {
    const fs::path to = dir_ / name;
    fs::copy_file(built, to, fs::copy_options::overwrite_existing);
    fs::permissions(to, fs::perms::owner_all);
    return to.string();
  }

  RunContext Context(const std::string& config) {
    RunContext c;
    c.run_id = 7;
    c.job_name = "greet";
    c.attempt = 2;
    c.scheduled_for = FromUnixSeconds(1'800'000'000);
    c.config = config;
    c.clock = &clock_;
    c.on_output = [this](std::string_view chunk) { live_ += chunk; };
    return c;
  }

  fs::path dir_;
  testing::SimulatedClock clock_{FromUnixSeconds(1'800'000'000)};
  std::string live_;
};

TEST_F(PluginTest, TheExamplePluginRegistersItsDriver) {
  DriverRegistry registry;
  ASSERT_TRUE(registry.LoadPlugin(SKED_HELLO_PLUGIN).ok());
  Driver* hello = registry.Find("hello");
  ASSERT_NE(hello, nullptr);
  EXPECT_EQ(registry.Origin("hello"), SKED_HELLO_PLUGIN);
  EXPECT_EQ(hello->description(), "writes a greeting per line (an example plugin)");
  const nlohmann::json schema = nlohmann::json::parse(hello->config_schema());
  for (const char* key : {"greeting", "times", "interval_ms", "fail"}) {
    EXPECT_TRUE(schema["properties"].contains(key)) << key;
  }
  EXPECT_TRUE(registry.plugin_failures().empty());
}

TEST_F(PluginTest, ConfigIsValidatedByThePluginWithTheKeyNamed) {
  DriverRegistry registry;
  ASSERT_TRUE(registry.LoadPlugin(SKED_HELLO_PLUGIN).ok());
  const Driver& hello = *registry.Find("hello");
  EXPECT_TRUE(hello.Validate("{}").ok());
  EXPECT_TRUE(hello.Validate(R"({"greeting": "hi", "times": 3, "interval_ms": 10})").ok());
  const Status bad = hello.Validate(R"({"times": 0})");
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(), "times: must be an integer from 1 to 1000");
  EXPECT_EQ(hello.Validate(R"({"colour": "red"})").message(),
            "unknown key 'colour' (known: greeting, times, interval_ms, fail)");
  EXPECT_EQ(hello.Validate("[1").message(), "must be a JSON object");
  // A config that is not text at all (a NUL inside) reaches the plugin whole.
  EXPECT_FALSE(hello.Validate(std::string("{\"greeting\": \"a\0b\"}", 19)).ok());
}

TEST_F(PluginTest, ARunWritesOutputAndAResult) {
  DriverRegistry registry;
  ASSERT_TRUE(registry.LoadPlugin(SKED_HELLO_PLUGIN).ok());
  const DriverResult r =
      registry.Find("hello")->Execute(Context(R"({"times": 2})"), std::stop_token());
  EXPECT_EQ(r.status, RunStatus::kSucceeded);
  EXPECT_EQ(r.output, "hello, greet (attempt 2)\nhello, greet (attempt 2)\n");
  EXPECT_EQ(live_, r.output);  // as it was written, for live watchers
  EXPECT_FALSE(r.output_truncated);
  EXPECT_EQ(r.result, R"({"greetings": 2})");
  EXPECT_TRUE(r.error.empty());
}

TEST_F(PluginTest, AFailureCarriesItsErrorAndExitCode) {
  DriverRegistry registry;
  ASSERT_TRUE(registry.LoadPlugin(SKED_HELLO_PLUGIN).ok());
  const DriverResult r =
      registry.Find("hello")->Execute(Context(R"({"fail": true})"), std::stop_token());
  EXPECT_EQ(r.status, RunStatus::kFailed);
  EXPECT_EQ(r.error, "failed as configured");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.output, "hello, greet (attempt 2)\n");
}

TEST_F(PluginTest, OutputKeepsItsTailWithinTheEnginesBound) {
  DriverRegistry registry;
  ASSERT_TRUE(registry.LoadPlugin(SKED_HELLO_PLUGIN).ok());
  RunContext c = Context(R"({"greeting": "abcdefghij", "times": 1000})");
  c.max_output_bytes = 25;  // of 1,000 lines of 30 bytes
  const DriverResult r = registry.Find("hello")->Execute(c, std::stop_token());
  EXPECT_EQ(r.status, RunStatus::kSucceeded);
  EXPECT_TRUE(r.output_truncated);
  EXPECT_EQ(r.output, "fghij, greet (attempt 2)\n");
  EXPECT_EQ(live_.size(), 1000u * 30u);  // watchers saw all of it
}

TEST_F(PluginTest, ThePluginWaitsOnSkedsClockAndStopsWhenAsked) {
  DriverRegistry registry;
  ASSERT_TRUE(registry.LoadPlugin(SKED_HELLO_PLUGIN).ok());
  Driver* hello = registry.Find("hello");
  {
    DriverResult r;
    std::atomic<bool> done = false;
    const Instant start = clock_.Now();
    std::thread t([&] {
      r = hello->Execute(Context(R"({"times": 3, "interval_ms": 1000})"), std::stop_token());
      done = true;
    });
    // Time moves only when the plugin waits: to each wait's deadline (a
    // waiter already woken may still be listed: its deadline is not ahead).
    const auto give_up = std::chrono::steady_clock::now() + seconds(10);
    while (!done && std::chrono::steady_clock::now() < give_up) {
      if (!clock_.WaitForWaiters(1, std::chrono::milliseconds(100))) continue;
      const std::optional<Instant> at = clock_.EarliestWakeupTime();
      if (at && *at > clock_.Now()) {
        clock_.SetTime(*at);
      } else {
        std::this_thread::yield();
      }
    }
    t.join();
    EXPECT_EQ(r.status, RunStatus::kSucceeded);
    EXPECT_EQ(r.output.size(), 3 * std::string("hello, greet (attempt 2)\n").size());
    EXPECT_EQ(clock_.Now() - start, seconds(2));  // two waits of 1000 ms, on sked's clock
  }
  {
    std::stop_source stop;
    DriverResult r;
    std::thread t([&] {
      r = hello->Execute(Context(R"({"times": 5, "interval_ms": 3600000})"), stop.get_token());
    });
    ASSERT_TRUE(clock_.WaitForWaiters(1));  // waiting an hour, on sked's clock
    stop.request_stop();
    t.join();
    EXPECT_EQ(r.status, RunStatus::kFailed);
    EXPECT_EQ(r.error, "stopped after 1 greetings");
  }
}

TEST_F(PluginTest, APluginForAnotherAbiVersionIsRefusedNamingBoth) {
  DriverRegistry registry;
  const Status s = registry.LoadPlugin(SKED_HELLO_ABI2_PLUGIN);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), std::string("plugin ") + SKED_HELLO_ABI2_PLUGIN +
                             " was built for plugin ABI version 2, and this sked speaks version " +
                             std::to_string(SKED_PLUGIN_ABI_VERSION) +
                             ": rebuild it against this sked's include/sked/plugin.h");
  EXPECT_EQ(registry.Find("hello"), nullptr);  // nothing of it registered
  ASSERT_EQ(registry.plugin_failures().size(), 1u);
  EXPECT_EQ(registry.plugin_failures()[0].message(), s.message());
}

TEST_F(PluginTest, WhatIsNotAPluginIsRefused) {
  DriverRegistry registry;
  Status s = registry.LoadPlugin(SKED_NOT_A_PLUGIN);
  EXPECT_NE(s.message().find("not a sked plugin (it does not export sked_plugin_abi_version"),
            std::string::npos)
      << s.message();
  const std::string text = (dir_ / "notes.so").string();
  std::ofstream(text) << "#!/bin/sh\necho not a library\n";
  s = registry.LoadPlugin(text);
  EXPECT_NE(s.message().find("plugin " + text + ": cannot be loaded: "), std::string::npos)
      << s.message();
  s = registry.LoadPlugin((dir_ / "missing.so").string());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  s = registry.LoadPlugin(dir_.string());
  EXPECT_EQ(s.message(), "plugin " + dir_.string() + ": not a regular file");
  EXPECT_EQ(registry.plugin_failures().size(), 4u);
  EXPECT_TRUE(registry.Names().empty());
}

TEST_F(PluginTest, ADriverNameIsNeverTakenTwice) {
  auto registry = DriverRegistry::WithBuiltins();
  ASSERT_TRUE(registry->LoadPlugin(Put(SKED_HELLO_PLUGIN, "a.so")).ok());
  // The same plugin under another file name: a second "hello" is refused,
  // the first stays.
  const std::string twin = Put(SKED_HELLO_PLUGIN, "b.so");
  const Status s = registry->LoadPlugin(twin);
  EXPECT_EQ(s.message(), "plugin " + twin + ": a driver named 'hello' is already registered");
  EXPECT_EQ(registry->Origin("hello"), (dir_ / "a.so").string());
}

TEST_F(PluginTest, AFolderLoadsWhatItCanAndSaysWhatItCouldNot) {
  Put(SKED_HELLO_PLUGIN, "20-hello.so");
  const std::string old = Put(SKED_HELLO_ABI2_PLUGIN, "10-hello-old.so");
  std::ofstream(dir_ / "README.txt") << "not a plugin, not *.so: skipped\n";
  const fs::path dangling = dir_ / "30-gone.so";
  fs::create_symlink(dir_ / "removed.so", dangling);  // a link to nothing: said, not skipped
  auto registry = DriverRegistry::WithBuiltins();
  const std::vector<Status> failures = registry->LoadPlugins(dir_.string());
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_NE(failures[0].message().find(old), std::string::npos);
  EXPECT_EQ(failures[1].message(), "plugin " + dangling.string() + ": No such file or directory");
  ASSERT_NE(registry->Find("hello"), nullptr);  // loaded after the refused one
  EXPECT_NE(registry->Find("shell"), nullptr);
  // A job naming a driver nobody provides is told which plugins failed.
  EXPECT_EQ(registry->UnknownDriverMessage("greeter"),
            "unknown driver 'greeter' (registered: hello, noop, shell, sleep); plugins that "
            "failed to load: " +
                failures[0].message() + "; " + failures[1].message());

  DriverRegistry none;
  const std::vector<Status> missing = none.LoadPlugins((dir_ / "nope").string());
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_NE(missing[0].message().find("plugin_dir " + (dir_ / "nope").string() + ": "),
            std::string::npos);
}

TEST_F(PluginTest, AFileOrFolderOthersMayWriteIsRefused) {
  const std::string file = Put(SKED_HELLO_PLUGIN, "hello.so");
  fs::permissions(file, fs::perms::others_write, fs::perm_options::add);
  DriverRegistry registry;
  Status s = registry.LoadPlugin(file);
  EXPECT_EQ(s.message(), "plugin " + file +
                             ": refused, the file may be written by any user (a plugin runs "
                             "inside sked: keep it writable by sked's user or root only)");
  fs::permissions(file, fs::perms::others_write, fs::perm_options::remove);
  fs::permissions(dir_, fs::perms::others_all, fs::perm_options::add);
  s = registry.LoadPlugin(file);
  EXPECT_NE(s.message().find("its folder may be written by any user"), std::string::npos)
      << s.message();
  EXPECT_EQ(registry.Find("hello"), nullptr);
  fs::permissions(dir_, fs::perms::others_all, fs::perm_options::remove);
  EXPECT_TRUE(registry.LoadPlugin(file).ok());
}

}  // namespace
}  // namespace sked
