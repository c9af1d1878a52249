// MaxPool, AveragePool (1-D and 2-D windows) and GlobalAveragePool, GlobalMaxPool: direct
// kernels over each (n, c) plane (inference/kernels/pool.h).
#include "inference/kernels/pool.h"

#include <limits>

#include "inference/ops/nn_ops_internal.h"

namespace edgeinfer::nn {

namespace {

struct PoolParams {
  bool average = false;
  bool count_include_pad = false;
  WindowAxis h, w;  // a 1-D pool keeps the default 1-high h
  Dims out_dims;
};

Status ParsePool(const Node& node, const Graph& graph, bool average, PoolParams* p) {
  EI_RETURN_IF_ERROR(CheckInputs(node, graph, 1, 1));
  EI_RETURN_IF_ERROR(CheckNoActivation(node));
  const TensorDesc& x = *InputDesc(node, graph, 0);
  int spatial;
  EI_RETURN_IF_ERROR(CheckSpatialInput(node, x, &spatial));
  WindowAxis axes[2];
  EI_RETURN_IF_ERROR(ParseWindow(node, spatial, nullptr, /*allow_dilations=*/!average, axes));
  bool ceil_mode;
  EI_RETURN_IF_ERROR(FlagAttr(node, "ceil_mode", &ceil_mode));
  p->average = average;
  if (average) EI_RETURN_IF_ERROR(FlagAttr(node, "count_include_pad", &p->count_include_pad));
  for (int i = 0; i < spatial; ++i) {
    // As in ONNX Runtime; it also keeps every average window non-empty.
    if (axes[i].pad_begin >= axes[i].kernel || axes[i].pad_end >= axes[i].kernel)
      return NodeError(node, "pads must be smaller than kernel_shape");
  }
  p->out_dims = {x.dims[0], x.dims[1]};
  EI_RETURN_IF_ERROR(SpatialOutput(node, x.dims, spatial, axes, ceil_mode, &p->out_dims));
  if (spatial == 2) p->h = axes[0];
  p->w = axes[spatial - 1];
  return Status::Ok();
}

// Scratch: for AveragePool its out_h + out_w divisor factors, then (when the windows reach into
// padding) one padded input plane.
class WindowPoolKernel final : public Kernel {
 public:
  explicit WindowPoolKernel(const PoolParams& p) : p_(p) {}

  size_t ScratchBytes(std::span<const Shape> in, std::span<const Shape> out) const override {
    const PlaneGeom g = MakePlaneGeom(in[0], out[0], p_.h, p_.w);
    const int64_t floats =
        (p_.average ? g.out_h + g.out_w : 0) + (NeedsPadding(g) ? PaddedFloats(g) : 0);
    return static_cast<size_t>(floats) * sizeof(float);
  }

  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[0].shape;
    const PlaneGeom g = MakePlaneGeom(xs, ctx.out[0].shape, p_.h, p_.w);
    const bool pad = NeedsPadding(g);
    const PlaneGeom gp = pad ? PaddedGeom(g) : g;
    float* row_scale = static_cast<float*>(ctx.scratch);
    float* col_scale = row_scale + g.out_h;
    float* padded = p_.average ? col_scale + g.out_w : row_scale;
    if (p_.average) AvgPoolScales(g, p_.count_include_pad, row_scale, col_scale);
    const float fill = p_.average ? 0.f : std::numeric_limits<float>::lowest();
    const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
    for (int64_t i = 0; i < xs[0] * xs[1]; ++i) {
      const float* src = ctx.in[0].f32() + i * in_plane;
      float* dst = ctx.out[0].f32() + i * out_plane;
      if (pad) {
        PadPlane(src, g, fill, padded);
        src = padded;
      }
      if (p_.average) {
        AvgPoolPlane(src, gp, row_scale, col_scale, dst);
      } else {
        MaxPoolPlane(src, gp, dst);
      }
    }
  }

 private:
  PoolParams p_;
};

template <bool kAverage>
class GlobalPoolKernel final : public Kernel {
 public:
  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[0].shape;
    const int64_t planes = xs[0] * xs[1], plane = xs.Product(2, xs.rank);
    const float* x = ctx.in[0].f32();
    float* y = ctx.out[0].f32();
    const float inv = 1.f / static_cast<float>(plane);
    for (int64_t i = 0; i < planes; ++i)
      y[i] = kAverage ? SumOf(x + i * plane, plane) * inv : MaxOf(x + i * plane, plane);
  }
};

}  // namespace

Status InferMaxPool(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  PoolParams p;
  EI_RETURN_IF_ERROR(ParsePool(node, graph, /*average=*/false, &p));
  (*outs)[0].dtype = DType::kFloat32;
  (*outs)[0].dims = p.out_dims;
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateMaxPool(const Node& node, const Graph& graph) {
  PoolParams p;
  EI_RETURN_IF_ERROR(ParsePool(node, graph, /*average=*/false, &p));
  return std::unique_ptr<Kernel>(new WindowPoolKernel(p));
}

Status InferAveragePool(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  PoolParams p;
  EI_RETURN_IF_ERROR(ParsePool(node, graph, /*average=*/true, &p));
  (*outs)[0].dtype = DType::kFloat32;
  (*outs)[0].dims = p.out_dims;
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateAveragePool(const Node& node, const Graph& graph) {
  PoolParams p;
  EI_RETURN_IF_ERROR(ParsePool(node, graph, /*average=*/true, &p));
  return std::unique_ptr<Kernel>(new WindowPoolKernel(p));
}

// X [N, C, spatial...] (rank >= 3) -> [N, C, 1, ...].
Status InferGlobalPool(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  EI_RETURN_IF_ERROR(CheckInputs(node, graph, 1, 1));
  EI_RETURN_IF_ERROR(CheckNoActivation(node));
  const Dims& x = InputDesc(node, graph, 0)->dims;
  if (x.size() < 3)
    return NodeError(node, "input must be [N, C, spatial...], got " + DimsToString(x));
  for (size_t i = 1; i < x.size(); ++i) {
    if (x[i] <= 0)
      return NodeError(node,
                       "channel and spatial dims of the input must be literal and "
                       "positive, got " +
                           DimsToString(x));
  }
  Dims out(x.size(), 1);
  out[0] = x[0];
  out[1] = x[1];
  (*outs)[0].dtype = DType::kFloat32;
  (*outs)[0].dims = out;
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateGlobalAveragePool(const Node& node, const Graph& graph) {
  (void)node;
  (void)graph;
  return std::unique_ptr<Kernel>(new GlobalPoolKernel<true>());
}

Result<std::unique_ptr<Kernel>> CreateGlobalMaxPool(const Node& node, const Graph& graph) {
  (void)node;
  (void)graph;
  return std::unique_ptr<Kernel>(new GlobalPoolKernel<false>());
}

}  // namespace edgeinfer::nn
