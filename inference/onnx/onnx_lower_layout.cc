// Lowering of Reshape, Flatten, Squeeze, Unsqueeze (all to the internal Reshape with a fully
// resolved symbolic shape), Transpose and Concat. Each also works on integer values known at
// import, which fold instead of becoming nodes.
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

Status LowerTranspose(const NodeProto& n, LowerContext& cx) {
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

constexpr OnnxLowering kLowerings[] = {
    {"Reshape", LowerReshape},     {"Flatten", LowerFlatten},     {"Squeeze", LowerSqueeze},
    {"Unsqueeze", LowerUnsqueeze}, {"Transpose", LowerTranspose}, {"Concat", LowerConcat},
};

}  // namespace

std::span<const OnnxLowering> LayoutLowerings() { return kLowerings; }

}  // namespace edgeinfer
