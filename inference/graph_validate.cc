// ValidateGraph: the structural checks every graph passes before a session may run it.
#include <string>
#include <vector>

#include "inference/model.h"
#include "inference/op.h"
#include "inference/quant/weight_format.h"

namespace edgeinfer {

namespace {

constexpr int64_t kMaxDim = int64_t{1} << 31;

std::string TensorContext(const Graph& g, int i) { return "tensor '" + g.tensors[i].name + "'"; }

Status CheckTensor(const Graph& g, int i) {
  const TensorDesc& t = g.tensors[i];
  if (t.dims.size() > static_cast<size_t>(kMaxRank))
    return Status::Unsupported(TensorContext(g, i) + ": rank " + std::to_string(t.dims.size()) +
                               " exceeds " + std::to_string(kMaxRank));
  int64_t numel = 1;
  for (int64_t d : t.dims) {
    if (d >= kMaxDim || d <= -kMaxDim)
      return Status::InvalidArgument(TensorContext(g, i) + ": dimension out of range");
    numel *= d < 0 ? -d : d;
    if (numel >= kMaxDim * 16)
      return Status::InvalidArgument(TensorContext(g, i) + ": too many elements");
  }
  const bool packed = IsPackedWeight(t.dtype);
  if (DTypeSize(t.dtype) == 0 && !packed)
    return Status::InvalidArgument(TensorContext(g, i) + ": unknown dtype");
  if (!t.is_constant()) {
    if (packed)
      return Status::InvalidArgument(TensorContext(g, i) + ": " + DTypeName(t.dtype) +
                                     " is a weight format, only constants can have it");
    return Status::Ok();
  }
  if (HasBatch(t.dims))
    return Status::InvalidArgument(TensorContext(g, i) + ": a constant cannot have a batch dim");
  uint64_t want = static_cast<uint64_t>(numel) * DTypeSize(t.dtype);
  if (packed) {
    Result<uint64_t> blob = quant::WeightBlobBytes(t.dtype, t.dims);
    if (!blob.ok()) return blob.status().WithContext(TensorContext(g, i));
    want = *blob;
  }
  if (t.bytes != want)
    return Status::InvalidArgument(TensorContext(g, i) + ": holds " + std::to_string(t.bytes) +
                                   " bytes, " + DTypeName(t.dtype) + " " + DimsToString(t.dims) +
                                   " needs " + std::to_string(want));
  return Status::Ok();
}

Status CheckIndex(const Graph& g, int index, const std::string& what) {
  if (index < 0 || static_cast<size_t>(index) >= g.tensors.size())
    return Status::InvalidArgument(what + ": tensor index " + std::to_string(index) +
                                   " out of range");
  return Status::Ok();
}

// Marks graph inputs and constants as available; nodes must only read available tensors.
Status CheckGraphInputs(const Graph& g, std::vector<char>* available) {
  if (g.inputs.empty()) return Status::InvalidArgument("graph has no inputs");
  if (g.outputs.empty()) return Status::InvalidArgument("graph has no outputs");
  for (int i : g.inputs) {
    EI_RETURN_IF_ERROR(CheckIndex(g, i, "graph input"));
    if (g.tensors[i].is_constant() || (*available)[i])
      return Status::InvalidArgument(TensorContext(g, i) + ": listed twice or constant input");
    if (g.tensors[i].dtype != DType::kFloat32)
      return Status::Unsupported(TensorContext(g, i) + ": graph inputs must be float32");
    (*available)[i] = 1;
  }
  for (size_t i = 0; i < g.tensors.size(); ++i)
    if (g.tensors[i].is_constant()) (*available)[i] = 1;
  return Status::Ok();
}

Status CheckNode(Graph* g, const Node& n, bool check_stored_dims, std::vector<char>* available) {
  const OpDef* op = FindOp(n.op);
  if (!op) return Status::Unsupported(NodeContext(n) + ": unknown op '" + n.op + "'");
  for (int i : n.inputs) {
    if (i == -1) continue;
    EI_RETURN_IF_ERROR(CheckIndex(*g, i, NodeContext(n)));
    if (!(*available)[i])
      return Status::InvalidArgument(NodeContext(n) + ": reads " + TensorContext(*g, i) +
                                     " before it is produced");
  }
  if (n.outputs.empty()) return Status::InvalidArgument(NodeContext(n) + ": no outputs");
  for (int o : n.outputs) {
    EI_RETURN_IF_ERROR(CheckIndex(*g, o, NodeContext(n)));
    if ((*available)[o])
      return Status::InvalidArgument(NodeContext(n) + ": writes " + TensorContext(*g, o) +
                                     ", which is already produced, an input or a constant");
  }
  std::vector<TensorDesc> outs(n.outputs.size());
  EI_RETURN_IF_ERROR(op->infer(n, *g, &outs));
  for (size_t k = 0; k < outs.size(); ++k) {
    TensorDesc& t = g->tensors[n.outputs[k]];
    if (check_stored_dims && (t.dims != outs[k].dims || t.dtype != outs[k].dtype))
      return Status::Corruption(TensorContext(*g, n.outputs[k]) + ": stored shape " +
                                DimsToString(t.dims) + " but " + NodeContext(n) + " gives " +
                                DimsToString(outs[k].dims));
    t.dims = outs[k].dims;
    t.dtype = outs[k].dtype;
    EI_RETURN_IF_ERROR(CheckTensor(*g, n.outputs[k]));
    (*available)[n.outputs[k]] = 1;
  }
  return Status::Ok();
}

}  // namespace

Status ValidateGraph(Graph* g, bool check_stored_dims) {
  for (size_t i = 0; i < g->tensors.size(); ++i)
    EI_RETURN_IF_ERROR(CheckTensor(*g, static_cast<int>(i)));
  std::vector<char> available(g->tensors.size(), 0);
  EI_RETURN_IF_ERROR(CheckGraphInputs(*g, &available));
  for (const Node& n : g->nodes) EI_RETURN_IF_ERROR(CheckNode(g, n, check_stored_dims, &available));
  for (int o : g->outputs) {
    EI_RETURN_IF_ERROR(CheckIndex(*g, o, "graph output"));
    bool produced = false;
    for (const Node& n : g->nodes)
      for (int t : n.outputs) produced |= (t == o);
    if (!produced)
      return Status::InvalidArgument(TensorContext(*g, o) +
                                     ": a graph output must be produced by a node");
    // Static int8 activations (QGemm, QConv) stay inside the graph: callers read float32.
    if (g->tensors[o].dtype != DType::kFloat32)
      return Status::Unsupported(TensorContext(*g, o) + ": graph outputs must be float32");
  }
  return Status::Ok();
}

}  // namespace edgeinfer
