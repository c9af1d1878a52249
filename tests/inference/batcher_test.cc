#include "inference/batcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "inference/session.h"
#include "op_test_util.h"

namespace edgeinfer {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::RandomFloats;

constexpr size_t kIn = 4;             // floats per input sample
constexpr size_t kOut = 3;            // floats per output sample
const auto kWaitLimit = seconds(20);  // generous: only a hang fails it

// x[B,4] -> Gemm(W[3,4], bias, Relu) -> h[B,3] -> Reshape [3B] -> Add(h2, h2) -> y[3B]
Graph SmallNet(bool batched = true) {
  static const std::vector<float> w = RandomFloats(12, 1);
  static const std::vector<float> bias = {0.1f, -0.2f, 0.3f};
  Graph g;
  int xi = g.AddTensor({"x", DType::kFloat32, batched ? Dims{kBatchDim, 4} : Dims{1, 4}});
  g.inputs.push_back(xi);
  int wi = g.AddConstant("w", DType::kFloat32, {3, 4}, w.data(), w.size() * 4);
  int bi = g.AddConstant("b", DType::kFloat32, {3}, bias.data(), bias.size() * 4);
  int hi = g.AddTensor({"h", DType::kFloat32, {}});
  int ri = g.AddTensor({"r", DType::kFloat32, {}});
  int yi = g.AddTensor({"y", DType::kFloat32, {}});
  Node gemm{"fc", "Gemm", {xi, wi, bi}, {hi}, {}};
  gemm.attrs.Set("transB", int64_t{1});
  gemm.attrs.Set("activation", std::string("Relu"));
  Node reshape{"flat", "Reshape", {hi}, {ri}, {}};
  reshape.attrs.Set("shape", std::vector<int64_t>{batched ? -3 : 3});
  Node add{"double", "Add", {ri, ri}, {yi}, {}};
  g.nodes = {gemm, reshape, add};
  g.outputs.push_back(yi);
  return g;
}

std::shared_ptr<const Model> LoadModel(bool batched = true) {
  auto m = Model::FromGraph(SmallNet(batched));
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

std::vector<float> Sample(uint64_t id) { return RandomFloats(kIn, static_cast<uint32_t>(id + 7)); }

// The expected outputs of each sample, from a direct batch-1 Session::Run.
std::vector<std::vector<float>> References(const std::shared_ptr<const Model>& model, size_t n) {
  auto s = Session::Create(model, SessionOptions{.max_batch = 1});
  EXPECT_TRUE(s.ok());
  std::vector<std::vector<float>> ref(n);
  for (size_t id = 0; id < n; ++id) {
    std::vector<float> x = Sample(id);
    const float* in = x.data();
    EXPECT_TRUE((*s)->Run({&in, 1}, 1).ok());
    ref[id].assign((*s)->output(0).f32(), (*s)->output(0).f32() + kOut);
  }
  return ref;
}

std::unique_ptr<Batcher> MakeBatcher(const BatcherOptions& o, bool batched = true) {
  auto b = Batcher::Create(LoadModel(batched), o);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return b.ok() ? std::move(b).value() : nullptr;
}

// Records every completion by request id. Optionally blocks the call for `gate_id` until
// Release(), to hold a worker busy.
class RecordingSink : public ResultSink {
 public:
  struct Record {
    int calls = 0;
    Status::Code code = Status::Code::kOk;
    std::vector<float> out;
    uint64_t sequence = 0;
    int batch_size = 0;
    std::thread::id thread;
  };

  explicit RecordingSink(size_t n, int64_t gate_id = -1) : records_(n), gate_id_(gate_id) {}

  void OnResult(const Completion& c) override {
    std::unique_lock<std::mutex> lock(mu_);
    Record& r = records_.at(c.request_id);
    ++r.calls;
    r.code = c.status.code();
    if (!c.outputs.empty()) r.out.assign(c.outputs[0].begin(), c.outputs[0].end());
    r.sequence = c.sequence;
    r.batch_size = c.batch_size;
    r.thread = std::this_thread::get_id();
    log_.push_back(c.request_id);
    cv_.notify_all();
    if (static_cast<int64_t>(c.request_id) != gate_id_) return;
    gate_entered_ = true;
    cv_.wait(lock, [this] { return released_; });
  }

  bool WaitForCalls(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWaitLimit, [&] { return log_.size() >= n; });
  }
  bool WaitForGate() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWaitLimit, [&] { return gate_entered_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  Record record(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return records_.at(id);
  }
  std::vector<uint64_t> log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Record> records_;
  std::vector<uint64_t> log_;  // request ids in delivery order
  int64_t gate_id_;
  bool gate_entered_ = false;
  bool released_ = false;
};

SubmitResult SubmitSample(Batcher& b, RecordingSink& sink, uint64_t id) {
  std::vector<float> x = Sample(id);
  return b.Submit(x.data(), x.size(), &sink, id);
}

bool Accepted(SubmitResult r) {
  return r == SubmitResult::kAccepted || r == SubmitResult::kAcceptedDroppedOldest;
}

// Polls `pred` until true or the limit passes.
template <class Pred>
bool Eventually(Pred pred) {
  const auto end = std::chrono::steady_clock::now() + kWaitLimit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

TEST(BatcherTest, ManySubmittersEachInputGetsExactlyOneCorrectResult) {
  constexpr int kThreads = 4, kPerThread = 2000, kTotal = kThreads * kPerThread;
  auto b = MakeBatcher(
      {.max_batch = 16, .timeout = milliseconds(2), .workers = 2, .queue_capacity = kTotal});
  ASSERT_TRUE(b);
  RecordingSink sink(kTotal);
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i)
        EXPECT_EQ(SubmitSample(*b, sink, t * kPerThread + i), SubmitResult::kAccepted);
    });
  }
  for (auto& th : submitters) th.join();
  ASSERT_TRUE(sink.WaitForCalls(kTotal));
  b->Stop();
  auto ref = References(LoadModel(), kTotal);
  for (int id = 0; id < kTotal; ++id) {
    RecordingSink::Record r = sink.record(id);
    ASSERT_EQ(r.calls, 1) << "request " << id;
    ASSERT_EQ(r.code, Status::Code::kOk);
    testing::ExpectNear(r.out, ref[id]);
  }
  BatcherStats s = b->stats();
  EXPECT_EQ(s.submitted, uint64_t{kTotal});
  EXPECT_EQ(s.completed, uint64_t{kTotal});
  EXPECT_EQ(s.batched_samples, uint64_t{kTotal});
  EXPECT_EQ(s.dropped_oldest + s.shed + s.failed + s.rejected, 0u);
  EXPECT_EQ(s.queue_depth, 0u);
}

TEST(BatcherTest, FullBatchesFormUnderLoad) {
  constexpr int kTotal = 2000;
  // A long timeout: a batch can only leave early by being full.
  auto b = MakeBatcher({.max_batch = 16, .timeout = milliseconds(200), .queue_capacity = 4096});
  ASSERT_TRUE(b);
  RecordingSink sink(kTotal);
  for (int id = 0; id < kTotal; ++id) ASSERT_TRUE(Accepted(SubmitSample(*b, sink, id)));
  ASSERT_TRUE(sink.WaitForCalls(kTotal));
  BatcherStats s = b->stats();
  EXPECT_GT(s.mean_batch_size, 4.0);
  EXPECT_LE(s.mean_batch_size, 16.0);
  for (int id = 0; id < kTotal; ++id) EXPECT_LE(sink.record(id).batch_size, 16);
}

TEST(BatcherTest, LoneInputLeavesAfterTimeout) {
  const auto timeout = milliseconds(30);
  auto b = MakeBatcher({.max_batch = 16, .timeout = timeout});
  ASSERT_TRUE(b);
  std::vector<float> x = Sample(0);
  const auto start = std::chrono::steady_clock::now();
  std::future<SampleResult> f = SubmitForFuture(*b, x, 0);
  ASSERT_EQ(f.wait_for(timeout + seconds(2)), std::future_status::ready);
  EXPECT_GE(std::chrono::steady_clock::now() - start, timeout);  // it waited for company
  SampleResult r = f.get();
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_EQ(r.outputs.size(), 1u);
  testing::ExpectNear(r.outputs[0], References(LoadModel(), 1)[0]);
  EXPECT_EQ(b->stats().batches, 1u);
}

// A small ring wraps many times (and may overflow); results still come in submit order.
TEST(BatcherTest, OneWorkerDeliversInSubmitOrder) {
  constexpr int kTotal = 1000;
  auto b = MakeBatcher({.max_batch = 8, .timeout = milliseconds(1), .queue_capacity = 24});
  ASSERT_TRUE(b);
  RecordingSink sink(kTotal);
  for (int id = 0; id < kTotal; ++id) ASSERT_TRUE(Accepted(SubmitSample(*b, sink, id)));
  ASSERT_TRUE(sink.WaitForCalls(kTotal));
  auto ref = References(LoadModel(), kTotal);
  int64_t last = -1;
  for (uint64_t id : sink.log()) {
    RecordingSink::Record r = sink.record(id);
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(r.sequence, id + 1);
    if (r.code != Status::Code::kOk) continue;  // a drop, reported from the submitting thread
    ASSERT_GT(static_cast<int64_t>(id), last);
    last = static_cast<int64_t>(id);
    testing::ExpectNear(r.out, ref[id]);
  }
  BatcherStats s = b->stats();
  EXPECT_EQ(s.completed + s.dropped_oldest, uint64_t{kTotal});
}

// The worker is held inside the sink call for request 0, so everything after it queues.
TEST(BatcherTest, OverflowDropsOldestAndReportsEachDrop) {
  constexpr int kCapacity = 8, kExtra = 5, kTotal = 1 + kCapacity + kExtra;
  auto b = MakeBatcher({.max_batch = 4, .timeout = milliseconds(0), .queue_capacity = kCapacity});
  ASSERT_TRUE(b);
  RecordingSink sink(kTotal, /*gate_id=*/0);
  ASSERT_EQ(SubmitSample(*b, sink, 0), SubmitResult::kAccepted);
  ASSERT_TRUE(sink.WaitForGate());
  int dropped_results = 0;
  for (int id = 1; id < kTotal; ++id)
    dropped_results += SubmitSample(*b, sink, id) == SubmitResult::kAcceptedDroppedOldest;
  EXPECT_EQ(dropped_results, kExtra);
  EXPECT_EQ(b->stats().queue_depth, size_t{kCapacity});
  for (int id = 1; id <= kExtra; ++id) {  // the oldest went, each reported on this thread
    RecordingSink::Record r = sink.record(id);
    EXPECT_EQ(r.calls, 1);
    EXPECT_EQ(r.code, Status::Code::kResourceExhausted);
    EXPECT_EQ(r.thread, std::this_thread::get_id());
  }
  sink.Release();
  ASSERT_TRUE(sink.WaitForCalls(kTotal));
  for (int id = kExtra + 1; id < kTotal; ++id) EXPECT_EQ(sink.record(id).code, Status::Code::kOk);
  BatcherStats s = b->stats();
  EXPECT_EQ(s.dropped_oldest, uint64_t{kExtra});
  EXPECT_EQ(s.completed + s.dropped_oldest, s.submitted);
}

TEST(BatcherTest, ShedOldestDropsQueuedInputsAndReportsThem) {
  constexpr int kQueued = 10, kShed = 4;
  auto b = MakeBatcher({.max_batch = 4, .timeout = milliseconds(0), .queue_capacity = 64});
  ASSERT_TRUE(b);
  RecordingSink sink(1 + kQueued, /*gate_id=*/0);
  ASSERT_TRUE(Accepted(SubmitSample(*b, sink, 0)));
  ASSERT_TRUE(sink.WaitForGate());
  for (int id = 1; id <= kQueued; ++id) ASSERT_TRUE(Accepted(SubmitSample(*b, sink, id)));
  EXPECT_EQ(b->ShedOldest(kShed), size_t{kShed});
  EXPECT_EQ(b->stats().queue_depth, size_t{kQueued - kShed});
  for (int id = 1; id <= kShed; ++id)
    EXPECT_EQ(sink.record(id).code, Status::Code::kResourceExhausted);
  sink.Release();
  ASSERT_TRUE(sink.WaitForCalls(1 + kQueued));
  for (int id = kShed + 1; id <= kQueued; ++id) EXPECT_EQ(sink.record(id).code, Status::Code::kOk);
  EXPECT_EQ(b->stats().shed, uint64_t{kShed});
  EXPECT_EQ(b->ShedOldest(3), 0u);  // nothing left to shed
}

// The hint a result sink uses to tell whether another batch runs right after this one: true
// from the moment a whole batch (of the current target size) waits, false below it.
TEST(BatcherTest, FullBatchQueuedFollowsTheQueueAndTheTarget) {
  auto b = MakeBatcher({.max_batch = 4, .timeout = seconds(60), .queue_capacity = 64});
  ASSERT_TRUE(b);
  RecordingSink sink(1 + 8, /*gate_id=*/0);
  EXPECT_FALSE(b->FullBatchQueued());
  for (int id = 0; id < 4; ++id) ASSERT_TRUE(Accepted(SubmitSample(*b, sink, id)));
  ASSERT_TRUE(sink.WaitForGate());  // the worker holds batch 0..3, blocked in the sink
  EXPECT_FALSE(b->FullBatchQueued());
  for (int id = 4; id < 7; ++id) ASSERT_TRUE(Accepted(SubmitSample(*b, sink, id)));
  EXPECT_FALSE(b->FullBatchQueued());  // 3 of 4
  ASSERT_TRUE(Accepted(SubmitSample(*b, sink, 7)));
  EXPECT_TRUE(b->FullBatchQueued());
  ASSERT_TRUE(b->SetMaxBatch(2).ok());  // a smaller target: 4 queued are two batches
  EXPECT_TRUE(b->FullBatchQueued());
  EXPECT_EQ(b->ShedOldest(3), 3u);  // 1 of 2 left
  EXPECT_FALSE(b->FullBatchQueued());
  sink.Release();
  ASSERT_TRUE(sink.WaitForCalls(7));  // 4 run, 3 shed; the last one waits for its timeout
  EXPECT_FALSE(b->FullBatchQueued());
  b->Stop();  // runs it
  EXPECT_EQ(sink.log().size(), 8u);
  EXPECT_FALSE(b->FullBatchQueued());
}

TEST(BatcherTest, SetMaxBatchShrinksArenaAndBatchesWhileRunning) {
  constexpr int kTotal = 3000;
  auto b = MakeBatcher(
      {.max_batch = 16, .timeout = milliseconds(1), .workers = 2, .queue_capacity = kTotal});
  ASSERT_TRUE(b);
  const size_t big_arena = b->worker_stats(0).arena_bytes;
  EXPECT_FALSE(b->SetMaxBatch(0).ok());
  EXPECT_FALSE(b->SetMaxBatch(17).ok());
  RecordingSink sink(kTotal);
  std::thread submitter([&] {
    for (int id = 0; id < kTotal; ++id) {
      EXPECT_TRUE(Accepted(SubmitSample(*b, sink, id)));
      if (id % 64 == 0) std::this_thread::sleep_for(milliseconds(1));
    }
  });
  ASSERT_TRUE(sink.WaitForCalls(200));
  ASSERT_TRUE(b->SetMaxBatch(2).ok());
  EXPECT_EQ(b->stats().max_batch, 2);
  // A worker re-plans only between batches, so once both report 2, every batch delivered
  // before has been fully delivered, and every later one holds at most 2.
  ASSERT_TRUE(Eventually(
      [&] { return b->worker_stats(0).max_batch == 2 && b->worker_stats(1).max_batch == 2; }));
  const size_t mark = sink.log().size();
  for (int w = 0; w < 2; ++w) EXPECT_LT(b->worker_stats(w).arena_bytes, big_arena);
  submitter.join();
  ASSERT_TRUE(sink.WaitForCalls(kTotal));
  std::vector<uint64_t> log = sink.log();
  for (size_t i = mark; i < log.size(); ++i) ASSERT_LE(sink.record(log[i]).batch_size, 2);
  ASSERT_TRUE(b->SetMaxBatch(16).ok());  // and back up
  ASSERT_TRUE(Eventually([&] { return b->worker_stats(0).arena_bytes == big_arena; }));
}

// Stop while the worker is held and inputs are queued: nothing accepted is lost, and the
// partial batch leaves at once instead of waiting out a long timeout.
TEST(BatcherTest, StopDeliversEveryQueuedInput) {
  constexpr int kMax = 4000;
  auto b = MakeBatcher({.max_batch = 16, .timeout = seconds(60), .queue_capacity = kMax});
  ASSERT_TRUE(b);
  RecordingSink sink(kMax, /*gate_id=*/0);
  for (int id = 0; id < 16; ++id) ASSERT_EQ(SubmitSample(*b, sink, id), SubmitResult::kAccepted);
  ASSERT_TRUE(sink.WaitForGate());
  std::thread stopper([&] { b->Stop(); });
  int accepted = 16;
  // Keep submitting (slowly, so Stop has seconds to begin) until intake closes.
  while (accepted < kMax && Accepted(SubmitSample(*b, sink, accepted))) {
    ++accepted;
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_LT(accepted, kMax) << "Stop never closed intake";
  EXPECT_EQ(SubmitSample(*b, sink, 0), SubmitResult::kRejectedStopped);
  sink.Release();
  stopper.join();
  EXPECT_EQ(sink.log().size(), static_cast<size_t>(accepted));
  for (int id = 0; id < accepted; ++id) {
    EXPECT_EQ(sink.record(id).calls, 1) << id;
    EXPECT_EQ(sink.record(id).code, Status::Code::kOk) << id;
  }
  EXPECT_EQ(b->stats().completed, static_cast<uint64_t>(accepted));
}

TEST(BatcherTest, RejectsWrongSizeAndMissingSink) {
  auto b = MakeBatcher({.max_batch = 4});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->input_sample_floats(), kIn);
  EXPECT_EQ(b->output_sample_floats(0), kOut);
  RecordingSink sink(1);
  std::vector<float> x(kIn + 1);
  EXPECT_EQ(b->Submit(x.data(), kIn + 1, &sink, 0), SubmitResult::kRejectedWrongSize);
  EXPECT_EQ(b->Submit(x.data(), kIn - 1, &sink, 0), SubmitResult::kRejectedWrongSize);
  EXPECT_EQ(b->Submit(nullptr, kIn, &sink, 0), SubmitResult::kRejectedWrongSize);
  EXPECT_EQ(b->Submit(x.data(), kIn, nullptr, 0), SubmitResult::kRejectedNoSink);
  SampleResult r = SubmitForFuture(*b, std::span<const float>(x.data(), 2)).get();
  EXPECT_EQ(r.status.code(), Status::Code::kInvalidArgument);
  b->Stop();
  EXPECT_EQ(b->stats().rejected, 5u);
  EXPECT_EQ(b->stats().submitted, 0u);
  EXPECT_TRUE(sink.log().empty());
}

TEST(BatcherTest, CreateRejectsBadOptionsAndModels) {
  auto model = LoadModel();
  EXPECT_FALSE(Batcher::Create(model, {.max_batch = 0}).ok());
  EXPECT_FALSE(Batcher::Create(model, {.workers = 0}).ok());
  EXPECT_FALSE(Batcher::Create(model, {.max_batch = 16, .queue_capacity = 8}).ok());
  EXPECT_FALSE(Batcher::Create(nullptr, {}).ok());
  Graph two = SmallNet();
  int z = two.AddTensor({"z", DType::kFloat32, {-3}});
  two.inputs.push_back(z);
  two.nodes[2].inputs[1] = z;  // y = r + z
  auto m = Model::FromGraph(two);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto b = Batcher::Create(*m, {});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("one input"), std::string::npos);
}

TEST(BatcherTest, ModelWithoutBatchDimRunsOneSampleAtATime) {
  auto b = MakeBatcher({.max_batch = 8, .timeout = milliseconds(1)}, /*batched=*/false);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->max_batch_ceiling(), 1);
  auto model = LoadModel(false);
  auto s = Session::Create(model, {});
  ASSERT_TRUE(s.ok());
  for (uint64_t id = 0; id < 3; ++id) {
    std::vector<float> x = Sample(id);
    SampleResult r = SubmitForFuture(*b, x, id).get();
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    const float* in = x.data();
    ASSERT_TRUE((*s)->Run({&in, 1}, 1).ok());
    const float* y = (*s)->output(0).f32();
    testing::ExpectNear(r.outputs[0], std::vector<float>(y, y + kOut));
  }
}

// A sink that does not return keeps its worker busy with no progress: the watchdog sees it.
TEST(BatcherTest, StuckWorkerIsVisibleThroughProgressAge) {
  auto b = MakeBatcher({.max_batch = 4, .timeout = milliseconds(0)});
  ASSERT_TRUE(b);
  RecordingSink sink(1, /*gate_id=*/0);
  ASSERT_TRUE(Accepted(SubmitSample(*b, sink, 0)));
  ASSERT_TRUE(sink.WaitForGate());
  std::this_thread::sleep_for(milliseconds(150));
  WorkerStats w = b->worker_stats(0);
  EXPECT_TRUE(w.busy);
  EXPECT_GE(Batcher::NowNs() - w.last_progress_ns, 150'000'000);
  EXPECT_EQ(b->StuckWorkers(milliseconds(100)), 1);
  sink.Release();
  ASSERT_TRUE(Eventually([&] { return !b->worker_stats(0).busy; }));
  EXPECT_EQ(b->StuckWorkers(milliseconds(100)), 0);
  EXPECT_EQ(b->worker_stats(0).batches, 1u);
}

}  // namespace
}  // namespace edgeinfer
