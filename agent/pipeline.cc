// Pipeline: decode -> window -> normalize -> Batcher -> result JSON -> publisher.
//
// Hot path, per message: one memcpy of the payload into simdjson's padded buffer and one parse
// (per-thread parser), values into a reused per-thread float buffer, one copy into the stream's
// ring, one gather (transposing when the model is channel-major) into the windows' scratch,
// normalization in place there, and the batcher's memcpy into its queue. The in-flight side
// table is preallocated; its strings keep their capacity. Per result: post-processing into
// per-thread buffers and one string for the message (the publisher takes ownership of it).
// Locks: the batcher's queue mutex, and `intake_mu` around the stream windows (uncontended:
// the source link delivers on one thread).
#include "agent/pipeline.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>

#include "agent/decoder.h"
#include "agent/log.h"
#include "agent/normalize.h"
#include "agent/postprocess.h"
#include "agent/result_json.h"
#include "agent/stream_windows.h"
#include "inference/batcher.h"

namespace edgeinfer::agent {
namespace {

constexpr int kReasons = static_cast<int>(RejectReason::kCount);

struct WindowSpec {
  int channels = 0;  // 0: no windows, one message is one input
  int window = 0;
  int hop = 0;
  WindowLayout layout = WindowLayout::kChannelMajor;
};

// The layout rule (see stream_windows.h): with input.window = W, the model's input sample
// (its dims without the batch) must end in W (channel-major [C, W]; preferred when both ends
// match) or start with W (time-major [W, C]); C is the sample's elements / W.
Result<WindowSpec> ChooseWindows(const InputConfig& in, const Dims& input_dims, int max_streams) {
  WindowSpec spec;
  if (in.window < 0 || in.hop < 0)
    return Status::InvalidArgument("input.window and input.hop must not be negative");
  if (in.window == 0) return spec;
  if (max_streams < 1) return Status::InvalidArgument("max_streams must be at least 1");
  Dims sample(input_dims.begin() + (!input_dims.empty() && input_dims[0] < 0), input_dims.end());
  const Shape shape = Resolve(sample, 1);
  if (shape.rank == 0 || (shape[shape.rank - 1] != in.window && shape[0] != in.window))
    return Status::InvalidArgument("input.window " + std::to_string(in.window) +
                                   " is neither the first nor the last dim of the model's input "
                                   "sample " +
                                   DimsToString(sample));
  spec.window = in.window;
  spec.hop = in.hop == 0 ? in.window : in.hop;
  spec.channels = static_cast<int>(shape.NumElements() / in.window);
  spec.layout =
      shape[shape.rank - 1] == in.window ? WindowLayout::kChannelMajor : WindowLayout::kTimeMajor;
  return spec;
}

BatcherOptions ToBatcherOptions(const BatchConfig& b) {
  BatcherOptions o;
  o.max_batch = b.max_size;
  o.timeout = std::chrono::milliseconds(b.timeout_ms);
  o.workers = b.workers;
  o.queue_capacity = static_cast<size_t>(std::max(b.queue_capacity, b.max_size));
  return o;
}

// What a message contributes to the results of the windows it completes.
struct Arrival {
  std::string_view topic;
  std::string_view stream;
  Timestamp ts;
  int64_t steady_ns;
  int64_t unix_ms;
};

// One in-flight input's metadata, found again by the batcher's request id.
struct PendingInput {
  std::atomic<bool> busy{false};
  std::string topic;  // strings keep their capacity between uses
  std::string stream;
  std::string ts;
  Timestamp::Kind ts_kind = Timestamp::Kind::kNone;
  int64_t steady_ns = 0;  // arrival, for latency
  int64_t unix_ms = 0;    // arrival, for received_at
};

// The side table: a fixed array of PendingInput, never a map that grows. A slot is claimed by
// an atomic flag (lock-free), scanning from a rotating cursor; slots are freed roughly in
// claim order, so the first probe almost always succeeds. Ids are slot indices.
class PendingTable {
 public:
  // Inputs in flight at once: the batcher's queue, every worker's batch, plus one per thread
  // between claiming a slot and Submit or inside a drop report (a few callers at most).
  static size_t SizeFor(size_t queue_capacity, int max_batch, int workers) {
    return queue_capacity + static_cast<size_t>(max_batch) * workers + 8;
  }
  explicit PendingTable(size_t n) : slots_(new PendingInput[n]), n_(n) {}

  // A free slot, or -1 when every slot is in flight (not reachable within SizeFor's bound).
  int Acquire() {
    for (size_t tries = 0; tries < n_; ++tries) {
      const size_t i = cursor_.fetch_add(1, std::memory_order_relaxed) % n_;
      if (!slots_[i].busy.exchange(true, std::memory_order_acquire)) return static_cast<int>(i);
    }
    return -1;
  }
  PendingInput& at(size_t i) { return slots_[i]; }
  // After the last read of the slot: the next owner's writes happen after this.
  void Release(size_t i) { slots_[i].busy.store(false, std::memory_order_release); }

 private:
  std::unique_ptr<PendingInput[]> slots_;
  size_t n_;
  std::atomic<size_t> cursor_{0};
};

}  // namespace

const char* RejectReasonName(RejectReason r) {
  // Telemetry and errors-topic names, in enum order.
  static constexpr const char* kNames[] = {"malformed",      "wrong_length",    "non_finite",
                                           "oversized",      "unknown_topic",   "queue_overflow",
                                           "stream_evicted", "inference_failed"};
  static_assert(std::size(kNames) == kReasons, "a RejectReason without a name");
  const int i = static_cast<int>(r);
  return i >= 0 && i < kReasons ? kNames[i] : "unknown";
}

struct Pipeline::Impl final : ResultSink {
  Impl(const PipelineConfig& c, Decoder d, Normalizer n, std::shared_ptr<const Model> m)
      : config(c),
        model(std::move(m)),
        decoder(std::move(d)),
        normalizer(std::move(n)),
        post(c.postprocess, &model->graph().info.labels) {}

  void OnMessage(std::string_view topic, std::string_view payload);
  void OnWindows(std::span<float> values, const Arrival& a);
  void Submit(std::span<float> sample, const Arrival& a);
  void OnResult(const Completion& c) override;
  void Publish(const Completion& c, const PendingInput& p);
  void Reject(RejectReason r, std::string_view topic, const std::string& detail) {
    rejected[static_cast<int>(r)].fetch_add(1, std::memory_order_relaxed);
    errors->Reject(config.name, r, topic, detail);
  }

  PipelineConfig config;
  std::shared_ptr<const Model> model;
  Decoder decoder;
  Normalizer normalizer;
  Postprocessor post;
  std::unique_ptr<ResultWriter> writer;
  std::string result_topic;
  ResultPublisher* publisher = nullptr;
  ErrorReporter* errors = nullptr;
  WindowSpec spec;

  std::mutex intake_mu;                    // guards `windows`
  std::unique_ptr<StreamWindows> windows;  // null when one message is one input
  std::atomic<bool> stopped{false};

  // With several workers, sink calls race; the sequence must follow publish order, so taking
  // a number and publishing share this lock. One worker: calls are already ordered, no lock.
  std::mutex publish_mu;
  bool ordered_publish = false;
  std::atomic<uint64_t> sequence{0};

  std::atomic<uint64_t> messages_in{0}, windows_formed{0}, published{0}, streams{0};
  Histogram inference_ms, latency_ms;  // lock-free Record on the workers
  std::atomic<uint64_t> rejected[kReasons] = {};

  std::unique_ptr<PendingTable> pending;
  std::unique_ptr<Batcher> batcher;  // last: destroyed (stopped) before what its sink uses
};

void Pipeline::Impl::OnMessage(std::string_view topic, std::string_view payload) {
  if (stopped.load(std::memory_order_acquire)) return;
  messages_in.fetch_add(1, std::memory_order_relaxed);
  Arrival a{topic, topic, {}, Batcher::NowNs(), UnixMs()};
  DecodedMessage msg;
  thread_local DecodeError error;  // per thread, filled only when a payload is refused
  if (!decoder.Decode(payload, &msg, &error)) return Reject(error.reason, topic, error.detail);
  a.ts = msg.timestamp;
  if (!msg.stream_key.empty()) a.stream = msg.stream_key;
  if (windows) return OnWindows(msg.values, a);
  const size_t want = batcher->input_sample_floats();
  if (msg.values.size() != want)
    return Reject(RejectReason::kWrongLength, topic,
                  std::to_string(msg.values.size()) + " values, the model input takes " +
                      std::to_string(want) + " (input.window = 0: one message is one input)");
  // The decoded values live in this thread's decode buffer: normalize there, no copy.
  Submit(msg.values, a);
}

void Pipeline::Impl::OnWindows(std::span<float> values, const Arrival& a) {
  if (values.empty() || values.size() % spec.channels != 0)
    return Reject(RejectReason::kWrongLength, a.topic,
                  std::to_string(values.size()) + " values are not whole time steps of " +
                      std::to_string(spec.channels) + " channels");
  std::string evicted;
  {
    std::lock_guard<std::mutex> lock(intake_mu);
    if (stopped.load(std::memory_order_relaxed)) return;  // Stop won the race
    // Each window lands in the windows' scratch; normalized there, then copied by Submit.
    const auto& info = windows->Append(a.stream, values, [&](std::span<float> w) { Submit(w, a); });
    streams.store(windows->streams(), std::memory_order_relaxed);
    if (info.evicted)
      evicted = "stream '" + info.evicted_key + "' evicted with " +
                std::to_string(info.evicted_steps) + " steps towards its next window, to keep " +
                "max_streams " + std::to_string(config.max_streams);
  }
  if (!evicted.empty()) Reject(RejectReason::kStreamEvicted, a.topic, evicted);
}

void Pipeline::Impl::Submit(std::span<float> sample, const Arrival& a) {
  normalizer.Apply(sample);
  const int slot = pending->Acquire();
  if (slot < 0)  // only if more inputs are in flight than the batcher can hold: a bug guard
    return Reject(RejectReason::kQueueOverflow, a.topic, "no free in-flight slot");
  PendingInput& p = pending->at(slot);
  p.topic.assign(a.topic);  // assign into kept capacity: no allocation once warmed up
  p.stream.assign(a.stream);
  p.ts_kind = a.ts.kind;
  p.ts.assign(a.ts.text);
  p.steady_ns = a.steady_ns;
  p.unix_ms = a.unix_ms;
  const SubmitResult r = batcher->Submit(sample.data(), sample.size(), this, slot);
  if (r == SubmitResult::kAccepted || r == SubmitResult::kAcceptedDroppedOldest) {
    windows_formed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  pending->Release(slot);
  if (r != SubmitResult::kRejectedStopped)  // stopping: intake is closed, not bad input
    Reject(RejectReason::kWrongLength, a.topic,
           std::string("batcher refused the input: ") + SubmitResultName(r));
}

void Pipeline::Impl::OnResult(const Completion& c) {
  const size_t slot = static_cast<size_t>(c.request_id);
  const PendingInput& p = pending->at(slot);
  if (c.status.ok()) {
    Publish(c, p);
  } else {
    // Dropped under a burst or shed by the memory watchdog; otherwise the model failed.
    const RejectReason r = c.status.code() == Status::Code::kResourceExhausted
                               ? RejectReason::kQueueOverflow
                               : RejectReason::kInferenceFailed;
    Reject(r, p.topic, "stream '" + p.stream + "': " + c.status.message());
  }
  pending->Release(slot);
  // A batch's last result (or failure), and no full batch queued behind it: the publisher need
  // not wait for more (a partial batch waits for its timeout). With a full batch queued
  // (saturation), its results join the group instead: fewer outbox transactions.
  if (c.batch_size > 0 && c.index_in_batch + 1 == c.batch_size && !batcher->FullBatchQueued())
    publisher->EndOfBurst();
}

void Pipeline::Impl::Publish(const Completion& c, const PendingInput& p) {
  thread_local PostResult post_result;  // per worker thread, buffers reused
  thread_local size_t size_hint = 256;  // last message size: one right-sized allocation
  post.Run(c.outputs.empty() ? std::span<const float>() : c.outputs[0], &post_result);
  ResultRecord r;
  r.stream = p.stream;
  r.ts = {p.ts_kind, p.ts};
  r.received_at_ms = p.unix_ms;
  r.outputs = c.outputs;
  r.post = &post_result;
  std::string payload;
  payload.reserve(size_hint + 64);
  std::unique_lock<std::mutex> lock(publish_mu, std::defer_lock);
  if (ordered_publish) lock.lock();
  r.sequence = sequence.fetch_add(1, std::memory_order_relaxed) + 1;
  r.published_at_ms = UnixMs();
  r.latency_ms = static_cast<double>(Batcher::NowNs() - p.steady_ns) / 1e6;
  latency_ms.Record(r.latency_ms);
  inference_ms.Record(static_cast<double>(c.run_ns) / 1e6);
  writer->Write(r, &payload);
  size_hint = payload.size();
  publisher->PublishResult(config.name, r.sequence, result_topic, std::move(payload));
  published.fetch_add(1, std::memory_order_relaxed);
}

// ---- Pipeline ----

Result<std::unique_ptr<Pipeline>> Pipeline::Create(
    const PipelineConfig& config, const AgentConfig& agent, std::shared_ptr<const Model> model,
    const std::string& boot_id, ResultPublisher* publisher, ErrorReporter* errors) {
  const auto ctx = [&](const Status& s) { return s.WithContext("pipeline '" + config.name + "'"); };
  if (!model || !publisher || !errors)
    return ctx(Status::InvalidArgument("needs a model, a publisher and an error reporter"));
  const Graph& g = model->graph();
  if (g.inputs.size() != 1) return ctx(Status::Unsupported("the model must have one input"));
  const Dims& dims = g.tensors[g.inputs[0]].dims;
  auto decoder = Decoder::Create(config.input);
  if (!decoder.ok()) return ctx(decoder.status());
  auto normalizer = Normalizer::Create(g.info, dims);
  if (!normalizer.ok()) return ctx(normalizer.status());
  auto spec = ChooseWindows(config.input, dims, config.max_streams);
  if (!spec.ok()) return ctx(spec.status());
  auto batcher = Batcher::Create(model, ToBatcherOptions(config.batch));
  if (!batcher.ok()) return ctx(batcher.status());

  auto impl = std::make_unique<Impl>(config, std::move(*decoder), std::move(*normalizer), model);
  impl->spec = *spec;
  impl->publisher = publisher;
  impl->errors = errors;
  impl->result_topic = ExpandTopic(config.result_topic, agent, config.name);
  impl->writer =
      std::make_unique<ResultWriter>(ResultIdentity{agent.device_id, boot_id, config.name,
                                                    g.info.name, g.info.version, ModelPrecision(g)},
                                     &impl->post);
  if (spec->channels > 0)
    impl->windows = std::make_unique<StreamWindows>(spec->channels, spec->window, spec->hop,
                                                    config.max_streams, spec->layout);
  Batcher& b = **batcher;
  impl->ordered_publish = b.num_workers() > 1;
  impl->pending = std::make_unique<PendingTable>(PendingTable::SizeFor(
      static_cast<size_t>(std::max(config.batch.queue_capacity, config.batch.max_size)),
      b.max_batch_ceiling(), b.num_workers()));
  impl->batcher = std::move(*batcher);
  std::unique_ptr<Pipeline> p(new Pipeline());
  p->impl_ = std::move(impl);
  return p;
}

Pipeline::~Pipeline() {
  if (impl_) Stop();
}

const std::string& Pipeline::name() const { return impl_->config.name; }

bool Pipeline::Matches(std::string_view topic) const {
  for (const std::string& f : impl_->config.topics)
    if (TopicMatches(f, topic)) return true;
  return false;
}

void Pipeline::OnMessage(std::string_view topic, std::string_view payload) {
  impl_->OnMessage(topic, payload);
}

void Pipeline::Stop() {
  impl_->stopped.store(true, std::memory_order_release);
  { std::lock_guard<std::mutex> lock(impl_->intake_mu); }  // lets a window Submit finish
  impl_->batcher->Stop();  // runs every queued input; each gets its result before this returns
}

void Pipeline::SetMaxBatch(int max_batch) {
  const int ceiling = impl_->batcher->max_batch_ceiling();
  (void)impl_->batcher->SetMaxBatch(std::clamp(max_batch, 1, ceiling));
}

size_t Pipeline::ShedOldest(size_t n) { return impl_->batcher->ShedOldest(n); }

PipelineStats Pipeline::stats() const {
  const Impl& i = *impl_;
  const BatcherStats b = i.batcher->stats();
  PipelineStats s;
  s.messages_in = i.messages_in.load(std::memory_order_relaxed);
  for (int r = 0; r < kReasons; ++r) s.rejected[r] = i.rejected[r].load(std::memory_order_relaxed);
  s.windows = i.windows_formed.load(std::memory_order_relaxed);
  s.inferences = b.completed;
  s.batches = b.batches;
  s.results_published = i.published.load(std::memory_order_relaxed);
  s.queue_depth = b.queue_depth;
  s.streams = i.streams.load(std::memory_order_relaxed);
  s.mean_batch_size = b.mean_batch_size;
  s.max_batch = b.max_batch;
  s.max_batch_ceiling = i.batcher->max_batch_ceiling();
  for (const WorkerStats& w : b.workers) {
    s.planned_max_batch = std::max(s.planned_max_batch, w.max_batch);
    s.arena_bytes += w.arena_bytes;
  }
  return s;
}

HistogramSnapshot Pipeline::inference_ms() const { return impl_->inference_ms.Snapshot(); }
HistogramSnapshot Pipeline::latency_ms() const { return impl_->latency_ms.Snapshot(); }

double Pipeline::StuckSeconds() const {
  const Batcher& b = *impl_->batcher;
  const int64_t now = Batcher::NowNs();
  double worst = 0;
  for (int w = 0; w < b.num_workers(); ++w) {
    const WorkerStats ws = b.worker_stats(w);
    if (ws.busy) worst = std::max(worst, static_cast<double>(now - ws.last_progress_ns) / 1e9);
  }
  // Workers stalled while idle (or all busy elsewhere forever): the queue stops moving.
  return std::max(worst, std::chrono::duration<double>(b.OldestOverdue()).count());
}

// ---- Topic filters ----

namespace {

// The next '/'-separated level of `s` from `*pos`; *pos moves past it (npos after the last).
std::string_view NextLevel(std::string_view s, size_t* pos) {
  const size_t end = s.find('/', *pos);
  const std::string_view level =
      s.substr(*pos, end == std::string_view::npos ? std::string_view::npos : end - *pos);
  *pos = end == std::string_view::npos ? std::string_view::npos : end + 1;
  return level;
}

}  // namespace

bool TopicMatches(std::string_view filter, std::string_view topic) {
  constexpr std::string_view kShare = "$share/";
  if (filter.substr(0, kShare.size()) == kShare) {  // $share/GROUP/filter
    const size_t slash = filter.find('/', kShare.size());
    if (slash == std::string_view::npos) return false;
    filter.remove_prefix(slash + 1);
  }
  if (filter.empty() || topic.empty()) return false;
  // MQTT 4.7.2: a filter starting with a wildcard does not match topics starting with '$'.
  if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) return false;
  size_t f = 0, t = 0;
  while (f != std::string_view::npos) {
    const std::string_view level = NextLevel(filter, &f);
    // '#' (last) matches the parent level and everything below it.
    if (level == "#") return f == std::string_view::npos;
    if (t == std::string_view::npos) return false;  // the topic ran out of levels
    const std::string_view got = NextLevel(topic, &t);
    if (level != "+" && level != got) return false;
  }
  return t == std::string_view::npos;
}

}  // namespace edgeinfer::agent
