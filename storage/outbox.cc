#include "storage/outbox.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "storage/sqlite_util.h"

namespace edgeinfer {
namespace {

constexpr int64_t kSchemaVersion = 1;
// Counted per row on top of its strings, so that a flood of tiny rows still meets the bound.
constexpr int64_t kRowOverheadBytes = 32;
constexpr int64_t kScanChunk = 64;           // rows read per pass when choosing rows to drop
constexpr int64_t kExpiryIntervalMs = 1000;  // the age bound is enforced at most this often
constexpr int64_t kNoCutoff = std::numeric_limits<int64_t>::min();
constexpr size_t kKeptCorruptCopies = 3;  // moved-aside corrupt databases kept (newest)

// AUTOINCREMENT: ids never go back, even after the newest rows are deleted, so id order is
// append order for the life of the file. The index on pipeline holds (pipeline, rowid): the
// per-pipeline claim walks it in id order.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS outbox(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pipeline TEXT NOT NULL,
  seq INTEGER NOT NULL,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  qos INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  bytes INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_pipeline ON outbox(pipeline);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(key, value) VALUES('dropped_rows', 0), ('dropped_bytes', 0);
PRAGMA user_version = 1;
)sql";

constexpr const char* kInsertSql =
    "INSERT INTO outbox(pipeline, seq, topic, payload, qos, created_ms, bytes) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr const char* kClaimSql =
    "SELECT id, seq, topic, payload, qos, created_ms, bytes FROM outbox "
    "WHERE pipeline = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
constexpr const char* kDeleteSql = "DELETE FROM outbox WHERE id = ?1";
constexpr const char* kOldestSql =
    "SELECT id, pipeline, bytes, created_ms FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2";
constexpr const char* kSetMetaSql = "UPDATE meta SET value = ?2 WHERE key = ?1";

int64_t RowBytes(const OutboxMessage& m) {
  return static_cast<int64_t>(m.payload.size() + m.topic.size() + m.pipeline.size()) +
         kRowOverheadBytes;
}

int64_t SystemClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "corrupt-20251125T020800.123Z": sorts by time, readable in `ls`.
std::string CorruptTag(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "corrupt-%04d%02d%02dT%02d%02d%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

const char* SyncPragma(SyncLevel level) {
  switch (level) {
    case SyncLevel::kOff:
      return "PRAGMA synchronous=OFF";
    case SyncLevel::kNormal:
      return "PRAGMA synchronous=NORMAL";
    case SyncLevel::kFull:
      return "PRAGMA synchronous=FULL";
  }
  return "PRAGMA synchronous=NORMAL";
}

Status Validate(std::span<const OutboxMessage> batch, int64_t max_bytes) {
  for (size_t i = 0; i < batch.size(); ++i) {
    const OutboxMessage& m = batch[i];
    std::string what = "outbox message " + std::to_string(i) + " of the batch";
    if (m.pipeline.empty()) return Status::InvalidArgument(what + ": empty pipeline");
    what += " (pipeline '" + m.pipeline + "')";
    if (m.topic.empty()) return Status::InvalidArgument(what + ": empty topic");
    if (m.qos < 0 || m.qos > 2) {
      return Status::InvalidArgument(what + ": qos " + std::to_string(m.qos) + " not in 0..2");
    }
    if (RowBytes(m) > max_bytes) {
      return Status::InvalidArgument(what + ": " + std::to_string(RowBytes(m)) +
                                     " bytes, more than the outbox bound of " +
                                     std::to_string(max_bytes));
    }
  }
  return Status::Ok();
}

Status ValidateOptions(const OutboxOptions& o) {
  if (o.state_dir.empty()) return Status::InvalidArgument("outbox: state_dir is empty");
  if (o.file_name.empty() || o.file_name.find('/') != std::string::npos) {
    return Status::InvalidArgument("outbox: file_name '" + o.file_name + "' is not a file name");
  }
  if (o.max_bytes <= 0 || o.retry_interval_ms <= 0 || o.ack_batch_rows <= 0 ||
      o.memory_fallback_bytes < 0 || o.max_age_ms < 0 || o.busy_timeout_ms < 0 ||
      o.max_db_pages < 0 || o.ack_batch_ms < 0) {
    return Status::InvalidArgument(
        "outbox: max_bytes, retry_interval_ms and ack_batch_rows must be > 0; "
        "memory_fallback_bytes, max_age_ms, busy_timeout_ms, max_db_pages and ack_batch_ms "
        ">= 0");
  }
  return Status::Ok();
}

}  // namespace

struct Outbox::Impl {
  struct Pipeline {
    int64_t rows = 0, bytes = 0;          // stored: database and memory, in flight included
    int64_t mem_rows = 0, mem_bytes = 0;  // of which in memory
    int64_t in_flight = 0;
    int64_t undeleted = 0;  // acked, delete not yet committed
    // Database ids <= cursor were handed out since the last release, or are gone; claims
    // resume after it so a window full of in-flight rows is not re-read on every call.
    int64_t cursor = 0;
  };
  using Pipelines = std::map<std::string, Pipeline, std::less<>>;
  struct MemRow {
    OutboxMessage msg;
    int64_t bytes = 0;
    int64_t token = 0;  // claim id while in flight, else 0
  };
  struct InFlight {
    Pipelines::iterator p;
    int64_t row = 0;  // database id, or memory key when in_memory
    bool in_memory = false;
    int64_t bytes = 0;
  };
  struct Undeleted {
    Pipelines::iterator p;
    int64_t bytes = 0;
  };
  struct Victim {
    int64_t id = 0;
    std::string pipeline;
    int64_t bytes = 0;
  };
  struct Statements {
    sqlite::Stmt insert, claim, remove, oldest, set_meta;
  };

  explicit Impl(OutboxOptions o) : opt(std::move(o)), path(opt.state_dir + "/" + opt.file_name) {}

  int64_t Now() const { return opt.clock(); }

  // --- opening and failure handling ---
  Status TryOpen();
  Status Configure();
  Status PrepareStatements();
  Status LoadState();
  Status OpenOrReplace(int64_t now);
  Status MoveAsideAndStartAfresh(const Status& why, int64_t now);
  void CloseDb() {
    st.reset();  // statements before their connection
    db.reset();
  }
  void EnterDegraded(const Status& why, int64_t now);
  void OnDbError(const Status& why, int64_t now);
  void RecoverFromCorruption(const Status& why, int64_t now);
  void ForgetDatabaseRows();
  void MaybeRecover(int64_t now);
  Status FlushMemory();

  // --- writing ---
  Result<AppendReport> Append(std::span<const OutboxMessage> batch);
  Status AppendToDb(std::span<const OutboxMessage> batch, AppendReport* report);
  void AppendToMemory(std::span<const OutboxMessage> batch, int64_t now, AppendReport* report);
  Status InsertRow(const OutboxMessage& m, int64_t bytes);
  Status SelectVictims(int64_t excess, int64_t cutoff, std::vector<Victim>* victims);
  Status DeleteVictims(const std::vector<Victim>& victims);
  void CommitDrops(const std::vector<Victim>& victims, AppendReport* report);
  void MaybeExpire(int64_t now, AppendReport* report);
  void TrimMemory(int64_t cutoff, AppendReport* report);
  Status WriteCounters(int64_t extra_rows, int64_t extra_bytes);
  Status PersistCounters();

  // --- delivery ---
  Status Claim(size_t max_in_flight, std::vector<ClaimedMessage>* out);
  std::vector<Pipelines::iterator> TurnOrder();
  Result<size_t> ClaimFrom(Pipelines::iterator it, size_t want, std::vector<ClaimedMessage>* out);
  Result<bool> ClaimFromDb(Pipelines::iterator it, size_t want, size_t* got,
                           std::vector<ClaimedMessage>* out);
  size_t ClaimFromMemory(Pipelines::iterator it, size_t want, std::vector<ClaimedMessage>* out);
  Status Ack(std::span<const int64_t> ids);
  Status DeleteUndeleted(int64_t now);
  bool AckBatchDue(int64_t now) const {
    return static_cast<int64_t>(undeleted.size()) >= opt.ack_batch_rows ||
           now - undeleted_since_ms >= opt.ack_batch_ms;
  }
  void Release();

  // --- bookkeeping ---
  bool IsClaimed(int64_t id) const { return db_claimed.count(id) || undeleted.count(id); }
  int64_t TotalBytes() const;
  int64_t TotalRows() const;
  void AddRow(const std::string& pipeline, int64_t bytes, bool in_memory);
  void RemoveRow(Pipelines::iterator it, int64_t bytes, bool in_memory);
  void EraseIfEmpty(Pipelines::iterator it);
  void CountDrop(int64_t bytes, AppendReport* report);
  OutboxStats Stats() const;

  OutboxOptions opt;
  std::string path;
  std::optional<sqlite::Db> db;    // empty while the database cannot be opened
  std::unique_ptr<Statements> st;  // declared after db: destroyed first
  Pipelines pipelines;
  std::map<int64_t, MemRow> memory;  // memory fallback, in append order
  int64_t next_mem_key = 1;
  int64_t memory_bytes = 0;
  std::unordered_map<int64_t, InFlight> in_flight;   // by claim id
  std::unordered_set<int64_t> db_claimed;            // database ids in flight
  std::unordered_map<int64_t, Undeleted> undeleted;  // database ids acked, not yet deleted
  int64_t undeleted_since_ms = 0;                    // when the oldest of them was acked
  int64_t next_token = 1;
  std::string last_served;  // pipeline served last, where the next Claim's turn starts after
  int64_t dropped_rows = 0, dropped_bytes = 0;
  bool counters_dirty = false;  // changed outside a transaction; written by the next one
  int64_t fallback_events = 0, corruption_events = 0;
  bool degraded = false;
  Status last_error;
  Status open_status;
  int64_t next_retry_ms = 0, next_expiry_ms = 0;
};

// ---------------------------------------------------------------- opening and failure handling

Status Outbox::Impl::TryOpen() {
  std::error_code ec;
  std::filesystem::create_directories(opt.state_dir, ec);
  if (ec) return Status::IOError("create state directory '" + opt.state_dir + "'", ec.value());
  Result<sqlite::Db> opened = sqlite::Db::Open(path);
  if (!opened.ok()) return opened.status();
  db.emplace(std::move(opened).value());
  Status s = Configure();
  if (s.ok()) s = PrepareStatements();
  if (s.ok()) s = LoadState();  // last: it changes the in-memory state only when it succeeds
  if (!s.ok()) CloseDb();
  return s;
}

Status Outbox::Impl::Configure() {
  sqlite3_busy_timeout(db->get(), opt.busy_timeout_ms);
  // The first statement reads the header: a file that is not a database fails here (NOTADB).
  EI_ASSIGN_OR_RETURN(std::string mode, db->QueryText("PRAGMA journal_mode=WAL"));
  if (mode != "wal") return Status::Unsupported("outbox: journal_mode WAL refused: " + mode);
  EI_RETURN_IF_ERROR(db->Exec(SyncPragma(opt.synchronous)));
  // Without a limit the WAL file keeps its high-water size after each checkpoint.
  EI_RETURN_IF_ERROR(db->Exec("PRAGMA journal_size_limit=4194304"));
  if (opt.max_db_pages > 0) {
    std::string pragma = "PRAGMA max_page_count=" + std::to_string(opt.max_db_pages);
    EI_RETURN_IF_ERROR(db->Exec(pragma.c_str()));
  }
  EI_RETURN_IF_ERROR(db->QuickCheck());
  EI_ASSIGN_OR_RETURN(int64_t version, db->QueryInt("PRAGMA user_version"));
  if (version > kSchemaVersion) {
    // Written by a newer build: not ours to interpret. Treated like corruption, so it is kept
    // aside intact instead of being modified.
    return Status::Corruption("outbox: schema version " + std::to_string(version) +
                              " is newer than this build's " + std::to_string(kSchemaVersion));
  }
  EI_ASSIGN_OR_RETURN(sqlite::Txn txn, sqlite::Txn::Begin(*db));
  EI_RETURN_IF_ERROR(db->Exec(kSchema));
  return txn.Commit();
}

Status Outbox::Impl::PrepareStatements() {
  auto s = std::make_unique<Statements>();
  EI_ASSIGN_OR_RETURN(s->insert, sqlite::Stmt::Prepare(db->get(), kInsertSql));
  EI_ASSIGN_OR_RETURN(s->claim, sqlite::Stmt::Prepare(db->get(), kClaimSql));
  EI_ASSIGN_OR_RETURN(s->remove, sqlite::Stmt::Prepare(db->get(), kDeleteSql));
  EI_ASSIGN_OR_RETURN(s->oldest, sqlite::Stmt::Prepare(db->get(), kOldestSql));
  EI_ASSIGN_OR_RETURN(s->set_meta, sqlite::Stmt::Prepare(db->get(), kSetMetaSql));
  st = std::move(s);
  return Status::Ok();
}

// Adds what the file holds to the in-memory counters (which may already count memory rows, or
// drops, if the database could not be opened at first).
Status Outbox::Impl::LoadState() {
  int64_t meta_rows = 0, meta_bytes = 0;
  EI_ASSIGN_OR_RETURN(sqlite::Stmt meta,
                      sqlite::Stmt::Prepare(db->get(), "SELECT key, value FROM meta"));
  for (;;) {
    EI_ASSIGN_OR_RETURN(bool row, meta.Step());
    if (!row) break;
    if (meta.Text(0) == "dropped_rows") meta_rows = meta.Int(1);
    if (meta.Text(0) == "dropped_bytes") meta_bytes = meta.Int(1);
  }
  std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> counts;
  EI_ASSIGN_OR_RETURN(sqlite::Stmt group,
                      sqlite::Stmt::Prepare(db->get(),
                                            "SELECT pipeline, COUNT(*), SUM(bytes) FROM outbox "
                                            "GROUP BY pipeline"));
  for (;;) {
    EI_ASSIGN_OR_RETURN(bool row, group.Step());
    if (!row) break;
    counts.push_back({std::string(group.Text(0)), {group.Int(1), group.Int(2)}});
  }
  for (const auto& [name, c] : counts) {
    Pipeline& p = pipelines[name];
    p.rows += c.first;
    p.bytes += c.second;
  }
  // Rows found now may be older than rows already handed out from memory: start over.
  if (!counts.empty()) {
    for (auto& [name, p] : pipelines) p.cursor = 0;
  }
  dropped_rows += meta_rows;
  dropped_bytes += meta_bytes;
  if (meta_rows != dropped_rows) counters_dirty = true;
  return Status::Ok();
}

// Opens the database; a corrupt one is moved aside and a fresh one started. Returns the
// corruption (with a usable db) or the error that left db empty.
Status Outbox::Impl::OpenOrReplace(int64_t now) {
  Status s = TryOpen();
  if (s.code() != Status::Code::kCorruption) return s;
  return MoveAsideAndStartAfresh(s, now);
}

// Keeps the corrupt file (with its WAL) for inspection and opens an empty database.
Status Outbox::Impl::MoveAsideAndStartAfresh(const Status& why, int64_t now) {
  ++corruption_events;
  CloseDb();
  Result<std::string> kept = sqlite::MoveAside(path, CorruptTag(now));
  if (!kept.ok()) return kept.status().WithContext(why.message() + "; cannot move it aside");
  // A disk that keeps corrupting the database must not fill up with copies: the newest few
  // are what an operator inspects.
  sqlite::PruneMovedAside(path, "corrupt-", kKeptCorruptCopies);
  Status incident = Status::Corruption("outbox '" + path + "': " + why.message() +
                                       "; moved aside to '" + *kept + "', started afresh");
  last_error = incident;
  Status fresh = TryOpen();
  return fresh.ok() ? incident : fresh.WithContext(incident.message());
}

void Outbox::Impl::EnterDegraded(const Status& why, int64_t now) {
  last_error = why;
  if (degraded) return;  // keep the retry schedule; repeated failures must not postpone it
  degraded = true;
  ++fallback_events;
  next_retry_ms = now + opt.retry_interval_ms;
}

void Outbox::Impl::OnDbError(const Status& why, int64_t now) {
  if (why.code() == Status::Code::kCorruption) {
    RecoverFromCorruption(why, now);
  } else {
    EnterDegraded(why, now);
  }
}

// Counts the undelivered rows of the database as dropped (they stay in the kept file) and
// forgets every in-memory reference to database rows.
void Outbox::Impl::ForgetDatabaseRows() {
  int64_t lost_rows = 0, lost_bytes = 0;
  for (auto& [id, u] : undeleted) lost_bytes -= u.bytes;  // acked: delivered, not lost
  lost_rows -= static_cast<int64_t>(undeleted.size());
  for (auto& [name, p] : pipelines) {
    lost_rows += p.rows - p.mem_rows;
    lost_bytes += p.bytes - p.mem_bytes;
    p.rows = p.mem_rows;
    p.bytes = p.mem_bytes;
    p.in_flight = p.undeleted = p.cursor = 0;
  }
  std::erase_if(in_flight, [](const auto& kv) { return !kv.second.in_memory; });
  for (auto& [token, f] : in_flight) ++f.p->second.in_flight;
  db_claimed.clear();
  undeleted.clear();
  std::erase_if(pipelines, [](const auto& kv) { return kv.second.rows == 0; });
  dropped_rows += lost_rows;
  dropped_bytes += lost_bytes;
  counters_dirty = true;
}

// SQLite reported corruption while running: no second opinion (quick_check may miss what a
// read just hit), the file goes aside.
void Outbox::Impl::RecoverFromCorruption(const Status& why, int64_t now) {
  ForgetDatabaseRows();
  Status s = MoveAsideAndStartAfresh(why, now);
  last_error = s;
  if (db && !PersistCounters().ok()) CloseDb();
  if (!db) {
    EnterDegraded(s, now);
  } else if (!memory.empty()) {
    degraded = true;  // flush memory on the next call
    next_retry_ms = now;
  }
}

void Outbox::Impl::MaybeRecover(int64_t now) {
  if (!degraded || now < next_retry_ms) return;
  next_retry_ms = now + opt.retry_interval_ms;
  if (!db) {
    Status s = OpenOrReplace(now);
    if (!db) {
      last_error = s;
      return;
    }
  }
  if (!DeleteUndeleted(now).ok()) return;
  Status s = FlushMemory();
  if (!s.ok()) return OnDbError(s, now);
  degraded = false;
}

// Moves the memory rows into the database in one transaction, in order, keeping in-flight
// rows in flight under their new ids.
Status Outbox::Impl::FlushMemory() {
  if (memory.empty()) return Status::Ok();
  std::vector<int64_t> ids;
  ids.reserve(memory.size());
  std::vector<Victim> victims;
  Status s = [&]() -> Status {
    EI_ASSIGN_OR_RETURN(sqlite::Txn txn, sqlite::Txn::Begin(*db));
    for (auto& [key, r] : memory) {
      EI_RETURN_IF_ERROR(InsertRow(r.msg, r.bytes));
      ids.push_back(sqlite3_last_insert_rowid(db->get()));
      if (r.token) db_claimed.insert(ids.back());  // so that the bound does not drop it
    }
    EI_RETURN_IF_ERROR(SelectVictims(TotalBytes() - opt.max_bytes, kNoCutoff, &victims));
    EI_RETURN_IF_ERROR(DeleteVictims(victims));
    return txn.Commit();
  }();
  if (!s.ok()) {
    // The rollback gives the same ids out again: unmark them.
    for (int64_t id : ids) db_claimed.erase(id);
    return s;
  }
  size_t i = 0;
  for (auto& [key, r] : memory) {
    if (r.token) {
      InFlight& f = in_flight.at(r.token);
      f.row = ids[i];
      f.in_memory = false;
    }
    ++i;
  }
  for (auto& [name, p] : pipelines) p.mem_rows = p.mem_bytes = 0;
  memory.clear();
  memory_bytes = 0;
  CommitDrops(victims, nullptr);
  return Status::Ok();
}

// ------------------------------------------------------------------------------------ writing

Result<AppendReport> Outbox::Impl::Append(std::span<const OutboxMessage> batch) {
  EI_RETURN_IF_ERROR(Validate(batch, opt.max_bytes));
  int64_t now = Now();
  AppendReport report;
  MaybeRecover(now);
  MaybeExpire(now, &report);
  if (batch.empty()) return report;
  if (!degraded) {
    Status s = AppendToDb(batch, &report);
    if (s.code() == Status::Code::kCorruption) {
      RecoverFromCorruption(s, now);
      if (!degraded) s = AppendToDb(batch, &report);  // once, into the fresh database
    }
    if (s.ok()) return report;
    if (!degraded) EnterDegraded(s, now);  // else the recovery already said why
  }
  AppendToMemory(batch, now, &report);
  return report;
}

Status Outbox::Impl::AppendToDb(std::span<const OutboxMessage> batch, AppendReport* report) {
  std::vector<Victim> victims;
  int64_t added = 0;
  {
    EI_ASSIGN_OR_RETURN(sqlite::Txn txn, sqlite::Txn::Begin(*db));
    for (const OutboxMessage& m : batch) {
      EI_RETURN_IF_ERROR(InsertRow(m, RowBytes(m)));
      added += RowBytes(m);
    }
    EI_RETURN_IF_ERROR(SelectVictims(TotalBytes() + added - opt.max_bytes, kNoCutoff, &victims));
    EI_RETURN_IF_ERROR(DeleteVictims(victims));
    EI_RETURN_IF_ERROR(txn.Commit());
  }
  for (const OutboxMessage& m : batch) AddRow(m.pipeline, RowBytes(m), false);
  CommitDrops(victims, report);
  return Status::Ok();
}

void Outbox::Impl::AppendToMemory(std::span<const OutboxMessage> batch, int64_t now,
                                  AppendReport* report) {
  for (const OutboxMessage& m : batch) {
    memory.emplace(next_mem_key++, MemRow{m, RowBytes(m), 0});
    AddRow(m.pipeline, RowBytes(m), true);
  }
  report->in_memory = true;
  TrimMemory(opt.max_age_ms > 0 ? now - opt.max_age_ms : kNoCutoff, report);
}

Status Outbox::Impl::InsertRow(const OutboxMessage& m, int64_t bytes) {
  return st->insert.Use()
      .BindText(1, m.pipeline)
      .Bind(2, m.sequence)
      .BindText(3, m.topic)
      .BindBlob(4, m.payload)
      .Bind(5, m.qos)
      .Bind(6, m.created_unix_ms)
      .Bind(7, bytes)
      .Run();
}

// Chooses, oldest first and skipping rows in flight, rows to drop until `excess` bytes are freed
// and no row older than `cutoff` is left at the head. Creation times are not assumed sorted:
// the age scan stops at the first fresh row, so an older row behind it waits its turn.
Status Outbox::Impl::SelectVictims(int64_t excess, int64_t cutoff, std::vector<Victim>* victims) {
  if (excess <= 0 && cutoff == kNoCutoff) return Status::Ok();
  sqlite::Stmt& q = st->oldest;
  int64_t after = 0;
  for (;;) {  // ends: `after` grows every pass and a short pass is the end of the table
    q.Use().Bind(1, after).Bind(2, kScanChunk);
    int64_t read = 0;
    for (;;) {
      EI_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      ++read;
      after = q.Int(0);
      if (IsClaimed(after)) continue;
      if (excess <= 0 && q.Int(3) >= cutoff) {
        q.Reset();
        return Status::Ok();
      }
      victims->push_back({after, std::string(q.Text(1)), q.Int(2)});
      excess -= q.Int(2);
    }
    if (read < kScanChunk) return Status::Ok();
  }
}

// Deletes the victims and persists the drop counters, inside the caller's transaction.
Status Outbox::Impl::DeleteVictims(const std::vector<Victim>& victims) {
  int64_t bytes = 0;
  for (const Victim& v : victims) {
    EI_RETURN_IF_ERROR(st->remove.Use().Bind(1, v.id).Run());
    bytes += v.bytes;
  }
  if (victims.empty() && !counters_dirty) return Status::Ok();
  return WriteCounters(static_cast<int64_t>(victims.size()), bytes);
}

Status Outbox::Impl::WriteCounters(int64_t extra_rows, int64_t extra_bytes) {
  EI_RETURN_IF_ERROR(
      st->set_meta.Use().BindText(1, "dropped_rows").Bind(2, dropped_rows + extra_rows).Run());
  return st->set_meta.Use().BindText(1, "dropped_bytes").Bind(2, dropped_bytes + extra_bytes).Run();
}

Status Outbox::Impl::PersistCounters() {
  EI_ASSIGN_OR_RETURN(sqlite::Txn txn, sqlite::Txn::Begin(*db));
  EI_RETURN_IF_ERROR(WriteCounters(0, 0));
  EI_RETURN_IF_ERROR(txn.Commit());
  counters_dirty = false;
  return Status::Ok();
}

// After the transaction that deleted the victims committed.
void Outbox::Impl::CommitDrops(const std::vector<Victim>& victims, AppendReport* report) {
  for (const Victim& v : victims) {
    auto it = pipelines.find(v.pipeline);
    if (it != pipelines.end()) RemoveRow(it, v.bytes, false);
    CountDrop(v.bytes, report);
  }
  counters_dirty = false;
}

void Outbox::Impl::MaybeExpire(int64_t now, AppendReport* report) {
  if (opt.max_age_ms <= 0 || now < next_expiry_ms) return;
  next_expiry_ms = now + kExpiryIntervalMs;
  int64_t cutoff = now - opt.max_age_ms;
  TrimMemory(cutoff, report);
  if (!db || degraded) return;  // a failing database is left alone until it recovers
  std::vector<Victim> victims;
  Status s = SelectVictims(0, cutoff, &victims);
  if (s.ok() && !victims.empty()) {
    s = [&]() -> Status {
      EI_ASSIGN_OR_RETURN(sqlite::Txn txn, sqlite::Txn::Begin(*db));
      EI_RETURN_IF_ERROR(DeleteVictims(victims));
      return txn.Commit();
    }();
  }
  if (!s.ok()) return OnDbError(s, now);
  CommitDrops(victims, report);
}

// Drops memory rows, oldest first and skipping rows in flight, while the buffer is over its
// bound or its oldest row is older than `cutoff`.
void Outbox::Impl::TrimMemory(int64_t cutoff, AppendReport* report) {
  for (auto it = memory.begin(); it != memory.end();) {  // ends: visits each row at most once
    MemRow& r = it->second;
    if (memory_bytes <= opt.memory_fallback_bytes && r.msg.created_unix_ms >= cutoff) break;
    if (r.token) {
      ++it;
      continue;
    }
    RemoveRow(pipelines.find(r.msg.pipeline), r.bytes, true);
    CountDrop(r.bytes, report);
    counters_dirty = true;
    it = memory.erase(it);
  }
}

// ----------------------------------------------------------------------------------- delivery

Status Outbox::Impl::Claim(size_t max_in_flight, std::vector<ClaimedMessage>* out) {
  int64_t now = Now();
  AppendReport expired;
  MaybeRecover(now);
  MaybeExpire(now, &expired);
  if (!undeleted.empty() && AckBatchDue(now)) DeleteUndeleted(now);  // failures: see Stats()
  if (in_flight.size() >= max_in_flight) return Status::Ok();
  size_t budget = max_in_flight - in_flight.size();
  std::vector<Pipelines::iterator> turn = TurnOrder();
  // Ends: each pass claims at least one row or takes a pipeline out of the turn.
  while (budget > 0 && !turn.empty()) {
    size_t quota = std::max<size_t>(1, budget / turn.size());
    for (size_t i = 0; i < turn.size() && budget > 0;) {
      size_t want = std::min(quota, budget);
      Result<size_t> got = ClaimFrom(turn[i], want, out);
      if (!got.ok()) {
        OnDbError(got.status(), now);
        return got.status();
      }
      budget -= *got;
      last_served = turn[i]->first;
      if (*got < want) {
        turn.erase(turn.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
  }
  return Status::Ok();
}

// Pipelines with rows to hand out, starting after the one served last, so that successive
// small claims (one per PUBACK) go round all pipelines.
std::vector<Outbox::Impl::Pipelines::iterator> Outbox::Impl::TurnOrder() {
  std::vector<Pipelines::iterator> order;
  auto start = pipelines.upper_bound(last_served);
  auto take = [&](Pipelines::iterator from, Pipelines::iterator to) {
    for (auto it = from; it != to; ++it) {
      const Pipeline& p = it->second;
      if (p.rows > p.in_flight + p.undeleted) order.push_back(it);
    }
  };
  take(start, pipelines.end());
  take(pipelines.begin(), start);
  return order;
}

// Claims up to `want` rows of one pipeline; fewer means it has no more.
Result<size_t> Outbox::Impl::ClaimFrom(Pipelines::iterator it, size_t want,
                                       std::vector<ClaimedMessage>* out) {
  const Pipeline& p = it->second;
  size_t got = 0;
  // Database rows first: any memory row of the pipeline is newer.
  if (p.rows > p.mem_rows) {
    if (!db) return got;  // unreadable now; the pipeline waits rather than skip ahead
    EI_ASSIGN_OR_RETURN(bool exhausted, ClaimFromDb(it, want, &got, out));
    if (!exhausted) return got;
  }
  if (p.mem_rows > 0) got += ClaimFromMemory(it, want - got, out);
  return got;
}

// Returns whether the pipeline's database rows are exhausted.
Result<bool> Outbox::Impl::ClaimFromDb(Pipelines::iterator it, size_t want, size_t* got,
                                       std::vector<ClaimedMessage>* out) {
  Pipeline& p = it->second;
  sqlite::Stmt& q = st->claim;
  for (;;) {  // ends: the cursor grows every pass and a short pass is the end of the rows
    int64_t limit = static_cast<int64_t>(want - *got);
    q.Use().BindText(1, it->first).Bind(2, p.cursor).Bind(3, limit);
    int64_t read = 0;
    for (;;) {
      EI_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      ++read;
      int64_t id = q.Int(0);
      p.cursor = id;
      if (IsClaimed(id)) continue;
      OutboxMessage m{it->first,
                      std::string(q.Text(2)),
                      std::string(q.Blob(3)),
                      static_cast<int>(q.Int(4)),
                      q.Int(5),
                      q.Int(1)};
      int64_t token = next_token++;
      in_flight.emplace(token, InFlight{it, id, false, q.Int(6)});
      db_claimed.insert(id);
      ++p.in_flight;
      out->push_back({token, std::move(m)});
      ++*got;
    }
    if (read < limit) return true;
    if (*got == want) return false;
  }
}

size_t Outbox::Impl::ClaimFromMemory(Pipelines::iterator it, size_t want,
                                     std::vector<ClaimedMessage>* out) {
  size_t got = 0;
  for (auto& [key, r] : memory) {
    if (got == want) break;
    if (r.token || r.msg.pipeline != it->first) continue;
    r.token = next_token++;
    in_flight.emplace(r.token, InFlight{it, key, true, r.bytes});
    ++it->second.in_flight;
    out->push_back({r.token, r.msg});
    ++got;
  }
  return got;
}

Status Outbox::Impl::Ack(std::span<const int64_t> ids) {
  int64_t now = Now();
  MaybeRecover(now);
  if (undeleted.empty()) undeleted_since_ms = now;
  for (int64_t id : ids) {
    auto f = in_flight.find(id);
    if (f == in_flight.end()) continue;  // duplicate, late or unknown: nothing to do
    InFlight x = f->second;
    in_flight.erase(f);
    --x.p->second.in_flight;
    if (x.in_memory) {
      memory.erase(x.row);
      RemoveRow(x.p, x.bytes, true);
    } else {
      db_claimed.erase(x.row);
      undeleted.emplace(x.row, Undeleted{x.p, x.bytes});
      ++x.p->second.undeleted;
    }
  }
  return AckBatchDue(now) ? DeleteUndeleted(now) : Status::Ok();
}

// Deletes every acked database row in one transaction; on failure they stay marked delivered.
Status Outbox::Impl::DeleteUndeleted(int64_t now) {
  if (undeleted.empty() || !db) return Status::Ok();
  Status s = [&]() -> Status {
    EI_ASSIGN_OR_RETURN(sqlite::Txn txn, sqlite::Txn::Begin(*db));
    for (const auto& [id, u] : undeleted) {
      EI_RETURN_IF_ERROR(st->remove.Use().Bind(1, id).Run());
    }
    return txn.Commit();
  }();
  if (!s.ok()) {
    OnDbError(s, now);
    return s;
  }
  for (auto& [id, u] : undeleted) {
    --u.p->second.undeleted;
    RemoveRow(u.p, u.bytes, false);
  }
  undeleted.clear();
  return Status::Ok();
}

void Outbox::Impl::Release() {
  in_flight.clear();
  db_claimed.clear();
  for (auto& [key, r] : memory) r.token = 0;
  for (auto it = pipelines.begin(); it != pipelines.end();) {
    it->second.in_flight = it->second.cursor = 0;
    auto next = std::next(it);
    EraseIfEmpty(it);
    it = next;
  }
}

// -------------------------------------------------------------------------------- bookkeeping

int64_t Outbox::Impl::TotalBytes() const {
  int64_t n = 0;
  for (const auto& [name, p] : pipelines) n += p.bytes;
  return n;
}

int64_t Outbox::Impl::TotalRows() const {
  int64_t n = 0;
  for (const auto& [name, p] : pipelines) n += p.rows;
  return n;
}

void Outbox::Impl::AddRow(const std::string& pipeline, int64_t bytes, bool in_memory) {
  Pipeline& p = pipelines[pipeline];
  ++p.rows;
  p.bytes += bytes;
  if (!in_memory) return;
  ++p.mem_rows;
  p.mem_bytes += bytes;
  memory_bytes += bytes;
}

void Outbox::Impl::RemoveRow(Pipelines::iterator it, int64_t bytes, bool in_memory) {
  if (it == pipelines.end()) return;
  Pipeline& p = it->second;
  --p.rows;
  p.bytes -= bytes;
  if (in_memory) {
    --p.mem_rows;
    p.mem_bytes -= bytes;
    memory_bytes -= bytes;
  }
  EraseIfEmpty(it);
}

// Pipelines come and go with their rows, so the map is bounded by what is stored.
void Outbox::Impl::EraseIfEmpty(Pipelines::iterator it) {
  const Pipeline& p = it->second;
  if (p.rows == 0 && p.in_flight == 0 && p.undeleted == 0) pipelines.erase(it);
}

void Outbox::Impl::CountDrop(int64_t bytes, AppendReport* report) {
  ++dropped_rows;
  dropped_bytes += bytes;
  if (!report) return;
  ++report->dropped_rows;
  report->dropped_bytes += bytes;
}

OutboxStats Outbox::Impl::Stats() const {
  OutboxStats s;
  // Acked rows awaiting their delete are delivered: not part of the depth.
  int64_t acked_bytes = 0;
  for (const auto& [id, u] : undeleted) acked_bytes += u.bytes;
  s.depth_rows = TotalRows() - static_cast<int64_t>(undeleted.size());
  s.depth_bytes = TotalBytes() - acked_bytes;
  s.in_flight_rows = static_cast<int64_t>(in_flight.size());
  s.memory_rows = static_cast<int64_t>(memory.size());
  s.memory_bytes = memory_bytes;
  s.dropped_rows = dropped_rows;
  s.dropped_bytes = dropped_bytes;
  s.fallback_events = fallback_events;
  s.corruption_events = corruption_events;
  s.degraded = degraded;
  s.last_error = last_error.ok() ? "" : last_error.ToString();
  return s;
}

// ------------------------------------------------------------------------------- public face

Result<std::unique_ptr<Outbox>> Outbox::Open(OutboxOptions options) {
  EI_RETURN_IF_ERROR(ValidateOptions(options));
  if (!options.clock) options.clock = SystemClockMs;
  auto impl = std::make_unique<Impl>(std::move(options));
  int64_t now = impl->Now();
  impl->open_status = impl->OpenOrReplace(now);
  if (!impl->db) impl->EnterDegraded(impl->open_status, now);
  return std::unique_ptr<Outbox>(new Outbox(std::move(impl)));
}

Outbox::Outbox(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Outbox::~Outbox() {
  std::lock_guard<std::mutex> lock(mu_);
  impl_->DeleteUndeleted(impl_->Now());
}

Result<AppendReport> Outbox::Append(std::span<const OutboxMessage> batch) {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_->Append(batch);
}

Status Outbox::Claim(size_t max_in_flight, std::vector<ClaimedMessage>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_->Claim(max_in_flight, out);
}

Status Outbox::Ack(std::span<const int64_t> ids) {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_->Ack(ids);
}

void Outbox::ReleaseInFlight() {
  std::lock_guard<std::mutex> lock(mu_);
  impl_->Release();
}

int64_t Outbox::ReleaseMemory() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!impl_->db) return 0;
  const int64_t before = sqlite3_memory_used();
  sqlite3_db_release_memory(impl_->db->get());
  return std::max<int64_t>(before - sqlite3_memory_used(), 0);
}

OutboxStats Outbox::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_->Stats();
}

Status Outbox::open_status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_->open_status;
}

const std::string& Outbox::db_path() const { return impl_->path; }

}  // namespace edgeinfer
