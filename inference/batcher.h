// Batcher: the dynamic batcher between the ingress of single samples and the inference workers.
//
// Callers Submit one sample at a time; worker threads, each owning its own Session over one
// shared Model, run the samples in batches. A batch leaves when `max_batch` samples are queued
// or when the oldest queued sample has waited `timeout`, whichever comes first. Each worker
// takes up to max_batch samples from the head of the queue, in submit order.
//
// Memory: the ingress queue is a ring of `queue_capacity` sample slots and each worker has a
// batch buffer of the configured max_batch, all allocated at Create; Submit and the workers
// allocate nothing per request. When the ring is full, Submit drops the OLDEST queued sample
// (counted, and reported through that sample's sink), so a burst cannot exhaust memory.
//
// Delivery: every accepted sample gets exactly one ResultSink::OnResult call, with its outputs
// or with an error: a Run failure, kResourceExhausted when dropped by overflow or shed by
// ShedOldest (reported from the thread that dropped it, after the lock is released, so a drop
// report may arrive after results of later samples). Results are delivered from the worker thread,
// zero-copy: the output spans point into the worker's session arena and are valid only during the
// call.
//
// Ordering: with one worker, results arrive in submit order. With several workers, batches
// may finish out of order; each Completion carries the sample's `sequence` (submit order) and
// its batch's `batch_seq` (take order) so a caller that needs order can restore it.
//
// Thread safety: every public method may be called from any thread, concurrently. Internally
// one mutex guards the queue; it is held while samples are copied in and out of the ring
// (a memcpy) and never during Session::Run or a sink call.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "common/status.h"
#include "inference/model.h"

namespace edgeinfer {

struct BatcherOptions {
  // Largest batch, and the ceiling for SetMaxBatch. A model without a batch dim runs 1.
  int max_batch = 8;
  // How long the oldest queued sample may wait for a fuller batch. Zero: dispatch at once.
  std::chrono::microseconds timeout{2000};
  int workers = 1;              // threads, each with its own Session and arena
  size_t queue_capacity = 256;  // queued samples (at least max_batch); overflow drops oldest
  int blas_threads = 1;         // passed to the first Session (a process-wide OpenBLAS setting)
};

// What one sample's sink receives, exactly once. Everything referenced lives only for the call.
struct Completion {
  uint64_t request_id;   // the caller's id from Submit
  uint64_t sequence;     // submit order of accepted samples, from 1
  uint64_t batch_seq;    // take order of the batch that ran it, from 1; 0 when never run
  int index_in_batch;    // position within that batch (-1 when never run)
  int batch_size;        // samples in that batch (0 when never run)
  int64_t submit_ns;     // steady-clock time of Submit (Batcher::NowNs), for latency
  const Status& status;  // OK, or why there are no outputs
  // One span per model output, each output_sample_elements(o) floats; empty on error.
  std::span<const std::span<const float>> outputs;
  int64_t run_ns = 0;  // how long the batch's Session::Run took (0 when never run)
};

// Receives results. Called from a worker thread for results and Run errors, from the thread
// inside Submit for an overflow drop, and from the ShedOldest caller for a shed. A sink used
// with several workers must be thread-safe. It must not throw and must not call Stop or
// destroy the batcher; it may Submit. A slow sink stalls its worker (visible as no progress).
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  virtual void OnResult(const Completion& completion) = 0;
};

enum class SubmitResult {
  kAccepted,
  kAcceptedDroppedOldest,  // accepted; the oldest queued sample was dropped to make room
  kRejectedWrongSize,      // n_floats is not the model's input sample size, or sample is null
  kRejectedNoSink,
  kRejectedStopped,  // Stop has begun
};
const char* SubmitResultName(SubmitResult r);

// Liveness of one worker. `busy` from taking a batch until its last sink call returns;
// `last_progress_ns` moves when the worker takes a batch, finishes Run, and after each sink
// call. A worker that is busy and whose last progress is old is stuck (in Run or in a sink).
struct WorkerStats {
  uint64_t batches = 0;  // progress counter
  int64_t last_progress_ns = 0;
  bool busy = false;
  int max_batch = 0;       // the maximum its session is planned for
  size_t arena_bytes = 0;  // its session's arena
};

struct BatcherStats {
  uint64_t submitted = 0;       // accepted by Submit
  uint64_t rejected = 0;        // refused by Submit (wrong size, no sink, stopped)
  uint64_t completed = 0;       // delivered with outputs
  uint64_t failed = 0;          // delivered with a Run error
  uint64_t dropped_oldest = 0;  // dropped by queue overflow
  uint64_t shed = 0;            // dropped by ShedOldest
  uint64_t batches = 0;
  uint64_t batched_samples = 0;  // sum of batch sizes
  double mean_batch_size = 0;    // batched_samples / batches
  uint64_t replan_failures = 0;  // a worker could not plan its arena (see WorkerStats)
  size_t queue_depth = 0;
  int max_batch = 0;  // the current target (SetMaxBatch)
  std::vector<WorkerStats> workers;
};

class Batcher {
 public:
  // Creates the sessions and starts the workers. Fails on bad options, on a model with other
  // than one float32 input, on outputs that are not float32 or that lack the batch dim when
  // the input has it, and when a Session cannot be created.
  static Result<std::unique_ptr<Batcher>> Create(std::shared_ptr<const Model> model,
                                                 const BatcherOptions& options);
  ~Batcher();  // Stops (see Stop)
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Copies `n_floats` floats (one sample) into the queue. On acceptance `sink` gets exactly
  // one OnResult for `request_id`; on rejection it gets none. Never blocks on inference.
  SubmitResult Submit(const float* sample, size_t n_floats, ResultSink* sink, uint64_t request_id);

  // Sets the target maximum batch (1..the configured max_batch). Returns at once; each worker
  // re-plans its session between batches (shrinking returns arena pages to the kernel) and
  // takes no more than the new maximum from then on.
  Status SetMaxBatch(int max_batch);
  // Drops up to `n` of the oldest queued samples, each reported with kResourceExhausted
  // through its sink on this thread. Returns how many were shed.
  size_t ShedOldest(size_t n);

  // Stops intake (Submit returns kRejectedStopped), runs every queued sample, waits for every
  // sink call in flight, and joins the workers. Idempotent; must not be called from a sink.
  void Stop();

  // Lock-free reads of counters (each exact; together a near-consistent snapshot).
  BatcherStats stats() const;
  WorkerStats worker_stats(int worker) const;
  // Workers busy with no progress for longer than `limit` (for the systemd watchdog).
  int StuckWorkers(std::chrono::nanoseconds limit) const;
  // How long the oldest queued sample has waited past the batch timeout; zero when the queue
  // is empty or its oldest is not due yet. With live workers it stays near zero (at most the
  // time to run what is ahead of it); it grows when every worker is stalled, busy or not.
  std::chrono::nanoseconds OldestOverdue() const;

  // Whether a full batch (of the current target size) is queued now, so that a worker takes it at
  // once rather than after the timeout. Lock-free, and stale by the time it is used: a hint.
  bool FullBatchQueued() const {
    return queue_depth_.load(std::memory_order_relaxed) >=
           static_cast<size_t>(target_atomic_.load(std::memory_order_relaxed));
  }
  size_t input_sample_floats() const { return sample_floats_; }
  int num_outputs() const { return static_cast<int>(output_floats_.size()); }
  size_t output_sample_floats(int o) const { return output_floats_[o]; }
  int max_batch_ceiling() const { return ceiling_; }
  int num_workers() const { return static_cast<int>(workers_.size()); }

  static int64_t NowNs();

 private:
  struct Entry {  // one queued sample's metadata; its floats are in the slot of the same index
    uint64_t request_id;
    uint64_t sequence;
    ResultSink* sink;
    int64_t submit_ns;
  };
  struct Worker;

  Batcher() = default;
  Status Init(std::shared_ptr<const Model> model, const BatcherOptions& options);
  Status StartWorkers();
  void WorkerLoop(Worker& w);
  void MaybeReplan(Worker& w);
  int WaitForBatch(Worker& w);
  int AllowGrowth(const Worker& w, int wanted);
  int TakeLocked(Worker& w, int n);
  void RunBatch(Worker& w, int n);
  void Deliver(Worker& w, int n, const Status& status);
  bool PopOldestLocked(Entry* out);
  void ReportDropped(const Entry& e, const Status& status);
  void PublishDepthLocked() { queue_depth_.store(count_, std::memory_order_relaxed); }

  size_t sample_floats_ = 0;
  std::vector<size_t> output_floats_;
  int ceiling_ = 1;
  std::chrono::nanoseconds timeout_{0};
  Status dropped_status_;  // made once, so a drop allocates nothing
  Status shed_status_;

  // The queue: a ring of capacity_ slots, guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // workers: samples queued, target changed, stopping
  std::condition_variable idle_cv_;  // Stop: sink calls outside the workers have returned
  std::vector<float> slots_;         // capacity_ * sample_floats_
  std::vector<Entry> entries_;       // capacity_
  size_t capacity_ = 0;
  size_t head_ = 0;   // oldest queued
  size_t count_ = 0;  // queued
  uint64_t next_sequence_ = 1;
  uint64_t next_batch_seq_ = 1;
  int target_max_batch_ = 1;
  int outside_calls_ = 0;  // drop/shed sink calls in flight on non-worker threads
  bool stopping_ = false;

  std::mutex stop_mu_;  // serialises Stop
  std::vector<std::unique_ptr<Worker>> workers_;

  std::atomic<uint64_t> submitted_{0}, rejected_{0}, completed_{0}, failed_{0};
  std::atomic<uint64_t> dropped_{0}, shed_{0}, batches_{0}, batched_samples_{0};
  std::atomic<uint64_t> replan_failures_{0};
  std::atomic<size_t> queue_depth_{0};
  std::atomic<int> target_atomic_{1};  // target_max_batch_, for lock-free reads
};

// Asked by a worker before it runs a batch larger than any its current arena has run. An arena
// is mapped untouched and its pages become resident only as batches grow into them, so this is
// where the process's memory jumps: a guard that knows the memory limit can cap the batch before
// the kernel's OOM killer would act (the memory watchdog polls, and one large batch can outrun
// a poll). Process-wide, because every batcher's arena counts against the same limit.
class ArenaGrowthGuard {
 public:
  virtual ~ArenaGrowthGuard() = default;
  // `ran`: the largest batch run since the arena was planned (0 right after a re-plan);
  // `wanted` > ran; `bytes_per_sample`: the arena's bytes per sample of its planned maximum
  // (what one more sample may touch). Returns how many samples to run now (clamped to
  // 1..wanted). Called on worker threads, concurrently, without the batcher's lock.
  virtual int Allow(int ran, int wanted, size_t bytes_per_sample) = 0;
};
// Installs (or with nullptr removes) the process-wide guard. Thread-safe; a worker already
// inside the old guard's Allow keeps it alive until the call returns.
void SetArenaGrowthGuard(std::shared_ptr<ArenaGrowthGuard> guard);

// Convenience for tools and tests, not the hot path (allocates per call): the outputs of one
// sample, or the reason there are none.
struct SampleResult {
  Status status;
  std::vector<std::vector<float>> outputs;
  uint64_t batch_seq = 0;
};
std::future<SampleResult> SubmitForFuture(Batcher& batcher, std::span<const float> sample,
                                          uint64_t request_id = 0);

}  // namespace edgeinfer
