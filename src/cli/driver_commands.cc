// `sked driver list`: the drivers this sked runs jobs with, each with its
// description and config schema. Needs no store.

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
  std::unique_ptr<DriverRegistry> drivers = NewDriverRegistry();
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
    all.push_back({{"name", name},
                   {"description", std::string(d->description())},
                   {"config_schema", schema}});
    rows.push_back({name, std::string(d->description()), keys.empty() ? "-" : keys});
  }
  if (json) {
    std::cout << all.dump(2) << "\n";
  } else {
    PrintTable(std::cout, {"NAME", "DESCRIPTION", "CONFIG KEYS"}, rows);
  }
  return kExitOk;
}

}  // namespace

void AddDriverCommands(CLI::App& app, int* exit_code) {
  CLI::App* driver = app.add_subcommand("driver", "the drivers jobs run with");
  driver->require_subcommand(1);
  CLI::App* list = driver->add_subcommand(
      "list", "every driver with its description and config keys (--json: its JSON Schema)");
  list->callback([exit_code] { *exit_code = List(Globals().json); });
}

}  // namespace sked::cli
