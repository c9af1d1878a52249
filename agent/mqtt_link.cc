// MqttLink on the Paho MQTT C++ 1.2.0 async_client (over Paho C 1.3.x).
//
// Threads: Paho's receive thread runs Impl's mqtt::callback methods and the action listeners,
// holding Paho C's own mutex; our retry thread makes every connect attempt. Nothing waits on a
// Paho token except Stop(), which callers make from their own thread. Our locks are never held
// while calling Paho: a QoS 1 publish from another thread takes Paho's mutex.
//
// Paho behaviour this file relies on or works around (sources: paho.mqtt.cpp v1.2.0,
// paho.mqtt.c v1.3.12 as in Debian 12):
// - Reconnects are ours, not Paho's set_automatic_reconnect(): whether Paho retries after a
//   failed *first* connect differs between C library versions (1.3.12 does, older ones do not),
//   its intervals are whole seconds, and two retry mechanisms would race (connect() replaces
//   async_client's connect token).
// - async_client::on_connected() calls the connect token's on_success() again, so the connect
//   listener may see two successes: `connected()` is the event.
// - callback::delivery_complete() also fires for publishes that publish() refused (1.2.0 calls
//   it from remove_token() on the error path), and carries no failure for QoS 0: deliveries are
//   reported from a per-publish action listener instead.
// - A refused publish() calls no listener; an accepted one calls exactly one: on PUBACK (QoS 1),
//   on write (QoS 0), with MQTTASYNC_OPERATION_INCOMPLETE when the connection is lost with the
//   message in flight (clean session), or at MQTTAsync_destroy for commands never sent.
// - Paho hands a publish held back by flow control to the socket only when another command
//   arrives or after up to 1 s (MQTTAsync_sendThread waits on send_cond for 1000 ms; a PUBACK
//   does not signal it): see PublishQueue.
// - Publish commands Paho accepted but had not sent survive a connection loss and go out after
//   the reconnect. PublishQueue keeps that set small (at most the window, briefly). Publishes
//   still in PublishQueue at a reconnect are failed, not sent (see connected()).
// - ssl_options::set_error_handler() is not used: async_client::connect() takes the options by
//   value, the copy's ssl_options registers *itself* as the C callback's context, and
//   MQTTAsync_connect keeps that pointer (MQTTAsync.c: sslopts->ssl_error_context = ...). The
//   copy dies when connect() returns, so a later TLS error calls into freed memory (seen as a
//   SIGSEGV in ssl_options::on_error). TLS failures are logged from the connect listener.
// - With create options, maxBufferedMessages (default 100) bounds the publish commands queued
//   while *connected* too; PublishQueue stays well below it.
#include "agent/mqtt_link.h"

#include <mqtt/async_client.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

#include "agent/log.h"
#include "agent/tcp_nodelay.h"

namespace edgeinfer::agent {
namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

constexpr int kMaxInflight = 128;      // QoS 1 publishes awaiting PUBACK (Paho flow control)
constexpr size_t kMaxQueued = 1024;    // accepted publishes waiting for room in Paho
constexpr int kConnectTimeoutS = 10;   // TCP + TLS + CONNACK
constexpr Millis kAttemptGrace(5000);  // after which a silent connect attempt counts as failed

void Log(const std::string& role, const std::string& message) {
  agent::Log("info", role + " link: " + message);
}

// "MQTT error [-1]: Failure (TCP/TLS connect failure)" for a failed token: its return code and
// the C library's text for it, or the CONNACK's refusal (MQTT 3.1.1 code, MQTT 5 reason code).
std::string Describe(const mqtt::token& t) {
  static const char* const kConnack311[] = {"",
                                            "unacceptable protocol version",
                                            "identifier rejected",
                                            "server unavailable",
                                            "bad user name or password",
                                            "not authorized"};
  const int rc = t.get_return_code();
  std::string s = "MQTT error [" + std::to_string(rc) + "]";
  if (rc >= 1 && rc <= 5) return s + ": connection refused: " + kConnack311[rc];
  if (rc >= 0x80) {  // an MQTT 5 CONNACK reason code
    const char* why = MQTTReasonCode_toString(static_cast<MQTTReasonCodes>(rc));
    return s + ": connection refused: " + (why != nullptr ? why : "unknown reason");
  }
  if (const char* text = MQTTAsync_strerror(rc)) s += std::string(": ") + text;
  // 1.2.0's token has no getter for the C library's message ("TCP connect timeout"); only the
  // exception from try_wait() carries it. try_wait() does not block: the token is complete
  // before its listener runs.
  try {
    const_cast<mqtt::token&>(t).try_wait();
  } catch (const mqtt::exception& e) {
    if (!e.get_message().empty()) s += " (" + e.get_message() + ")";
  }
  const int reason = t.get_reason_code();
  const std::string why = mqtt::exception::reason_code_str(reason);
  if (reason != mqtt::ReasonCode::SUCCESS && !why.empty()) s += ". Reason: " + why;
  return s;
}

bool IsTlsScheme(const std::string& scheme) {
  return scheme == "ssl" || scheme == "mqtts" || scheme == "wss";
}

// Checks what Paho would only report at connect time: scheme, host, port.
Status ValidateUri(const std::string& uri, bool tls_configured) {
  const auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("uri '" + uri + "': " + why);
  };
  const size_t sep = uri.find("://");
  if (sep == std::string::npos) return bad("expected scheme://host[:port]");
  const std::string scheme = uri.substr(0, sep);
  if (scheme != "tcp" && scheme != "mqtt" && scheme != "ws" && !IsTlsScheme(scheme)) {
    return bad("unsupported scheme '" + scheme + "' (tcp, mqtt, ssl, mqtts, ws, wss)");
  }
  if (tls_configured && !IsTlsScheme(scheme)) {
    return bad("tls is configured but the scheme is '" + scheme + "' (use ssl:// or mqtts://)");
  }
  const std::string authority = uri.substr(sep + 3, uri.find('/', sep + 3) - sep - 3);
  const size_t bracket = authority.rfind(']');
  const size_t colon = authority.rfind(':');
  const bool has_port =
      colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
  const std::string host = has_port ? authority.substr(0, colon) : authority;
  if (host.empty() || host.find_first_of(" \t@") != std::string::npos) return bad("bad host");
  if (!has_port) return Status::Ok();
  const std::string port = authority.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) < 1 ||
      std::stoi(port) > 65535) {
    return bad("port '" + port + "' is not in 1..65535");
  }
  return Status::Ok();
}

Status ValidateConfig(const LinkConfig& c) {
  EI_RETURN_IF_ERROR(ValidateUri(c.uri, c.tls.has_value()));
  if (c.mqtt_version != 4 && c.mqtt_version != 5) {
    return Status::InvalidArgument("mqtt_version " + std::to_string(c.mqtt_version) +
                                   " is not 4 (MQTT 3.1.1) or 5");
  }
  if (c.keepalive_s < 0 || c.keepalive_s > 65535) {
    return Status::InvalidArgument("keepalive_s " + std::to_string(c.keepalive_s) +
                                   " is outside 0..65535");
  }
  if (c.reconnect_min_ms < 1 || c.reconnect_max_ms < c.reconnect_min_ms) {
    return Status::InvalidArgument("reconnect_min_ms/reconnect_max_ms: need 1 <= min <= max");
  }
  if (c.qos < 0 || c.qos > 2) return Status::InvalidArgument("qos must be 0, 1 or 2");
  return Status::Ok();
}

// The file's contents without one trailing newline (echo adds one; a password may end in
// spaces, so nothing else is trimmed).
Result<std::string> ReadPasswordFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("password_file '" + path + "'", errno);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

Status CheckReadable(const std::string& key, const std::string& path) {
  if (path.empty() || std::ifstream(path).good()) return Status::Ok();
  return Status::IOError("tls." + key + " '" + path + "'", errno);
}

bool ValidTopicName(std::string_view topic) {
  return !topic.empty() && topic.find_first_of(std::string_view("+#\0", 3)) == std::string::npos;
}

// Publishes, in order, on their way to Paho: at most `window` of them are inside Paho at once.
// Why: Paho C looks at its command queue again only when a command is added or once a second
// (MQTTAsync_sendThread), so a publish it holds back for flow control (its in-flight limit, or
// an MQTT 5 broker's Receive Maximum: 20 on Mosquitto) waits up to a second after the PUBACK
// that made room: about 20 messages a second. Here each completion hands over the next one.
//
// Also maps Paho's per-publish user context (a void*: 32 bits on Arm boards) to the caller's
// 64-bit tag without an allocation per message: the context is a slot number, and slots are
// reused. Context nullptr marks the link's own status messages, which no handler hears about.
//
// Thread-safe. Never held while calling Paho: Paho's receive thread holds its own mutex while it
// runs callbacks, and a QoS 1 publish from another thread takes that mutex.
class PublishQueue {
 public:
  struct Item {
    mqtt::message_ptr message;
    void* context;
  };

  // False when `kMaxQueued` publishes are waiting already. *pump: whether the caller must hand
  // it over (Pump) itself. Not while a publish of ours is inside Paho: its completion, on Paho's
  // receive thread, pumps (see OnPublishDone). Why: that thread holds Paho's mutex anyway, while
  // a publish from any other thread waits for that mutex, which the receive thread also holds
  // while it runs the message callbacks (decoding, tens of microseconds): at saturation the
  // outbox thread blocked on it for almost every result.
  bool Push(mqtt::message_ptr message, uint64_t tag, bool* pump) {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= kMaxQueued) return false;
    queue_.push_back({std::move(message), NewSlot(tag)});
    *pump = in_paho_ == 0;
    return true;
  }
  // The next publish to hand to Paho, unless none waits, the window is full or another thread is
  // handing one over (which then looks again). Call Handed() after handing it over.
  //
  // Once the window has filled, nothing more goes in until a quarter of it is free again; then
  // that quarter goes in at once. Why: each publish wakes Paho's send thread, which then fights
  // the receive thread for Paho's mutex (held during callbacks); handing one publish per PUBACK
  // cost two context switches per message at saturation, a group costs them once. The window
  // stays at least three quarters full, so the broker never waits for us.
  std::optional<Item> Next() {
    std::lock_guard<std::mutex> lock(mu_);
    if (handing_ || queue_.empty()) return std::nullopt;
    if (in_paho_ >= window_) refill_ = true;
    if (refill_ && in_paho_ > window_ - std::max(1, window_ / 4)) return std::nullopt;
    refill_ = false;
    handing_ = true;
    ++in_paho_;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    return item;
  }
  // `refused`: Paho did not take it; it goes back to the front.
  void Handed(std::optional<Item> refused) {
    std::lock_guard<std::mutex> lock(mu_);
    handing_ = false;
    if (!refused) return;
    --in_paho_;
    queue_.push_front(std::move(*refused));
  }
  // A publish Paho had taken is finished: its tag, or nullopt if already reported (FailAll).
  std::optional<uint64_t> Complete(void* context) {
    std::lock_guard<std::mutex> lock(mu_);
    if (context == nullptr) return std::nullopt;
    in_paho_ = std::max(0, in_paho_ - 1);
    const size_t slot = reinterpret_cast<uintptr_t>(context) - 1;
    if (slot >= used_.size() || !used_[slot]) return std::nullopt;
    used_[slot] = false;
    free_.push_back(slot);
    return tags_[slot];
  }
  // The tags of the publishes still waiting here, which are dropped.
  std::vector<uint64_t> DropQueued() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> tags;
    for (const Item& item : queue_) tags.push_back(FreeSlot(item.context));
    queue_.clear();
    return tags;
  }
  // Every tag not reported yet (waiting here or inside Paho); later completions are ignored.
  std::vector<uint64_t> DropAll() {
    std::vector<uint64_t> tags = DropQueued();
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t slot = 0; slot < used_.size(); ++slot) {
      if (used_[slot]) tags.push_back(FreeSlot(reinterpret_cast<void*>(slot + 1)));
    }
    return tags;
  }
  void SetWindow(int window) {
    std::lock_guard<std::mutex> lock(mu_);
    window_ = std::max(1, window);
  }

 private:
  void* NewSlot(uint64_t tag) {
    size_t slot = tags_.size();
    if (free_.empty()) {
      tags_.push_back(tag);
      used_.push_back(true);
    } else {
      slot = free_.back();
      free_.pop_back();
      tags_[slot] = tag;
      used_[slot] = true;
    }
    return reinterpret_cast<void*>(slot + 1);
  }
  uint64_t FreeSlot(void* context) {
    const size_t slot = reinterpret_cast<uintptr_t>(context) - 1;
    used_[slot] = false;
    free_.push_back(slot);
    return tags_[slot];
  }

  std::mutex mu_;
  std::deque<Item> queue_;
  int in_paho_ = 0;
  int window_ = kMaxInflight;
  bool refill_ = false;  // the window filled: wait until a group's room is free
  bool handing_ = false;
  std::vector<uint64_t> tags_;
  std::vector<bool> used_;
  std::vector<size_t> free_;
};

// Forwards Paho's action-listener calls to member functions of the owner.
template <class Owner, void (Owner::*kDone)(const mqtt::token&, bool)>
struct Listener final : mqtt::iaction_listener {
  explicit Listener(Owner* o) : owner(o) {}
  void on_success(const mqtt::token& t) override { (owner->*kDone)(t, true); }
  void on_failure(const mqtt::token& t) override { (owner->*kDone)(t, false); }
  Owner* owner;
};

// Paho C (built without HIGH_PERFORMANCE, as Debian's is) formats a trace line for every
// packet and function entry into an in-memory ring, under a mutex, unless its trace level is
// above TRACE_PROTOCOL: vsnprintf, gettimeofday and strncpy on the receive and send threads for
// every message (several % of the agent's CPU at saturation), and nothing reads that ring
// unless a trace destination is set (Log.c, 1.3.12). MQTT_C_CLIENT_TRACE_LEVEL=ERROR does not
// stop it (it sets only the output level), so the level is raised here, once per process,
// unless an operator asked for Paho's trace (MQTT_C_CLIENT_TRACE or _LEVEL set).
void QuietPahoTrace() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (std::getenv("MQTT_C_CLIENT_TRACE") || std::getenv("MQTT_C_CLIENT_TRACE_LEVEL")) return;
    MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
  });
}

}  // namespace

struct MqttLink::Impl final : mqtt::callback {
  Impl(LinkConfig c, std::string id, std::string r)
      : config(std::move(c)), client_id(std::move(id)), role(std::move(r)) {}
  ~Impl() override;

  // mqtt::callback, on Paho's thread.
  void connected(const std::string& cause) override;
  void connection_lost(const std::string& cause) override;
  void message_arrived(mqtt::const_message_ptr msg) override;
  void delivery_complete(mqtt::delivery_token_ptr) override {}  // see the file comment

  // Action listeners, on Paho's thread.
  void OnPublishDone(const mqtt::token& t, bool ok);
  void OnConnectDone(const mqtt::token& t, bool ok);
  void OnSubscribeDone(const mqtt::token& t, bool ok);
  void OnStatusDone(const mqtt::token& t, bool ok);

  Status BuildConnectOptions();
  void RetryLoop();
  void ScheduleRetryLocked();
  void TryConnect();
  void Subscribe(const std::string& filter, int qos);
  void PublishStatus(const std::string& topic, const std::string& payload);
  void WaitForAttemptLocked(std::unique_lock<std::mutex>& lock, Clock::time_point deadline);
  void Disconnect(const std::string& offline_payload, Clock::time_point deadline);
  void Pump();
  Status MakeClient();
  void RenewClient();
  std::shared_ptr<mqtt::async_client> Client() {
    std::lock_guard<std::mutex> lock(client_mu);
    return client;
  }
  void RecordWindow(const mqtt::token& connect_token);
  void ReportDelivered(uint64_t tag, bool ok);

  const LinkConfig config;
  const std::string client_id;
  const std::string role;
  mqtt::connect_options connect_options;

  std::atomic<MqttMessageHandler*> message_handler{nullptr};
  std::atomic<MqttDeliveryHandler*> delivery_handler{nullptr};
  std::atomic<MqttConnectionHandler*> connection_handler{nullptr};

  std::mutex mu;  // guards the fields up to `cv`
  std::vector<std::pair<std::string, int>> subscriptions;
  std::optional<LastWill> will;
  std::optional<std::pair<std::string, std::string>> birth;
  bool started = false;
  bool stopping = false;
  bool attempt_in_flight = false;  // until connected() has subscribed and sent the birth
  bool renew_client = false;       // the connection was lost: the next attempt uses a new client
  Clock::time_point attempt_deadline;
  std::optional<Clock::time_point> next_attempt;
  int backoff_ms = 0;
  std::minstd_rand jitter{std::random_device{}()};
  std::condition_variable cv;

  std::atomic<bool> is_connected{false};
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> connects{0}, reconnects{0}, messages_in{0}, published{0},
      publish_failures{0};

  PublishQueue queue;
  Listener<Impl, &Impl::OnPublishDone> publish_listener{this};
  Listener<Impl, &Impl::OnConnectDone> connect_listener{this};
  Listener<Impl, &Impl::OnSubscribeDone> subscribe_listener{this};
  Listener<Impl, &Impl::OnStatusDone> status_listener{this};
  std::thread retry_thread;
  // Last: MQTTAsync_destroy may still call the listeners above (commands never sent).
  std::mutex client_mu;  // guards `client` (the pointer; Paho's client is thread-safe)
  std::shared_ptr<mqtt::async_client> client;
  std::vector<std::shared_ptr<mqtt::async_client>> retired;  // the retry thread's (RenewClient)
  std::atomic<bool> destroying_old{false};
};

MqttLink::Impl::~Impl() {
  if (retry_thread.joinable()) retry_thread.join();
  retired.clear();
  client.reset();
}

// ---- Connecting ------------------------------------------------------------------------------

Status MqttLink::Impl::BuildConnectOptions() {
  mqtt::connect_options& o = connect_options;
  o.set_mqtt_version(config.mqtt_version);  // before the clean flags: it clears the other one
  if (config.mqtt_version == 5) {
    o.set_clean_start(true);
  } else {
    o.set_clean_session(true);
  }
  o.set_keep_alive_interval(config.keepalive_s);
  o.set_connect_timeout(kConnectTimeoutS);
  o.set_max_inflight(kMaxInflight);
  o.set_automatic_reconnect(false);
  if (!config.username.empty()) o.set_user_name(config.username);
  if (!config.password_file.empty()) {
    EI_ASSIGN_OR_RETURN(std::string password, ReadPasswordFile(config.password_file));
    o.set_password(password);
  }
  if (IsTlsScheme(config.uri.substr(0, config.uri.find("://")))) {
    mqtt::ssl_options ssl;  // no [tls]: the system's trust store, verified
    if (config.tls) {
      const TlsConfig& t = *config.tls;
      EI_RETURN_IF_ERROR(CheckReadable("ca_file", t.ca_file));
      EI_RETURN_IF_ERROR(CheckReadable("cert_file", t.cert_file));
      EI_RETURN_IF_ERROR(CheckReadable("key_file", t.key_file));
      if (!t.ca_file.empty()) ssl.set_trust_store(t.ca_file);
      if (!t.cert_file.empty()) ssl.set_key_store(t.cert_file);
      if (!t.key_file.empty()) ssl.set_private_key(t.key_file);
      ssl.set_enable_server_cert_auth(t.verify);  // the chain
      ssl.set_verify(t.verify);                   // the host name
    }
    // No ssl.set_error_handler(): see the file comment.
    o.set_ssl(std::move(ssl));
  }
  std::lock_guard<std::mutex> lock(mu);
  if (will) {
    if (!ValidTopicName(will->topic)) {
      return Status::InvalidArgument("last will topic '" + will->topic + "' is not a topic name");
    }
    o.set_will(mqtt::will_options(will->topic, will->payload, will->qos, will->retained));
  }
  return Status::Ok();
}

// The only place that connects: at Start, then after each failure or loss, with exponential
// backoff (+-20% jitter so a fleet does not reconnect in step) until Stop().
void MqttLink::Impl::RetryLoop() {
  std::unique_lock<std::mutex> lock(mu);
  while (!stopping) {
    const auto now = Clock::now();
    if (attempt_in_flight && now >= attempt_deadline) {
      Log(role, "connect attempt got no answer; retrying");
      attempt_in_flight = false;
      ScheduleRetryLocked();
    }
    if (!attempt_in_flight && next_attempt && now >= *next_attempt) {
      next_attempt.reset();
      attempt_in_flight = true;
      attempt_deadline = now + std::chrono::seconds(kConnectTimeoutS) + kAttemptGrace;
      const bool renew = std::exchange(renew_client, false);
      lock.unlock();
      if (renew) RenewClient();
      TryConnect();
      lock.lock();
      continue;
    }
    const auto wake =
        attempt_in_flight ? attempt_deadline : next_attempt.value_or(now + Millis(60000));
    cv.wait_until(lock, wake);
  }
}

void MqttLink::Impl::ScheduleRetryLocked() {
  if (stopping) return;
  std::uniform_int_distribution<int> pct(80, 120);
  const int delay = std::max(1, backoff_ms * pct(jitter) / 100);
  next_attempt = Clock::now() + Millis(delay);
  backoff_ms = std::min(backoff_ms * 2, config.reconnect_max_ms);
  cv.notify_all();
}

void MqttLink::Impl::TryConnect() {
  try {
    Client()->connect(connect_options, nullptr, connect_listener);
  } catch (const mqtt::exception& e) {
    Log(role, "connect to " + config.uri + " failed: " + e.what());
    std::lock_guard<std::mutex> lock(mu);
    attempt_in_flight = false;
    ScheduleRetryLocked();
  }
}

void MqttLink::Impl::OnConnectDone(const mqtt::token& t, bool ok) {
  if (ok) return RecordWindow(t);  // `connected()`, called next, is the event
  std::lock_guard<std::mutex> lock(mu);
  if (!stopping) {
    Log(role, "connect to " + config.uri + " failed: " + Describe(t) + "; retrying in about " +
                  std::to_string(backoff_ms) + " ms");
  }
  attempt_in_flight = false;
  ScheduleRetryLocked();
}

void MqttLink::Impl::connected(const std::string&) {
  std::vector<std::pair<std::string, int>> subs;
  std::optional<std::pair<std::string, std::string>> birth_message;
  {
    std::lock_guard<std::mutex> lock(mu);
    next_attempt.reset();
    backoff_ms = config.reconnect_min_ms;
    is_connected = true;
    if (stopping) {  // Stop() is about to disconnect
      attempt_in_flight = false;
      cv.notify_all();
      return;
    }
    subs = subscriptions;
    birth_message = birth;
  }
  if (connects.fetch_add(1) > 0) reconnects.fetch_add(1);
  SetNoDelayOnConnectedTcpSockets();  // before the first publish: see tcp_nodelay.h
  Log(role, "connected to " + config.uri + " as '" + client_id + "'");
  for (const auto& [filter, qos] : subs) Subscribe(filter, qos);
  if (birth_message) PublishStatus(birth_message->first, birth_message->second);
  // Publishes that met the disconnection on their way into Paho (pushed just after
  // connection_lost() dropped the queue, or refused by Paho as disconnected) belong to the old
  // connection: they fail, so that the caller sends them again after what failed before them.
  // Sending them now would put them ahead of those (an outbox's later result first).
  for (uint64_t tag : queue.DropQueued()) ReportDelivered(tag, false);
  {
    // Only now: a Stop() waiting for the attempt must queue its offline status after the birth.
    std::lock_guard<std::mutex> lock(mu);
    attempt_in_flight = false;
    cv.notify_all();
  }
  if (MqttConnectionHandler* h = connection_handler.load()) h->OnConnected();
}

void MqttLink::Impl::connection_lost(const std::string& cause) {
  is_connected = false;
  Log(role, "connection lost: " + (cause.empty() ? std::string("connection closed") : cause));
  {
    std::lock_guard<std::mutex> lock(mu);
    renew_client = true;
    ScheduleRetryLocked();
  }
  // Paho fails the publishes awaiting a PUBACK itself (clean session); these never reached it.
  for (uint64_t tag : queue.DropQueued()) ReportDelivered(tag, false);
  if (MqttConnectionHandler* h = connection_handler.load()) h->OnDisconnected();
}

// ---- Subscribing and receiving ---------------------------------------------------------------

void MqttLink::Impl::Subscribe(const std::string& filter, int qos) {
  try {
    Client()->subscribe(filter, qos, nullptr, subscribe_listener);
  } catch (const mqtt::exception& e) {
    Log(role, "subscribe '" + filter + "' failed: " + e.what());
  }
}

void MqttLink::Impl::OnSubscribeDone(const mqtt::token& t, bool ok) {
  if (ok) return;
  const auto topics = t.get_topics();
  const std::string filter = topics && !topics->empty() ? (*topics)[0] : "?";
  Log(role, "subscribe '" + filter + "' refused: " + Describe(t));
}

void MqttLink::Impl::message_arrived(mqtt::const_message_ptr msg) {
  messages_in.fetch_add(1, std::memory_order_relaxed);
  MqttMessageHandler* h = message_handler.load();
  if (h == nullptr || !msg) return;
  const mqtt::binary& payload = msg->get_payload();
  try {  // an exception must not unwind into the C library
    h->OnMessage(msg->get_topic(), std::string_view(payload.data(), payload.size()));
  } catch (const std::exception& e) {
    Log(role, "message handler threw on '" + msg->get_topic() + "': " + e.what());
  }
}

// ---- Publishing ------------------------------------------------------------------------------

// MQTT 5 brokers say in the CONNACK how many QoS 1 publishes they take at once; Paho keeps to
// the smaller of that and kMaxInflight, and so must the queue.
void MqttLink::Impl::RecordWindow(const mqtt::token& connect_token) {
  int window = kMaxInflight;
  try {
    const mqtt::connect_response response = connect_token.get_connect_response();
    const mqtt::properties& props = response.get_properties();
    if (props.contains(mqtt::property::RECEIVE_MAXIMUM)) {
      window = std::min<int>(window, mqtt::get<uint16_t>(props, mqtt::property::RECEIVE_MAXIMUM));
    }
  } catch (const std::exception&) {  // no response: Paho's own limit applies
  }
  queue.SetWindow(window);
}

// A new Paho client (not connected). Called by Create, then by RenewClient.
Status MqttLink::Impl::MakeClient() {
  QuietPahoTrace();
  try {
    mqtt::create_options opts(config.mqtt_version);
    opts.set_send_while_disconnected(false);  // the caller's outbox keeps what is not sent
    opts.set_max_buffered_messages(kMaxInflight + 16);  // PublishQueue holds the rest
    auto fresh = std::make_shared<mqtt::async_client>(config.uri, client_id, opts);
    fresh->set_callback(*this);
    std::lock_guard<std::mutex> lock(client_mu);
    client = std::move(fresh);
  } catch (const mqtt::exception& e) {
    return Status::InvalidArgument("uri '" + config.uri + "': " + e.what());
  }
  return Status::Ok();
}

// After a lost connection, each connect attempt gets a new Paho client. Why: Paho keeps publish
// commands it had accepted but not yet written, and sends them right after the next CONNACK,
// ahead of the resend of the older ones whose delivery failed with the connection: a result
// would reach the broker before the one published before it (seen under repeated drops).
// Destroying the old client fails those commands instead (through their listeners), and the
// outbox sends them again in order. On the retry thread, never on one of Paho's threads (a
// client destroyed from its own callback thread deadlocks); a caller still holding the old
// client (Pump) is waited for, bounded.
void MqttLink::Impl::RenewClient() {
  std::shared_ptr<mqtt::async_client> old = Client();
  if (Status s = MakeClient(); !s.ok()) {
    Log(role, "cannot renew the client, keeping the old one: " + s.ToString());
    return;
  }
  retired.push_back(std::move(old));
  const auto deadline = Clock::now() + Millis(1000);
  while (retired.back().use_count() > 1 && Clock::now() < deadline)
    std::this_thread::sleep_for(Millis(1));
  // Its listeners run inside MQTTAsync_destroy: nothing to hand to Paho from there.
  destroying_old = true;
  std::erase_if(retired, [](const auto& c) { return c.use_count() == 1; });  // still used: later
  destroying_old = false;
}

// Hands waiting publishes to Paho while there is room. Called after every change that can make
// room; whichever thread finds another one handing over leaves the work to it.
void MqttLink::Impl::Pump() {
  while (std::optional<PublishQueue::Item> item = queue.Next()) {
    try {
      Client()->publish(item->message, item->context, publish_listener);
      queue.Handed(std::nullopt);
    } catch (const mqtt::exception& e) {
      if (e.get_return_code() == MQTTASYNC_DISCONNECTED) {
        // Lost the connection meanwhile: connection_lost() drops it, or the next connect sends it.
        queue.Handed(std::move(item));
        return;
      }
      queue.Handed(std::nullopt);
      Log(role, "publish on '" + item->message->get_topic() + "' refused: " + e.what());
      if (auto tag = queue.Complete(item->context)) ReportDelivered(*tag, false);
    }
  }
}

void MqttLink::Impl::ReportDelivered(uint64_t tag, bool ok) {
  (ok ? published : publish_failures).fetch_add(1, std::memory_order_relaxed);
  if (MqttDeliveryHandler* h = delivery_handler.load()) h->OnDelivered(tag, ok);
}

void MqttLink::Impl::OnPublishDone(const mqtt::token& t, bool ok) {
  const std::optional<uint64_t> tag = queue.Complete(t.get_user_context());
  if (tag) ReportDelivered(*tag, ok);  // else reported by Stop() already
  if (!destroying_old) Pump();
}

void MqttLink::Impl::PublishStatus(const std::string& topic, const std::string& payload) {
  try {
    Client()->publish(mqtt::message::create(topic, payload, 1, true), nullptr, status_listener);
  } catch (const mqtt::exception& e) {
    Log(role, "status on '" + topic + "' not published: " + e.what());
  }
}

void MqttLink::Impl::OnStatusDone(const mqtt::token& t, bool ok) {
  if (!ok) Log(role, "status not delivered: " + Describe(t));
}

// ---- Stopping --------------------------------------------------------------------------------

// A connect completing while Stop() runs could queue its birth message after our offline one:
// let an attempt in flight finish, birth message included (bounded), before looking.
void MqttLink::Impl::WaitForAttemptLocked(std::unique_lock<std::mutex>& lock,
                                          Clock::time_point deadline) {
  cv.wait_until(lock, deadline, [this] { return !attempt_in_flight; });
}

void MqttLink::Impl::Disconnect(const std::string& offline_payload, Clock::time_point deadline) {
  const auto left = [&] {
    return std::max<int64_t>(0,
                             std::chrono::duration_cast<Millis>(deadline - Clock::now()).count());
  };
  std::optional<LastWill> w;
  {
    std::lock_guard<std::mutex> lock(mu);
    w = will;
  }
  try {
    if (is_connected && w) {
      const std::string& payload = offline_payload.empty() ? w->payload : offline_payload;
      auto tok = Client()->publish(mqtt::message::create(w->topic, payload, 1, true));
      if (!tok->wait_for(Millis(left()))) Log(role, "offline status not acknowledged in time");
    }
    // Paho waits up to the timeout for in-flight messages, then closes; the DISCONNECT packet
    // tells the broker not to publish the will.
    Client()->disconnect(static_cast<int>(left()))->wait_for(Millis(left() + 1000));
  } catch (const mqtt::exception& e) {
    if (e.get_return_code() != MQTTASYNC_DISCONNECTED) Log(role, std::string("stop: ") + e.what());
  }
  is_connected = false;
}

// ---- MqttLink --------------------------------------------------------------------------------

Result<std::unique_ptr<MqttLink>> MqttLink::Create(const LinkConfig& config,
                                                   const std::string& client_id,
                                                   const std::string& role) {
  const std::string context = role + " link";
  EI_RETURN_IF_ERROR(ValidateConfig(config).WithContext(context));
  std::string id = !client_id.empty() ? client_id : config.client_id;
  if (id.empty()) id = "edgeinfer-" + role;
  std::unique_ptr<MqttLink> link(new MqttLink());
  link->impl_ = std::make_unique<Impl>(config, id, role);
  Impl& impl = *link->impl_;
  EI_RETURN_IF_ERROR(impl.MakeClient().WithContext(context));
  impl.backoff_ms = config.reconnect_min_ms;
  return link;
}

MqttLink::~MqttLink() {
  if (impl_) Stop("", 1000);
}

void MqttLink::SetMessageHandler(MqttMessageHandler* h) { impl_->message_handler = h; }
void MqttLink::SetDeliveryHandler(MqttDeliveryHandler* h) { impl_->delivery_handler = h; }
void MqttLink::SetConnectionHandler(MqttConnectionHandler* h) { impl_->connection_handler = h; }

void MqttLink::SetLastWill(const LastWill& will) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->will = will;
}

void MqttLink::SetBirthMessage(const std::string& topic, const std::string& payload) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->birth.emplace(topic, payload);
}

void MqttLink::AddSubscription(const std::string& filter, int qos) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->subscriptions.emplace_back(filter, qos);
  }
  if (impl_->is_connected) impl_->Subscribe(filter, qos);
}

Status MqttLink::Start() {
  Impl& impl = *impl_;
  {
    std::lock_guard<std::mutex> lock(impl.mu);
    if (impl.started || impl.stopping) {
      return Status::InvalidArgument(impl.role + " link: already started or stopped");
    }
  }
  EI_RETURN_IF_ERROR(impl.BuildConnectOptions().WithContext(impl.role + " link"));
  std::lock_guard<std::mutex> lock(impl.mu);
  impl.started = true;
  impl.next_attempt = Clock::now();
  impl.retry_thread = std::thread([&impl] { impl.RetryLoop(); });
  return Status::Ok();
}

bool MqttLink::Publish(std::string_view topic, std::string_view payload, int qos, bool retained,
                       uint64_t tag) {
  Impl& impl = *impl_;
  if (!ValidTopicName(topic) || qos < 0 || qos > 2) {
    Log(impl.role, "publish on '" + std::string(topic) + "' refused: bad topic name or QoS");
  } else if (bool pump = false;
             impl.is_connected && !impl.stopped &&
             impl.queue.Push(mqtt::message::create(std::string(topic), payload.data(),
                                                   payload.size(), qos, retained),
                             tag, &pump)) {
    if (pump) impl.Pump();
    return true;
  }
  impl.publish_failures.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void MqttLink::Stop(const std::string& offline_payload, int timeout_ms) {
  Impl& impl = *impl_;
  const auto deadline = Clock::now() + Millis(std::max(0, timeout_ms));
  {
    std::unique_lock<std::mutex> lock(impl.mu);
    if (impl.stopping) return;
    impl.stopping = true;
    impl.stopped = true;
    impl.cv.notify_all();
    if (!impl.started) return;
    impl.WaitForAttemptLocked(lock, deadline);
  }
  if (impl.retry_thread.joinable()) impl.retry_thread.join();
  impl.Disconnect(offline_payload, deadline);
  // Whatever is not reported yet never will be on this connection (Paho would report commands
  // it never sent only when the client is destroyed).
  for (uint64_t tag : impl.queue.DropAll()) impl.ReportDelivered(tag, false);
}

bool MqttLink::connected() const { return impl_->is_connected; }

LinkStats MqttLink::stats() const {
  const Impl& i = *impl_;
  LinkStats s;
  s.connected = i.is_connected;
  s.connects = i.connects;
  s.reconnects = i.reconnects;
  s.messages_in = i.messages_in;
  s.published = i.published;
  s.publish_failures = i.publish_failures;
  return s;
}

}  // namespace edgeinfer::agent
