// Exit codes of the `sked` command (documented in docs/cli.md).

#ifndef SKED_CLI_EXIT_CODES_H_
#define SKED_CLI_EXIT_CODES_H_

#include "sked/status.h"

namespace sked::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;       // internal error, or anything else unexpected
inline constexpr int kExitUsage = 2;         // unknown command or flag, missing argument
inline constexpr int kExitInvalidInput = 3;  // an argument or file is well-formed but wrong
inline constexpr int kExitNotFound = 4;      // the named job, run or zone does not exist
inline constexpr int kExitUnavailable = 5;   // the store (or another dependency) is unreachable
inline constexpr int kExitConflict = 6;      // a concurrent change won, or the name is taken

// The one place a Status code becomes an exit code.
inline int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
      return kExitInvalidInput;
    case StatusCode::kNotFound:
      return kExitNotFound;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
      return kExitConflict;
    case StatusCode::kCancelled:
    case StatusCode::kInternal:
      return kExitFailure;
  }
  return kExitFailure;
}

}  // namespace sked::cli

#endif  // SKED_CLI_EXIT_CODES_H_
