#include "inference/onnx/const_eval.h"

#include <cstring>
#include <memory>
#include <new>

#include "inference/onnx/graph_edit.h"
#include "inference/op.h"

namespace edgeinfer {

namespace {

struct AlignedDelete {
  void operator()(void* p) const { ::operator delete(p, std::align_val_t(64)); }
};
using Buffer = std::unique_ptr<void, AlignedDelete>;

Buffer Allocate(size_t bytes) {
  return Buffer(::operator new(bytes ? bytes : 1, std::align_val_t(64)));
}

Result<TensorView> LiteralView(const TensorDesc& t, void* data) {
  if (HasBatch(t.dims) || t.dims.size() > static_cast<size_t>(kMaxRank))
    return Status::Internal("constant tensor '" + t.name + "' has dims " + DimsToString(t.dims));
  TensorView v;
  v.data = data;
  v.dtype = t.dtype;
  v.shape = Resolve(t.dims, 1);
  return v;
}

Status RunKernel(const OpDef& def, const Node& node, Graph* g, std::vector<Buffer>* outs) {
  EI_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, def.create(node, *g));
  std::vector<TensorView> in(node.inputs.size());
  std::vector<Shape> in_shapes(node.inputs.size());
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    if (node.inputs[i] < 0) continue;
    const TensorDesc& t = g->tensors[node.inputs[i]];
    EI_ASSIGN_OR_RETURN(in[i], LiteralView(t, const_cast<void*>(t.data)));
    in_shapes[i] = in[i].shape;
  }
  std::vector<TensorView> out(node.outputs.size());
  std::vector<Shape> out_shapes(node.outputs.size());
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    const TensorDesc& t = g->tensors[node.outputs[i]];
    EI_ASSIGN_OR_RETURN(out[i], LiteralView(t, nullptr));
    outs->push_back(Allocate(out[i].bytes()));
    out[i].data = outs->back().get();
    out_shapes[i] = out[i].shape;
  }
  size_t scratch_bytes = kernel->ScratchBytes(in_shapes, out_shapes);
  Buffer scratch = Allocate(scratch_bytes);
  KernelContext ctx;
  ctx.in = in.data();
  ctx.num_in = static_cast<int>(in.size());
  ctx.out = out.data();
  ctx.num_out = static_cast<int>(out.size());
  ctx.scratch = scratch.get();
  ctx.scratch_bytes = scratch_bytes;
  kernel->Run(ctx);
  return Status::Ok();
}

size_t LiteralBytes(const TensorDesc& t) {
  size_t n = DTypeSize(t.dtype);
  for (int64_t d : t.dims) n *= static_cast<size_t>(d);
  return n;
}

}  // namespace

Status InferNodeOutputs(const Node& node, Graph* g) {
  const OpDef* def = FindOp(node.op);
  if (!def)
    return Status::Unsupported(NodeContext(node) + ": internal op '" + node.op +
                               "' is not in the op table");
  std::vector<TensorDesc> outs(node.outputs.size());
  EI_RETURN_IF_ERROR(def->infer(node, *g, &outs));
  for (size_t i = 0; i < outs.size(); ++i) {
    TensorDesc& t = g->tensors[node.outputs[i]];
    t.dtype = outs[i].dtype;
    t.dims = outs[i].dims;
  }
  return Status::Ok();
}

bool AllInputsConstant(const Graph& g, const Node& node) {
  bool any = false;
  for (int t : node.inputs) {
    if (t < 0) continue;
    if (!g.tensors[t].is_constant()) return false;
    any = true;
  }
  return any;
}

Status EvaluateConstantNode(const Node& node, Graph* g) {
  const OpDef* def = FindOp(node.op);
  if (!def) return Status::Unsupported(NodeContext(node) + ": op not in the op table");
  if (def->aliases_input) {
    // The kernel of an aliasing op does nothing; the result is the input's bytes.
    const TensorDesc& in = g->tensors[node.inputs[0]];
    int out = node.outputs[0];
    if (LiteralBytes(g->tensors[out]) != in.bytes)
      return Status::Internal(NodeContext(node) + ": aliasing output size differs from input");
    SetConstantData(g, out, in.data, in.bytes);
    return Status::Ok();
  }
  std::vector<Buffer> outs;
  EI_RETURN_IF_ERROR(RunKernel(*def, node, g, &outs).WithContext(NodeContext(node)));
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    int t = node.outputs[i];
    SetConstantData(g, t, outs[i].get(), LiteralBytes(g->tensors[t]));
  }
  return Status::Ok();
}

}  // namespace edgeinfer
