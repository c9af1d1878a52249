// Lowering of element-wise arithmetic, activations and softmax. Add/Sub/Mul/Div on integer
// values known at import (shape arithmetic) fold instead of becoming nodes.
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

template <const char* kOp>
Status LowerUnary(const NodeProto& n, LowerContext& cx) {
  EI_ASSIGN_OR_RETURN(int x, cx.Tensor(n, 0));
  return cx.Emit(n, kOp, {x}, {}).status();
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
constexpr char kRelu[] = "Relu";
constexpr char kSigmoid[] = "Sigmoid";
constexpr char kTanh[] = "Tanh";
constexpr char kSoftmax[] = "Softmax";
constexpr char kLogSoftmax[] = "LogSoftmax";

constexpr OnnxLowering kLowerings[] = {
    {"Add", LowerBinary<SymOp::kAdd, kAdd>},
    {"Sub", LowerBinary<SymOp::kSub, kSub>},
    {"Mul", LowerBinary<SymOp::kMul, kMul>},
    {"Div", LowerBinary<SymOp::kDiv, kDiv>},
    {"Relu", LowerUnary<kRelu>},
    {"Sigmoid", LowerUnary<kSigmoid>},
    {"Tanh", LowerUnary<kTanh>},
    {"LeakyRelu", LowerLeakyRelu},
    {"Clip", LowerClip},
    {"Softmax", LowerSoftmax<kSoftmax>},
    {"LogSoftmax", LowerSoftmax<kLogSoftmax>},
};

}  // namespace

std::span<const OnnxLowering> MathLowerings() { return kLowerings; }

}  // namespace edgeinfer
