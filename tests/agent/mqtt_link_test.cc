// agent/mqtt_link.cc against a real Mosquitto (tests/agent/mosquitto_fixture.h), with the
// Mosquitto command-line clients as the independent peer. Every wait is bounded.
#include "agent/mqtt_link.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "tests/agent/mosquitto_fixture.h"

namespace edgeinfer::agent {
namespace {

using testing_mqtt::Clock;
using testing_mqtt::Millis;
using testing_mqtt::MosquittoBroker;
using testing_mqtt::MosquittoSubscriber;
using testing_mqtt::WaitFor;

constexpr char kWillChildEnv[] = "EDGEINFER_MQTT_WILL_CHILD";
constexpr char kStatusTopic[] = "edgeinfer/dev1/status";

LinkConfig Config(const std::string& uri, int version) {
  LinkConfig c;
  c.uri = uri;
  c.mqtt_version = version;
  c.keepalive_s = 10;
  c.reconnect_min_ms = 50;  // fast retries keep the outage tests short
  c.reconnect_max_ms = 500;
  return c;
}

// The will test re-executes this binary with kWillChildEnv="VERSION URI": the child runs a link
// until it gets SIGKILL, so it never sends DISCONNECT. This runs before main() and never
// returns in the child; in every other run it does nothing.
bool RunWillChildIfAsked() {
  const char* spec = std::getenv(kWillChildEnv);
  if (spec == nullptr) return false;
  std::istringstream in(spec);
  int version = 4;
  std::string uri;
  in >> version >> uri;
  auto link = MqttLink::Create(Config(uri, version), "will-child", "child");
  if (!link.ok()) ::_exit(2);
  (*link)->SetLastWill({kStatusTopic, "offline-will", 1, true});
  (*link)->SetBirthMessage(kStatusTopic, "online");
  if (!(*link)->Start().ok()) ::_exit(3);
  for (;;) ::pause();
}
[[maybe_unused]] const bool kIsWillChild = RunWillChildIfAsked();

// Records what the link reports, for the test thread to poll.
class Recorder : public MqttMessageHandler,
                 public MqttDeliveryHandler,
                 public MqttConnectionHandler {
 public:
  void OnMessage(std::string_view topic, std::string_view payload) override {
    std::lock_guard<std::mutex> lock(mu_);
    messages_.push_back(std::string(topic) + " " + std::string(payload));
  }
  void OnDelivered(uint64_t tag, bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++(ok ? acked_ : failed_)[tag];
  }
  void OnConnected() override { ++connected; }
  void OnDisconnected() override { ++disconnected; }

  void Attach(MqttLink* link) {
    link->SetMessageHandler(this);
    link->SetDeliveryHandler(this);
    link->SetConnectionHandler(this);
  }
  std::vector<std::string> Messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  bool Has(const std::string& message) {
    std::lock_guard<std::mutex> lock(mu_);
    return std::find(messages_.begin(), messages_.end(), message) != messages_.end();
  }
  std::map<uint64_t, int> Acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  std::map<uint64_t, int> Failed() {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }

  std::atomic<int> connected{0};
  std::atomic<int> disconnected{0};

 private:
  std::mutex mu_;
  std::vector<std::string> messages_;
  std::map<uint64_t, int> acked_, failed_;
};

std::unique_ptr<MqttLink> NewLink(const LinkConfig& config, const std::string& client_id) {
  auto link = MqttLink::Create(config, client_id, "test");
  EXPECT_TRUE(link.ok()) << link.status().ToString();
  return link.ok() ? std::move(link).value() : nullptr;
}

// OnConnected comes when the SUBSCRIBE is sent, not acknowledged: publish until it arrives.
bool PublishUntilReceived(const MosquittoBroker& broker, Recorder& r, const std::string& topic,
                          const std::string& payload) {
  return WaitFor([&] {
    broker.Publish(topic, payload);
    return WaitFor([&] { return r.Has(topic + " " + payload); }, Millis(300));
  });
}

bool RetainedBecomes(const MosquittoBroker& broker, const std::string& topic,
                     const std::string& payload) {
  return WaitFor([&] { return broker.Retained(topic, 1) == payload; });
}

// A broker per test; the parameter is the MQTT version (4 = 3.1.1, 5).
class MqttLinkTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (!MosquittoBroker::Available()) GTEST_SKIP() << "/usr/sbin/mosquitto is not installed";
    ASSERT_TRUE(broker_.Start()) << broker_.error();
  }
  LinkConfig config() const { return Config(broker_.uri(), GetParam()); }

  MosquittoBroker broker_;
};

INSTANTIATE_TEST_SUITE_P(Mqtt, MqttLinkTest, ::testing::Values(4, 5),
                         [](const auto& info) { return info.param == 5 ? "v5" : "v311"; });

TEST_P(MqttLinkTest, ReceivesMessagesOnItsSubscriptions) {
  Recorder r;
  auto link = NewLink(config(), "sub-1");
  r.Attach(link.get());
  link->AddSubscription("sensors/+/vibration", 1);
  ASSERT_TRUE(link->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return link->connected(); })) << broker_.log();
  ASSERT_TRUE(PublishUntilReceived(broker_, r, "sensors/probe/vibration", "probe"));

  ASSERT_TRUE(broker_.Publish("sensors/dev1/temperature", "not for us"));
  ASSERT_TRUE(broker_.Publish("sensors/dev1/vibration", R"({"values":[1.5,2]})"));
  EXPECT_TRUE(WaitFor([&] { return r.Has(R"(sensors/dev1/vibration {"values":[1.5,2]})"); }));
  EXPECT_FALSE(r.Has("sensors/dev1/temperature not for us"));
  const LinkStats s = link->stats();
  EXPECT_TRUE(s.connected);
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(s.reconnects, 0u);
  EXPECT_EQ(s.messages_in, r.Messages().size());
}

TEST_P(MqttLinkTest, Qos1PublishesReportEveryTagExactlyOnce) {
  MosquittoSubscriber sub(broker_, "results/#");
  ASSERT_TRUE(sub.WaitReady()) << broker_.log();
  Recorder r;
  auto link = NewLink(config(), "pub-1");
  r.Attach(link.get());
  ASSERT_TRUE(link->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return link->connected(); }));

  constexpr uint64_t kCount = 500;
  const auto start = Clock::now();
  for (uint64_t tag = 1; tag <= kCount; ++tag) {
    ASSERT_TRUE(link->Publish("results/p1", "r" + std::to_string(tag), 1, false, tag)) << tag;
  }
  ASSERT_TRUE(WaitFor([&] { return r.Acked().size() == kCount; })) << r.Acked().size();
  // Well under a second here. Paho alone stalls up to 1 s per window of in-flight messages
  // (Mosquitto's Receive Maximum is 20): that would take > 5 s.
  EXPECT_LT(Clock::now() - start, Millis(5000));
  ASSERT_TRUE(sub.WaitForCount(kCount));
  std::this_thread::sleep_for(Millis(100));  // a duplicate report would show up by now
  const auto acked = r.Acked();
  for (uint64_t tag = 1; tag <= kCount; ++tag) EXPECT_EQ(acked.count(tag) ? acked.at(tag) : 0, 1);
  EXPECT_TRUE(r.Failed().empty());
  const auto got = sub.Messages();
  const std::set<std::string> unique(got.begin(), got.end());
  EXPECT_EQ(got.size(), kCount);
  EXPECT_EQ(unique.size(), kCount);
  EXPECT_TRUE(unique.count("results/p1 r1") && unique.count("results/p1 r500"));
  EXPECT_EQ(link->stats().published, kCount);
  EXPECT_EQ(link->stats().publish_failures, 0u);
}

// Two threads publish far more than the in-flight window (20 on MQTT 5, 128 on 3.1.1), so that
// most publishes wait in the link and are handed to Paho in groups from PUBACK callbacks, while
// the other thread's arrive as the window is full, refilling or empty. Every one must leave,
// once, in each thread's order; one left waiting for a PUBACK that never comes would stall here.
TEST_P(MqttLinkTest, PublishesPastTheWindowLeaveInOrderFromSeveralThreads) {
  MosquittoSubscriber sub(broker_, "results/#");
  ASSERT_TRUE(sub.WaitReady()) << broker_.log();
  Recorder r;
  auto link = NewLink(config(), "pub-order");
  r.Attach(link.get());
  ASSERT_TRUE(link->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return link->connected(); }));
  constexpr int kPerThread = 1000;
  auto publish = [&](const std::string& topic, uint64_t first_tag) {
    for (int i = 0; i < kPerThread; ++i) {
      // Full (kMaxQueued waiting): the caller keeps it and tries again, as the outbox does.
      for (int tries = 0; tries < 2000; ++tries) {
        if (link->Publish(topic, std::to_string(i), 1, false, first_tag + i)) break;
        std::this_thread::sleep_for(Millis(1));
      }
    }
  };
  std::thread a(publish, "results/a", 1);
  std::thread b(publish, "results/b", 1 + kPerThread);
  a.join();
  b.join();
  ASSERT_TRUE(sub.WaitForCount(2 * kPerThread)) << sub.Messages().size();
  ASSERT_TRUE(WaitFor([&] { return r.Acked().size() == 2u * kPerThread; })) << r.Acked().size();
  int next_a = 0, next_b = 0;
  for (const std::string& m : sub.Messages()) {
    int& next = m.rfind("results/a ", 0) == 0 ? next_a : next_b;
    ASSERT_EQ(m.substr(m.find(' ') + 1), std::to_string(next)) << m;
    ++next;
  }
  EXPECT_EQ(next_a, kPerThread);
  EXPECT_EQ(next_b, kPerThread);
  EXPECT_TRUE(r.Failed().empty());
  EXPECT_EQ(link->stats().published, 2u * kPerThread);
}

TEST_P(MqttLinkTest, EveryAcceptedPublishIsReportedOnceWhenTheBrokerGoesAway) {
  Recorder r;
  auto link = NewLink(config(), "pub-2");
  r.Attach(link.get());
  ASSERT_TRUE(link->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return link->connected(); }));
  std::set<uint64_t> accepted;
  std::thread publisher([&] {  // as fast as the link takes them, until the connection is lost
    for (uint64_t tag = 1; tag <= 100000 && r.disconnected == 0; ++tag) {
      if (link->Publish("results/p1", std::string(200, 'x'), 1, false, tag)) {
        accepted.insert(tag);
      } else {
        std::this_thread::sleep_for(Millis(1));  // full (or disconnected)
      }
    }
  });
  EXPECT_TRUE(WaitFor([&] { return r.Acked().size() >= 50; }));
  broker_.Stop();  // with publishes queued, in flight and acknowledged
  publisher.join();
  ASSERT_TRUE(WaitFor([&] { return r.disconnected == 1; }));
  link->Stop("", 1000);  // reports what Paho still held
  const auto acked = r.Acked(), failed = r.Failed();
  EXPECT_FALSE(acked.empty());
  EXPECT_FALSE(failed.empty());
  for (uint64_t tag : accepted) {
    const int reports =
        (acked.count(tag) ? acked.at(tag) : 0) + (failed.count(tag) ? failed.at(tag) : 0);
    ASSERT_EQ(reports, 1) << "tag " << tag;
  }
  EXPECT_EQ(acked.size() + failed.size(), accepted.size());
  EXPECT_EQ(link->stats().published, acked.size());
}

TEST_P(MqttLinkTest, ReconnectsResubscribesAndRepublishesBirthAfterBrokerRestart) {
  Recorder r;
  auto link = NewLink(config(), "sink-1");
  r.Attach(link.get());
  link->AddSubscription("cmd/#", 1);
  link->SetLastWill({kStatusTopic, "offline", 1, true});
  link->SetBirthMessage(kStatusTopic, "online");
  ASSERT_TRUE(link->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return r.connected == 1; }));
  ASSERT_TRUE(PublishUntilReceived(broker_, r, "cmd/a", "before"));

  broker_.Stop();
  ASSERT_TRUE(WaitFor([&] { return r.disconnected == 1; }));
  EXPECT_FALSE(link->connected());
  EXPECT_FALSE(link->Publish("results/x", "kept by the outbox", 1, false, 77));

  ASSERT_TRUE(broker_.Start()) << broker_.error();  // same port, no persistence: a fresh broker
  ASSERT_TRUE(WaitFor([&] { return r.connected == 2; })) << broker_.log();
  EXPECT_TRUE(PublishUntilReceived(broker_, r, "cmd/a", "after"));
  EXPECT_TRUE(RetainedBecomes(broker_, kStatusTopic, "online"));
  ASSERT_TRUE(link->Publish("results/x", "now", 1, false, 78));
  EXPECT_TRUE(WaitFor([&] { return r.Acked().count(78) == 1; }));
  EXPECT_EQ(r.Acked().count(77) + r.Failed().count(77), 0u);  // refused: never reported
  const LinkStats s = link->stats();
  EXPECT_EQ(s.connects, 2u);
  EXPECT_EQ(s.reconnects, 1u);
}

TEST_P(MqttLinkTest, StopPublishesOfflineRetainedInsteadOfTheWill) {
  Recorder r;
  auto link = NewLink(config(), "sink-2");
  r.Attach(link.get());
  link->SetLastWill({kStatusTopic, "offline-lost", 1, true});
  link->SetBirthMessage(kStatusTopic, "online");
  ASSERT_TRUE(link->Start().ok());
  ASSERT_TRUE(RetainedBecomes(broker_, kStatusTopic, "online"));

  const auto start = Clock::now();
  link->Stop("offline-shutdown", 3000);
  EXPECT_LT(Clock::now() - start, Millis(3500));
  EXPECT_EQ(broker_.Retained(kStatusTopic), "offline-shutdown");
  EXPECT_FALSE(link->connected());
  EXPECT_FALSE(link->Publish("results/x", "y", 1, false, 1));
  link->Stop("again", 3000);  // a second Stop does nothing
  link.reset();
  EXPECT_EQ(broker_.Retained(kStatusTopic), "offline-shutdown");
  EXPECT_TRUE(r.Failed().empty());
}

TEST_P(MqttLinkTest, WillIsPublishedRetainedWhenTheProcessIsKilled) {
  MosquittoSubscriber sub(broker_, kStatusTopic);
  ASSERT_TRUE(sub.WaitReady());
  testing_mqtt::SpawnOptions o;
  o.extra_env = {std::string(kWillChildEnv) + "=" + std::to_string(GetParam()) + " " +
                 broker_.uri()};
  const pid_t child = testing_mqtt::Spawn({"/proc/self/exe"}, o);
  ASSERT_GT(child, 0);
  const bool online = sub.WaitForMessage(std::string(kStatusTopic) + " online");
  ::kill(child, SIGKILL);
  EXPECT_EQ(testing_mqtt::WaitExit(child, Millis(5000)), 128 + SIGKILL);
  ASSERT_TRUE(online) << broker_.log();
  EXPECT_TRUE(sub.WaitForMessage(std::string(kStatusTopic) + " offline-will"));
  EXPECT_EQ(broker_.Retained(kStatusTopic), "offline-will");
}

TEST_P(MqttLinkTest, SharedSubscriptionSplitsMessagesWithoutLossOrDuplicates) {
  Recorder a, b;
  auto link_a = NewLink(config(), "worker-a");
  auto link_b = NewLink(config(), "worker-b");
  a.Attach(link_a.get());
  b.Attach(link_b.get());
  link_a->AddSubscription("$share/workers/jobs/#", 1);
  link_b->AddSubscription("$share/workers/jobs/#", 1);
  ASSERT_TRUE(link_a->Start().ok());
  ASSERT_TRUE(link_b->Start().ok());
  // Both are in the group once each has received a probe (probes sent before that are lost).
  int probe = 0;
  ASSERT_TRUE(WaitFor([&] {
    broker_.Publish("jobs/probe", std::to_string(probe++));
    std::this_thread::sleep_for(Millis(50));
    return !a.Messages().empty() && !b.Messages().empty();
  }));

  constexpr size_t kCount = 200;
  std::vector<std::string> jobs;
  for (size_t i = 0; i < kCount; ++i) jobs.push_back("job-" + std::to_string(i));
  ASSERT_TRUE(broker_.PublishLines("jobs/x", jobs));
  const auto received = [&](Recorder& r) {
    std::vector<std::string> m = r.Messages();
    m.erase(std::remove_if(m.begin(), m.end(), [](auto& s) { return s.rfind("jobs/x ", 0); }),
            m.end());
    return m;
  };
  ASSERT_TRUE(WaitFor([&] { return received(a).size() + received(b).size() >= kCount; }));
  std::this_thread::sleep_for(Millis(200));  // a duplicate would show up by now
  const auto got_a = received(a), got_b = received(b);
  std::multiset<std::string> got(got_a.begin(), got_a.end());
  got.insert(got_b.begin(), got_b.end());
  EXPECT_EQ(got.size(), kCount);
  for (const std::string& job : jobs) EXPECT_EQ(got.count("jobs/x " + job), 1u) << job;
  EXPECT_FALSE(got_a.empty());
  EXPECT_FALSE(got_b.empty());
}

// ---- Without a broker fixture ------------------------------------------------------------------

TEST(MqttLink, CreateRejectsBadUrisAndSettingsWithAClearMessage) {
  for (const std::string uri : {"localhost:1883", "http://broker:80", "tcp://", "tcp://:1883",
                                "tcp://broker:0", "tcp://broker:65536", "tcp://broker:x1"}) {
    auto link = MqttLink::Create(Config(uri, 4), "c", "source");
    ASSERT_FALSE(link.ok()) << uri;
    EXPECT_NE(link.status().message().find("uri '" + uri + "'"), std::string::npos)
        << link.status().message();
    EXPECT_EQ(link.status().message().rfind("source link: ", 0), 0u) << link.status().message();
  }
  LinkConfig tls = Config("tcp://127.0.0.1:1883", 4);
  tls.tls = TlsConfig{};
  EXPECT_FALSE(MqttLink::Create(tls, "c", "sink").ok());
  EXPECT_FALSE(MqttLink::Create(Config("tcp://127.0.0.1:1883", 3), "c", "sink").ok());
  EXPECT_TRUE(MqttLink::Create(Config("mqtts://[::1]:8883", 5), "c", "sink").ok());
}

TEST(MqttLink, StartNamesAnUnreadablePasswordFile) {
  LinkConfig c = Config("tcp://127.0.0.1:1", 4);
  c.username = "edge";
  c.password_file = "/nonexistent/edgeinfer/password";
  auto link = NewLink(c, "pw");
  const Status st = link->Start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/nonexistent/edgeinfer/password"), std::string::npos)
      << st.message();
}

// The process's TCP connections to `port` on loopback and whether each has TCP_NODELAY.
std::vector<bool> NoDelayOfConnectionsTo(int port) {
  std::vector<bool> found;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return found;
  while (const dirent* e = ::readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    if (fd <= 2 || ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0 ||
        peer.sin_family != AF_INET || ntohs(peer.sin_port) != port)
      continue;
    int on = 0;
    socklen_t on_len = sizeof(on);
    if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &on_len) == 0) found.push_back(on != 0);
  }
  ::closedir(dir);
  return found;
}

// Nagle off: otherwise a publish behind an unacknowledged one waits for a delayed ACK (40 ms).
TEST(MqttLink, TurnsNagleOffOnItsConnectionAfterEveryConnect) {
  if (!MosquittoBroker::Available()) GTEST_SKIP() << "/usr/sbin/mosquitto is not installed";
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start()) << broker.error();
  Recorder r;
  auto link = NewLink(Config(broker.uri(), 4), "nodelay");
  r.Attach(link.get());
  ASSERT_TRUE(link->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return r.connected == 1; })) << broker.log();
  EXPECT_EQ(NoDelayOfConnectionsTo(broker.port()), std::vector<bool>{true});
  broker.Stop();
  ASSERT_TRUE(broker.Start()) << broker.error();  // same port: a new connection, a new socket
  ASSERT_TRUE(WaitFor([&] { return r.connected == 2; }, Millis(15000))) << broker.log();
  EXPECT_EQ(NoDelayOfConnectionsTo(broker.port()), std::vector<bool>{true});
}

TEST(MqttLink, InitialConnectIsRetriedUntilTheBrokerStarts) {
  if (!MosquittoBroker::Available()) GTEST_SKIP() << "/usr/sbin/mosquitto is not installed";
  MosquittoBroker late;
  Recorder r;
  auto link = NewLink(Config(late.uri(), 4), "early");
  r.Attach(link.get());
  ASSERT_TRUE(link->Start().ok());
  EXPECT_FALSE(WaitFor([&] { return link->connected(); }, Millis(500)));
  ASSERT_TRUE(late.Start()) << late.error();
  EXPECT_TRUE(WaitFor([&] { return r.connected == 1; })) << late.log();
  EXPECT_EQ(link->stats().connects, 1u);
}

TEST(MqttLink, UsesUserNameAndPasswordFile) {
  if (!MosquittoBroker::Available() || !testing_mqtt::HaveProgram("/usr/bin/mosquitto_passwd")) {
    GTEST_SKIP() << "needs /usr/sbin/mosquitto and /usr/bin/mosquitto_passwd";
  }
  MosquittoBroker broker({.users = {{"edge", "s3cret pw"}}});
  ASSERT_TRUE(broker.Start()) << broker.error();
  testing_mqtt::WriteFile(broker.dir() / "good", "s3cret pw\n");
  testing_mqtt::WriteFile(broker.dir() / "bad", "wrong\n");
  LinkConfig c = Config(broker.uri(), 5);
  c.username = "edge";
  c.password_file = (broker.dir() / "bad").string();
  auto refused = NewLink(c, "refused");
  ASSERT_TRUE(refused->Start().ok());
  c.mqtt_version = 4;
  c.password_file = (broker.dir() / "good").string();
  auto good = NewLink(c, "good");
  ASSERT_TRUE(good->Start().ok());
  EXPECT_TRUE(WaitFor([&] { return good->connected(); })) << broker.log();
  EXPECT_FALSE(WaitFor([&] { return refused->connected(); }, Millis(1000)));
  EXPECT_EQ(refused->stats().connects, 0u);
}

TEST(MqttLink, ConnectsOverTlsAndVerifiesTheServerCertificate) {
  if (!MosquittoBroker::Available() || !testing_mqtt::HaveProgram("/usr/bin/openssl")) {
    GTEST_SKIP() << "needs /usr/sbin/mosquitto and /usr/bin/openssl";
  }
  MosquittoBroker broker({.tls = true});
  ASSERT_TRUE(broker.Start()) << broker.error();
  ASSERT_TRUE(testing_mqtt::MakeTestCertificates(broker.dir(), "other", false));
  LinkConfig c = Config(broker.tls_uri(), 5);
  c.tls = TlsConfig{broker.ca_file(), "", "", true};
  auto trusted = NewLink(c, "tls-trusted");
  c.tls->ca_file = (broker.dir() / "other-ca.crt").string();
  auto untrusted = NewLink(c, "tls-untrusted");
  c.tls->verify = false;
  auto unverified = NewLink(c, "tls-unverified");
  for (MqttLink* l : {trusted.get(), untrusted.get(), unverified.get()})
    ASSERT_TRUE(l->Start().ok());
  EXPECT_TRUE(WaitFor([&] { return trusted->connected() && unverified->connected(); }))
      << broker.log();
  EXPECT_FALSE(untrusted->connected());
  EXPECT_EQ(untrusted->stats().connects, 0u);
}

// Accepts connections on a loopback port and answers each with bytes that are not MQTT.
class GarbageServer {
 public:
  GarbageServer() : port_(testing_mqtt::FreeLoopbackPort()) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) ::listen(fd_, 8);
    thread_ = std::thread([this] { Serve(); });
  }
  ~GarbageServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_; }

 private:
  void Serve() {
    // A CONNACK with an endless length, a PUBLISH before any CONNACK, text, and a good
    // CONNACK followed by a packet of a reserved type.
    const std::string replies[] = {
        std::string("\x20\xff\xff\xff\xff\x01", 6), std::string("\x30\x05\x00\x01t\x00\x00", 7),
        "HTTP/1.1 400 Bad Request\r\n\r\n", std::string("\x20\x02\x00\x00\xf0\x03\xff\xff\xff", 9)};
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      const std::string& reply = replies[accepted_++ % 4];
      (void)!::write(c, reply.data(), reply.size());
      std::this_thread::sleep_for(Millis(20));
      ::close(c);
    }
  }
  int port_;
  int fd_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST(MqttLink, SurvivesAServerThatSpeaksGarbage) {
  GarbageServer server;
  Recorder r;
  auto link = NewLink(Config(server.uri(), 4), "garbage");
  r.Attach(link.get());
  ASSERT_TRUE(link->Start().ok());
  EXPECT_TRUE(WaitFor([&] { return server.accepted() >= 6; }));  // it keeps retrying
  const auto start = Clock::now();
  link->Stop("", 1000);
  EXPECT_LT(Clock::now() - start, Millis(2000));
  EXPECT_FALSE(link->connected());
  EXPECT_FALSE(link->Publish("results/x", "y", 1, false, 1));
}

}  // namespace
}  // namespace edgeinfer::agent
