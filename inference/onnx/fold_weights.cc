// Folding per-channel affine ops into the weights and bias of the Conv or Gemm before them:
// BatchNormalization (scale and shift) and Add/Sub of a constant vector (shift).
#include <cmath>
#include <optional>

#include "inference/onnx/graph_edit.h"
#include "inference/onnx/graph_passes.h"

namespace edgeinfer {

namespace {

// y = x * scale[c] + shift[c] along the channel axis.
struct ChannelAffine {
  std::vector<float> scale;
  std::vector<float> shift;
};

// The values of constant `t` as one per channel, when `t` broadcast against `out` varies only
// along `axis` (with `channels` entries) or not at all. nullopt otherwise.
std::optional<std::vector<float>> PerChannel(const Graph& g, int t, const Dims& out, size_t axis,
                                             int64_t channels) {
  if (!IsFloatConstant(g, t)) return std::nullopt;
  const Dims& d = g.tensors[t].dims;
  if (d.size() > out.size()) return std::nullopt;
  size_t pad = out.size() - d.size();
  for (size_t i = 0; i < d.size(); ++i) {
    bool ok = d[i] == 1 || (i + pad == axis && d[i] == channels);
    if (!ok) return std::nullopt;
  }
  std::vector<float> v = ConstantFloats(g, t);
  if (v.size() == 1) v.assign(channels, v[0]);
  return v;
}

std::optional<ChannelAffine> ReadBatchNorm(const Graph& g, const Node& bn) {
  if (bn.inputs.size() != 5 || !bn.attrs.GetString("activation").empty()) return std::nullopt;
  std::vector<float> p[4];  // scale, B, mean, var
  for (int i = 0; i < 4; ++i) {
    if (!IsFloatConstant(g, bn.inputs[i + 1]) || g.tensors[bn.inputs[i + 1]].dims.size() != 1)
      return std::nullopt;
    p[i] = ConstantFloats(g, bn.inputs[i + 1]);
    if (p[i].size() != p[0].size()) return std::nullopt;
  }
  double eps = bn.attrs.GetFloat("epsilon", 1e-5f);
  ChannelAffine a;
  for (size_t c = 0; c < p[0].size(); ++c) {
    double s = p[0][c] / std::sqrt(static_cast<double>(p[3][c]) + eps);
    a.scale.push_back(static_cast<float>(s));
    a.shift.push_back(static_cast<float>(p[1][c] - p[2][c] * s));
  }
  return a;
}

// Multiplies row r of constant `t` (rows = dims[0]) by scale[r]; returns the new constant.
int ScaleRows(Graph* g, int t, const std::vector<float>& scale) {
  std::vector<float> w = ConstantFloats(*g, t);
  size_t row = w.size() / scale.size();
  for (size_t i = 0; i < w.size(); ++i) w[i] *= scale[i / row];
  Dims dims = g->tensors[t].dims;
  return AddFloatConstant(g, UniqueTensorName(*g, g->tensors[t].name + "_folded"), dims, w);
}

int AddVector(Graph* g, const std::string& base, const std::vector<float>& v) {
  return AddFloatConstant(g, UniqueTensorName(*g, base), {static_cast<int64_t>(v.size())}, v);
}

// Conv and Gemm both read their weights (rows = output channels) at input 1 and their bias
// at input 2.
constexpr int kWeightInput = 1;
constexpr int kBiasInput = 2;

// The current bias per output channel (Gemm's beta already applied), if folding may rewrite it.
struct Affine {
  std::vector<float> bias;
};

// The number of output channels of constant weights `t` (their dims[0]); -1 if not usable.
int64_t WeightRows(const Graph& g, int t) {
  if (!IsFloatConstant(g, t) || g.tensors[t].dims.empty()) return -1;
  return g.tensors[t].dims[0];
}

std::optional<Affine> ConvAffine(const Graph& g, const Node& conv) {
  int64_t m = conv.inputs.size() > kWeightInput ? WeightRows(g, conv.inputs[kWeightInput]) : -1;
  if (m < 0) return std::nullopt;
  Affine a;
  int b = conv.inputs.size() > kBiasInput ? conv.inputs[kBiasInput] : -1;
  if (b < 0) {
    a.bias.assign(m, 0.f);
    return a;
  }
  if (!IsFloatConstant(g, b) || g.tensors[b].dims != Dims{m}) return std::nullopt;
  a.bias = ConstantFloats(g, b);
  return a;
}

std::optional<Affine> GemmAffine(const Graph& g, const Node& gemm) {
  int64_t n = gemm.inputs.size() > kWeightInput ? WeightRows(g, gemm.inputs[kWeightInput]) : -1;
  if (n < 0 || gemm.attrs.GetInt("transB", 0) != 1) return std::nullopt;
  Affine a;
  int c = gemm.inputs.size() > kBiasInput ? gemm.inputs[kBiasInput] : -1;
  if (c < 0) {
    a.bias.assign(n, 0.f);
    return a;
  }
  // C broadcasts to [M, N]; only a per-N (or scalar) C is a bias we can fold into.
  auto v = PerChannel(g, c, {1, n}, 1, n);
  if (!v) return std::nullopt;
  float beta = gemm.attrs.GetFloat("beta", 1.f);
  for (float& x : *v) x *= beta;
  a.bias = std::move(*v);
  return a;
}

std::optional<Affine> HostAffine(const Graph& g, const Node& host) {
  if (!host.attrs.GetString("activation").empty()) return std::nullopt;
  if (host.op == "Conv") return ConvAffine(g, host);
  if (host.op == "Gemm") return GemmAffine(g, host);
  return std::nullopt;
}

// Writes the new bias (and marks Gemm's beta as already applied).
void SetBias(Graph* g, Node* host, const Affine& a) {
  int b = AddVector(g, host->name + ".bias_folded", a.bias);
  if (host->inputs.size() <= kBiasInput) host->inputs.resize(kBiasInput + 1, -1);
  host->inputs[kBiasInput] = b;
  if (host->op == "Gemm") host->attrs.Set("beta", 1.f);
}

// The axis of a host's output that indexes its output channels.
size_t ChannelAxis(const Graph& g, const Node& host) {
  return host.op == "Conv" ? 1 : g.tensors[host.outputs[0]].dims.size() - 1;
}

bool FoldOneBatchNorm(Graph* g, Node* host, const Node& bn) {
  auto a = HostAffine(*g, *host);
  auto bnp = ReadBatchNorm(*g, bn);
  // Batch norm normalizes axis 1: for a Gemm that is its N only when the output is 2-D.
  if (!a || !bnp || a->bias.empty() || a->bias.size() != bnp->scale.size() ||
      ChannelAxis(*g, *host) != 1)
    return false;
  for (size_t c = 0; c < a->bias.size(); ++c)
    a->bias[c] = a->bias[c] * bnp->scale[c] + bnp->shift[c];
  host->inputs[kWeightInput] = ScaleRows(g, host->inputs[kWeightInput], bnp->scale);
  SetBias(g, host, *a);
  return true;
}

bool FoldOneBiasAdd(Graph* g, Node* host, const Node& add, int constant) {
  auto a = HostAffine(*g, *host);
  if (!a) return false;
  const Dims& out = g->tensors[host->outputs[0]].dims;
  auto v = PerChannel(*g, constant, out, ChannelAxis(*g, *host), a->bias.size());
  if (!v) return false;
  float sign = add.op == "Sub" ? -1.f : 1.f;
  for (size_t c = 0; c < a->bias.size(); ++c) a->bias[c] += sign * (*v)[c];
  SetBias(g, host, *a);
  return true;
}

// The non-constant operand of an Add/Sub whose other operand is constant (x + c, c + x,
// x - c), with the constant's index in *constant; -1 if none.
int BiasOperand(const Graph& g, const Node& n, int* constant) {
  if (n.inputs.size() != 2) return -1;
  if (IsFloatConstant(g, n.inputs[1]) && !IsFloatConstant(g, n.inputs[0])) {
    *constant = n.inputs[1];
    return n.inputs[0];
  }
  if (n.op == "Add" && IsFloatConstant(g, n.inputs[0]) && !IsFloatConstant(g, n.inputs[1])) {
    *constant = n.inputs[0];
    return n.inputs[1];
  }
  return -1;
}

// Runs `fold(host, node)` for every node of type `op` whose input `x` comes from a fusable
// producer; on success the producer takes over the node's output and the node goes.
template <class Fold>
void FoldIntoProducers(Graph* g, const char* op, Fold fold) {
  std::vector<int> producers = Producers(*g);
  std::vector<int> counts = ConsumerCounts(*g);
  std::vector<bool> removed(g->nodes.size(), false);
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    Node& n = g->nodes[i];
    if (n.op != op && !(std::string_view(op) == "Add" && n.op == "Sub")) continue;
    int p = -1;
    int x = fold.Operand(*g, n);
    if (x >= 0) p = FusableProducer(*g, producers, counts, x);
    if (p < 0 || !fold.Apply(g, &g->nodes[p], n)) continue;
    g->nodes[p].outputs[0] = n.outputs[0];
    producers[n.outputs[0]] = p;
    removed[i] = true;
  }
  EraseNodes(g, removed);
}

struct BatchNormFold {
  int Operand(const Graph&, const Node& n) const { return n.inputs.empty() ? -1 : n.inputs[0]; }
  bool Apply(Graph* g, Node* host, const Node& n) const { return FoldOneBatchNorm(g, host, n); }
};

struct BiasFold {
  int constant = -1;
  int Operand(const Graph& g, const Node& n) { return BiasOperand(g, n, &constant); }
  bool Apply(Graph* g, Node* host, const Node& n) const {
    return FoldOneBiasAdd(g, host, n, constant);
  }
};

}  // namespace

Status FoldBatchNorm(Graph* g) {
  FoldIntoProducers(g, "BatchNormalization", BatchNormFold{});
  return Status::Ok();
}

Status FoldBiasAdd(Graph* g) {
  FoldIntoProducers(g, "Add", BiasFold{});
  return Status::Ok();
}

}  // namespace edgeinfer
