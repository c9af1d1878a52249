// Lowering of element-wise arithmetic, unary math, activations, softmax and reductions.
// Add/Sub/Mul/Div on integer values known at import (shape arithmetic) fold instead of
// becoming nodes.
#include <algorithm>

#include "inference/onnx/graph_edit.h"
#include "inference/onnx/onnx_attrs.h"
#include "inference/onnx/onnx_lower.h"

namespace edgeinfer {

namespace {

using onnx::NodeProto;

template <SymOp kSym, const char* kOp>
Status LowerBinary(const NodeProto& n, LowerContext& cx) {
  if (cx.IsInts(n, 0) && cx.IsInts(n, 1)) {
    EI_ASSIGN_OR_RETURN(KnownInts a, cx.Ints(n, 0));
    EI_ASSIGN_OR_RETURN(KnownInts b, cx.Ints(n, 1));
    EI_ASSIGN_OR_RETURN(KnownInts r, KnownArith(kSym, a, b));
    cx.BindInts(n.output(0), std::move(r));
    return Status::Ok();
  }
  EI_ASSIGN_OR_RETURN(int a, cx.Tensor(n, 0));
  EI_ASSIGN_OR_RETURN(int b, cx.Tensor(n, 1));
  return cx.Emit(n, kOp, {a, b}, {}).status();
}

// Max, Min, Sum of one or more inputs: a chain of binary nodes (numpy broadcasting at each).
// Each link's output takes n's output name; an intermediate is renamed when a link follows.
template <const char* kOp>
Status LowerVariadic(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int acc, cx.Tensor(n, 0));
  if (n.input_size() == 1) {
    cx.BindTensor(n.output(0), acc);
    return Status::Ok();
  }
  Graph& g = cx.graph();
  for (int i = 1; i < n.input_size(); ++i) {
    EI_ASSIGN_OR_RETURN(int next, cx.Tensor(n, i));
    EI_ASSIGN_OR_RETURN(acc, cx.Emit(n, kOp, {acc, next}, {}));
    if (i + 1 < n.input_size())
      g.tensors[acc].name = UniqueTensorName(g, n.output(0) + "/" + std::to_string(i));
  }
  return Status::Ok();
}

template <const char* kOp>
Status LowerUnary(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  return cx.Emit(n, kOp, {x}, {}).status();
}

struct FloatAttrDefault {
  const char* name;
  float def;
};

// Element-wise ops with float attributes, written explicitly with ONNX's defaults.
Status EmitWithFloats(const NodeProto& n, LowerContext& cx, const char* op,
                      std::initializer_list<FloatAttrDefault> attrs) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  Attrs a;
  for (const FloatAttrDefault& f : attrs) a.Set(f.name, OnnxAttrFloat(n, f.name, f.def));
  return cx.Emit(n, op, {x}, a).status();
}

Status LowerHardSigmoid(const NodeProto& n, LowerContext& cx) {
  return EmitWithFloats(n, cx, "HardSigmoid", {{"alpha", 0.2f}, {"beta", 0.5f}});
}
Status LowerElu(const NodeProto& n, LowerContext& cx) {
  return EmitWithFloats(n, cx, "Elu", {{"alpha", 1.f}});
}
Status LowerSelu(const NodeProto& n, LowerContext& cx) {
  return EmitWithFloats(
      n, cx, "Selu",
      {{"alpha", 1.67326319217681884765625f}, {"gamma", 1.05070102214813232421875f}});
}
Status LowerCelu(const NodeProto& n, LowerContext& cx) {
  return EmitWithFloats(n, cx, "Celu", {{"alpha", 1.f}});
}
Status LowerThresholdedRelu(const NodeProto& n, LowerContext& cx) {
  return EmitWithFloats(n, cx, "ThresholdedRelu", {{"alpha", 1.f}});
}

// An integer exponent (Pow's T1 may differ from T) becomes a float constant.
Status LowerPow(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  int e = -1;
  if (cx.IsInts(n, 1)) {
    EI_ASSIGN_OR_RETURN(std::vector<int64_t> v, cx.LiteralInts(n, 1));
    EI_ASSIGN_OR_RETURN(KnownInts k, cx.Ints(n, 1));
    std::vector<float> f(v.begin(), v.end());
    Graph& g = cx.graph();
    e = AddFloatConstant(&g, UniqueTensorName(g, n.input(1)), k.shape, f);
  } else {
    EI_ASSIGN_OR_RETURN(e, cx.Tensor(n, 1));
  }
  return cx.Emit(n, "Pow", {x, e}, {}).status();
}

Status LowerPRelu(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  EI_ASSIGN_OR_RETURN(int slope, cx.Tensor(n, 1));
  return cx.Emit(n, "PRelu", {x, slope}, {}).status();
}

// Reduction axes: an attribute, except ReduceSum from opset 13 where they are an optional input
// (the other reductions follow in opset 18, beyond the imported range) that may be empty.
// No axes reduce over all of them, unless noop_with_empty_axes (ReduceSum 13+) makes the node
// an identity.
// ReduceProd / ReduceSum of a 1-D shape value over its only axis: torch's x.var() exports the
// element count as ReduceProd of gathered dims (B x B and similar are refused by SymArith).
Status FoldReduceInts(const NodeProto& n, LowerContext& cx, SymOp op) {
  EI_ASSIGN_OR_RETURN(KnownInts v, cx.Ints(n, 0));
  const std::vector<int64_t> axes = OnnxAttrInts(n, "axes", {});
  const bool all = axes.empty() || (axes.size() == 1 && (axes[0] == 0 || axes[0] == -1));
  if (v.shape.size() > 1 || !all || (op == SymOp::kAdd && cx.opset() >= 13 && cx.HasInput(n, 1)))
    return Status::Unsupported("reduction of shape values other than over a 1-D value");
  SymInt r = v.values.empty() ? SymInt::Lit(op == SymOp::kMul ? 1 : 0) : v.values[0];
  for (size_t i = 1; i < v.values.size(); ++i) {
    EI_ASSIGN_OR_RETURN(r, SymArith(op, r, v.values[i]));
  }
  KnownInts out;
  if (OnnxAttrInt(n, "keepdims", 1) != 0) out.shape = Dims(v.shape.size(), 1);
  out.values = {r};
  cx.BindInts(n.output(0), std::move(out));
  return Status::Ok();
}

template <const char* kOp>
Status LowerReduce(const NodeProto& n, LowerContext& cx) {
  const std::string_view op = kOp;
  if (cx.IsInts(n, 0) && (op == "ReduceProd" || op == "ReduceSum"))
    return FoldReduceInts(n, cx, op == "ReduceProd" ? SymOp::kMul : SymOp::kAdd);
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  const int64_t rank = static_cast<int64_t>(cx.desc(x).dims.size());
  const bool axes_input = std::string_view(kOp) == "ReduceSum" && cx.opset() >= 13;
  std::vector<int64_t> axes;
  if (axes_input && cx.HasInput(n, 1)) {
    EI_ASSIGN_OR_RETURN(axes, cx.LiteralInts(n, 1));
  } else if (!axes_input) {
    axes = OnnxAttrInts(n, "axes", {});
  }
  if (axes.empty()) {
    if (axes_input && OnnxAttrInt(n, "noop_with_empty_axes", 0) != 0) {
      cx.BindTensor(n.output(0), x);
      return Status::Ok();
    }
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  }
  for (int64_t& axis : axes) {
    EI_ASSIGN_OR_RETURN(axis, NormalizeAxis(axis, rank));
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
    return Status::InvalidArgument("axes repeat an axis");
  Attrs a;
  a.Set("axes", axes);
  a.Set("keepdims", OnnxAttrInt(n, "keepdims", 1) != 0 ? int64_t{1} : int64_t{0});
  return cx.Emit(n, kOp, {x}, a).status();
}

Status LowerLeakyRelu(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  Attrs a;
  a.Set("alpha", OnnxAttrFloat(n, "alpha", 0.01f));
  return cx.Emit(n, "LeakyRelu", {x}, a).status();
}

// Clip bounds: attributes before opset 11, optional constant scalar inputs since. An absent
// bound stays absent (the op's default is -inf / +inf).
Status ClipBound(const NodeProto& n, LowerContext& cx, int input, const char* name, Attrs* a) {
  if (const onnx::AttributeProto* attr = FindOnnxAttr(n, name)) a->Set(name, attr->f());
  if (!cx.HasInput(n, input)) return Status::Ok();
  Result<std::vector<float>> v = cx.ConstantFloats(n, input);
  if (!v.ok()) return v.status().WithContext(std::string("Clip ") + name);
  if (v->size() != 1)
    return Status::InvalidArgument(std::string("Clip ") + name + " must be a scalar");
  a->Set(name, (*v)[0]);
  return Status::Ok();
}

Status LowerClip(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  Attrs a;
  EI_RETURN_IF_ERROR(ClipBound(n, cx, 1, "min", &a));
  EI_RETURN_IF_ERROR(ClipBound(n, cx, 2, "max", &a));
  return cx.Emit(n, "Clip", {x}, a).status();
}

// Before opset 13 Softmax flattened the input to 2-D at `axis` and normalized over all of
// [axis, rank). That equals the opset-13 form when every dim after `axis` is 1.
template <const char* kOp>
Status LowerSoftmax(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  const Dims& d = cx.desc(x).dims;
  bool legacy = cx.opset() < 13;
  int64_t axis = OnnxAttrInt(n, "axis", legacy ? 1 : -1);
  EI_ASSIGN_OR_RETURN(axis, NormalizeAxis(axis, static_cast<int64_t>(d.size())));
  if (legacy) {
    legacy = false;
    for (size_t i = axis + 1; i < d.size(); ++i) legacy |= d[i] != 1;
  }
  Attrs a;
  a.Set("axis", axis);
  a.Set("legacy", int64_t{legacy ? 1 : 0});
  return cx.Emit(n, kOp, {x}, a).status();
}

constexpr char kAdd[] = "Add";
constexpr char kSub[] = "Sub";
constexpr char kMul[] = "Mul";
constexpr char kDiv[] = "Div";
constexpr char kMax[] = "Max";
constexpr char kMin[] = "Min";
constexpr char kRelu[] = "Relu";
constexpr char kSigmoid[] = "Sigmoid";
constexpr char kTanh[] = "Tanh";
constexpr char kSoftmax[] = "Softmax";
constexpr char kLogSoftmax[] = "LogSoftmax";
constexpr char kErf[] = "Erf";
constexpr char kExp[] = "Exp";
constexpr char kLog[] = "Log";
constexpr char kSqrt[] = "Sqrt";
constexpr char kAbs[] = "Abs";
constexpr char kNeg[] = "Neg";
constexpr char kReciprocal[] = "Reciprocal";
constexpr char kFloor[] = "Floor";
constexpr char kCeil[] = "Ceil";
constexpr char kRound[] = "Round";
constexpr char kSign[] = "Sign";
constexpr char kSin[] = "Sin";
constexpr char kCos[] = "Cos";
constexpr char kHardSwish[] = "HardSwish";
constexpr char kSoftplus[] = "Softplus";
constexpr char kSoftsign[] = "Softsign";
constexpr char kReduceMean[] = "ReduceMean";
constexpr char kReduceSum[] = "ReduceSum";
constexpr char kReduceMax[] = "ReduceMax";
constexpr char kReduceMin[] = "ReduceMin";
constexpr char kReduceProd[] = "ReduceProd";
constexpr char kReduceL1[] = "ReduceL1";
constexpr char kReduceL2[] = "ReduceL2";
constexpr char kReduceSumSquare[] = "ReduceSumSquare";
constexpr char kReduceLogSum[] = "ReduceLogSum";
constexpr char kReduceLogSumExp[] = "ReduceLogSumExp";

constexpr OnnxLowering kLowerings[] = {
    {"Add", LowerBinary<SymOp::kAdd, kAdd>},
    {"Sub", LowerBinary<SymOp::kSub, kSub>},
    {"Mul", LowerBinary<SymOp::kMul, kMul>},
    {"Div", LowerBinary<SymOp::kDiv, kDiv>},
    {"Max", LowerVariadic<kMax>},
    {"Min", LowerVariadic<kMin>},
    {"Sum", LowerVariadic<kAdd>},
    {"Relu", LowerUnary<kRelu>},
    {"Sigmoid", LowerUnary<kSigmoid>},
    {"Tanh", LowerUnary<kTanh>},
    {"LeakyRelu", LowerLeakyRelu},
    {"Clip", LowerClip},
    {"Softmax", LowerSoftmax<kSoftmax>},
    {"LogSoftmax", LowerSoftmax<kLogSoftmax>},
    {"Pow", LowerPow},
    {"PRelu", LowerPRelu},
    {"Erf", LowerUnary<kErf>},
    {"Exp", LowerUnary<kExp>},
    {"Log", LowerUnary<kLog>},
    {"Sqrt", LowerUnary<kSqrt>},
    {"Abs", LowerUnary<kAbs>},
    {"Neg", LowerUnary<kNeg>},
    {"Reciprocal", LowerUnary<kReciprocal>},
    {"Floor", LowerUnary<kFloor>},
    {"Ceil", LowerUnary<kCeil>},
    {"Round", LowerUnary<kRound>},
    {"Sign", LowerUnary<kSign>},
    {"Sin", LowerUnary<kSin>},
    {"Cos", LowerUnary<kCos>},
    {"HardSigmoid", LowerHardSigmoid},
    {"HardSwish", LowerUnary<kHardSwish>},
    {"Elu", LowerElu},
    {"Selu", LowerSelu},
    {"Celu", LowerCelu},
    {"Softplus", LowerUnary<kSoftplus>},
    {"Softsign", LowerUnary<kSoftsign>},
    {"ThresholdedRelu", LowerThresholdedRelu},
    {"ReduceMean", LowerReduce<kReduceMean>},
    {"ReduceSum", LowerReduce<kReduceSum>},
    {"ReduceMax", LowerReduce<kReduceMax>},
    {"ReduceMin", LowerReduce<kReduceMin>},
    {"ReduceProd", LowerReduce<kReduceProd>},
    {"ReduceL1", LowerReduce<kReduceL1>},
    {"ReduceL2", LowerReduce<kReduceL2>},
    {"ReduceSumSquare", LowerReduce<kReduceSumSquare>},
    {"ReduceLogSum", LowerReduce<kReduceLogSum>},
    {"ReduceLogSumExp", LowerReduce<kReduceLogSumExp>},
};

}  // namespace

std::span<const OnnxLowering> MathLowerings() { return kLowerings; }

}  // namespace edgeinfer
