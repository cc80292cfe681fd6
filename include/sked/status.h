// Status and Result<T>: how every sked library call reports failure.
//
// Modelled on absl::Status / absl::StatusOr. A Status is a code and a message;
// the code says what the caller should do (fix the input, retry, give up), the
// message says what went wrong and where, in words a user can act on.
// Result<T> holds either a T or a non-OK Status, never both.

#ifndef SKED_STATUS_H_
#define SKED_STATUS_H_

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sked {

// The small set of codes sked uses. Each maps once to an HTTP status and a
// CLI exit code at the boundary that reports it.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input: fix the input, do not retry
  kNotFound,            // the named thing does not exist
  kAlreadyExists,       // a unique name or key is taken
  kFailedPrecondition,  // the system is not in a state that allows this
  kAborted,             // a concurrent change won (e.g. version conflict): retry
  kUnavailable,         // a dependency (store, network) is down: retry later
  kDeadlineExceeded,    // the operation ran out of time
  kCancelled,           // the operation was cancelled by its caller
  kInternal,            // a bug or broken invariant
};

// The code's name, e.g. "INVALID_ARGUMENT".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "OK" or "INVALID_ARGUMENT: field 'hour': ...".
  std::string ToString() const;

  // A copy whose message is "<context>: <message>"; OK stays OK.
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status&, const Status&) = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgumentError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status FailedPreconditionError(std::string message);
Status AbortedError(std::string message);
Status UnavailableError(std::string message);
Status DeadlineExceededError(std::string message);
Status CancelledError(std::string message);
Status InternalError(std::string message);

// Either a value or the non-OK Status that says why there is none.
// REQUIRES: a Result is never constructed from an OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(const T& value) : data_(value) {}        // NOLINT(google-explicit-constructor)
  Result(T&& value) : data_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status)                           // NOLINT(google-explicit-constructor)
      : data_(std::move(status)) {
    assert(!std::get<Status>(data_).ok() && "Result built from an OK Status");
    if (std::get<Status>(data_).ok()) {
      data_ = Status(StatusCode::kInternal, "Result built from an OK Status");
    }
  }

  bool ok() const { return std::holds_alternative<T>(data_); }

  // OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(data_); }

  // REQUIRES: ok().
  const T& value() const& { return std::get<T>(data_); }
  T& value() & { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }

  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<Status, T> data_;
};

}  // namespace sked

#define SKED_STATUS_CONCAT_INNER_(a, b) a##b
#define SKED_STATUS_CONCAT_(a, b) SKED_STATUS_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function if it is not OK.
#define SKED_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::sked::Status sked_status_ = (expr);        \
    if (!sked_status_.ok()) return sked_status_; \
  } while (false)

// Evaluates `rexpr` (a Result<T>); on error returns its Status, otherwise
// moves the value into `lhs` (which may be a declaration: `auto x`).
#define SKED_ASSIGN_OR_RETURN(lhs, rexpr) \
  SKED_ASSIGN_OR_RETURN_IMPL_(SKED_STATUS_CONCAT_(sked_result_, __LINE__), lhs, rexpr)
// NOLINTBEGIN(bugprone-macro-parentheses): `lhs` may be a declaration.
#define SKED_ASSIGN_OR_RETURN_IMPL_(result, lhs, rexpr) \
  auto result = (rexpr);                                \
  if (!result.ok()) return result.status();             \
  lhs = std::move(result).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // SKED_STATUS_H_
