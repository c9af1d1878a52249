// Softmax and LogSoftmax, numerically stable (the row maximum is subtracted before exp).
//
// Both modes reduce to normalizing a [outer, n, inner] view: `legacy=0` (opset 13) normalizes
// along `axis` (n = d[axis], inner = the dims after it); `legacy=1` (opset < 13) coerces the input
// to 2-D at `axis` (n = prod(d >= axis), inner = 1).
#include <algorithm>
#include <cmath>

#include "inference/ops/basic_ops_internal.h"

namespace edgeinfer::basic_ops {

namespace {

struct SoftmaxView {
  int64_t outer, n, inner;
};

// Contiguous rows (axis last, or legacy mode).
void SoftmaxRow(const float* x, float* y, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - m);
    sum += y[i];
  }
  const float scale = 1.f / sum;
  for (int64_t i = 0; i < n; ++i) y[i] *= scale;
}

void LogSoftmaxRow(const float* x, float* y, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = x[i] - m;
    sum += std::exp(y[i]);
  }
  const float log_sum = std::log(sum);
  for (int64_t i = 0; i < n; ++i) y[i] -= log_sum;
}

// A non-last axis: an [n, inner] block normalized along n. Rather than walking each column with
// stride `inner`, every pass sweeps whole contiguous rows and keeps one running max and sum per
// column (in scratch), so the loops stay contiguous and vectorizable.
void SoftmaxBlock(const float* x, float* y, int64_t n, int64_t inner, bool log, float* max,
                  float* sum) {
  std::copy(x, x + inner, max);
  for (int64_t j = 1; j < n; ++j) {
    const float* row = x + j * inner;
    for (int64_t i = 0; i < inner; ++i) max[i] = std::max(max[i], row[i]);
  }
  std::fill(sum, sum + inner, 0.f);
  for (int64_t j = 0; j < n; ++j) {
    const float* xr = x + j * inner;
    float* yr = y + j * inner;
    for (int64_t i = 0; i < inner; ++i) {
      const float shifted = xr[i] - max[i];
      const float e = std::exp(shifted);
      sum[i] += e;
      yr[i] = log ? shifted : e;
    }
  }
  for (int64_t i = 0; i < inner; ++i) sum[i] = log ? std::log(sum[i]) : 1.f / sum[i];
  for (int64_t j = 0; j < n; ++j) {
    float* yr = y + j * inner;
    for (int64_t i = 0; i < inner; ++i) yr[i] = log ? yr[i] - sum[i] : yr[i] * sum[i];
  }
}

class SoftmaxKernel : public Kernel {
 public:
  SoftmaxKernel(int axis, bool legacy, bool log) : axis_(axis), legacy_(legacy), log_(log) {}

  size_t ScratchBytes(std::span<const Shape> in, std::span<const Shape>) const override {
    const SoftmaxView v = View(in[0]);
    return v.inner > 1 ? 2 * static_cast<size_t>(v.inner) * sizeof(float) : 0;
  }

  void Run(const KernelContext& ctx) override {
    const Shape& shape = ctx.in[0].shape;
    if (shape.NumElements() == 0) return;
    const SoftmaxView v = View(shape);
    const float* x = ctx.in[0].f32();
    float* y = ctx.out[0].f32();
    const int64_t block = v.n * v.inner;
    for (int64_t o = 0; o < v.outer; ++o) {
      const float* xb = x + o * block;
      float* yb = y + o * block;
      if (v.inner > 1) {
        float* scratch = static_cast<float*>(ctx.scratch);
        SoftmaxBlock(xb, yb, v.n, v.inner, log_, scratch, scratch + v.inner);
      } else if (log_) {
        LogSoftmaxRow(xb, yb, v.n);
      } else {
        SoftmaxRow(xb, yb, v.n);
      }
    }
  }

 private:
  SoftmaxView View(const Shape& s) const {
    if (legacy_) return {s.Product(0, axis_), s.Product(axis_, s.rank), 1};
    return {s.Product(0, axis_), s.d[axis_], s.Product(axis_ + 1, s.rank)};
  }

  int axis_;
  bool legacy_;
  bool log_;
};

// ONNX's default axis: -1 from opset 13, 1 before.
int64_t DefaultAxis(int64_t legacy) { return legacy ? 1 : -1; }

KernelResult CreateSoftmaxKernel(const Node& node, const Graph& graph, bool log) {
  const TensorDesc* x = InputDesc(node, graph, 0);
  if (!x) return Invalid(node, "input 0 is missing");
  const int64_t legacy = node.attrs.GetInt("legacy", 0);
  int64_t axis = 0;
  EI_RETURN_IF_ERROR(
      NormalizeAxis(node, node.attrs.GetInt("axis", DefaultAxis(legacy)), x->dims.size(), &axis));
  return std::unique_ptr<Kernel>(new SoftmaxKernel(static_cast<int>(axis), legacy != 0, log));
}

}  // namespace

Status InferSoftmax(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  std::vector<const TensorDesc*> in;
  EI_RETURN_IF_ERROR(CheckFloatInputs(node, graph, *outs, 1, 1, &in));
  int64_t legacy = 0, axis = 0;
  EI_RETURN_IF_ERROR(GetAttr<int64_t>(node, "legacy", 0, &legacy));
  if (legacy != 0 && legacy != 1) {
    return Invalid(node, "attribute 'legacy' must be 0 or 1, got " + std::to_string(legacy));
  }
  EI_RETURN_IF_ERROR(GetAttr<int64_t>(node, "axis", DefaultAxis(legacy), &axis));
  EI_RETURN_IF_ERROR(NormalizeAxis(node, axis, in[0]->dims.size(), &axis));
  SetOutput(outs, in[0]->dims);
  return Status::Ok();
}

KernelResult CreateSoftmax(const Node& node, const Graph& graph) {
  return CreateSoftmaxKernel(node, graph, /*log=*/false);
}
KernelResult CreateLogSoftmax(const Node& node, const Graph& graph) {
  return CreateSoftmaxKernel(node, graph, /*log=*/true);
}

}  // namespace edgeinfer::basic_ops
