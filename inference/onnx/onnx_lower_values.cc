// Lowering of ops that only name or fold values: Constant, Identity, Dropout (inference mode),
// and the shape arithmetic torch.onnx.export emits (Shape, Gather, Slice, Cast). None of them
// becomes a node; their results are constants, aliases or known ints.
#include <algorithm>

#include "inference/onnx/graph_edit.h"
#include "inference/onnx/onnx_attrs.h"
#include "inference/onnx/onnx_lower.h"
#include "inference/onnx/onnx_tensor.h"

namespace edgeinfer {

namespace {

using onnx::NodeProto;

KnownInts IntsOf(const Dims& shape, const std::vector<int64_t>& v) {
  KnownInts k;
  k.shape = shape;
  for (int64_t x : v) k.values.push_back(SymInt::Lit(x));
  return k;
}

Status LowerConstant(const NodeProto& n, LowerContext& cx) {
  const std::string& out = n.output(0);
  Graph& g = cx.graph();
  if (const auto* a = FindOnnxAttr(n, "value")) {
    onnx::TensorProto t = a->t();
    t.set_name(out);
    return BindOnnxConstant(cx, out, t);
  }
  if (const auto* a = FindOnnxAttr(n, "value_float")) {
    cx.BindTensor(out, AddFloatConstant(&g, out, {}, {a->f()}));
  } else if (const auto* a = FindOnnxAttr(n, "value_floats")) {
    std::vector<float> v(a->floats().begin(), a->floats().end());
    cx.BindTensor(out, AddFloatConstant(&g, out, {static_cast<int64_t>(v.size())}, v));
  } else if (const auto* a = FindOnnxAttr(n, "value_int")) {
    cx.BindInts(out, IntsOf({}, {a->i()}));
  } else if (const auto* a = FindOnnxAttr(n, "value_ints")) {
    std::vector<int64_t> v(a->ints().begin(), a->ints().end());
    cx.BindInts(out, IntsOf({static_cast<int64_t>(v.size())}, v));
  } else {
    std::string kind = n.attribute_size() ? n.attribute(0).name() : "no value";
    return Status::Unsupported("Constant with '" + kind + "' is not supported");
  }
  return Status::Ok();
}

// Output 0 becomes another name for input 0.
Status Alias(const NodeProto& n, LowerContext& cx) {
  if (cx.IsInts(n, 0)) {
    EI_ASSIGN_OR_RETURN(KnownInts v, cx.Ints(n, 0));
    cx.BindInts(n.output(0), std::move(v));
    return Status::Ok();
  }
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  cx.BindTensor(n.output(0), x);
  return Status::Ok();
}

// Training-mode dropout is refused unless its ratio is a constant 0, which is the identity too.
Status LowerDropout(const NodeProto& n, LowerContext& cx) {
  if (cx.HasInput(n, 2)) {
    Result<std::vector<int64_t>> training = cx.LiteralInts(n, 2);
    bool inference = training.ok() && training->size() == 1 && (*training)[0] == 0;
    Result<std::vector<float>> ratio = cx.ConstantFloats(n, 1);
    bool keeps_all = ratio.ok() && ratio->size() == 1 && (*ratio)[0] == 0.f;
    if (!inference && !keeps_all)
      return Status::Unsupported("training_mode must be a constant false (inference only)");
  }
  EI_RETURN_IF_ERROR(cx.RefuseUsedOutputs(n, 1, "mask"));
  return Alias(n, cx);
}

Status LowerShape(const NodeProto& n, LowerContext& cx) {
  Dims dims;
  if (cx.IsInts(n, 0)) {
    EI_ASSIGN_OR_RETURN(KnownInts v, cx.Ints(n, 0));
    dims = v.shape;
  } else {
    EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
    dims = cx.desc(x).dims;
  }
  // Opset 15's start/end: negative counts from the end, then clamped to [0, rank].
  int64_t rank = static_cast<int64_t>(dims.size());
  auto clamp = [rank](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
  int64_t start = clamp(OnnxAttrInt(n, "start", 0));
  int64_t end = clamp(OnnxAttrInt(n, "end", rank));
  std::vector<SymInt> v;
  for (int64_t i = start; i < end; ++i) v.push_back(SymInt::FromDim(dims[i]));
  cx.BindInts(n.output(0), KnownInts::Vector(std::move(v)));
  return Status::Ok();
}

Status LowerGather(const NodeProto& n, LowerContext& cx) {
  if (!cx.IsInts(n, 0))
    return Status::Unsupported("Gather is supported on shape values only, not on '" + n.input(0) +
                               "'");
  EI_ASSIGN_OR_RETURN(KnownInts data, cx.Ints(n, 0));
  EI_ASSIGN_OR_RETURN(KnownInts indices, cx.Ints(n, 1));
  EI_ASSIGN_OR_RETURN(KnownInts r, KnownGather(data, indices, OnnxAttrInt(n, "axis", 0)));
  cx.BindInts(n.output(0), std::move(r));
  return Status::Ok();
}

// A single literal from optional input i, or `def` when it is absent.
Result<int64_t> OneLiteral(const NodeProto& n, LowerContext& cx, int i, int64_t def) {
  if (!cx.HasInput(n, i)) return def;
  EI_ASSIGN_OR_RETURN(std::vector<int64_t> v, cx.LiteralInts(n, i));
  if (v.size() != 1) return Status::Unsupported("Slice of shape values over more than one axis");
  return v[0];
}

Status LowerSlice(const NodeProto& n, LowerContext& cx) {
  if (!cx.IsInts(n, 0))
    return Status::Unsupported("Slice is supported on shape values only, not on '" + n.input(0) +
                               "'");
  if (!cx.HasInput(n, 1) || !cx.HasInput(n, 2))
    return Status::InvalidArgument("starts and ends are required");
  EI_ASSIGN_OR_RETURN(KnownInts data, cx.Ints(n, 0));
  EI_ASSIGN_OR_RETURN(int64_t start, OneLiteral(n, cx, 1, 0));
  EI_ASSIGN_OR_RETURN(int64_t end, OneLiteral(n, cx, 2, 0));
  EI_ASSIGN_OR_RETURN(int64_t axis, OneLiteral(n, cx, 3, 0));
  EI_ASSIGN_OR_RETURN(int64_t step, OneLiteral(n, cx, 4, 1));
  if (axis != 0 && axis != -1) return Status::InvalidArgument("Slice axis out of range");
  EI_ASSIGN_OR_RETURN(KnownInts r, KnownSlice(data, start, end, step));
  cx.BindInts(n.output(0), std::move(r));
  return Status::Ok();
}

Status LowerCast(const NodeProto& n, LowerContext& cx) {
  int32_t to = static_cast<int32_t>(OnnxAttrInt(n, "to", 0));
  if (!IsOnnxIntType(to) && !IsOnnxFloatType(to))
    return Status::Unsupported("Cast to " + OnnxTypeName(to) + " is not supported");
  bool from_ints = cx.IsInts(n, 0);
  if (from_ints == IsOnnxIntType(to)) return Alias(n, cx);  // int->int, float->float
  if (from_ints) {  // shape values -> float: only literals can become a float constant
    EI_ASSIGN_OR_RETURN(KnownInts v, cx.Ints(n, 0));
    EI_ASSIGN_OR_RETURN(std::vector<int64_t> lits, cx.LiteralInts(n, 0));
    std::vector<float> f(lits.begin(), lits.end());
    cx.BindTensor(n.output(0), AddFloatConstant(&cx.graph(), n.output(0), v.shape, f));
    return Status::Ok();
  }
  EI_ASSIGN_OR_RETURN(std::vector<float> f, cx.ConstantFloats(n, 0));
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  std::vector<int64_t> ints(f.begin(), f.end());  // ONNX float->int casts truncate
  cx.BindInts(n.output(0), IntsOf(cx.desc(x).dims, ints));
  return Status::Ok();
}

constexpr OnnxLowering kLowerings[] = {
    {"Constant", LowerConstant}, {"Identity", Alias},     {"Dropout", LowerDropout},
    {"Shape", LowerShape},       {"Gather", LowerGather}, {"Slice", LowerSlice},
    {"Cast", LowerCast},
};

}  // namespace

Status BindOnnxConstant(LowerContext& cx, const std::string& name, const onnx::TensorProto& t) {
  EI_ASSIGN_OR_RETURN(Dims dims, OnnxTensorDims(t));
  if (IsOnnxFloatType(t.data_type())) {
    EI_ASSIGN_OR_RETURN(std::vector<float> v, OnnxTensorFloats(t));
    cx.BindTensor(name, AddFloatConstant(&cx.graph(), name, dims, v));
    return Status::Ok();
  }
  if (IsOnnxIntType(t.data_type())) {
    EI_ASSIGN_OR_RETURN(std::vector<int64_t> v, OnnxTensorInts(t));
    cx.BindInts(name, IntsOf(dims, v));
    return Status::Ok();
  }
  return Status::Unsupported("tensor '" + name + "' has unsupported type " +
                             OnnxTypeName(t.data_type()));
}

std::span<const OnnxLowering> ValueLowerings() { return kLowerings; }

}  // namespace edgeinfer
