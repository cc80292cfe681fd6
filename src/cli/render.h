// How jobs, runs and instances are shown: JSON for scripts (--json) and
// aligned tables for people. Only CLI .cc files include this.

#ifndef SKED_CLI_RENDER_H_
#define SKED_CLI_RENDER_H_

#include <nlohmann/json.hpp>

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "sked/job.h"
#include "sked/run.h"
#include "sked/store.h"

namespace sked::cli {

// RFC 3339 UTC with milliseconds, or null.
nlohmann::ordered_json TimeJson(const std::optional<Instant>& t);
nlohmann::ordered_json JobJson(const Job& job);
// The job's next fire as users should read it: none while it claims nothing
// (paused, disabled, expired), though the store keeps the schedule's next.
std::optional<Instant> NextRunShown(const Job& job);
// "paused", "disabled (removed from sked.toml)".
std::string StateText(const Job& job);
// `text` safe to print on a terminal: control characters (ESC, CR, ...) as
// \xNN, newlines and tabs as \n and \t when `one_line`.
std::string Printable(std::string_view text, bool one_line = true);
// `with_output`: include the captured output (show), not in lists.
nlohmann::ordered_json RunJson(const Run& run, bool with_output);
nlohmann::ordered_json InstanceJson(const InstanceInfo& instance);

// A table with a header row; columns padded to their widest cell.
void PrintTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// "2026-11-27 16:40:00Z" (UTC, seconds), or "-".
std::string ShortTime(const std::optional<Instant>& t);
// A run's duration ("1.2s"), or "-" while not finished.
std::string RunDuration(const Run& run);

}  // namespace sked::cli

#endif  // SKED_CLI_RENDER_H_
