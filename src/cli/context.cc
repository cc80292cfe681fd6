#include "cli/context.h"

#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/exit_codes.h"

namespace sked::cli {

void AddConfigFlag(CLI::App* cmd, ConfigFlag* flag) {
  cmd->add_option_function<std::string>(
         "-c,--config",
         [flag](const std::string& path) {
           flag->path = path;
           flag->given = true;
         },
         "config file (default: sked.toml in the working directory, if present)")
      ->type_name("PATH");
}

int Fail(const Status& status) {
  std::cerr << "sked: " << status.message() << "\n";
  return ExitCodeFor(status);
}

Result<std::unique_ptr<Context>> OpenContext(const ConfigFlag& flag, SchemaCheck check) {
  auto ctx = std::make_unique<Context>();
  SKED_ASSIGN_OR_RETURN(ctx->config,
                        daemon::LoadConfig(flag.path, flag.given, daemon::SkedEnvironment()));
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
  ctx->drivers = DriverRegistry::WithBuiltins();
  ctx->engine = std::make_unique<Engine>(ctx->config.engine, ctx->store.get(), ctx->drivers.get(),
                                         Clock::Real());
  return ctx;
}

}  // namespace sked::cli
