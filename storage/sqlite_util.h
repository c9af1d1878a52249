// Thin RAII wrappers over the SQLite C API, private to storage/.
//
// Every SQLite failure becomes a Status in one place, Error(), which names the operation and
// carries sqlite3_errmsg and the result code. Classification, which callers rely on:
//   SQLITE_CORRUPT, SQLITE_NOTADB          -> kCorruption (move the file aside, start afresh)
//   SQLITE_FULL, SQLITE_NOMEM, BUSY/LOCKED -> kResourceExhausted (retry later)
//   SQLITE_ERROR, MISUSE, RANGE, ...       -> kInternal (a bug or a foreign schema)
//   everything else (I/O, can't open, read-only, permission) -> kIOError / kNotFound (with errno)
// Objects are thread-compatible: one owner, who serialises access.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace edgeinfer::sqlite {

// The Status for result code `rc` of an operation `what` on `db` (may be null).
Status Error(sqlite3* db, int rc, std::string_view what);

// A prepared statement, reused across calls (prepared with SQLITE_PREPARE_PERSISTENT).
class Stmt {
 public:
  Stmt() = default;
  static Result<Stmt> Prepare(sqlite3* db, std::string_view sql);

  // Resets the statement and clears its bindings for a new use; returns *this to chain Binds.
  // A bind error is kept and returned by the next Step().
  Stmt& Use();
  Stmt& Bind(int index, int64_t value);
  Stmt& BindText(int index, std::string_view text);
  Stmt& BindBlob(int index, std::string_view bytes);

  // One step: true when a row is ready, false when done. Resets the statement when done or on
  // error so no read transaction stays open; call Reset() when stopping before done.
  Result<bool> Step();
  // Steps a statement that returns no rows to completion.
  Status Run();
  void Reset();

  int64_t Int(int col) const;
  // Valid until the next Step or Reset.
  std::string_view Text(int col) const;
  std::string_view Blob(int col) const;

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  int bind_rc_ = SQLITE_OK;
};

// A connection. Closing finalizes nothing: destroy the Stmts first (close_v2 tolerates leftovers).
class Db {
 public:
  // Opens read-write, creating the file if missing, without SQLite's own mutex (the owner locks).
  // SQLite reads the file lazily: a garbage file is reported by the first statement, not here.
  static Result<Db> Open(const std::string& path);

  sqlite3* get() const { return db_.get(); }
  Status Exec(const char* sql);
  // First column of the first row; "" or 0 when there is no row.
  Result<std::string> QueryText(const char* sql);
  Result<int64_t> QueryInt(const char* sql);
  // PRAGMA quick_check: OK, or kCorruption naming the first problem found.
  Status QuickCheck();
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const { return sqlite3_changes64(db_.get()); }

 private:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  explicit Db(sqlite3* db) : db_(db) {}
  std::unique_ptr<sqlite3, Closer> db_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back on destruction unless Commit() succeeded.
class Txn {
 public:
  static Result<Txn> Begin(Db& db);
  Txn(Txn&& other) noexcept;
  Txn& operator=(Txn&&) = delete;
  ~Txn();
  Status Commit();

 private:
  explicit Txn(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

// Renames the database `path` with its -wal and -shm files to `path.tag` (plus "-N" if that
// name is taken), keeping SQLite's naming so the kept copy opens with its WAL. The WAL goes
// first: a stale WAL next to a fresh database would be replayed into it. Returns the new path.
// The database must be closed.
Result<std::string> MoveAside(const std::string& path, const std::string& tag);

// Deletes the copies MoveAside made of `path` with tags starting with `tag_prefix` (each with
// its -wal and -shm), all but the `keep` newest by name (tags that sort by time sort by age).
// Returns how many copies it deleted; files it cannot delete are left and not counted.
int PruneMovedAside(const std::string& path, const std::string& tag_prefix, size_t keep);

}  // namespace edgeinfer::sqlite
