// Subcommands of `sked`, each group registering itself on the root app.

#ifndef SKED_CLI_COMMANDS_H_
#define SKED_CLI_COMMANDS_H_

namespace CLI {
class App;
}

namespace sked::cli {

// Registers `sked cron next|validate|explain`. The chosen command's exit code
// is written to `*exit_code` when it runs.
void AddCronCommands(CLI::App& app, int* exit_code);

}  // namespace sked::cli

#endif  // SKED_CLI_COMMANDS_H_
