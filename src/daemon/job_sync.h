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
  std::vector<std::string> created, updated, unchanged, deleted;
};

// Creates declared jobs that do not exist, updates those whose spec differs,
// and deletes jobs that came from the config but are no longer declared. A
// job paused from the CLI stays paused. Safe when several instances sync the
// same declarations at once (they converge on one copy of each job).
// `file` names the config in messages.
Result<SyncReport> SyncDeclaredJobs(Engine& engine, const std::vector<JobSpec>& declared,
                                    const std::string& file);

}  // namespace sked::daemon

#endif  // SKED_DAEMON_JOB_SYNC_H_
