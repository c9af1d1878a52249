// Layout ops: Reshape (aliases its input), Transpose, Concat and Copy.
#include <algorithm>
#include <cstring>
#include <limits>

#include "inference/ops/basic_ops_internal.h"
#include "inference/ops/shape_util.h"

namespace edgeinfer::basic_ops {

namespace {

// Reshape and Copy: the same bytes. The session gives Reshape's output its input's buffer, so
// then there is nothing to do (and memcpy onto itself would be undefined).
class CopyKernel : public Kernel {
 public:
  void Run(const KernelContext& ctx) override {
    const TensorView& in = ctx.in[0];
    if (ctx.out[0].data != in.data && in.bytes() > 0) {
      std::memcpy(ctx.out[0].data, in.data, in.bytes());
    }
  }
};

// Transpose, reduced like the binary broadcast: input axes of size 1 are dropped and output axes
// that are also adjacent, in order, in the input are merged. in_stride[i] is the input element
// stride of output axis i.
struct TransposePlan {
  int rank = 0;
  int64_t dim[kMaxRank] = {};
  int64_t in_stride[kMaxRank] = {};
};

TransposePlan MakeTransposePlan(const Shape& in, const int* perm) {
  int64_t stride[kMaxRank];
  int64_t s = 1;
  for (int i = in.rank - 1; i >= 0; --i) {
    stride[i] = s;
    s *= in.d[i];
  }
  TransposePlan p;
  for (int i = 0; i < in.rank; ++i) {
    const int64_t d = in.d[perm[i]];
    if (d == 1) continue;
    if (p.rank > 0 && p.in_stride[p.rank - 1] == stride[perm[i]] * d) {
      p.dim[p.rank - 1] *= d;
      p.in_stride[p.rank - 1] = stride[perm[i]];
      continue;
    }
    p.dim[p.rank] = d;
    p.in_stride[p.rank] = stride[perm[i]];
    ++p.rank;
  }
  return p;
}

// in [rows, cols] -> out [cols, rows], in tiles so both sides stay in cache.
void Transpose2D(const float* in, float* out, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    const int64_t r1 = std::min(r0 + kTile, rows);
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t c1 = std::min(c0 + kTile, cols);
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) out[c * rows + r] = in[r * cols + c];
      }
    }
  }
}

class TransposeKernel : public Kernel {
 public:
  explicit TransposeKernel(const std::vector<int64_t>& perm) {
    for (size_t i = 0; i < perm.size(); ++i) perm_[i] = static_cast<int>(perm[i]);
  }

  void Run(const KernelContext& ctx) override {
    const int64_t total = ctx.out[0].shape.NumElements();
    if (total == 0) return;
    const TransposePlan p = MakeTransposePlan(ctx.in[0].shape, perm_);
    const float* in = ctx.in[0].f32();
    float* out = ctx.out[0].f32();
    if (p.rank <= 1) {  // the order of the elements does not change
      std::memcpy(out, in, total * sizeof(float));
      return;
    }
    const int last = p.rank - 1;
    // A batch of 2-D transposes: the two innermost output axes swap the input's innermost two.
    const bool swap2d = p.in_stride[last - 1] == 1 && p.in_stride[last] == p.dim[last - 1];
    const int outer_rank = swap2d ? p.rank - 2 : p.rank - 1;
    const int64_t block = swap2d ? p.dim[last] * p.dim[last - 1] : p.dim[last];
    int64_t idx[kMaxRank] = {};
    int64_t in_off = 0;
    for (int64_t o = 0; o < total; o += block) {
      if (swap2d) {
        Transpose2D(in + in_off, out + o, p.dim[last], p.dim[last - 1]);
      } else if (p.in_stride[last] == 1) {
        std::memcpy(out + o, in + in_off, block * sizeof(float));
      } else {
        const float* src = in + in_off;
        const int64_t s = p.in_stride[last];
        for (int64_t j = 0; j < block; ++j) out[o + j] = src[j * s];
      }
      for (int k = outer_rank - 1; k >= 0; --k) {
        in_off += p.in_stride[k];
        if (++idx[k] < p.dim[k]) break;
        in_off -= p.in_stride[k] * p.dim[k];
        idx[k] = 0;
      }
    }
  }

 private:
  int perm_[kMaxRank] = {};
};

class ConcatKernel : public Kernel {
 public:
  explicit ConcatKernel(int axis) : axis_(axis) {}

  void Run(const KernelContext& ctx) override {
    const Shape& out_shape = ctx.out[0].shape;
    const int64_t outer = out_shape.Product(0, axis_);
    const int64_t inner = out_shape.Product(axis_ + 1, out_shape.rank);
    float* dst = ctx.out[0].f32();
    for (int64_t o = 0; o < outer; ++o) {
      for (int k = 0; k < ctx.num_in; ++k) {
        const int64_t n = ctx.in[k].shape.d[axis_] * inner;
        if (n == 0) continue;
        std::memcpy(dst, ctx.in[k].f32() + o * n, n * sizeof(float));
        dst += n;
      }
    }
  }

 private:
  int axis_;
};

// "[0, 2, 1]": plain integers (DimsToString would print negative entries as batch multiples).
std::string IntsToString(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

Status CheckPermutation(const Node& node, const std::vector<int64_t>& perm, size_t rank) {
  if (perm.size() != rank) {
    return Invalid(node, "perm has " + std::to_string(perm.size()) + " entries, input rank is " +
                             std::to_string(rank));
  }
  bool seen[kMaxRank] = {};
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[p]) {
      return Invalid(node, "perm " + IntsToString(perm) + " is not a permutation of 0.." +
                               std::to_string(rank - 1));
    }
    seen[p] = true;
  }
  return Status::Ok();
}

// The symbolic sum of two dims along the concat axis. Literal + literal and batch multiple +
// batch multiple stay symbolic; a literal plus a batch multiple has no symbolic form.
Status AddDims(const Node& node, int64_t a, int64_t b, int64_t* sum) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if ((a < 0 && b > 0) || (a > 0 && b < 0)) {
    return Invalid(node, "cannot concatenate a batch-sized axis with a fixed-size one");
  }
  // Both dims are > INT64_MIN (checked by CountElements), so the negations are safe.
  if ((a >= 0 && b > kMax - a) || (a < 0 && -b > kMax + a)) {
    return Invalid(node, "concatenated axis size overflows");
  }
  *sum = a + b;
  return Status::Ok();
}

Status ConcatDims(const Node& node, const std::vector<const TensorDesc*>& in, int64_t axis,
                  Dims* out) {
  Dims dims = in[0]->dims;
  for (size_t k = 1; k < in.size(); ++k) {
    const Dims& d = in[k]->dims;
    bool match = d.size() == dims.size();
    for (size_t i = 0; match && i < d.size(); ++i) {
      match = static_cast<int64_t>(i) == axis || d[i] == dims[i];
    }
    if (!match) {
      return Invalid(node, "input " + std::to_string(k) + " " + DimsToString(d) +
                               " does not match " + DimsToString(in[0]->dims) + " outside axis " +
                               std::to_string(axis));
    }
    EI_RETURN_IF_ERROR(AddDims(node, dims[axis], d[axis], &dims[axis]));
  }
  SymbolicCount count;
  Status s = CountElements(dims, &count);
  if (!s.ok()) return Invalid(node, s.message());
  *out = std::move(dims);
  return Status::Ok();
}

}  // namespace

Status InferReshape(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(CheckFloatInputs(node, graph, *outs, 1, 1, &in));
  Dims shape;
  EI_RETURN_IF_ERROR(GetAttr<Dims>(node, "shape", {}, &shape, /*required=*/true));
  if (shape.size() > static_cast<size_t>(kMaxRank)) {
    return Invalid(
        node, "shape has rank " + std::to_string(shape.size()) + " > " + std::to_string(kMaxRank));
  }
  SymbolicCount in_count, out_count;
  Status s = CountElements(shape, &out_count);
  if (!s.ok()) return Invalid(node, "shape: " + s.message());
  // Symbolic -k is k x batch; 0 would be ONNX's unresolved "copy this dim".
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {
    return Invalid(node, "shape " + DimsToString(shape) + " has a 0 entry");
  }
  EI_RETURN_IF_ERROR(CountElements(in[0]->dims, &in_count));
  if (!(in_count == out_count)) {
    return Invalid(node, "cannot reshape " + DimsToString(in[0]->dims) + " to " +
                             DimsToString(shape) + ": element counts differ");
  }
  SetOutput(outs, std::move(shape));
  return Status::Ok();
}

Status InferTranspose(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(CheckFloatInputs(node, graph, *outs, 1, 1, &in));
  std::vector<int64_t> perm;
  EI_RETURN_IF_ERROR(GetAttr<std::vector<int64_t>>(node, "perm", {}, &perm, /*required=*/true));
  const Dims& x = in[0]->dims;
  EI_RETURN_IF_ERROR(CheckPermutation(node, perm, x.size()));
  Dims dims(x.size());
  for (size_t i = 0; i < x.size(); ++i) dims[i] = x[perm[i]];
  SetOutput(outs, std::move(dims));
  return Status::Ok();
}

Status InferConcat(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(CheckFloatInputs(node, graph, *outs, 1, SIZE_MAX, &in));
  int64_t axis = 0;
  EI_RETURN_IF_ERROR(GetAttr<int64_t>(node, "axis", 0, &axis, /*required=*/true));
  const size_t rank = in[0]->dims.size();
  if (axis < 0 || axis >= static_cast<int64_t>(rank)) {
    return Invalid(
        node, "axis " + std::to_string(axis) + " out of range [0, " + std::to_string(rank) + ")");
  }
  Dims dims;
  EI_RETURN_IF_ERROR(ConcatDims(node, in, axis, &dims));
  SetOutput(outs, std::move(dims));
  return Status::Ok();
}

Status InferCopy(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(CheckFloatInputs(node, graph, *outs, 1, 1, &in));
  SetOutput(outs, in[0]->dims);
  return Status::Ok();
}

KernelResult CreateReshape(const Node&, const Graph&) {
  return std::unique_ptr<Kernel>(new CopyKernel());
}
KernelResult CreateCopy(const Node&, const Graph&) {
  return std::unique_ptr<Kernel>(new CopyKernel());
}

KernelResult CreateTranspose(const Node& node, const Graph&) {
  const std::vector<int64_t> perm = node.attrs.GetInts("perm");
  if (perm.size() > static_cast<size_t>(kMaxRank)) return Invalid(node, "perm is too long");
  return std::unique_ptr<Kernel>(new TransposeKernel(perm));
}

KernelResult CreateConcat(const Node& node, const Graph&) {
  return std::unique_ptr<Kernel>(new ConcatKernel(static_cast<int>(node.attrs.GetInt("axis"))));
}

}  // namespace edgeinfer::basic_ops
