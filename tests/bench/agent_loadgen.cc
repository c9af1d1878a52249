// agent-loadgen: the load generator and receiver of scripts/bench_agent.sh.
//
// Publishes sensor messages built from a binary file of float32 samples and, at the same time,
// subscribes to where their answers come back (the agent's results, or the very same topic for
// the broker's own pass-through), then prints one JSON object: messages sent, answers received,
// rates, latency percentiles and the CPU and memory of watched processes over the measured span.
//
// Each message is {"ts":T,"values":[...]} with T the send time in unix microseconds, written
// into a pre-formatted payload just before the send; the agent copies "ts" into its result, so
// the receiver's latency is now - T (same host, same clock). Answers whose ts is older than the
// measured span (warm-up, earlier runs) are not counted.
//
// Pacing: --rate R sends at R messages/s (open loop); --window K (without --rate) keeps at most
// K messages unanswered (closed loop: as fast as the system under test answers, nothing
// dropped by design). Either way at most --inflight sends wait in the client. Bounded in count
// (--count) and time (--max-seconds, and --idle-ms without any answer ends the run).
//
// Uses the Paho MQTT C asynchronous client directly: its send and receive threads do the
// socket work, the main thread paces, the receive callback does a few integer operations.
#include <MQTTAsync.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kUsage[] =
    "usage: agent-loadgen --uri URI [--topic T --payloads FILE --sample-floats N] [--results T]\n"
    "                     [--count N] [--rate R | --window K] [--inflight K] [--qos Q]\n"
    "                     [--warmup N] [--max-seconds S] [--idle-ms MS] [--pid NAME=PID]...\n"
    "  --topic T          publish on T (without it: receive only, until --count answers)\n"
    "  --payloads FILE    float32 little-endian samples, --sample-floats values each; message i\n"
    "                     carries sample i modulo the number in the file\n"
    "  --results T        subscribe to T (filter) and time the answers (without it: send only)\n"
    "  --count N          messages measured (default 10000)\n"
    "  --rate R           messages/s, open loop (default 0: closed loop, see --window)\n"
    "  --window K         closed loop: at most K messages unanswered (default 256)\n"
    "  --inflight K       sends queued in the client at most (default 1000)\n"
    "  --qos Q            publish QoS (default 0); answers are subscribed with QoS 0\n"
    "  --warmup N         first wait until the system answers, then N unmeasured messages\n"
    "                     (default 200)\n"
    "  --max-seconds S    hard time bound of the whole run (default 120)\n"
    "  --idle-ms MS       end when no answer arrived for MS while some are due (default 3000)\n"
    "  --pid NAME=PID     report CPU (utime+stime) and memory (VmRSS, VmHWM) of PID over the\n"
    "                     measured span as NAME (repeatable)\n";

int64_t UnixMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Watched {
  std::string name;
  int pid = 0;
  double cpu_start = 0;  // utime + stime, seconds
};

struct Options {
  std::string uri, topic, results, payloads;
  size_t sample_floats = 0;
  uint64_t count = 10000;
  double rate = 0;
  uint64_t window = 256;
  uint64_t inflight = 1000;
  int qos = 0;
  uint64_t warmup = 200;
  double max_seconds = 120;
  int idle_ms = 3000;
  std::vector<Watched> watched;
};

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "agent-loadgen: %s needs a value\n", a.c_str());
      return false;
    }
    const std::string v = argv[++i];
    char* end = nullptr;
    const double num = std::strtod(v.c_str(), &end);
    const bool is_num = end != v.c_str() && *end == '\0' && num >= 0;
    if (a == "--uri") {
      o->uri = v;
    } else if (a == "--topic") {
      o->topic = v;
    } else if (a == "--results") {
      o->results = v;
    } else if (a == "--payloads") {
      o->payloads = v;
    } else if (a == "--pid") {
      const size_t eq = v.find('=');
      const int pid = eq == std::string::npos ? 0 : std::atoi(v.c_str() + eq + 1);
      if (pid <= 0) {
        std::fprintf(stderr, "agent-loadgen: --pid wants NAME=PID, not '%s'\n", v.c_str());
        return false;
      }
      o->watched.push_back({v.substr(0, eq), pid});
    } else if (!is_num) {
      std::fprintf(stderr, "agent-loadgen: unknown option %s or bad value '%s'\n", a.c_str(),
                   v.c_str());
      return false;
    } else if (a == "--sample-floats") {
      o->sample_floats = static_cast<size_t>(num);
    } else if (a == "--count") {
      o->count = static_cast<uint64_t>(num);
    } else if (a == "--rate") {
      o->rate = num;
    } else if (a == "--window") {
      o->window = static_cast<uint64_t>(num);
    } else if (a == "--inflight") {
      o->inflight = static_cast<uint64_t>(num);
    } else if (a == "--qos") {
      o->qos = static_cast<int>(num);
    } else if (a == "--warmup") {
      o->warmup = static_cast<uint64_t>(num);
    } else if (a == "--max-seconds") {
      o->max_seconds = num;
    } else if (a == "--idle-ms") {
      o->idle_ms = static_cast<int>(num);
    } else {
      std::fprintf(stderr, "agent-loadgen: unknown option %s\n", a.c_str());
      return false;
    }
  }
  if (o->uri.empty() || (o->topic.empty() && o->results.empty()) || o->count == 0 || o->qos > 2 ||
      o->window == 0 || o->inflight == 0) {
    std::fprintf(stderr,
                 "agent-loadgen: needs --uri, --topic or --results, count/window/"
                 "inflight > 0, qos 0..2\n%s",
                 kUsage);
    return false;
  }
  if (!o->topic.empty() && (o->payloads.empty() || o->sample_floats == 0)) {
    std::fprintf(stderr, "agent-loadgen: --topic needs --payloads and --sample-floats\n");
    return false;
  }
  return true;
}

// ---- payloads ---------------------------------------------------------------------------

// Pre-formatted messages; the send time goes into a fixed-width field at kTsOffset.
constexpr char kHead[] = "{\"ts\":";
constexpr size_t kTsOffset = sizeof(kHead) - 1;
constexpr size_t kTsDigits = 16;  // unix microseconds: 16 digits until the year 2286

bool LoadPayloads(const Options& o, std::vector<std::string>* out) {
  std::ifstream in(o.payloads, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t sample_bytes = o.sample_floats * sizeof(float);
  if (!in.good() && !in.eof()) return false;
  if (bytes.empty() || bytes.size() % sample_bytes != 0) {
    std::fprintf(stderr, "agent-loadgen: %s: %zu bytes are not whole samples of %zu floats\n",
                 o.payloads.c_str(), bytes.size(), o.sample_floats);
    return false;
  }
  const size_t n = bytes.size() / sample_bytes;
  std::vector<float> v(o.sample_floats);
  char num[32];
  for (size_t s = 0; s < n; ++s) {
    std::memcpy(v.data(), bytes.data() + s * sample_bytes, sample_bytes);
    std::string m = kHead + std::string(kTsDigits, '0') + ",\"values\":[";
    for (size_t i = 0; i < v.size(); ++i) {
      // Six significant digits: what a sensor's firmware typically prints.
      const auto r = std::to_chars(num, num + sizeof num, v[i], std::chars_format::general, 6);
      if (i) m += ',';
      m.append(num, r.ptr);
    }
    m += "]}";
    out->push_back(std::move(m));
  }
  return true;
}

void StampTs(std::string* m, int64_t us) {
  char* p = m->data() + kTsOffset + kTsDigits;
  for (size_t i = 0; i < kTsDigits; ++i, us /= 10) *--p = static_cast<char>('0' + us % 10);
}

// ---- process statistics -------------------------------------------------------------------

double CpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = s.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos) return -1;
  std::istringstream rest(s.substr(paren + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15 (1-based)
    if (i == 14) utime = std::atof(field.c_str());
    if (i == 15) stime = std::atof(field.c_str());
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int64_t StatusKib(int pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + std::strlen(key) + 1);
  return -1;
}

// ---- the MQTT side ------------------------------------------------------------------------

struct State {
  // Send side.
  std::atomic<uint64_t> completed{0};  // sends the client finished (written or acknowledged)
  std::atomic<uint64_t> send_failures{0};
  // Receive side.
  std::atomic<int64_t> measure_from_us{INT64_MAX};  // answers with ts >= this are measured
  std::atomic<uint64_t> answers{0};                 // every answer with a ts
  std::atomic<uint64_t> measured{0};
  std::atomic<uint64_t> unmeasured{0};
  std::atomic<int64_t> first_answer_ns{0};  // of the measured answers
  std::atomic<int64_t> last_answer_ns{0};
  std::vector<int32_t> latency_us;  // preallocated: the receive callback never allocates
  std::vector<int32_t> agent_us;    // the answer's own "latency_ms" (the agent's share), or -1
  std::vector<int32_t> inbound_us;  // its "received_at" (unix ms) - ts: publish -> agent (may be
                                    // below 0: whole ms), or INT32_MIN when absent
  // Waking the pacing thread.
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> waiting{false};
  std::atomic<int> connected{0};
  std::atomic<int> failed{0};

  void Wake() {
    if (!waiting.load(std::memory_order_acquire)) return;
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_one();
  }
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// The integer after `key` (e.g. "\"ts\":") in an answer; -1 when there is none.
int64_t FindNumber(std::string_view payload, std::string_view key) {
  const size_t at = payload.find(key);
  if (at == std::string_view::npos) return -1;
  int64_t v = -1;
  std::from_chars(payload.data() + at + key.size(), payload.data() + payload.size(), v);
  return v;
}
int64_t FindTs(std::string_view payload) { return FindNumber(payload, "\"ts\":"); }

// An agent result's "latency_ms" (its arrival -> result formed) in microseconds; -1 if none.
int32_t FindAgentLatencyUs(std::string_view payload) {
  const size_t at = payload.find("\"latency_ms\":");
  if (at == std::string_view::npos) return -1;
  double ms = -1;
  std::from_chars(payload.data() + at + 13, payload.data() + payload.size(), ms);
  return ms < 0 ? -1 : static_cast<int32_t>(std::min(ms * 1000, 2e9));
}

int OnMessage(void* ctx, char* topic, int, MQTTAsync_message* m) {
  State& s = *static_cast<State*>(ctx);
  const int64_t now_us = UnixMicros();
  const std::string_view payload(static_cast<const char*>(m->payload),
                                 static_cast<size_t>(m->payloadlen));
  const int64_t ts = FindTs(payload);
  const int32_t agent_us = FindAgentLatencyUs(payload);
  const int64_t received_at_ms = FindNumber(payload, "\"received_at\":");
  MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic);
  if (ts < 0) return 1;
  s.answers.fetch_add(1, std::memory_order_relaxed);
  if (ts >= s.measure_from_us.load(std::memory_order_relaxed)) {
    const uint64_t i = s.measured.fetch_add(1, std::memory_order_relaxed);
    if (i == 0) s.first_answer_ns.store(NowNs(), std::memory_order_relaxed);
    if (i < s.latency_us.size()) {
      s.latency_us[i] = static_cast<int32_t>(std::min<int64_t>(now_us - ts, INT32_MAX));
      s.agent_us[i] = agent_us;
      s.inbound_us[i] =
          received_at_ms < 0 ? INT32_MIN : static_cast<int32_t>(received_at_ms * 1000 - ts);
    }
  } else {
    s.unmeasured.fetch_add(1, std::memory_order_relaxed);
  }
  s.last_answer_ns.store(NowNs(), std::memory_order_relaxed);
  s.Wake();
  return 1;
}

void OnSent(void* ctx, MQTTAsync_successData*) {
  State& s = *static_cast<State*>(ctx);
  s.completed.fetch_add(1, std::memory_order_relaxed);
  s.Wake();
}

void OnSendFailed(void* ctx, MQTTAsync_failureData*) {
  State& s = *static_cast<State*>(ctx);
  s.send_failures.fetch_add(1, std::memory_order_relaxed);
  s.completed.fetch_add(1, std::memory_order_relaxed);
  s.Wake();
}

void OnConnected(void* ctx, MQTTAsync_successData*) {
  static_cast<State*>(ctx)->connected.fetch_add(1);
}
void OnConnectFailed(void* ctx, MQTTAsync_failureData* d) {
  std::fprintf(stderr, "agent-loadgen: connect/subscribe failed: %s\n",
               d && d->message ? d->message : "no reason given");
  static_cast<State*>(ctx)->failed.fetch_add(1);
}
void OnLost(void* ctx, char* cause) {
  std::fprintf(stderr, "agent-loadgen: connection lost: %s\n", cause ? cause : "?");
  static_cast<State*>(ctx)->failed.fetch_add(1);
}

bool WaitCount(const std::atomic<int>& c, int want, const State& s, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (c.load() < want) {
    if (s.failed.load() || Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Turns Nagle's algorithm off on every TCP socket of this process (only the MQTT connections).
// Paho C leaves it on and has no socket option hook; with it on, a publish written while the
// previous one is unacknowledged waits for the broker's delayed ACK, up to 40 ms, which would
// be charged to the system under test.
void DisableNagle() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return;
  while (const dirent* e = ::readdir(d)) {
    const int fd = std::atoi(e->d_name);
    int type = 0;
    socklen_t len = sizeof(type);
    if (fd <= 2 || ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
      continue;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // fails harmlessly on AF_UNIX
  }
  ::closedir(d);
}

// One connection; `subscribe` non-empty: also subscribes to it (QoS 0).
MQTTAsync Connect(const Options& o, const char* role, State* s, const std::string& subscribe) {
  MQTTAsync c = nullptr;
  const std::string id = "loadgen-" + std::to_string(::getpid()) + "-" + role;
  if (MQTTAsync_create(&c, o.uri.c_str(), id.c_str(), MQTTCLIENT_PERSISTENCE_NONE, nullptr) !=
      MQTTASYNC_SUCCESS)
    return nullptr;
  MQTTAsync_setCallbacks(c, s, OnLost, OnMessage, nullptr);
  MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
  co.keepAliveInterval = 30;
  co.cleansession = 1;
  co.maxInflight = 65535;
  co.onSuccess = OnConnected;
  co.onFailure = OnConnectFailed;
  co.context = s;
  const int before = s->connected.load();
  if (MQTTAsync_connect(c, &co) != MQTTASYNC_SUCCESS ||
      !WaitCount(s->connected, before + 1, *s, 10))
    return nullptr;
  if (!subscribe.empty()) {
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = OnConnected;  // counts the SUBACK like a connection
    ro.onFailure = OnConnectFailed;
    ro.context = s;
    if (MQTTAsync_subscribe(c, subscribe.c_str(), 0, &ro) != MQTTASYNC_SUCCESS ||
        !WaitCount(s->connected, before + 2, *s, 10))
      return nullptr;
  }
  return c;
}

// ---- pacing ---------------------------------------------------------------------------------

class Publisher {
 public:
  Publisher(const Options& o, MQTTAsync client, State* s, std::vector<std::string> payloads)
      : o_(o), client_(client), s_(*s), payloads_(std::move(payloads)) {}

  // Sends one message stamped now; false when the client refuses it.
  bool Send() {
    std::string& m = payloads_[sent_ % payloads_.size()];
    StampTs(&m, UnixMicros());
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = m.data();
    msg.payloadlen = static_cast<int>(m.size());
    msg.qos = o_.qos;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = OnSent;
    ro.onFailure = OnSendFailed;
    ro.context = &s_;
    if (MQTTAsync_sendMessage(client_, o_.topic.c_str(), &msg, &ro) != MQTTASYNC_SUCCESS) {
      s_.send_failures.fetch_add(1);
      return false;
    }
    ++sent_;
    return true;
  }

  // Waits until `ready` holds, at most until `deadline`; false at the deadline.
  template <typename Ready>
  bool WaitUntil(Ready ready, Clock::time_point deadline) {
    if (ready()) return true;
    std::unique_lock<std::mutex> lock(s_.mu);
    s_.waiting.store(true, std::memory_order_release);
    // Re-checked every millisecond as well: a wake-up between the check and the wait is not lost.
    while (!ready() && Clock::now() < deadline) s_.cv.wait_for(lock, std::chrono::milliseconds(1));
    s_.waiting.store(false, std::memory_order_release);
    return ready();
  }

  uint64_t sent() const { return sent_; }
  bool ClientHasRoom() const {
    return sent_ - s_.completed.load(std::memory_order_relaxed) < o_.inflight;
  }

 private:
  const Options& o_;
  MQTTAsync client_;
  State& s_;
  std::vector<std::string> payloads_;
  uint64_t sent_ = 0;
};

struct Outcome {
  uint64_t sent = 0;
  Clock::time_point first_send, last_send, end;
  bool stalled = false;
  bool timed_out = false;
};

// Sends `n` measured messages paced by rate or window; `answered` counts answers to them.
template <typename Answered>
Outcome Drive(Publisher& pub, const Options& o, uint64_t n, Answered answered,
              Clock::time_point deadline) {
  Outcome out;
  const uint64_t base = pub.sent();
  out.first_send = Clock::now();
  const auto idle = std::chrono::milliseconds(o.idle_ms);
  auto last_progress = Clock::now();
  uint64_t last_answered = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (o.rate > 0) {
      const auto due = out.first_send + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(i / o.rate));
      std::this_thread::sleep_until(std::min(due, deadline));
    }
    // Closed loop: the window; both: room in the client. A lost answer must not hang us.
    while (!pub.WaitUntil(
        [&] {
          return pub.ClientHasRoom() &&
                 (o.rate > 0 || o.results.empty() || pub.sent() - base - answered() < o.window);
        },
        std::min(deadline, Clock::now() + std::chrono::milliseconds(50)))) {
      if (answered() != last_answered) last_answered = answered(), last_progress = Clock::now();
      if (Clock::now() >= deadline) return out.timed_out = true, out.sent = pub.sent() - base, out;
      if (Clock::now() - last_progress > idle)
        return out.stalled = true, out.sent = pub.sent() - base, out;
    }
    if (!pub.Send()) break;
    out.last_send = Clock::now();
  }
  out.sent = pub.sent() - base;
  return out;
}

// ---- report ----------------------------------------------------------------------------------

double Percentile(const std::vector<int32_t>& sorted, double p) {
  if (sorted.empty()) return -1;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
  return sorted[i] / 1000.0;  // ms
}

void PrintReport(const Options& o, State& s, const Outcome& out, uint64_t received,
                 Clock::time_point last_answer, double self_cpu) {
  const double send_s = Seconds(out.last_send - out.first_send);
  const double span_s = Seconds(out.end - out.first_send);
  // Answers per second between the first and the last measured answer: the steady rate, not
  // counting the time the first one took to come back.
  const Clock::time_point first_answer{std::chrono::nanoseconds(s.first_answer_ns.load())};
  const double recv_s = Seconds(last_answer - first_answer);
  if (const char* dump = std::getenv("AGENT_LOADGEN_DUMP")) {  // arrival order, for a look
    if (FILE* f = std::fopen(dump, "w")) {
      for (uint64_t i = 0; i < std::min<uint64_t>(received, s.latency_us.size()); ++i)
        std::fprintf(f, "%d\n", s.latency_us[i]);
      std::fclose(f);
    }
  }
  std::vector<int32_t> lat(
      s.latency_us.begin(),
      s.latency_us.begin() + std::min<uint64_t>(received, s.latency_us.size()));
  std::sort(lat.begin(), lat.end());
  std::vector<int32_t> agent, inbound;
  for (size_t i = 0; i < std::min<uint64_t>(received, s.agent_us.size()); ++i) {
    if (s.agent_us[i] >= 0) agent.push_back(s.agent_us[i]);
    if (s.inbound_us[i] != INT32_MIN) inbound.push_back(s.inbound_us[i]);
  }
  std::sort(agent.begin(), agent.end());
  std::sort(inbound.begin(), inbound.end());
  std::printf("{\"sent\":%llu,\"received\":%llu,\"lost\":%lld,\"send_failures\":%llu,",
              static_cast<unsigned long long>(out.sent), static_cast<unsigned long long>(received),
              static_cast<long long>(out.sent) - static_cast<long long>(received),
              static_cast<unsigned long long>(s.send_failures.load()));
  std::printf("\"stalled\":%s,\"timed_out\":%s,\"rate_target\":%g,\"window\":%llu,",
              out.stalled ? "true" : "false", out.timed_out ? "true" : "false", o.rate,
              static_cast<unsigned long long>(o.rate > 0 ? 0 : o.window));
  std::printf("\"in_per_s\":%.1f,\"out_per_s\":%.1f,\"span_s\":%.3f,",
              send_s > 0 ? (out.sent - 1) / send_s : 0,
              received > 1 && recv_s > 0 ? (received - 1) / recv_s : 0, span_s);
  std::printf("\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f},",
              Percentile(lat, 0.50), Percentile(lat, 0.90), Percentile(lat, 0.99),
              lat.empty() ? -1.0 : lat.back() / 1000.0);
  // The agent's own share (arrival -> result formed), from the results' latency_ms.
  if (!agent.empty())
    std::printf("\"agent_latency_ms\":{\"p50\":%.3f,\"p99\":%.3f},", Percentile(agent, 0.50),
                Percentile(agent, 0.99));
  // Publish -> the agent's arrival stamp (whole ms: the result's received_at), its p50 and p99.
  if (!inbound.empty())
    std::printf("\"inbound_ms\":{\"p50\":%.1f,\"p99\":%.1f},", Percentile(inbound, 0.50),
                Percentile(inbound, 0.99));
  std::printf("\"loadgen_cpu_s\":%.3f,\"processes\":{", self_cpu);
  for (size_t i = 0; i < o.watched.size(); ++i) {
    const Watched& w = o.watched[i];
    const double cpu = CpuSeconds(w.pid) - w.cpu_start;
    std::printf(
        "%s\"%s\":{\"pid\":%d,\"cpu_s\":%.3f,\"cpu_pct\":%.1f,\"rss_kib\":%lld,"
        "\"hwm_kib\":%lld}",
        i ? "," : "", w.name.c_str(), w.pid, cpu, span_s > 0 ? 100 * cpu / span_s : 0,
        static_cast<long long>(StatusKib(w.pid, "VmRSS:")),
        static_cast<long long>(StatusKib(w.pid, "VmHWM:")));
  }
  std::printf("}}\n");
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int Run(Options& o) {
  std::vector<std::string> payloads;
  if (!o.topic.empty() && !LoadPayloads(o, &payloads)) return 1;
  State s;
  s.latency_us.assign(o.count + 1024, 0);
  s.agent_us.assign(o.count + 1024, -1);
  s.inbound_us.assign(o.count + 1024, INT32_MIN);
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(o.max_seconds));
  MQTTAsync sub = nullptr, pubc = nullptr;
  if (!o.results.empty() && !(sub = Connect(o, "sub", &s, o.results))) return 1;
  if (!o.topic.empty() && !(pubc = Connect(o, "pub", &s, ""))) return 1;
  DisableNagle();

  Outcome out;
  double self_cpu_start = 0;  // the measured span's share of this process's CPU
  if (pubc) {
    Publisher pub(o, pubc, &s, std::move(payloads));
    const auto answers = [&] { return s.answers.load(std::memory_order_relaxed); };
    if (sub) {  // until the system answers (an agent still subscribing drops what it misses)
      const auto warm_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(20));
      while (answers() == 0 && Clock::now() < warm_deadline) {
        pub.Send();
        pub.WaitUntil([&] { return answers() > 0; }, Clock::now() + std::chrono::milliseconds(100));
      }
      if (answers() == 0) {
        std::fprintf(stderr, "agent-loadgen: nothing answered on %s within 20 s\n",
                     o.results.c_str());
        return 1;
      }
    }
    Options warm = o;
    warm.rate = 0;
    warm.window = std::min<uint64_t>(o.window, 64);
    const uint64_t w0 = answers();
    Drive(
        pub, warm, o.warmup, [&] { return answers() - w0; }, deadline);
    if (sub)  // let the warm-up drain, so the measured span starts from an idle system
      pub.WaitUntil([&] { return answers() - w0 >= o.warmup; },
                    std::min(deadline, Clock::now() + std::chrono::seconds(5)));
    for (Watched& w : o.watched) w.cpu_start = CpuSeconds(w.pid);
    self_cpu_start = SelfCpuSeconds();
    s.measure_from_us.store(UnixMicros());
    out = Drive(
        pub, o, o.count, [&] { return s.measured.load(std::memory_order_relaxed); }, deadline);
  } else {  // receive only
    for (Watched& w : o.watched) w.cpu_start = CpuSeconds(w.pid);
    self_cpu_start = SelfCpuSeconds();
    s.measure_from_us.store(UnixMicros());
    out.first_send = out.last_send = Clock::now();
    out.sent = o.count;
  }

  // Answers still due: wait for them, while they keep coming.
  auto last_seen = s.measured.load();
  auto last_change = Clock::now();
  const bool receive_only = !pubc;
  while (sub && s.measured.load() < out.sent && Clock::now() < deadline &&
         ((receive_only && last_seen == 0) ||
          Clock::now() - last_change < std::chrono::milliseconds(o.idle_ms))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (s.measured.load() != last_seen) last_seen = s.measured.load(), last_change = Clock::now();
  }
  out.end = Clock::now();
  if (!sub) {  // send only: wait until the client has written everything
    while (s.completed.load() < out.sent && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    out.end = Clock::now();
  }
  const uint64_t received = sub ? s.measured.load() : 0;
  const Clock::time_point last_answer =
      sub && received ? Clock::time_point(std::chrono::nanoseconds(s.last_answer_ns.load()))
                      : out.end;
  PrintReport(o, s, out, received, last_answer, SelfCpuSeconds() - self_cpu_start);
  std::fflush(stdout);
  for (MQTTAsync* c : {&pubc, &sub}) {
    if (!*c) continue;
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = 1000;
    MQTTAsync_disconnect(*c, &d);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (MQTTAsync* c : {&pubc, &sub})
    if (*c) MQTTAsync_destroy(c);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) return 2;
  return Run(o);
}
