#include "cli/context.h"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "sked/http_driver.h"

namespace sked::cli {

GlobalFlags& Globals() {
  static GlobalFlags flags;
  return flags;
}

void AddGlobalFlags(CLI::App& app) {
  GlobalFlags& flags = Globals();
  app.add_option_function<std::string>(
         "-c,--config",
         [&flags](const std::string& path) {
           flags.config.path = path;
           flags.config.given = true;
         },
         "config file (default: sked.toml in the working directory, if present)")
      ->type_name("PATH");
  app.add_flag("--json", flags.json, "print JSON (errors too, on stderr)");
  // A flag a subcommand does not know is tried on its parents: the global
  // flags may follow the command. Subcommands inherit this when added.
  app.fallthrough();
}

int Fail(const Status& status) {
  if (Globals().json) {
    std::cerr << nlohmann::json{{"error",
                                 {{"code", std::string(StatusCodeName(status.code()))},
                                  {"exit_code", ExitCodeFor(status)},
                                  {"message", status.message()}}}}
                     .dump()
              << "\n";
  } else {
    std::cerr << "sked: " << status.message() << "\n";
  }
  return ExitCodeFor(status);
}

Result<std::unique_ptr<Context>> OpenContext(const ConfigFlag& flag, SchemaCheck check) {
  auto ctx = std::make_unique<Context>();
  SKED_ASSIGN_OR_RETURN(ctx->config,
                        daemon::LoadConfig(flag.path, flag.given, daemon::SkedEnvironment()));
  constexpr std::string_view kSqlite = "sqlite://";
  if (ctx->config.store_url.rfind(kSqlite, 0) == 0) {
    const std::string path = ctx->config.store_url.substr(kSqlite.size());
    std::error_code ec;
    if (!path.empty() && !std::filesystem::exists(path, ec)) {
      if (check == SchemaCheck::kCurrent) {
        return FailedPreconditionError("store " + ctx->config.store_url +
                                       ": there is no database file '" + path +
                                       "' (check [store] url in the config, or run `sked "
                                       "migrate` to create it)");
      }
      ctx->created_database = path;
    }
  }
  auto store = Store::Open(ctx->config.store_url, ctx->config.store);
  if (!store.ok()) {
    const Status& s = store.status();
    if (s.code() == StatusCode::kInvalidArgument) return s;
    return UnavailableError("store " + Store::Redact(ctx->config.store_url) + ": " + s.message());
  }
  ctx->store = std::move(*store);
  auto version = ctx->store->SchemaVersion();
  if (!version.ok()) {
    return UnavailableError("store " + Store::Redact(ctx->config.store_url) + ": " +
                            version.status().message());
  }
  ctx->schema_version = *version;
  const int latest = ctx->store->LatestSchemaVersion();
  if (*version > latest) {
    return FailedPreconditionError("store " + Store::Redact(ctx->config.store_url) +
                                   " has schema version " + std::to_string(*version) +
                                   ", newer than this sked (" + std::to_string(latest) +
                                   "): upgrade sked");
  }
  if (check == SchemaCheck::kCurrent) {
    if (*version == 0) {
      return FailedPreconditionError("store " + Store::Redact(ctx->config.store_url) +
                                     " has no sked schema yet: run `sked migrate` (or start "
                                     "`sked serve`, which migrates)");
    }
    if (*version < latest) {
      return FailedPreconditionError("store " + Store::Redact(ctx->config.store_url) +
                                     " has schema version " + std::to_string(*version) +
                                     ", this sked needs " + std::to_string(latest) +
                                     ": run `sked migrate`");
    }
  }
  ctx->drivers = NewDriverRegistry(ctx->config.plugin_dir);
  ctx->engine = std::make_unique<Engine>(ctx->config.engine, ctx->store.get(), ctx->drivers.get(),
                                         Clock::Real());
  return ctx;
}

std::unique_ptr<DriverRegistry> NewDriverRegistry(const std::string& plugin_dir) {
  std::unique_ptr<DriverRegistry> drivers = DriverRegistry::WithBuiltins();
  (void)drivers->Register(MakeHttpDriver());  // a fresh registry: the name is free
  // A plugin that fails is remembered by the registry: said by `serve` and
  // `driver list`, and in the error of any job that names a missing driver.
  if (!plugin_dir.empty()) (void)drivers->LoadPlugins(plugin_dir);
  return drivers;
}

}  // namespace sked::cli
