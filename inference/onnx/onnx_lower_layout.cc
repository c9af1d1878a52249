// Lowering of Reshape, Flatten, Squeeze, Unsqueeze (all to the internal Reshape with a fully
// resolved symbolic shape), Transpose, Concat and Pad. All but Pad also work on integer values
// known at import (shape arithmetic, torch's computed pads), which fold instead of becoming
// nodes.
#include <cmath>
#include <numeric>

#include "inference/onnx/graph_edit.h"
#include "inference/onnx/onnx_attrs.h"
#include "inference/onnx/onnx_lower.h"

namespace edgeinfer {

namespace {

using onnx::NodeProto;

// Reshape x to `dims`; a reshape to the same dims is no node at all.
Status EmitReshape(const NodeProto& n, LowerContext& cx, int x, const Dims& dims) {
  if (cx.desc(x).dims == dims) {
    cx.BindTensor(n.output(0), x);
    return Status::Ok();
  }
  Attrs a;
  a.Set("shape", dims);
  return cx.Emit(n, "Reshape", {x}, a).status();
}

// Gives n's output the new dims: a Reshape node for a tensor, new dims for known ints.
template <class DimsFn>
Status Relayout(const NodeProto& n, LowerContext& cx, DimsFn dims_fn) {
  if (cx.IsInts(n, 0)) {
    EI_ASSIGN_OR_RETURN(KnownInts v, cx.Ints(n, 0));
    EI_ASSIGN_OR_RETURN(v.shape, dims_fn(v.shape));
    if (HasBatch(v.shape))
      return Status::InvalidArgument("integer values cannot take a batch-sized shape");
    cx.BindInts(n.output(0), std::move(v));
    return Status::Ok();
  }
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  EI_ASSIGN_OR_RETURN(Dims dims, dims_fn(cx.desc(x).dims));
  return EmitReshape(n, cx, x, dims);
}

Status LowerReshape(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(KnownInts shape, cx.Ints(n, 1));
  if (shape.shape.size() != 1)
    return Status::InvalidArgument("the shape input must be 1-D, got " + DimsToString(shape.shape));
  bool allowzero = OnnxAttrInt(n, "allowzero", 0) != 0;
  return Relayout(n, cx,
                  [&](const Dims& in) { return ResolveReshape(in, shape.values, allowzero); });
}

Status LowerFlatten(const NodeProto& n, LowerContext& cx) {
  int64_t axis = OnnxAttrInt(n, "axis", 1);
  return Relayout(n, cx, [&](const Dims& in) { return FlattenDims(in, axis); });
}

// Squeeze/Unsqueeze axes: an attribute before opset 13, an input since.
Result<std::vector<int64_t>> Axes(const NodeProto& n, LowerContext& cx, bool required) {
  if (cx.opset() < 13) {
    if (required && !FindOnnxAttr(n, "axes")) return Status::InvalidArgument("axes missing");
    return OnnxAttrInts(n, "axes", {});
  }
  if (!cx.HasInput(n, 1)) {
    if (required) return Status::InvalidArgument("axes input missing");
    return std::vector<int64_t>{};
  }
  return cx.LiteralInts(n, 1);
}

Status LowerSqueeze(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(std::vector<int64_t> axes, Axes(n, cx, /*required=*/false));
  return Relayout(n, cx, [&](const Dims& in) { return SqueezeDims(in, axes); });
}

Status LowerUnsqueeze(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(std::vector<int64_t> axes, Axes(n, cx, /*required=*/true));
  return Relayout(n, cx, [&](const Dims& in) { return UnsqueezeDims(in, axes); });
}

// Transpose of known ints (torch's F.pad export transposes its [2, rank] pads).
Status TransposeInts(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(KnownInts v, cx.Ints(n, 0));
  const size_t rank = v.shape.size();
  std::vector<int64_t> perm(rank);
  std::iota(perm.rbegin(), perm.rend(), 0);
  perm = OnnxAttrInts(n, "perm", perm);
  std::vector<bool> seen(rank, false);
  if (perm.size() != rank) return Status::InvalidArgument("perm has the wrong length");
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[p])
      return Status::InvalidArgument("perm is not a permutation of the " + std::to_string(rank) +
                                     " axes");
    seen[p] = true;
  }
  std::vector<int64_t> in_stride(rank, 1);
  for (size_t k = rank; k-- > 1;) in_stride[k - 1] = in_stride[k] * v.shape[k];
  KnownInts r;
  for (int64_t p : perm) r.shape.push_back(v.shape[p]);
  std::vector<int64_t> idx(rank, 0);  // output multi-index
  for (size_t i = 0; i < v.values.size(); ++i) {
    int64_t src = 0;
    for (size_t k = 0; k < rank; ++k) src += idx[k] * in_stride[perm[k]];
    r.values.push_back(v.values[src]);
    for (size_t k = rank; k-- > 0;) {
      if (++idx[k] < r.shape[k]) break;
      idx[k] = 0;
    }
  }
  cx.BindInts(n.output(0), std::move(r));
  return Status::Ok();
}

Status LowerTranspose(const NodeProto& n, LowerContext& cx) {
  if (cx.IsInts(n, 0)) return TransposeInts(n, cx);
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  std::vector<int64_t> reverse(cx.desc(x).dims.size());
  std::iota(reverse.rbegin(), reverse.rend(), 0);
  Attrs a;
  a.Set("perm", OnnxAttrInts(n, "perm", reverse));
  return cx.Emit(n, "Transpose", {x}, a).status();
}

Status LowerConcat(const NodeProto& n, LowerContext& cx) {
  if (!FindOnnxAttr(n, "axis")) return Status::InvalidArgument("axis missing");
  int64_t axis = OnnxAttrInt(n, "axis", 0);
  if (n.input_size() > 0 && cx.IsInts(n, 0)) {
    std::vector<KnownInts> parts;
    for (int i = 0; i < n.input_size(); ++i) {
      EI_ASSIGN_OR_RETURN(KnownInts v, cx.Ints(n, i));
      parts.push_back(std::move(v));
    }
    EI_ASSIGN_OR_RETURN(KnownInts r, KnownConcat(parts, axis));
    cx.BindInts(n.output(0), std::move(r));
    return Status::Ok();
  }
  std::vector<int> inputs;
  for (int i = 0; i < n.input_size(); ++i) {
    EI_ASSIGN_OR_RETURN(int t, cx.Tensor(n, i));
    inputs.push_back(t);
  }
  if (inputs.empty()) return Status::InvalidArgument("no inputs");
  int64_t rank = static_cast<int64_t>(cx.desc(inputs[0]).dims.size());
  EI_ASSIGN_OR_RETURN(axis, NormalizeAxis(axis, rank));
  Attrs a;
  a.Set("axis", axis);
  return cx.Emit(n, "Concat", inputs, a).status();
}

// Pad (opset 11+): pads and the optional constant_value are inputs and must be constants.
Status LowerPad(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  Result<std::vector<int64_t>> pads = cx.LiteralInts(n, 1);
  if (!pads.ok()) return pads.status().WithContext("pads");
  Attrs a;
  a.Set("mode", OnnxAttrString(n, "mode", "constant"));
  a.Set("pads", *pads);
  if (cx.HasInput(n, 2)) {
    Result<std::vector<float>> v = cx.ConstantFloats(n, 2);
    if (!v.ok()) return v.status().WithContext("constant_value");
    if (v->size() != 1) return Status::InvalidArgument("constant_value must be a scalar");
    a.Set("value", (*v)[0]);
  }
  return cx.Emit(n, "Pad", {x}, a).status();
}

// Resize of the spatial axes (opset 11+: X, roi, scales, sizes) with scales from a constant or
// sizes known at import; N and C must keep their size. The output size from a scale is
// floor(in x scale); the coordinate transform divides by the given scale, or by out / in when
// sizes are given.
Status LowerResize(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  const Dims dims = cx.desc(x).dims;
  const size_t rank = dims.size();
  const std::string coord = OnnxAttrString(n, "coordinate_transformation_mode", "half_pixel");
  if (coord == "tf_crop_and_resize" || coord == "tf_half_pixel_for_nn")
    return Status::Unsupported("coordinate_transformation_mode '" + coord + "'");
  const std::string mode = OnnxAttrString(n, "mode", "nearest");
  if (mode != "nearest" && mode != "linear")
    return Status::Unsupported("mode '" + mode + "' (nearest and linear are supported)");
  if (rank != 3 && rank != 4)
    return Status::Unsupported("Resize of a rank " + std::to_string(rank) +
                               " tensor (only [N, C, W] and [N, C, H, W])");
  std::vector<float> scales;
  if (cx.HasInput(n, 2)) {
    EI_ASSIGN_OR_RETURN(scales, cx.ConstantFloats(n, 2));
  }
  std::vector<int64_t> sizes;
  std::vector<float> spatial_scales;
  if (!scales.empty()) {
    if (scales.size() != rank) return Status::InvalidArgument("scales must hold one per axis");
    if (scales[0] != 1.f || scales[1] != 1.f)
      return Status::Unsupported("Resize of the N or C axis");
    for (size_t i = 2; i < rank; ++i) {
      if (!(scales[i] > 0.f) || dims[i] < 0)
        return Status::InvalidArgument("scales must be > 0 on literal spatial axes");
      sizes.push_back(static_cast<int64_t>(std::floor(dims[i] * static_cast<double>(scales[i]))));
      spatial_scales.push_back(scales[i]);
    }
  } else {
    EI_ASSIGN_OR_RETURN(KnownInts want, cx.Ints(n, 3));
    if (want.values.size() != rank) return Status::InvalidArgument("sizes must hold one per axis");
    for (size_t i = 0; i < rank; ++i) {
      EI_ASSIGN_OR_RETURN(int64_t d, SymToDim(want.values[i]));
      if (i < 2 && d != dims[i]) return Status::Unsupported("Resize of the N or C axis");
      if (i < 2) continue;
      if (dims[i] < 1 || d < 1)
        return Status::InvalidArgument("sizes must be > 0 on literal spatial axes");
      sizes.push_back(d);
      spatial_scales.push_back(static_cast<float>(static_cast<double>(d) / dims[i]));
    }
  }
  Attrs a;
  a.Set("mode", mode);
  a.Set("coordinate_transformation_mode", coord);
  a.Set("nearest_mode", OnnxAttrString(n, "nearest_mode", "round_prefer_floor"));
  a.Set("sizes", sizes);
  a.Set("scales", spatial_scales);
  return cx.Emit(n, "Resize", {x}, a).status();
}

// DepthToSpace (torch's PixelShuffle: mode CRD; DCR the default) and SpaceToDepth as Reshape,
// Transpose, Reshape. Each step's output takes n's output name; intermediates are renamed.
Status LowerDepthSpace(const NodeProto& n, LowerContext& cx, bool to_space) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  const Dims d = cx.desc(x).dims;
  const int64_t b = OnnxAttrInt(n, "blocksize", 0);
  if (d.size() != 4) return Status::InvalidArgument("X must be [N, C, H, W]");
  if (b < 1 || b > 1024) return Status::InvalidArgument("blocksize must be in [1, 1024]");
  for (size_t i = 1; i < 4; ++i)
    if (d[i] < 1) return Status::Unsupported("C, H and W must be literal");
  const std::string mode = OnnxAttrString(n, "mode", "DCR");
  if (to_space && mode != "DCR" && mode != "CRD")
    return Status::InvalidArgument("mode '" + mode + "' (DCR or CRD)");
  const int64_t c = d[1], h = d[2], w = d[3];
  Dims split, out;
  std::vector<int64_t> perm;
  if (to_space) {
    if (c % (b * b) != 0) return Status::InvalidArgument("C is not a multiple of blocksize^2");
    const int64_t cb = c / (b * b);
    split = mode == "DCR" ? Dims{d[0], b, b, cb, h, w} : Dims{d[0], cb, b, b, h, w};
    perm = mode == "DCR" ? std::vector<int64_t>{0, 3, 4, 1, 5, 2}
                         : std::vector<int64_t>{0, 1, 4, 2, 5, 3};
    out = {d[0], cb, h * b, w * b};
  } else {
    if (h % b != 0 || w % b != 0)
      return Status::InvalidArgument("H and W must be multiples of blocksize");
    split = {d[0], c, h / b, b, w / b, b};
    perm = {0, 3, 5, 1, 2, 4};
    out = {d[0], c * b * b, h / b, w / b};
  }
  Graph& g = cx.graph();
  auto rename = [&](int t, const char* what) {
    g.tensors[t].name = UniqueTensorName(g, n.output(0) + "/" + what);
  };
  Attrs a1;
  a1.Set("shape", split);
  EI_ASSIGN_OR_RETURN(int t1, cx.Emit(n, "Reshape", {x}, a1));
  rename(t1, "split");
  Attrs a2;
  a2.Set("perm", perm);
  EI_ASSIGN_OR_RETURN(int t2, cx.Emit(n, "Transpose", {t1}, a2));
  rename(t2, "transposed");
  Attrs a3;
  a3.Set("shape", out);
  return cx.Emit(n, "Reshape", {t2}, a3).status();
}

Status LowerDepthToSpace(const NodeProto& n, LowerContext& cx) {
  return LowerDepthSpace(n, cx, true);
}
Status LowerSpaceToDepth(const NodeProto& n, LowerContext& cx) {
  return LowerDepthSpace(n, cx, false);
}

constexpr OnnxLowering kLowerings[] = {
    {"DepthToSpace", LowerDepthToSpace},
    {"SpaceToDepth", LowerSpaceToDepth},
    {"Resize", LowerResize},
    {"Reshape", LowerReshape},
    {"Flatten", LowerFlatten},
    {"Squeeze", LowerSqueeze},
    {"Unsqueeze", LowerUnsqueeze},
    {"Transpose", LowerTranspose},
    {"Concat", LowerConcat},
    {"Pad", LowerPad},
};

}  // namespace

std::span<const OnnxLowering> LayoutLowerings() { return kLowerings; }

}  // namespace edgeinfer
