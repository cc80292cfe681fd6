// Classic crontab files as sked jobs (`sked import crontab`): comments,
// environment lines (NAME=value, CRON_TZ=Zone), @macros, and `%` in commands
// (newlines; text after the first unescaped `%` is the command's stdin).

#ifndef SKED_DAEMON_CRONTAB_H_
#define SKED_DAEMON_CRONTAB_H_

#include <string>
#include <vector>

#include "sked/job.h"

namespace sked::daemon {

struct CrontabJob {
  int line = 0;
  JobSpec spec;  // a shell job
};

struct CrontabProblem {
  int line = 0;
  std::string text;    // the line as written
  std::string reason;  // why it was not taken
};

struct CrontabImport {
  std::vector<CrontabJob> jobs;
  std::vector<CrontabProblem> problems;
};

// Parses a user crontab (no user column). Jobs are named "<prefix>-<line>";
// `zone` is their time zone unless a CRON_TZ line says otherwise. Schedules
// are not validated here (the engine does when the jobs are created).
CrontabImport ParseCrontab(const std::string& text, const std::string& prefix,
                           const std::string& zone);

}  // namespace sked::daemon

#endif  // SKED_DAEMON_CRONTAB_H_
