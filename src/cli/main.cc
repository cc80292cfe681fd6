// The `sked` command: the composition root of the program.

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

#include "cli/commands.h"
#include "cli/exit_codes.h"

namespace {

int Main(int argc, char** argv) {
  CLI::App app{"sked: scheduled jobs on cron schedules, with every run on record", "sked"};
  app.set_version_flag("--version", std::string("sked ") + SKED_VERSION);
  app.require_subcommand(1);
  int exit_code = sked::cli::kExitOk;
  sked::cli::AddServeCommand(app, &exit_code);
  sked::cli::AddJobCommands(app, &exit_code);
  sked::cli::AddRunCommands(app, &exit_code);
  sked::cli::AddImportCommands(app, &exit_code);
  sked::cli::AddCronCommands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    // --help and --version are "errors" that exit 0; real usage errors exit 2.
    return code == 0 ? sked::cli::kExitOk : sked::cli::kExitUsage;
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
