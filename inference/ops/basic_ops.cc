// Element-wise, softmax and layout ops: the op table and the validation helpers the ops share.
#include "inference/op.h"
#include "inference/ops/activation.h"
#include "inference/ops/basic_ops_internal.h"
#include "inference/ops/shape_util.h"

namespace edgeinfer {

namespace basic_ops {

Status Invalid(const Node& node, const std::string& what) {
  return Status::InvalidArgument(NodeContext(node) + ": " + what);
}

namespace {
Status CheckInput(const Node& node, const Graph& graph, size_t i, const TensorDesc** out) {
  const int index = node.inputs[i];
  if (index < 0) return Invalid(node, "input " + std::to_string(i) + " is missing");
  if (static_cast<size_t>(index) >= graph.tensors.size()) {
    return Invalid(node, "input " + std::to_string(i) + " refers to no tensor");
  }
  const TensorDesc& t = graph.tensors[index];
  if (t.dtype != DType::kFloat32) {
    return Invalid(node, "input " + std::to_string(i) + " '" + t.name + "' is " +
                             DTypeName(t.dtype) + ", expected float32");
  }
  if (t.dims.size() > static_cast<size_t>(kMaxRank)) {
    return Invalid(node, "input '" + t.name + "' has rank " + std::to_string(t.dims.size()) +
                             " > " + std::to_string(kMaxRank));
  }
  SymbolicCount count;
  Status s = CountElements(t.dims, &count);
  if (!s.ok()) return Invalid(node, "input '" + t.name + "': " + s.message());
  *out = &t;
  return Status::Ok();
}
}  // namespace

Status CheckFloatInputs(const Node& node, const Graph& graph, const std::vector<TensorDesc>& outs,
                        size_t min_inputs, size_t max_inputs,
                        std::vector<const TensorDesc*>* inputs) {
  const size_t n = node.inputs.size();
  if (n < min_inputs || n > max_inputs) {
    const std::string want = min_inputs == max_inputs ? std::to_string(min_inputs)
                                                      : std::to_string(min_inputs) + " or more";
    return Invalid(node, "has " + std::to_string(n) + " inputs, expected " + want);
  }
  if (node.outputs.size() != 1 || outs.size() != 1) {
    return Invalid(node, "has " + std::to_string(node.outputs.size()) + " outputs, expected 1");
  }
  inputs->assign(n, nullptr);
  for (size_t i = 0; i < n; ++i) EI_RETURN_IF_ERROR(CheckInput(node, graph, i, &(*inputs)[i]));
  return Status::Ok();
}

void SetOutput(std::vector<TensorDesc>* outs, Dims dims) {
  (*outs)[0].dtype = DType::kFloat32;
  (*outs)[0].dims = std::move(dims);
}

Status NormalizeAxis(const Node& node, int64_t axis, size_t rank, int64_t* out) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r) {
    return Invalid(
        node, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  }
  *out = axis < 0 ? axis + r : axis;
  return Status::Ok();
}

Status CheckActivationAttrs(const Node& node) {
  std::string name;
  float f = 0.f;
  EI_RETURN_IF_ERROR(GetAttr<std::string>(node, "activation", "", &name));
  for (const char* attr : {"activation_alpha", "activation_min", "activation_max"}) {
    EI_RETURN_IF_ERROR(GetAttr<float>(node, attr, 0.f, &f));
  }
  Result<Activation> a = Activation::FromAttrs(node.attrs);
  if (!a.ok()) return a.status().WithContext(NodeContext(node));
  return Status::Ok();
}

}  // namespace basic_ops

std::span<const OpDef> BasicOps() {
  using namespace basic_ops;  // NOLINT: the table names every op's functions
  static const OpDef kOps[] = {
      {"Add", InferBinary, CreateAdd},
      {"Sub", InferBinary, CreateSub},
      {"Mul", InferBinary, CreateMul},
      {"Div", InferBinary, CreateDiv},
      {"Pow", InferBinary, CreatePow},
      {"Max", InferBinary, CreateMax},
      {"Min", InferBinary, CreateMin},
      {"PRelu", InferPRelu, CreatePRelu},
      {"Relu", InferUnary, CreateRelu},
      {"LeakyRelu", InferLeakyRelu, CreateLeakyRelu},
      {"Sigmoid", InferUnary, CreateSigmoid},
      {"Tanh", InferUnary, CreateTanh},
      {"Clip", InferClip, CreateClip},
      {"Softmax", InferSoftmax, CreateSoftmax},
      {"LogSoftmax", InferSoftmax, CreateLogSoftmax},
      {"Reshape", InferReshape, CreateReshape, /*aliases_input=*/true},
      {"Transpose", InferTranspose, CreateTranspose},
      {"Concat", InferConcat, CreateConcat},
      {"Copy", InferCopy, CreateCopy},
      {"Where", InferWhere, CreateWhere},
      {"Expand", InferExpand, CreateExpand},
      {"ConvTranspose", InferConvTranspose, CreateConvTranspose},
  };
  return kOps;
}

}  // namespace edgeinfer
