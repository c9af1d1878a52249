// A pipeline: sensor messages on its topics -> decoded values -> windows per stream ->
// normalized model inputs -> the dynamic batcher -> results (JSON) -> the publisher.
//
// OnMessage runs on the source link's callback thread and never blocks: it decodes in place
// (simdjson), appends to the stream's window and submits complete windows to the batcher, whose
// bounded queue drops the oldest input (counted) under a burst. Results are formed on the
// batcher's worker threads and handed to the ResultPublisher.
//
// Message layout (details in agent/stream_windows.h and agent/decoder.h):
//   input.window = 0: one message is one model input: exactly the input's sample elements,
//     in the model's own layout (e.g. 768 values, channel-major, for a [B,3,256] model).
//   input.window = W > 0: the input sample must be [C, W] (channel-major; also chosen when
//     both ends are W) or [W, C] (time-major). A message carries k >= 1 whole time steps,
//     k*C values interleaved per step (x,y,z,x,y,z,...); per stream key, a window of the last
//     W steps is cut every input.hop steps (0: = W) and laid out as the model expects.
// Raw values are normalized with the model's metadata (agent/normalize.h) before batching.
// The result message's schema is in agent/result_json.h. With several workers, results are
// still published in `sequence` order.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "agent/config.h"
#include "common/status.h"
#include "inference/model.h"
#include "telemetry/metrics.h"

namespace edgeinfer::agent {

// Why a message was rejected; each has a counter and a name in telemetry and on the errors
// topic.
enum class RejectReason {
  kMalformed,        // not JSON / not an array of numbers / wrong byte count for f32le
  kWrongLength,      // a one-message input of the wrong number of values
  kNonFinite,        // NaN or Inf among the values
  kOversized,        // payload above input.max_payload_bytes
  kUnknownTopic,     // no pipeline matches (counted by the router)
  kQueueOverflow,    // accepted, then dropped as the oldest under a burst
  kStreamEvicted,    // a stream's partial window dropped to keep max_streams
  kInferenceFailed,  // accepted, then the model run failed (not the input's fault)
  kCount,
};
const char* RejectReasonName(RejectReason r);

// Where results and rejections go. Implementations must not block for long: they are called
// from the batcher's workers and the source link's callback thread.
struct ResultPublisher {
  virtual ~ResultPublisher() = default;
  // `sequence` counts per pipeline from 1 per boot, in the order results are produced.
  virtual void PublishResult(const std::string& pipeline, uint64_t sequence,
                             const std::string& topic, std::string payload) = 0;
  // The results handed over so far are all there is for now (a batch's last result, with no
  // full batch queued behind it): a publisher that gathers results into groups may send them at
  // once instead of waiting for more.
  virtual void EndOfBurst() {}
};

struct ErrorReporter {
  virtual ~ErrorReporter() = default;
  // Counted always; published on {prefix}/{device}/errors subject to the rate limit.
  virtual void Reject(const std::string& pipeline, RejectReason reason, std::string_view topic,
                      const std::string& detail) = 0;
};

struct PipelineStats {
  uint64_t messages_in = 0;
  uint64_t rejected[static_cast<int>(RejectReason::kCount)] = {};
  uint64_t windows = 0;  // model inputs formed
  uint64_t inferences = 0;
  uint64_t batches = 0;
  uint64_t results_published = 0;
  uint64_t queue_depth = 0;
  uint64_t streams = 0;  // streams with open windows
  double mean_batch_size = 0;
  int max_batch = 0;          // the current target (the memory watchdog lowers it)
  int max_batch_ceiling = 0;  // batch.max_size as the model allows it
  int planned_max_batch = 0;  // the largest batch a worker's arena is planned for now
  uint64_t arena_bytes = 0;   // every worker's arena
};

class Pipeline {
 public:
  // Loads nothing itself: `model` is already loaded (or converted) by the caller.
  static Result<std::unique_ptr<Pipeline>> Create(
      const PipelineConfig& config, const AgentConfig& agent, std::shared_ptr<const Model> model,
      const std::string& boot_id, ResultPublisher* publisher, ErrorReporter* errors);
  ~Pipeline();

  const std::string& name() const;
  // True when `topic` matches one of the pipeline's filters ($share/GROUP/ prefix ignored).
  bool Matches(std::string_view topic) const;
  void OnMessage(std::string_view topic, std::string_view payload);

  // Stops intake; every accepted input still produces a result before this returns.
  void Stop();
  // Memory watchdog hooks (see inference/batcher.h).
  void SetMaxBatch(int max_batch);
  size_t ShedOldest(size_t n);
  PipelineStats stats() const;
  // Cumulative latency histograms (ms): a batch's Session::Run per result, and end to end from
  // the message's arrival to the result handed to the publisher.
  HistogramSnapshot inference_ms() const;
  HistogramSnapshot latency_ms() const;
  // Seconds the pipeline has made no progress: the slowest busy worker's time on its batch, or
  // how long the oldest queued input is overdue (0 when idle): the systemd watchdog's input.
  double StuckSeconds() const;

 private:
  Pipeline() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// MQTT topic filter matching ('+', '#'), with a leading $share/GROUP/ removed from the filter.
bool TopicMatches(std::string_view filter, std::string_view topic);

}  // namespace edgeinfer::agent
