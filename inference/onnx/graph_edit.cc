#include "inference/onnx/graph_edit.h"

#include <algorithm>
#include <cstring>

namespace edgeinfer {

std::vector<int> ConsumerCounts(const Graph& g) {
  std::vector<int> count(g.tensors.size(), 0);
  for (const Node& n : g.nodes)
    for (int t : n.inputs)
      if (t >= 0) ++count[t];
  for (int t : g.outputs) ++count[t];
  return count;
}

std::vector<int> Producers(const Graph& g) {
  std::vector<int> producer(g.tensors.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int t : g.nodes[i].outputs) producer[t] = static_cast<int>(i);
  return producer;
}

bool IsGraphOutput(const Graph& g, int tensor) {
  return std::find(g.outputs.begin(), g.outputs.end(), tensor) != g.outputs.end();
}

bool IsGraphInput(const Graph& g, int tensor) {
  return std::find(g.inputs.begin(), g.inputs.end(), tensor) != g.inputs.end();
}

int AddFloatConstant(Graph* g, const std::string& name, const Dims& dims,
                     const std::vector<float>& values) {
  return g->AddConstant(name, DType::kFloat32, dims, values.data(), values.size() * sizeof(float));
}

void SetConstantData(Graph* g, int t, const void* data, size_t bytes) {
  // Reuses AddConstant's aligned, owned storage, then moves it onto tensor `t`.
  int tmp = g->AddConstant("", g->tensors[t].dtype, {}, data, bytes);
  g->tensors[t].data = g->tensors[tmp].data;
  g->tensors[t].bytes = bytes;
  g->tensors.pop_back();
}

std::vector<float> ConstantFloats(const Graph& g, int t) {
  if (!IsFloatConstant(g, t)) return {};
  const TensorDesc& d = g.tensors[t];
  std::vector<float> v(d.bytes / sizeof(float));
  std::memcpy(v.data(), d.data, v.size() * sizeof(float));
  return v;
}

bool IsFloatConstant(const Graph& g, int t) {
  return t >= 0 && g.tensors[t].is_constant() && g.tensors[t].dtype == DType::kFloat32;
}

int FusableProducer(const Graph& g, const std::vector<int>& producers,
                    const std::vector<int>& consumer_counts, int tensor) {
  if (tensor < 0 || consumer_counts[tensor] != 1 || IsGraphOutput(g, tensor)) return -1;
  return producers[tensor];
}

void EraseNodes(Graph* g, const std::vector<bool>& removed) {
  std::vector<Node> kept;
  for (size_t i = 0; i < g->nodes.size(); ++i)
    if (!removed[i]) kept.push_back(std::move(g->nodes[i]));
  g->nodes = std::move(kept);
}

std::string UniqueTensorName(const Graph& g, const std::string& base) {
  std::string name = base;
  for (int i = 1; g.FindTensor(name) >= 0; ++i) name = base + "_" + std::to_string(i);
  return name;
}

namespace {

void RemoveDeadNodes(Graph* g) {
  std::vector<int> count = ConsumerCounts(*g);
  std::vector<bool> keep(g->nodes.size(), true);
  // Reverse order: removing a node may leave its producers without readers.
  for (size_t i = g->nodes.size(); i-- > 0;) {
    const Node& n = g->nodes[i];
    bool used = std::any_of(n.outputs.begin(), n.outputs.end(), [&](int t) { return count[t]; });
    if (used) continue;
    keep[i] = false;
    for (int t : n.inputs)
      if (t >= 0) --count[t];
  }
  keep.flip();
  EraseNodes(g, keep);
}

}  // namespace

void RemoveDeadCode(Graph* g) {
  RemoveDeadNodes(g);
  std::vector<bool> used(g->tensors.size(), false);
  for (const Node& n : g->nodes) {
    for (int t : n.inputs)
      if (t >= 0) used[t] = true;
    for (int t : n.outputs) used[t] = true;
  }
  for (int t : g->inputs) used[t] = true;
  for (int t : g->outputs) used[t] = true;
  std::vector<int> remap(g->tensors.size(), -1);
  std::vector<TensorDesc> kept;
  for (size_t t = 0; t < g->tensors.size(); ++t) {
    if (!used[t]) continue;
    remap[t] = static_cast<int>(kept.size());
    kept.push_back(std::move(g->tensors[t]));
  }
  g->tensors = std::move(kept);
  auto fix = [&](std::vector<int>* v) {
    for (int& t : *v)
      if (t >= 0) t = remap[t];
  };
  for (Node& n : g->nodes) {
    fix(&n.inputs);
    fix(&n.outputs);
  }
  fix(&g->inputs);
  fix(&g->outputs);
}

}  // namespace edgeinfer
