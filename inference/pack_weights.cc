#include "inference/pack_weights.h"

#include <map>
#include <string>
#include <vector>

#include "inference/kernels/sgemm_packed.h"
#include "inference/model.h"
#include "inference/ops/activation.h"

namespace edgeinfer {

namespace {

constexpr const char* kActivationAttrs[] = {"activation", "activation_alpha", "activation_min",
                                            "activation_max"};

bool IsActivationAttr(const std::string& name) {
  for (const char* a : kActivationAttrs)
    if (name == a) return true;
  return false;
}

template <class T>
bool AttrEquals(const AttrValue& v, T want) {
  const T* got = std::get_if<T>(&v);
  return got != nullptr && *got == want;
}

// transA = 0, transB = 1, alpha = 1, beta = 1 (any float without C), a valid fused activation,
// nothing else.
bool EligibleAttrs(const Node& node, bool has_c) {
  bool trans_b = false;
  for (const auto& [name, v] : node.attrs.values()) {
    if (name == "transA") {
      if (!AttrEquals<int64_t>(v, 0)) return false;
    } else if (name == "transB") {
      if (!AttrEquals<int64_t>(v, 1)) return false;
      trans_b = true;
    } else if (name == "alpha") {
      if (!AttrEquals<float>(v, 1.f)) return false;
    } else if (name == "beta") {
      if (has_c ? !AttrEquals<float>(v, 1.f) : !std::holds_alternative<float>(v)) return false;
    } else if (name == "precision") {
      if (!AttrEquals<std::string>(v, "fp32")) return false;
    } else if (!IsActivationAttr(name)) {
      return false;
    }
  }
  return trans_b && Activation::FromAttrs(node.attrs).ok();
}

bool IsFloatConstant(const Graph& g, int t) {
  return t >= 0 && static_cast<size_t>(t) < g.tensors.size() && g.tensors[t].is_constant() &&
         g.tensors[t].dtype == DType::kFloat32;
}

std::string UniqueName(const Graph& g, const std::string& base) {
  std::string name = base;
  for (int i = 1; g.FindTensor(name) >= 0; ++i) name = base + "." + std::to_string(i);
  return name;
}

// B [N, K] of an eligible Gemm, or false.
bool WeightShape(const Graph& g, int b, int64_t* n, int64_t* k) {
  if (!IsFloatConstant(g, b)) return false;
  const TensorDesc& t = g.tensors[b];
  if (t.dims.size() != 2 || t.dims[0] <= 0 || t.dims[1] <= 0) return false;
  *n = t.dims[0];
  *k = t.dims[1];
  return t.bytes == static_cast<size_t>(*n * *k) * sizeof(float);
}

// C absent (-1), or a constant [N] / [1, N].
bool EligibleBias(const Graph& g, int c, int64_t n) {
  if (c < 0) return true;
  if (!IsFloatConstant(g, c)) return false;
  const Dims& d = g.tensors[c].dims;
  return (d == Dims{n} || d == Dims{1, n}) &&
         g.tensors[c].bytes == static_cast<size_t>(n) * sizeof(float);
}

// Removes the `candidates` that no node, graph input or output refers to, renumbering the rest.
void RemoveUnusedConstants(Graph* g, const std::vector<int>& candidates) {
  std::vector<char> used(g->tensors.size(), 0);
  for (const Node& n : g->nodes) {
    for (int t : n.inputs)
      if (t >= 0) used[t] = 1;
    for (int t : n.outputs) used[t] = 1;
  }
  for (int t : g->inputs) used[t] = 1;
  for (int t : g->outputs) used[t] = 1;
  std::vector<char> remove(g->tensors.size(), 0);
  bool any = false;
  for (int t : candidates) {
    if (!used[t] && g->tensors[t].is_constant()) {
      remove[t] = 1;
      any = true;
    }
  }
  if (!any) return;
  std::vector<int> new_index(g->tensors.size(), -1);
  std::vector<TensorDesc> kept;
  for (size_t i = 0; i < g->tensors.size(); ++i) {
    if (remove[i]) continue;
    new_index[i] = static_cast<int>(kept.size());
    kept.push_back(std::move(g->tensors[i]));
  }
  g->tensors = std::move(kept);
  auto remap = [&](std::vector<int>* list) {
    for (int& t : *list)
      if (t >= 0) t = new_index[t];
  };
  for (Node& n : g->nodes) {
    remap(&n.inputs);
    remap(&n.outputs);
  }
  remap(&g->inputs);
  remap(&g->outputs);
}

}  // namespace

Status PackDenseWeights(Graph* g) {
  // Fills in every tensor's dims (A's rank is checked below) and refuses a broken graph early.
  EI_RETURN_IF_ERROR(ValidateGraph(g, /*check_stored_dims=*/false));
  std::map<int, int> packed_of;  // B -> its packed constant (a B shared by several Gemms)
  std::vector<int> replaced;     // B and C tensors the rewritten nodes no longer read
  for (Node& node : g->nodes) {
    if (node.op != "Gemm" || node.inputs.size() < 2 || node.inputs.size() > 3 ||
        node.outputs.size() != 1)
      continue;
    const int a = node.inputs[0], b = node.inputs[1];
    const int c = node.inputs.size() > 2 ? node.inputs[2] : -1;
    int64_t n = 0, k = 0;
    if (a < 0 || !WeightShape(*g, b, &n, &k) || !EligibleBias(*g, c, n) ||
        !EligibleAttrs(node, c >= 0))
      continue;
    const Dims& a_dims = g->tensors[a].dims;
    if (a_dims.size() < 2 || a_dims.back() != k) continue;

    auto it = packed_of.find(b);
    if (it == packed_of.end()) {
      std::vector<float> packed(static_cast<size_t>(DensePackedElements(n, k)));
      PackDensePanels(static_cast<const float*>(g->tensors[b].data), n, k, packed.data());
      const std::string name = UniqueName(*g, g->tensors[b].name + ".packed");
      const int p = g->AddConstant(name, DType::kFloat32, {DensePanels(n), k, kDensePanelWidth},
                                   packed.data(), packed.size() * sizeof(float));
      it = packed_of.emplace(b, p).first;
    }
    int bias = c;
    if (c >= 0 && g->tensors[c].dims.size() == 2) {
      // [1, N] -> [N]: the same bytes (kept alive by Graph::owned) under a rank-1 tensor.
      TensorDesc t = g->tensors[c];
      t.name = UniqueName(*g, t.name + ".bias");
      t.dims = {n};
      bias = g->AddTensor(std::move(t));
    }

    Attrs attrs;
    attrs.Set("n", n);
    if (node.attrs.Has("precision")) attrs.Set("precision", std::string("fp32"));
    for (const char* name : kActivationAttrs) {
      auto v = node.attrs.values().find(name);
      if (v != node.attrs.values().end()) attrs.Set(name, v->second);
    }
    node.op = "Dense";
    node.attrs = std::move(attrs);
    node.inputs = {a, it->second};
    if (bias >= 0) node.inputs.push_back(bias);
    replaced.push_back(b);
    if (c >= 0) replaced.push_back(c);
  }
  RemoveUnusedConstants(g, replaced);
  return ValidateGraph(g, /*check_stored_dims=*/false);
}

}  // namespace edgeinfer
