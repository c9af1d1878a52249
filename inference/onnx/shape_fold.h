// Symbolic shape arithmetic for the importer: the int64 "shape values" that exporters compute
// from Shape (e.g. torch's x.reshape(x.size(0), -1)) and the dims of Reshape, Flatten, Squeeze
// and Unsqueeze, with the batch kept symbolic.
//
// No ONNX types here, so the arithmetic is testable on its own. Errors are InvalidArgument
// messages without a node prefix; callers add it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "inference/tensor.h"

namespace edgeinfer {

// One int64 value known at import time: `coeff`, or `coeff` x batch when `batch` is set.
// A struct rather than the Dims encoding (negative = k x batch) because shape values carry
// literal negatives too: Reshape's -1, negative Gather indices and Slice bounds.
struct SymInt {
  int64_t coeff = 0;
  bool batch = false;

  static SymInt Lit(int64_t v) { return {v, false}; }
  static SymInt Batch(int64_t k) { return {k, true}; }
  static SymInt FromDim(int64_t d) { return d < 0 ? Batch(-d) : Lit(d); }
  bool is_literal() const { return !batch; }
  bool operator==(const SymInt& o) const { return coeff == o.coeff && batch == o.batch; }
  std::string ToString() const;  // "3", "B", "16B"
};

// A dim (tensor.h encoding) from a SymInt; fails for negative literals and k <= 0 batches.
Result<int64_t> SymToDim(const SymInt& v);

// Integer arithmetic that stays representable: B + B = 2B, 4B / 2 = 2B, 784B / B = 784.
// Anything else (B x B, B + 1, 3B / 2) is an error naming the operands. Div truncates, as
// ONNX integer Div does.
enum class SymOp { kAdd, kSub, kMul, kDiv };
Result<SymInt> SymArith(SymOp op, const SymInt& a, const SymInt& b);

// Product of dims [from, to): literal x batch^p, refused when p > 1 (not a valid dim).
Result<int64_t> DimProduct(const Dims& dims, size_t from, size_t to);

// Resolves an ONNX Reshape target against the input dims: 0 copies the input dim (unless
// allowzero), -1 is inferred from the element counts. The result has no 0 placeholders and no
// -1 "infer" left, only literal sizes and batch multiples.
Result<Dims> ResolveReshape(const Dims& in, const std::vector<SymInt>& target, bool allowzero);

// [prod(d<axis), prod(d>=axis)], axis in [-rank, rank].
Result<Dims> FlattenDims(const Dims& in, int64_t axis);

// Squeeze: the named axes must be literal 1; with no axes every literal 1 goes (a batch dim
// stays, it is not known to be 1).
Result<Dims> SqueezeDims(const Dims& in, const std::vector<int64_t>& axes);
// Unsqueeze: axes index the output (rank + axes.size()), negative counted from its end.
Result<Dims> UnsqueezeDims(const Dims& in, const std::vector<int64_t>& axes);

// An int tensor whose values are known at import: shape values and integer constants. They
// fold away entirely; none of them becomes a runtime tensor.
struct KnownInts {
  Dims shape;                  // literal dims of the int tensor itself (empty = scalar)
  std::vector<SymInt> values;  // row-major, NumElements(shape) of them

  static KnownInts Vector(std::vector<SymInt> v) {
    KnownInts k;
    k.shape = {static_cast<int64_t>(v.size())};
    k.values = std::move(v);
    return k;
  }
  // The values as plain integers; fails naming the first symbolic one.
  Result<std::vector<int64_t>> Literals() const;
};

// Element-wise SymArith with numpy broadcasting.
Result<KnownInts> KnownArith(SymOp op, const KnownInts& a, const KnownInts& b);
// ONNX Concat along `axis` (may be negative).
Result<KnownInts> KnownConcat(const std::vector<KnownInts>& parts, int64_t axis);
// ONNX Gather along `axis` (may be negative) with literal, possibly negative, indices.
Result<KnownInts> KnownGather(const KnownInts& data, const KnownInts& indices, int64_t axis);
// ONNX Slice of a 1-D tensor (the only axis is 0 / -1); bounds are clamped as ONNX does.
Result<KnownInts> KnownSlice(const KnownInts& data, int64_t start, int64_t end, int64_t step);

// Normalizes axis in [-rank, rank) to [0, rank); InvalidArgument otherwise.
Result<int64_t> NormalizeAxis(int64_t axis, int64_t rank);

}  // namespace edgeinfer
