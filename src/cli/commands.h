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
// `sked serve`.
void AddServeCommand(CLI::App& app, int* exit_code);
// `sked job add|list|show|edit|pause|resume|delete|trigger`.
void AddJobCommands(CLI::App& app, int* exit_code);
// `sked run list|show|logs|cancel`, `sked health`, `sked instance list`, `sked migrate`.
void AddRunCommands(CLI::App& app, int* exit_code);
// `sked token create|list|revoke`, `sked audit list`.
void AddTokenCommands(CLI::App& app, int* exit_code);
// `sked driver list`.
void AddDriverCommands(CLI::App& app, int* exit_code);
// `sked import crontab`.
void AddImportCommands(CLI::App& app, int* exit_code);

}  // namespace sked::cli

#endif  // SKED_CLI_COMMANDS_H_
