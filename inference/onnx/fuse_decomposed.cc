// Ops that exporters write out as several nodes, recognized and replaced by one node:
//
//   exact GELU, torch's nn.GELU() at opsets < 20:
//     Div(x, sqrt 2) | Mul(x, 1/sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5)
//     (also Mul(0.5) before Mul(x), and x * 0.5 computed first)            => Gelu(x)
//   HardSwish, torch's nn.Hardswish() at opsets < 14:
//     Mul(x, HardSigmoid(x, alpha 1/6, beta 0.5))                          => HardSwish(x)
//   layer norm, torch's nn.LayerNorm at opsets < 17:
//     m = ReduceMean(x), d = Sub(x, m), v = ReduceMean(Pow(d, 2) | Mul(d, d)),
//     Div(d, Sqrt(Add(v, eps))) [-> Mul(gamma) [-> Add(beta)]]   => LayerNormalization(x, ...)
//     over trailing axes, with constant eps, gamma and beta
//   zero padding written out, as F.pad before a Conv (causal 1-D convolutions):
//     Conv(Pad(x, constant 0, spatial axes, within the kernel's span))     => Conv(x) with pads
//
// Gelu and HardSwish are activations FuseActivations can then fold into the Conv/Gemm before
// them; LayerNormalization computes the same two-pass statistics in one read of each row.
//
// Every intermediate must have exactly one reader and not be a graph output; operands may come
// in either order. The last node of a match is rewritten in place, which keeps the order
// topological (x is produced before the first node of the match).
#include <cmath>
#include <initializer_list>

#include "inference/onnx/graph_edit.h"
#include "inference/onnx/graph_passes.h"
#include "inference/op.h"

namespace edgeinfer {

namespace {

bool IsScalar(const Graph& g, int t, double want) {
  if (!IsFloatConstant(g, t)) return false;
  const std::vector<float> v = ConstantFloats(g, t);
  return v.size() == 1 && std::fabs(v[0] - want) <= 1e-6 * std::fabs(want);
}

struct Matcher {
  Graph* g;
  std::vector<int> producers, counts, reader;  // reader: the one node reading a tensor

  explicit Matcher(Graph* graph) : g(graph) {
    producers = Producers(*g);
    counts = ConsumerCounts(*g);
    reader.assign(g->tensors.size(), -1);
    for (size_t i = 0; i < g->nodes.size(); ++i)
      for (int t : g->nodes[i].inputs)
        if (t >= 0) reader[t] = static_cast<int>(i);
  }

  // The node producing t, if it has op `op` and t can be rewritten away; -1 otherwise.
  int From(int t, const char* op) const {
    const int p = FusableProducer(*g, producers, counts, t);
    return p >= 0 && g->nodes[p].op == op ? p : -1;
  }
  // The only reader of t if it has op `op` and t can be rewritten away; -1 otherwise.
  int Into(int t, const char* op) const {
    if (counts[t] != 1 || IsGraphOutput(*g, t) || reader[t] < 0) return -1;
    return g->nodes[reader[t]].op == op ? reader[t] : -1;
  }
  // For a binary node reading `t`: its other operand, or -1.
  int Other(int node, int t) const {
    const Node& n = g->nodes[node];
    if (n.inputs.size() != 2) return -1;
    if (n.inputs[0] == t) return n.inputs[1];
    return n.inputs[1] == t ? n.inputs[0] : -1;
  }
  // For a binary node: the operand that is not the scalar constant `c`, or -1.
  int NotScalar(int node, double c) const {
    const Node& n = g->nodes[node];
    if (n.inputs.size() != 2) return -1;
    if (IsScalar(*g, n.inputs[1], c)) return n.inputs[0];
    if (n.op != "Div" && IsScalar(*g, n.inputs[0], c)) return n.inputs[1];
    return -1;
  }
};

// Returns the final node of a GELU match around Erf node `e` (and sets *x and the nodes to
// drop), or -1.
int MatchGelu(const Matcher& m, int e, int* x, std::vector<int>* drop) {
  const Node& erf = m.g->nodes[e];
  if (erf.inputs.size() != 1) return -1;
  int scale = m.From(erf.inputs[0], "Div");
  *x = scale >= 0 ? m.NotScalar(scale, std::sqrt(2.0)) : -1;
  if (*x < 0) {
    scale = m.From(erf.inputs[0], "Mul");
    *x = scale >= 0 ? m.NotScalar(scale, std::sqrt(0.5)) : -1;
  }
  if (*x < 0) return -1;
  const int add = m.Into(erf.outputs[0], "Add");
  if (add < 0 || m.NotScalar(add, 1.0) != erf.outputs[0]) return -1;
  const int t2 = m.g->nodes[add].outputs[0];
  const int m1 = m.Into(t2, "Mul");
  if (m1 < 0) return -1;
  *drop = {scale, e, add, m1};
  const int other = m.Other(m1, t2);
  const int t3 = m.g->nodes[m1].outputs[0];
  if (other == *x || IsScalar(*m.g, other, 0.5)) {  // (x * t2) * 0.5 or (t2 * 0.5) * x
    const int m2 = m.Into(t3, "Mul");
    if (m2 < 0) return -1;
    const int last = m.Other(m2, t3);
    const bool ok = other == *x ? IsScalar(*m.g, last, 0.5) : last == *x;
    return ok ? m2 : -1;
  }
  const int half = m.From(other, "Mul");  // (x * 0.5) * t2
  if (half < 0 || m.NotScalar(half, 0.5) != *x) return -1;
  drop->back() = half;
  return m1;
}

// Returns the Mul of a HardSwish match around HardSigmoid node `h` (setting *x), or -1.
int MatchHardSwish(const Matcher& m, int h, int* x) {
  const Node& hs = m.g->nodes[h];
  if (hs.inputs.size() != 1) return -1;
  if (std::fabs(hs.attrs.GetFloat("alpha", 0.2f) - 1.f / 6.f) > 1e-6f ||
      hs.attrs.GetFloat("beta", 0.5f) != 0.5f)
    return -1;
  *x = hs.inputs[0];
  const int mul = m.Into(hs.outputs[0], "Mul");
  return mul >= 0 && m.Other(mul, hs.outputs[0]) == *x ? mul : -1;
}

// The scalar value of constant t, if it is one.
bool ScalarValue(const Graph& g, int t, float* v) {
  if (!IsFloatConstant(g, t)) return false;
  const std::vector<float> c = ConstantFloats(g, t);
  if (c.size() != 1) return false;
  *v = c[0];
  return true;
}

struct LayerNormMatch {
  int last = -1;  // the node rewritten into LayerNormalization
  int x = -1, scale = -1, bias = -1;
  int64_t axis = 0;
  float eps = 0.f;
  std::vector<int> drop;
};

// ReduceMean over the trailing axes [axis, rank) with keepdims=1; the axis or -1.
int64_t TrailingMeanAxis(const Graph& g, const Node& n) {
  if (n.op != "ReduceMean" || n.inputs.size() != 1 || n.attrs.GetInt("keepdims", 1) != 1) return -1;
  const std::vector<int64_t> axes = n.attrs.GetInts("axes");
  const int64_t rank = static_cast<int64_t>(g.tensors[n.inputs[0]].dims.size());
  if (axes.empty() || axes.back() != rank - 1) return -1;
  for (size_t i = 1; i < axes.size(); ++i)
    if (axes[i] != axes[i - 1] + 1) return -1;
  return axes[0];
}

// d's readers are exactly the squaring node and the Div (d x d counts as two reads).
bool SquaredOnce(const Matcher& m, int d, int* square) {
  const int div_reads = 1;
  for (size_t i = 0; i < m.g->nodes.size(); ++i) {
    const Node& n = m.g->nodes[i];
    const bool pow2 = n.op == "Pow" && n.inputs.size() == 2 && n.inputs[0] == d &&
                      IsScalar(*m.g, n.inputs[1], 2.0);
    const bool mul = n.op == "Mul" && n.inputs.size() == 2 && n.inputs[0] == d && n.inputs[1] == d;
    if (pow2 || mul) {
      *square = static_cast<int>(i);
      return m.counts[d] == (pow2 ? 1 : 2) + div_reads && !IsGraphOutput(*m.g, d);
    }
  }
  return false;
}

// The layer norm ending at the Div after ReduceMean node r1, or last = -1.
LayerNormMatch MatchLayerNorm(const Matcher& m, int r1) {
  LayerNormMatch ln;
  const Graph& g = *m.g;
  const Node& mean = g.nodes[r1];
  ln.axis = TrailingMeanAxis(g, mean);
  if (ln.axis < 0) return ln;
  ln.x = mean.inputs[0];
  const int sub = m.Into(mean.outputs[0], "Sub");
  if (sub < 0 || g.nodes[sub].inputs[0] != ln.x) return ln;
  const int d = g.nodes[sub].outputs[0];
  int square = -1;
  if (!SquaredOnce(m, d, &square)) return ln;
  const int r2 = m.Into(g.nodes[square].outputs[0], "ReduceMean");
  if (r2 < 0 || TrailingMeanAxis(g, g.nodes[r2]) != ln.axis) return ln;
  const int add = m.Into(g.nodes[r2].outputs[0], "Add");
  if (add < 0) return ln;
  const int other = m.Other(add, g.nodes[r2].outputs[0]);
  if (other < 0 || !ScalarValue(g, other, &ln.eps) || !(ln.eps >= 0.f)) return ln;
  const int sqrt = m.Into(g.nodes[add].outputs[0], "Sqrt");
  if (sqrt < 0) return ln;
  const int div = m.Into(g.nodes[sqrt].outputs[0], "Div");
  if (div < 0 || g.nodes[div].inputs[0] != d) return ln;
  ln.drop = {r1, sub, square, r2, add, sqrt};
  ln.last = div;
  // The affine after it, when its constants have the normalized dims.
  const int mul = m.Into(g.nodes[div].outputs[0], "Mul");
  const int gamma = mul >= 0 ? m.Other(mul, g.nodes[div].outputs[0]) : -1;
  if (gamma < 0 || !IsFloatConstant(g, gamma)) return ln;
  ln.drop.push_back(div);
  ln.last = mul;
  ln.scale = gamma;
  const int plus = m.Into(g.nodes[mul].outputs[0], "Add");
  const int beta = plus >= 0 ? m.Other(plus, g.nodes[mul].outputs[0]) : -1;
  if (beta < 0 || !IsFloatConstant(g, beta)) return ln;
  ln.drop.push_back(mul);
  ln.last = plus;
  ln.bias = beta;
  return ln;
}

// The LayerNormalization node for a match, if the op accepts it with the same output dims.
bool BuildLayerNorm(Graph* g, const LayerNormMatch& ln, Node* out) {
  Node n;
  n.name = g->nodes[ln.last].name;
  n.op = "LayerNormalization";
  n.outputs = g->nodes[ln.last].outputs;
  n.attrs.Set("axis", ln.axis);
  n.attrs.Set("epsilon", ln.eps);
  int scale = ln.scale;
  if (scale < 0) {
    const Dims& x = g->tensors[ln.x].dims;
    const Dims row(x.begin() + ln.axis, x.end());
    if (HasBatch(row)) return false;
    int64_t count = 1;
    for (int64_t d : row) count *= d;
    scale = AddFloatConstant(g, UniqueTensorName(*g, n.name + "_scale"), row,
                             std::vector<float>(count, 1.f));
  }
  n.inputs = {ln.x, scale};
  if (ln.bias >= 0) n.inputs.push_back(ln.bias);
  std::vector<TensorDesc> outs(1);
  if (!FindOp(n.op)->infer(n, *g, &outs).ok()) return false;
  if (outs[0].dims != g->tensors[n.outputs[0]].dims) return false;
  *out = std::move(n);
  return true;
}

// Pad node `pad` (constant 0, spatial axes only, no cropping) read only by a Conv as its input:
// its pads move into the Conv's. Only while every pad stays below the kernel's span, the
// padding a Conv itself would ever need.
bool FoldPadIntoConv(Graph* g, const Matcher& m, int pad) {
  const Node& p = g->nodes[pad];
  if (p.inputs.size() != 1 || p.attrs.GetString("mode", "constant") != "constant" ||
      p.attrs.GetFloat("value", 0.f) != 0.f)
    return false;
  const int conv = m.Into(p.outputs[0], "Conv");
  if (conv < 0 || g->nodes[conv].inputs[0] != p.outputs[0]) return false;
  Node& c = g->nodes[conv];
  const std::vector<int64_t> pads = p.attrs.GetInts("pads");
  const size_t rank = pads.size() / 2, s = rank >= 2 ? rank - 2 : 0;
  std::vector<int64_t> conv_pads = c.attrs.GetInts("pads", std::vector<int64_t>(2 * s, 0));
  const std::vector<int64_t> kernel = c.attrs.GetInts("kernel_shape");
  const std::vector<int64_t> dil = c.attrs.GetInts("dilations", std::vector<int64_t>(s, 1));
  if (s == 0 || conv_pads.size() != 2 * s || kernel.size() != s || dil.size() != s) return false;
  if (pads[0] != 0 || pads[1] != 0 || pads[rank] != 0 || pads[rank + 1] != 0) return false;
  for (size_t i = 0; i < s; ++i) {
    const int64_t begin = pads[2 + i], end = pads[rank + 2 + i];
    const int64_t span = (kernel[i] - 1) * dil[i] + 1;
    if (begin < 0 || end < 0) return false;
    conv_pads[i] += begin;
    conv_pads[i + s] += end;
    if (conv_pads[i] >= span || conv_pads[i + s] >= span) return false;
  }
  c.inputs[0] = p.inputs[0];
  c.attrs.Set("pads", conv_pads);
  return true;
}

// Turns node `last` into op(x) and marks `drop` removed.
void Rewrite(Graph* g, int last, const char* op, int x, const std::vector<int>& drop,
             std::vector<bool>* removed) {
  Node& n = g->nodes[last];
  n.op = op;
  n.inputs = {x};
  n.attrs = Attrs();
  for (int d : drop) (*removed)[d] = true;
}

}  // namespace

Status FuseDecomposedOps(Graph* g) {
  const Matcher m(g);
  std::vector<bool> removed(g->nodes.size(), false);
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    if (removed[i]) continue;
    const int node = static_cast<int>(i);
    int x = -1;
    std::vector<int> drop;
    if (g->nodes[i].op == "Erf") {
      const int last = MatchGelu(m, node, &x, &drop);
      bool free = last >= 0 && !removed[last];
      for (int d : drop) free = free && !removed[d];
      if (free) Rewrite(g, last, "Gelu", x, drop, &removed);
    } else if (g->nodes[i].op == "HardSigmoid") {
      const int last = MatchHardSwish(m, node, &x);
      if (last >= 0 && !removed[last]) Rewrite(g, last, "HardSwish", x, {node}, &removed);
    } else if (g->nodes[i].op == "Pad") {
      if (FoldPadIntoConv(g, m, node)) removed[i] = true;
    } else if (g->nodes[i].op == "ReduceMean") {
      const LayerNormMatch ln = MatchLayerNorm(m, node);
      bool free = ln.last >= 0 && !removed[ln.last];
      for (int d : ln.drop) free = free && !removed[d];
      Node fused;
      if (!free || !BuildLayerNorm(g, ln, &fused)) continue;
      g->nodes[ln.last] = std::move(fused);
      for (int d : ln.drop) removed[d] = true;
    }
  }
  EraseNodes(g, removed);
  return Status::Ok();
}

}  // namespace edgeinfer
