// Lowering of ops that only name or fold values: Constant, Identity, Dropout (inference mode),
// and the shape arithmetic torch.onnx.export emits (Shape, Gather, Slice, Cast,
// ConstantOfShape). Their results are constants, aliases or known ints, except Slice and Gather
// of a float tensor (internal Slice nodes: torch's y[:, -1]) and ConstantOfShape zeros over the
// batch (a zeros value for the recurrent ops' initial states).
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

Status GatherTensor(const NodeProto& n, LowerContext& cx);

Status LowerGather(const NodeProto& n, LowerContext& cx) {
  if (cx.HasInput(n, 0) && cx.TensorOf(n.input(0)) >= 0) return GatherTensor(n, cx);
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

// A Slice's literal starts, ends, axes (default 0..n-1) and steps (default 1), equally long.
struct SliceArgs {
  std::vector<int64_t> starts, ends, axes, steps;
};

Result<SliceArgs> ReadSliceArgs(const NodeProto& n, LowerContext& cx) {
  SliceArgs a;
  EI_ASSIGN_OR_RETURN(a.starts, cx.LiteralInts(n, 1));
  EI_ASSIGN_OR_RETURN(a.ends, cx.LiteralInts(n, 2));
  a.axes.resize(a.starts.size());
  a.steps.assign(a.starts.size(), 1);
  std::iota(a.axes.begin(), a.axes.end(), 0);
  if (cx.HasInput(n, 3)) {
    EI_ASSIGN_OR_RETURN(a.axes, cx.LiteralInts(n, 3));
  }
  if (cx.HasInput(n, 4)) {
    EI_ASSIGN_OR_RETURN(a.steps, cx.LiteralInts(n, 4));
  }
  const size_t k = a.starts.size();
  if (a.ends.size() != k || a.axes.size() != k || a.steps.size() != k)
    return Status::InvalidArgument("starts, ends, axes and steps differ in length");
  return a;
}

// Slice of known ints over several axes or of rank > 1 (torch's F.pad export reverses the
// [rank, 2] pads this way).
Status LowerSliceAxes(const NodeProto& n, LowerContext& cx, KnownInts data) {
  EI_ASSIGN_OR_RETURN(const SliceArgs a, ReadSliceArgs(n, cx));
  const auto& [starts, ends, axes, steps] = a;
  for (size_t i = 0; i < starts.size(); ++i) {
    EI_ASSIGN_OR_RETURN(data, SliceAxis(data, axes[i], starts[i], ends[i], steps[i]));
  }
  cx.BindInts(n.output(0), std::move(data));
  return Status::Ok();
}

// One axis of a Slice on a float tensor or zeros value: [start, end) with `step`, clamped as
// ONNX does to a literal axis length.
struct AxisRange {
  int64_t axis = 0, start = 0, end = 0, step = 1, count = 0;
};

Result<std::vector<AxisRange>> ReadSliceRanges(const NodeProto& n, LowerContext& cx,
                                               const Dims& dims) {
  if (!cx.HasInput(n, 1) || !cx.HasInput(n, 2))
    return Status::InvalidArgument("starts and ends are required");
  EI_ASSIGN_OR_RETURN(const SliceArgs a, ReadSliceArgs(n, cx));
  const auto& [starts, ends, axes, steps] = a;
  const int64_t rank = static_cast<int64_t>(dims.size());
  std::vector<AxisRange> ranges;
  for (size_t i = 0; i < starts.size(); ++i) {
    AxisRange r;
    r.axis = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (r.axis < 0 || r.axis >= rank) return Status::InvalidArgument("Slice axis out of range");
    const int64_t len = dims[r.axis];
    r.step = steps[i];
    if (len < 0) return Status::Unsupported("Slice of the batch axis of a tensor");
    if (r.step == 0) return Status::InvalidArgument("slice step 0");
    auto clamp = [len](int64_t v, int64_t lo, int64_t hi) {
      return std::clamp(v < 0 ? v + len : v, lo, hi);
    };
    r.start = r.step > 0 ? clamp(starts[i], 0, len) : clamp(starts[i], 0, len - 1);
    r.end = r.step > 0 ? clamp(ends[i], 0, len) : clamp(ends[i], -1, len - 1);
    const int64_t count = r.step > 0 ? (r.end - r.start + r.step - 1) / r.step
                                     : (r.start - r.end - r.step - 1) / -r.step;
    r.count = std::max<int64_t>(count, 0);
    ranges.push_back(r);
  }
  return ranges;
}

// Slice of a zeros value (BindZeros): zeros of the sliced dims.
Status SliceZeros(const NodeProto& n, LowerContext& cx, Dims dims) {
  EI_ASSIGN_OR_RETURN(std::vector<AxisRange> ranges, ReadSliceRanges(n, cx, dims));
  for (const AxisRange& r : ranges) dims[r.axis] = r.count;
  cx.BindZeros(n.output(0), std::move(dims));
  return Status::Ok();
}

// Emits an internal Slice of axis [start, end) of x; the output takes n's output name, which
// a later node of the same lowering may take over (the intermediate is then renamed).
Result<int> EmitSlice(const NodeProto& n, LowerContext& cx, int x, int64_t axis, int64_t start,
                      int64_t end, int64_t step = 1) {
  const int prev = cx.TensorOf(n.output(0));
  if (prev >= 0 && prev == x)
    cx.graph().tensors[x].name = UniqueTensorName(cx.graph(), n.output(0) + "/part");
  Attrs a;
  a.Set("axis", axis);
  a.Set("start", start);
  a.Set("end", end);
  if (step != 1) a.Set("step", step);
  return cx.Emit(n, "Slice", {x}, a);
}

// Slice of a float tensor on literal axes: one internal Slice per axis that changes (any
// non-zero step: torch's x[:, ::2], x.flip(1)).
Status SliceTensor(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  EI_ASSIGN_OR_RETURN(std::vector<AxisRange> ranges, ReadSliceRanges(n, cx, cx.desc(x).dims));
  for (const AxisRange& r : ranges) {
    if (r.count == 0) return Status::Unsupported("Slice to an empty tensor");
    if (r.step == 1 && r.count == cx.desc(x).dims[r.axis]) continue;
    EI_ASSIGN_OR_RETURN(x, EmitSlice(n, cx, x, r.axis, r.start, r.end, r.step));
  }
  cx.BindTensor(n.output(0), x);
  return Status::Ok();
}

// Gather of one literal index from a float tensor (torch's y[:, -1]): a Slice of that axis and,
// for a scalar index, a Reshape that drops it.
// Gather of literal indices from a float constant (an nn.Embedding table read at
// torch.arange(T): learned positions) is a constant: out = data[:axis] + indices + data[axis+1:].
Status GatherConstant(const NodeProto& n, LowerContext& cx, int x, const KnownInts& indices,
                      const std::vector<int64_t>& index) {
  const Dims dims = cx.desc(x).dims;
  const int64_t rank = static_cast<int64_t>(dims.size());
  EI_ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(OnnxAttrInt(n, "axis", 0), rank));
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= dims[k];
  for (int64_t k = axis + 1; k < rank; ++k) inner *= dims[k];
  const int64_t len = dims[axis];
  const std::vector<float> data = ConstantFloats(cx.graph(), x);
  if (outer * static_cast<int64_t>(index.size()) * inner > (int64_t{1} << 26))
    return Status::Unsupported("Gather to a constant of more than 2^26 values");
  std::vector<float> out;
  out.reserve(outer * index.size() * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i : index) {
      const int64_t at = i < 0 ? i + len : i;
      if (at < 0 || at >= len)
        return Status::InvalidArgument("Gather index " + std::to_string(i) +
                                       " is out of range for " + DimsToString(dims));
      const float* row = data.data() + (o * len + at) * inner;
      out.insert(out.end(), row, row + inner);
    }
  Dims out_dims(dims.begin(), dims.begin() + axis);
  out_dims.insert(out_dims.end(), indices.shape.begin(), indices.shape.end());
  out_dims.insert(out_dims.end(), dims.begin() + axis + 1, dims.end());
  cx.BindTensor(n.output(0), AddFloatConstant(&cx.graph(), n.output(0), out_dims, out));
  return Status::Ok();
}

Status GatherTensor(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  EI_ASSIGN_OR_RETURN(KnownInts indices, cx.Ints(n, 1));
  Result<std::vector<int64_t>> index = indices.Literals();
  if (index.ok() && IsFloatConstant(cx.graph(), x) && !HasBatch(cx.desc(x).dims))
    return GatherConstant(n, cx, x, indices, *index);
  if (!index.ok() || index->size() != 1 || indices.shape.size() > 1)
    return Status::Unsupported("Gather on the float tensor '" + n.input(0) +
                               "' needs a single literal index");
  const Dims dims = cx.desc(x).dims;
  const int64_t rank = static_cast<int64_t>(dims.size());
  int64_t axis = OnnxAttrInt(n, "axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return Status::InvalidArgument("Gather axis out of range");
  const int64_t len = dims[axis];
  if (len < 0) return Status::Unsupported("Gather along the batch axis of a tensor");
  int64_t i = (*index)[0] < 0 ? (*index)[0] + len : (*index)[0];
  if (i < 0 || i >= len)
    return Status::InvalidArgument("Gather index " + std::to_string((*index)[0]) +
                                   " is out of range for " + DimsToString(dims));
  int s = x;
  if (len > 1) {
    EI_ASSIGN_OR_RETURN(s, EmitSlice(n, cx, x, axis, i, i + 1));
  }
  if (indices.shape.size() == 1) {
    cx.BindTensor(n.output(0), s);
    return Status::Ok();
  }
  Dims out = dims;
  out.erase(out.begin() + axis);
  if (s != x) cx.graph().tensors[s].name = UniqueTensorName(cx.graph(), n.output(0) + "/slice");
  Attrs a;
  a.Set("shape", out);
  return cx.Emit(n, "Reshape", {s}, a).status();
}

Status LowerSlice(const NodeProto& n, LowerContext& cx) {
  if (cx.HasInput(n, 0) && cx.IsZeros(n.input(0)))
    return SliceZeros(n, cx, *cx.ZerosDims(n.input(0)));
  if (cx.TensorOf(n.input(0)) >= 0) return SliceTensor(n, cx);
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

// Float zeros over a shape that has the batch (torch's initial RNN state) become a zeros value
// (LowerContext::BindZeros), which only the recurrent ops accept.
Status BindBatchZeros(const NodeProto& n, LowerContext& cx, const onnx::TensorProto& value,
                      Status literal_error) {
  Result<KnownInts> shape = cx.Ints(n, 0);
  Result<std::vector<float>> v = OnnxTensorFloats(value);
  if (!shape.ok() || !IsOnnxFloatType(value.data_type()) || !v.ok() || v->size() != 1 ||
      (*v)[0] != 0.f)
    return literal_error.WithContext("ConstantOfShape needs a literal shape");
  Dims dims;
  for (const SymInt& d : shape->values) {
    EI_ASSIGN_OR_RETURN(int64_t dim, SymToDim(d));
    dims.push_back(dim);
  }
  cx.BindZeros(n.output(0), std::move(dims));
  return Status::Ok();
}

// ConstantOfShape of a literal shape: known ints for an integer value, else a float constant.
Status LowerConstantOfShape(const NodeProto& n, LowerContext& cx) {
  onnx::TensorProto value;
  value.set_data_type(onnx::TensorProto::FLOAT);
  value.add_dims(1);
  value.add_float_data(0.f);
  if (const auto* a = FindOnnxAttr(n, "value")) value = a->t();
  Result<std::vector<int64_t>> dims = cx.LiteralInts(n, 0);
  if (!dims.ok()) return BindBatchZeros(n, cx, value, dims.status());
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
