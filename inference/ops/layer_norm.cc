// LayerNormalization (ONNX opset 17): each row of X [prod(d<axis), prod(d>=axis)] becomes
// (x - mean) / sqrt(var + epsilon) * scale + bias. Scale and bias hold one value per element of
// the row (dims X[axis:], possibly with leading 1s) or a single value. Outputs: Y, and
// optionally each row's Mean and InvStdDev (dims X[:axis] followed by 1s).
#include <cmath>

#include "inference/kernels/vectorize.h"
#include "inference/ops/math_ops_internal.h"
#include "inference/ops/shape_util.h"

namespace edgeinfer::math_ops {

using basic_ops::GetAttr;
using basic_ops::Invalid;

namespace {

// Sum of a row through 8 independent lanes, so that it vectorizes without -ffast-math.
template <class F>
[[gnu::always_inline]] inline float LaneSum(int64_t n, F f) {
  constexpr int kLanes = 8;
  float lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] += f(i + j);
  float sum = 0.f;
  for (float l : lane) sum += l;
  for (; i < n; ++i) sum += f(i);
  return sum;
}

// Normalizes `rows` rows of n; writes each row's mean and 1/std where asked. The variance is
// computed from the deviations (a second pass over a row that is in cache), which keeps
// precision when the mean is large next to the spread.
EI_KERNEL_CLONES
void NormalizeRows(const float* x, float* y, int64_t rows, int64_t n, float eps, const float* scale,
                   int64_t scale_step, const float* bias, int64_t bias_step, float* mean_out,
                   float* inv_std_out) {
  for (int64_t r = 0; r < rows; ++r, x += n, y += n) {
    const float mean = LaneSum(n, [x](int64_t i) { return x[i]; }) / static_cast<float>(n);
    const float sq = LaneSum(n, [x, mean](int64_t i) { return (x[i] - mean) * (x[i] - mean); });
    const float inv = 1.f / std::sqrt(sq / static_cast<float>(n) + eps);
    if (bias) {
      for (int64_t i = 0; i < n; ++i)
        y[i] = (x[i] - mean) * inv * scale[i * scale_step] + bias[i * bias_step];
    } else {
      for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * inv * scale[i * scale_step];
    }
    if (mean_out) mean_out[r] = mean;
    if (inv_std_out) inv_std_out[r] = inv;
  }
}

class LayerNormKernel : public Kernel {
 public:
  LayerNormKernel(int axis, float eps) : axis_(axis), eps_(eps) {}

  void Run(const KernelContext& ctx) override {
    const Shape& s = ctx.in[0].shape;
    const int64_t n = s.Product(axis_, s.rank);
    if (n == 0) return;
    const int64_t rows = s.Product(0, axis_);
    const float* scale = ctx.in[1].f32();
    const int64_t scale_step = ctx.in[1].shape.NumElements() == 1 ? 0 : 1;
    const bool has_bias = ctx.num_in > 2 && ctx.in[2].data != nullptr;
    const float* bias = has_bias ? ctx.in[2].f32() : nullptr;
    const int64_t bias_step = has_bias && ctx.in[2].shape.NumElements() == 1 ? 0 : 1;
    const float* x = ctx.in[0].f32();
    float* y = ctx.out[0].f32();
    float* mean = ctx.num_out > 1 ? ctx.out[1].f32() : nullptr;
    float* inv_std = ctx.num_out > 2 ? ctx.out[2].f32() : nullptr;
    NormalizeRows(x, y, rows, n, eps_, scale, scale_step, bias, bias_step, mean, inv_std);
  }

 private:
  int axis_;
  float eps_;
};

// Scale or bias: a single value, or dims that broadcast to exactly X[axis:].
Status CheckParam(const Node& node, const TensorDesc& p, const Dims& row) {
  SymbolicCount count;
  EI_RETURN_IF_ERROR(CountElements(p.dims, &count));  // (validated: cannot fail)
  if (count.batch_power == 0 && count.coeff == 1) return Status::Ok();
  // Leading 1s beyond the row's rank broadcast away ([1, 3, 5] over a [3, 5] row).
  size_t lead = 0;
  while (lead < p.dims.size() && p.dims.size() - lead > row.size() && p.dims[lead] == 1) ++lead;
  const Dims q(p.dims.begin() + lead, p.dims.end());
  Dims b;
  const bool fits = q.size() <= row.size() && BroadcastDims(row, q, &b).ok() && b == row &&
                    count.batch_power == 0 && count.coeff == NumElements(row, 1);
  if (!fits) {
    return Status::Unsupported(NodeContext(node) + ": '" + p.name + "' " + DimsToString(p.dims) +
                               " must have the normalized dims " + DimsToString(row) +
                               " or be a single value");
  }
  return Status::Ok();
}

}  // namespace

Status InferLayerNorm(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  if (node.outputs.empty() || node.outputs.size() > 3 || outs->size() != node.outputs.size())
    return Invalid(node,
                   "has " + std::to_string(node.outputs.size()) + " outputs, expected 1 to 3");
  // The shared check wants one output: validate the inputs through a one-output view.
  Node y_only = node;
  y_only.outputs.resize(1);
  std::vector<TensorDesc> y_out(1);
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(basic_ops::CheckFloatInputs(y_only, graph, y_out, 2, 3, &in));
  const Dims& d = in[0]->dims;
  if (d.empty()) return Invalid(node, "X must have rank >= 1");
  int64_t axis = 0;
  float eps = 0.f;
  EI_RETURN_IF_ERROR(GetAttr<int64_t>(node, "axis", 0, &axis, /*required=*/true));
  EI_RETURN_IF_ERROR(GetAttr<float>(node, "epsilon", 1e-5f, &eps));
  if (axis < 0 || axis >= static_cast<int64_t>(d.size()))
    return Invalid(
        node, "attribute 'axis' " + std::to_string(axis) + " out of range for " + DimsToString(d));
  const Dims row(d.begin() + axis, d.end());
  if (HasBatch(row)) {
    return Status::Unsupported(NodeContext(node) + ": normalizing over axis " +
                               std::to_string(axis) + " of " + DimsToString(d) +
                               " mixes the samples of a batch; the axis must come after it");
  }
  for (size_t i = 1; i < in.size(); ++i) EI_RETURN_IF_ERROR(CheckParam(node, *in[i], row));
  basic_ops::SetOutput(outs, d);
  Dims stats(d.begin(), d.begin() + axis);
  stats.resize(d.size(), 1);
  for (size_t i = 1; i < outs->size(); ++i) {
    (*outs)[i].dtype = DType::kFloat32;
    (*outs)[i].dims = stats;
  }
  return Status::Ok();
}

KernelResult CreateLayerNorm(const Node& node, const Graph&) {
  return std::unique_ptr<Kernel>(new LayerNormKernel(static_cast<int>(node.attrs.GetInt("axis")),
                                                     node.attrs.GetFloat("epsilon", 1e-5f)));
}

}  // namespace edgeinfer::math_ops
