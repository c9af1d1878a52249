// Session: runs a Model on batches of inputs inside one planned arena.
//
// All intermediate tensors, outputs and kernel scratch live in one arena, planned by liveness
// for the session's maximum batch (inference/arena_planner.h). After construction
// arena_bytes() is exact. Replan() plans for another maximum batch and returns freed pages to
// the kernel. A Session is not thread-safe: give each worker thread its own (they share the
// Model's weights).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "inference/model.h"
#include "inference/op.h"

namespace edgeinfer {

class Profiler;

// The CPU kernel family OpenBLAS chose at run time (e.g. "Haswell", "Zen", "SkylakeX").
const char* BlasCoreName();

// Sees every node's outputs right after the node runs (calibration reads activations this way).
// The views are valid only during the call. Unset, it costs one pointer test per node.
class NodeObserver {
 public:
  virtual ~NodeObserver() = default;
  virtual void OnNode(const Node& node, std::span<const TensorView> outputs) = 0;
};

struct SessionOptions {
  int max_batch = 1;
  // OpenBLAS threads for this process (a process-wide setting in OpenBLAS). 0 leaves it alone;
  // the default of 1 keeps BLAS from fighting the agent's own worker threads.
  int blas_threads = 1;
  Profiler* profiler = nullptr;  // optional; records per-op wall time
  NodeObserver* observer = nullptr;  // optional; must outlive the session
};

class Session {
 public:
  static Result<std::unique_ptr<Session>> Create(std::shared_ptr<const Model> model,
                                                 const SessionOptions& options);
  ~Session();

  // Runs `batch` samples (1 <= batch <= max_batch). inputs[i] points to graph input i's data
  // at that batch, row-major float32. Outputs stay valid until the next Run or Replan.
  Status Run(std::span<const float* const> inputs, int batch);
  TensorView output(int i) const { return outputs_[i]; }
  int num_outputs() const { return static_cast<int>(outputs_.size()); }

  // Re-plans the arena for a new maximum batch; a smaller one returns memory to the kernel.
  Status Replan(int max_batch);

  int max_batch() const { return max_batch_; }
  // False for a graph with no batch dim: it runs one sample per Run and max_batch is 1.
  bool batch_dynamic() const;
  size_t arena_bytes() const { return arena_bytes_; }
  // Sum of every arena buffer's size at max batch: what a plan without sharing would need.
  size_t naive_arena_bytes() const { return naive_arena_bytes_; }
  const Model& model() const { return *model_; }
  // Elements of one sample of input/output i (the dims without the batch).
  int64_t input_sample_elements(int i) const;
  int64_t output_sample_elements(int i) const;

 private:
  Session() = default;
  struct Impl;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Impl> impl_;
  std::vector<TensorView> outputs_;
  int max_batch_ = 0;
  size_t arena_bytes_ = 0;
  size_t naive_arena_bytes_ = 0;
};

}  // namespace edgeinfer
