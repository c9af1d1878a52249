// Resize (ONNX opset 11+ semantics) of the spatial axes of [N, C, W] or [N, C, H, W]: nearest
// and linear (bilinear) interpolation, as torch's F.interpolate / nn.Upsample export it. The
// source position of each output index is a table made once per kernel: axes are separable.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "inference/ops/math_ops_internal.h"

namespace edgeinfer::math_ops {

using basic_ops::GetAttr;
using basic_ops::Invalid;

namespace {

enum class Coord { kHalfPixel, kPytorchHalfPixel, kAlignCorners, kAsymmetric };
enum class Nearest { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

bool ParseCoord(const std::string& s, Coord* c) {
  if (s == "half_pixel")
    *c = Coord::kHalfPixel;
  else if (s == "pytorch_half_pixel")
    *c = Coord::kPytorchHalfPixel;
  else if (s == "align_corners")
    *c = Coord::kAlignCorners;
  else if (s == "asymmetric")
    *c = Coord::kAsymmetric;
  else
    return false;
  return true;
}

bool ParseNearest(const std::string& s, Nearest* m) {
  if (s == "round_prefer_floor")
    *m = Nearest::kRoundPreferFloor;
  else if (s == "round_prefer_ceil")
    *m = Nearest::kRoundPreferCeil;
  else if (s == "floor")
    *m = Nearest::kFloor;
  else if (s == "ceil")
    *m = Nearest::kCeil;
  else
    return false;
  return true;
}

// The input coordinate of output index o (ONNX's coordinate_transformation_mode). As in ONNX's
// reference, the resized length is in x scale, not the (floored) output size.
double SourceCoord(Coord c, int64_t o, int64_t in, double scale) {
  const double len = in * scale;
  switch (c) {
    case Coord::kHalfPixel:
      return (o + 0.5) / scale - 0.5;
    case Coord::kPytorchHalfPixel:
      return len > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
    case Coord::kAlignCorners:
      return len > 1 ? static_cast<double>(o) * (in - 1) / (len - 1) : 0.0;
    case Coord::kAsymmetric:
      return o / scale;
  }
  return 0.0;
}

int64_t NearestIndex(Nearest m, double x) {
  switch (m) {
    case Nearest::kRoundPreferFloor:
      return x == std::floor(x) + 0.5 ? static_cast<int64_t>(std::floor(x))
                                      : static_cast<int64_t>(std::round(x));
    case Nearest::kRoundPreferCeil:
      return static_cast<int64_t>(std::floor(x + 0.5));
    case Nearest::kFloor:
      return static_cast<int64_t>(std::floor(x));
    case Nearest::kCeil:
      return static_cast<int64_t>(std::ceil(x));
  }
  return 0;
}

// Per output index of one axis: the two input taps and the weight of the second (nearest: one
// tap, weight 0).
struct AxisTable {
  std::vector<int64_t> i0, i1;
  std::vector<float> w;
};

AxisTable MakeTable(bool linear, Coord c, Nearest m, int64_t in, int64_t out, double scale) {
  AxisTable t;
  for (int64_t o = 0; o < out; ++o) {
    double x = SourceCoord(c, o, in, scale);
    if (linear) {
      x = std::clamp(x, 0.0, static_cast<double>(in - 1));
      const int64_t lo = static_cast<int64_t>(std::floor(x));
      t.i0.push_back(lo);
      t.i1.push_back(std::min(lo + 1, in - 1));
      t.w.push_back(static_cast<float>(x - lo));
    } else {
      const int64_t i = std::clamp<int64_t>(NearestIndex(m, x), 0, in - 1);
      t.i0.push_back(i);
      t.i1.push_back(i);
      t.w.push_back(0.f);
    }
  }
  return t;
}

class ResizeKernel : public Kernel {
 public:
  ResizeKernel(std::vector<AxisTable> axes, std::vector<int64_t> in)
      : axes_(std::move(axes)), in_(std::move(in)) {}

  void Run(const KernelContext& ctx) override {
    const Shape& out = ctx.out[0].shape;
    const int64_t planes = out.d[0] * out.d[1];
    const float* x = ctx.in[0].f32();
    float* y = ctx.out[0].f32();
    if (axes_.size() == 1) {
      const AxisTable& t = axes_[0];
      const int64_t ow = static_cast<int64_t>(t.w.size());
      for (int64_t p = 0; p < planes; ++p, x += in_[0], y += ow)
        for (int64_t o = 0; o < ow; ++o) y[o] = Lerp(x[t.i0[o]], x[t.i1[o]], t.w[o]);
      return;
    }
    const AxisTable& ty = axes_[0];
    const AxisTable& tx = axes_[1];
    const int64_t oh = static_cast<int64_t>(ty.w.size()), ow = static_cast<int64_t>(tx.w.size());
    const int64_t iw = in_[1];
    for (int64_t p = 0; p < planes; ++p, x += in_[0] * iw) {
      for (int64_t oy = 0; oy < oh; ++oy, y += ow) {
        const float* r0 = x + ty.i0[oy] * iw;
        const float* r1 = x + ty.i1[oy] * iw;
        const float wy = ty.w[oy];
        for (int64_t ox = 0; ox < ow; ++ox) {
          const float top = Lerp(r0[tx.i0[ox]], r0[tx.i1[ox]], tx.w[ox]);
          const float bottom = Lerp(r1[tx.i0[ox]], r1[tx.i1[ox]], tx.w[ox]);
          y[ox] = Lerp(top, bottom, wy);
        }
      }
    }
  }

 private:
  // a exactly when w == 0 (nearest), so a NaN or inf in the unused tap cannot leak in.
  static float Lerp(float a, float b, float w) { return w == 0.f ? a : a + (b - a) * w; }

  std::vector<AxisTable> axes_;
  std::vector<int64_t> in_;  // input spatial dims
};

struct ResizeAttrs {
  bool linear = false;
  Coord coord = Coord::kHalfPixel;
  Nearest nearest = Nearest::kRoundPreferFloor;
  std::vector<int64_t> sizes;
  std::vector<float> scales;
};

Status ReadAttrs(const Node& node, size_t spatial, ResizeAttrs* a) {
  std::string mode, coord, nearest;
  EI_RETURN_IF_ERROR(GetAttr<std::string>(node, "mode", "nearest", &mode));
  EI_RETURN_IF_ERROR(
      GetAttr<std::string>(node, "coordinate_transformation_mode", "half_pixel", &coord));
  EI_RETURN_IF_ERROR(GetAttr<std::string>(node, "nearest_mode", "round_prefer_floor", &nearest));
  EI_RETURN_IF_ERROR(GetAttr<std::vector<int64_t>>(node, "sizes", {}, &a->sizes, true));
  EI_RETURN_IF_ERROR(GetAttr<std::vector<float>>(node, "scales", {}, &a->scales, true));
  if (mode != "nearest" && mode != "linear")
    return Invalid(node, "mode '" + mode + "' (nearest and linear are supported)");
  a->linear = mode == "linear";
  if (!ParseCoord(coord, &a->coord))
    return Invalid(node, "coordinate_transformation_mode '" + coord + "' is not supported");
  if (!ParseNearest(nearest, &a->nearest))
    return Invalid(node, "nearest_mode '" + nearest + "' is not supported");
  if (a->sizes.size() != spatial || a->scales.size() != spatial)
    return Invalid(node, "sizes and scales must hold one value per spatial axis");
  for (size_t i = 0; i < spatial; ++i) {
    if (a->sizes[i] < 1 || a->sizes[i] > (int64_t{1} << 24))
      return Invalid(node, "output size " + std::to_string(a->sizes[i]) + " is out of range");
    if (!(a->scales[i] > 0.f) || !std::isfinite(a->scales[i]))
      return Invalid(node, "scales must be finite and > 0");
  }
  return Status::Ok();
}

}  // namespace

Status InferResize(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(basic_ops::CheckFloatInputs(node, graph, *outs, 1, 1, &in));
  const Dims& dims = in[0]->dims;
  if (dims.size() != 3 && dims.size() != 4)
    return Invalid(node, "X must be [N, C, W] or [N, C, H, W], not " + DimsToString(dims));
  ResizeAttrs a;
  EI_RETURN_IF_ERROR(ReadAttrs(node, dims.size() - 2, &a));
  Dims out = dims;
  for (size_t i = 2; i < dims.size(); ++i) {
    if (dims[i] < 1) return Invalid(node, "spatial dims must be literal and non-empty");
    out[i] = a.sizes[i - 2];
  }
  if (dims[1] < 0) return Invalid(node, "the channel axis holds the batch");
  basic_ops::SetOutput(outs, std::move(out));
  return Status::Ok();
}

KernelResult CreateResize(const Node& node, const Graph& graph) {
  const Dims& dims = graph.tensors[node.inputs[0]].dims;
  ResizeAttrs a;
  EI_RETURN_IF_ERROR(ReadAttrs(node, dims.size() - 2, &a));
  std::vector<AxisTable> axes;
  std::vector<int64_t> in(dims.begin() + 2, dims.end());
  for (size_t i = 0; i < in.size(); ++i)
    axes.push_back(MakeTable(a.linear, a.coord, a.nearest, in[i], a.sizes[i], a.scales[i]));
  return std::unique_ptr<Kernel>(new ResizeKernel(std::move(axes), std::move(in)));
}

}  // namespace edgeinfer::math_ops
