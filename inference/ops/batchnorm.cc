// BatchNormalization (inference mode) over axis 1: y = (x - mean) / sqrt(var + eps) * scale + B,
// run as one multiply-add per element with the per-channel factors computed on the fly (N*C
// square roots, negligible), then the fused activation. Only left where it could not be folded
// into a preceding Conv/Gemm.
#include <cmath>

#include "inference/kernels/affine.h"
#include "inference/ops/nn_ops_internal.h"

namespace edgeinfer::nn {

namespace {

constexpr const char* kParamNames[] = {"scale", "B", "mean", "var"};

struct BatchNormParams {
  float epsilon = 1e-5f;
  Activation act;
};

Status ParseBatchNorm(const Node& node, const Graph& graph, BatchNormParams* p) {
  EI_RETURN_IF_ERROR(CheckInputs(node, graph, 5, 5));
  EI_RETURN_IF_ERROR(ParseActivation(node, &p->act));
  EI_RETURN_IF_ERROR(FloatAttr(node, "epsilon", 1e-5f, &p->epsilon));
  if (!(p->epsilon >= 0.f) || std::isinf(p->epsilon))
    return NodeError(node, "epsilon must be finite and non-negative");
  const Dims& x = InputDesc(node, graph, 0)->dims;
  if (x.size() < 2 || x[1] <= 0)
    return NodeError(node, "input must be [N, C, ...] with a literal C, got " + DimsToString(x));
  for (size_t i = 1; i <= 4; ++i) {
    const Dims& d = InputDesc(node, graph, i)->dims;
    if (d.size() != 1 || d[0] != x[1])
      return NodeError(node, std::string(kParamNames[i - 1]) + " must be [" + std::to_string(x[1]) +
                                 "], got " + DimsToString(d));
  }
  return Status::Ok();
}

class BatchNormKernel final : public Kernel {
 public:
  explicit BatchNormKernel(const BatchNormParams& p) : p_(p) {}

  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[0].shape;
    const int64_t channels = xs[1], plane = xs.Product(2, xs.rank);
    const float* scale = ctx.in[1].f32();
    const float* bias = ctx.in[2].f32();
    const float* mean = ctx.in[3].f32();
    const float* var = ctx.in[4].f32();
    const float* x = ctx.in[0].f32();
    float* y = ctx.out[0].f32();
    for (int64_t n = 0; n < xs[0]; ++n) {
      for (int64_t c = 0; c < channels; ++c) {
        const float a = scale[c] / std::sqrt(var[c] + p_.epsilon);
        const int64_t offset = (n * channels + c) * plane;
        AffinePlane(x + offset, a, bias[c] - mean[c] * a, plane, y + offset);
        p_.act.Apply(y + offset, static_cast<size_t>(plane));
      }
    }
  }

 private:
  BatchNormParams p_;
};

}  // namespace

Status InferBatchNorm(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  BatchNormParams p;
  EI_RETURN_IF_ERROR(ParseBatchNorm(node, graph, &p));
  (*outs)[0].dtype = DType::kFloat32;
  (*outs)[0].dims = InputDesc(node, graph, 0)->dims;
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateBatchNorm(const Node& node, const Graph& graph) {
  BatchNormParams p;
  EI_RETURN_IF_ERROR(ParseBatchNorm(node, graph, &p));
  return std::unique_ptr<Kernel>(new BatchNormKernel(p));
}

}  // namespace edgeinfer::nn
