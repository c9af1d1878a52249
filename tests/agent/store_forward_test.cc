// Store-and-forward end to end (issue 5): the edgeinfer-agent binary between two real Mosquitto
// brokers on loopback, the *source* (sensors) and the *uplink* (results). Sensors are published
// at a steady rate by an in-test Paho client; results are read on the uplink by mosquitto_sub.
// The uplink goes away (stopped, or cut by a TCP proxy in this file), the agent is SIGKILLed,
// the outbox is bounded, corrupt or unwritable: every result either arrives (at least once, in
// order per pipeline) or is counted as dropped. Every wait is bounded.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "agent/config.h"
#include "agent/outbox_publisher.h"
#include "tests/agent/agent_process.h"
#include "tests/agent/mosquitto_fixture.h"

namespace edgeinfer::agent {
namespace {

namespace fs = std::filesystem;
using testing_agent::AgentProcess;
using testing_agent::InputMessage;
using testing_agent::kModel;
using testing_mqtt::Clock;
using testing_mqtt::Millis;
using testing_mqtt::MosquittoBroker;
using testing_mqtt::MosquittoSubscriber;
using testing_mqtt::ReadFile;
using testing_mqtt::WaitFor;
using Json = nlohmann::json;

constexpr char kSensorTopic[] = "sensors/m1/vibration";

// ---- the agent --------------------------------------------------------------------------------

// The agent with one pipeline "vib" on kSensorTopic (one message is one model input), telemetry
// every second, quick reconnects.
class Agent : public AgentProcess {
 public:
  Agent(const std::string& source_uri, const std::string& sink_uri, const std::string& extra = "")
      : AgentProcess("sf") {
    SetConfig(source_uri, sink_uri, extra);
  }

  // `extra` goes before [[pipeline]]: top-level tables such as [outbox].
  void SetConfig(const std::string& source_uri, const std::string& sink_uri,
                 const std::string& extra) {
    const std::string config =
        "[device]\nid = \"dev\"\nstate_dir = \"" + state_dir().string() + "\"\n" +
        "[source]\nuri = \"" + source_uri + "\"\nreconnect_min_ms = 50\nreconnect_max_ms = 500\n" +
        "[sink]\nuri = \"" + sink_uri + "\"\nreconnect_min_ms = 10\nreconnect_max_ms = 200\n" +
        "[telemetry]\ninterval_s = 1\n" + extra + "[[pipeline]]\nname = \"vib\"\nmodel = \"" +
        kModel + "\"\ntopics = [\"" + kSensorTopic + "\"]\n" +
        "[pipeline.input]\ntimestamp = \"/ts\"\nwindow = 0\n" +
        "[pipeline.batch]\nmax_size = 8\ntimeout_ms = 5\n";
    WriteConfig(config);
  }
};

// One SQL integer from the agent's outbox (read-only; WAL lets it read while the agent
// writes). -1 when the database cannot be read.
int64_t QueryOutbox(const fs::path& state_dir, const char* sql) {
  sqlite3* db = nullptr;
  int64_t v = -1;
  const std::string path = (state_dir / "outbox.db").string();
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 1000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

// ---- sensors ----------------------------------------------------------------------------------

// Publishes sensor messages with ts 0, 1, 2, ... (QoS 1, each acknowledged by the source broker
// before the next): at `per_second` from its own thread between Start() and Stop(), and in
// bursts from the caller's thread (Burst) at any time.
class Sensors {
 public:
  Sensors(const std::string& uri, int per_second) : client_(uri, "sf-sensors"), rate_(per_second) {}
  ~Sensors() {
    Stop();
    try {
      if (client_.is_connected()) client_.disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const mqtt::exception&) {
    }
  }

  bool Start() {
    try {
      client_.connect()->wait_for(std::chrono::seconds(10));
    } catch (const mqtt::exception&) {
      return false;
    }
    if (!client_.is_connected()) return false;
    thread_ = std::thread([this] { Loop(); });
    return true;
  }
  // Stops the steady stream; Burst still works.
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Messages acknowledged by the broker: ts 0 .. sent()-1.
  int64_t sent() const { return sent_.load(); }
  // Publishes `n` more at once (between Stop()ped phases too).
  bool Burst(int n) {
    for (int i = 0; i < n; ++i) {
      if (!PublishOne()) return false;
    }
    return true;
  }

 private:
  bool PublishOne() {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      auto msg =
          mqtt::make_message(kSensorTopic, InputMessage(sent_.load(), /*ts=*/true), 1, false);
      if (!client_.publish(msg)->wait_for(std::chrono::seconds(5))) return false;
    } catch (const mqtt::exception&) {
      return false;
    }
    ++sent_;
    return true;
  }
  void Loop() {
    const auto period = std::chrono::microseconds(1000000 / rate_);
    auto next = Clock::now();
    while (!stop_) {
      PublishOne();
      next += period;
      std::this_thread::sleep_until(next);
    }
  }

  mqtt::async_client client_;
  const int rate_;
  std::mutex mu_;  // one publish at a time: ts values are consecutive
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> sent_{0};
  std::thread thread_;
};

// ---- results ----------------------------------------------------------------------------------

struct Result {
  std::string boot;
  int64_t sequence = 0;
  int64_t ts = -1;
};

// Results in arrival order (readiness probes and anything else left out).
std::vector<Result> Results(MosquittoSubscriber& sub) {
  std::vector<Result> out;
  for (const std::string& m : sub.Messages()) {
    const size_t sp = m.find(' ');
    Json j = Json::parse(m.substr(sp + 1), nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("sequence") || !j.contains("ts")) continue;
    out.push_back({j.value("boot_id", ""), j.value("sequence", int64_t{0}),
                   j["ts"].is_number_integer() ? j["ts"].get<int64_t>() : -1});
  }
  return out;
}

// The sensor timestamps that have a result.
std::set<int64_t> TsSeen(MosquittoSubscriber& sub) {
  std::set<int64_t> ts;
  for (const Result& r : Results(sub)) ts.insert(r.ts);
  return ts;
}

// At least once, in order: within each boot, a sequence arrives only after every lower one
// (`first` on) has arrived; repeats are allowed. Returns the problems, "" if none.
std::string OrderProblems(const std::vector<Result>& results, int64_t first = 1) {
  std::map<std::string, int64_t> high;  // per boot: every sequence up to it has arrived
  std::string problems;
  for (const Result& r : results) {
    int64_t& h = high.try_emplace(r.boot, first - 1).first->second;
    if (r.sequence <= h) continue;  // a repeat
    if (r.sequence == h + 1) {
      h = r.sequence;
    } else if (problems.size() < 500) {
      problems += "boot " + r.boot + ": sequence " + std::to_string(r.sequence) + " after " +
                  std::to_string(h) + "; ";
    }
  }
  return problems;
}

// Sensor timestamps in [from, to) without a result, abbreviated.
std::string MissingTs(const std::set<int64_t>& seen, int64_t from, int64_t to) {
  std::string missing;
  int64_t count = 0;
  for (int64_t ts = from; ts < to; ++ts) {
    if (seen.count(ts)) continue;
    if (++count <= 20) missing += std::to_string(ts) + " ";
  }
  return count == 0 ? "" : std::to_string(count) + " missing: " + missing;
}

// The latest telemetry report's value at `pointer`, or `fallback`.
template <class T>
T LatestTelemetry(MosquittoSubscriber& telemetry, const std::string& pointer, T fallback) {
  const std::vector<std::string> messages = telemetry.Messages();
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    Json j = Json::parse(it->substr(it->find(' ') + 1), nullptr, false);
    if (j.is_object() && j.contains("outbox"))
      return j.value(Json::json_pointer(pointer), fallback);
  }
  return fallback;
}

// ---- a cuttable TCP proxy ---------------------------------------------------------------------

// Forwards loopback connections to `upstream_port`. Cut() closes every connection and, until
// Restore(), accepts new ones only to close them: the uplink as a network outage sees it,
// without restarting the broker. One thread, poll() with a 2 ms tick.
class TcpProxy {
 public:
  explicit TcpProxy(int upstream_port) : upstream_(upstream_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        ::listen(listen_fd_, 16) == 0 &&
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~TcpProxy() {
    stop_ = true;
    thread_.join();
    CloseAll();
    ::close(listen_fd_);
  }
  int port() const { return port_; }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  void Cut() {
    cut_ = true;
    const uint64_t want = ++cuts_requested_;
    WaitFor([&] { return cuts_done_.load() >= want; }, Millis(2000));
  }
  void Restore() { cut_ = false; }
  // Connections on which the broker has answered (a CONNACK went back), since the start.
  uint64_t answered() const { return answered_.load(); }

 private:
  struct Pair {
    int client = -1, server = -1;
    bool answered = false;
  };

  void CloseAll() {
    for (Pair& p : pairs_) ::close(p.client), ::close(p.server);
    pairs_.clear();
  }
  // Copies what is readable on `from` to `to` (blocking write; loopback peers keep up).
  static bool Forward(int from, int to) {
    char buf[16384];
    const ssize_t n = ::read(from, buf, sizeof(buf));
    if (n <= 0) return false;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(to, buf + done, static_cast<size_t>(n - done));
      if (w <= 0) return false;
      done += w;
    }
    return true;
  }
  void Accept() {
    const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    const int s = cut_ ? -1 : testing_mqtt::ConnectLoopback(upstream_);
    if (s < 0) {
      ::close(c);
      return;
    }
    pairs_.push_back({c, s, false});
  }
  void Loop() {
    while (!stop_) {
      if (cut_ || cuts_done_ < cuts_requested_) {
        if (!pairs_.empty()) CloseAll();
        cuts_done_ = cuts_requested_.load();
      }
      std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}};
      for (const Pair& p : pairs_) {
        fds.push_back({p.client, POLLIN, 0});
        fds.push_back({p.server, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 2) <= 0) continue;
      const size_t polled = pairs_.size();
      if (fds[0].revents) Accept();
      std::vector<size_t> dead;
      for (size_t i = 0; i < polled; ++i) {
        Pair& p = pairs_[i];
        bool ok = true;
        if (fds[1 + 2 * i].revents) ok = Forward(p.client, p.server);
        if (ok && fds[2 + 2 * i].revents) {
          ok = Forward(p.server, p.client);
          if (ok && !p.answered) {
            p.answered = true;
            ++answered_;
          }
        }
        if (!ok) dead.push_back(i);
      }
      for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
        ::close(pairs_[*it].client), ::close(pairs_[*it].server);
        pairs_.erase(pairs_.begin() + static_cast<std::ptrdiff_t>(*it));
      }
    }
  }

  const int upstream_;
  int listen_fd_ = -1;
  int port_ = -1;
  std::vector<Pair> pairs_;  // the loop thread's
  std::atomic<bool> stop_{false}, cut_{false};
  std::atomic<uint64_t> cuts_requested_{0}, cuts_done_{0}, answered_{0};
  std::thread thread_;
};

// ---- [outbox] settings ---------------------------------------------------------------------

constexpr char kPipeline[] =
    "[[pipeline]]\nname = \"vib\"\nmodel = \"m.eim\"\ntopics = [\"s/+/v\"]\n";

TEST(OutboxConfig, KeysMapToTheOutboxAndBadValuesNameTheKey) {
  auto c = ParseConfig(
      "[device]\nid = \"d\"\nstate_dir = \"/tmp/x\"\n[outbox]\nmax_bytes = 100000\n"
      "max_age_s = 60\nsynchronous = \"full\"\nmemory_fallback_bytes = 0\n"
      "max_in_flight = 32\n" +
          std::string(kPipeline),
      "/");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const OutboxOptions o = OutboxOptionsFor(*c);
  EXPECT_EQ(o.state_dir, "/tmp/x");
  EXPECT_EQ(o.max_bytes, 100000);
  EXPECT_EQ(o.max_age_ms, 60000);
  EXPECT_EQ(o.synchronous, SyncLevel::kFull);
  EXPECT_EQ(o.memory_fallback_bytes, 0);
  EXPECT_EQ(c->outbox.max_in_flight, 32);
  auto again = ParseConfig(ConfigToToml(*c), "/");  // the effective config prints them back
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->outbox == c->outbox);

  auto defaults = ParseConfig(kPipeline, "/");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(OutboxOptionsFor(*defaults).synchronous, SyncLevel::kNormal);
  EXPECT_EQ(OutboxOptionsFor(*defaults).max_bytes, int64_t{64} << 20);

  const auto error = [](const std::string& outbox) {
    auto bad = ParseConfig("[outbox]\n" + outbox + "\n" + kPipeline, "/");
    return bad.ok() ? std::string("accepted") : bad.status().message();
  };
  EXPECT_NE(error("max_bytes = 100").find("outbox.max_bytes: 100 is outside 4096.."),
            std::string::npos)
      << error("max_bytes = 100");
  EXPECT_NE(error("synchronous = \"sometimes\"").find("outbox.synchronous: 'sometimes'"),
            std::string::npos);
  EXPECT_NE(error("max_in_flight = 0").find("outbox.max_in_flight"), std::string::npos);
  EXPECT_NE(error("max_age = 5").find("outbox.max_age: unknown key"), std::string::npos);
}

// ---- the fixture ------------------------------------------------------------------------------

class StoreForward : public testing_agent::AgentTest {
 protected:
  // The sensors' broker (the fixture's own).
  const MosquittoBroker& source() const { return broker_; }
  void TearDown() override {
    std::error_code ec;
    if (!uplink_dir_.empty()) fs::remove_all(uplink_dir_, ec);
  }

  // An uplink broker that keeps the results subscriber's session (and its queue, unbounded)
  // across its own restarts, so the test's side loses nothing while mosquitto_sub reconnects.
  std::unique_ptr<MosquittoBroker> PersistentUplink() {
    uplink_dir_ = testing_mqtt::MakeTempDir("sf-uplink");
    testing_mqtt::BrokerOptions o;
    o.extra_config = {"persistence true", "persistence_location " + uplink_dir_.string() + "/",
                      "max_queued_messages 0"};
    return std::make_unique<MosquittoBroker>(o);
  }
  static std::unique_ptr<MosquittoSubscriber> ResultsOn(const MosquittoBroker& uplink) {
    return std::make_unique<MosquittoSubscriber>(
        uplink, "edgeinfer/dev/results/#", 1, std::vector<std::string>{"-c", "-i", "sf-results"});
  }
  // Publishes single sensor messages until a result comes back: the agent is subscribed on the
  // source and connected to the uplink, and the results subscriber hears it.
  static bool WaitUntilFlowing(Sensors& sensors, MosquittoSubscriber& results) {
    return WaitFor(
        [&] {
          if (!Results(results).empty()) return true;
          sensors.Burst(1);
          results.WaitForCount(1, Millis(300));
          return !Results(results).empty();
        },
        Millis(30000));
  }

  // Starts the agent and sensors at 50/s; once results flow, a burst of 30 more: every message
  // from the first result on must have its result. Fatal failures on the way.
  void StartAndExpectLiveResults(Agent& agent, MosquittoSubscriber& results) {
    ASSERT_TRUE(agent.Start());
    Sensors sensors(source().uri(), 50);
    ASSERT_TRUE(sensors.Start());
    ASSERT_TRUE(WaitUntilFlowing(sensors, results)) << agent.log();
    sensors.Stop();
    const int64_t first_ts = *TsSeen(results).begin();
    ASSERT_TRUE(sensors.Burst(30));
    EXPECT_TRUE(WaitFor([&] {
      return MissingTs(TsSeen(results), first_ts, sensors.sent()).empty();
    })) << MissingTs(TsSeen(results), first_ts, sensors.sent())
        << agent.log();
  }

  fs::path uplink_dir_;
};

// The uplink broker stops for a few seconds while sensors keep publishing at a steady rate,
// then comes back on the same port: every result arrives, in order, each at least once.
TEST_F(StoreForward, UplinkOutageLosesNothingAndKeepsOrder) {
  auto uplink = PersistentUplink();
  ASSERT_TRUE(uplink->Start()) << uplink->error();
  auto results = ResultsOn(*uplink);
  Agent agent(source().uri(), uplink->uri());
  ASSERT_TRUE(agent.Start());
  Sensors sensors(source().uri(), 40);
  ASSERT_TRUE(sensors.Start());
  ASSERT_TRUE(WaitUntilFlowing(sensors, *results)) << agent.log();
  const int64_t first_ts = *TsSeen(*results).begin();  // published after the agent subscribed

  ASSERT_TRUE(results->WaitForCount(20, Millis(10000))) << agent.log();
  uplink->Stop();
  const int64_t sent_at_stop = sensors.sent();
  std::this_thread::sleep_for(Millis(3000));
  ASSERT_GE(QueryOutbox(agent.state_dir(), "SELECT COUNT(*) FROM outbox"), 60)
      << "results produced during the outage wait in the outbox\n"
      << agent.log();
  ASSERT_TRUE(uplink->Start()) << uplink->error();
  std::this_thread::sleep_for(Millis(1500));  // live results flow again with the backlog
  sensors.Stop();
  const int64_t last_ts = sensors.sent();
  ASSERT_GT(last_ts - sent_at_stop, 100);

  EXPECT_TRUE(WaitFor([&] { return MissingTs(TsSeen(*results), first_ts, last_ts).empty(); },
                      Millis(30000)))
      << MissingTs(TsSeen(*results), first_ts, last_ts) << "\n"
      << agent.log();
  const std::vector<Result> all = Results(*results);
  EXPECT_EQ(OrderProblems(all), "");
  std::set<std::string> boots;
  for (const Result& r : all) boots.insert(r.boot);
  EXPECT_EQ(boots.size(), 1u);
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

// SIGKILL while the uplink is down and results wait in the outbox; the agent restarts (a new
// boot id) and the old boot's backlog arrives in full, in order.
TEST_F(StoreForward, BacklogSurvivesSigkillWhileTheUplinkIsDown) {
  auto uplink = PersistentUplink();
  ASSERT_TRUE(uplink->Start()) << uplink->error();
  auto results = ResultsOn(*uplink);
  Agent agent(source().uri(), uplink->uri());
  ASSERT_TRUE(agent.Start());
  Sensors sensors(source().uri(), 50);
  ASSERT_TRUE(sensors.Start());
  ASSERT_TRUE(WaitUntilFlowing(sensors, *results)) << agent.log();
  const int64_t first_ts = *TsSeen(*results).begin();
  const std::string old_boot = Results(*results).front().boot;

  uplink->Stop();
  std::this_thread::sleep_for(Millis(1500));
  sensors.Stop();
  const int64_t last_ts = sensors.sent();
  // Every sensor message has its result stored before the kill.
  const fs::path state = agent.state_dir();
  ASSERT_TRUE(WaitFor([&] {
    return QueryOutbox(state, "SELECT MAX(seq) FROM outbox") >= last_ts - first_ts;
  })) << QueryOutbox(state, "SELECT MAX(seq) FROM outbox")
      << " vs " << last_ts - first_ts;
  const int64_t stored = QueryOutbox(state, "SELECT COUNT(*) FROM outbox");
  ASSERT_GE(stored, 50);
  agent.Kill();

  ASSERT_TRUE(uplink->Start()) << uplink->error();
  ASSERT_TRUE(agent.Start());
  EXPECT_TRUE(WaitFor([&] { return MissingTs(TsSeen(*results), first_ts, last_ts).empty(); },
                      Millis(30000)))
      << MissingTs(TsSeen(*results), first_ts, last_ts) << "\n"
      << agent.log();
  const std::vector<Result> all = Results(*results);
  EXPECT_EQ(OrderProblems(all), "");
  for (const Result& r : all) EXPECT_EQ(r.boot, old_boot) << "only the old boot's results";
  EXPECT_TRUE(WaitFor([&] { return QueryOutbox(state, "SELECT COUNT(*) FROM outbox") == 0; }))
      << "delivered rows are deleted";
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

// The outbox bound (a few dozen results) is reached while the uplink is down: exactly the
// oldest results of the outage are missing, and their number is what telemetry and the log
// report; the newest all arrive.
TEST_F(StoreForward, FullOutboxDropsExactlyTheOldestAndSaysHowMany) {
  auto uplink = PersistentUplink();
  ASSERT_TRUE(uplink->Start()) << uplink->error();
  auto results = ResultsOn(*uplink);
  MosquittoSubscriber telemetry(*uplink, "edgeinfer/dev/telemetry", 0);
  Agent agent(source().uri(), uplink->uri(), "[outbox]\nmax_bytes = 16384\n");
  ASSERT_TRUE(agent.Start());
  Sensors sensors(source().uri(), 50);
  ASSERT_TRUE(sensors.Start());  // connected; the steady loop is not needed here
  sensors.Stop();
  ASSERT_TRUE(WaitUntilFlowing(sensors, *results)) << agent.log();
  const fs::path state = agent.state_dir();
  // Nothing in flight or stored when the uplink goes: every later loss is the bound's.
  ASSERT_TRUE(WaitFor([&] { return QueryOutbox(state, "SELECT COUNT(*) FROM outbox") == 0; }));
  const int64_t before = Results(*results).back().sequence;  // delivered: 1..before
  ASSERT_EQ(OrderProblems(Results(*results)), "");

  uplink->Stop();
  constexpr int kOutage = 200;
  ASSERT_TRUE(sensors.Burst(kOutage));
  const int64_t last_seq = before + kOutage;
  ASSERT_TRUE(WaitFor([&] {
    return QueryOutbox(state, "SELECT MAX(seq) FROM outbox") == last_seq;
  })) << agent.log();
  const int64_t kept = QueryOutbox(state, "SELECT COUNT(*) FROM outbox");
  ASSERT_GT(kept, 10);
  ASSERT_LT(kept, kOutage / 2) << "the bound must have dropped some";

  ASSERT_TRUE(uplink->Start()) << uplink->error();
  std::set<int64_t> seqs;
  ASSERT_TRUE(WaitFor(
      [&] {
        seqs.clear();
        for (const Result& r : Results(*results)) seqs.insert(r.sequence);
        return seqs.count(last_seq) > 0;
      },
      Millis(20000)))
      << agent.log();
  std::this_thread::sleep_for(Millis(300));  // the rest of the backlog, if any, follows
  seqs.clear();
  for (const Result& r : Results(*results)) seqs.insert(r.sequence);
  // Missing: one contiguous run right after `before`.
  int64_t first_kept = before + 1;
  while (first_kept <= last_seq && !seqs.count(first_kept)) ++first_kept;
  const int64_t missing = first_kept - before - 1;
  for (int64_t s = 1; s <= last_seq; ++s)
    EXPECT_EQ(seqs.count(s), s > before && s < first_kept ? 0u : 1u) << "sequence " << s;
  EXPECT_EQ(missing + kept, kOutage);

  ASSERT_TRUE(WaitFor([&] {
    return LatestTelemetry<int64_t>(telemetry, "/outbox/dropped_rows", -1) == missing;
  })) << "telemetry says "
      << LatestTelemetry<int64_t>(telemetry, "/outbox/dropped_rows", -1) << ", missing " << missing;
  int64_t logged = 0;
  const std::string log = agent.log();
  const std::regex line("outbox full: dropped the ([0-9]+) oldest");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
       ++it)
    logged += std::stoll((*it)[1]);
  EXPECT_EQ(logged, missing) << log;
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

// Garbage where the outbox database should be: moved aside (kept), a fresh one started, the
// agent says so (log, telemetry) and delivers live results.
TEST_F(StoreForward, CorruptDatabaseIsMovedAsideAndResultsFlow) {
  MosquittoBroker uplink;
  ASSERT_TRUE(uplink.Start()) << uplink.error();
  MosquittoSubscriber results(uplink, "edgeinfer/dev/results/#");
  MosquittoSubscriber telemetry(uplink, "edgeinfer/dev/telemetry", 0);
  Agent agent(source().uri(), uplink.uri());
  fs::create_directories(agent.state_dir());
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 131 + 7) % 251);
  testing_mqtt::WriteFile(agent.state_dir() / "outbox.db", garbage);
  ASSERT_NO_FATAL_FAILURE(StartAndExpectLiveResults(agent, results));
  EXPECT_NE(agent.log().find("moved aside"), std::string::npos) << agent.log();
  EXPECT_TRUE(WaitFor([&] {
    return LatestTelemetry<int64_t>(telemetry, "/outbox/corruption_events", 0) == 1;
  })) << agent.log();
  int kept = 0;
  for (const auto& e : fs::directory_iterator(agent.state_dir()))
    kept += e.path().filename().string().starts_with("outbox.db.corrupt-");
  EXPECT_EQ(kept, 1);
  EXPECT_EQ(ReadFile(agent.state_dir() / "outbox.db").substr(0, 15), "SQLite format 3");
  EXPECT_TRUE(agent.running());
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

// A state directory the agent cannot write: results go to the bounded memory buffer, the agent
// says so (log line, telemetry outbox.degraded) and delivers live results.
TEST_F(StoreForward, UnwritableStateDirDegradesToMemoryAndResultsFlow) {
  MosquittoBroker uplink;
  ASSERT_TRUE(uplink.Start()) << uplink.error();
  MosquittoSubscriber results(uplink, "edgeinfer/dev/results/#");
  MosquittoSubscriber telemetry(uplink, "edgeinfer/dev/telemetry", 0);
  Agent agent(source().uri(), uplink.uri());
  if (::geteuid() == 0) {
    // root writes through chmod 0500: a path under a regular file cannot be created by anyone.
    testing_mqtt::WriteFile(agent.dir() / "a-file", "not a directory");
    agent.set_state_dir(agent.dir() / "a-file" / "state");
  } else {
    fs::create_directories(agent.state_dir());
    ASSERT_EQ(::chmod(agent.state_dir().c_str(), 0500), 0);
  }
  agent.SetConfig(source().uri(), uplink.uri(), "");
  ASSERT_NO_FATAL_FAILURE(StartAndExpectLiveResults(agent, results));
  EXPECT_NE(agent.log().find("results are kept in memory"), std::string::npos) << agent.log();
  EXPECT_TRUE(WaitFor([&] { return LatestTelemetry<bool>(telemetry, "/outbox/degraded", false); }))
      << agent.log();
  EXPECT_FALSE(LatestTelemetry<std::string>(telemetry, "/outbox/last_error", "").empty());
  EXPECT_TRUE(agent.running());
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

// 200 uplink drops (a proxy cuts the connection and lets the next one through) while results
// flow: the agent's RSS after the cycles stays within 2 MiB of its RSS after a warm-up, and
// every result arrives in order.
TEST_F(StoreForward, HundredsOfUplinkDropsKeepRssFlat) {
  MosquittoBroker uplink;
  ASSERT_TRUE(uplink.Start()) << uplink.error();
  TcpProxy proxy(uplink.port());
  ASSERT_GT(proxy.port(), 0);
  MosquittoSubscriber results(uplink, "edgeinfer/dev/results/#");
  Agent agent(source().uri(), proxy.uri());
  ASSERT_TRUE(agent.Start());
  Sensors sensors(source().uri(), 50);
  ASSERT_TRUE(sensors.Start());
  ASSERT_TRUE(WaitUntilFlowing(sensors, results)) << agent.log();
  const int64_t first_ts = *TsSeen(results).begin();

  const auto cycle = [&] {
    const uint64_t answered = proxy.answered();
    proxy.Cut();
    std::this_thread::sleep_for(Millis(25));  // a retry or two meets the cut: failed connects
    proxy.Restore();
    // The agent is back once the broker has answered a new connection.
    return WaitFor([&] { return proxy.answered() > answered; }, Millis(5000));
  };
  constexpr int kWarmUp = 30, kCycles = 200;
  const auto start = Clock::now();
  for (int i = 0; i < kWarmUp; ++i) ASSERT_TRUE(cycle()) << "warm-up cycle " << i << agent.log();
  std::this_thread::sleep_for(Millis(300));
  const int64_t rss_warm = agent.RssBytes();
  for (int i = 0; i < kCycles; ++i) ASSERT_TRUE(cycle()) << "cycle " << i << agent.log();
  std::this_thread::sleep_for(Millis(300));
  const int64_t rss_end = agent.RssBytes();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const std::string log = agent.log();
  const auto count = [&](const std::string& what) {
    size_t n = 0;
    for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
    return n;
  };
  const size_t connects = count("sink link: connected to");
  std::printf(
      "[ figures  ] %d uplink drops in %.1f s (%zu connects, %zu failed attempts); agent "
      "RSS after warm-up %.2f MiB, after %d more drops %.2f MiB (%+.0f KiB)\n",
      kWarmUp + kCycles, seconds, connects, count("sink link: connect to"), rss_warm / 1048576.0,
      kCycles, rss_end / 1048576.0, (rss_end - rss_warm) / 1024.0);
  EXPECT_GT(connects, static_cast<size_t>(kWarmUp + kCycles));
  ASSERT_GT(rss_warm, 0);
  EXPECT_LE(rss_end - rss_warm, int64_t{2} << 20) << "RSS grew over the reconnect cycles";

  sensors.Stop();
  const int64_t last_ts = sensors.sent();
  EXPECT_TRUE(
      WaitFor([&] { return MissingTs(TsSeen(results), first_ts, last_ts).empty(); }, Millis(30000)))
      << MissingTs(TsSeen(results), first_ts, last_ts);
  EXPECT_EQ(OrderProblems(Results(results)), "");
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

}  // namespace
}  // namespace edgeinfer::agent
