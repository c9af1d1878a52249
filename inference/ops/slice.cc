// Slice: a contiguous range [start, end) of one axis (step 1). The importer lowers ONNX Slice and
// Gather with a literal index on float tensors to it: torch's `y[:, -1]` after an LSTM, the
// last step's hidden state into the head. One memcpy per outer index.
#include <cstring>

#include "inference/op.h"
#include "inference/ops/rnn_internal.h"

namespace edgeinfer::rnn {

namespace {

struct SliceParams {
  int64_t axis = 0, start = 0, end = 0;
};

Status ParseSlice(const Node& node, const Dims* x, SliceParams* p) {
  for (const char* name : {"axis", "start", "end"}) {
    const auto& values = node.attrs.values();
    auto it = values.find(name);
    if (it == values.end() || !std::holds_alternative<int64_t>(it->second))
      return Status::InvalidArgument(NodeContext(node) + ": attribute '" + name +
                                     "' is required and must be an int");
  }
  p->axis = node.attrs.GetInt("axis");
  p->start = node.attrs.GetInt("start");
  p->end = node.attrs.GetInt("end");
  if (!x) return Status::Ok();
  const int64_t rank = static_cast<int64_t>(x->size());
  if (p->axis < 0 || p->axis >= rank)
    return Status::InvalidArgument(NodeContext(node) + ": axis " + std::to_string(p->axis) +
                                   " is out of range for " + DimsToString(*x));
  const int64_t len = (*x)[p->axis];
  if (len < 0)
    return Status::Unsupported(NodeContext(node) + ": cannot slice the batch axis of " +
                               DimsToString(*x));
  if (p->start < 0 || p->start >= p->end || p->end > len)
    return Status::InvalidArgument(NodeContext(node) + ": range [" + std::to_string(p->start) +
                                   ", " + std::to_string(p->end) + ") is not inside axis " +
                                   std::to_string(p->axis) + " of " + DimsToString(*x));
  return Status::Ok();
}

class SliceKernel : public Kernel {
 public:
  explicit SliceKernel(const SliceParams& p) : p_(p) {}

  void Run(const KernelContext& ctx) override {
    const Shape& x = ctx.in[0].shape;
    const int axis = static_cast<int>(p_.axis);
    const int64_t outer = x.Product(0, axis), inner = x.Product(axis + 1, x.rank);
    const size_t row = static_cast<size_t>((p_.end - p_.start) * inner) * sizeof(float);
    const float* in = ctx.in[0].f32() + p_.start * inner;
    float* out = ctx.out[0].f32();
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(out + o * (p_.end - p_.start) * inner, in + o * x[axis] * inner, row);
  }

 private:
  SliceParams p_;
};

}  // namespace

Status InferSlice(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  if (node.inputs.size() != 1 || node.outputs.size() != 1 || node.inputs[0] < 0)
    return Status::InvalidArgument(NodeContext(node) + ": expects 1 input and 1 output");
  const TensorDesc& x = graph.tensors[node.inputs[0]];
  if (x.dtype != DType::kFloat32)
    return Status::Unsupported(NodeContext(node) + ": input must be float32, got " +
                               DTypeName(x.dtype));
  SliceParams p;
  EI_RETURN_IF_ERROR(ParseSlice(node, &x.dims, &p));
  (*outs)[0].dtype = DType::kFloat32;
  (*outs)[0].dims = x.dims;
  (*outs)[0].dims[p.axis] = p.end - p.start;
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateSlice(const Node& node, const Graph& graph) {
  (void)graph;
  SliceParams p;
  EI_RETURN_IF_ERROR(ParseSlice(node, nullptr, &p));
  return std::unique_ptr<Kernel>(new SliceKernel(p));
}

}  // namespace edgeinfer::rnn
