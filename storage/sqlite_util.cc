#include "storage/sqlite_util.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace edgeinfer::sqlite {
namespace {

// Statement text for messages, cut so a long INSERT does not drown the error.
std::string Describe(std::string_view sql) {
  constexpr size_t kMax = 48;
  return sql.size() <= kMax ? std::string(sql) : std::string(sql.substr(0, kMax)) + "...";
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

Status Error(sqlite3* db, int rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  msg += " (SQLite code " + std::to_string(rc) + ")";
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(msg);
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::ResourceExhausted(msg);
    case SQLITE_ERROR:
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
      return Status::Internal(msg);
    default: {
      int err = db ? sqlite3_system_errno(db) : 0;
      return Status::IOError(msg, err != 0 ? err : EIO);
    }
  }
}

Result<Stmt> Stmt::Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(raw);
    return Error(db, rc, "prepare " + Describe(sql));
  }
  Stmt s;
  s.stmt_.reset(raw);
  return s;
}

Stmt& Stmt::Use() {
  Reset();
  sqlite3_clear_bindings(stmt_.get());
  bind_rc_ = SQLITE_OK;
  return *this;
}

Stmt& Stmt::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_.get(), index, value);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::BindText(int index, std::string_view text) {
  int rc =
      sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::BindBlob(int index, std::string_view bytes) {
  // A zero-length blob must still be a blob, not NULL: give SQLite a non-null pointer.
  const char* data = bytes.empty() ? "" : bytes.data();
  int rc = sqlite3_bind_blob64(stmt_.get(), index, data, bytes.size(), SQLITE_STATIC);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Result<bool> Stmt::Step() {
  sqlite3_stmt* s = stmt_.get();
  if (bind_rc_ != SQLITE_OK) {
    Status err = Error(sqlite3_db_handle(s), bind_rc_, "bind " + Describe(sqlite3_sql(s)));
    Reset();
    return err;
  }
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) {
    Reset();
    return false;
  }
  // Read the message before reset, which may replace it.
  Status err = Error(sqlite3_db_handle(s), rc, Describe(sqlite3_sql(s)));
  Reset();
  return err;
}

Status Stmt::Run() {
  Result<bool> row = Step();
  if (!row.ok()) return row.status();
  if (*row) Reset();
  return Status::Ok();
}

void Stmt::Reset() { sqlite3_reset(stmt_.get()); }

int64_t Stmt::Int(int col) const { return sqlite3_column_int64(stmt_.get(), col); }

std::string_view Stmt::Text(int col) const {
  // Per the SQLite docs: take the pointer first, then the size.
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), col));
  int n = sqlite3_column_bytes(stmt_.get(), col);
  return p ? std::string_view(p, static_cast<size_t>(n)) : std::string_view();
}

std::string_view Stmt::Blob(int col) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_.get(), col));
  int n = sqlite3_column_bytes(stmt_.get(), col);
  return p ? std::string_view(p, static_cast<size_t>(n)) : std::string_view();
}

Result<Db> Db::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db(raw);  // SQLite hands back a handle to close even when the open failed.
  if (rc != SQLITE_OK) return Error(raw, rc, "open '" + path + "'");
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Status Db::Exec(const char* sql) {
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? Status::Ok() : Error(db_.get(), rc, Describe(sql));
}

Result<std::string> Db::QueryText(const char* sql) {
  EI_ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), sql));
  EI_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? std::string(s.Text(0)) : std::string();
}

Result<int64_t> Db::QueryInt(const char* sql) {
  EI_ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), sql));
  EI_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Int(0) : int64_t{0};
}

Status Db::QuickCheck() {
  // quick_check(1): stop at the first problem; one is enough to give up on the file.
  EI_ASSIGN_OR_RETURN(std::string verdict, QueryText("PRAGMA quick_check(1)"));
  if (verdict == "ok") return Status::Ok();
  std::replace(verdict.begin(), verdict.end(), '\n', ' ');  // one log line
  return Status::Corruption("quick_check: " + verdict);
}

Result<Txn> Txn::Begin(Db& db) {
  // IMMEDIATE takes the write lock up front, so a busy database fails here, not at COMMIT.
  EI_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return Txn(db.get());
}

Txn::Txn(Txn&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Txn::~Txn() {
  // SQLite may already have rolled back by itself (e.g. after SQLITE_FULL); only roll back an
  // open transaction.
  if (db_ && !sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Status Txn::Commit() {
  int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(db_, rc, "COMMIT");
  db_ = nullptr;
  return Status::Ok();
}

Result<std::string> MoveAside(const std::string& path, const std::string& tag) {
  constexpr int kMaxTries = 100;
  std::string target;
  for (int n = 0; n < kMaxTries; ++n) {
    target = path + "." + tag;
    if (n > 0) target.append("-").append(std::to_string(n));
    if (!Exists(target)) break;
  }
  if (Exists(target)) return Status::IOError("move aside '" + path + "'", EEXIST);
  for (const char* companion : {"-wal", "-shm", ""}) {
    std::string from = path + companion;
    if (!Exists(from)) continue;
    std::string to = target + companion;
    if (std::rename(from.c_str(), to.c_str()) != 0) {
      return Status::IOError("rename '" + from + "' to '" + to + "'", errno);
    }
  }
  return target;
}

int PruneMovedAside(const std::string& path, const std::string& tag_prefix, size_t keep) {
  namespace fs = std::filesystem;
  const fs::path db(path);
  const std::string stem = db.filename().string() + "." + tag_prefix;
  std::vector<std::string> copies;
  std::error_code ec;
  for (fs::directory_iterator it(db.parent_path().empty() ? "." : db.parent_path(), ec), end;
       !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool companion = name.ends_with("-wal") || name.ends_with("-shm");
    if (name.starts_with(stem) && !companion) copies.push_back(it->path().string());
  }
  if (copies.size() <= keep) return 0;
  std::sort(copies.begin(), copies.end());
  int deleted = 0;
  for (size_t i = 0; i + keep < copies.size(); ++i) {
    for (const char* companion : {"-wal", "-shm"}) std::remove((copies[i] + companion).c_str());
    if (std::remove(copies[i].c_str()) == 0) ++deleted;
  }
  return deleted;
}

}  // namespace edgeinfer::sqlite
