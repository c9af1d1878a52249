// Reductions over a set of axes: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd,
// ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp.
//
// Each is a per-element map (none, |x|, x^2, exp x), a combine (sum, product, max, min) and a
// final map of the result (x/n, sqrt, log). The kernel drops size-1 axes and merges adjacent
// axes that are all reduced or all kept, so the shape becomes a short list of alternating
// groups; the input is then read once, in order, in contiguous runs of the last group (a run
// that is reduced goes through 8 lanes, so that it vectorizes).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "inference/kernels/vectorize.h"
#include "inference/ops/math_ops_internal.h"
#include "inference/ops/shape_util.h"

namespace edgeinfer::math_ops {

using basic_ops::GetAttr;
using basic_ops::Invalid;

namespace {

enum class Pre { kNone, kAbs, kSquare, kExp };
enum class Combine { kSum, kProd, kMax, kMin };
enum class Post { kNone, kMean, kSqrt, kLog };

struct ReduceKind {
  const char* op;
  Pre pre;
  Combine combine;
  Post post;
};

constexpr ReduceKind kKinds[] = {
    {"ReduceMean", Pre::kNone, Combine::kSum, Post::kMean},
    {"ReduceSum", Pre::kNone, Combine::kSum, Post::kNone},
    {"ReduceMax", Pre::kNone, Combine::kMax, Post::kNone},
    {"ReduceMin", Pre::kNone, Combine::kMin, Post::kNone},
    {"ReduceProd", Pre::kNone, Combine::kProd, Post::kNone},
    {"ReduceL1", Pre::kAbs, Combine::kSum, Post::kNone},
    {"ReduceL2", Pre::kSquare, Combine::kSum, Post::kSqrt},
    {"ReduceSumSquare", Pre::kSquare, Combine::kSum, Post::kNone},
    {"ReduceLogSum", Pre::kNone, Combine::kSum, Post::kLog},
    {"ReduceLogSumExp", Pre::kExp, Combine::kSum, Post::kLog},
};

const ReduceKind* FindKind(const std::string& op) {
  for (const ReduceKind& k : kKinds)
    if (op == k.op) return &k;
  return nullptr;
}

// Per-element maps and combines as small function objects so each inner loop is a template
// instance the compiler can vectorize (Sum, Max, Min with plain and |x|, x^2 maps).
struct Identity {
  float operator()(float x) const { return x; }
};
struct Abs {
  float operator()(float x) const { return std::fabs(x); }
};
struct Square {
  float operator()(float x) const { return x * x; }
};
struct Exp {
  float operator()(float x) const { return std::exp(x); }
};
struct Sum {
  static constexpr float kInit = 0.f;
  float operator()(float a, float b) const { return a + b; }
};
struct Prod {
  static constexpr float kInit = 1.f;
  float operator()(float a, float b) const { return a * b; }
};
// NaN-propagating, as numpy's max/min (the ONNX reference).
struct Max {
  static constexpr float kInit = -std::numeric_limits<float>::infinity();
  float operator()(float a, float b) const {
    return __builtin_isgreater(b, a) | __builtin_isunordered(b, b) ? b : a;
  }
};
struct Min {
  static constexpr float kInit = std::numeric_limits<float>::infinity();
  float operator()(float a, float b) const {
    return __builtin_isless(b, a) | __builtin_isunordered(b, b) ? b : a;
  }
};

// The merged shape: groups[i] elements along group i, reduced or kept.
struct Plan {
  int rank = 0;
  int64_t dim[kMaxRank] = {};
  bool reduced[kMaxRank] = {};
  int64_t out_stride[kMaxRank] = {};  // 0 on reduced groups
  int64_t count = 1;                  // elements combined into each output
};

Plan MakePlan(const Shape& in, uint32_t axis_mask) {
  Plan p;
  for (int i = 0; i < in.rank; ++i) {
    const bool r = (axis_mask >> i) & 1u;
    if (r) p.count *= in.d[i];
    if (in.d[i] == 1) continue;
    if (p.rank > 0 && p.reduced[p.rank - 1] == r) {
      p.dim[p.rank - 1] *= in.d[i];
      continue;
    }
    p.dim[p.rank] = in.d[i];
    p.reduced[p.rank] = r;
    ++p.rank;
  }
  if (p.rank == 0) {  // a single element
    p.rank = 1;
    p.dim[0] = 1;
    p.reduced[0] = true;
  }
  int64_t s = 1;
  for (int k = p.rank - 1; k >= 0; --k) {
    p.out_stride[k] = p.reduced[k] ? 0 : s;
    if (!p.reduced[k]) s *= p.dim[k];
  }
  return p;
}

// Combines a contiguous run into one value through 8 independent lanes, so that the loop
// vectorizes without -ffast-math (the order of a float sum is part of its value; this one is
// lane-wise, then the lanes in order, then the tail).
template <class Map, class Comb>
[[gnu::always_inline]] inline float CombineRun(const float* x, int64_t n, Map map, Comb comb) {
  constexpr int kLanes = 8;
  float lane[kLanes];
  for (float& l : lane) l = Comb::kInit;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] = comb(lane[j], map(x[i + j]));
  float acc = Comb::kInit;
  for (float l : lane) acc = comb(acc, l);
  for (; i < n; ++i) acc = comb(acc, map(x[i]));
  return acc;
}

template <class Map, class Comb>
[[gnu::always_inline]] inline void Accumulate(const Plan& p, const float* x, float* y, Map map,
                                              Comb comb) {
  const int last = p.rank - 1;
  const int64_t inner = p.dim[last];
  int64_t outer = 1;
  for (int k = 0; k < last; ++k) outer *= p.dim[k];
  int64_t idx[kMaxRank] = {};
  int64_t y_off = 0;
  for (int64_t r = 0; r < outer; ++r, x += inner) {
    if (p.reduced[last]) {
      y[y_off] = comb(y[y_off], CombineRun(x, inner, map, comb));
    } else {
      float* row = y + y_off;
      for (int64_t i = 0; i < inner; ++i) row[i] = comb(row[i], map(x[i]));
    }
    for (int k = last - 1; k >= 0; --k) {  // odometer over the outer groups
      y_off += p.out_stride[k];
      if (++idx[k] < p.dim[k]) break;
      y_off -= p.out_stride[k] * p.dim[k];
      idx[k] = 0;
    }
  }
}

template <class Comb>
[[gnu::always_inline]] inline void RunCombine(Pre pre, const Plan& p, const float* x, float* y,
                                              int64_t n_out) {
  for (int64_t i = 0; i < n_out; ++i) y[i] = Comb::kInit;
  Comb c;
  switch (pre) {
    case Pre::kNone:
      return Accumulate(p, x, y, Identity{}, c);
    case Pre::kAbs:
      return Accumulate(p, x, y, Abs{}, c);
    case Pre::kSquare:
      return Accumulate(p, x, y, Square{}, c);
    case Pre::kExp:
      return Accumulate(p, x, y, Exp{}, c);
  }
}

// The whole reduction, compiled for AVX2 as well.
EI_KERNEL_CLONES void Reduce(const ReduceKind& kind, const Plan& p, const float* x, float* y,
                             int64_t n_out) {
  switch (kind.combine) {
    case Combine::kSum:
      return RunCombine<Sum>(kind.pre, p, x, y, n_out);
    case Combine::kProd:
      return RunCombine<Prod>(kind.pre, p, x, y, n_out);
    case Combine::kMax:
      return RunCombine<Max>(kind.pre, p, x, y, n_out);
    case Combine::kMin:
      return RunCombine<Min>(kind.pre, p, x, y, n_out);
  }
}

class ReduceKernel : public Kernel {
 public:
  ReduceKernel(ReduceKind kind, uint32_t axis_mask) : kind_(kind), axis_mask_(axis_mask) {}

  void Run(const KernelContext& ctx) override {
    const int64_t n_out = ctx.out[0].shape.NumElements();
    if (n_out == 0) return;
    const Plan p = MakePlan(ctx.in[0].shape, axis_mask_);
    const float* x = ctx.in[0].f32();
    float* y = ctx.out[0].f32();
    Reduce(kind_, p, x, y, n_out);
    Finish(y, n_out, p.count);
  }

 private:
  void Finish(float* y, int64_t n, int64_t count) const {
    switch (kind_.post) {
      case Post::kNone:
        return;
      case Post::kMean: {
        // An empty reduction's mean is NaN, as numpy's.
        const float inv =
            count ? 1.f / static_cast<float>(count) : std::numeric_limits<float>::quiet_NaN();
        for (int64_t i = 0; i < n; ++i) y[i] *= inv;
        return;
      }
      case Post::kSqrt:
        for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(y[i]);
        return;
      case Post::kLog:
        for (int64_t i = 0; i < n; ++i) y[i] = std::log(y[i]);
        return;
    }
  }

  ReduceKind kind_;
  uint32_t axis_mask_;
};

// Reads and checks `axes` (non-negative, increasing, in range, not empty unless rank 0).
Status ReadAxes(const Node& node, size_t rank, const Dims& dims, uint32_t* mask) {
  std::vector<int64_t> axes;
  EI_RETURN_IF_ERROR(GetAttr<std::vector<int64_t>>(node, "axes", {}, &axes, /*required=*/true));
  if (axes.empty() && rank > 0) return Invalid(node, "attribute 'axes' is empty");
  *mask = 0;
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t a = axes[i];
    if (a < 0 || a >= static_cast<int64_t>(rank) || (i > 0 && a <= axes[i - 1])) {
      return Invalid(node, "attribute 'axes' must be increasing axes in [0, " +
                               std::to_string(rank) + "), got " + DimsToString(axes));
    }
    // The batch is one sample per row: a reduction across it would mix samples.
    if (dims[a] < 0) {
      return Status::Unsupported(NodeContext(node) + ": reducing over axis " + std::to_string(a) +
                                 " of " + DimsToString(dims) +
                                 " mixes the samples of a batch; only non-batch axes can be "
                                 "reduced");
    }
    *mask |= 1u << a;
  }
  return Status::Ok();
}

}  // namespace

Status InferReduce(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(basic_ops::CheckFloatInputs(node, graph, *outs, 1, 1, &in));
  if (!FindKind(node.op)) return Invalid(node, "not a reduction");
  const Dims& d = in[0]->dims;
  uint32_t mask = 0;
  EI_RETURN_IF_ERROR(ReadAxes(node, d.size(), d, &mask));
  int64_t keepdims = 1;
  EI_RETURN_IF_ERROR(GetAttr<int64_t>(node, "keepdims", 1, &keepdims));
  if (keepdims != 0 && keepdims != 1) return Invalid(node, "attribute 'keepdims' must be 0 or 1");
  Dims out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (!((mask >> i) & 1u)) {
      out.push_back(d[i]);
    } else if (keepdims) {
      out.push_back(1);
    }
  }
  basic_ops::SetOutput(outs, std::move(out));
  return Status::Ok();
}

KernelResult CreateReduce(const Node& node, const Graph& graph) {
  const ReduceKind* kind = FindKind(node.op);
  const TensorDesc* x = InputDesc(node, graph, 0);
  if (!kind || !x) return Invalid(node, "not a reduction");
  uint32_t mask = 0;
  EI_RETURN_IF_ERROR(ReadAxes(node, x->dims.size(), x->dims, &mask));
  return std::unique_ptr<Kernel>(new ReduceKernel(*kind, mask));
}

}  // namespace edgeinfer::math_ops
