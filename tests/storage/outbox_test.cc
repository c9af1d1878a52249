#include "storage/outbox.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

namespace edgeinfer {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the test temp dir, removed at the end of the test.
struct TempDir {
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "/outbox_XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string path;
};

struct FakeClock {
  int64_t now = 1'700'000'000'000;
  std::function<int64_t()> Fn() {
    return [this] { return now; };
  }
};

OutboxOptions Options(const std::string& dir, FakeClock* clock = nullptr) {
  OutboxOptions o;
  o.state_dir = dir;
  if (clock) o.clock = clock->Fn();
  return o;
}

OutboxMessage Msg(const std::string& pipeline, int64_t seq, int64_t created_ms = 0,
                  size_t payload_bytes = 20) {
  OutboxMessage m;
  m.pipeline = pipeline;
  m.topic = "edgeinfer/dev1/results/" + pipeline;
  m.payload = std::string(payload_bytes, 'x');
  m.created_unix_ms = created_ms;
  m.sequence = seq;
  return m;
}

std::vector<OutboxMessage> Batch(const std::string& pipeline, int64_t first, int64_t n,
                                 int64_t created_ms = 0, size_t payload_bytes = 20) {
  std::vector<OutboxMessage> b;
  for (int64_t i = 0; i < n; ++i) b.push_back(Msg(pipeline, first + i, created_ms, payload_bytes));
  return b;
}

std::unique_ptr<Outbox> OpenOutbox(const OutboxOptions& o) {
  Result<std::unique_ptr<Outbox>> r = Outbox::Open(o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

AppendReport AppendOk(Outbox& ob, const std::vector<OutboxMessage>& batch) {
  Result<AppendReport> r = ob.Append(batch);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : AppendReport{};
}

std::vector<ClaimedMessage> ClaimOk(Outbox& ob, size_t window) {
  std::vector<ClaimedMessage> out;
  Status s = ob.Claim(window, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

void AckAll(Outbox& ob, const std::vector<ClaimedMessage>& claimed) {
  std::vector<int64_t> ids;
  for (const ClaimedMessage& c : claimed) ids.push_back(c.id);
  Status s = ob.Ack(ids);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// Claims and acks until nothing is left; returns everything in hand-out order.
std::vector<ClaimedMessage> DrainAll(Outbox& ob, size_t window = 256) {
  std::vector<ClaimedMessage> all;
  for (int round = 0; round < 100000; ++round) {
    std::vector<ClaimedMessage> got = ClaimOk(ob, window);
    if (got.empty()) break;
    AckAll(ob, got);
    all.insert(all.end(), got.begin(), got.end());
  }
  return all;
}

std::vector<int64_t> Seqs(const std::vector<ClaimedMessage>& v, const std::string& pipeline) {
  std::vector<int64_t> s;
  for (const ClaimedMessage& c : v) {
    if (c.message.pipeline == pipeline) s.push_back(c.message.sequence);
  }
  return s;
}

std::vector<int64_t> Range(int64_t first, int64_t end) {
  std::vector<int64_t> r;
  for (int64_t i = first; i < end; ++i) r.push_back(i);
  return r;
}

// The accounted size of one Msg(), measured rather than assumed.
int64_t RowBytesOf(const OutboxMessage& m) {
  TempDir dir;
  auto ob = OpenOutbox(Options(dir.path));
  AppendOk(*ob, {m});
  return ob->Stats().depth_bytes;
}

void Overwrite(const std::string& path, int64_t offset, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string junk(static_cast<size_t>(n), '\0');
  for (char& c : junk) c = static_cast<char>(rng());
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.is_open()) << path;
  f.seekp(offset);
  f.write(junk.data(), n);
}

int CountCorruptCopies(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename();
    if (name.find(".corrupt-") != std::string::npos && name.find("-wal") == std::string::npos &&
        name.find("-shm") == std::string::npos) {
      ++n;
    }
  }
  return n;
}

TEST(OutboxTest, ClaimKeepsPerPipelineOrderAndTakesTurns) {
  TempDir dir;
  auto ob = OpenOutbox(Options(dir.path));
  for (int64_t i = 0; i < 20; i += 4) {
    std::vector<OutboxMessage> batch = Batch("a", i, 4);
    std::vector<OutboxMessage> b = Batch("b", i, 4);
    batch.insert(batch.end(), b.begin(), b.end());
    AppendOk(*ob, batch);
  }
  std::vector<ClaimedMessage> all;
  for (int round = 0; round < 100; ++round) {
    std::vector<ClaimedMessage> got = ClaimOk(*ob, 4);
    if (got.empty()) break;
    if (round == 0) {  // a window of 4 is shared by both pipelines
      EXPECT_EQ(Seqs(got, "a").size(), 2u);
      EXPECT_EQ(Seqs(got, "b").size(), 2u);
    }
    std::reverse(got.begin(), got.end());  // PUBACKs may come in any order
    AckAll(*ob, got);
    all.insert(all.end(), got.begin(), got.end());
  }
  std::vector<int64_t> a = Seqs(all, "a"), b = Seqs(all, "b");
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, Range(0, 20));
  EXPECT_EQ(b, Range(0, 20));
  EXPECT_EQ(ob->Stats().depth_rows, 0);
}

TEST(OutboxTest, BacklogDoesNotStarveAnotherPipeline) {
  TempDir dir;
  auto ob = OpenOutbox(Options(dir.path));
  for (int64_t i = 0; i < 1000; i += 16) AppendOk(*ob, Batch("backlog", i, 16));
  AppendOk(*ob, Batch("live", 0, 3));
  std::vector<ClaimedMessage> got = ClaimOk(*ob, 8);
  ASSERT_EQ(got.size(), 8u);
  EXPECT_EQ(Seqs(got, "live"), Range(0, 3));
  EXPECT_EQ(Seqs(got, "backlog"), Range(0, 5));
  // One row per PUBACK: the turn goes round the pipelines.
  AckAll(*ob, got);
  AppendOk(*ob, Batch("live", 3, 2));
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    std::vector<ClaimedMessage> one = ClaimOk(*ob, 1);
    ASSERT_EQ(one.size(), 1u);
    order.push_back(one[0].message.pipeline);
    AckAll(*ob, one);
  }
  for (size_t i = 1; i < order.size(); ++i) EXPECT_NE(order[i], order[i - 1]) << i;
}

TEST(OutboxTest, InFlightRowsAreNotHandedOutTwice) {
  TempDir dir;
  auto ob = OpenOutbox(Options(dir.path));
  AppendOk(*ob, Batch("p", 0, 10));
  std::vector<ClaimedMessage> first = ClaimOk(*ob, 4);
  EXPECT_EQ(Seqs(first, "p"), Range(0, 4));
  EXPECT_TRUE(ClaimOk(*ob, 4).empty());
  AckAll(*ob, {first[1], first[0]});
  EXPECT_EQ(Seqs(ClaimOk(*ob, 4), "p"), Range(4, 6));
  EXPECT_EQ(ob->Stats().in_flight_rows, 4);
  EXPECT_EQ(ob->Stats().depth_rows, 8);
}

TEST(OutboxTest, ReleaseInFlightHandsRowsOutAgainInOrder) {
  TempDir dir;
  auto ob = OpenOutbox(Options(dir.path));
  AppendOk(*ob, Batch("p", 0, 6));
  std::vector<ClaimedMessage> first = ClaimOk(*ob, 4);
  AckAll(*ob, {first[0]});
  ob->ReleaseInFlight();
  EXPECT_EQ(ob->Stats().in_flight_rows, 0);
  EXPECT_EQ(Seqs(ClaimOk(*ob, 10), "p"), Range(1, 6));
  // A PUBACK for a message sent before the release: ignored, the row is in flight again.
  AckAll(*ob, {first[1]});
  EXPECT_EQ(ob->Stats().depth_rows, 5);
}

TEST(OutboxTest, ClaimedButUnackedRowsComeBackAfterReopen) {
  TempDir dir;
  {
    auto ob = OpenOutbox(Options(dir.path));
    AppendOk(*ob, Batch("p", 0, 10));
    std::vector<ClaimedMessage> got = ClaimOk(*ob, 6);
    AckAll(*ob, {got[0], got[1], got[2]});
  }  // as after a crash: in-flight marks are not on disk
  auto ob = OpenOutbox(Options(dir.path));
  EXPECT_TRUE(ob->open_status().ok()) << ob->open_status().ToString();
  EXPECT_EQ(ob->Stats().depth_rows, 7);
  EXPECT_EQ(Seqs(DrainAll(*ob), "p"), Range(3, 10));
}

TEST(OutboxTest, SizeBoundDropsExactlyTheOldestAndCountsPersist) {
  TempDir dir;
  const int64_t row = RowBytesOf(Msg("p", 0));
  OutboxOptions o = Options(dir.path);
  o.max_bytes = 100 * row;
  int64_t reported_rows = 0, reported_bytes = 0;
  {
    auto ob = OpenOutbox(o);
    for (int64_t i = 0; i < 250; i += 16) {
      AppendReport r = AppendOk(*ob, Batch("p", i, std::min<int64_t>(16, 250 - i)));
      reported_rows += r.dropped_rows;
      reported_bytes += r.dropped_bytes;
    }
    OutboxStats s = ob->Stats();
    EXPECT_EQ(s.depth_rows, 100);
    EXPECT_EQ(s.dropped_rows, 150);
    EXPECT_EQ(s.dropped_bytes, 150 * row);
  }
  EXPECT_EQ(reported_rows, 150);
  EXPECT_EQ(reported_bytes, 150 * row);
  auto ob = OpenOutbox(o);
  OutboxStats s = ob->Stats();
  EXPECT_EQ(s.dropped_rows, 150);  // persisted in the meta table
  EXPECT_EQ(s.dropped_bytes, 150 * row);
  EXPECT_EQ(s.depth_bytes, 100 * row);
  EXPECT_EQ(Seqs(DrainAll(*ob), "p"), Range(150, 250));  // the missing ids are the dropped ones
}

TEST(OutboxTest, SizeBoundSparesRowsInFlight) {
  TempDir dir;
  OutboxOptions o = Options(dir.path);
  o.max_bytes = 10 * RowBytesOf(Msg("p", 0));
  auto ob = OpenOutbox(o);
  AppendOk(*ob, Batch("p", 0, 10));
  std::vector<ClaimedMessage> sent = ClaimOk(*ob, 3);
  AppendReport r = AppendOk(*ob, Batch("p", 10, 5));
  EXPECT_EQ(r.dropped_rows, 5);  // 3..7, not the rows on the wire
  AckAll(*ob, sent);
  EXPECT_EQ(Seqs(DrainAll(*ob), "p"), Range(8, 15));
}

TEST(OutboxTest, MaxAgeDropsStaleRows) {
  TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir.path, &clock);
  o.max_age_ms = 60'000;
  auto ob = OpenOutbox(o);
  AppendOk(*ob, Batch("p", 0, 5, clock.now));
  clock.now += 30'000;
  AppendOk(*ob, Batch("p", 5, 2, clock.now));
  clock.now += 31'000;  // the first five are now 61 s old, the next two 31 s
  AppendReport r = AppendOk(*ob, Batch("p", 7, 3, clock.now));
  EXPECT_EQ(r.dropped_rows, 5);
  clock.now += 30'000;  // 7 and 8 expire at the next claim
  EXPECT_EQ(Seqs(DrainAll(*ob), "p"), Range(7, 10));
  EXPECT_EQ(ob->Stats().dropped_rows, 7);
}

// The child appends batches of 16 and reports each batch index after Append returned OK.
int AppendUntilKilled(const std::string& dir, int fd) {
  Result<std::unique_ptr<Outbox>> ob = Outbox::Open(Options(dir));
  if (!ob.ok()) return 2;
  for (int64_t b = 0; b < 1'000'000; ++b) {
    if (!(*ob)->Append(Batch("p", b * 16, 16)).ok()) return 3;
    if (::write(fd, &b, sizeof b) != sizeof b) return 4;
  }
  return 0;
}

// Reads confirmed batch indexes until `want` arrived, EOF, or a 20 s silence; returns the last.
int64_t ReadConfirmations(int fd, int64_t want, int64_t last) {
  for (int64_t n = 0; n < want; ++n) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20'000) <= 0) break;
    int64_t b = 0;
    if (::read(fd, &b, sizeof b) != sizeof b) break;
    last = b;
  }
  return last;
}

TEST(OutboxTest, RowsSurviveSigkillMidAppend) {
  TempDir dir;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::_exit(AppendUntilKilled(dir.path, fds[1]));
  }
  ::close(fds[1]);
  int64_t last = ReadConfirmations(fds[0], 300, -1);  // well into the stream
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  last = ReadConfirmations(fds[0], 1'000'000, last);  // what it confirmed before dying
  ::close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  ASSERT_GE(last, 299);

  auto ob = OpenOutbox(Options(dir.path));
  EXPECT_TRUE(ob->open_status().ok()) << ob->open_status().ToString();
  std::vector<int64_t> seqs = Seqs(DrainAll(*ob, 1024), "p");
  // Every confirmed batch is there; batches are all-or-nothing, so no holes and no half batch.
  ASSERT_GE(static_cast<int64_t>(seqs.size()), (last + 1) * 16);
  EXPECT_EQ(seqs.size() % 16, 0u);
  EXPECT_EQ(seqs, Range(0, static_cast<int64_t>(seqs.size())));
}

TEST(OutboxTest, GarbageFileIsMovedAsideAndFreshDatabaseWorks) {
  TempDir dir;
  std::string db;
  {
    auto ob = OpenOutbox(Options(dir.path));
    AppendOk(*ob, Batch("p", 0, 50));
    db = ob->db_path();
  }
  Overwrite(db, 0, static_cast<int64_t>(fs::file_size(db)), 1);
  auto ob = OpenOutbox(Options(dir.path));
  EXPECT_EQ(ob->open_status().code(), Status::Code::kCorruption);
  EXPECT_NE(ob->open_status().message().find("moved aside"), std::string::npos)
      << ob->open_status().ToString();
  EXPECT_EQ(ob->Stats().corruption_events, 1);
  EXPECT_FALSE(ob->Stats().degraded);
  EXPECT_EQ(CountCorruptCopies(dir.path), 1);
  AppendOk(*ob, Batch("p", 100, 3));
  EXPECT_EQ(Seqs(DrainAll(*ob), "p"), Range(100, 103));
}

// A device whose disk keeps corrupting the outbox must not fill up with kept copies.
TEST(OutboxTest, KeepsOnlyTheThreeNewestCorruptCopies) {
  TempDir dir;
  std::vector<std::string> kept;
  for (int round = 0; round < 5; ++round) {
    std::string db;
    {
      auto ob = OpenOutbox(Options(dir.path));
      AppendOk(*ob, Batch("p", round * 10, 10));
      db = ob->db_path();
    }
    Overwrite(db, 0, static_cast<int64_t>(fs::file_size(db)), 10 + round);
    auto ob = OpenOutbox(Options(dir.path));
    ASSERT_EQ(ob->open_status().code(), Status::Code::kCorruption) << round;
    const std::string msg = ob->open_status().message();
    const size_t at = msg.find("moved aside to '");
    ASSERT_NE(at, std::string::npos) << msg;
    const size_t from = at + std::string("moved aside to '").size();
    kept.push_back(msg.substr(from, msg.find('\'', from) - from));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // distinct tags, in order
  }
  EXPECT_EQ(CountCorruptCopies(dir.path), 3);
  for (size_t i = 0; i < kept.size(); ++i)
    EXPECT_EQ(fs::exists(kept[i]), i >= 2) << kept[i];  // the two oldest went
}

TEST(OutboxTest, DamagedPageIsCaughtByQuickCheckAtOpen) {
  TempDir dir;
  std::string db;
  {
    auto ob = OpenOutbox(Options(dir.path));
    for (int64_t i = 0; i < 400; i += 16) AppendOk(*ob, Batch("p", i, 16, 0, 300));
    db = ob->db_path();
  }
  ASSERT_GT(fs::file_size(db), 20u * 4096);
  Overwrite(db, 4 * 4096, 8 * 4096, 2);  // the header is intact: only quick_check can tell
  auto ob = OpenOutbox(Options(dir.path));
  EXPECT_EQ(ob->open_status().code(), Status::Code::kCorruption) << ob->open_status().ToString();
  EXPECT_EQ(CountCorruptCopies(dir.path), 1);
  AppendOk(*ob, Batch("p", 0, 2));
  EXPECT_EQ(Seqs(DrainAll(*ob), "p"), Range(0, 2));
}

TEST(OutboxTest, CorruptionWhileRunningMovesAsideAndKeepsRunning) {
  TempDir dir;
  auto ob = OpenOutbox(Options(dir.path));
  // 8 MB of rows: past the page cache and past a WAL checkpoint, so reads hit the file.
  for (int64_t i = 0; i < 8000; i += 16) AppendOk(*ob, Batch("p", i, 16, 0, 1000));
  Overwrite(ob->db_path(), 2 * 4096, 400 * 4096, 3);
  std::vector<ClaimedMessage> got;
  Status s = ob->Claim(8000, &got);
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  OutboxStats st = ob->Stats();
  EXPECT_EQ(st.corruption_events, 1);
  EXPECT_EQ(st.depth_rows, 0);
  EXPECT_EQ(st.dropped_rows, 8000);  // what stayed in the kept file is counted, not silent
  EXPECT_NE(st.last_error.find("moved aside"), std::string::npos) << st.last_error;
  AppendOk(*ob, Batch("p", 8000, 4));
  EXPECT_EQ(Seqs(DrainAll(*ob), "p"), Range(8000, 8004));
  EXPECT_EQ(CountCorruptCopies(dir.path), 1);
}

TEST(OutboxTest, UnopenableDatabaseFallsBackToMemoryAndRecovers) {
  TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir.path, &clock);
  fs::create_directory(dir.path + "/outbox.db");  // a directory where the file should be
  auto ob = OpenOutbox(o);
  EXPECT_FALSE(ob->open_status().ok());
  EXPECT_TRUE(ob->Stats().degraded);
  EXPECT_EQ(ob->Stats().fallback_events, 1);
  EXPECT_FALSE(ob->Stats().last_error.empty());
  for (int64_t i = 0; i < 30; i += 10) EXPECT_TRUE(AppendOk(*ob, Batch("p", i, 10)).in_memory);
  std::vector<ClaimedMessage> sent = ClaimOk(*ob, 2);  // delivery goes on from memory
  EXPECT_EQ(Seqs(sent, "p"), Range(0, 2));
  AckAll(*ob, {sent[0]});

  fs::remove(dir.path + "/outbox.db");
  clock.now += o.retry_interval_ms;
  EXPECT_FALSE(AppendOk(*ob, Batch("p", 30, 2)).in_memory);
  OutboxStats s = ob->Stats();
  EXPECT_FALSE(s.degraded);
  EXPECT_EQ(s.memory_rows, 0);
  EXPECT_EQ(s.depth_rows, 31);
  AckAll(*ob, {sent[1]});  // claimed from memory, acked after the move to disk
  ob.reset();
  auto again = OpenOutbox(o);
  EXPECT_EQ(Seqs(DrainAll(*again), "p"), Range(2, 32));
}

TEST(OutboxTest, DiskFullFallsBackToMemoryAndLosesNothing) {
  TempDir dir;
  FakeClock clock;
  OutboxOptions o = Options(dir.path, &clock);
  o.max_db_pages = 64;  // SQLITE_FULL as on a full disk
  int64_t next = 0;
  {
    auto ob = OpenOutbox(o);
    bool full = false;
    for (int i = 0; i < 1000 && !full; ++i, next += 16) {
      full = AppendOk(*ob, Batch("p", next, 16, 0, 1000)).in_memory;
    }
    ASSERT_TRUE(full);
    AppendOk(*ob, Batch("p", next, 16, 0, 1000));
    next += 16;
    OutboxStats s = ob->Stats();
    EXPECT_TRUE(s.degraded);
    EXPECT_EQ(s.fallback_events, 1);
    EXPECT_EQ(s.memory_rows, 32);
    EXPECT_NE(s.last_error.find("full"), std::string::npos) << s.last_error;
    EXPECT_EQ(s.dropped_rows, 0);
    // Delivering frees pages; the retry then moves the memory rows to disk.
    AckAll(*ob, ClaimOk(*ob, 128));
    clock.now += o.retry_interval_ms;
    EXPECT_FALSE(AppendOk(*ob, Batch("p", next, 1, 0, 1000)).in_memory);
    next += 1;
    EXPECT_FALSE(ob->Stats().degraded);
    EXPECT_EQ(ob->Stats().memory_rows, 0);
  }
  auto ob = OpenOutbox(o);
  EXPECT_EQ(Seqs(DrainAll(*ob), "p"), Range(128, next));
}

TEST(OutboxTest, MemoryFallbackIsBoundedAndCountsDrops) {
  TempDir dir;
  OutboxOptions o = Options(dir.path);
  o.memory_fallback_bytes = 10 * RowBytesOf(Msg("p", 0));
  fs::create_directory(dir.path + "/outbox.db");
  auto ob = OpenOutbox(o);
  int64_t dropped = 0;
  for (int64_t i = 0; i < 30; i += 5) dropped += AppendOk(*ob, Batch("p", i, 5)).dropped_rows;
  EXPECT_EQ(dropped, 20);
  EXPECT_EQ(ob->Stats().memory_rows, 10);
  EXPECT_EQ(ob->Stats().dropped_rows, 20);
  EXPECT_EQ(Seqs(DrainAll(*ob), "p"), Range(20, 30));
}

TEST(OutboxTest, StateDirUnderProcRunsInMemory) {
  auto ob = OpenOutbox(Options("/proc/self/edgeinfer-outbox-test"));
  EXPECT_FALSE(ob->open_status().ok());
  EXPECT_TRUE(ob->Stats().degraded);
  EXPECT_TRUE(AppendOk(*ob, Batch("p", 0, 4)).in_memory);
  EXPECT_EQ(Seqs(DrainAll(*ob), "p"), Range(0, 4));
}

TEST(OutboxTest, InvalidBatchIsRejectedWhole) {
  TempDir dir;
  OutboxOptions o = Options(dir.path);
  o.max_bytes = 4096;
  auto ob = OpenOutbox(o);
  std::vector<OutboxMessage> batch = Batch("p", 0, 3);
  batch[1].topic.clear();
  EXPECT_EQ(ob->Append(batch).status().code(), Status::Code::kInvalidArgument);
  batch[1] = Msg("p", 1);
  batch[2].qos = 3;
  EXPECT_EQ(ob->Append(batch).status().code(), Status::Code::kInvalidArgument);
  batch[2] = Msg("p", 2, 0, 5000);
  EXPECT_EQ(ob->Append(batch).status().code(), Status::Code::kInvalidArgument);
  batch[2] = Msg("", 2);
  EXPECT_EQ(ob->Append(batch).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ob->Stats().depth_rows, 0);
}

TEST(OutboxTest, InvalidOptionsAreRefused) {
  EXPECT_FALSE(Outbox::Open(OutboxOptions{}).ok());
  TempDir dir;
  OutboxOptions o = Options(dir.path);
  o.max_bytes = 0;
  EXPECT_EQ(Outbox::Open(o).status().code(), Status::Code::kInvalidArgument);
  o = Options(dir.path);
  o.file_name = "a/b.db";
  EXPECT_EQ(Outbox::Open(o).status().code(), Status::Code::kInvalidArgument);
}

TEST(OutboxTest, UnknownAndRepeatedAcksAreIgnored) {
  TempDir dir;
  auto ob = OpenOutbox(Options(dir.path));
  AppendOk(*ob, Batch("p", 0, 3));
  std::vector<ClaimedMessage> got = ClaimOk(*ob, 3);
  AckAll(*ob, {got[0]});
  AckAll(*ob, {got[0]});
  EXPECT_TRUE(ob->Ack(123456).ok());
  EXPECT_EQ(ob->Stats().depth_rows, 2);
  EXPECT_EQ(ob->Stats().in_flight_rows, 2);
}

TEST(OutboxTest, EverySynchronousLevelStoresAndResumes) {
  for (SyncLevel level : {SyncLevel::kOff, SyncLevel::kNormal, SyncLevel::kFull}) {
    TempDir dir;
    OutboxOptions o = Options(dir.path);
    o.synchronous = level;
    OpenOutbox(o)->Append(Batch("p", 0, 16));
    auto ob = OpenOutbox(o);
    EXPECT_EQ(Seqs(DrainAll(*ob), "p"), Range(0, 16)) << static_cast<int>(level);
  }
}

TEST(OutboxTest, ConcurrentAppendAndDeliveryKeepOrder) {
  TempDir dir;
  auto ob = OpenOutbox(Options(dir.path));
  constexpr int64_t kRows = 4000;
  std::atomic<bool> done{false};
  std::thread producer([&] {
    for (int64_t i = 0; i < kRows; i += 8) {
      std::vector<OutboxMessage> batch = Batch("a", i, 8);
      std::vector<OutboxMessage> b = Batch("b", i, 8);
      batch.insert(batch.end(), b.begin(), b.end());
      EXPECT_TRUE(ob->Append(batch).ok());
    }
    done = true;
  });
  std::vector<ClaimedMessage> all;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (static_cast<int64_t>(all.size()) < 2 * kRows &&
         std::chrono::steady_clock::now() < deadline) {
    std::vector<ClaimedMessage> got = ClaimOk(*ob, 32);
    if (got.empty() && !done) std::this_thread::yield();
    AckAll(*ob, got);
    all.insert(all.end(), got.begin(), got.end());
  }
  producer.join();
  EXPECT_EQ(Seqs(all, "a"), Range(0, kRows));  // hand-out order is per-pipeline order
  EXPECT_EQ(Seqs(all, "b"), Range(0, kRows));
}

// Figures, not assertions on time: a slow machine must not fail the suite.
// EDGEINFER_OUTBOX_BENCH_ROWS scales it (default 32000).
TEST(OutboxPerfTest, PrintsAppendAndReplayRates) {
  const char* env = std::getenv("EDGEINFER_OUTBOX_BENCH_ROWS");
  const int64_t base_rows = env ? std::max<int64_t>(16, std::atoll(env)) : 32000;
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  for (SyncLevel level : {SyncLevel::kNormal, SyncLevel::kFull}) {
    const int64_t wanted = level == SyncLevel::kFull ? base_rows / 4 : base_rows;
    const int64_t rows = std::max<int64_t>(16, wanted / 16 * 16);  // whole batches
    TempDir dir;
    OutboxOptions o = Options(dir.path);
    o.synchronous = level;
    o.max_bytes = int64_t{1} << 30;
    auto ob = OpenOutbox(o);
    auto t0 = Clock::now();
    for (int64_t i = 0; i < rows; i += 16) AppendOk(*ob, Batch(i % 32 ? "a" : "b", i, 16, 0, 200));
    double append_s = seconds(t0);
    t0 = Clock::now();
    int64_t replayed = static_cast<int64_t>(DrainAll(*ob, 256).size());
    double replay_s = seconds(t0);
    EXPECT_EQ(replayed, rows);
    std::printf(
        "[outbox %s] append %lld rows in batches of 16: %.0f rows/s; "
        "claim(256)+ack(batch) replay: %.0f rows/s\n",
        level == SyncLevel::kFull ? "FULL" : "NORMAL", static_cast<long long>(rows),
        rows / append_s, replayed / replay_s);
    if (level != SyncLevel::kNormal) continue;
    // The live pattern: a window of 64, one Ack per PUBACK, one Claim to refill.
    for (int64_t i = 0; i < rows; i += 16) AppendOk(*ob, Batch("a", i, 16, 0, 200));
    t0 = Clock::now();
    std::vector<ClaimedMessage> window = ClaimOk(*ob, 64);
    int64_t acked = 0;
    for (size_t k = 0; k < window.size() && acked < rows; ++k, ++acked) {
      EXPECT_TRUE(ob->Ack(window[k].id).ok());
      std::vector<ClaimedMessage> more = ClaimOk(*ob, 64);
      window.insert(window.end(), more.begin(), more.end());
    }
    std::printf("[outbox NORMAL] window 64, ack one + claim per PUBACK: %.0f rows/s\n",
                acked / seconds(t0));
    EXPECT_EQ(acked, rows);
  }
}

}  // namespace
}  // namespace edgeinfer
