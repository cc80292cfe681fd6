// How both store backends encode values in columns: times as microseconds
// since the Unix epoch (UTC), durations as microseconds, tags as a comma
// list, a retry policy's "retry on" set as a comma list of statuses.

#ifndef SKED_STORE_STORE_CODEC_H_
#define SKED_STORE_STORE_CODEC_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "sked/job.h"
#include "sked/run.h"
#include "sked/store.h"
#include "sked/time.h"

namespace sked::store_internal {

// How many queued runs past `limit` the queue statements look at (and lock,
// on PostgreSQL): room for several runs of one job among the candidates, of
// which only some may start. The engine asks again while runs start.
constexpr int kLookAhead = 32;

inline std::int64_t Us(Instant t) { return t.time_since_epoch().count(); }
inline std::int64_t Us(Duration d) { return d.count(); }
inline Instant AtUs(std::int64_t us) { return Instant(Duration(us)); }
inline std::optional<std::int64_t> OptUs(const std::optional<Instant>& t) {
  return t ? std::optional<std::int64_t>(Us(*t)) : std::nullopt;
}
inline std::optional<std::int64_t> OptUs(const std::optional<Duration>& d) {
  return d ? std::optional<std::int64_t>(Us(*d)) : std::nullopt;
}

inline std::string JoinTags(const std::vector<std::string>& tags) {
  std::string out;
  for (const std::string& t : tags) {
    if (!out.empty()) out += ',';
    out += t;
  }
  return out;
}

inline std::vector<std::string> SplitTags(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// A job's notify lists: NULL when unset (the defaults apply), else a comma
// list ("" for an empty one).
inline std::optional<std::string> JoinNotifyList(const std::optional<std::vector<std::string>>& l) {
  return l ? std::optional<std::string>(JoinTags(*l)) : std::nullopt;
}
inline std::optional<std::vector<std::string>> SplitNotifyList(
    const std::optional<std::string>& text) {
  return text ? std::optional<std::vector<std::string>>(SplitTags(*text)) : std::nullopt;
}

inline std::string RetryOn(const RetryPolicy& r) {
  std::string out;
  if (r.on_failed) out += "failed,";
  if (r.on_timed_out) out += "timed_out,";
  if (r.on_abandoned) out += "abandoned,";
  if (!out.empty()) out.pop_back();
  return out;
}

inline void SetRetryOn(const std::string& on, RetryPolicy* r) {
  r->on_failed = on.find("failed") != std::string::npos;
  r->on_timed_out = on.find("timed_out") != std::string::npos;
  r->on_abandoned = on.find("abandoned") != std::string::npos;
}

// Counted as a failure in a job's counters.
inline bool IsFailure(RunStatus s) {
  return s == RunStatus::kFailed || s == RunStatus::kTimedOut || s == RunStatus::kAbandoned;
}

// --- Retention (Store::PruneRuns), the same SQL on both backends ---

// A job's own retention settings over the defaults.
inline RetentionPolicy EffectiveRetention(const RetentionSpec& own,
                                          const RetentionPolicy& defaults) {
  RetentionPolicy p = defaults;
  if (own.max_age) p.max_age = *own.max_age;
  if (own.max_runs) p.max_runs = *own.max_runs;
  if (own.keep_failures) p.keep_failures = *own.keep_failures;
  return p;
}

// The runs retention may delete, and the failures it counts.
constexpr const char* kSettledStatuses =
    "('succeeded', 'failed', 'timed_out', 'cancelled', 'skipped', 'abandoned')";
constexpr const char* kFailureStatuses = "('failed', 'timed_out', 'abandoned')";

// The id of a job's n-th newest run among `statuses` (placeholders: `mark`1
// the job, `mark`2 n - 1), through the runs_by_job index.
inline std::string NthNewestRunSql(char mark, const char* statuses) {
  const std::string m(1, mark);
  return "SELECT id FROM runs WHERE job_id = " + m + "1 AND status IN " + statuses +
         " ORDER BY id DESC LIMIT 1 OFFSET " + m + "2";
}

// What a job's retention lets go, as bound to PrunableRunsWhere.
struct PruneBounds {
  std::int64_t newest = 0;     // the newest settled run's id: it (and newer) stays
  std::int64_t count_cut = 0;  // settled runs below this id are past max_runs
  std::int64_t age_cut = std::numeric_limits<std::int64_t>::min();   // finished before: too old
  std::int64_t fail_cut = std::numeric_limits<std::int64_t>::max();  // failures from it stay
};

// The settled runs a job's retention lets go. Placeholders `mark`1-5: the
// job, then PruneBounds' newest, count_cut, age_cut and fail_cut.
inline std::string PrunableRunsWhere(char mark) {
  const std::string m(1, mark);
  return "job_id = " + m + "1 AND id < " + m + "2 AND status IN " + kSettledStatuses +
         " AND (id < " + m + "3 OR finished_at < " + m + "4) AND (status NOT IN " +
         kFailureStatuses + " OR id < " + m + "5)";
}

}  // namespace sked::store_internal

#endif  // SKED_STORE_STORE_CODEC_H_
