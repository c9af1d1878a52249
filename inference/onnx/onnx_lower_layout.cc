// Lowering of Reshape, Flatten, Squeeze, Unsqueeze (all to the internal Reshape with a fully
// resolved symbolic shape), Transpose, Concat and Pad. All but Pad also work on integer values
// known at import (shape arithmetic, torch's computed pads), which fold instead of becoming
// nodes.
#include <numeric>

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

constexpr OnnxLowering kLowerings[] = {
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
