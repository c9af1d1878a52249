// The agent process (see app.h): models, links, routing, the outbox publisher, dead letters,
// telemetry, signals, reload and shutdown.
#include "agent/app.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <thread>

#include "agent/mqtt_link.h"
#include "agent/pipeline.h"
#include "inference/eim_writer.h"
#include "inference/onnx/onnx_import.h"
#include "inference/quantize_graph.h"
#include "storage/outbox.h"

namespace edgeinfer::agent {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// Results still undelivered after this at shutdown stay in the outbox for the next start.
constexpr auto kDrainTimeout = std::chrono::seconds(10);
// QoS 1 publishes of results awaiting PUBACK at once (per agent).
constexpr size_t kMaxInFlight = 256;

void Log(const char* level, const std::string& message) {
  std::string line = std::string("edgeinfer-agent: ") + level + ": " + message + "\n";
  std::fputs(line.c_str(), stderr);
}

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A fresh id per process start (the kernel's random UUID), for result ids and the status.
std::string NewBootId() {
  std::ifstream in("/proc/sys/kernel/random/uuid");
  std::string id;
  if (in && std::getline(in, id) && !id.empty()) return id;
  std::random_device rd;
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return buf;
}

Result<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("open '" + path + "'", errno);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Fnv1a64Hex(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Writes the converted graph beside the agent's state and maps it back (weights in the page
// cache, not the heap). Fails when the cache cannot be written.
Result<std::shared_ptr<const Model>> CacheConverted(const Graph& graph, const std::string& path) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec)
    return Status::IOError("create '" + fs::path(path).parent_path().string() + "'", ec.value());
  EI_RETURN_IF_ERROR(WriteEim(graph, path));
  return Model::Load(path);
}

int g_signal_pipe[2] = {-1, -1};

void OnSignal(int signo) {  // async-signal context: write(2) only
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(signo);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &b, 1);
  errno = saved;
}

}  // namespace

const char* AgentVersion() { return EDGEINFER_VERSION; }

int InstallSignalPipe(std::initializer_list<int> signals) {
  if (g_signal_pipe[0] < 0 && pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int s : signals) {
    if (sigaction(s, &sa, nullptr) != 0) return -1;
  }
  return g_signal_pipe[0];
}

Result<std::shared_ptr<const Model>> LoadPipelineModel(const PipelineConfig& p,
                                                       const std::string& state_dir,
                                                       bool write_cache) {
  const std::string ctx = "pipeline '" + p.name + "': model '" + p.model + "'";
  if (!p.model.ends_with(".onnx")) {
    auto m = Model::Load(p.model);
    return m.ok() ? m : Result<std::shared_ptr<const Model>>(m.status().WithContext(ctx));
  }
  QuantizeOptions quantize;
  if (!ParsePrecision(p.precision, &quantize.precision))
    return Status::InvalidArgument(ctx + ": unknown precision '" + p.precision + "'");
  auto bytes = ReadFileBytes(p.model);
  if (!bytes.ok()) return bytes.status().WithContext("pipeline '" + p.name + "'");
  const std::string cache = state_dir + "/models/" + fs::path(p.model).stem().string() + "-" +
                            Fnv1a64Hex(*bytes) + "-" + p.precision + ".eim";
  if (write_cache && fs::exists(cache)) {
    auto m = Model::Load(cache);
    if (m.ok()) return m;
    Log("warning",
        "cached model '" + cache + "' unusable (" + m.status().ToString() + "); converting again");
  }
  auto imported = ImportOnnxBytes(*bytes);
  if (!imported.ok()) return imported.status().WithContext(ctx);
  std::vector<LayerPlan> plan;
  auto graph = QuantizeGraph(*imported, quantize, &plan);  // what `edgeinfer convert` does
  if (!graph.ok()) return graph.status().WithContext(ctx + " at " + p.precision);
  if (write_cache) {
    auto m = CacheConverted(*graph, cache);
    if (m.ok()) {
      Log("info", ctx + " converted to '" + cache + "'");
      return m;
    }
    Log("warning", ctx + ": cannot cache the conversion (" + m.status().ToString() +
                       "); using it from memory");
  }
  return Model::FromGraph(std::move(*graph));
}

namespace {

// ---- dead letters -----------------------------------------------------------------------------

// Counts every rejection; publishes a JSON dead letter on {prefix}/{device}/errors (QoS 0, best
// effort) and logs it, at most `per_minute` a minute (a token bucket; see Burst). The number
// left out since the last one rides on the next ("suppressed_since_last") and in telemetry.
class ErrorPublisher final : public ErrorReporter {
 public:
  ErrorPublisher(const AgentConfig& c)
      : device_(c.device_id), topic_(c.topic_prefix + "/" + c.device_id + "/errors") {
    SetRate(c.errors_per_minute);
  }
  void SetSink(MqttLink* sink) { sink_ = sink; }
  void SetRate(int per_minute) {
    std::lock_guard<std::mutex> lock(mu_);
    per_minute_ = per_minute;
    tokens_ = std::min<double>(tokens_, Burst());
  }

  void Reject(const std::string& pipeline, RejectReason reason, std::string_view topic,
              const std::string& detail) override {
    counts_[static_cast<int>(reason)].fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed = 0;
    if (!Allow(&suppressed)) return;
    Json j = {{"ts", UnixMs()},       {"device", device_},
              {"pipeline", pipeline}, {"reason", RejectReasonName(reason)},
              {"topic", topic},       {"detail", detail}};
    if (suppressed) j["suppressed_since_last"] = suppressed;
    // Topics and details may carry bytes from the sender: never let them break the JSON.
    const std::string payload = j.dump(-1, ' ', false, Json::error_handler_t::replace);
    Log("warning", "rejected: " + payload);
    if (sink_) sink_->Publish(topic_, payload, 0, false, 0);
  }

  Json Counts() const {
    Json j = Json::object();
    for (int r = 0; r < static_cast<int>(RejectReason::kCount); ++r)
      j[RejectReasonName(static_cast<RejectReason>(r))] = counts_[r].load();
    std::lock_guard<std::mutex> lock(mu_);
    j["suppressed"] = suppressed_total_;
    return j;
  }

 private:
  // Ten seconds' worth, at least 10 (at most the minute's): a burst of bad input shows up
  // whole in the dead letters and then settles to the rate.
  double Burst() const { return std::min<double>(per_minute_, std::max(10.0, per_minute_ / 6.0)); }
  bool Allow(uint64_t* suppressed_before) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = Clock::now();
    tokens_ = std::min<double>(
        Burst(), tokens_ + std::chrono::duration<double>(now - last_).count() * per_minute_ / 60);
    last_ = now;
    if (tokens_ < 1) {
      ++suppressed_, ++suppressed_total_;
      return false;
    }
    tokens_ -= 1;
    *suppressed_before = std::exchange(suppressed_, 0);
    return true;
  }

  const std::string device_, topic_;
  MqttLink* sink_ = nullptr;
  std::atomic<uint64_t> counts_[static_cast<int>(RejectReason::kCount)] = {};
  mutable std::mutex mu_;
  int per_minute_ = 60;
  double tokens_ = 10;
  Clock::time_point last_ = Clock::now();
  uint64_t suppressed_ = 0, suppressed_total_ = 0;
};

// ---- routing ----------------------------------------------------------------------------------

// Source messages -> every pipeline whose filters match. Runs on the source link's callback
// thread; the pipeline list is swapped under the exclusive lock (reload), so a message never
// reaches a pipeline that is being stopped.
class Router final : public MqttMessageHandler {
 public:
  explicit Router(ErrorReporter* errors) : errors_(errors) {}

  void SetPipelines(std::vector<std::shared_ptr<Pipeline>> pipelines) {
    std::unique_lock lock(mu_);
    pipelines_ = std::move(pipelines);
  }
  void Close() {
    std::unique_lock lock(mu_);
    closed_ = true;
  }
  uint64_t unknown_topics() const { return unknown_.load(std::memory_order_relaxed); }

  void OnMessage(std::string_view topic, std::string_view payload) override {
    std::shared_lock lock(mu_);
    if (closed_) return;
    bool matched = false;
    for (const auto& p : pipelines_) {
      if (!p->Matches(topic)) continue;
      p->OnMessage(topic, payload);
      matched = true;
    }
    if (matched) return;
    unknown_.fetch_add(1, std::memory_order_relaxed);
    errors_->Reject("", RejectReason::kUnknownTopic, topic, "no pipeline's topics match it");
  }

 private:
  ErrorReporter* errors_;
  std::shared_mutex mu_;
  std::vector<std::shared_ptr<Pipeline>> pipelines_;
  bool closed_ = false;
  std::atomic<uint64_t> unknown_{0};
};

// ---- results: outbox -> sink -------------------------------------------------------------------

// Every result goes into the SQLite outbox first; one thread moves rows to the sink (QoS 1)
// with at most kMaxInFlight awaiting PUBACK, and acks (deletes) them as PUBACKs arrive. A lost
// connection or failed publish returns every in-flight row to pending: after the reconnect the
// oldest undelivered row of each pipeline goes first (at least once, in order per pipeline).
// Publish tags are outbox ids + 1 (tag 0: publishes that are not results).
class OutboxPublisher final : public ResultPublisher,
                              public MqttDeliveryHandler,
                              public MqttConnectionHandler {
 public:
  OutboxPublisher(std::unique_ptr<Outbox> outbox, MqttLink* sink, int qos)
      : outbox_(std::move(outbox)), sink_(sink), qos_(qos) {}
  ~OutboxPublisher() override { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void PublishResult(const std::string& pipeline, uint64_t sequence, const std::string& topic,
                     std::string payload) override {
    OutboxMessage m{pipeline, topic,    std::move(payload),
                    qos_,     UnixMs(), static_cast<int64_t>(sequence)};
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(m));
    ++handed_over_;
    cv_.notify_one();
  }
  void OnDelivered(uint64_t tag, bool ok) override {
    if (tag == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (ok)
      acks_.push_back(static_cast<int64_t>(tag - 1));
    else
      release_ = true;
    cv_.notify_one();
  }
  void OnConnected() override { SetConnected(true); }
  void OnDisconnected() override { SetConnected(false); }

  // Waits until every result handed over so far is acknowledged by the broker.
  bool Drain(Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      uint64_t handed_over = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        handed_over = handed_over_;
      }
      if (stored_.load() == handed_over && outbox_->Stats().depth_rows == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  OutboxStats stats() const { return outbox_->Stats(); }
  uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }

 private:
  void SetConnected(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    connected_ = on;
    release_ = true;  // whatever was in flight will not be acknowledged on this connection
    cv_.notify_one();
  }

  void Loop() {
    std::vector<OutboxMessage> batch;
    std::vector<int64_t> acks;
    bool release = false, connected = false;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(50),
                     [&] { return stop_ || !pending_.empty() || !acks_.empty() || release_; });
        if (stop_) return;
        batch.swap(pending_);
        acks.swap(acks_);
        release = std::exchange(release_, false);
        connected = connected_;
      }
      Store(&batch);
      (void)outbox_->Ack(acks);  // also flushes batched deletes when due; errors are retried
      delivered_.fetch_add(acks.size(), std::memory_order_relaxed);
      acks.clear();
      if (release) outbox_->ReleaseInFlight();
      if (connected) Send();
    }
  }

  void Store(std::vector<OutboxMessage>* batch) {
    if (batch->empty()) return;
    auto report = outbox_->Append(*batch);
    if (!report.ok())
      Log("error", "outbox: " + report.status().ToString());
    else if (report->dropped_rows > 0)
      Log("warning", "outbox full: dropped the " + std::to_string(report->dropped_rows) +
                         " oldest undelivered results");
    stored_.fetch_add(batch->size());  // stored, dropped for room, or refused: not pending
    batch->clear();
  }

  void Send() {
    claimed_.clear();
    Status st = outbox_->Claim(kMaxInFlight, &claimed_);
    if (!st.ok()) Log("error", "outbox: " + st.ToString());
    for (const ClaimedMessage& c : claimed_) {
      const OutboxMessage& m = c.message;
      if (sink_->Publish(m.topic, m.payload, m.qos, false, static_cast<uint64_t>(c.id) + 1))
        continue;
      // Not connected (the link's handler says so next) or refused: try again shortly.
      outbox_->ReleaseInFlight();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      return;
    }
  }

  std::unique_ptr<Outbox> outbox_;
  MqttLink* sink_;
  const int qos_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<OutboxMessage> pending_;
  std::vector<int64_t> acks_;
  uint64_t handed_over_ = 0;         // results received by PublishResult
  std::atomic<uint64_t> stored_{0};  // of them, through Append
  bool connected_ = false, release_ = false, stop_ = false;
  std::vector<ClaimedMessage> claimed_;  // the loop thread's
  std::atomic<uint64_t> delivered_{0};
  std::thread thread_;
};

// Accepts nothing: for --check-config, whose pipelines never run.
struct NullSinks final : ResultPublisher, ErrorReporter {
  void PublishResult(const std::string&, uint64_t, const std::string&, std::string) override {}
  void Reject(const std::string&, RejectReason, std::string_view, const std::string&) override {}
};

std::string StatusPayload(const std::string& state, const std::string& boot_id,
                          const std::string& reason) {
  Json j = {{"state", state}, {"boot_id", boot_id}, {"version", AgentVersion()}, {"ts", UnixMs()}};
  if (!reason.empty()) j["reason"] = reason;
  return j.dump();
}

// The printed form of a part of the configuration, for comparing old and new on reload.
std::string Printed(const LinkConfig* link, const PipelineConfig* pipeline) {
  AgentConfig c;
  if (link) c.source = c.sink = *link;
  if (pipeline) c.pipelines = {*pipeline};
  return ConfigToToml(c);
}

// Keys whose change needs a restart (the links, the device, the set of pipelines and what
// each one loads and subscribes to).
std::vector<std::string> RestartKeys(const AgentConfig& a, const AgentConfig& b) {
  std::vector<std::string> keys;
  if (a.device_id != b.device_id) keys.push_back("device.id");
  if (a.topic_prefix != b.topic_prefix) keys.push_back("device.topic_prefix");
  if (a.state_dir != b.state_dir) keys.push_back("device.state_dir");
  if (Printed(&a.source, nullptr) != Printed(&b.source, nullptr)) keys.push_back("source");
  if (Printed(&a.sink, nullptr) != Printed(&b.sink, nullptr)) keys.push_back("sink");
  if (a.pipelines.size() != b.pipelines.size()) keys.push_back("the number of [[pipeline]]s");
  for (size_t i = 0; i < std::min(a.pipelines.size(), b.pipelines.size()); ++i) {
    const PipelineConfig &p = a.pipelines[i], &q = b.pipelines[i];
    const std::string at = "pipeline[" + std::to_string(i) + "].";
    if (p.name != q.name) keys.push_back(at + "name");
    if (p.model != q.model) keys.push_back(at + "model");
    if (p.precision != q.precision) keys.push_back(at + "precision");
    if (p.topics != q.topics) keys.push_back(at + "topics");
  }
  return keys;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

Json PipelineJson(const Pipeline& p) {
  const PipelineStats s = p.stats();
  Json rejected = Json::object();
  for (int r = 0; r < static_cast<int>(RejectReason::kCount); ++r)
    if (s.rejected[r]) rejected[RejectReasonName(static_cast<RejectReason>(r))] = s.rejected[r];
  return {{"messages_in", s.messages_in},
          {"windows", s.windows},
          {"inferences", s.inferences},
          {"batches", s.batches},
          {"mean_batch_size", s.mean_batch_size},
          {"max_batch", s.max_batch},
          {"results_published", s.results_published},
          {"queue_depth", s.queue_depth},
          {"streams", s.streams},
          {"rejected", rejected}};
}

Json LinkJson(const MqttLink& l) {
  const LinkStats s = l.stats();
  return {{"connected", s.connected},   {"connects", s.connects},
          {"reconnects", s.reconnects}, {"messages_in", s.messages_in},
          {"published", s.published},   {"publish_failures", s.publish_failures}};
}

int64_t RssBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

}  // namespace

Status CheckConfig(const AgentConfig& config) {
  std::vector<std::string> problems;
  for (const LinkConfig* l : {&config.source, &config.sink}) {
    if (!l->password_file.empty() && !ReadFileBytes(l->password_file).ok())
      problems.push_back("password_file '" + l->password_file + "' is not readable");
  }
  NullSinks sinks;
  for (const PipelineConfig& p : config.pipelines) {
    auto model = LoadPipelineModel(p, config.state_dir, /*write_cache=*/false);
    if (!model.ok()) {
      problems.push_back(model.status().message());
      continue;
    }
    auto pipeline = Pipeline::Create(p, config, *model, "check", &sinks, &sinks);
    if (!pipeline.ok()) problems.push_back(pipeline.status().message());
  }
  if (problems.empty()) return Status::Ok();
  return Status::InvalidArgument(Join(problems));
}

// ---- the agent ------------------------------------------------------------------------------

struct App::Impl {
  AgentConfig config;
  std::string boot_id = NewBootId();
  Clock::time_point started = Clock::now();
  int reloads = 0;
  int signal_fd = -1;  // the signal pipe's read end (process-wide, never closed)
  std::unique_ptr<ErrorPublisher> errors;
  std::unique_ptr<Router> router;
  std::unique_ptr<MqttLink> sink;
  std::unique_ptr<OutboxPublisher> publisher;
  std::vector<std::shared_ptr<const Model>> models;  // per pipeline
  std::vector<std::shared_ptr<Pipeline>> pipelines;
  std::unique_ptr<MqttLink> source;
  bool shut_down = false;

  ~Impl();
  std::string Topic(const char* leaf) const {
    return config.topic_prefix + "/" + config.device_id + "/" + leaf;
  }
  Status Init();
  Status CreateLinks();
  Result<std::shared_ptr<Pipeline>> MakePipeline(const AgentConfig& c, size_t i,
                                                 const std::string& boot);
  int Loop();
  void Reload();
  void PublishTelemetry();
  void Shutdown();
};

Status App::Impl::Init() {
  std::error_code ec;
  fs::create_directories(config.state_dir, ec);
  if (ec) Log("warning", "state_dir '" + config.state_dir + "': " + ec.message());
  for (const PipelineConfig& p : config.pipelines) {
    EI_ASSIGN_OR_RETURN(auto model, LoadPipelineModel(p, config.state_dir, true));
    models.push_back(std::move(model));
  }
  errors = std::make_unique<ErrorPublisher>(config);
  router = std::make_unique<Router>(errors.get());
  EI_RETURN_IF_ERROR(CreateLinks());
  for (size_t i = 0; i < config.pipelines.size(); ++i) {
    EI_ASSIGN_OR_RETURN(auto p, MakePipeline(config, i, boot_id));
    pipelines.push_back(std::move(p));
  }
  router->SetPipelines(pipelines);
  signal_fd = InstallSignalPipe({SIGINT, SIGTERM, SIGHUP});
  if (signal_fd < 0) return Status::IOError("signal pipe", errno);
  return Status::Ok();
}

Status App::Impl::CreateLinks() {
  OutboxOptions oo;
  oo.state_dir = config.state_dir;
  EI_ASSIGN_OR_RETURN(auto outbox, Outbox::Open(oo));
  if (!outbox->open_status().ok())
    Log("warning", "outbox '" + outbox->db_path() + "': " + outbox->open_status().ToString());
  EI_ASSIGN_OR_RETURN(sink, MqttLink::Create(config.sink, config.sink.client_id, "sink"));
  publisher = std::make_unique<OutboxPublisher>(std::move(outbox), sink.get(), config.sink.qos);
  errors->SetSink(sink.get());
  sink->SetDeliveryHandler(publisher.get());
  sink->SetConnectionHandler(publisher.get());
  sink->SetLastWill(
      {Topic("status"), StatusPayload("offline", boot_id, "connection lost"), 1, true});
  sink->SetBirthMessage(Topic("status"), StatusPayload("online", boot_id, ""));
  EI_ASSIGN_OR_RETURN(source, MqttLink::Create(config.source, config.source.client_id, "source"));
  source->SetMessageHandler(router.get());
  std::set<std::string> filters;
  for (const PipelineConfig& p : config.pipelines) filters.insert(p.topics.begin(), p.topics.end());
  for (const std::string& f : filters) source->AddSubscription(f, config.source.qos);
  return Status::Ok();
}

Result<std::shared_ptr<Pipeline>> App::Impl::MakePipeline(const AgentConfig& c, size_t i,
                                                          const std::string& boot) {
  EI_ASSIGN_OR_RETURN(
      auto p, Pipeline::Create(c.pipelines[i], c, models[i], boot, publisher.get(), errors.get()));
  return std::shared_ptr<Pipeline>(std::move(p));
}

int App::Impl::Loop() {
  auto next_telemetry = Clock::now() + std::chrono::seconds(config.telemetry.interval_s);
  while (true) {
    const int interval = config.telemetry.interval_s;
    int timeout_ms = 1000;
    if (interval > 0) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(next_telemetry - Clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1000));
    }
    pollfd pfd{signal_fd, POLLIN, 0};
    unsigned char signo = 0;
    if (poll(&pfd, 1, timeout_ms) > 0 && read(signal_fd, &signo, 1) == 1) {
      if (signo == SIGHUP) {
        Reload();
      } else {
        Log("info", std::string(strsignal(signo)) + ": stopping intake and draining");
        return 0;
      }
    }
    if (interval > 0 && Clock::now() >= next_telemetry) {
      PublishTelemetry();
      next_telemetry = Clock::now() + std::chrono::seconds(config.telemetry.interval_s);
    }
  }
}

// Applies without a restart: errors_per_minute, telemetry.interval_s, and per pipeline its
// input, batch, postprocess, result_topic and max_streams. A pipeline whose settings changed
// is rebuilt: the new one takes intake at once (its result ids use boot id "{boot}.r{N}", so
// ids stay unique), the old one finishes its queued inputs; partial windows are dropped.
// Anything else changed (RestartKeys) refuses the whole reload, as does an invalid file.
void App::Impl::Reload() {
  auto fresh = LoadConfigFile(config.config_path);
  if (!fresh.ok()) {
    Log("error", "reload refused, nothing applied: " + fresh.status().message());
    return;
  }
  const auto restart = RestartKeys(config, *fresh);
  if (!restart.empty()) {
    Log("error", "reload refused, nothing applied: changing " + Join(restart) + " needs a restart");
    return;
  }
  std::vector<size_t> changed;
  for (size_t i = 0; i < config.pipelines.size(); ++i) {
    if (Printed(nullptr, &config.pipelines[i]) != Printed(nullptr, &fresh->pipelines[i]))
      changed.push_back(i);
  }
  std::vector<std::shared_ptr<Pipeline>> next = pipelines, old;
  const std::string boot = boot_id + ".r" + std::to_string(reloads + 1);
  for (size_t i : changed) {
    auto rebuilt = MakePipeline(*fresh, i, boot);
    if (!rebuilt.ok()) {  // `old` is empty yet: the new pipelines made so far just go away
      Log("error", "reload refused, nothing applied: " + rebuilt.status().message());
      return;
    }
    next[i] = std::move(*rebuilt);
  }
  for (size_t i : changed) old.push_back(pipelines[i]);
  ++reloads;
  router->SetPipelines(next);
  pipelines = next;
  for (auto& p : old) p->Stop();  // every queued input still produces its result
  errors->SetRate(fresh->errors_per_minute);
  fresh->config_path = config.config_path;
  config = std::move(*fresh);
  std::vector<std::string> names;
  for (size_t i : changed) names.push_back(config.pipelines[i].name);
  Log("info", "reloaded " + config.config_path + ": errors_per_minute " +
                  std::to_string(config.errors_per_minute) + ", telemetry.interval_s " +
                  std::to_string(config.telemetry.interval_s) +
                  ", pipelines rebuilt: " + (names.empty() ? "none" : Join(names)));
}

void App::Impl::PublishTelemetry() {
  Json pipes = Json::object();
  for (const auto& p : pipelines) pipes[p->name()] = PipelineJson(*p);
  const OutboxStats o = publisher->stats();
  Json j = {
      {"ts", UnixMs()},
      {"device", config.device_id},
      {"boot_id", boot_id},
      {"version", AgentVersion()},
      {"uptime_s", std::chrono::duration<double>(Clock::now() - started).count()},
      {"rss_bytes", RssBytes()},
      {"pipelines", pipes},
      {"unknown_topics", router->unknown_topics()},
      {"rejected", errors->Counts()},
      {"links", {{"source", LinkJson(*source)}, {"sink", LinkJson(*sink)}}},
      {"outbox",
       {{"depth_rows", o.depth_rows},
        {"in_flight_rows", o.in_flight_rows},
        {"dropped_rows", o.dropped_rows},
        {"degraded", o.degraded},
        {"delivered", publisher->delivered()}}},
  };
  sink->Publish(Topic("telemetry"), j.dump(), 0, false, 0);
}

void App::Impl::Shutdown() {
  if (shut_down) return;
  shut_down = true;
  router->Close();
  source->Stop("", 2000);
  for (auto& p : pipelines) p->Stop();
  if (!publisher->Drain(kDrainTimeout))
    Log("warning", std::to_string(publisher->stats().depth_rows) +
                       " results not yet delivered stay in the outbox for the next start");
  if (config.telemetry.interval_s > 0) PublishTelemetry();
  publisher->Stop();
  sink->Stop(StatusPayload("offline", boot_id, "shutdown"), 3000);
  Log("info", "stopped; " + std::to_string(publisher->delivered()) + " results delivered");
}

App::Impl::~Impl() {
  // Callbacks first: no source message, then no pipeline result, then no sink event.
  if (router) router->Close();
  if (source && !shut_down) source->Stop("", 1000);
  for (auto& p : pipelines) p->Stop();
  if (publisher) publisher->Stop();
  if (sink && !shut_down) sink->Stop(StatusPayload("offline", boot_id, "shutdown"), 1000);
  source.reset();
  pipelines.clear();
  sink.reset();
}

App::App() : impl_(std::make_unique<Impl>()) {}
App::~App() = default;

Result<std::unique_ptr<App>> App::Create(AgentConfig config) {
  std::unique_ptr<App> app(new App());
  app->impl_->config = std::move(config);
  EI_RETURN_IF_ERROR(app->impl_->Init());
  return app;
}

int App::Run() {
  Impl& a = *impl_;
  Status st = a.sink->Start();
  if (st.ok()) st = a.source->Start();
  if (!st.ok()) {
    Log("error", st.ToString());
    return 1;
  }
  a.publisher->Start();
  Log("info", "running " + std::to_string(a.pipelines.size()) + " pipeline(s) as device '" +
                  a.config.device_id + "', boot " + a.boot_id + "; source " + a.config.source.uri +
                  ", sink " + a.config.sink.uri);
  int code = a.Loop();
  a.Shutdown();
  return code;
}

}  // namespace edgeinfer::agent
