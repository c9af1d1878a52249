// Element-wise ops: Add, Sub, Mul, Div, Pow, Max, Min (numpy broadcasting, fused activation), PRelu
// (slope broadcast onto X) and the activations Relu, LeakyRelu, Sigmoid, Tanh, Clip.
#include <algorithm>
#include <cmath>
#include <limits>

#include "inference/ops/activation.h"
#include "inference/ops/basic_ops_internal.h"
#include "inference/ops/shape_util.h"

namespace edgeinfer::basic_ops {

namespace {

// The broadcast of A and B onto the output, reduced: output axes of size 1 are dropped and
// adjacent axes where each operand is either full or broadcast alike are merged. The common cases
// become short loops over contiguous rows: same shape and scalar operand reduce to rank 1, a
// trailing vector ([N,C] + [C]) to rank 2, a per-channel operand ([N,C,HW] + [C,1]) to rank 3.
struct BroadcastPlan {
  int rank = 0;
  int64_t dim[kMaxRank] = {};
  bool a_bcast[kMaxRank] = {};  // A has size 1 on this axis
  bool b_bcast[kMaxRank] = {};
  int64_t a_stride[kMaxRank] = {};  // element strides, 0 on broadcast axes
  int64_t b_stride[kMaxRank] = {};
};

void ComputeStrides(BroadcastPlan* p) {
  int64_t sa = 1, sb = 1;
  for (int k = p->rank - 1; k >= 0; --k) {
    p->a_stride[k] = p->a_bcast[k] ? 0 : sa;
    p->b_stride[k] = p->b_bcast[k] ? 0 : sb;
    if (!p->a_bcast[k]) sa *= p->dim[k];
    if (!p->b_bcast[k]) sb *= p->dim[k];
  }
}

BroadcastPlan MakePlan(const Shape& a, const Shape& b, const Shape& out) {
  BroadcastPlan p;
  const int off_a = out.rank - a.rank, off_b = out.rank - b.rank;
  for (int i = 0; i < out.rank; ++i) {
    if (out.d[i] == 1) continue;
    const bool ab = i < off_a || a.d[i - off_a] == 1;
    const bool bb = i < off_b || b.d[i - off_b] == 1;
    if (p.rank > 0 && p.a_bcast[p.rank - 1] == ab && p.b_bcast[p.rank - 1] == bb) {
      p.dim[p.rank - 1] *= out.d[i];
      continue;
    }
    p.dim[p.rank] = out.d[i];
    p.a_bcast[p.rank] = ab;
    p.b_bcast[p.rank] = bb;
    ++p.rank;
  }
  if (p.rank == 0) p = {.rank = 1, .dim = {1}};  // a single element
  ComputeStrides(&p);
  return p;
}

struct AddOp {
  static float Apply(float a, float b) { return a + b; }
};
struct SubOp {
  static float Apply(float a, float b) { return a - b; }
};
struct MulOp {
  static float Apply(float a, float b) { return a * b; }
};
struct DivOp {
  static float Apply(float a, float b) { return a / b; }
};
struct PowOp {
  static float Apply(float a, float b) { return std::pow(a, b); }
};
// Max and Min propagate NaN from either side, as numpy's maximum/minimum (ONNX's reference).
struct MaxOp {
  static float Apply(float a, float b) { return (a != a || a > b) ? a : b; }
};
struct MinOp {
  static float Apply(float a, float b) { return (a != a || a < b) ? a : b; }
};
struct PReluOp {
  static float Apply(float x, float slope) { return x < 0.f ? x * slope : x; }
};

// One contiguous output row; a broadcast operand is a scalar for the whole row. Three separate
// loops so that each vectorizes.
template <class Op>
void Row(const float* a, bool a_scalar, const float* b, bool b_scalar, float* o, int64_t n) {
  if (b_scalar) {
    const float s = *b;
    for (int64_t i = 0; i < n; ++i) o[i] = Op::Apply(a[i], s);
  } else if (a_scalar) {
    const float s = *a;
    for (int64_t i = 0; i < n; ++i) o[i] = Op::Apply(s, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = Op::Apply(a[i], b[i]);
  }
}

// Pow by a single exponent: x^2 (variance, L2 norms written out) and x^0.5 as one
// multiplication or square root instead of a pow call. Same results as std::pow: the + 0.f
// turns sqrt(-0) = -0 into pow's +0, and pow(-inf, 0.5) is +inf where sqrt gives NaN.
template <>
void Row<PowOp>(const float* a, bool a_scalar, const float* b, bool b_scalar, float* o, int64_t n) {
  if (!b_scalar || a_scalar) {
    for (int64_t i = 0; i < n; ++i) o[i] = std::pow(a_scalar ? *a : a[i], b_scalar ? *b : b[i]);
    return;
  }
  const float e = *b;
  if (e == 2.f) {
    for (int64_t i = 0; i < n; ++i) o[i] = a[i] * a[i];
  } else if (e == 0.5f) {
    constexpr float kInf = std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) o[i] = a[i] == -kInf ? kInf : std::sqrt(a[i]) + 0.f;
  } else if (e == 1.f) {
    std::copy(a, a + n, o);
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = std::pow(a[i], e);
  }
}

template <class Op>
class BinaryKernel : public Kernel {
 public:
  explicit BinaryKernel(Activation act) : act_(act) {}

  void Run(const KernelContext& ctx) override {
    const Shape& out_shape = ctx.out[0].shape;
    if (out_shape.NumElements() == 0) return;
    const BroadcastPlan p = MakePlan(ctx.in[0].shape, ctx.in[1].shape, out_shape);
    const float* a = ctx.in[0].f32();
    const float* b = ctx.in[1].f32();
    float* o = ctx.out[0].f32();
    // Odometer over the outer axes; the innermost axis is one contiguous row.
    const int last = p.rank - 1;
    const int64_t inner = p.dim[last];
    const int64_t rows = out_shape.NumElements() / inner;
    int64_t idx[kMaxRank] = {};
    int64_t a_off = 0, b_off = 0;
    for (int64_t r = 0; r < rows; ++r) {
      RowWithActivation(a + a_off, p.a_bcast[last], b + b_off, p.b_bcast[last], o + r * inner,
                        inner);
      for (int k = last - 1; k >= 0; --k) {
        a_off += p.a_stride[k];
        b_off += p.b_stride[k];
        if (++idx[k] < p.dim[k]) break;
        a_off -= p.a_stride[k] * p.dim[k];
        b_off -= p.b_stride[k] * p.dim[k];
        idx[k] = 0;
      }
    }
  }

 private:
  // Applies the activation in cache-sized chunks, while the values just written are still hot.
  void RowWithActivation(const float* a, bool a_scalar, const float* b, bool b_scalar, float* o,
                         int64_t n) const {
    constexpr int64_t kChunk = 4096;
    for (int64_t i = 0; i < n; i += kChunk) {
      const int64_t len = std::min(kChunk, n - i);
      Row<Op>(a_scalar ? a : a + i, a_scalar, b_scalar ? b : b + i, b_scalar, o + i, len);
      act_.Apply(o + i, static_cast<size_t>(len));
    }
  }

  Activation act_;
};

template <class Op>
KernelResult CreateBinary(const Node& node) {
  Result<Activation> act = Activation::FromAttrs(node.attrs);
  if (!act.ok()) return act.status().WithContext(NodeContext(node));
  return std::unique_ptr<Kernel>(new BinaryKernel<Op>(*act));
}

// Element-wise activations, written to be NaN-propagating like the ONNX reference (numpy):
// Relu(NaN) = NaN, Clip(NaN) = NaN.
struct ReluFn {
  float operator()(float x) const { return x < 0.f ? 0.f : x; }
};
struct LeakyReluFn {
  float alpha;
  float operator()(float x) const { return x < 0.f ? x * alpha : x; }
};
struct SigmoidFn {
  // exp(-x) overflows to inf for x < -88, giving the correct limit 0.
  float operator()(float x) const { return 1.f / (1.f + std::exp(-x)); }
};
struct TanhFn {
  float operator()(float x) const { return std::tanh(x); }
};
struct ClipFn {
  float lo, hi;
  // std::max/min return their first argument when comparing with NaN, so NaN passes through.
  float operator()(float x) const { return std::min(std::max(x, lo), hi); }
};

template <class Fn>
class UnaryKernel : public Kernel {
 public:
  explicit UnaryKernel(Fn fn) : fn_(fn) {}
  void Run(const KernelContext& ctx) override {
    const float* x = ctx.in[0].f32();
    float* y = ctx.out[0].f32();
    const int64_t n = ctx.out[0].shape.NumElements();
    for (int64_t i = 0; i < n; ++i) y[i] = fn_(x[i]);
  }

 private:
  Fn fn_;
};

template <class Fn>
KernelResult MakeUnary(Fn fn) {
  return std::unique_ptr<Kernel>(new UnaryKernel<Fn>(fn));
}

constexpr float kInf = std::numeric_limits<float>::infinity();

}  // namespace

Status InferBinary(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(CheckFloatInputs(node, graph, *outs, 2, 2, &in));
  EI_RETURN_IF_ERROR(CheckActivationAttrs(node));
  Dims dims;
  Status s = BroadcastDims(in[0]->dims, in[1]->dims, &dims);
  if (!s.ok()) return Invalid(node, s.message());
  SetOutput(outs, std::move(dims));
  return Status::Ok();
}

KernelResult CreateAdd(const Node& node, const Graph&) { return CreateBinary<AddOp>(node); }
KernelResult CreateSub(const Node& node, const Graph&) { return CreateBinary<SubOp>(node); }
KernelResult CreateMul(const Node& node, const Graph&) { return CreateBinary<MulOp>(node); }
KernelResult CreateDiv(const Node& node, const Graph&) { return CreateBinary<DivOp>(node); }
KernelResult CreatePow(const Node& node, const Graph&) { return CreateBinary<PowOp>(node); }
KernelResult CreatePRelu(const Node& node, const Graph&) { return CreateBinary<PReluOp>(node); }
KernelResult CreateMax(const Node& node, const Graph&) { return CreateBinary<MaxOp>(node); }
KernelResult CreateMin(const Node& node, const Graph&) { return CreateBinary<MinOp>(node); }

// PRelu's slope broadcasts onto X (unidirectionally): the output has X's dims.
Status InferPRelu(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  EI_RETURN_IF_ERROR(InferBinary(node, graph, outs));
  const TensorDesc& x = graph.tensors[node.inputs[0]];
  if ((*outs)[0].dims != x.dims) {
    return Invalid(node, "slope " + DimsToString(graph.tensors[node.inputs[1]].dims) +
                             " does not broadcast onto X " + DimsToString(x.dims));
  }
  return Status::Ok();
}

Status InferUnary(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(CheckFloatInputs(node, graph, *outs, 1, 1, &in));
  SetOutput(outs, in[0]->dims);
  return Status::Ok();
}

Status InferLeakyRelu(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  float alpha;
  EI_RETURN_IF_ERROR(GetAttr<float>(node, "alpha", 0.01f, &alpha));
  return InferUnary(node, graph, outs);
}

Status InferClip(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  float bound;
  EI_RETURN_IF_ERROR(GetAttr<float>(node, "min", -kInf, &bound));
  EI_RETURN_IF_ERROR(GetAttr<float>(node, "max", kInf, &bound));
  return InferUnary(node, graph, outs);
}

KernelResult CreateRelu(const Node&, const Graph&) { return MakeUnary(ReluFn{}); }
KernelResult CreateLeakyRelu(const Node& node, const Graph&) {
  return MakeUnary(LeakyReluFn{node.attrs.GetFloat("alpha", 0.01f)});
}
KernelResult CreateSigmoid(const Node&, const Graph&) { return MakeUnary(SigmoidFn{}); }
KernelResult CreateTanh(const Node&, const Graph&) { return MakeUnary(TanhFn{}); }
KernelResult CreateClip(const Node& node, const Graph&) {
  return MakeUnary(ClipFn{node.attrs.GetFloat("min", -kInf), node.attrs.GetFloat("max", kInf)});
}

}  // namespace edgeinfer::basic_ops
