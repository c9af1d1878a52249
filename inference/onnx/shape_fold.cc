#include "inference/onnx/shape_fold.h"

#include <algorithm>

#include "inference/ops/shape_util.h"

namespace edgeinfer {

namespace {

Status Unrepresentable(const char* what, const SymInt& a, const SymInt& b) {
  return Status::InvalidArgument(std::string("cannot fold ") + a.ToString() + " " + what + " " +
                                 b.ToString() + " into a literal or a multiple of the batch");
}

SymInt Normalized(SymInt v) { return v.batch && v.coeff == 0 ? SymInt::Lit(0) : v; }

Result<SymInt> Checked(bool overflow, SymInt v) {
  if (overflow) return Status::InvalidArgument("int64 overflow in shape arithmetic");
  return Normalized(v);
}

Result<SymInt> AddSub(SymOp op, const SymInt& a, const SymInt& b) {
  bool sub = op == SymOp::kSub;
  int64_t r = 0;
  if (a.batch == b.batch) {
    bool of = sub ? __builtin_sub_overflow(a.coeff, b.coeff, &r)
                  : __builtin_add_overflow(a.coeff, b.coeff, &r);
    return Checked(of, {r, a.batch});
  }
  if (b.is_literal() && b.coeff == 0) return a;
  if (!sub && a.is_literal() && a.coeff == 0) return b;
  return Unrepresentable(sub ? "-" : "+", a, b);
}

Result<SymInt> Mul(const SymInt& a, const SymInt& b) {
  if (a.batch && b.batch) return Unrepresentable("*", a, b);
  int64_t r = 0;
  bool overflow = __builtin_mul_overflow(a.coeff, b.coeff, &r);
  return Checked(overflow, {r, a.batch || b.batch});
}

Result<SymInt> Div(const SymInt& a, const SymInt& b) {
  if (b.coeff == 0) return Status::InvalidArgument("division by zero in shape arithmetic");
  if (a.is_literal() && b.is_literal()) return SymInt::Lit(a.coeff / b.coeff);
  if (a.is_literal() && a.coeff == 0) return SymInt::Lit(0);
  if (a.is_literal() || a.coeff % b.coeff != 0) return Unrepresentable("/", a, b);
  // kB / m = (k/m)B and kB / mB = k/m, exact for every batch because m divides k.
  return Normalized({a.coeff / b.coeff, !b.batch});
}

// coeff x batch^power of dims [from, to).
Result<SymbolicCount> CountRange(const Dims& dims, size_t from, size_t to) {
  SymbolicCount c;
  EI_RETURN_IF_ERROR(
      CountElements(Dims(dims.begin() + from, dims.begin() + to), &c).WithContext(DimsToString(dims)));
  return c;
}

Result<int64_t> CountToDim(const SymbolicCount& c, const Dims& dims) {
  if (c.batch_power > 1 && c.coeff != 0)
    return Status::InvalidArgument("the product of " + DimsToString(dims) +
                                   " has the batch more than once; it is not a valid dim");
  return c.batch_power == 1 && c.coeff != 0 ? -c.coeff : c.coeff;
}

}  // namespace

std::string SymInt::ToString() const {
  if (!batch) return std::to_string(coeff);
  return coeff == 1 ? "B" : std::to_string(coeff) + "B";
}

Result<int64_t> SymToDim(const SymInt& v) {
  if (v.is_literal()) {
    if (v.coeff < 0) return Status::InvalidArgument("negative dim " + v.ToString());
    return v.coeff;
  }
  if (v.coeff < 0) return Status::InvalidArgument("negative dim " + v.ToString());
  return -v.coeff;  // 0 x batch was normalized to literal 0 by the arithmetic
}

Result<SymInt> SymArith(SymOp op, const SymInt& a, const SymInt& b) {
  switch (op) {
    case SymOp::kAdd:
    case SymOp::kSub:
      return AddSub(op, a, b);
    case SymOp::kMul:
      return Mul(a, b);
    case SymOp::kDiv:
      return Div(a, b);
  }
  return Status::Internal("bad SymOp");
}

Result<int64_t> DimProduct(const Dims& dims, size_t from, size_t to) {
  EI_ASSIGN_OR_RETURN(SymbolicCount c, CountRange(dims, from, to));
  return CountToDim(c, dims);
}

Result<int64_t> NormalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return Status::InvalidArgument("axis " + std::to_string(axis) + " is out of range for rank " +
                                   std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

Result<Dims> ResolveReshape(const Dims& in, const std::vector<SymInt>& target, bool allowzero) {
  Dims out(target.size());
  int infer_at = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    const SymInt& t = target[i];
    if (t.is_literal() && t.coeff == -1) {
      if (infer_at >= 0) return Status::InvalidArgument("reshape target has more than one -1");
      infer_at = static_cast<int>(i);
    } else if (t.is_literal() && t.coeff == 0 && !allowzero) {
      if (i >= in.size())
        return Status::InvalidArgument("reshape target copies dim " + std::to_string(i) +
                                       " (0) but the input " + DimsToString(in) + " has none");
      out[i] = in[i];
    } else {
      EI_ASSIGN_OR_RETURN(out[i], SymToDim(t));
    }
  }
  EI_ASSIGN_OR_RETURN(SymbolicCount have, CountRange(in, 0, in.size()));
  if (infer_at >= 0) {
    out[infer_at] = 1;
    EI_ASSIGN_OR_RETURN(SymbolicCount known, CountRange(out, 0, out.size()));
    int power = have.batch_power - known.batch_power;
    if (known.coeff == 0 || have.coeff % known.coeff != 0 || power < 0 || power > 1)
      return Status::InvalidArgument("cannot infer the -1 of reshape " + DimsToString(in) +
                                     " to " + DimsToString(out) + " (-1 at " +
                                     std::to_string(infer_at) + ")");
    int64_t d = have.coeff / known.coeff;
    out[infer_at] = power == 1 && d != 0 ? -d : d;
    return out;
  }
  EI_ASSIGN_OR_RETURN(SymbolicCount want, CountRange(out, 0, out.size()));
  bool same = have.coeff == want.coeff && (have.batch_power == want.batch_power || have.coeff == 0);
  if (!same)
    return Status::InvalidArgument("cannot reshape " + DimsToString(in) + " to " +
                                   DimsToString(out) + ": element counts differ");
  return out;
}

Result<Dims> FlattenDims(const Dims& in, int64_t axis) {
  int64_t rank = static_cast<int64_t>(in.size());
  if (axis < -rank || axis > rank)
    return Status::InvalidArgument("flatten axis " + std::to_string(axis) +
                                   " is out of range for rank " + std::to_string(rank));
  size_t a = static_cast<size_t>(axis < 0 ? axis + rank : axis);
  EI_ASSIGN_OR_RETURN(int64_t outer, DimProduct(in, 0, a));
  EI_ASSIGN_OR_RETURN(int64_t inner, DimProduct(in, a, in.size()));
  return Dims{outer, inner};
}

Result<Dims> SqueezeDims(const Dims& in, const std::vector<int64_t>& axes) {
  int64_t rank = static_cast<int64_t>(in.size());
  std::vector<bool> drop(in.size(), false);
  for (int64_t axis : axes) {
    EI_ASSIGN_OR_RETURN(int64_t a, NormalizeAxis(axis, rank));
    if (drop[a]) return Status::InvalidArgument("squeeze axis " + std::to_string(a) + " repeated");
    if (in[a] != 1)
      return Status::InvalidArgument("cannot squeeze axis " + std::to_string(a) + " of " +
                                     DimsToString(in) + ": it is not 1");
    drop[a] = true;
  }
  Dims out;
  for (size_t i = 0; i < in.size(); ++i) {
    bool squeeze = axes.empty() ? in[i] == 1 : drop[i];
    if (!squeeze) out.push_back(in[i]);
  }
  return out;
}

Result<Dims> UnsqueezeDims(const Dims& in, const std::vector<int64_t>& axes) {
  int64_t rank = static_cast<int64_t>(in.size() + axes.size());
  std::vector<bool> added(rank, false);
  for (int64_t axis : axes) {
    EI_ASSIGN_OR_RETURN(int64_t a, NormalizeAxis(axis, rank));
    if (added[a])
      return Status::InvalidArgument("unsqueeze axis " + std::to_string(a) + " repeated");
    added[a] = true;
  }
  Dims out;
  size_t next = 0;
  for (int64_t i = 0; i < rank; ++i) out.push_back(added[i] ? 1 : in[next++]);
  return out;
}

}  // namespace edgeinfer

namespace edgeinfer {

namespace {

int64_t Numel(const Dims& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Offset into a tensor of `shape` (right-aligned in `out`, size-1 axes broadcast) of the
// element at row-major position `o` of `out`.
int64_t BroadcastOffset(const Dims& shape, const Dims& out, int64_t o) {
  int64_t offset = 0, stride = 1;
  for (size_t k = 0; k < out.size(); ++k) {
    size_t axis = out.size() - 1 - k;
    int64_t coord = o % out[axis];
    o /= out[axis];
    if (k >= shape.size()) continue;
    int64_t d = shape[shape.size() - 1 - k];
    if (d != 1) offset += coord * stride;
    stride *= d;
  }
  return offset;
}

}  // namespace

Result<std::vector<int64_t>> KnownInts::Literals() const {
  std::vector<int64_t> out;
  for (const SymInt& v : values) {
    if (v.batch)
      return Status::InvalidArgument("value " + v.ToString() +
                                     " depends on the batch size where a constant is needed");
    out.push_back(v.coeff);
  }
  return out;
}

Result<KnownInts> KnownArith(SymOp op, const KnownInts& a, const KnownInts& b) {
  KnownInts out;
  EI_RETURN_IF_ERROR(BroadcastDims(a.shape, b.shape, &out.shape));
  int64_t n = Numel(out.shape);
  for (int64_t o = 0; o < n; ++o) {
    EI_ASSIGN_OR_RETURN(SymInt v, SymArith(op, a.values[BroadcastOffset(a.shape, out.shape, o)],
                                           b.values[BroadcastOffset(b.shape, out.shape, o)]));
    out.values.push_back(v);
  }
  return out;
}

Result<KnownInts> KnownConcat(const std::vector<KnownInts>& parts, int64_t axis) {
  if (parts.empty()) return Status::InvalidArgument("concat of nothing");
  const Dims& first = parts[0].shape;
  EI_ASSIGN_OR_RETURN(int64_t a, NormalizeAxis(axis, static_cast<int64_t>(first.size())));
  KnownInts out;
  out.shape = first;
  out.shape[a] = 0;
  for (const KnownInts& p : parts) {
    Dims expect = first;
    expect[a] = p.shape.size() == first.size() ? p.shape[a] : -1;
    if (p.shape != expect)
      return Status::InvalidArgument("cannot concat " + DimsToString(p.shape) + " with " +
                                     DimsToString(first) + " on axis " + std::to_string(a));
    out.shape[a] += p.shape[a];
  }
  int64_t outer = Numel(Dims(first.begin(), first.begin() + a));
  for (int64_t o = 0; o < outer; ++o) {
    for (const KnownInts& p : parts) {
      int64_t block = p.values.size() / std::max<int64_t>(outer, 1);
      auto begin = p.values.begin() + o * block;
      out.values.insert(out.values.end(), begin, begin + block);
    }
  }
  return out;
}

Result<KnownInts> KnownGather(const KnownInts& data, const KnownInts& indices, int64_t axis) {
  EI_ASSIGN_OR_RETURN(int64_t a, NormalizeAxis(axis, static_cast<int64_t>(data.shape.size())));
  EI_ASSIGN_OR_RETURN(std::vector<int64_t> idx, indices.Literals());
  const Dims& s = data.shape;
  int64_t outer = Numel(Dims(s.begin(), s.begin() + a));
  int64_t inner = Numel(Dims(s.begin() + a + 1, s.end()));
  KnownInts out;
  out.shape.assign(s.begin(), s.begin() + a);
  out.shape.insert(out.shape.end(), indices.shape.begin(), indices.shape.end());
  out.shape.insert(out.shape.end(), s.begin() + a + 1, s.end());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i : idx) {
      if (i < -s[a] || i >= s[a])
        return Status::InvalidArgument("gather index " + std::to_string(i) +
                                       " out of range for " + DimsToString(s));
      if (i < 0) i += s[a];
      auto begin = data.values.begin() + (o * s[a] + i) * inner;
      out.values.insert(out.values.end(), begin, begin + inner);
    }
  }
  return out;
}

Result<KnownInts> KnownSlice(const KnownInts& data, int64_t start, int64_t end, int64_t step) {
  if (data.shape.size() != 1)
    return Status::Unsupported("slice of shape values of rank " +
                               std::to_string(data.shape.size()) + " (only 1-D)");
  if (step == 0) return Status::InvalidArgument("slice step 0");
  int64_t n = data.shape[0];
  auto clamp = [n](int64_t v, int64_t lo, int64_t hi) {
    if (v < 0) v += n;
    return std::clamp(v, lo, hi);
  };
  std::vector<SymInt> v;
  if (step > 0) {
    for (int64_t i = clamp(start, 0, n); i < clamp(end, 0, n); i += step) v.push_back(data.values[i]);
  } else {
    for (int64_t i = clamp(start, 0, n - 1); i > clamp(end, -1, n - 1); i += step)
      v.push_back(data.values[i]);
  }
  return KnownInts::Vector(std::move(v));
}

}  // namespace edgeinfer
