// Declarative jobs: the config file's [[job]] tables are made true in the
// store on start. Jobs created by the CLI or API are never touched.

#ifndef SKED_DAEMON_JOB_SYNC_H_
#define SKED_DAEMON_JOB_SYNC_H_

#include <string>
#include <vector>

#include "sked/engine.h"
#include "sked/job.h"
#include "sked/status.h"

namespace sked::daemon {

struct SyncReport {
  std::vector<std::string> created, updated, unchanged;
  // Declared before, not any more: disabled with their history (or deleted
  // when the operator asked to prune).
  std::vector<std::string> disabled, deleted;
};

// Creates declared jobs that do not exist, updates those whose spec differs
// (enabling one that was disabled), and disables jobs that came from the
// config but are no longer declared, keeping their history, with the reason
// "removed from FILE"; with `prune`, deletes them and their history instead.
// A job paused from the CLI stays paused. Safe when several instances sync the
// same declarations at once (they converge on one copy of each job).
// `file` names the config in messages.
Result<SyncReport> SyncDeclaredJobs(Engine& engine, const std::vector<JobSpec>& declared,
                                    const std::string& file, bool prune = false);

}  // namespace sked::daemon

#endif  // SKED_DAEMON_JOB_SYNC_H_
