// Outbox: the durable store-and-forward queue between the result producers and the uplink.
//
// Results are appended in batches, one SQLite transaction per batch, to a WAL-mode database in
// the state directory; Claim hands them to the uplink and Ack deletes them when the broker's
// PUBACK arrives. "In flight" lives in memory only, so after a restart every undelivered row is
// handed out again: delivery is at-least-once. Rows of one pipeline are handed out in append
// order; Claim takes turns across pipelines so that one pipeline's backlog cannot starve another
// pipeline's live rows. The stored size (and optionally age) is bounded: the oldest rows go
// first, and every dropped row is counted, persisted and reported. When the database cannot be
// written (disk full, I/O error, unopenable) rows go to a bounded memory buffer, the outbox says
// so (Stats().degraded) and retries the database; a corrupt database is moved aside (the three
// newest copies kept) for inspection and a fresh one started. Design and guarantees:
// docs/outbox.md.
//
// Thread-safe: every method takes one internal mutex. Nothing waits inside except SQLite's own
// file I/O (an fsync per commit with SyncLevel::kFull).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace edgeinfer {

// PRAGMA synchronous. In WAL mode: kNormal survives a process crash (SIGKILL) but a power loss
// may lose the last commits; kFull also survives power loss (one fsync per commit); kOff
// survives a process crash only, and a power loss may corrupt the database.
enum class SyncLevel { kOff, kNormal, kFull };

struct OutboxOptions {
  std::string state_dir;  // created if missing; the database is state_dir/file_name
  std::string file_name = "outbox.db";
  SyncLevel synchronous = SyncLevel::kNormal;
  int busy_timeout_ms = 2000;
  // Bound on stored bytes (payload + topic + pipeline + a fixed per-row overhead, not the file
  // size). When exceeded, the oldest rows not in flight are dropped.
  int64_t max_bytes = int64_t{64} << 20;
  int64_t max_age_ms = 0;  // rows created longer ago are dropped; 0 = no age bound
  // Bound on rows kept in memory while the database cannot be written.
  int64_t memory_fallback_bytes = int64_t{8} << 20;
  int64_t retry_interval_ms = 5000;  // how often a degraded outbox retries the database
  // Acked rows are deleted in one transaction once this many are pending, or at the first call
  // ack_batch_ms after the oldest ack, or on destruction. Until then they are never handed out
  // again; a crash in between re-sends them (duplicates, never loss). 1 = delete on every Ack.
  int ack_batch_rows = 32;
  int64_t ack_batch_ms = 200;
  // Hard cap on the database file in pages (PRAGMA max_page_count); a write beyond it fails as on
  // a full disk. 0 = no cap. Tests use it to simulate a full disk.
  int64_t max_db_pages = 0;
  std::function<int64_t()> clock;  // Unix time in ms; empty = the system clock
};

// One result to deliver. Plain value.
struct OutboxMessage {
  std::string pipeline;  // non-empty; order is kept per pipeline
  std::string topic;     // non-empty
  std::string payload;   // bytes (binary-safe)
  int qos = 1;           // 0..2, stored for the publisher
  int64_t created_unix_ms = 0;
  int64_t sequence = 0;  // the producer's per-pipeline sequence, stored as given
};

struct ClaimedMessage {
  // Handle for Ack: unique within this Outbox object, never reused, not stored on disk. It is not
  // a deduplication key; consumers use (device, boot, sequence) from the payload.
  int64_t id = 0;
  OutboxMessage message;
};

// What one Append did besides storing the batch, for the caller to log.
struct AppendReport {
  int64_t dropped_rows = 0;  // older rows dropped to make room or for age
  int64_t dropped_bytes = 0;
  bool in_memory = false;  // the batch went to the memory fallback (the database failed)
};

struct OutboxStats {
  int64_t depth_rows = 0;  // unacked rows (database + memory), including in flight
  int64_t depth_bytes = 0;
  int64_t in_flight_rows = 0;
  int64_t memory_rows = 0;  // of depth, held in memory because the database failed
  int64_t memory_bytes = 0;
  // Cumulative since the database was created (persisted in its meta table). Counts rows dropped
  // for size, age, memory overflow, and undelivered rows left behind in a corrupt database.
  int64_t dropped_rows = 0;
  int64_t dropped_bytes = 0;
  int64_t fallback_events = 0;    // times this object switched to memory (this process)
  int64_t corruption_events = 0;  // database files moved aside (this process)
  bool degraded = false;          // appends are going to memory; the database is retried
  std::string last_error;         // the latest database problem, "" if none
};

class Outbox {
 public:
  // Opens or creates the database and resumes what it holds. Fails only for invalid options: an
  // unusable database leaves a working Outbox in memory mode (see open_status()).
  static Result<std::unique_ptr<Outbox>> Open(OutboxOptions options);
  // Commits pending deletes of acked rows (best effort).
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Stores a batch atomically (all or nothing) and enforces the bounds. Fails with
  // kInvalidArgument, storing nothing, if a message is malformed or larger than max_bytes.
  // Otherwise the batch is accepted: in the database, or in memory (report.in_memory) if the
  // database failed.
  Result<AppendReport> Append(std::span<const OutboxMessage> batch);

  // Appends rows not yet in flight to *out until max_in_flight rows are in flight, oldest first
  // within each pipeline and taking turns across pipelines, and marks them in flight. An error
  // (a database read failed) leaves what was claimed before it in *out.
  Status Claim(size_t max_in_flight, std::vector<ClaimedMessage>* out);

  // Marks delivered rows (PUBACK received) and deletes them, batched (ack_batch_rows,
  // ack_batch_ms) in one transaction. Unknown ids (already acked, released, or from before a
  // ReleaseInFlight) are ignored. If the delete fails the rows stay marked delivered in memory,
  // are retried, and the error is returned for logging only.
  Status Ack(std::span<const int64_t> ids);
  Status Ack(int64_t id) { return Ack(std::span<const int64_t>(&id, 1)); }

  // Returns every in-flight row to pending (uplink lost): the next Claim starts again from the
  // oldest row of each pipeline. Acks for the old ids are then ignored.
  void ReleaseInFlight();

  OutboxStats Stats() const;
  // Gives SQLite's page cache for this database back to the heap (sqlite3_db_release_memory),
  // for the memory watchdog; the next queries read the pages again. Returns the bytes freed.
  int64_t ReleaseMemory();
  // What happened at Open: OK, kCorruption (file moved aside, fresh database started), or the
  // error that put the Outbox in memory mode.
  Status open_status() const;
  const std::string& db_path() const;

 private:
  struct Impl;
  explicit Outbox(std::unique_ptr<Impl> impl);
  mutable std::mutex mu_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeinfer
