// Dense: a fully connected layer on weights packed at convert time (inference/pack_weights.h) in
// the layout the micro-kernels read (inference/kernels/sgemm_packed.h).
//
//   inputs:  X [..., K] (rank >= 2; the leading dims, batch dims included, are flattened into M
//            and kept in the output), W constant float32 [P, K, 16] (panels), bias [n] optional
//   attrs:   n (int, the true output width: 16 (P - 1) < n <= 16 P), fused activation
//   output:  Y [..., n] = act(X W^T + bias)
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "inference/kernels/sgemm_packed.h"
#include "inference/op.h"
#include "inference/ops/activation.h"
#include "inference/quant/cpu_features.h"

namespace edgeinfer::dense {

namespace {

Status Error(const Node& node, const std::string& what) {
  return Status::InvalidArgument(NodeContext(node) + ": " + what);
}

// The attribute's value when present with type T; *present tells absent from mistyped.
template <class T>
const T* FindAttr(const Node& node, const char* name, bool* present) {
  const auto& values = node.attrs.values();
  auto it = values.find(name);
  *present = it != values.end();
  return *present ? std::get_if<T>(&it->second) : nullptr;
}

Status ParseActivation(const Node& node, Activation* out) {
  bool present;
  if (FindAttr<std::string>(node, "activation", &present) == nullptr && present)
    return Error(node, "attribute 'activation' must be a string");
  // Activation::FromAttrs falls back to defaults on a mistyped value; reject it instead.
  for (const char* name : {"activation_alpha", "activation_min", "activation_max"}) {
    if (FindAttr<float>(node, name, &present) == nullptr && present)
      return Error(node, std::string("attribute '") + name + "' must be a float");
  }
  Result<Activation> act = Activation::FromAttrs(node.attrs);
  if (!act.ok()) return act.status().WithContext(NodeContext(node));
  *out = *act;
  return Status::Ok();
}

struct DenseParams {
  int64_t n = 0;
  int64_t k = 0;
  Activation act;
  Dims out_dims;
};

Status ParseDense(const Node& node, const Graph& graph, DenseParams* p) {
  if (node.inputs.size() < 2 || node.inputs.size() > 3)
    return Error(node,
                 "takes 2 or 3 inputs (X, W, bias), got " + std::to_string(node.inputs.size()));
  if (node.outputs.size() != 1)
    return Error(node, "has 1 output, got " + std::to_string(node.outputs.size()));
  const TensorDesc* x = InputDesc(node, graph, 0);
  const TensorDesc* w = InputDesc(node, graph, 1);
  const TensorDesc* bias = InputDesc(node, graph, 2);
  if (x == nullptr || w == nullptr) return Error(node, "X and W are required");
  if (x->dtype != DType::kFloat32 || w->dtype != DType::kFloat32 ||
      (bias != nullptr && bias->dtype != DType::kFloat32))
    return Status::Unsupported(NodeContext(node) + ": X, W and bias must be float32");

  if (x->dims.size() < 2) return Error(node, "X must have rank >= 2, got " + DimsToString(x->dims));
  const int64_t k = x->dims.back();
  if (k <= 0)
    return Error(node,
                 "K (X's last dim) must be literal and positive, got " + DimsToString(x->dims));

  if (!w->is_constant()) return Error(node, "W must be a constant (packed at convert time)");
  const Dims& wd = w->dims;
  if (wd.size() != 3 || wd[0] <= 0 || wd[1] <= 0 || wd[2] != kDensePanelWidth)
    return Error(node, "W must be packed panels [P, K, 16], got " + DimsToString(wd));
  if (wd[1] != k)
    return Error(node, "K mismatch: X " + DimsToString(x->dims) +
                           " gives K = " + std::to_string(k) + ", W " + DimsToString(wd) +
                           " gives K = " + std::to_string(wd[1]));
  // ValidateGraph checks constant sizes before any infer; checked again for direct callers.
  // (Each dim < 2^31, so the product cannot overflow int64.)
  const int64_t panels = wd[0];
  if (wd[0] >= (int64_t{1} << 31) || wd[1] >= (int64_t{1} << 31) ||
      w->bytes != static_cast<size_t>(panels * k * kDensePanelWidth) * sizeof(float))
    return Error(
        node, "W holds " + std::to_string(w->bytes) + " bytes, not a float32 " + DimsToString(wd));

  bool present;
  const int64_t* n = FindAttr<int64_t>(node, "n", &present);
  if (!present) return Error(node, "attribute 'n' (the output width) is required");
  if (n == nullptr) return Error(node, "attribute 'n' must be an int");
  if (*n <= kDensePanelWidth * (panels - 1) || *n > kDensePanelWidth * panels)
    return Error(node, "n = " + std::to_string(*n) + " does not fit W " + DimsToString(wd) +
                           " (needs " + std::to_string(kDensePanelWidth * (panels - 1) + 1) + ".." +
                           std::to_string(kDensePanelWidth * panels) + ")");
  if (bias != nullptr && bias->dims != Dims{*n})
    return Error(node,
                 "bias must be [" + std::to_string(*n) + "], got " + DimsToString(bias->dims));
  EI_RETURN_IF_ERROR(ParseActivation(node, &p->act));

  p->n = *n;
  p->k = k;
  p->out_dims.assign(x->dims.begin(), x->dims.end() - 1);
  p->out_dims.push_back(*n);
  return Status::Ok();
}

class DenseKernel final : public Kernel {
 public:
  DenseKernel(const DenseParams& p, DenseFn fn) : n_(p.n), k_(p.k), act_(p.act), fn_(fn) {}

  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[0].shape;
    DenseArgs a;
    a.m = xs.Product(0, xs.rank - 1);
    a.n = n_;
    a.k = k_;
    a.x = ctx.in[0].f32();
    a.w = ctx.in[1].f32();
    a.bias = ctx.num_in > 2 ? ctx.in[2].f32() : nullptr;  // nullptr data when absent
    a.y = ctx.out[0].f32();
    a.act = act_.is_none() ? nullptr : &act_;
    fn_(a);
  }

 private:
  int64_t n_;
  int64_t k_;
  Activation act_;
  DenseFn fn_;
};

}  // namespace

Status InferDense(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  DenseParams p;
  EI_RETURN_IF_ERROR(ParseDense(node, graph, &p));
  (*outs)[0].dtype = DType::kFloat32;
  (*outs)[0].dims = p.out_dims;
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateDense(const Node& node, const Graph& graph) {
  DenseParams p;
  EI_RETURN_IF_ERROR(ParseDense(node, graph, &p));
  // The CPU level (and the EDGEINFER_CPU_LEVEL override) is read once, when the kernel is made.
  return std::unique_ptr<Kernel>(new DenseKernel(p, SelectDenseKernel(quant::BestCpuLevel())));
}

}  // namespace edgeinfer::dense
