// `sked driver list`: the drivers this sked runs jobs with (built in, and
// from the config's plugin folder), each with its description and config
// schema. Needs no store.

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/render.h"

namespace sked::cli {
namespace {

int List(bool json) {
  // The config names the plugin folder; no config file is fine (no plugins).
  auto config =
      daemon::LoadConfig(Globals().config.path, Globals().config.given, daemon::SkedEnvironment());
  if (!config.ok()) return Fail(config.status());
  std::unique_ptr<DriverRegistry> drivers = NewDriverRegistry(config->plugin_dir);
  // Said, not fatal: the drivers that did load are listed.
  for (const Status& failure : drivers->plugin_failures()) {
    if (json) {
      std::cerr << nlohmann::json{{"warning", failure.message()}}.dump() << "\n";
    } else {
      std::cerr << "sked: warning: " << failure.message() << "\n";
    }
  }
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  std::vector<std::vector<std::string>> rows;
  for (const std::string& name : drivers->Names()) {
    const Driver* d = drivers->Find(name);
    nlohmann::ordered_json schema =
        nlohmann::ordered_json::parse(d->config_schema(), nullptr, /*allow_exceptions=*/false);
    if (schema.is_discarded()) schema = nlohmann::ordered_json::object();
    std::string keys;
    if (schema.contains("properties") && schema["properties"].is_object()) {
      for (const auto& [key, value] : schema["properties"].items()) {
        keys += (keys.empty() ? "" : ", ") + key;
      }
    }
    const std::string origin = drivers->Origin(name);
    all.push_back(
        {{"name", name},
         {"description", std::string(d->description())},
         {"plugin", origin.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(origin)},
         {"config_schema", schema}});
    rows.push_back({name, std::string(d->description()), keys.empty() ? "-" : keys,
                    origin.empty() ? "built-in" : origin});
  }
  if (json) {
    std::cout << all.dump(2) << "\n";
  } else {
    PrintTable(std::cout, {"NAME", "DESCRIPTION", "CONFIG KEYS", "FROM"}, rows);
  }
  return kExitOk;
}

}  // namespace

void AddDriverCommands(CLI::App& app, int* exit_code) {
  CLI::App* driver = app.add_subcommand("driver", "the drivers jobs run with");
  driver->require_subcommand(1);
  CLI::App* list = driver->add_subcommand(
      "list",
      "every driver with its description, config keys and origin (--json: its JSON Schema)");
  list->callback([exit_code] { *exit_code = List(Globals().json); });
}

}  // namespace sked::cli
