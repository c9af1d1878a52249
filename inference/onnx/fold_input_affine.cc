// Folding a scalar affine on a fully connected layer's input into its weights and bias:
//   Gemm(Reshape?((x - m) / s)) = Gemm'(Reshape?(x)),  B' = alpha * B / s,
//   C' = beta * C - alpha * (m / s) * rowsum(B).
// Input normalisation written into the model ((pixels - mean) / std) is the usual case. Besides
// saving two passes over the input, it keeps the raw input's sign: pixels in [0, 1] quantize
// to non-negative int8 codes, which the AVX2 int8 kernel multiplies a step faster than signed
// ones (inference/quant/qgemm_avx2.cc). Only scalar constants fold: a per-element constant would
// have to follow the Reshape's index mapping, and a per-channel one before a Conv cannot fold
// past the zero padding.
#include <cmath>
#include <optional>
#include <string_view>

#include "inference/onnx/graph_edit.h"
#include "inference/onnx/graph_passes.h"

namespace edgeinfer {
namespace {

// y = scale * x + shift.
struct ScalarAffine {
  double scale = 1, shift = 0;
};

// Applies node `n` (x op c, or c op x for Add/Mul/Sub) after `a`; false when `n` is not an
// elementwise op with one scalar float constant operand, or the result would not be finite.
bool Compose(const Graph& g, const Node& n, int x, ScalarAffine* a) {
  const int c = n.inputs[0] == x ? n.inputs[1] : n.inputs[0];
  if (!IsFloatConstant(g, c) || g.tensors[c].dims.size() > g.tensors[x].dims.size()) return false;
  const std::vector<float> v = ConstantFloats(g, c);
  if (v.size() != 1) return false;
  const double k = v[0];
  const bool x_first = n.inputs[0] == x;
  if (n.op == "Add") {
    a->shift += k;
  } else if (n.op == "Sub") {
    if (x_first) {
      a->shift -= k;
    } else {  // k - x
      a->scale = -a->scale, a->shift = k - a->shift;
    }
  } else if (n.op == "Mul") {
    a->scale *= k, a->shift *= k;
  } else if (n.op == "Div" && x_first && k != 0) {
    a->scale /= k, a->shift /= k;
  } else {
    return false;
  }
  return std::isfinite(a->scale) && std::isfinite(a->shift) && a->scale != 0;
}

bool IsAffineOp(std::string_view op) {
  return op == "Add" || op == "Sub" || op == "Mul" || op == "Div";
}

// Walks up from `t` (the Gemm's A) through an optional Reshape/Flatten and a chain of scalar
// affine nodes, each output read by this chain alone. Returns the chain's input and fills *a
// and *reshape (-1 when none); nullopt when there is no affine to fold.
std::optional<int> AffineChainInput(const Graph& g, const std::vector<int>& producers,
                                    const std::vector<int>& consumers, int t, ScalarAffine* a,
                                    int* reshape) {
  *reshape = -1;
  int p = producers[t];
  if (p >= 0 && consumers[t] == 1 && !IsGraphOutput(g, t) &&
      (g.nodes[p].op == "Reshape" || g.nodes[p].op == "Flatten")) {
    *reshape = p;
    t = g.nodes[p].inputs[0];
  }
  std::vector<int> chain;  // from the Gemm side up
  for (p = producers[t]; p >= 0 && consumers[t] == 1 && !IsGraphOutput(g, t); p = producers[t]) {
    const Node& n = g.nodes[p];
    if (!IsAffineOp(n.op) || n.inputs.size() != 2 || !n.attrs.GetString("activation").empty())
      break;
    const int x = IsFloatConstant(g, n.inputs[0]) ? n.inputs[1] : n.inputs[0];
    if (IsFloatConstant(g, x) || g.tensors[x].dims != g.tensors[t].dims) break;
    chain.push_back(p);
    t = x;
  }
  if (chain.empty()) return std::nullopt;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {  // in execution order
    const Node& n = g.nodes[*it];
    const int x = IsFloatConstant(g, n.inputs[0]) ? n.inputs[1] : n.inputs[0];
    if (!Compose(g, n, x, a)) return std::nullopt;
  }
  return t;
}

// Rewrites Gemm `gemm` (constant B [N, K], transB = 1) for input y = a.scale * x + a.shift.
bool FoldInto(Graph* g, Node* gemm, const ScalarAffine& a) {
  const int b = gemm->inputs[1];
  if (!IsFloatConstant(*g, b) || g->tensors[b].dims.size() != 2) return false;
  const int64_t n = g->tensors[b].dims[0], k = g->tensors[b].dims[1];
  std::vector<float> w = ConstantFloats(*g, b);
  std::vector<float> bias(n, 0.f);
  const int c = gemm->inputs.size() > 2 ? gemm->inputs[2] : -1;
  if (c >= 0) {
    if (!IsFloatConstant(*g, c)) return false;
    std::vector<float> cv = ConstantFloats(*g, c);
    if (cv.size() != 1 && cv.size() != static_cast<size_t>(n)) return false;
    for (int64_t j = 0; j < n; ++j) bias[j] = cv[cv.size() == 1 ? 0 : j];
  }
  const double alpha = gemm->attrs.GetFloat("alpha", 1.f), beta = gemm->attrs.GetFloat("beta", 1.f);
  for (int64_t j = 0; j < n; ++j) {
    double row = 0;
    for (int64_t i = 0; i < k; ++i) row += w[j * k + i];
    bias[j] = static_cast<float>(beta * bias[j] + alpha * a.shift * row);
    for (int64_t i = 0; i < k; ++i)
      w[j * k + i] = static_cast<float>(alpha * a.scale * w[j * k + i]);
  }
  gemm->inputs[1] = AddFloatConstant(g, UniqueTensorName(*g, g->tensors[b].name + "_affine"),
                                     g->tensors[b].dims, w);
  if (gemm->inputs.size() < 3) gemm->inputs.resize(3, -1);
  gemm->inputs[2] =
      AddFloatConstant(g, UniqueTensorName(*g, gemm->name + ".bias_affine"), {n}, bias);
  gemm->attrs.Set("alpha", 1.f);
  gemm->attrs.Set("beta", 1.f);
  return true;
}

}  // namespace

Status FoldInputAffine(Graph* g) {
  const std::vector<int> producers = Producers(*g);
  const std::vector<int> consumers = ConsumerCounts(*g);
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    Node& gemm = g->nodes[i];
    if (gemm.op != "Gemm" || gemm.inputs.size() < 2 || gemm.attrs.GetInt("transA", 0) != 0 ||
        gemm.attrs.GetInt("transB", 0) != 1)
      continue;
    ScalarAffine a;
    int reshape = -1;
    auto x = AffineChainInput(*g, producers, consumers, gemm.inputs[0], &a, &reshape);
    if (!x || !FoldInto(g, &g->nodes[i], a)) continue;
    // The affine nodes lose their only reader and go with RemoveDeadCode.
    if (reshape >= 0)
      g->nodes[reshape].inputs[0] = *x;
    else
      g->nodes[i].inputs[0] = *x;
  }
  RemoveDeadCode(g);
  return Status::Ok();
}

}  // namespace edgeinfer
