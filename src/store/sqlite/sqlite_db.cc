#include "store/sqlite/sqlite_db.h"

#include <string>

namespace sked::store_internal {

Status SqliteError(int code, std::string_view what) {
  // sqlite3_errmsg() is often the same text as sqlite3_errstr(): say it once.
  const std::string_view plain = sqlite3_errstr(code);
  std::string message = "sqlite: " + std::string(what);
  if (what.size() < plain.size() || what.substr(what.size() - plain.size()) != plain) {
    message += ": " + std::string(plain);
  }
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
      return UnavailableError(std::move(message));
    case SQLITE_CONSTRAINT:
      return AlreadyExistsError(std::move(message));
    default:
      return InternalError(std::move(message));
  }
}

Stmt& Stmt::Bind(int i, std::int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}

Stmt& Stmt::Bind(int i, double v) {
  sqlite3_bind_double(stmt_, i, v);
  return *this;
}

Stmt& Stmt::Bind(int i, std::string_view v) {
  sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

bool Stmt::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE && status_.ok()) {
    sqlite3* db = sqlite3_db_handle(stmt_);
    const char* file = sqlite3_db_filename(db, "main");
    status_ = SqliteError(
        rc, std::string(file != nullptr && *file ? file : ":memory:") + ": " + sqlite3_errmsg(db));
  }
  return false;
}

Status Stmt::Run() {
  while (Step()) {
  }
  return status_;
}

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  status_ = Status::Ok();
}

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteError(rc, "cannot open '" + path + "'");
    sqlite3_close(db);
    return UnavailableError(s.message());
  }
  std::unique_ptr<SqliteDb> out(new SqliteDb(db, path));
  sqlite3_busy_timeout(db, 10000);
  // WAL: readers never block the writer; NORMAL sync is durable across
  // process crashes (a power loss may drop the last transactions).
  // Switching a new file to WAL needs its exclusive lock, and SQLite answers
  // BUSY at once (no busy handler) while another process opens or migrates
  // the same new file: try again, for at most ~10 s.
  for (int attempt = 0;; ++attempt) {
    const int wal = sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    if (wal == SQLITE_OK) break;
    if (((wal & 0xff) != SQLITE_BUSY && (wal & 0xff) != SQLITE_LOCKED) || attempt >= 200) {
      return SqliteError(wal, "opening '" + path + "'");
    }
    sqlite3_sleep(50);
  }
  for (const char* pragma :
       {"PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON", "PRAGMA temp_store=MEMORY"}) {
    SKED_RETURN_IF_ERROR(out->Exec(pragma).WithContext("opening '" + path + "'"));
  }
  return out;
}

SqliteDb::~SqliteDb() {
  statements_.clear();
  sqlite3_close(db_);
}

Status SqliteDb::Exec(std::string_view sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string what = path_ + ": " + (error != nullptr ? error : "exec");
    sqlite3_free(error);
    return SqliteError(rc, what);
  }
  return Status::Ok();
}

Result<Stmt*> SqliteDb::Prepare(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, sqlite3_errmsg(db_));
    it = statements_.emplace(std::string(sql), std::make_unique<Stmt>(raw)).first;
  }
  it->second->Reset();
  return it->second.get();
}

Transaction::~Transaction() {
  if (open_) (void)db_->Exec("ROLLBACK");
}

Status Transaction::Begin() {
  SKED_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  open_ = true;
  return Status::Ok();
}

Status Transaction::Commit() {
  SKED_RETURN_IF_ERROR(db_->Exec("COMMIT"));
  open_ = false;
  return Status::Ok();
}

}  // namespace sked::store_internal
