// Constant folding, MatMul/Gemm canonicalization and activation fusion. Weight folding (batch
// norm, bias) lives in fold_weights.cc.
#include "inference/onnx/graph_passes.h"

#include <algorithm>
#include <string_view>

#include "inference/onnx/const_eval.h"
#include "inference/onnx/graph_edit.h"

namespace edgeinfer {

namespace {

bool OneOf(std::string_view op, std::initializer_list<std::string_view> ops) {
  return std::find(ops.begin(), ops.end(), op) != ops.end();
}

// [rows, cols] -> [cols, rows].
std::vector<float> Transposed(const std::vector<float>& in, int64_t rows, int64_t cols) {
  std::vector<float> out(in.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = in[r * cols + c];
  return out;
}

// A new constant holding constant 2-D tensor `t` transposed.
int AddTransposed(Graph* g, int t) {
  const Dims d = g->tensors[t].dims;
  std::string name = UniqueTensorName(*g, g->tensors[t].name + "_t");
  return AddFloatConstant(g, name, {d[1], d[0]}, Transposed(ConstantFloats(*g, t), d[0], d[1]));
}

bool IsConstantMatrix(const Graph& g, int t) {
  return IsFloatConstant(g, t) && g.tensors[t].dims.size() == 2;
}

// Copies an activation node's parameters onto `host` as its fused activation. Infinite Clip
// bounds stay implicit (absent attributes mean -inf / +inf and keep the .eim JSON finite).
void SetActivation(const Node& act, Attrs* host) {
  host->Set("activation", act.op);
  if (act.op == "LeakyRelu") host->Set("activation_alpha", act.attrs.GetFloat("alpha", 0.01f));
  if (act.op != "Clip") return;
  if (act.attrs.Has("min")) host->Set("activation_min", act.attrs.GetFloat("min"));
  if (act.attrs.Has("max")) host->Set("activation_max", act.attrs.GetFloat("max"));
}

// Sets `act` as the host's activation if it has none, or merges it into a Relu it has (as
// ReLU6 exports: Relu then Clip). Returns false when the two cannot be one activation.
bool FuseActivation(const Node& act, Attrs* host) {
  std::string existing = host->GetString("activation");
  if (existing.empty()) {
    SetActivation(act, host);
    return true;
  }
  if (existing != "Relu") return false;
  if (act.op == "Relu") return true;  // idempotent
  if (act.op != "Clip") return false;
  // Relu then Clip(lo, hi) is Clip(max(lo, 0), hi).
  SetActivation(act, host);
  host->Set("activation_min", std::max(act.attrs.GetFloat("min", 0.f), 0.f));
  return true;
}

// Redirects every node input that reads tensor `from` to `to`.
void ReplaceUses(Graph* g, int from, int to) {
  for (Node& n : g->nodes)
    for (int& t : n.inputs)
      if (t == from) t = to;
}

}  // namespace

Status FoldConstantNodes(Graph* g) {
  std::vector<bool> removed(g->nodes.size(), false);
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    const Node& n = g->nodes[i];
    bool makes_output = std::any_of(n.outputs.begin(), n.outputs.end(),
                                    [&](int t) { return IsGraphOutput(*g, t); });
    // A graph output must stay produced by a node (the importer adds Copy nodes for that).
    // An output over the batch (a constant Expanded to it) has no value at import.
    bool over_batch = std::any_of(n.outputs.begin(), n.outputs.end(),
                                  [&](int t) { return HasBatch(g->tensors[t].dims); });
    if (makes_output || over_batch || !AllInputsConstant(*g, n)) continue;
    EI_RETURN_IF_ERROR(InferNodeOutputs(n, g));
    EI_RETURN_IF_ERROR(EvaluateConstantNode(n, g));
    removed[i] = true;
  }
  EraseNodes(g, removed);
  return Status::Ok();
}

Status MatMulToGemm(Graph* g) {
  for (Node& n : g->nodes) {
    if (n.op != "MatMul" || n.inputs.size() != 2 || n.inputs[0] < 0) continue;
    // Gemm's rank > 2 extension covers A [..., K]; a rank-1 A stays a MatMul.
    if (!IsConstantMatrix(*g, n.inputs[1]) || g->tensors[n.inputs[0]].dims.size() < 2) continue;
    n.inputs[1] = AddTransposed(g, n.inputs[1]);
    n.op = "Gemm";
    n.attrs.Set("transA", int64_t{0});
    n.attrs.Set("transB", int64_t{1});
    n.attrs.Set("alpha", 1.f);
    n.attrs.Set("beta", 1.f);
  }
  return Status::Ok();
}

Status CanonicalizeGemmWeights(Graph* g) {
  for (Node& n : g->nodes) {
    if (n.op != "Gemm" || n.inputs.size() < 2 || n.attrs.GetInt("transB", 0) != 0) continue;
    if (!IsConstantMatrix(*g, n.inputs[1])) continue;
    n.inputs[1] = AddTransposed(g, n.inputs[1]);
    n.attrs.Set("transB", int64_t{1});
  }
  return Status::Ok();
}

Status FuseActivations(Graph* g) {
  std::vector<int> producers = Producers(*g);
  std::vector<int> counts = ConsumerCounts(*g);
  std::vector<bool> removed(g->nodes.size(), false);
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    const Node& act = g->nodes[i];
    if (!OneOf(act.op, {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Gelu", "HardSwish"}))
      continue;
    int p = FusableProducer(*g, producers, counts, act.inputs[0]);
    if (p < 0) continue;
    Node& host = g->nodes[p];
    if (!OneOf(host.op,
               {"Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "BatchNormalization"}) ||
        !FuseActivation(act, &host.attrs))
      continue;
    host.outputs[0] = act.outputs[0];
    producers[act.outputs[0]] = p;
    removed[i] = true;
  }
  EraseNodes(g, removed);
  return Status::Ok();
}

Status CollapseReshapes(Graph* g) {
  std::vector<int> producers = Producers(*g);
  std::vector<int> counts = ConsumerCounts(*g);
  std::vector<bool> removed(g->nodes.size(), false);
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    Node& n = g->nodes[i];
    if (n.op != "Reshape") continue;
    int p = FusableProducer(*g, producers, counts, n.inputs[0]);
    if (p >= 0 && g->nodes[p].op == "Reshape") {
      n.inputs[0] = g->nodes[p].inputs[0];  // the reader count of that tensor is unchanged
      removed[p] = true;
    }
    // Back to the dims it started from (Unsqueeze then Squeeze): no reshape at all.
    int in = n.inputs[0], out = n.outputs[0];
    if (g->tensors[in].dims == g->tensors[out].dims && !IsGraphOutput(*g, out)) {
      ReplaceUses(g, out, in);
      counts[in] += counts[out] - 1;
      counts[out] = 0;
      removed[i] = true;
    }
  }
  EraseNodes(g, removed);
  return Status::Ok();
}

Status OptimizeGraph(Graph* g) {
  EI_RETURN_IF_ERROR(FoldConstantNodes(g));
  EI_RETURN_IF_ERROR(MatMulToGemm(g));
  EI_RETURN_IF_ERROR(CanonicalizeGemmWeights(g));
  // Bias folding on both sides of batch norm folding: Conv -> Add -> BN -> Add collapses fully.
  EI_RETURN_IF_ERROR(FoldBiasAdd(g));
  EI_RETURN_IF_ERROR(FoldBatchNorm(g));
  EI_RETURN_IF_ERROR(FoldBiasAdd(g));
  EI_RETURN_IF_ERROR(FoldInputAffine(g));
  EI_RETURN_IF_ERROR(FuseDecomposedOps(g));
  EI_RETURN_IF_ERROR(FuseActivations(g));
  EI_RETURN_IF_ERROR(CollapseReshapes(g));
  RemoveDeadCode(g);
  return Status::Ok();
}

}  // namespace edgeinfer
