// Internal to the nn op group (Conv, Gemm, MatMul, pooling, BatchNormalization): the per-op
// infer/create functions that nn_ops.cc lists in the op table, and the validation helpers they
// share (defined in nn_ops.cc). Every error message starts with NodeContext(node).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "inference/graph.h"
#include "inference/kernels/window.h"
#include "inference/op.h"
#include "inference/ops/activation.h"
#include "inference/quant/qgemm.h"

namespace edgeinfer::nn {

// --- Per-op entry points (conv.cc, gemm.cc, pool.cc, batchnorm.cc) ---

Status InferConv(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
Result<std::unique_ptr<Kernel>> CreateConv(const Node& node, const Graph& graph);

Status InferGemm(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
Result<std::unique_ptr<Kernel>> CreateGemm(const Node& node, const Graph& graph);
Status InferMatMul(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
Result<std::unique_ptr<Kernel>> CreateMatMul(const Node& node, const Graph& graph);

Status InferMaxPool(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
Result<std::unique_ptr<Kernel>> CreateMaxPool(const Node& node, const Graph& graph);
Status InferAveragePool(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
Result<std::unique_ptr<Kernel>> CreateAveragePool(const Node& node, const Graph& graph);
Status InferGlobalPool(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
Result<std::unique_ptr<Kernel>> CreateGlobalAveragePool(const Node& node, const Graph& graph);
Result<std::unique_ptr<Kernel>> CreateGlobalMaxPool(const Node& node, const Graph& graph);

Status InferBatchNorm(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
Result<std::unique_ptr<Kernel>> CreateBatchNorm(const Node& node, const Graph& graph);

// --- The quantized GEMM shared by Gemm and Conv (qgemm_op.cc) ---

// Y[M, N] = X[M, K] * W^T + bias for a constant weight W in a quantized kernel format: the
// kernels are selected once (SelectQGemm at BestCpuLevel(), so EDGEINFER_CPU_LEVEL applies) and
// the weight blob is used where it lies (in the mapped file), never copied. Run quantizes X's rows
// into scratch, then runs the integer (or fp16) GEMM; with a profiler the quantize step is
// recorded as its own span, category "quantize".
class QuantGemm {
 public:
  QuantGemm() = default;
  // `w` passed CheckInputsWithWeight and is not float32.
  explicit QuantGemm(const TensorDesc& w);

  quant::WeightFormat format() const { return weights_.format; }
  quant::CpuLevel level() const { return kernels_.level; }
  int64_t k() const { return weights_.k; }
  // Scratch for `m` rows of X.
  size_t ScratchBytes(int64_t m) const;
  // Rows [n_begin, n_end) of W (for kQ4, n_begin a multiple of 8): y[i][j] for j < n_end -
  // n_begin, rows ldy apart, from x [m, K] with rows ldx apart; bias indexed from n_begin.
  void Run(int64_t m, const float* x, int64_t ldx, int64_t n_begin, int64_t n_end,
           const float* bias, float* y, int64_t ldy, void* scratch, Profiler* profiler) const;

  // For callers that quantize X themselves (Conv's int8 im2row; not for kFp16): the activation
  // layout of `m` rows in scratch (ScratchBytes(m) bytes), to be filled (codes, every row's
  // scale and, for kQ4, the corrections), then RunQuantized runs the gemm step alone on it.
  quant::QuantizedActs Acts(int64_t m, void* scratch) const;
  void RunQuantized(int64_t m, int64_t n_begin, int64_t n_end, const float* bias, float* y,
                    int64_t ldy, const void* scratch) const;

 private:
  quant::QuantWeights weights_;
  quant::QGemmKernels kernels_;
};

// --- Shared validation ---

// Largest value accepted for window attributes (kernel, stride, dilation, pad, group): keeps all
// window arithmetic far from int64 overflow whatever a file says.
constexpr int64_t kMaxWindowAttr = (int64_t{1} << 31) - 1;

// InvalidArgument / Unsupported with the node prefix: "node 'c1' (Conv): <what>".
Status NodeError(const Node& node, const std::string& what);
Status NodeUnsupported(const Node& node, const std::string& what);

// Checks min_inputs <= #inputs <= max_inputs, exactly one output, that the first min_inputs
// inputs are present and that every present input is float32.
Status CheckInputs(const Node& node, const Graph& graph, size_t min_inputs, size_t max_inputs);
// The same, except that input `weight` (Gemm's B, Conv's W) may also be a constant of a quantized
// kernel's weight dtype (float16, qint8_channel, qint4_block: inference/quant/weight_format.h).
// When the node has a `precision` attribute it must be the string naming that input's precision
// (quant::WeightPrecisionName: "fp32", "fp16", "int8", "int4").
Status CheckInputsWithWeight(const Node& node, const Graph& graph, size_t min_inputs,
                             size_t max_inputs, size_t weight);

// Typed attribute readers: an absent attribute gives `def`; one of another type is an error.
Status IntAttr(const Node& node, const char* name, int64_t def, int64_t* out);
Status FloatAttr(const Node& node, const char* name, float def, float* out);
Status FlagAttr(const Node& node, const char* name, bool* out);  // int 0 or 1, default 0
// *out = nullptr when absent.
Status IntsAttr(const Node& node, const char* name, const std::vector<int64_t>** out);

// Validates the fused activation attributes and parses them.
Status ParseActivation(const Node& node, Activation* out);
// For ops that take no fused activation: rejects a non-empty `activation`.
Status CheckNoActivation(const Node& node);

// X of Conv and the windowed pools: rank 3 (N, C, W) or 4 (N, C, H, W); N may be symbolic, C and
// the spatial dims must be literal and positive. Sets *spatial to 1 or 2.
Status CheckSpatialInput(const Node& node, const TensorDesc& x, int* spatial);

// Reads kernel_shape, strides, dilations and pads for `spatial` dims into axes[0..spatial).
// `weight_kernel` (Conv) gives the kernel dims; kernel_shape is then optional and must match.
// Without it (pools) kernel_shape is required. `allow_dilations` false rejects dilations != 1.
Status ParseWindow(const Node& node, int spatial, const int64_t* weight_kernel,
                   bool allow_dilations, WindowAxis* axes);

// Appends the ONNX output length of each spatial axis of x (dims 2...) to *out: ceil_mode with the
// rule that the last window must start inside the input or its left padding. Errors when a
// window does not fit the padded input, or when the input region the windows cover (which the
// window kernels may materialize, padding included) exceeds kMaxPlane elements.
constexpr int64_t kMaxPlane = int64_t{1} << 31;
Status SpatialOutput(const Node& node, const Dims& x, int spatial, const WindowAxis* axes,
                     bool ceil_mode, Dims* out);

// The geometry of one plane of a windowed op from concrete shapes (rank 3 or 4, as validated).
PlaneGeom MakePlaneGeom(const Shape& x, const Shape& y, const WindowAxis& h, const WindowAxis& w);

}  // namespace edgeinfer::nn
