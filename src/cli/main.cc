// The `sked` command: the composition root of the program.

#include <CLI/CLI.hpp>

#include <cctype>
#include <exception>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/exit_codes.h"

namespace {

// The command as far as it was parsed ("sked job list") and its innermost app.
CLI::App* LeafCommand(CLI::App& app, std::string* path) {
  *path = "sked";
  CLI::App* leaf = &app;
  for (int depth = 0; depth < 8; ++depth) {
    std::vector<CLI::App*> subs = leaf->get_subcommands();
    if (subs.empty()) break;
    leaf = subs.front();
    *path += " " + leaf->get_name();
  }
  return leaf;
}

// What a value of this CLI11 type name should look like.
std::string Expected(const std::string& type_name) {
  if (type_name == "INT") return "an integer";
  if (type_name == "UINT") return "a whole number";
  if (type_name == "FLOAT") return "a number";
  return type_name.empty() ? "a value" : type_name;
}

// sked's own message for a command-line parse error: which flag or argument,
// and what it expected, instead of the parser's wording.
std::string UsageMessage(CLI::App& app, const CLI::ParseError& e) {
  std::string path;
  CLI::App* leaf = LeafCommand(app, &path);
  const std::string help = " (`" + path + " --help` lists what it takes)";
  const std::string what = e.what();
  if (dynamic_cast<const CLI::ConversionError*>(&e) != nullptr) {
    // "Could not convert: NAME = VALUE"
    const size_t colon = what.find(": "), eq = what.rfind(" = ");
    if (colon != std::string::npos && eq != std::string::npos && eq > colon) {
      const std::string name = what.substr(colon + 2, eq - colon - 2);
      const std::string value = what.substr(eq + 3);
      const CLI::Option* option = leaf->get_option_no_throw(name);
      return name + ": '" + value + "' is not " +
             Expected(option != nullptr ? option->get_type_name() : "") + " in range";
    }
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
    const size_t colon = what.find(": ");
    const std::string extras = colon == std::string::npos ? what : what.substr(colon + 2);
    return "unexpected argument" + std::string(extras.find(' ') == std::string::npos ? "" : "s") +
           " '" + extras + "'" + help;
  }
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr) {
    const size_t colon = what.find(": ");
    if (colon != std::string::npos) return what.substr(0, colon) + ": needs a value" + help;
  }
  if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
    if (what.find("subcommand") != std::string::npos) return "a command is required" + help;
    return what + help;
  }
  std::string message = what;
  if (!message.empty()) message[0] = static_cast<char>(std::tolower(message[0]));
  return message + help;
}

int Main(int argc, char** argv) {
  CLI::App app{"sked: scheduled jobs on cron schedules, with every run on record", "sked"};
  app.set_version_flag("--version", std::string("sked ") + SKED_VERSION);
  app.require_subcommand(1);
  sked::cli::AddGlobalFlags(app);
  int exit_code = sked::cli::kExitOk;
  sked::cli::AddServeCommand(app, &exit_code);
  sked::cli::AddJobCommands(app, &exit_code);
  sked::cli::AddRunCommands(app, &exit_code);
  sked::cli::AddImportCommands(app, &exit_code);
  sked::cli::AddDriverCommands(app, &exit_code);
  sked::cli::AddTokenCommands(app, &exit_code);
  sked::cli::AddCronCommands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" that exit 0.
    if (e.get_exit_code() == 0) return app.exit(e);
    const std::string message = UsageMessage(app, e);
    bool json = false;
    for (int i = 1; i < argc; ++i) json = json || std::string_view(argv[i]) == "--json";
    if (json) {
      std::cerr << nlohmann::json{{"error",
                                   {{"code", "USAGE"},
                                    {"exit_code", sked::cli::kExitUsage},
                                    {"message", message}}}}
                       .dump()
                << "\n";
    } else {
      std::cerr << "sked: " << message << "\n";
    }
    return sked::cli::kExitUsage;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sked: internal error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "sked: internal error\n";
  }
  return sked::cli::kExitFailure;
}
