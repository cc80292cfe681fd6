// An example driver plugin (docs/plugins.md): the driver "hello" writes a
// greeting per line, waiting between lines on sked's clock, and stops when
// asked. Built by CMake as a shared library (libsked_plugin_hello.so); put it
// in `[drivers] plugin_dir` to use it:
//
//   [[job]]
//   name = "greet"
//   schedule = "* * * * *"
//   driver = "hello"
//   config = { greeting = "hello", times = 3, interval_ms = 500 }
//
// It uses only include/sked/plugin.h: no sked library is linked. Written in
// C++; nothing may throw across the C functions sked calls, so every
// callback catches what it could throw.

#include <sked/plugin.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

// The ABI version this plugin says it was built for. The build makes a twin
// with another one, to show sked refusing it.
#ifndef HELLO_ABI_VERSION
#define HELLO_ABI_VERSION SKED_PLUGIN_ABI_VERSION
#endif

namespace {

struct Config {
  std::string greeting = "hello";
  int times = 1;
  long long interval_ms = 0;
  bool fail = false;
};

// Parses and checks a config; on error writes why (naming the key) to
// `error` and returns false.
bool ParseConfig(const char* text, size_t len, Config* out, std::string* error) {
  const nlohmann::json j =
      nlohmann::json::parse(text, text + len, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    *error = "must be a JSON object";
    return false;
  }
  for (const auto& [key, value] : j.items()) {
    if (key == "greeting") {
      if (!value.is_string() || value.get<std::string>().empty() ||
          value.get<std::string>().size() > 200) {
        *error = "greeting: must be a string of 1-200 characters";
        return false;
      }
      out->greeting = value.get<std::string>();
    } else if (key == "times") {
      if (!value.is_number_integer() || value.get<long long>() < 1 ||
          value.get<long long>() > 1000) {
        *error = "times: must be an integer from 1 to 1000";
        return false;
      }
      out->times = value.get<int>();
    } else if (key == "interval_ms") {
      if (!value.is_number_integer() || value.get<long long>() < 0 ||
          value.get<long long>() > 3600000) {
        *error = "interval_ms: must be an integer from 0 to 3600000";
        return false;
      }
      out->interval_ms = value.get<long long>();
    } else if (key == "fail") {
      if (!value.is_boolean()) {
        *error = "fail: must be true or false";
        return false;
      }
      out->fail = value.get<bool>();
    } else {
      *error = "unknown key '" + key + "' (known: greeting, times, interval_ms, fail)";
      return false;
    }
  }
  return true;
}

int Validate(void* /*data*/, const char* config, size_t config_len, char* error,
             size_t error_size) {
  try {
    Config c;
    std::string why;
    if (ParseConfig(config, config_len, &c, &why)) return 0;
    std::snprintf(error, error_size, "%s", why.c_str());
  } catch (...) {
    std::snprintf(error, error_size, "%s", "the config could not be checked");
  }
  return 1;
}

int Fail(const sked_plugin_run* run, const std::string& why) {
  run->set_error(run, why.data(), why.size());
  return SKED_PLUGIN_RUN_FAILED;
}

int Execute(void* /*data*/, const sked_plugin_run* run) {
  try {
    Config c;
    std::string why;
    if (!ParseConfig(run->config, run->config_len, &c, &why)) return Fail(run, why);
    for (int i = 0; i < c.times; ++i) {
      if (i > 0 && c.interval_ms > 0 && run->wait_for_stop(run, c.interval_ms) != 0) {
        return Fail(run, "stopped after " + std::to_string(i) + " greetings");
      }
      if (run->stop_requested(run) != 0) return Fail(run, "stopped");
      const std::string line =
          c.greeting + ", " + run->job_name + " (attempt " + std::to_string(run->attempt) + ")\n";
      run->write_output(run, line.data(), line.size());
    }
    if (c.fail) {
      run->set_exit_code(run, 3);
      return Fail(run, "failed as configured");
    }
    const std::string result = "{\"greetings\": " + std::to_string(c.times) + "}";
    run->set_result(run, result.data(), result.size());
    return SKED_PLUGIN_RUN_SUCCEEDED;
  } catch (...) {
    return Fail(run, "the hello driver failed unexpectedly");
  }
}

constexpr const char* kSchema = R"json({"type": "object", "additionalProperties": false,
 "properties": {
  "greeting": {"type": "string", "minLength": 1, "maxLength": 200, "default": "hello"},
  "times": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
  "interval_ms": {"type": "integer", "minimum": 0, "maximum": 3600000, "default": 0,
                  "description": "wait between greetings, on sked's clock"},
  "fail": {"type": "boolean", "default": false, "description": "fail after greeting"}}})json";

}  // namespace

extern "C" {

// The build also makes a twin without this function: a library that is not
// a sked plugin, which sked refuses.
#ifndef HELLO_WITHOUT_VERSION
SKED_PLUGIN_EXPORT uint32_t sked_plugin_abi_version(void) { return HELLO_ABI_VERSION; }
#endif

SKED_PLUGIN_EXPORT int sked_plugin_register(const sked_plugin_host* host) {
  sked_plugin_driver driver{};
  driver.name = "hello";
  driver.description = "writes a greeting per line (an example plugin)";
  driver.config_schema = kSchema;
  driver.data = nullptr;
  driver.validate = &Validate;
  driver.execute = &Execute;
  return host->register_driver(host, &driver);
}

}  // extern "C"
