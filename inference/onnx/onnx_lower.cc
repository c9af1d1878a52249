#include "inference/onnx/onnx_lower.h"

#include "inference/onnx/const_eval.h"
#include "inference/onnx/graph_edit.h"

namespace edgeinfer {

namespace {

Status Missing(int i) {
  return Status::InvalidArgument("input " + std::to_string(i) + " is missing");
}

}  // namespace

Status LowerContext::Unavailable(const std::string& value) const {
  auto it = refused_.find(value);
  if (it != refused_.end()) return it->second;
  return Status::InvalidArgument("input '" + value + "' is not produced by an earlier node");
}

void LowerContext::BindZeros(const std::string& value, Dims dims) {
  refused_[value] = Status::Unsupported(
      "'" + value + "' is a float tensor of zeros over the batch " + DimsToString(dims) +
      " (ConstantOfShape); only the initial state of LSTM, GRU and RNN may read it");
  zeros_[value] = std::move(dims);
}

const Dims* LowerContext::ZerosDims(const std::string& value) const {
  auto it = zeros_.find(value);
  return it == zeros_.end() ? nullptr : &it->second;
}

int LowerContext::TensorOf(const std::string& value) const {
  auto it = tensors_.find(value);
  return it == tensors_.end() ? -1 : it->second;
}

Result<int> LowerContext::Tensor(const onnx::NodeProto& n, int i) const {
  if (!HasInput(n, i)) return Missing(i);
  int t = TensorOf(n.input(i));
  if (t >= 0) return t;
  if (ints_.count(n.input(i)))
    return Status::Unsupported("input '" + n.input(i) +
                               "' is an integer tensor; only float32 tensors are supported here");
  return Unavailable(n.input(i));
}

Result<KnownInts> LowerContext::Ints(const onnx::NodeProto& n, int i) const {
  if (!HasInput(n, i)) return Missing(i);
  auto it = ints_.find(n.input(i));
  if (it != ints_.end()) return it->second;
  if (TensorOf(n.input(i)) >= 0)
    return Status::Unsupported("input '" + n.input(i) +
                               "' must be an integer value known at import (a constant or "
                               "shape arithmetic), not a float tensor");
  return Unavailable(n.input(i));
}

Result<std::vector<int64_t>> LowerContext::LiteralInts(const onnx::NodeProto& n, int i) const {
  EI_ASSIGN_OR_RETURN(KnownInts v, Ints(n, i));
  Result<std::vector<int64_t>> lits = v.Literals();
  if (!lits.ok()) return lits.status().WithContext("input '" + n.input(i) + "'");
  return lits;
}

Result<std::vector<float>> LowerContext::ConstantFloats(const onnx::NodeProto& n, int i) const {
  EI_ASSIGN_OR_RETURN(int t, Tensor(n, i));
  if (!IsFloatConstant(*g_, t))
    return Status::Unsupported("input '" + n.input(i) + "' must be a constant");
  return edgeinfer::ConstantFloats(*g_, t);
}

Result<int> LowerContext::Emit(const onnx::NodeProto& n, const std::string& op,
                               std::vector<int> inputs, Attrs attrs) {
  Node node;
  node.name = n.name();
  node.op = op;
  node.inputs = std::move(inputs);
  node.attrs = std::move(attrs);
  TensorDesc out;
  out.name = n.output(0);
  node.outputs = {g_->AddTensor(out)};
  EI_RETURN_IF_ERROR(InferNodeOutputs(node, g_));
  if (AllInputsConstant(*g_, node)) {
    EI_RETURN_IF_ERROR(EvaluateConstantNode(node, g_));
  } else {
    g_->nodes.push_back(node);
  }
  BindTensor(n.output(0), node.outputs[0]);
  return node.outputs[0];
}

Status LowerContext::RefuseUsedOutputs(const onnx::NodeProto& n, int first,
                                       const std::string& what) const {
  for (int i = first; i < n.output_size(); ++i)
    if (!n.output(i).empty() && IsUsed(n.output(i)))
      return Status::Unsupported("output " + std::to_string(i) + " ('" + n.output(i) + "', " +
                                 what + ") is used; only inference outputs are supported");
  return Status::Ok();
}

const OnnxLowering* FindLowering(std::string_view op_type) {
  for (auto part : {NnLowerings(), MathLowerings(), LayoutLowerings(), ValueLowerings(),
                    RnnLowerings(), SelectLowerings()})
    for (const OnnxLowering& l : part)
      if (op_type == l.op_type) return &l;
  return nullptr;
}

}  // namespace edgeinfer
