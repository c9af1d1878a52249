// Element-wise functions of one float: math (Erf, Exp, Log, Sqrt, Abs, Neg, Reciprocal, Floor,
// Ceil, Round, Sign, Sin, Cos) and activations (HardSigmoid, HardSwish, Elu, Selu, Celu,
// Softplus, Softsign, ThresholdedRelu, Gelu). One op per function, all sharing one kernel: a
// loop per function, compiled for AVX2 as well (EI_KERNEL_CLONES), so the plain arithmetic
// ones and erf (fast_erf.h: Erf, Gelu) vectorize; those that call libm (exp, log, ...) run at
// its speed.
//
// Attributes are ONNX's, with ONNX's defaults; the importer writes them explicitly.
#include <algorithm>
#include <cmath>

#include "inference/kernels/vectorize.h"
#include "inference/ops/fast_erf.h"
#include "inference/ops/math_ops_internal.h"

namespace edgeinfer {

namespace {
// Clamps to [0, 1]; NaN passes through (std::max/min return their first argument on NaN).
inline float Unit(float v) { return std::min(std::max(v, 0.f), 1.f); }
}  // namespace

// The exact (erf) form, as torch's nn.GELU() exports it.
EI_KERNEL_CLONES
void GeluRow(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.f + FastErf(x[i] * 0.70710678118654752f));
}

// x/6 + 1/2 computed as (x + 3)/6: exact near -3, where the other form cancels.
EI_KERNEL_CLONES
void HardSwishRow(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * Unit((x[i] + 3.f) * (1.f / 6.f));
}

}  // namespace edgeinfer

namespace edgeinfer::math_ops {

using basic_ops::GetAttr;
using basic_ops::Invalid;

namespace {

enum class Fn {
  kErf,
  kExp,
  kLog,
  kSqrt,
  kAbs,
  kNeg,
  kReciprocal,
  kFloor,
  kCeil,
  kRound,
  kSign,
  kSin,
  kCos,
  kHardSigmoid,
  kHardSwish,
  kElu,
  kSelu,
  kCelu,
  kSoftplus,
  kSoftsign,
  kThresholdedRelu,
  kGelu,
};

struct FloatAttr {
  const char* name;
  float def;
};

struct UnaryDef {
  const char* op;
  Fn fn;
  FloatAttr attrs[2];  // unused slots have name == nullptr
};

constexpr UnaryDef kDefs[] = {
    {"Erf", Fn::kErf, {}},
    {"Exp", Fn::kExp, {}},
    {"Log", Fn::kLog, {}},
    {"Sqrt", Fn::kSqrt, {}},
    {"Abs", Fn::kAbs, {}},
    {"Neg", Fn::kNeg, {}},
    {"Reciprocal", Fn::kReciprocal, {}},
    {"Floor", Fn::kFloor, {}},
    {"Ceil", Fn::kCeil, {}},
    {"Round", Fn::kRound, {}},
    {"Sign", Fn::kSign, {}},
    {"Sin", Fn::kSin, {}},
    {"Cos", Fn::kCos, {}},
    {"HardSigmoid", Fn::kHardSigmoid, {{"alpha", 0.2f}, {"beta", 0.5f}}},
    {"HardSwish", Fn::kHardSwish, {}},
    {"Elu", Fn::kElu, {{"alpha", 1.f}}},
    // ONNX's defaults, the float32 values of the constants of the SELU paper.
    {"Selu",
     Fn::kSelu,
     {{"alpha", 1.67326319217681884765625f}, {"gamma", 1.05070102214813232421875f}}},
    {"Celu", Fn::kCelu, {{"alpha", 1.f}}},
    {"Softplus", Fn::kSoftplus, {}},
    {"Softsign", Fn::kSoftsign, {}},
    {"ThresholdedRelu", Fn::kThresholdedRelu, {{"alpha", 1.f}}},
    {"Gelu", Fn::kGelu, {}},
};

const UnaryDef* FindDef(const std::string& op) {
  for (const UnaryDef& d : kDefs)
    if (op == d.op) return &d;
  return nullptr;
}

struct Params {
  Fn fn;
  float a = 0.f, b = 0.f;  // the def's attributes, in order
};

EI_KERNEL_CLONES
void Map(const Params& p, const float* x, float* y, int64_t n) {
  const float a = p.a, b = p.b;
  switch (p.fn) {
    case Fn::kErf:
      for (int64_t i = 0; i < n; ++i) y[i] = FastErf(x[i]);
      return;
    case Fn::kExp:
      for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
      return;
    case Fn::kLog:
      for (int64_t i = 0; i < n; ++i) y[i] = std::log(x[i]);
      return;
    case Fn::kSqrt:
      for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]);
      return;
    case Fn::kAbs:
      for (int64_t i = 0; i < n; ++i) y[i] = std::fabs(x[i]);
      return;
    case Fn::kNeg:
      for (int64_t i = 0; i < n; ++i) y[i] = -x[i];
      return;
    case Fn::kReciprocal:
      for (int64_t i = 0; i < n; ++i) y[i] = 1.f / x[i];
      return;
    case Fn::kFloor:
      for (int64_t i = 0; i < n; ++i) y[i] = std::floor(x[i]);
      return;
    case Fn::kCeil:
      for (int64_t i = 0; i < n; ++i) y[i] = std::ceil(x[i]);
      return;
    case Fn::kRound:  // halves to even, as ONNX (the default rounding mode)
      for (int64_t i = 0; i < n; ++i) y[i] = std::nearbyint(x[i]);
      return;
    case Fn::kSign:  // 0 for +-0 (as numpy), NaN for NaN
      for (int64_t i = 0; i < n; ++i)
        y[i] = x[i] > 0.f ? 1.f : x[i] < 0.f ? -1.f : x[i] == 0.f ? 0.f : x[i];
      return;
    case Fn::kSin:
      for (int64_t i = 0; i < n; ++i) y[i] = std::sin(x[i]);
      return;
    case Fn::kCos:
      for (int64_t i = 0; i < n; ++i) y[i] = std::cos(x[i]);
      return;
    case Fn::kHardSigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = Unit(a * x[i] + b);
      return;
    case Fn::kHardSwish:
      return HardSwishRow(x, y, n);
    case Fn::kElu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.f ? a * std::expm1(x[i]) : x[i];
      return;
    case Fn::kSelu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] <= 0.f ? b * a * std::expm1(x[i]) : b * x[i];
      return;
    case Fn::kCelu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.f ? a * std::expm1(x[i] / a) : x[i];
      return;
    case Fn::kSoftplus:  // log(1 + e^x) without overflow for large x
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        y[i] = v > 0.f ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v));
      }
      return;
    case Fn::kSoftsign:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.f + std::fabs(x[i]));
      return;
    case Fn::kThresholdedRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > a ? x[i] : 0.f;
      return;
    case Fn::kGelu:
      return GeluRow(x, y, n);
  }
}

class UnaryMathKernel : public Kernel {
 public:
  explicit UnaryMathKernel(Params p) : p_(p) {}
  void Run(const KernelContext& ctx) override {
    Map(p_, ctx.in[0].f32(), ctx.out[0].f32(), ctx.out[0].shape.NumElements());
  }

 private:
  Params p_;
};

}  // namespace

Status InferUnaryMath(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  const UnaryDef* def = FindDef(node.op);
  if (!def) return Invalid(node, "not an element-wise math op");
  float v = 0.f;
  for (const FloatAttr& a : def->attrs)
    if (a.name) EI_RETURN_IF_ERROR(GetAttr<float>(node, a.name, a.def, &v));
  if (def->fn == Fn::kCelu && v == 0.f) return Invalid(node, "attribute 'alpha' must not be 0");
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(basic_ops::CheckFloatInputs(node, graph, *outs, 1, 1, &in));
  basic_ops::SetOutput(outs, in[0]->dims);
  return Status::Ok();
}

KernelResult CreateUnaryMath(const Node& node, const Graph&) {
  const UnaryDef* def = FindDef(node.op);
  if (!def) return Invalid(node, "not an element-wise math op");
  Params p{def->fn};
  if (def->attrs[0].name) p.a = node.attrs.GetFloat(def->attrs[0].name, def->attrs[0].def);
  if (def->attrs[1].name) p.b = node.attrs.GetFloat(def->attrs[1].name, def->attrs[1].def);
  return std::unique_ptr<Kernel>(new UnaryMathKernel(p));
}

}  // namespace edgeinfer::math_ops
