// Conv: ONNX Conv over 1-D (NCW) and 2-D (NCHW) inputs with groups, strides, dilations,
// asymmetric pads, an optional bias and a fused activation. Three kernels, picked at create from
// the literal channel and window dims:
//  - depthwise (group == C, any channel multiplier): a direct kernel per plane, no BLAS, because
//    the GEMM would have K = kh*kw;
//  - pointwise (1x1, stride 1, no pad): the input planes already are the GEMM's right matrix;
//  - otherwise im2col into scratch and one sgemm per group per sample.
#include <climits>

#include "inference/kernels/affine.h"
#include "inference/kernels/blas.h"
#include "inference/kernels/depthwise_conv.h"
#include "inference/kernels/im2col.h"
#include "inference/ops/nn_ops_internal.h"

namespace edgeinfer::nn {

namespace {

struct ConvParams {
  int64_t group = 1;
  WindowAxis h, w;  // a 1-D conv keeps the default 1-high h
  Dims out_dims;
  bool depthwise = false;
  bool pointwise = false;
  Activation act;
};

// W is [M, C/group, k...] with literal dims; group divides C and M.
Status CheckWeight(const Node& node, const TensorDesc& x, const TensorDesc& w, int64_t* group) {
  if (w.dims.size() != x.dims.size())
    return NodeError(node, "weight " + DimsToString(w.dims) + " must have the input's rank " +
                               std::to_string(x.dims.size()));
  for (int64_t d : w.dims) {
    if (d <= 0)
      return NodeError(node,
                       "weight dims must be literal and positive, got " + DimsToString(w.dims));
  }
  EI_RETURN_IF_ERROR(IntAttr(node, "group", 1, group));
  const int64_t g = *group, c = x.dims[1], m = w.dims[0];
  if (g < 1 || g > kMaxWindowAttr)
    return NodeError(node, "group must be positive, got " + std::to_string(g));
  if (c % g != 0 || m % g != 0)
    return NodeError(node, "group " + std::to_string(g) + " must divide the input channels (" +
                               std::to_string(c) + ") and the output channels (" +
                               std::to_string(m) + ")");
  if (w.dims[1] != c / g)
    return NodeError(node, "weight " + DimsToString(w.dims) +
                               " must have C/group = " + std::to_string(c / g) + " input channels");
  return Status::Ok();
}

Status CheckBias(const Node& node, const TensorDesc* b, int64_t m) {
  if (b && (b->dims.size() != 1 || b->dims[0] != m))
    return NodeError(node,
                     "bias must be [" + std::to_string(m) + "], got " + DimsToString(b->dims));
  return Status::Ok();
}

void ChooseKernel(int64_t c, ConvParams* p) {
  const WindowAxis& h = p->h;
  const WindowAxis& w = p->w;
  p->depthwise = p->group == c;
  p->pointwise = h.kernel == 1 && w.kernel == 1 && h.stride == 1 && w.stride == 1 &&
                 h.pad_begin == 0 && h.pad_end == 0 && w.pad_begin == 0 && w.pad_end == 0;
}

Status ParseConv(const Node& node, const Graph& graph, ConvParams* p) {
  EI_RETURN_IF_ERROR(CheckInputs(node, graph, 2, 3));
  EI_RETURN_IF_ERROR(ParseActivation(node, &p->act));
  const TensorDesc& x = *InputDesc(node, graph, 0);
  const TensorDesc& w = *InputDesc(node, graph, 1);
  int spatial;
  EI_RETURN_IF_ERROR(CheckSpatialInput(node, x, &spatial));
  EI_RETURN_IF_ERROR(CheckWeight(node, x, w, &p->group));
  const int64_t c = x.dims[1], m = w.dims[0];
  EI_RETURN_IF_ERROR(CheckBias(node, InputDesc(node, graph, 2), m));
  WindowAxis axes[2];
  EI_RETURN_IF_ERROR(ParseWindow(node, spatial, &w.dims[2], /*allow_dilations=*/true, axes));
  p->out_dims = {x.dims[0], m};
  EI_RETURN_IF_ERROR(SpatialOutput(node, x.dims, spatial, axes, /*ceil_mode=*/false, &p->out_dims));
  const int64_t out_plane = spatial == 2 ? p->out_dims[2] * p->out_dims[3] : p->out_dims[2];
  if (spatial == 2) p->h = axes[0];
  p->w = axes[spatial - 1];
  const int64_t gemm_k = (c / p->group) * p->h.kernel * p->w.kernel;
  if (out_plane > INT_MAX || gemm_k > INT_MAX)
    return NodeUnsupported(node, "output plane or C/group*kh*kw exceeds the BLAS int range");
  ChooseKernel(c, p);
  return Status::Ok();
}

class ConvKernel final : public Kernel {
 public:
  explicit ConvKernel(const ConvParams& p) : p_(p) {}

  // Depthwise: one padded input plane. im2col: the columns of one group of one sample.
  size_t ScratchBytes(std::span<const Shape> in, std::span<const Shape> out) const override {
    const PlaneGeom g = MakePlaneGeom(in[0], out[0], p_.h, p_.w);
    int64_t floats = 0;
    if (p_.depthwise) {
      floats = NeedsPadding(g) ? PaddedFloats(g) : 0;
    } else if (!p_.pointwise) {
      floats = (in[0][1] / p_.group) * g.h.kernel * g.w.kernel * g.out_h * g.out_w;
    }
    return static_cast<size_t>(floats) * sizeof(float);
  }

  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[0].shape;
    const Shape& ys = ctx.out[0].shape;
    const PlaneGeom g = MakePlaneGeom(xs, ys, p_.h, p_.w);
    const int64_t c = xs[1], m = ys[1];
    const int64_t x_size = c * g.in_h * g.in_w, y_size = m * g.out_h * g.out_w;
    const float* w = ctx.in[1].f32();
    const float* bias = ctx.num_in > 2 ? ctx.in[2].f32() : nullptr;
    for (int64_t n = 0; n < xs[0]; ++n) {
      const float* x = ctx.in[0].f32() + n * x_size;
      float* y = ctx.out[0].f32() + n * y_size;
      if (p_.depthwise) {
        RunDepthwise(x, w, bias, g, c, m, static_cast<float*>(ctx.scratch), y);
      } else {
        RunGemm(x, w, g, c, m, static_cast<float*>(ctx.scratch), y);
        FinishChannels(y, bias, m, g.out_h * g.out_w);
      }
    }
  }

 private:
  // One sample; input channel ic feeds output channels ic * (m / c) ... (ic + 1) * (m / c) - 1,
  // so each input plane is padded once for all of them.
  void RunDepthwise(const float* x, const float* w, const float* bias, const PlaneGeom& g,
                    int64_t c, int64_t m, float* padded, float* y) const {
    const int64_t multiplier = m / c, taps = g.h.kernel * g.w.kernel;
    const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
    const bool pad = NeedsPadding(g);
    const PlaneGeom gp = pad ? PaddedGeom(g) : g;
    for (int64_t ic = 0; ic < c; ++ic) {
      const float* src = x + ic * in_plane;
      if (pad) {
        PadPlane(src, g, 0.f, padded);
        src = padded;
      }
      for (int64_t oc = ic * multiplier; oc < (ic + 1) * multiplier; ++oc) {
        float* out = y + oc * out_plane;
        DepthwiseConvPlane(src, w + oc * taps, bias ? bias[oc] : 0.f, gp, out);
        p_.act.Apply(out, static_cast<size_t>(out_plane));  // while the plane is in cache
      }
    }
  }

  // One sample: per group, Y_g [M/g, OH*OW] = W_g [M/g, K] x cols [K, OH*OW].
  void RunGemm(const float* x, const float* w, const PlaneGeom& g, int64_t c, int64_t m, float* col,
               float* y) const {
    const int64_t cg = c / p_.group, mg = m / p_.group;
    const int64_t k = cg * g.h.kernel * g.w.kernel;
    const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
    for (int64_t grp = 0; grp < p_.group; ++grp) {
      const float* xg = x + grp * cg * in_plane;
      const float* cols = xg;
      if (!p_.pointwise) {
        Im2Col(xg, cg, g, col);
        cols = col;
      }
      Sgemm(false, false, mg, out_plane, k, 1.f, w + grp * mg * k, k, cols, out_plane, 0.f,
            y + grp * mg * out_plane, out_plane);
    }
  }

  void FinishChannels(float* y, const float* bias, int64_t m, int64_t plane) const {
    for (int64_t oc = 0; oc < m; ++oc) {
      float* row = y + oc * plane;
      if (bias) AddChannelBias(row, bias + oc, 1, plane);
      p_.act.Apply(row, static_cast<size_t>(plane));
    }
  }

  ConvParams p_;
};

}  // namespace

Status InferConv(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  ConvParams p;
  EI_RETURN_IF_ERROR(ParseConv(node, graph, &p));
  (*outs)[0].dtype = DType::kFloat32;
  (*outs)[0].dims = p.out_dims;
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateConv(const Node& node, const Graph& graph) {
  ConvParams p;
  EI_RETURN_IF_ERROR(ParseConv(node, graph, &p));
  return std::unique_ptr<Kernel>(new ConvKernel(p));
}

}  // namespace edgeinfer::nn
