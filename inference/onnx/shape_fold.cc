#include "inference/onnx/shape_fold.h"

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
  EI_RETURN_IF_ERROR(CountElements(Dims(dims.begin() + from, dims.begin() + to), &c)
                         .WithContext(DimsToString(dims)));
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
      return Status::InvalidArgument("cannot infer the -1 of reshape " + DimsToString(in) + " to " +
                                     DimsToString(out) + " (-1 at " + std::to_string(infer_at) +
                                     ")");
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
