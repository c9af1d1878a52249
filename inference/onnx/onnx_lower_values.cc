// Lowering of ops that only name or fold values: Constant, Identity, Dropout (inference mode),
// and the shape arithmetic torch.onnx.export emits (Shape, Gather, Slice, Cast,
// ConstantOfShape). None of them
// becomes a node; their results are constants, aliases or known ints.
#include <algorithm>
#include <numeric>

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

// Slice of known ints along one axis of any rank (bounds clamped as ONNX does).
Result<KnownInts> SliceAxis(const KnownInts& d, int64_t axis, int64_t start, int64_t end,
                            int64_t step) {
  const int64_t rank = static_cast<int64_t>(d.shape.size());
  EI_ASSIGN_OR_RETURN(axis, NormalizeAxis(axis, rank));
  if (step == 0) return Status::InvalidArgument("slice step 0");
  const int64_t n = d.shape[axis];
  auto clamp = [n](int64_t v, int64_t lo, int64_t hi) {
    return std::clamp(v < 0 ? v + n : v, lo, hi);
  };
  std::vector<int64_t> picked;  // indices along the axis, in output order
  if (step > 0) {
    for (int64_t i = clamp(start, 0, n), e = clamp(end, 0, n); i < e; i += std::min(step, e - i))
      picked.push_back(i);
  } else {
    for (int64_t i = clamp(start, 0, n - 1), e = clamp(end, -1, n - 1); i > e;
         i -= std::min(-step, i - e))
      picked.push_back(i);
  }
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= d.shape[k];
  for (int64_t k = axis + 1; k < rank; ++k) inner *= d.shape[k];
  KnownInts r;
  r.shape = d.shape;
  r.shape[axis] = static_cast<int64_t>(picked.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i : picked)
      for (int64_t j = 0; j < inner; ++j) r.values.push_back(d.values[(o * n + i) * inner + j]);
  return r;
}

// Slice of known ints over several axes or of rank > 1 (torch's F.pad export reverses the
// [rank, 2] pads this way).
Status LowerSliceAxes(const NodeProto& n, LowerContext& cx, KnownInts data) {
  EI_ASSIGN_OR_RETURN(std::vector<int64_t> starts, cx.LiteralInts(n, 1));
  EI_ASSIGN_OR_RETURN(std::vector<int64_t> ends, cx.LiteralInts(n, 2));
  std::vector<int64_t> axes(starts.size()), steps(starts.size(), 1);
  std::iota(axes.begin(), axes.end(), 0);
  if (cx.HasInput(n, 3)) {
    EI_ASSIGN_OR_RETURN(axes, cx.LiteralInts(n, 3));
  }
  if (cx.HasInput(n, 4)) {
    EI_ASSIGN_OR_RETURN(steps, cx.LiteralInts(n, 4));
  }
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    return Status::InvalidArgument("starts, ends, axes and steps differ in length");
  for (size_t i = 0; i < starts.size(); ++i) {
    EI_ASSIGN_OR_RETURN(data, SliceAxis(data, axes[i], starts[i], ends[i], steps[i]));
  }
  cx.BindInts(n.output(0), std::move(data));
  return Status::Ok();
}

Status LowerSlice(const NodeProto& n, LowerContext& cx) {
  if (!cx.IsInts(n, 0))
    return Status::Unsupported("Slice is supported on shape values only, not on '" + n.input(0) +
                               "'");
  if (!cx.HasInput(n, 1) || !cx.HasInput(n, 2))
    return Status::InvalidArgument("starts and ends are required");
  EI_ASSIGN_OR_RETURN(KnownInts data, cx.Ints(n, 0));
  EI_ASSIGN_OR_RETURN(KnownInts starts, cx.Ints(n, 1));
  if (data.shape.size() != 1 || starts.values.size() != 1)
    return LowerSliceAxes(n, cx, std::move(data));
  EI_ASSIGN_OR_RETURN(int64_t start, OneLiteral(n, cx, 1, 0));
  EI_ASSIGN_OR_RETURN(int64_t end, OneLiteral(n, cx, 2, 0));
  EI_ASSIGN_OR_RETURN(int64_t axis, OneLiteral(n, cx, 3, 0));
  EI_ASSIGN_OR_RETURN(int64_t step, OneLiteral(n, cx, 4, 1));
  if (axis != 0 && axis != -1) return Status::InvalidArgument("Slice axis out of range");
  EI_ASSIGN_OR_RETURN(KnownInts r, KnownSlice(data, start, end, step));
  cx.BindInts(n.output(0), std::move(r));
  return Status::Ok();
}

// ConstantOfShape of a literal shape: known ints for an integer value, else a float constant.
Status LowerConstantOfShape(const NodeProto& n, LowerContext& cx) {
  Result<std::vector<int64_t>> dims = cx.LiteralInts(n, 0);
  if (!dims.ok()) return dims.status().WithContext("ConstantOfShape needs a literal shape");
  onnx::TensorProto value;
  value.set_data_type(onnx::TensorProto::FLOAT);
  value.add_dims(1);
  value.add_float_data(0.f);
  if (const auto* a = FindOnnxAttr(n, "value")) value = a->t();
  int64_t count = 1;
  for (int64_t d : *dims) {
    if (d < 0 || (d > 0 && count > (int64_t{1} << 28) / d))
      return Status::InvalidArgument("ConstantOfShape dims " + DimsToString(*dims) +
                                     " are negative or too large");
    count *= d;
  }
  if (IsOnnxIntType(value.data_type())) {
    EI_ASSIGN_OR_RETURN(std::vector<int64_t> v, OnnxTensorInts(value));
    if (v.size() != 1) return Status::InvalidArgument("value must hold one element");
    cx.BindInts(n.output(0), IntsOf(*dims, std::vector<int64_t>(count, v[0])));
    return Status::Ok();
  }
  EI_ASSIGN_OR_RETURN(std::vector<float> v, OnnxTensorFloats(value));
  if (v.size() != 1) return Status::InvalidArgument("value must hold one element");
  cx.BindTensor(n.output(0),
                AddFloatConstant(&cx.graph(), n.output(0), *dims, std::vector<float>(count, v[0])));
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
    {"Constant", LowerConstant}, {"Identity", Alias},
    {"Dropout", LowerDropout},   {"Shape", LowerShape},
    {"Gather", LowerGather},     {"Slice", LowerSlice},
    {"Cast", LowerCast},         {"ConstantOfShape", LowerConstantOfShape},
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
