// `sked token create|list|revoke` and `sked audit list`: the REST API's
// bearer tokens (only their hashes are stored, in the store, so a fleet
// shares them) and the log of changes made through the API and here; and
// `sked notify list`, the notification outbox.

#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/render.h"
#include "server/auth.h"

namespace sked::cli {
namespace {

struct TokenArgs {
  const ConfigFlag& config = Globals().config;
  const bool& json = Globals().json;
  std::string name, role, actor, action, since, job, status;
  std::int64_t run = 0;
  std::int64_t id = 0;
  int limit = 50;
};

// Who runs this command, for the audit log: "cli:<login>".
std::string CliActor() {
  const char* user = std::getenv("USER");
  std::string name = user != nullptr && *user != '\0' ? user : "uid" + std::to_string(::getuid());
  return "cli:" + name;
}

void AuditCli(Store& store, const std::string& action, const std::string& target,
              const Status& outcome) {
  AuditEntry e;
  e.at = Clock::Real()->Now();
  e.actor = CliActor();
  e.action = action;
  e.target = target;
  e.source = "cli";
  e.detail = outcome.ok() ? "" : outcome.message();
  (void)store.AppendAudit(e);  // the change stands even if its record cannot be written
}

int Create(const TokenArgs& args) {
  auto ctx = OpenContext(args.config, SchemaCheck::kCurrent);
  if (!ctx.ok()) return Fail(ctx.status());
  Store& store = *(*ctx)->store;
  auto role = server::ParseRole(args.role);
  if (!role.ok()) return Fail(role.status().WithContext("--role"));
  auto minted = server::MintToken(store, args.name, *role, CliActor(), Clock::Real()->Now());
  AuditCli(store, "token.create", "token/" + args.name, minted.status());
  if (!minted.ok()) return Fail(minted.status());
  if (args.json) {
    nlohmann::ordered_json j = daemon::TokenJson(minted->stored);
    j["token"] = minted->secret;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << minted->secret << "\n";
    std::cerr << "token '" << minted->stored.name << "' (" << minted->stored.role
              << ") created; it is shown only now: keep it somewhere safe\n";
  }
  return kExitOk;
}

int List(const TokenArgs& args) {
  auto ctx = OpenContext(args.config, SchemaCheck::kCurrent);
  if (!ctx.ok()) return Fail(ctx.status());
  auto tokens = (*ctx)->store->ListTokens();
  if (!tokens.ok()) return Fail(tokens.status());
  if (args.json) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const ApiToken& t : *tokens) list.push_back(daemon::TokenJson(t));
    std::cout << list.dump(2) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const ApiToken& t : *tokens) {
    rows.push_back({std::to_string(t.id), t.name, t.role, ShortTime(t.created_at), t.created_by,
                    t.revoked_at ? "revoked " + ShortTime(t.revoked_at) : "active"});
  }
  PrintTable(std::cout, {"ID", "NAME", "ROLE", "CREATED (UTC)", "BY", "STATE"}, rows);
  return kExitOk;
}

int Revoke(const TokenArgs& args) {
  auto ctx = OpenContext(args.config, SchemaCheck::kCurrent);
  if (!ctx.ok()) return Fail(ctx.status());
  Store& store = *(*ctx)->store;
  auto t = store.RevokeToken(args.name, Clock::Real()->Now());
  AuditCli(store, "token.revoke", "token/" + args.name, t.status());
  if (!t.ok()) return Fail(t.status());
  std::cout << "token '" << t->name << "' revoked\n";
  return kExitOk;
}

int Audit(const TokenArgs& args) {
  auto ctx = OpenContext(args.config, SchemaCheck::kCurrent);
  if (!ctx.ok()) return Fail(ctx.status());
  if (args.limit < 1 || args.limit > 100000) {
    return Fail(InvalidArgumentError("--limit: must be from 1 to 100000, got " +
                                     std::to_string(args.limit)));
  }
  AuditFilter f;
  f.limit = args.limit;
  if (!args.actor.empty()) f.actor = args.actor;
  if (!args.action.empty()) f.action = args.action;
  if (!args.since.empty()) {
    auto since = ParseRfc3339(args.since);
    if (!since.ok()) return Fail(since.status().WithContext("--since"));
    f.since = *since;
  }
  auto entries = (*ctx)->store->ListAudit(f);
  if (!entries.ok()) return Fail(entries.status());
  if (args.json) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const AuditEntry& e : *entries) list.push_back(daemon::AuditJson(e));
    std::cout << list.dump(2) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const AuditEntry& e : *entries) {
    rows.push_back({std::to_string(e.id), ShortTime(e.at), e.actor, e.action, e.target, e.source,
                    e.status == 0 ? "-" : std::to_string(e.status), e.detail});
  }
  PrintTable(std::cout, {"ID", "AT (UTC)", "ACTOR", "ACTION", "TARGET", "FROM", "STATUS", "DETAIL"},
             rows);
  return kExitOk;
}

// `sked notify list`: the outbox, newest first.
int Notifications(const TokenArgs& args) {
  auto ctx = OpenContext(args.config, SchemaCheck::kCurrent);
  if (!ctx.ok()) return Fail(ctx.status());
  if (args.limit < 1 || args.limit > 100000) {
    return Fail(InvalidArgumentError("--limit: must be from 1 to 100000, got " +
                                     std::to_string(args.limit)));
  }
  NotificationFilter f;
  f.limit = args.limit;
  if (!args.job.empty()) {
    auto job = (*ctx)->store->GetJobByName(args.job);
    if (!job.ok()) return Fail(job.status().WithContext("--job"));
    f.job_id = job->id;
  }
  if (args.run > 0) f.run_id = args.run;
  if (!args.status.empty()) {
    auto status = ParseNotificationStatus(args.status);
    if (!status.ok()) return Fail(status.status().WithContext("--status"));
    f.status = *status;
  }
  auto list = (*ctx)->store->ListNotifications(f);
  if (!list.ok()) return Fail(list.status());
  if (args.json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const Notification& n : *list) out.push_back(daemon::NotificationJson(n));
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const Notification& n : *list) {
    std::string when =
        n.finished_at ? ShortTime(*n.finished_at) : "next " + ShortTime(n.next_attempt_at);
    rows.push_back({std::to_string(n.id), ShortTime(n.created_at), n.job_name,
                    n.run_id ? std::to_string(*n.run_id) : "-", n.event, n.channel,
                    std::string(NotificationStatusName(n.status)), std::to_string(n.attempts), when,
                    n.last_error});
  }
  PrintTable(std::cout,
             {"ID", "RAISED (UTC)", "JOB", "RUN", "EVENT", "CHANNEL", "STATUS", "TRIES", "WHEN",
              "LAST ERROR"},
             rows);
  return kExitOk;
}

// `sked notify attempts ID`: each delivery attempt of one notification.
int Attempts(const TokenArgs& args) {
  auto ctx = OpenContext(args.config, SchemaCheck::kCurrent);
  if (!ctx.ok()) return Fail(ctx.status());
  if (args.id < 1) {
    return Fail(InvalidArgumentError("notification id: must be a whole number from 1, got " +
                                     std::to_string(args.id)));
  }
  auto list = (*ctx)->store->ListDeliveryAttempts(args.id);
  if (!list.ok()) return Fail(list.status());
  if (args.json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const DeliveryAttempt& a : *list) out.push_back(daemon::DeliveryAttemptJson(a));
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const DeliveryAttempt& a : *list) {
    rows.push_back({std::to_string(a.attempt), ShortTime(a.finished_at), a.instance,
                    a.delivered ? "delivered" : (a.retry_at ? "failed, retried" : "failed"),
                    a.retry_at ? ShortTime(*a.retry_at) : "-", a.delivered ? "" : a.error});
  }
  PrintTable(std::cout, {"ATTEMPT", "ENDED (UTC)", "INSTANCE", "OUTCOME", "NEXT", "ERROR"}, rows);
  return kExitOk;
}

}  // namespace

void AddTokenCommands(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<TokenArgs>();
  CLI::App* token = app.add_subcommand("token", "REST API bearer tokens");
  token->require_subcommand(1);
  CLI::App* create = token->add_subcommand("create", "create a token and print it (once)");
  create->add_option("--name", args->name, "a name for the token (who or what uses it)")
      ->required();
  create->add_option("--role", args->role, "viewer | operator | admin")->required();
  create->callback([args, exit_code] { *exit_code = Create(*args); });
  CLI::App* list = token->add_subcommand("list", "every token (never their secrets)");
  list->callback([args, exit_code] { *exit_code = List(*args); });
  CLI::App* revoke = token->add_subcommand("revoke", "revoke a token, at once everywhere");
  revoke->add_option("name", args->name, "the token's name")->required();
  revoke->callback([args, exit_code] { *exit_code = Revoke(*args); });

  CLI::App* audit = app.add_subcommand("audit", "the log of changes made through the API");
  audit->require_subcommand(1);
  CLI::App* alist = audit->add_subcommand("list", "audit entries, newest first");
  alist->add_option("--actor", args->actor, "only this token's (or cli:USER's) entries");
  alist->add_option("--action", args->action, "only this action (job.create, run.cancel, ...)");
  alist->add_option("--since", args->since, "at or after this RFC 3339 time");
  alist->add_option("-n,--limit", args->limit, "at most this many (50)");
  alist->callback([args, exit_code] { *exit_code = Audit(*args); });

  CLI::App* notify = app.add_subcommand("notify", "notifications: the outbox and its deliveries");
  notify->require_subcommand(1);
  CLI::App* nlist = notify->add_subcommand("list", "notifications, newest first");
  nlist->add_option("--job", args->job, "only this job's");
  nlist->add_option("--run", args->run, "only this run's");
  nlist->add_option("--status", args->status, "pending | delivered | failed");
  nlist->add_option("-n,--limit", args->limit, "at most this many (50)");
  nlist->callback([args, exit_code] { *exit_code = Notifications(*args); });
  CLI::App* attempts =
      notify->add_subcommand("attempts", "each delivery attempt of one notification");
  attempts->add_option("id", args->id, "the notification's id (sked notify list)")->required();
  attempts->callback([args, exit_code] { *exit_code = Attempts(*args); });
}

}  // namespace sked::cli
