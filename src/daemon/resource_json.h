// Jobs, runs, instances, tokens and audit entries as JSON: the one shape the
// CLI's --json output and the REST API both use, and a job spec read from a
// JSON object (the API's request bodies), checked key by key. Only .cc files
// include this (it brings nlohmann/json).

#ifndef SKED_DAEMON_RESOURCE_JSON_H_
#define SKED_DAEMON_RESOURCE_JSON_H_

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "sked/job.h"
#include "sked/run.h"
#include "sked/status.h"
#include "sked/store.h"

namespace sked::daemon {

// RFC 3339 UTC with milliseconds, or null.
nlohmann::ordered_json TimeJson(const std::optional<Instant>& t);
nlohmann::ordered_json JobJson(const Job& job);
// The job's next fire as users should read it: none while it claims nothing
// (paused, disabled, expired), though the store keeps the schedule's next.
std::optional<Instant> NextRunShown(const Job& job);
// Up to `n` fires of the job from its next shown one on (none while it
// claims nothing), as the engine computes them, until its end_at.
std::vector<Instant> NextFires(const Job& job, int n);
// Those fires as [{"utc", "local", "dst", "dst_notes"}], the DST notes as
// `sked cron explain` gives them.
nlohmann::ordered_json FiresJson(const Job& job, int n);
// `with_output`: include the captured output (show), not in lists.
nlohmann::ordered_json RunJson(const Run& run, bool with_output);
nlohmann::ordered_json InstanceJson(const InstanceInfo& instance);
// Never the secret or its hash.
nlohmann::ordered_json TokenJson(const ApiToken& token);
nlohmann::ordered_json AuditJson(const AuditEntry& entry);
nlohmann::ordered_json NotificationJson(const Notification& n);
// {"attempt", "instance", "finished_at", "delivered", "error", "retry_at"}.
nlohmann::ordered_json DeliveryAttemptJson(const DeliveryAttempt& a);

// A spec field that failed to read: `field` names it ("retry.backoff").
struct SpecError {
  std::string field;
  std::string message;
};

// Applies the keys of `body` (a JSON object, the keys JobJson writes that a
// user may set: name, description, schedule, timezone, driver, config,
// overlap, max_queued, max_concurrent, misfire, catchup_window,
// starting_deadline, timeout, priority, retry {max, backoff, multiplier,
// max_backoff, jitter, on}, start_at, end_at, tags, paused) to `spec`. Keys
// JobJson writes that are not the user's (state, runs, version, ...) are
// refused unless `allow_read_only`, when they are ignored; any other key is
// refused. Durations are strings ("90s", "1h30m"), times RFC 3339.
std::optional<SpecError> ApplySpecJson(const nlohmann::json& body, bool allow_read_only,
                                       JobSpec* spec);

}  // namespace sked::daemon

#endif  // SKED_DAEMON_RESOURCE_JSON_H_
