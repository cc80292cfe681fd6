#include "store/postgres/pg_client.h"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace sked::pg {

// ---------------------------------------------------------------- Params

void AppendText(std::string* out, std::string_view text) {
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x01 && c < 0x80) {
      *out += static_cast<char>(c);
      ++i;
      continue;
    }
    // A multi-byte sequence: its length from the lead byte, then continuation
    // bytes, no overlong forms, no surrogates, nothing above U+10FFFF.
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    bool ok = len > 0 && i + len <= text.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (ok) {
      out->append(text.substr(i, len));
      i += len;
    } else {
      out->append(kReplacement);
      ++i;
    }
  }
}

Params& Params::Add(std::string_view v) {
  std::string text;
  text.reserve(v.size());
  AppendText(&text, v);
  values_.emplace_back(std::move(text));
  return *this;
}

Params& Params::Add(std::int64_t v) {
  values_.emplace_back(std::to_string(v));
  return *this;
}

Params& Params::Add(double v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%.17g", v);
  values_.emplace_back(std::string(buf, static_cast<size_t>(n)));
  return *this;
}

Params& Params::Add(bool v) {
  values_.emplace_back(v ? "t" : "f");
  return *this;
}

Params& Params::Add(std::nullopt_t) {
  values_.emplace_back(std::nullopt);
  return *this;
}

std::vector<const char*> Params::Pointers() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
  return out;
}

// ---------------------------------------------------------------- ArrayLiteral

void ArrayLiteral::Sep() {
  if (!first_) text_ += ',';
  first_ = false;
}

ArrayLiteral& ArrayLiteral::Add(std::string_view text) {
  Sep();
  std::string valid;
  AppendText(&valid, text);
  text_ += '"';
  for (char c : valid) {
    if (c == '"' || c == '\\') text_ += '\\';
    text_ += c;
  }
  text_ += '"';
  return *this;
}

ArrayLiteral& ArrayLiteral::Add(std::int64_t v) {
  Sep();
  text_ += std::to_string(v);
  return *this;
}

ArrayLiteral& ArrayLiteral::Add(bool v) {
  Sep();
  text_ += v ? "t" : "f";
  return *this;
}

ArrayLiteral& ArrayLiteral::AddNull() {
  Sep();
  text_ += "NULL";
  return *this;
}

// ---------------------------------------------------------------- Rows

Rows::Rows(pg_result* res) : res_(res), rows_(PQntuples(res)) {
  const char* n = PQcmdTuples(res);
  if (n != nullptr && *n != '\0') affected_ = std::strtoll(n, nullptr, 10);
}

Rows::Rows(Rows&& other) noexcept
    : res_(std::exchange(other.res_, nullptr)),
      rows_(std::exchange(other.rows_, 0)),
      affected_(std::exchange(other.affected_, 0)) {}

Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    if (res_ != nullptr) PQclear(res_);
    res_ = std::exchange(other.res_, nullptr);
    rows_ = std::exchange(other.rows_, 0);
    affected_ = std::exchange(other.affected_, 0);
  }
  return *this;
}

Rows::~Rows() {
  if (res_ != nullptr) PQclear(res_);
}

bool Rows::IsNull(int row, int col) const { return PQgetisnull(res_, row, col) != 0; }

std::string Rows::Text(int row, int col) const {
  return std::string(PQgetvalue(res_, row, col), static_cast<size_t>(PQgetlength(res_, row, col)));
}

std::int64_t Rows::Int(int row, int col) const {
  const char* v = PQgetvalue(res_, row, col);
  std::int64_t out = 0;
  std::from_chars(v, v + PQgetlength(res_, row, col), out);
  return out;
}

std::optional<std::int64_t> Rows::OptInt(int row, int col) const {
  if (IsNull(row, col)) return std::nullopt;
  return Int(row, col);
}

double Rows::Double(int row, int col) const {
  return std::strtod(PQgetvalue(res_, row, col), nullptr);
}

bool Rows::Bool(int row, int col) const { return PQgetvalue(res_, row, col)[0] == 't'; }

// ---------------------------------------------------------------- Connection

Result<std::string> QuoteIdentifier(pg_conn* conn, std::string_view name) {
  char* quoted = PQescapeIdentifier(conn, name.data(), name.size());
  if (quoted == nullptr) {
    return InvalidArgumentError("cannot quote identifier '" + std::string(name) +
                                "': " + PQerrorMessage(conn));
  }
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

namespace {

std::string Trimmed(const char* message) {
  std::string m = message != nullptr ? message : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

}  // namespace

Result<std::unique_ptr<Connection>> Connection::Open(
    const std::string& url, const std::string& schema,
    std::chrono::milliseconds idle_transaction_timeout) {
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &parse_error);
  if (options == nullptr) {
    std::string why = parse_error != nullptr ? Trimmed(parse_error) : "cannot parse";
    if (parse_error != nullptr) PQfreemem(parse_error);
    return InvalidArgumentError("store url '" + RedactUrl(url) + "': " + why);
  }
  PQconninfoFree(options);
  pg_conn* conn = PQconnectdb(url.c_str());
  if (conn == nullptr) return UnavailableError("out of memory connecting to PostgreSQL");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return UnavailableError("cannot connect to PostgreSQL at " + RedactUrl(url) + ": " + why);
  }
  std::unique_ptr<Connection> c(new Connection(conn, schema));
  auto quoted = QuoteIdentifier(conn, schema);
  if (!quoted.ok()) return quoted.status();
  // The session reads and writes only the configured schema; times are
  // integers, so the session's time zone does not matter.
  SKED_RETURN_IF_ERROR(
      c->ExecScript("SET search_path TO " + *quoted + "; SET client_min_messages TO warning"));
  if (idle_transaction_timeout.count() > 0) {
    // A stopped process's open transaction would hold its row locks, and
    // block the other instances, until it woke: the server ends it instead.
    SKED_RETURN_IF_ERROR(
        c->Exec("SELECT set_config('idle_in_transaction_session_timeout', $1, false)",
                Params().Add(std::to_string(idle_transaction_timeout.count())))
            .status());
  }
  return c;
}

Connection::~Connection() { PQfinish(conn_); }

bool Connection::broken() const { return PQstatus(conn_) != CONNECTION_OK; }

int Connection::backend_pid() const { return PQbackendPID(conn_); }

Status Connection::ErrorFrom(pg_result* res, std::string_view sql) {
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = Trimmed(res != nullptr ? PQresultErrorMessage(res) : nullptr);
  if (message.empty()) message = Trimmed(PQerrorMessage(conn_));
  const std::string code = state != nullptr ? state : "";
  retryable_ = code == "40001" || code == "40P01";
  if (code == "23505") return AlreadyExistsError(message);
  if (code == "40001" || code == "40P01") return AbortedError(message);
  if (broken() || code.rfind("08", 0) == 0 || code.rfind("57P", 0) == 0) {
    return UnavailableError("PostgreSQL connection lost: " + message);
  }
  std::string first_line(sql.substr(0, std::min<size_t>(sql.size(), 80)));
  return InternalError("PostgreSQL: " + message + " (in: " + first_line + ")");
}

Result<Rows> Connection::Exec(std::string_view sql, const Params& params) {
  std::string key(sql);
  auto it = prepared_.find(key);
  if (it == prepared_.end()) {
    std::string name = "sked_" + std::to_string(prepared_.size() + 1);
    pg_result* res = PQprepare(conn_, name.c_str(), key.c_str(), 0, nullptr);
    const bool ok = res != nullptr && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
      Status st = ErrorFrom(res, sql);
      if (res != nullptr) PQclear(res);
      return st;
    }
    PQclear(res);
    it = prepared_.emplace(std::move(key), std::move(name)).first;
  }
  const std::vector<const char*> values = params.Pointers();
  pg_result* res = PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()),
                                  values.data(), nullptr, nullptr, 0);
  const ExecStatusType st = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    Status error = ErrorFrom(res, sql);
    if (res != nullptr) PQclear(res);
    return error;
  }
  return Rows(res);
}

Status Connection::ExecScript(std::string_view sql) {
  const std::string text(sql);
  pg_result* res = PQexec(conn_, text.c_str());
  const ExecStatusType st = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    Status error = ErrorFrom(res, sql);
    if (res != nullptr) PQclear(res);
    return error;
  }
  PQclear(res);
  return Status::Ok();
}

// ---------------------------------------------------------------- Pool

Pool::Pool(std::string url, std::string schema, int max_size,
           std::chrono::milliseconds idle_transaction_timeout)
    : url_(std::move(url)),
      schema_(std::move(schema)),
      idle_transaction_timeout_(idle_transaction_timeout),
      max_size_(std::max(1, max_size)) {}

Pool::~Pool() = default;

Pool::Lease::~Lease() {
  if (conn_ != nullptr) pool_->Release(std::move(conn_));
}

Result<Pool::Lease> Pool::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    while (!idle_.empty()) {
      std::unique_ptr<Connection> c = std::move(idle_.back());
      idle_.pop_back();
      if (!c->broken()) return Lease(this, std::move(c));
      --open_;
    }
    if (open_ < max_size_) {
      const auto now = std::chrono::steady_clock::now();
      if (now < retry_at_) return UnavailableError(last_error_);
      ++open_;
      lock.unlock();
      auto opened = Connection::Open(url_, schema_, idle_transaction_timeout_);
      lock.lock();
      if (!opened.ok()) {
        --open_;
        backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(50),
                              std::chrono::milliseconds(5000));
        retry_at_ = std::chrono::steady_clock::now() + backoff_;
        last_error_ = opened.status().message();
        cv_.notify_one();
        return opened.status();
      }
      backoff_ = std::chrono::milliseconds(0);
      retry_at_ = {};
      pids_.push_back((*opened)->backend_pid());
      return Lease(this, std::move(*opened));
    }
    if (cv_.wait_until(lock, give_up) == std::cv_status::timeout) {
      return UnavailableError("all " + std::to_string(max_size_) +
                              " PostgreSQL connections stayed busy for 30 s");
    }
  }
}

void Pool::Release(std::unique_ptr<Connection> conn) {
  std::lock_guard<std::mutex> l(mu_);
  if (conn->broken()) {
    --open_;
    const int pid = conn->backend_pid();
    pids_.erase(std::remove(pids_.begin(), pids_.end(), pid), pids_.end());
  } else {
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

bool Pool::OwnsBackend(int pid) {
  std::lock_guard<std::mutex> l(mu_);
  return std::find(pids_.begin(), pids_.end(), pid) != pids_.end();
}

std::string RedactUrl(std::string_view url) {
  std::string out(url);
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t at = out.find('@', scheme + 3);
    const size_t colon = out.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  const size_t pw = out.find("password=");
  if (pw != std::string::npos) {
    size_t end = pw + 9;
    while (end < out.size() && out[end] != ' ' && out[end] != '&') ++end;
    out.replace(pw + 9, end - pw - 9, "***");
  }
  return out;
}

}  // namespace sked::pg
