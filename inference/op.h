// The op table: how a node of the internal op set is validated and executed.
//
// As in TensorFlow Lite Micro, validation happens once and execution runs blind: `infer` checks a
// node's inputs and attributes and computes its outputs' dtype and symbolic dims (at import and
// again at load, so a hostile file cannot reach a kernel with shapes it does not support);
// `create` builds the node's kernel once per session, parsing attributes into plain fields;
// Kernel::Run does the arithmetic with no checks and no allocation.
#pragma once

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "inference/graph.h"
#include "inference/tensor.h"

namespace edgeinfer {

class Profiler;

struct KernelContext {
  const TensorView* in = nullptr;  // absent optional inputs have data == nullptr
  int num_in = 0;
  TensorView* out = nullptr;
  int num_out = 0;
  void* scratch = nullptr;  // 64-byte aligned, ScratchBytes() long, contents undefined
  size_t scratch_bytes = 0;
  // The session's profiler, or nullptr. Kernels may record sub-spans of their run with it (the
  // quantized GEMMs record "quantize": activation quantization time as its own entry).
  Profiler* profiler = nullptr;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Scratch bytes needed for these concrete shapes (the session asks at its maximum batch and
  // sizes the node's scratch buffer in the arena from the answer).
  virtual size_t ScratchBytes(std::span<const Shape> in, std::span<const Shape> out) const {
    (void)in;
    (void)out;
    return 0;
  }
  virtual void Run(const KernelContext& ctx) = 0;
};

// Fills `outs` (pre-sized to node.outputs.size()) with each output's dtype and symbolic dims.
// Returns InvalidArgument/Unsupported naming the node and what is wrong.
using InferFn = Status (*)(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
using CreateFn = Result<std::unique_ptr<Kernel>> (*)(const Node& node, const Graph& graph);

struct OpDef {
  const char* name;
  InferFn infer;
  CreateFn create;
  // True when output 0 is input 0's bytes reinterpreted (Reshape): the planner lets the output
  // share the input's buffer and the kernel does nothing.
  bool aliases_input = false;
};

// nullptr when the op is not in the table.
const OpDef* FindOp(std::string_view name);
std::vector<const OpDef*> AllOps();

// Provided by the op groups (inference/ops/*_ops.cc).
std::span<const OpDef> NnOps();  // Conv, Gemm, MatMul, pooling, BatchNormalization
// Element-wise, softmax, layout ops, Where, Expand, ConvTranspose.
std::span<const OpDef> BasicOps();
std::span<const OpDef> DenseOps();       // fully connected layers on pre-packed weights
std::span<const OpDef> StaticInt8Ops();  // QGemm, QConv, QMaxPool (static_int8_ops.cc)
std::span<const OpDef> MathOps();        // reductions, unary math, activations, LayerNorm, Pad
std::span<const OpDef> RnnOps();         // LSTM, GRU, RNN, Slice (rnn.cc, slice.cc)

// Convenience for infer functions: the input's descriptor or nullptr when absent.
inline const TensorDesc* InputDesc(const Node& n, const Graph& g, size_t i) {
  return i < n.inputs.size() && n.inputs[i] >= 0 ? &g.tensors[n.inputs[i]] : nullptr;
}
// "node 'conv1' (Conv): " prefix for error messages.
inline std::string NodeContext(const Node& n) { return "node '" + n.name + "' (" + n.op + ")"; }

}  // namespace edgeinfer
