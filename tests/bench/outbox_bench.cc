// outbox_bench: the store-and-forward figures of issue 5, side by side in one run, against a
// real Mosquitto on loopback (started here, tests/agent/mosquitto_fixture.h). Run through
// scripts/bench_outbox.sh. Progress goes to stderr; the table (or --json) to stdout.
//
//   append   results/s written to the outbox (Outbox::Append, batches as the agent forms them)
//   replay   results/s from a stored backlog to the broker (OutboxPublisher, QoS 1, PUBACKs)
//   live     end-to-end results/s through OutboxPublisher vs MqttLink::Publish directly, same
//            link, same broker, same payloads: the outbox's overhead
//   outage   a backlog of an outage (default one hour at 100 results/s) stored directly in the
//            outbox: time to open it, then from the uplink back to the backlog drained while
//            live results (another pipeline, 100/s) also flow, and the live results' delay
#include <mqtt/async_client.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "agent/log.h"
#include "agent/mqtt_link.h"
#include "agent/outbox_publisher.h"
#include "storage/outbox.h"
#include "tests/agent/mosquitto_fixture.h"

namespace edgeinfer::agent {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Options {
  int64_t rows = 100000;         // append, replay
  int64_t live_rows = 50000;     // live comparison, per side
  int64_t outage_rows = 360000;  // one hour at 100/s
  int live_rate = 100;           // live results per second during the outage drain
  int window = 256;              // OutboxPublisher max_in_flight
  int rounds = 3;                // live comparison: alternating runs of each side
  bool json = false;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string Runs(const std::vector<double>& v) {
  std::string s;
  for (double x : v) s += (s.empty() ? "" : ", ") + std::to_string(static_cast<int64_t>(x));
  return s;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void Progress(const std::string& what) { std::fprintf(stderr, "outbox_bench: %s\n", what.c_str()); }

// A result as the agent writes it (result_json.h), about 430 bytes.
std::string ResultPayload(const std::string& pipeline, int64_t seq, int64_t created_ms) {
  char buf[640];
  std::snprintf(buf, sizeof(buf),
                "{\"id\":\"gw-0001:5f0c3a4e-2b7d-4d1e-9c3a-7e1f2a9b8c6d:%s:%lld\",\"device\":"
                "\"gw-0001\",\"boot_id\":\"5f0c3a4e-2b7d-4d1e-9c3a-7e1f2a9b8c6d\",\"pipeline\":"
                "\"%s\",\"sequence\":%lld,\"stream\":\"sensors/m1/vibration\",\"ts\":%lld,"
                "\"received_at\":%lld,\"published_at\":%lld,\"latency_ms\":1.734,\"model\":{"
                "\"name\":\"vibration\",\"version\":\"3\",\"precision\":\"int8\"},\"outputs\":["
                "-2.1843,0.47712,3.90215,-1.0087],\"class\":2,\"score\":3.90215,\"label\":"
                "\"imbalance\"}",
                pipeline.c_str(), static_cast<long long>(seq), pipeline.c_str(),
                static_cast<long long>(seq), static_cast<long long>(created_ms),
                static_cast<long long>(created_ms), static_cast<long long>(created_ms));
  return buf;
}

OutboxMessage Message(const std::string& pipeline, int64_t seq) {
  const int64_t now = UnixMs();
  return {
      pipeline, "edgeinfer/gw-0001/results/" + pipeline, ResultPayload(pipeline, seq, now), 1, now,
      seq};
}

std::unique_ptr<Outbox> OpenOutbox(const fs::path& dir) {
  AgentConfig config;  // the agent's settings, with room for every benchmark's rows
  config.state_dir = dir.string();
  config.outbox.max_bytes = int64_t{1} << 30;
  auto outbox = Outbox::Open(OutboxOptionsFor(config));
  if (!outbox.ok()) {
    Progress("outbox: " + outbox.status().ToString());
    std::exit(1);
  }
  return std::move(outbox).value();
}

// Stores `n` rows of `pipeline` in batches of `batch`; returns the seconds it took.
double Fill(Outbox& outbox, const std::string& pipeline, int64_t n, int batch) {
  std::vector<OutboxMessage> b;
  const auto start = Clock::now();
  for (int64_t seq = 1; seq <= n;) {
    b.clear();
    for (int i = 0; i < batch && seq <= n; ++i) b.push_back(Message(pipeline, seq++));
    auto r = outbox.Append(b);
    if (!r.ok()) Progress("append: " + r.status().ToString());
  }
  return Seconds(Clock::now() - start);
}

std::unique_ptr<MqttLink> Link(const std::string& uri, const std::string& id) {
  LinkConfig c;
  c.uri = uri;
  c.reconnect_min_ms = 10;
  auto link = MqttLink::Create(c, id, "sink");
  if (!link.ok()) {
    Progress("link: " + link.status().ToString());
    std::exit(1);
  }
  return std::move(link).value();
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return true;
}

// Starts the link; returns the seconds until it is connected.
double Connect(MqttLink& link) {
  const auto start = Clock::now();
  link.Start();
  WaitUntil([&] { return link.connected(); }, std::chrono::seconds(10));
  return Seconds(Clock::now() - start);
}

// A producer that is ahead of the uplink waits: a sleep, not a spin (two cores are shared with
// the broker and the link's threads).
void Backoff() { std::this_thread::sleep_for(std::chrono::microseconds(200)); }

// Direct publishing: counts PUBACKs.
struct AckCounter final : MqttDeliveryHandler {
  std::atomic<int64_t> ok{0}, failed{0};
  void OnDelivered(uint64_t, bool delivered) override { (delivered ? ok : failed)++; }
};

// Results/s of `n` results pushed as fast as the path takes them, until the last PUBACK.
double LiveDirect(const std::string& uri, int64_t n) {
  auto link = Link(uri, "bench-direct");
  AckCounter acks;
  link->SetDeliveryHandler(&acks);
  Connect(*link);
  const std::string topic = "edgeinfer/gw-0001/results/live";
  const auto start = Clock::now();
  for (int64_t seq = 1; seq <= n; ++seq) {
    // What the agent would do per result: form it, then hand it over.
    const std::string payload = ResultPayload("live", seq, UnixMs());
    while (!link->Publish(topic, payload, 1, false, static_cast<uint64_t>(seq)))
      Backoff();  // the link's queue is full: wait for PUBACKs
  }
  WaitUntil([&] { return acks.ok.load() >= n; }, std::chrono::seconds(120));
  const double s = Seconds(Clock::now() - start);
  link->Stop("", 1000);
  return n / s;
}

double LiveThroughOutbox(const std::string& uri, const fs::path& dir, int64_t n, int window) {
  auto link = Link(uri, "bench-outbox");
  OutboxPublisher publisher(OpenOutbox(dir), link.get(), 1, static_cast<size_t>(window));
  link->SetDeliveryHandler(&publisher);
  link->SetConnectionHandler(&publisher);
  publisher.Start();
  Connect(*link);
  const std::string topic = "edgeinfer/gw-0001/results/live";
  const auto start = Clock::now();
  for (int64_t seq = 1; seq <= n; ++seq) {
    publisher.PublishResult("live", static_cast<uint64_t>(seq), topic,
                            ResultPayload("live", seq, UnixMs()));
    // Like a producer bounded by the pipeline's queue: at most a few windows ahead.
    while (static_cast<int64_t>(publisher.delivered()) + 4 * window < seq) Backoff();
  }
  WaitUntil([&] { return static_cast<int64_t>(publisher.delivered()) >= n; },
            std::chrono::seconds(120));
  const double s = Seconds(Clock::now() - start);
  publisher.Stop();
  link->Stop("", 1000);
  return n / s;
}

// Delays of the live results seen by a subscriber during the outage drain.
class LiveWatcher : public mqtt::callback {
 public:
  explicit LiveWatcher(const std::string& uri) : client_(uri, "bench-watcher") {
    client_.set_callback(*this);
    client_.connect()->wait();
    client_.subscribe("edgeinfer/gw-0001/results/live", 0)->wait();
  }
  ~LiveWatcher() override {
    try {
      client_.disconnect()->wait();
    } catch (const mqtt::exception&) {
    }
  }
  void message_arrived(mqtt::const_message_ptr msg) override {
    const std::string p = msg->to_string();
    const size_t at = p.find("\"published_at\":");
    if (at == std::string::npos) return;
    const int64_t created = std::stoll(p.substr(at + 15));
    if (created < since_ms_.load()) return;  // produced before the uplink was back: backlog
    std::lock_guard<std::mutex> lock(mu_);
    delays_.push_back(UnixMs() - created);
  }
  // Only results created from `unix_ms` on count.
  void CountFrom(int64_t unix_ms) { since_ms_ = unix_ms; }
  std::vector<int64_t> delays() {
    std::lock_guard<std::mutex> lock(mu_);
    return delays_;
  }

 private:
  mqtt::async_client client_;
  std::atomic<int64_t> since_ms_{std::numeric_limits<int64_t>::max()};
  std::mutex mu_;
  std::vector<int64_t> delays_;
};

struct OutageFigures {
  double fill_s = 0, open_s = 0, connect_s = 0, drain_s = 0, drain_rate = 0;
  int64_t live_sent = 0, live_seen = 0, live_p50_ms = 0, live_max_ms = 0;
};

OutageFigures Outage(const std::string& uri, const fs::path& dir, const Options& opt) {
  OutageFigures f;
  {
    Progress("outage: storing " + std::to_string(opt.outage_rows) + " results");
    auto outbox = OpenOutbox(dir);
    f.fill_s = Fill(*outbox, "vibration", opt.outage_rows, 1000);
  }
  LiveWatcher watcher(uri);
  const auto open_start = Clock::now();
  auto outbox = OpenOutbox(dir);  // the agent starting with the backlog
  f.open_s = Seconds(Clock::now() - open_start);
  auto link = Link(uri, "bench-outage");
  OutboxPublisher publisher(std::move(outbox), link.get(), 1, static_cast<size_t>(opt.window));
  link->SetDeliveryHandler(&publisher);
  link->SetConnectionHandler(&publisher);
  publisher.Start();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> live_sent{0};
  std::thread live([&] {
    const auto period = std::chrono::microseconds(1000000 / opt.live_rate);
    auto next = Clock::now();
    const std::string topic = "edgeinfer/gw-0001/results/live";
    for (int64_t seq = 1; !stop; ++seq) {
      publisher.PublishResult("live", static_cast<uint64_t>(seq), topic,
                              ResultPayload("live", seq, UnixMs()));
      ++live_sent;
      next += period;
      std::this_thread::sleep_until(next);
    }
  });
  Progress("outage: uplink back, draining");
  f.connect_s = Connect(*link);
  const auto start = Clock::now();
  watcher.CountFrom(UnixMs());
  auto last_report = start;
  WaitUntil(
      [&] {
        if (Clock::now() - last_report > std::chrono::seconds(2)) {
          last_report = Clock::now();
          Progress("outage: " + std::to_string(publisher.stats().depth_rows) + " left");
        }
        return static_cast<int64_t>(publisher.delivered()) >= opt.outage_rows &&
               publisher.stats().depth_rows <= 2;  // only live results in flight
      },
      std::chrono::seconds(600));
  f.drain_s = Seconds(Clock::now() - start);
  f.drain_rate = opt.outage_rows / f.drain_s;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  live.join();
  publisher.Drain(std::chrono::seconds(10));
  publisher.Stop();
  link->Stop("", 1000);
  std::vector<int64_t> d = watcher.delays();
  f.live_sent = live_sent;
  f.live_seen = static_cast<int64_t>(d.size());
  if (!d.empty()) {
    std::sort(d.begin(), d.end());
    f.live_p50_ms = d[d.size() / 2];
    f.live_max_ms = d.back();
  }
  return f;
}

int Usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: outbox_bench [--rows N] [--live-rows N] [--outage-rows N] "
               "[--live-rate N] [--window N] [--rounds N] [--json]\n"
               "  --rows N         results appended and replayed (default 100000)\n"
               "  --live-rows N    results per side of the live comparison (default 50000)\n"
               "  --outage-rows N  backlog of the outage figure (default 360000: an hour at "
               "100/s)\n"
               "  --live-rate N    live results per second during the drain (default 100)\n"
               "  --window N       OutboxPublisher results in flight (default 256)\n"
               "  --rounds N       alternating runs per side of the live comparison (default 3)\n"
               "  --json           one JSON object instead of the table\n");
  return code;
}

}  // namespace
}  // namespace edgeinfer::agent

int main(int argc, char** argv) {
  using namespace edgeinfer::agent;
  namespace tm = edgeinfer::testing_mqtt;
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> int64_t {
      if (i + 1 >= argc) std::exit(Usage(2));
      return std::atoll(argv[++i]);
    };
    if (a == "--help" || a == "-h") return Usage(0);
    if (a == "--json")
      opt.json = true;
    else if (a == "--rows")
      opt.rows = next();
    else if (a == "--live-rows")
      opt.live_rows = next();
    else if (a == "--outage-rows")
      opt.outage_rows = next();
    else if (a == "--live-rate")
      opt.live_rate = static_cast<int>(next());
    else if (a == "--window")
      opt.window = static_cast<int>(next());
    else if (a == "--rounds")
      opt.rounds = static_cast<int>(next());
    else
      return Usage(2);
  }
  if (opt.rows < 1 || opt.live_rows < 1 || opt.outage_rows < 1 || opt.live_rate < 1 ||
      opt.window < 1 || opt.rounds < 1)
    return Usage(2);
  if (!tm::MosquittoBroker::Available()) {
    std::fprintf(stderr, "outbox_bench: /usr/sbin/mosquitto is not installed\n");
    return 1;
  }
  tm::MosquittoBroker broker;
  if (!broker.Start()) {
    std::fprintf(stderr, "outbox_bench: %s\n", broker.error().c_str());
    return 1;
  }
  std::string tmpl = fs::temp_directory_path().string() + "/outbox-bench-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return 1;
  const fs::path dir = tmpl;

  Progress("append: " + std::to_string(opt.rows) + " results");
  double append_s = 0;
  {
    auto outbox = OpenOutbox(dir / "replay");
    append_s = Fill(*outbox, "vibration", opt.rows, 16);
  }
  Progress("replay");
  double replay_s = 0;
  {
    auto link = Link(broker.uri(), "bench-replay");
    OutboxPublisher publisher(OpenOutbox(dir / "replay"), link.get(), 1,
                              static_cast<size_t>(opt.window));
    link->SetDeliveryHandler(&publisher);
    link->SetConnectionHandler(&publisher);
    publisher.Start();
    Connect(*link);
    const auto start = Clock::now();
    WaitUntil([&] { return static_cast<int64_t>(publisher.delivered()) >= opt.rows; },
              std::chrono::seconds(300));
    replay_s = Seconds(Clock::now() - start);
    publisher.Stop();
    link->Stop("", 1000);
  }
  // Alternating rounds, medians: the machine's load changes between runs.
  std::vector<double> directs, outboxes;
  for (int r = 0; r < opt.rounds; ++r) {
    Progress("live round " + std::to_string(r + 1) + ": direct, then through the outbox");
    directs.push_back(LiveDirect(broker.uri(), opt.live_rows));
    outboxes.push_back(LiveThroughOutbox(broker.uri(), dir / ("live" + std::to_string(r)),
                                         opt.live_rows, opt.window));
  }
  const double direct = Median(directs), outbox_rate = Median(outboxes);
  const OutageFigures o = Outage(broker.uri(), dir / "outage", opt);
  std::error_code ec;
  fs::remove_all(dir, ec);

  const double overhead = 100.0 * (1.0 - outbox_rate / direct);
  if (opt.json) {
    std::printf(
        "{\"append_rows_per_s\":%.0f,\"replay_rows_per_s\":%.0f,\"live_direct_per_s\":%.0f,"
        "\"live_direct_runs\":[%s],\"live_outbox_runs\":[%s],\"live_outbox_per_s\":%.0f,\"outbox_"
        "overhead_pct\":%.1f,"
        "\"outage_rows\":%lld,\"outage_fill_s\":%.2f,\"outage_open_s\":%.3f,"
        "\"outage_connect_s\":%.3f,\"outage_drain_s\":%.2f,\"outage_drain_rows_per_s\":%.0f,\"live_"
        "during_drain\":{"
        "\"sent\":%lld,\"seen\":%lld,\"delay_p50_ms\":%lld,\"delay_max_ms\":%lld}}\n",
        opt.rows / append_s, opt.rows / replay_s, direct, Runs(directs).c_str(),
        Runs(outboxes).c_str(), outbox_rate, overhead, static_cast<long long>(opt.outage_rows),
        o.fill_s, o.open_s, o.connect_s, o.drain_s, o.drain_rate,
        static_cast<long long>(o.live_sent), static_cast<long long>(o.live_seen),
        static_cast<long long>(o.live_p50_ms), static_cast<long long>(o.live_max_ms));
    return 0;
  }
  std::printf("%-58s %14s %s\n", "measure", "value", "target");
  std::printf("%-58s %11.0f /s\n", "append to the outbox (batches of 16, NORMAL)",
              opt.rows / append_s);
  std::printf("%-58s %11.0f /s  >= 10000\n", "replay a stored backlog to the broker (QoS 1)",
              opt.rows / replay_s);
  std::printf("%-58s %11.0f /s  (median of %s)\n", "live end to end, publishing directly", direct,
              Runs(directs).c_str());
  std::printf("%-58s %11.0f /s  (median of %s)\n", "live end to end, through the outbox",
              outbox_rate, Runs(outboxes).c_str());
  std::printf("%-58s %12.1f %%  <= 10\n", "outbox overhead on live throughput", overhead);
  std::printf(
      "%-58s %12.2f s\n",
      ("outage backlog: open the outbox (" + std::to_string(opt.outage_rows) + " rows)").c_str(),
      o.open_s);
  std::printf("%-58s %12.2f s\n", "outage: sink link connect (Paho, 2 clients in process)",
              o.connect_s);
  std::printf("%-58s %12.2f s  (%.0f /s)\n", "outage backlog: uplink back -> drained", o.drain_s,
              o.drain_rate);
  std::printf("%-58s %9lld ms  (p50 %lld ms; %lld of %lld seen)\n",
              "live results made during the drain: worst delay",
              static_cast<long long>(o.live_max_ms), static_cast<long long>(o.live_p50_ms),
              static_cast<long long>(o.live_seen), static_cast<long long>(o.live_sent));
  return 0;
}
