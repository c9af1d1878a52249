// KnownInts: ONNX integer ops (Concat, Gather, Slice, arithmetic) folded at import.
#include <algorithm>

#include "inference/onnx/shape_fold.h"
#include "inference/ops/shape_util.h"

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
        return Status::InvalidArgument("gather index " + std::to_string(i) + " out of range for " +
                                       DimsToString(s));
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
    for (int64_t i = clamp(start, 0, n); i < clamp(end, 0, n); i += step)
      v.push_back(data.values[i]);
  } else {
    for (int64_t i = clamp(start, 0, n - 1); i > clamp(end, -1, n - 1); i += step)
      v.push_back(data.values[i]);
  }
  return KnownInts::Vector(std::move(v));
}

}  // namespace edgeinfer
