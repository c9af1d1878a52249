// Slice: the range [start, end) of one axis with a step (default 1; negative walks down from
// start to end exclusive, as ONNX). The importer lowers ONNX Slice and Gather with a literal
// index on float tensors to it: torch's `y[:, -1]` after an LSTM, `x[:, ::2]`, `x.flip(1)`.
// Step 1 is one memcpy per outer index.
#include <cstring>

#include "inference/op.h"
#include "inference/ops/rnn_internal.h"

namespace edgeinfer::rnn {

namespace {

struct SliceParams {
  int64_t axis = 0, start = 0, end = 0, step = 1;
  int64_t Count() const {
    return step > 0 ? (end - start + step - 1) / step : (start - end - step - 1) / -step;
  }
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
  const auto& values = node.attrs.values();
  auto step = values.find("step");
  if (step != values.end()) {
    if (!std::holds_alternative<int64_t>(step->second))
      return Status::InvalidArgument(NodeContext(node) + ": attribute 'step' must be an int");
    p->step = std::get<int64_t>(step->second);
  }
  if (p->step == 0 || p->step < -(int64_t{1} << 40) || p->step > (int64_t{1} << 40))
    return Status::InvalidArgument(NodeContext(node) + ": step must be non-zero");
  if (!x) return Status::Ok();
  const int64_t rank = static_cast<int64_t>(x->size());
  if (p->axis < 0 || p->axis >= rank)
    return Status::InvalidArgument(NodeContext(node) + ": axis " + std::to_string(p->axis) +
                                   " is out of range for " + DimsToString(*x));
  const int64_t len = (*x)[p->axis];
  if (len < 0)
    return Status::Unsupported(NodeContext(node) + ": cannot slice the batch axis of " +
                               DimsToString(*x));
  const bool inside = p->step > 0 ? p->start >= 0 && p->start < p->end && p->end <= len
                                  : p->end >= -1 && p->end < p->start && p->start < len;
  if (!inside)
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
    const int64_t count = p_.Count();
    const float* in = ctx.in[0].f32() + p_.start * inner;
    float* out = ctx.out[0].f32();
    if (p_.step == 1) {
      const size_t row = static_cast<size_t>(count * inner) * sizeof(float);
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(out + o * count * inner, in + o * x[axis] * inner, row);
      return;
    }
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < count; ++i, out += inner)
        std::memcpy(out, in + (o * x[axis] + i * p_.step) * inner,
                    static_cast<size_t>(inner) * sizeof(float));
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
  (*outs)[0].dims[p.axis] = p.Count();
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateSlice(const Node& node, const Graph& graph) {
  (void)graph;
  SliceParams p;
  EI_RETURN_IF_ERROR(ParseSlice(node, nullptr, &p));
  return std::unique_ptr<Kernel>(new SliceKernel(p));
}

}  // namespace edgeinfer::rnn
