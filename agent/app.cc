// The agent process (see app.h): models, links, routing, the outbox publisher, dead letters,
// telemetry, signals, reload and shutdown.
#include "agent/app.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "agent/error_publisher.h"
#include "agent/log.h"
#include "agent/memory_responder.h"
#include "agent/model_loader.h"
#include "agent/mqtt_link.h"
#include "agent/outbox_publisher.h"
#include "agent/pipeline.h"
#include "agent/router.h"
#include "agent/signal_pipe.h"
#include "agent/systemd_service.h"
#include "agent/telemetry_json.h"
#include "storage/outbox.h"
#include "telemetry/memory_probe.h"
#include "telemetry/memory_watchdog.h"
#include "telemetry/prometheus_endpoint.h"
#include "telemetry/telemetry_report.h"

namespace edgeinfer::agent {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// Results still undelivered after this at shutdown stay in the outbox for the next start.
constexpr auto kDrainTimeout = std::chrono::seconds(10);

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

}  // namespace

const char* AgentVersion() { return EDGEINFER_VERSION; }

namespace {

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
  if (a.outbox != b.outbox) keys.push_back("outbox");
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

// The recordings since `*last` (the whole histogram when it is newer than *last: a pipeline
// rebuilt by a reload), and `now` becomes *last.
HistogramSnapshot Interval(HistogramSnapshot now, HistogramSnapshot* last) {
  HistogramSnapshot since = last->count <= now.count && last->buckets.size() == now.buckets.size()
                                ? now.Since(*last)
                                : now;
  *last = std::move(now);
  return since;
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
  std::unique_ptr<SystemdService> service;
  SystemMemorySource memory_source;
  std::unique_ptr<MemoryResponder> memory_responder;
  std::unique_ptr<MemoryWatchdog> memory_watchdog;  // null when [memory] watchdog = false
  std::unique_ptr<TelemetryReporter> reporter;
  std::unique_ptr<PrometheusEndpoint> prometheus;
  std::mutex report_mu;  // the latest report, for the Prometheus endpoint's thread
  Json last_report = Json::object();
  std::atomic<bool> report_now{false};  // a memory level change: report at once
  struct LatencySnapshots {
    HistogramSnapshot inference, end_to_end;
  };
  std::map<std::string, LatencySnapshots> last_latency;  // per pipeline, at the last report
  mutable std::mutex pipelines_mu;  // `pipelines` is replaced on reload; the pinger reads it
  Clock::time_point next_status{};
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
  void ReloadConfig();
  // Builds a report, keeps it for the Prometheus endpoint and, when `publish` and
  // telemetry.interval_s > 0, publishes it.
  void PublishTelemetry(bool publish = true);
  void Shutdown();
  double StuckSeconds() const;
  std::vector<std::shared_ptr<Pipeline>> CurrentPipelines() const;
  Status StartHealth();
  Json BuildReport();
  // Seconds between reports: telemetry.interval_s; 10 when only the Prometheus endpoint wants
  // them; 0 for none.
  int ReportInterval() const {
    if (config.telemetry.interval_s > 0) return config.telemetry.interval_s;
    return config.telemetry.prometheus_port > 0 ? 10 : 0;
  }
  std::string StatusLine() const;
  void UpdateService();
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
  service = std::make_unique<SystemdService>([this] { return StuckSeconds(); });
  signal_fd = InstallSignalPipe({SIGINT, SIGTERM, SIGHUP});
  if (signal_fd < 0) return Status::IOError("signal pipe", errno);
  return Status::Ok();
}

Status App::Impl::CreateLinks() {
  EI_ASSIGN_OR_RETURN(auto outbox, Outbox::Open(OutboxOptionsFor(config)));
  if (!outbox->open_status().ok())
    Log("error", "outbox '" + outbox->db_path() + "': " + outbox->open_status().ToString());
  EI_ASSIGN_OR_RETURN(sink, MqttLink::Create(config.sink, config.sink.client_id, "sink"));
  publisher = std::make_unique<OutboxPublisher>(std::move(outbox), sink.get(), config.sink.qos,
                                                config.outbox.max_in_flight);
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
  auto next_telemetry = Clock::now() + std::chrono::seconds(ReportInterval());
  while (true) {
    const int interval = ReportInterval();
    int timeout_ms = 1000;
    if (interval > 0) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(next_telemetry - Clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1000));
    }
    UpdateService();
    pollfd pfd{signal_fd, POLLIN, 0};
    unsigned char signo = 0;
    if (poll(&pfd, 1, timeout_ms) > 0 && read(signal_fd, &signo, 1) == 1) {
      if (signo == kWakeByte) {
        // Another thread wants the loop now (a memory level change: report it at once).
      } else if (signo == SIGHUP) {
        Reload();
      } else {
        Log("info", std::string(strsignal(signo)) + ": stopping intake and draining");
        return 0;
      }
    }
    if ((interval > 0 && Clock::now() >= next_telemetry) || report_now.exchange(false)) {
      PublishTelemetry();
      next_telemetry = Clock::now() + std::chrono::seconds(ReportInterval());
    }
  }
}

// Applies without a restart: errors_per_minute, telemetry.interval_s, and per pipeline its
// input, batch, postprocess, result_topic and max_streams. A pipeline whose settings changed
// is rebuilt: the new one takes intake at once (its result ids use boot id "{boot}.r{N}", so
// ids stay unique), the old one finishes its queued inputs; partial windows are dropped.
// Anything else changed (RestartKeys) refuses the whole reload, as does an invalid file.
void App::Impl::Reload() {
  service->Reloading();
  ReloadConfig();
  service->Reloaded(StatusLine());
}

void App::Impl::ReloadConfig() {
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
    if (memory_responder) memory_responder->Apply(**rebuilt);  // the current memory level
    next[i] = std::move(*rebuilt);
  }
  for (size_t i : changed) old.push_back(pipelines[i]);
  ++reloads;
  router->SetPipelines(next);
  {
    std::lock_guard<std::mutex> lock(pipelines_mu);
    pipelines = next;
  }
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

// The telemetry report: telemetry/'s sections (process, memory, watchdog, metrics) and the
// agent's own (pipelines, links, outbox, rejections).
Json App::Impl::BuildReport() {
  const ReportHeader header{AgentVersion(), boot_id, config.device_id,
                            std::chrono::duration<double>(Clock::now() - started).count(),
                            static_cast<double>(config.telemetry.interval_s)};
  Json extra = {
      {"ts", UnixMs()},
      {"unknown_topics", router->unknown_topics()},
      {"rejected", errors->Counts()},
      {"links", {{"source", LinkJson(source->stats())}, {"sink", LinkJson(sink->stats())}}},
      {"outbox", OutboxJson(publisher->stats(), publisher->delivered())},
      {"memory_shed", memory_responder->shed()},
      {"memory_capped_batches", memory_responder->capped()},
  };
  Json j = reporter->Build(header, extra);
  Json& pipes = j["pipelines"];
  if (!pipes.is_object()) pipes = Json::object();
  for (const auto& p : CurrentPipelines()) {
    Json& pj = pipes[p->name()];
    pj.update(PipelineJson(p->stats()));
    LatencySnapshots& last = last_latency[p->name()];
    pj["inference_ms"] = Interval(p->inference_ms(), &last.inference).ToJson();
    pj["latency_ms"] = Interval(p->latency_ms(), &last.end_to_end).ToJson();
  }
  if (j.contains("process")) j["rss_bytes"] = j["process"].value("rss_bytes", int64_t{0});
  return j;
}

void App::Impl::PublishTelemetry(bool publish) {
  Json j = BuildReport();
  const std::string payload = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  {
    std::lock_guard<std::mutex> lock(report_mu);
    last_report = std::move(j);
  }
  if (publish && config.telemetry.interval_s > 0)
    sink->Publish(Topic("telemetry"), payload, 0, false, 0);
}

// The memory watchdog, the telemetry reporter and the optional Prometheus endpoint.
Status App::Impl::StartHealth() {
  memory_responder = std::make_unique<MemoryResponder>([this] { return CurrentPipelines(); },
                                                       [this] { publisher->ReleaseMemory(); });
  if (config.memory.watchdog) {
    const MemoryConfig& m = config.memory;
    MemoryWatchdogOptions o{m.step_down,          m.critical, m.recover, m.recover_hold_s * 1000LL,
                            m.psi_full_step_down, m.poll_ms};
    memory_watchdog = std::make_unique<MemoryWatchdog>(
        memory_source, *memory_responder, o, [this](const MemoryTransition& t) {
          Log(t.to > t.from ? "warning" : "info", DescribeTransition(t));
          report_now = true;
          WakeSignalPipe();
        });
    // Between two polls one large batch could touch more arena than the limit leaves.
    memory_responder->GuardArenaGrowth(memory_source, (m.step_down + m.critical) / 2);
    EI_RETURN_IF_ERROR(memory_watchdog->Start());
  }
  reporter = std::make_unique<TelemetryReporter>(nullptr, &memory_source, memory_watchdog.get());
  PublishTelemetry(false);  // what the endpoint serves until the first interval
  if (config.telemetry.prometheus_port > 0) {
    PrometheusEndpointOptions o;
    o.port = config.telemetry.prometheus_port;
    EI_ASSIGN_OR_RETURN(prometheus, PrometheusEndpoint::Start(o, [this] {
                          std::lock_guard<std::mutex> lock(report_mu);
                          return PrometheusText(last_report);
                        }));
    Log("info", "Prometheus metrics on http://127.0.0.1:" + std::to_string(prometheus->port()) +
                    "/metrics");
  }
  return Status::Ok();
}

std::vector<std::shared_ptr<Pipeline>> App::Impl::CurrentPipelines() const {
  std::lock_guard<std::mutex> lock(pipelines_mu);
  return pipelines;
}

double App::Impl::StuckSeconds() const {
  std::lock_guard<std::mutex> lock(pipelines_mu);
  double worst = 0;
  for (const auto& p : pipelines) worst = std::max(worst, p->StuckSeconds());
  return worst;
}

// "2 pipelines; 5120 in, 320 results, 3 rejected; source up, sink down; outbox 41"
std::string App::Impl::StatusLine() const {
  uint64_t in = 0, results = 0, rejected = 0;
  for (const auto& p : pipelines) {
    const PipelineStats s = p->stats();
    in += s.messages_in, results += s.results_published;
    for (uint64_t r : s.rejected) rejected += r;
  }
  return std::to_string(pipelines.size()) + " pipeline(s); " + std::to_string(in) + " in, " +
         std::to_string(results) + " results, " + std::to_string(rejected) + " rejected; source " +
         (source->stats().connected ? "up" : "down") + ", sink " +
         (sink->stats().connected ? "up" : "down") + "; outbox " +
         std::to_string(publisher->stats().depth_rows);
}

// Called by the loop at least once a second: the watchdog's heartbeat, READY once the links
// are up, and a fresh STATUS= every few seconds.
void App::Impl::UpdateService() {
  service->Beat();
  const auto now = Clock::now();
  if (!service->ready()) {
    service->MaybeReady(source->stats().connected && sink->stats().connected, StatusLine());
  } else if (now >= next_status) {
    service->SetStatus(StatusLine());
    next_status = now + std::chrono::seconds(5);
  }
}

void App::Impl::Shutdown() {
  if (shut_down) return;
  shut_down = true;
  service->Stopping("stopping: draining queued inputs and the outbox");
  if (memory_watchdog) memory_watchdog->Stop();
  if (prometheus) prometheus->Stop();
  router->Close();
  source->Stop("", 2000);
  for (auto& p : pipelines) p->Stop();
  if (!publisher->Drain(kDrainTimeout))
    Log("warning", std::to_string(publisher->stats().depth_rows) +
                       " results not yet delivered stay in the outbox for the next start");
  if (reporter) PublishTelemetry();
  publisher->Stop();
  sink->Stop(StatusPayload("offline", boot_id, "shutdown"), 3000);
  Log("info", "stopped; " + std::to_string(publisher->delivered()) + " results delivered");
}

App::Impl::~Impl() {
  // Callbacks first: no memory action, no source message, then no pipeline result, then no
  // sink event.
  if (memory_watchdog) memory_watchdog->Stop();
  if (prometheus) prometheus->Stop();
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
  st = a.StartHealth();
  if (!st.ok()) {
    Log("error", st.ToString());
    return 1;
  }
  Log("info", "running " + std::to_string(a.pipelines.size()) + " pipeline(s) as device '" +
                  a.config.device_id + "', boot " + a.boot_id + "; source " + a.config.source.uri +
                  ", sink " + a.config.sink.uri);
  int code = a.Loop();
  a.Shutdown();
  return code;
}

}  // namespace edgeinfer::agent
