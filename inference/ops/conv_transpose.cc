// ConvTranspose (ONNX semantics, 1-D and 2-D, FP32): the decoder half of convolutional
// autoencoders and U-Nets. Per sample and group one sgemm makes every kernel tap's contribution,
// col = W_g^T x X_g ([M/g * k, in]), then col2im adds the taps into the output (started at the
// bias). Weights are never quantized.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "inference/kernels/blas.h"
#include "inference/ops/basic_ops_internal.h"

namespace edgeinfer::basic_ops {

namespace {

// Window geometry with 1-D made 2-D (height 1, kernel 1, stride 1, no pads).
struct Geometry {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0;  // pads at the top and left (the output size already has the others)
  int64_t group = 1;
};

class ConvTransposeKernel : public Kernel {
 public:
  explicit ConvTransposeKernel(Geometry g) : g_(g) {}

  size_t ScratchBytes(std::span<const Shape> in, std::span<const Shape>) const override {
    const Shape& w = in[1];
    const int64_t in_hw = Spatial(in[0]);
    return static_cast<size_t>(w.d[1] * g_.kh * g_.kw * in_hw) * sizeof(float);
  }

  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[0].shape;
    const Shape& ys = ctx.out[0].shape;
    const bool two_d = xs.rank == 4;
    const int64_t ih = two_d ? xs.d[2] : 1, iw = xs.d[xs.rank - 1];
    const int64_t oh = two_d ? ys.d[2] : 1, ow = ys.d[ys.rank - 1];
    const int64_t c = xs.d[1], m = ys.d[1];
    const int64_t cg = c / g_.group, mg = m / g_.group, taps = g_.kh * g_.kw;
    const float* w = ctx.in[1].f32();
    const float* bias = ctx.num_in > 2 ? ctx.in[2].f32() : nullptr;
    float* col = static_cast<float*>(ctx.scratch);
    for (int64_t n = 0; n < xs.d[0]; ++n) {
      for (int64_t grp = 0; grp < g_.group; ++grp) {
        const float* x = ctx.in[0].f32() + (n * c + grp * cg) * ih * iw;
        float* y = ctx.out[0].f32() + (n * m + grp * mg) * oh * ow;
        Sgemm(true, false, mg * taps, ih * iw, cg, 1.f, w + grp * cg * mg * taps, mg * taps, x,
              ih * iw, 0.f, col, ih * iw);
        for (int64_t o = 0; o < mg; ++o) {
          float* plane = y + o * oh * ow;
          std::fill(plane, plane + oh * ow, bias ? bias[grp * mg + o] : 0.f);
          for (int64_t t = 0; t < taps; ++t)
            AddTap(col + (o * taps + t) * ih * iw, t / g_.kw, t % g_.kw, ih, iw, oh, ow, plane);
        }
      }
    }
  }

 private:
  static int64_t Spatial(const Shape& s) {
    int64_t n = 1;
    for (int i = 2; i < s.rank; ++i) n *= s.d[i];
    return n;
  }

  // Adds one kernel tap's [ih, iw] contribution into the output plane: input (iy, ix) lands at
  // (iy*sh - pt + ky*dh, ix*sw - pl + kx*dw) when that is inside the output.
  void AddTap(const float* src, int64_t ky, int64_t kx, int64_t ih, int64_t iw, int64_t oh,
              int64_t ow, float* plane) const {
    for (int64_t iy = 0; iy < ih; ++iy) {
      const int64_t oy = iy * g_.sh - g_.pt + ky * g_.dh;
      if (oy < 0 || oy >= oh) continue;
      float* row = plane + oy * ow;
      const float* s = src + iy * iw;
      const int64_t off = kx * g_.dw - g_.pl;
      for (int64_t ix = 0; ix < iw; ++ix) {
        const int64_t ox = ix * g_.sw + off;
        if (ox >= 0 && ox < ow) row[ox] += s[ix];
      }
    }
  }

  Geometry g_;
};

struct Attributes {
  std::vector<int64_t> kernel, strides, dilations, pads, output_padding;
  int64_t group = 1;
};

Status ReadAttributes(const Node& node, size_t spatial, Attributes* a) {
  const std::vector<int64_t> ones(spatial, 1), zeros(spatial, 0);
  EI_RETURN_IF_ERROR(GetAttr<std::vector<int64_t>>(node, "kernel_shape", {}, &a->kernel, true));
  EI_RETURN_IF_ERROR(GetAttr<std::vector<int64_t>>(node, "strides", ones, &a->strides));
  EI_RETURN_IF_ERROR(GetAttr<std::vector<int64_t>>(node, "dilations", ones, &a->dilations));
  EI_RETURN_IF_ERROR(
      GetAttr<std::vector<int64_t>>(node, "pads", std::vector<int64_t>(2 * spatial, 0), &a->pads));
  EI_RETURN_IF_ERROR(
      GetAttr<std::vector<int64_t>>(node, "output_padding", zeros, &a->output_padding));
  EI_RETURN_IF_ERROR(GetAttr<int64_t>(node, "group", 1, &a->group));
  if (a->kernel.size() != spatial || a->strides.size() != spatial ||
      a->dilations.size() != spatial || a->pads.size() != 2 * spatial ||
      a->output_padding.size() != spatial)
    return Invalid(node,
                   "kernel_shape, strides, dilations, output_padding need one value per "
                   "spatial axis and pads two");
  for (size_t i = 0; i < spatial; ++i) {
    if (a->kernel[i] < 1 || a->kernel[i] > 4096 || a->strides[i] < 1 || a->strides[i] > 4096 ||
        a->dilations[i] < 1 || a->dilations[i] > 4096)
      return Invalid(node, "kernel_shape, strides and dilations must be in [1, 4096]");
    // Negative pads extend the output (ONNX's output_shape beyond the natural size).
    if (std::abs(a->pads[i]) > 4096 || std::abs(a->pads[i + spatial]) > 4096)
      return Invalid(node, "pads must be in [-4096, 4096]");
    if (a->output_padding[i] < 0 ||
        a->output_padding[i] >= std::max(a->strides[i], a->dilations[i]))
      return Invalid(node, "output_padding must be in [0, max(stride, dilation))");
  }
  if (a->group < 1) return Invalid(node, "group must be >= 1");
  return Status::Ok();
}

}  // namespace

// X [N, C, (H,) W], W [C, M/group, (kh,) kw], B? [M] -> Y [N, M, (OH,) OW] with
// O = stride*(in-1) + output_padding + (k-1)*dilation + 1 - pad_begin - pad_end.
Status InferConvTranspose(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(CheckFloatInputs(node, graph, *outs, 2, 3, &in));
  const Dims& x = in[0]->dims;
  const Dims& w = in[1]->dims;
  if (x.size() != 3 && x.size() != 4)
    return Invalid(node, "X must be [N, C, W] or [N, C, H, W], not " + DimsToString(x));
  const size_t spatial = x.size() - 2;
  Attributes a;
  EI_RETURN_IF_ERROR(ReadAttributes(node, spatial, &a));
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i] < 1) return Invalid(node, "X's channel and spatial dims must be literal");
  if (w.size() != x.size() || w[0] != x[1] || w[1] < 1 || x[1] % a.group != 0)
    return Invalid(node, "W " + DimsToString(w) + " does not fit X " + DimsToString(x) +
                             " (want [C, M/group, k...], C divisible by group)");
  const int64_t m = w[1] * a.group;
  if (in.size() > 2 && in[2]->dims != Dims{m})
    return Invalid(node, "B must be [" + std::to_string(m) + "]");
  Dims out = {x[0], m};
  for (size_t i = 0; i < spatial; ++i) {
    if (w[2 + i] != a.kernel[i]) return Invalid(node, "kernel_shape does not match W");
    const int64_t o = a.strides[i] * (x[2 + i] - 1) + a.output_padding[i] +
                      (a.kernel[i] - 1) * a.dilations[i] + 1 - a.pads[i] - a.pads[i + spatial];
    if (o < 1 || o > (int64_t{1} << 24)) return Invalid(node, "output size out of range");
    out.push_back(o);
  }
  SetOutput(outs, std::move(out));
  return Status::Ok();
}

KernelResult CreateConvTranspose(const Node& node, const Graph& graph) {
  const size_t spatial = graph.tensors[node.inputs[0]].dims.size() - 2;
  Attributes a;
  EI_RETURN_IF_ERROR(ReadAttributes(node, spatial, &a));
  Geometry g;
  g.group = a.group;
  const size_t last = spatial - 1;
  g.kw = a.kernel[last];
  g.sw = a.strides[last];
  g.dw = a.dilations[last];
  g.pl = a.pads[last];
  if (spatial == 2) {
    g.kh = a.kernel[0];
    g.sh = a.strides[0];
    g.dh = a.dilations[0];
    g.pt = a.pads[0];
  }
  return std::unique_ptr<Kernel>(new ConvTransposeKernel(g));
}

}  // namespace edgeinfer::basic_ops
