// How jobs, runs and instances are shown: JSON for scripts (--json) and
// aligned tables for people. Only CLI .cc files include this.

#ifndef SKED_CLI_RENDER_H_
#define SKED_CLI_RENDER_H_

#include <nlohmann/json.hpp>

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "daemon/resource_json.h"
#include "sked/job.h"
#include "sked/run.h"
#include "sked/store.h"

namespace sked::cli {

// The JSON shapes are the API's (daemon/resource_json.h).
using daemon::InstanceJson;
using daemon::JobJson;
using daemon::NextRunShown;
using daemon::RunJson;
using daemon::TimeJson;

// "paused", "disabled (removed from sked.toml)".
std::string StateText(const Job& job);
// `text` safe to print on a terminal: control characters (ESC, CR, ...) as
// \xNN, newlines and tabs as \n and \t when `one_line`.
std::string Printable(std::string_view text, bool one_line = true);

// A table with a header row; columns padded to their widest cell.
void PrintTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// "2026-11-27 16:40:00Z" (UTC, seconds), or "-".
std::string ShortTime(const std::optional<Instant>& t);
// A run's duration ("1.2s"), or "-" while not finished.
std::string RunDuration(const Run& run);

}  // namespace sked::cli

#endif  // SKED_CLI_RENDER_H_
