// One-layer float graphs for the quantized-op tests (the graph, its float weight and bias), and
// running a graph through a real Session.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "inference/graph.h"
#include "inference/model.h"
#include "inference/profiler.h"
#include "inference/session.h"
#include "tests/inference/op_test_util.h"

namespace edgeinfer::testing {

struct FloatLayer {
  Graph graph;
  std::vector<float> w;     // as stored (Gemm: [N, K] with transB = 1 unless said otherwise)
  std::vector<float> bias;  // [N], empty for none
};

struct ConvSpec {
  int64_t c, m, group;
  Dims spatial;  // input H, W or W
  Dims kernel, strides, dilations, pads;
};

// One Conv (ReLU fused) over [batch, c, spatial...], random weight [M, C/g, k...] and bias in
// [-0.5, 0.5) from `seed`.
inline FloatLayer MakeConvLayer(const ConvSpec& s, uint32_t seed) {
  FloatLayer l;
  Graph& g = l.graph;
  TensorDesc x;
  x.name = "x";
  x.dims = {kBatchDim, s.c};
  x.dims.insert(x.dims.end(), s.spatial.begin(), s.spatial.end());
  g.inputs.push_back(g.AddTensor(x));
  Dims wd = {s.m, s.c / s.group};
  wd.insert(wd.end(), s.kernel.begin(), s.kernel.end());
  l.w = RandomFloats(static_cast<size_t>(Numel(wd)), seed, -0.5f, 0.5f);
  l.bias = RandomFloats(static_cast<size_t>(s.m), seed + 1, -0.5f, 0.5f);
  Node node;
  node.name = "conv";
  node.op = "Conv";
  node.attrs.Set("group", s.group);
  node.attrs.Set("strides", s.strides);
  node.attrs.Set("dilations", s.dilations);
  node.attrs.Set("pads", s.pads);
  node.attrs.Set("activation", std::string("Relu"));
  node.inputs = {g.inputs[0], g.AddConstant("w", DType::kFloat32, wd, l.w.data(), l.w.size() * 4),
                 g.AddConstant("b", DType::kFloat32, {s.m}, l.bias.data(), l.bias.size() * 4)};
  TensorDesc y;
  y.name = "y";
  node.outputs.push_back(g.AddTensor(y));
  g.outputs.push_back(node.outputs[0]);
  g.nodes.push_back(node);
  return l;
}

// Runs `g` on `batch` samples of `x` through a Session planned for that batch; returns output 0.
inline std::vector<float> RunSession(Graph g, const std::vector<float>& x, int batch,
                                     Profiler* profiler = nullptr) {
  auto model = Model::FromGraph(std::move(g));
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return {};
  auto s = Session::Create(*model, SessionOptions{.max_batch = batch, .profiler = profiler});
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return {};
  const float* in = x.data();
  EXPECT_TRUE((*s)->Run({&in, 1}, batch).ok());
  const TensorView out = (*s)->output(0);
  return std::vector<float>(out.f32(), out.f32() + out.shape.NumElements());
}

}  // namespace edgeinfer::testing
