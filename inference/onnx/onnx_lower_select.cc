// Lowering of Split, comparisons, Not, Range and Where: what attention blocks export. Split of a
// float tensor (torch's qkv.split / chunk) becomes one internal Slice per output. Equal is folded
// on values known at import (shape values: torch's expand(B, -1, -1) computes its shape with
// Equal and Where; float constants: a mask buffer compared with 0), and so are Less, Greater (and
// OrEqual), Not and Range on integers (torch.arange causal masks). Where with a condition known at
// import (masked_fill with a constant mask) becomes an internal Where on a 0/1 float mask; Where
// on shape values folds. Boolean tensors computed at run time are not supported.
#include <algorithm>
#include <functional>

#include "inference/onnx/graph_edit.h"
#include "inference/onnx/onnx_attrs.h"
#include "inference/onnx/onnx_lower.h"

namespace edgeinfer {

namespace {

using onnx::NodeProto;

// Split of a float tensor along a literal axis into the given sizes (opset 13+: input 1;
// before: the `split` attribute; absent: equal parts, one per output).
Status LowerSplit(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  const Dims dims = cx.desc(x).dims;
  EI_ASSIGN_OR_RETURN(int64_t axis,
                      NormalizeAxis(OnnxAttrInt(n, "axis", 0), static_cast<int64_t>(dims.size())));
  const int64_t len = dims[axis];
  if (len < 0) return Status::Unsupported("Split along the batch axis");
  const int64_t parts = n.output_size();
  std::vector<int64_t> sizes;
  if (cx.opset() >= 13 && cx.HasInput(n, 1)) {
    EI_ASSIGN_OR_RETURN(sizes, cx.LiteralInts(n, 1));
  } else if (FindOnnxAttr(n, "split")) {
    sizes = OnnxAttrInts(n, "split", {});
  } else {
    if (parts == 0 || len % parts != 0)
      return Status::InvalidArgument("axis of " + std::to_string(len) +
                                     " does not split evenly into " + std::to_string(parts));
    sizes.assign(parts, len / parts);
  }
  if (static_cast<int64_t>(sizes.size()) != parts)
    return Status::InvalidArgument(std::to_string(sizes.size()) + " split sizes for " +
                                   std::to_string(parts) + " outputs");
  int64_t start = 0;
  for (int64_t s : sizes) {
    if (s < 1) return Status::Unsupported("split size " + std::to_string(s) + " (empty part)");
    start += s;
  }
  if (start != len)
    return Status::InvalidArgument("split sizes sum to " + std::to_string(start) +
                                   ", the axis has " + std::to_string(len));
  start = 0;
  for (int64_t i = 0; i < parts; ++i) {
    const int64_t end = start + sizes[i];
    if (sizes[i] == len) {
      cx.BindTensor(n.output(i), x);
    } else if (!n.output(i).empty()) {
      NodeProto part = n;
      part.set_output(0, n.output(i));
      part.set_name(n.name() + "/" + std::to_string(i));
      Attrs a;
      a.Set("axis", axis);
      a.Set("start", start);
      a.Set("end", end);
      EI_RETURN_IF_ERROR(cx.Emit(part, "Slice", {x}, a).status());
    }
    start = end;
  }
  return Status::Ok();
}

// Element-wise over known ints with numpy broadcasting (their shapes are literal).
Result<KnownInts> ZipInts(const std::vector<const KnownInts*>& in,
                          const std::function<Result<SymInt>(const SymInt* const*)>& fn) {
  size_t rank = 0;
  for (const KnownInts* k : in) rank = std::max(rank, k->shape.size());
  Dims out(rank, 1);
  for (const KnownInts* k : in)
    for (size_t i = 0; i < k->shape.size(); ++i) {
      int64_t& o = out[rank - k->shape.size() + i];
      const int64_t d = k->shape[i];
      if (d != 1 && o != 1 && d != o)
        return Status::InvalidArgument("cannot broadcast shape values " + DimsToString(k->shape) +
                                       " to " + DimsToString(out));
      if (d != 1) o = d;
    }
  int64_t count = 1;
  for (int64_t d : out) count *= d;
  if (count > (int64_t{1} << 20))
    return Status::Unsupported("shape values of " + std::to_string(count) + " elements");
  KnownInts r;
  r.shape = out;
  std::vector<const SymInt*> args(in.size());
  std::vector<int64_t> at(rank);
  for (int64_t e = 0; e < count; ++e) {
    for (int64_t rest = e, i = static_cast<int64_t>(rank) - 1; i >= 0; --i) {
      at[i] = rest % out[i];
      rest /= out[i];
    }
    for (size_t j = 0; j < in.size(); ++j) {
      const Dims& d = in[j]->shape;
      int64_t idx = 0;
      for (size_t i = 0; i < d.size(); ++i)
        idx = idx * d[i] + (d[i] == 1 ? 0 : at[rank - d.size() + i]);
      args[j] = &in[j]->values[idx];
    }
    EI_ASSIGN_OR_RETURN(SymInt v, fn(args.data()));
    r.values.push_back(v);
  }
  return r;
}

// a == b on shape values. k x batch is never equal to a literal <= 0 (ONNX's -1 "keep" in
// torch's expand); against a positive literal the answer depends on the batch and is refused.
Result<SymInt> SymEqual(const SymInt& a, const SymInt& b) {
  if (a.batch == b.batch) return SymInt::Lit(a.coeff == b.coeff ? 1 : 0);
  const SymInt& lit = a.batch ? b : a;
  if (lit.coeff <= 0) return SymInt::Lit(0);
  return Status::Unsupported("comparing " + a.ToString() + " with " + b.ToString() +
                             " depends on the batch size");
}

// Float constants at import as known ints (for Equal of two constants).
Result<KnownInts> ConstantAsInts(const NodeProto& n, LowerContext& cx, int i) {
  if (cx.IsInts(n, i)) return cx.Ints(n, i);
  EI_ASSIGN_OR_RETURN(std::vector<float> v, cx.ConstantFloats(n, i));
  KnownInts k;
  k.shape = cx.desc(cx.TensorOf(n.input(i))).dims;
  for (float f : v) {
    if (f != static_cast<float>(static_cast<int64_t>(f)))
      return Status::Unsupported("Equal of the non-integer constant '" + n.input(i) + "'");
    k.values.push_back(SymInt::Lit(static_cast<int64_t>(f)));
  }
  return k;
}

Status LowerEqual(const NodeProto& n, LowerContext& cx) {
  for (int i = 0; i < 2; ++i)
    if (!cx.IsInts(n, i) && !cx.ConstantFloats(n, i).ok())
      return Status::Unsupported("Equal of '" + n.input(i) +
                                 "', a tensor computed at run time (boolean tensors are not "
                                 "supported; only values known at import are compared)");
  EI_ASSIGN_OR_RETURN(KnownInts a, ConstantAsInts(n, cx, 0));
  EI_ASSIGN_OR_RETURN(KnownInts b, ConstantAsInts(n, cx, 1));
  EI_ASSIGN_OR_RETURN(KnownInts r, ZipInts({&a, &b}, [](const SymInt* const* v) {
                        return SymEqual(*v[0], *v[1]);
                      }));
  cx.BindInts(n.output(0), std::move(r));
  return Status::Ok();
}

// Less, LessOrEqual, Greater, GreaterOrEqual on known ints: literals compare; k x batch
// compares with k' x batch by k (both positive counts of the same batch).
template <class Cmp>
Status LowerCompare(const NodeProto& n, LowerContext& cx) {
  for (int i = 0; i < 2; ++i)
    if (!cx.IsInts(n, i))
      return Status::Unsupported("comparison of '" + n.input(i) +
                                 "', a float tensor (boolean tensors are not supported; only "
                                 "integer values known at import are compared)");
  EI_ASSIGN_OR_RETURN(KnownInts a, cx.Ints(n, 0));
  EI_ASSIGN_OR_RETURN(KnownInts b, cx.Ints(n, 1));
  EI_ASSIGN_OR_RETURN(KnownInts r, ZipInts({&a, &b}, [](const SymInt* const* v) {
                        if (v[0]->batch != v[1]->batch)
                          return Result<SymInt>(
                              Status::Unsupported("comparing " + v[0]->ToString() + " with " +
                                                  v[1]->ToString() + " depends on the batch size"));
                        return Result<SymInt>(SymInt::Lit(Cmp()(v[0]->coeff, v[1]->coeff)));
                      }));
  cx.BindInts(n.output(0), std::move(r));
  return Status::Ok();
}

Status LowerNot(const NodeProto& n, LowerContext& cx) {
  if (!cx.IsInts(n, 0))
    return Status::Unsupported("Not of a tensor computed at run time (no boolean tensors)");
  EI_ASSIGN_OR_RETURN(KnownInts a, cx.Ints(n, 0));
  EI_ASSIGN_OR_RETURN(KnownInts r, ZipInts({&a}, [](const SymInt* const* v) {
                        if (!v[0]->is_literal())
                          return Result<SymInt>(Status::Unsupported("Not of a batch size"));
                        return Result<SymInt>(SymInt::Lit(v[0]->coeff == 0 ? 1 : 0));
                      }));
  cx.BindInts(n.output(0), std::move(r));
  return Status::Ok();
}

// Range of literal integers (torch.arange(T) for positions and causal masks).
Status LowerRange(const NodeProto& n, LowerContext& cx) {
  std::vector<int64_t> v[3];
  for (int i = 0; i < 3; ++i) {
    if (!cx.IsInts(n, i))
      return Status::Unsupported("Range of floats (integer Range known at import only)");
    EI_ASSIGN_OR_RETURN(v[i], cx.LiteralInts(n, i));
    if (v[i].size() != 1) return Status::InvalidArgument("start, limit and delta are scalars");
  }
  const int64_t start = v[0][0], limit = v[1][0], delta = v[2][0];
  if (delta == 0) return Status::InvalidArgument("delta 0");
  const int64_t span = limit - start;
  const int64_t count = std::max<int64_t>(0, (span + delta + (delta > 0 ? -1 : 1)) / delta);
  if (count > (int64_t{1} << 20)) return Status::Unsupported("Range of more than 2^20 values");
  std::vector<SymInt> out;
  for (int64_t i = 0; i < count; ++i) out.push_back(SymInt::Lit(start + i * delta));
  cx.BindInts(n.output(0), KnownInts::Vector(std::move(out)));
  return Status::Ok();
}

Status LowerWhere(const NodeProto& n, LowerContext& cx) {
  if (!cx.IsInts(n, 0))
    return Status::Unsupported("the condition '" + n.input(0) +
                               "' is computed at run time; only a condition known at import (a "
                               "constant mask) is supported");
  EI_ASSIGN_OR_RETURN(KnownInts cond, cx.Ints(n, 0));
  if (cx.IsInts(n, 1) && cx.IsInts(n, 2)) {
    EI_ASSIGN_OR_RETURN(KnownInts x, cx.Ints(n, 1));
    EI_ASSIGN_OR_RETURN(KnownInts y, cx.Ints(n, 2));
    EI_ASSIGN_OR_RETURN(KnownInts r, ZipInts({&cond, &x, &y}, [](const SymInt* const* v) {
                          if (!v[0]->is_literal())
                            return Result<SymInt>(Status::Unsupported("a symbolic condition"));
                          return Result<SymInt>(v[0]->coeff != 0 ? *v[1] : *v[2]);
                        }));
    cx.BindInts(n.output(0), std::move(r));
    return Status::Ok();
  }
  EI_ASSIGN_OR_RETURN(std::vector<int64_t> c, cx.LiteralInts(n, 0));
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 1));
  EI_ASSIGN_OR_RETURN(int y, cx.Tensor(n, 2));
  std::vector<float> mask(c.size());
  for (size_t i = 0; i < c.size(); ++i) mask[i] = c[i] != 0 ? 1.f : 0.f;
  Graph& g = cx.graph();
  const int m = AddFloatConstant(&g, UniqueTensorName(g, n.input(0) + "/mask"), cond.shape, mask);
  return cx.Emit(n, "Where", {m, x, y}, {}).status();
}

constexpr OnnxLowering kLowerings[] = {
    {"Split", LowerSplit},
    {"Equal", LowerEqual},
    {"Less", LowerCompare<std::less<int64_t>>},
    {"LessOrEqual", LowerCompare<std::less_equal<int64_t>>},
    {"Greater", LowerCompare<std::greater<int64_t>>},
    {"GreaterOrEqual", LowerCompare<std::greater_equal<int64_t>>},
    {"Not", LowerNot},
    {"Range", LowerRange},
    {"Where", LowerWhere},
};

}  // namespace

std::span<const OnnxLowering> SelectLowerings() { return kLowerings; }

}  // namespace edgeinfer
