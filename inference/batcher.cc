#include "inference/batcher.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <system_error>
#include <thread>

#include "inference/session.h"

namespace edgeinfer {

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

// Samples are copied in and out as contiguous rows, so the batch may only scale the leading dim.
Status CheckLeadingBatch(const TensorDesc& t, const char* role) {
  if (t.dtype != DType::kFloat32)
    return Status::Unsupported(std::string(role) + " '" + t.name + "' is " + DTypeName(t.dtype) +
                               "; the batcher handles float32 only");
  for (size_t d = 1; d < t.dims.size(); ++d)
    if (t.dims[d] < 0)
      return Status::Unsupported(std::string(role) + " '" + t.name + "' " + DimsToString(t.dims) +
                                 ": the batch must be the leading dim");
  return Status::Ok();
}

Status CheckModel(const Graph& g) {
  if (g.inputs.size() != 1)
    return Status::Unsupported("the batcher needs a model with one input; this one has " +
                               std::to_string(g.inputs.size()));
  const TensorDesc& in = g.tensors[g.inputs[0]];
  EI_RETURN_IF_ERROR(CheckLeadingBatch(in, "input"));
  for (int o : g.outputs) {
    const TensorDesc& t = g.tensors[o];
    EI_RETURN_IF_ERROR(CheckLeadingBatch(t, "output"));
    if (HasBatch(t.dims) != HasBatch(in.dims))
      return Status::Unsupported("output '" + t.name + "' " + DimsToString(t.dims) +
                                 ": per-sample outputs need the same batch dim as the input");
  }
  return Status::Ok();
}

Status CheckOptions(const BatcherOptions& o) {
  if (o.max_batch < 1) return Status::InvalidArgument("max_batch must be at least 1");
  if (o.workers < 1) return Status::InvalidArgument("workers must be at least 1");
  if (o.timeout.count() < 0) return Status::InvalidArgument("timeout must not be negative");
  if (o.queue_capacity < static_cast<size_t>(o.max_batch))
    return Status::InvalidArgument("queue_capacity " + std::to_string(o.queue_capacity) +
                                   " is smaller than max_batch " + std::to_string(o.max_batch));
  return Status::Ok();
}

// The process-wide ArenaGrowthGuard. The flag spares the workers the lock when there is none.
std::mutex g_guard_mu;
std::shared_ptr<ArenaGrowthGuard> g_guard;
std::atomic<bool> g_guard_set{false};

std::shared_ptr<ArenaGrowthGuard> CurrentGuard() {
  if (!g_guard_set.load(std::memory_order_acquire)) return nullptr;
  std::lock_guard<std::mutex> lock(g_guard_mu);
  return g_guard;
}

}  // namespace

void SetArenaGrowthGuard(std::shared_ptr<ArenaGrowthGuard> guard) {
  std::lock_guard<std::mutex> lock(g_guard_mu);
  g_guard_set.store(guard != nullptr, std::memory_order_release);
  g_guard = std::move(guard);
}

struct alignas(64) Batcher::Worker {
  std::unique_ptr<Session> session;
  std::vector<float> input;                   // ceiling x sample: the gathered batch
  std::vector<Entry> batch;                   // metadata of the gathered samples
  std::vector<std::span<const float>> spans;  // one per output, for the sample being delivered
  int target_seen = 0;                        // the target the session was last planned for
  int limit = 1;                              // largest batch this worker may take now
  int ran = 0;  // largest batch run since the arena was planned: its pages are resident
  uint64_t batch_seq = 0;
  Status broken;  // no arena could be planned: batches fail with this until a re-plan works
  std::thread thread;
  int64_t run_ns = 0;  // the last batch's Session::Run time

  // Read lock-free by stats().
  std::atomic<uint64_t> batches{0};
  std::atomic<int64_t> last_progress_ns{0};
  std::atomic<bool> busy{false};
  std::atomic<int> max_batch{0};
  std::atomic<size_t> arena_bytes{0};

  void PublishPlan() {
    max_batch.store(session->max_batch(), std::memory_order_relaxed);
    arena_bytes.store(session->arena_bytes(), std::memory_order_relaxed);
  }
  void Progress() { last_progress_ns.store(Batcher::NowNs(), std::memory_order_relaxed); }
};

const char* SubmitResultName(SubmitResult r) {
  switch (r) {
    case SubmitResult::kAccepted:
      return "accepted";
    case SubmitResult::kAcceptedDroppedOldest:
      return "accepted, dropped oldest";
    case SubmitResult::kRejectedWrongSize:
      return "rejected: wrong sample size";
    case SubmitResult::kRejectedNoSink:
      return "rejected: no sink";
    case SubmitResult::kRejectedStopped:
      return "rejected: stopped";
  }
  return "unknown";
}

int64_t Batcher::NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<Batcher>> Batcher::Create(std::shared_ptr<const Model> model,
                                                 const BatcherOptions& options) {
  if (!model) return Status::InvalidArgument("no model");
  EI_RETURN_IF_ERROR(CheckOptions(options));
  EI_RETURN_IF_ERROR(CheckModel(model->graph()));
  std::unique_ptr<Batcher> b(new Batcher());
  EI_RETURN_IF_ERROR(b->Init(std::move(model), options));
  return b;
}

Status Batcher::Init(std::shared_ptr<const Model> model, const BatcherOptions& options) {
  for (int i = 0; i < options.workers; ++i) {
    SessionOptions so;
    so.max_batch = options.max_batch;
    so.blas_threads = i == 0 ? options.blas_threads : 0;  // process-wide: set it once
    EI_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model, so));
    workers_.push_back(std::make_unique<Worker>());
    workers_.back()->session = std::move(session);
  }
  const Session& s = *workers_[0]->session;
  ceiling_ = s.max_batch();  // 1 for a model without a batch dim
  target_max_batch_ = ceiling_;
  target_atomic_.store(ceiling_);
  sample_floats_ = static_cast<size_t>(s.input_sample_elements(0));
  for (int o = 0; o < s.num_outputs(); ++o)
    output_floats_.push_back(static_cast<size_t>(s.output_sample_elements(o)));
  timeout_ = options.timeout;
  capacity_ = options.queue_capacity;
  if (sample_floats_ == 0) return Status::Unsupported("the model's input sample is empty");
  if (capacity_ > std::numeric_limits<size_t>::max() / sizeof(float) / sample_floats_)
    return Status::InvalidArgument("queue_capacity " + std::to_string(capacity_) + " too large");
  dropped_status_ = Status::ResourceExhausted(
      "dropped: ingress queue full (" + std::to_string(capacity_) + " samples), oldest first");
  shed_status_ = Status::ResourceExhausted("shed: the memory watchdog dropped queued samples");
  slots_.assign(capacity_ * sample_floats_, 0.f);
  entries_.resize(capacity_);
  return StartWorkers();
}

Status Batcher::StartWorkers() {
  for (auto& w : workers_) {
    w->input.assign(static_cast<size_t>(ceiling_) * sample_floats_, 0.f);
    w->batch.resize(ceiling_);
    w->spans.resize(output_floats_.size());
    w->target_seen = ceiling_;
    w->limit = ceiling_;
    w->PublishPlan();
    w->Progress();
  }
  try {
    for (auto& w : workers_) {
      w->thread = std::thread([this, wp = w.get()] { WorkerLoop(*wp); });
      // Named, so an operator (top -H, gdb) and the watchdog tests can tell the workers apart.
      pthread_setname_np(w->thread.native_handle(), "ei-worker");
    }
  } catch (const std::system_error& e) {
    Stop();  // joins the workers that did start
    return Status::ResourceExhausted(std::string("starting batcher workers: ") + e.what());
  }
  return Status::Ok();
}

Batcher::~Batcher() { Stop(); }

SubmitResult Batcher::Submit(const float* sample, size_t n_floats, ResultSink* sink,
                             uint64_t request_id) {
  SubmitResult result = SubmitResult::kAccepted;
  if (!sample || n_floats != sample_floats_) result = SubmitResult::kRejectedWrongSize;
  if (result == SubmitResult::kAccepted && !sink) result = SubmitResult::kRejectedNoSink;
  if (result != SubmitResult::kAccepted) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return result;
  }
  const int64_t now = NowNs();
  Entry dropped{};
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return SubmitResult::kRejectedStopped;
    }
    if (count_ == capacity_ && PopOldestLocked(&dropped)) {
      result = SubmitResult::kAcceptedDroppedOldest;
      dropped_.fetch_add(1, std::memory_order_relaxed);
      ++outside_calls_;
    }
    const size_t tail = (head_ + count_) % capacity_;
    std::memcpy(&slots_[tail * sample_floats_], sample, sample_floats_ * sizeof(float));
    entries_[tail] = Entry{request_id, next_sequence_++, sink, now};
    ++count_;
    PublishDepthLocked();
    submitted_.fetch_add(1, std::memory_order_relaxed);
    // A first sample starts a timeout; a full batch is ready. Otherwise no one needs waking.
    wake = count_ == 1 || count_ >= static_cast<size_t>(target_max_batch_);
  }
  if (wake) work_cv_.notify_one();
  if (result == SubmitResult::kAcceptedDroppedOldest) ReportDropped(dropped, dropped_status_);
  return result;
}

bool Batcher::PopOldestLocked(Entry* out) {
  if (count_ == 0) return false;
  *out = entries_[head_];
  head_ = (head_ + 1) % capacity_;
  --count_;
  PublishDepthLocked();
  return true;
}

// Called without mu_, with outside_calls_ counting this call so Stop waits for it.
void Batcher::ReportDropped(const Entry& e, const Status& status) {
  const Completion c{e.request_id, e.sequence, 0, -1, 0, e.submit_ns, status, {}};
  e.sink->OnResult(c);
  std::lock_guard<std::mutex> lock(mu_);
  if (--outside_calls_ == 0) idle_cv_.notify_all();
}

size_t Batcher::ShedOldest(size_t n) {
  size_t done = 0;
  // One at a time, so the lock is never held during a sink call and nothing is allocated.
  for (; done < n; ++done) {
    Entry e{};
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!PopOldestLocked(&e)) break;
      shed_.fetch_add(1, std::memory_order_relaxed);
      ++outside_calls_;
    }
    ReportDropped(e, shed_status_);
  }
  return done;
}

Status Batcher::SetMaxBatch(int max_batch) {
  if (max_batch < 1 || max_batch > ceiling_)
    return Status::InvalidArgument("max_batch " + std::to_string(max_batch) + " outside 1.." +
                                   std::to_string(ceiling_));
  {
    std::lock_guard<std::mutex> lock(mu_);
    target_max_batch_ = max_batch;
    target_atomic_.store(max_batch, std::memory_order_relaxed);
  }
  work_cv_.notify_all();  // idle workers re-plan now; a smaller target may complete a batch
  return Status::Ok();
}

void Batcher::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    work_cv_.notify_all();
    idle_cv_.wait(lock, [this] { return outside_calls_ == 0; });
  }
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
}

// ---- Workers ----

void Batcher::WorkerLoop(Worker& w) {
  for (;;) {
    MaybeReplan(w);
    const int n = WaitForBatch(w);
    if (n < 0) return;
    if (n > 0) RunBatch(w, n);
  }
}

void Batcher::MaybeReplan(Worker& w) {
  // Stored under mu_ before WaitForBatch saw the change, so this load sees it.
  const int target = target_atomic_.load(std::memory_order_relaxed);
  if (target == w.target_seen) return;
  w.target_seen = target;
  Status s = w.session->Replan(target);
  // A failed re-plan (no memory to grow) leaves no arena; the smallest one is the best bet.
  if (!s.ok() && target > 1) s = w.session->Replan(1);
  if (!s.ok()) replan_failures_.fetch_add(1, std::memory_order_relaxed);
  w.broken = s;
  w.ran = 0;  // a fresh mapping: nothing resident yet
  w.limit = s.ok() ? std::min(target, w.session->max_batch()) : target;
  w.PublishPlan();
  w.Progress();
}

// Returns the size of the batch taken, 0 when the worker must re-plan first, -1 to exit.
int Batcher::WaitForBatch(Worker& w) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (w.target_seen != target_max_batch_) return 0;
    if (count_ == 0) {
      if (stopping_) return -1;
      work_cv_.wait(lock);
      continue;
    }
    const size_t limit = static_cast<size_t>(w.limit);
    const int64_t deadline = entries_[head_].submit_ns + timeout_.count();
    if (count_ >= limit || stopping_ || NowNs() >= deadline) {
      const int n = static_cast<int>(std::min(count_, limit));
      if (n <= w.ran) return TakeLocked(w, n);
      // Growing into untouched arena pages: ask the guard, without the lock (it may read files).
      lock.unlock();
      const int allowed = AllowGrowth(w, n);
      lock.lock();
      if (w.target_seen != target_max_batch_) return 0;
      if (count_ == 0) continue;  // shed meanwhile
      return TakeLocked(w, std::min({allowed, n, static_cast<int>(count_)}));
    }
    work_cv_.wait_until(lock, SteadyTime(std::chrono::nanoseconds(deadline)));
  }
}

int Batcher::AllowGrowth(const Worker& w, int wanted) {
  const std::shared_ptr<ArenaGrowthGuard> guard = CurrentGuard();
  if (!guard || w.session->arena_bytes() == 0) return wanted;
  const size_t per_sample =
      w.session->arena_bytes() / static_cast<size_t>(std::max(1, w.session->max_batch()));
  return std::clamp(guard->Allow(w.ran, wanted, per_sample), 1, wanted);
}

// Gathers the n oldest samples (at most two contiguous runs of the ring) into w's batch.
int Batcher::TakeLocked(Worker& w, int n) {
  const size_t count = static_cast<size_t>(n);
  const size_t first = std::min(count, capacity_ - head_);
  const size_t row = sample_floats_ * sizeof(float);
  std::memcpy(w.input.data(), &slots_[head_ * sample_floats_], first * row);
  std::memcpy(w.input.data() + first * sample_floats_, slots_.data(), (count - first) * row);
  for (size_t i = 0; i < count; ++i) w.batch[i] = entries_[(head_ + i) % capacity_];
  head_ = (head_ + count) % capacity_;
  count_ -= count;
  PublishDepthLocked();
  w.batch_seq = next_batch_seq_++;
  w.ran = std::max(w.ran, n);
  w.busy.store(true, std::memory_order_relaxed);
  w.Progress();
  if (count_ > 0) work_cv_.notify_one();  // another idle worker can start on the rest
  return n;
}

void Batcher::RunBatch(Worker& w, int n) {
  Status status = w.broken;
  if (status.ok()) {
    const float* in = w.input.data();
    const int64_t start = NowNs();
    status = w.session->Run({&in, 1}, n);
    w.run_ns = NowNs() - start;
  }
  w.Progress();
  batches_.fetch_add(1, std::memory_order_relaxed);
  batched_samples_.fetch_add(n, std::memory_order_relaxed);
  Deliver(w, n, status);
  w.batches.fetch_add(1, std::memory_order_relaxed);
  w.busy.store(false, std::memory_order_relaxed);
}

// Zero-copy: each sink sees spans into the session's outputs, valid until the next Run.
void Batcher::Deliver(Worker& w, int n, const Status& status) {
  std::span<const std::span<const float>> outputs;
  if (status.ok()) outputs = w.spans;
  for (int i = 0; i < n; ++i) {
    const Entry& e = w.batch[i];
    for (size_t o = 0; status.ok() && o < w.spans.size(); ++o) {
      const float* base = w.session->output(static_cast<int>(o)).f32();
      w.spans[o] = {base + i * output_floats_[o], output_floats_[o]};
    }
    // Counted before the call, so a sink that sees its last result also sees it counted.
    (status.ok() ? completed_ : failed_).fetch_add(1, std::memory_order_relaxed);
    e.sink->OnResult(Completion{e.request_id, e.sequence, w.batch_seq, i, n, e.submit_ns, status,
                                outputs, w.run_ns});
    w.Progress();
  }
}

// ---- Stats ----

WorkerStats Batcher::worker_stats(int worker) const {
  const Worker& w = *workers_[worker];
  WorkerStats s;
  s.batches = w.batches.load(std::memory_order_relaxed);
  s.last_progress_ns = w.last_progress_ns.load(std::memory_order_relaxed);
  s.busy = w.busy.load(std::memory_order_relaxed);
  s.max_batch = w.max_batch.load(std::memory_order_relaxed);
  s.arena_bytes = w.arena_bytes.load(std::memory_order_relaxed);
  return s;
}

BatcherStats Batcher::stats() const {
  BatcherStats s;
  s.submitted = submitted_.load(std::memory_order_relaxed);
  s.rejected = rejected_.load(std::memory_order_relaxed);
  s.completed = completed_.load(std::memory_order_relaxed);
  s.failed = failed_.load(std::memory_order_relaxed);
  s.dropped_oldest = dropped_.load(std::memory_order_relaxed);
  s.shed = shed_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.batched_samples = batched_samples_.load(std::memory_order_relaxed);
  s.mean_batch_size = s.batches ? static_cast<double>(s.batched_samples) / s.batches : 0.0;
  s.replan_failures = replan_failures_.load(std::memory_order_relaxed);
  s.queue_depth = queue_depth_.load(std::memory_order_relaxed);
  s.max_batch = target_atomic_.load(std::memory_order_relaxed);
  for (int i = 0; i < num_workers(); ++i) s.workers.push_back(worker_stats(i));
  return s;
}

std::chrono::nanoseconds Batcher::OldestOverdue() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (count_ == 0) return std::chrono::nanoseconds(0);
  const int64_t overdue = NowNs() - entries_[head_].submit_ns - timeout_.count();
  return std::chrono::nanoseconds(std::max<int64_t>(overdue, 0));
}

int Batcher::StuckWorkers(std::chrono::nanoseconds limit) const {
  const int64_t now = NowNs();
  int stuck = 0;
  for (int i = 0; i < num_workers(); ++i) {
    WorkerStats w = worker_stats(i);
    if (w.busy && now - w.last_progress_ns > limit.count()) ++stuck;
  }
  return stuck;
}

// ---- Future wrapper ----

namespace {

// Owns itself: deleted after its one result.
class PromiseSink : public ResultSink {
 public:
  void OnResult(const Completion& c) override {
    SampleResult r;
    r.status = c.status;
    r.batch_seq = c.batch_seq;
    for (std::span<const float> s : c.outputs) r.outputs.emplace_back(s.begin(), s.end());
    promise.set_value(std::move(r));
    delete this;
  }
  std::promise<SampleResult> promise;
};

}  // namespace

std::future<SampleResult> SubmitForFuture(Batcher& batcher, std::span<const float> sample,
                                          uint64_t request_id) {
  auto sink = std::make_unique<PromiseSink>();
  std::future<SampleResult> future = sink->promise.get_future();
  const SubmitResult r = batcher.Submit(sample.data(), sample.size(), sink.get(), request_id);
  if (r == SubmitResult::kAccepted || r == SubmitResult::kAcceptedDroppedOldest) {
    sink.release();  // the batcher's callback deletes it
  } else {
    sink->promise.set_value(SampleResult{Status::InvalidArgument(SubmitResultName(r)), {}, 0});
  }
  return future;
}

}  // namespace edgeinfer
