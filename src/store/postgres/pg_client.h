// A thin layer over libpq for the PostgreSQL store: connections with a cache
// of prepared statements, text-format parameters, results read by column, and
// a pool that reconnects with backoff when the server goes away.
//
// Every value reaches the server as a bound parameter; identifiers (the
// schema) are quoted with PQescapeIdentifier.

#ifndef SKED_STORE_POSTGRES_PG_CLIENT_H_
#define SKED_STORE_POSTGRES_PG_CLIENT_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sked/status.h"

struct pg_conn;
struct pg_result;

namespace sked::pg {

// Positional parameters $1..$n in text format; nullopt is SQL NULL. Text is
// stored as valid UTF-8 without NUL bytes (each bad byte becomes U+FFFD), as
// PostgreSQL requires: driver output may be any bytes.
class Params {
 public:
  Params& Add(std::string_view v);
  Params& Add(const char* v) { return Add(std::string_view(v)); }
  Params& Add(const std::string& v) { return Add(std::string_view(v)); }
  Params& Add(std::int64_t v);
  Params& Add(int v) { return Add(static_cast<std::int64_t>(v)); }
  Params& Add(double v);
  Params& Add(bool v);
  Params& Add(std::nullopt_t);
  template <typename T>
  Params& Add(const std::optional<T>& v) {
    return v ? Add(*v) : Add(std::nullopt);
  }
  size_t size() const { return values_.size(); }
  // Pointers into the stored values (nullptr for NULL); valid while *this is.
  std::vector<const char*> Pointers() const;

 private:
  std::vector<std::optional<std::string>> values_;
};

// Builds a PostgreSQL array literal ("{1,2,NULL}", "{\"a\",\"b\"}") to bind
// as one parameter, so a batch is one statement (unnest on the server side).
class ArrayLiteral {
 public:
  ArrayLiteral& Add(std::string_view text);  // quoted and escaped
  ArrayLiteral& Add(std::int64_t v);
  ArrayLiteral& Add(bool v);
  ArrayLiteral& AddNull();
  template <typename T>
  ArrayLiteral& Add(const std::optional<T>& v) {
    return v ? Add(*v) : AddNull();
  }
  std::string str() const { return text_ + "}"; }

 private:
  void Sep();
  std::string text_ = "{";
  bool first_ = true;
};

// The rows of one statement's result.
class Rows {
 public:
  Rows() = default;
  explicit Rows(pg_result* res);
  Rows(Rows&& other) noexcept;
  Rows& operator=(Rows&& other) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows();

  int size() const { return rows_; }
  bool empty() const { return rows_ == 0; }
  // Rows changed by an INSERT/UPDATE/DELETE.
  std::int64_t affected() const { return affected_; }
  bool IsNull(int row, int col) const;
  std::string Text(int row, int col) const;
  std::int64_t Int(int row, int col) const;
  std::optional<std::int64_t> OptInt(int row, int col) const;
  double Double(int row, int col) const;
  bool Bool(int row, int col) const;

 private:
  pg_result* res_ = nullptr;
  int rows_ = 0;
  std::int64_t affected_ = 0;
};

// One server connection. Not thread-safe: the pool hands it to one user.
class Connection {
 public:
  // Connects to `url` (any libpq connection string or URI) and sets the
  // search_path to `schema` (quoted) and, when positive, the session's
  // idle_in_transaction_session_timeout. UNAVAILABLE when the server cannot
  // be reached; INVALID_ARGUMENT for a malformed url.
  static Result<std::unique_ptr<Connection>> Open(
      const std::string& url, const std::string& schema,
      std::chrono::milliseconds idle_transaction_timeout = std::chrono::milliseconds(0));
  ~Connection();

  // Runs `sql` (prepared once per connection and cached) with `params`.
  // Errors: ALREADY_EXISTS (unique violation), ABORTED (serialization failure
  // or deadlock: retry the transaction), UNAVAILABLE (connection lost),
  // INTERNAL otherwise; the message carries the server's.
  Result<Rows> Exec(std::string_view sql, const Params& params = {});
  // Runs a script of statements without parameters (migrations, BEGIN).
  Status ExecScript(std::string_view sql);
  bool broken() const;
  // Whether the last error was a serialization failure or deadlock: the
  // whole transaction may be retried.
  bool last_error_retryable() const { return retryable_; }
  int backend_pid() const;
  pg_conn* raw() { return conn_; }
  const std::string& schema() const { return schema_; }

 private:
  Connection(pg_conn* conn, std::string schema) : conn_(conn), schema_(std::move(schema)) {}
  Status ErrorFrom(pg_result* res, std::string_view sql);

  pg_conn* conn_;
  std::string schema_;
  std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
  bool retryable_ = false;
};

// Quotes `name` as an SQL identifier with libpq's quoting (on `conn`).
Result<std::string> QuoteIdentifier(pg_conn* conn, std::string_view name);

// Connections shared by threads: at most `max_size`, opened on demand. When
// the server is unreachable, Acquire fails fast with UNAVAILABLE and retries
// the connection no more often than an exponential backoff (50 ms to 5 s).
class Pool {
 public:
  // Every connection opened gets `idle_transaction_timeout` (see
  // Connection::Open).
  Pool(std::string url, std::string schema, int max_size,
       std::chrono::milliseconds idle_transaction_timeout = std::chrono::milliseconds(0));
  ~Pool();

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;  // a lease is handed on, never reseated
    Lease(const Lease&) = delete;
    ~Lease();
    Connection* operator->() { return conn_.get(); }
    Connection& operator*() { return *conn_; }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  // A connection for one operation; waits (bounded) when all are in use.
  Result<Lease> Acquire();
  // Backend pids of this pool's open connections (to recognise our own
  // notifications).
  bool OwnsBackend(int pid);
  const std::string& url() const { return url_; }
  const std::string& schema() const { return schema_; }

 private:
  void Release(std::unique_ptr<Connection> conn);

  const std::string url_;
  const std::string schema_;
  const std::chrono::milliseconds idle_transaction_timeout_;
  const int max_size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
  std::vector<int> pids_;                          // guarded by mu_
  int open_ = 0;                                   // guarded by mu_
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_{0};
  std::string last_error_;
};

// `text` as valid UTF-8 without NUL bytes (invalid bytes become U+FFFD).
void AppendText(std::string* out, std::string_view text);

// Hides the password of a connection URI or key=value string for messages.
std::string RedactUrl(std::string_view url);

}  // namespace sked::pg

#endif  // SKED_STORE_POSTGRES_PG_CLIENT_H_
