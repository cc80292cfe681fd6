// Classic crontab files as sked jobs (`sked import crontab`): comments,
// environment lines (NAME=value, SHELL, CRON_TZ=Zone), @macros, `%` in
// commands (text after the first unescaped `%` is the command's stdin), and
// the user column of system crontabs.

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

struct CrontabOptions {
  std::string prefix = "crontab";  // jobs are named "<prefix>-<line>"
  std::string zone = "UTC";        // unless a CRON_TZ line says otherwise
  // A system crontab (/etc/crontab, /etc/cron.d/*): a user column follows the
  // time fields. Lines for `current_user` run as they are; as root, lines for
  // another user run through `runuser -u USER --`; otherwise they are refused.
  bool system = false;
  std::string current_user = "";
};

// Parses a crontab. Each command runs as cron would run it: by SHELL
// (default /bin/sh) with `-c`, the text after its first unescaped `%` as its
// standard input (`%` there are newlines, `\%` a literal `%`), never pasted
// into the shell line. Schedules are not validated here (the engine does).
CrontabImport ParseCrontab(const std::string& text, const CrontabOptions& options);

}  // namespace sked::daemon

#endif  // SKED_DAEMON_CRONTAB_H_
