// Runs one node of the internal op set on literal-shaped inputs, the way the session would:
// infer (validation), create, scratch sized from ScratchBytes, Run.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "inference/graph.h"
#include "inference/op.h"

namespace edgeinfer::testing {

struct TestTensor {
  Dims dims;
  std::vector<float> data;
  bool constant = false;  // becomes a constant (weight) tensor of the graph
};

inline std::vector<float> RandomFloats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline int64_t Numel(const Dims& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

// Builds a one-node graph. An input with empty data and dims {} is an absent optional input.
inline Graph MakeSingleOpGraph(const std::string& op, const Attrs& attrs,
                               const std::vector<TestTensor>& inputs, int num_outputs) {
  Graph g;
  Node n;
  n.name = "n0";
  n.op = op;
  n.attrs = attrs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TestTensor& t = inputs[i];
    if (t.dims.empty() && t.data.empty()) {
      n.inputs.push_back(-1);
      continue;
    }
    std::string name = "in" + std::to_string(i);
    if (t.constant) {
      n.inputs.push_back(
          g.AddConstant(name, DType::kFloat32, t.dims, t.data.data(), t.data.size() * 4));
    } else {
      TensorDesc d;
      d.name = name;
      d.dims = t.dims;
      n.inputs.push_back(g.AddTensor(d));
      g.inputs.push_back(n.inputs.back());
    }
  }
  for (int i = 0; i < num_outputs; ++i) {
    TensorDesc d;
    d.name = "out" + std::to_string(i);
    n.outputs.push_back(g.AddTensor(d));
    g.outputs.push_back(n.outputs.back());
  }
  g.nodes.push_back(n);
  return g;
}

// Validates and runs the op. On an infer failure returns the Status (outputs untouched).
inline Status RunSingleOp(const std::string& op, const Attrs& attrs,
                          const std::vector<TestTensor>& inputs, std::vector<TestTensor>* outputs,
                          int num_outputs = 1) {
  Graph g = MakeSingleOpGraph(op, attrs, inputs, num_outputs);
  const OpDef* def = FindOp(op);
  if (!def) return Status::Unsupported("no op " + op);
  const Node& n = g.nodes[0];
  std::vector<TensorDesc> outs(n.outputs.size());
  EI_RETURN_IF_ERROR(def->infer(n, g, &outs));
  auto kernel = def->create(n, g);
  if (!kernel.ok()) return kernel.status();

  std::vector<TensorView> in_views(n.inputs.size());
  std::vector<Shape> in_shapes(n.inputs.size());
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    if (n.inputs[i] < 0) continue;
    const TestTensor& t = inputs[i];
    in_views[i].data = const_cast<float*>(t.data.data());
    in_views[i].shape = Resolve(t.dims, 1);
    in_shapes[i] = in_views[i].shape;
  }
  outputs->assign(outs.size(), {});
  std::vector<TensorView> out_views(outs.size());
  std::vector<Shape> out_shapes(outs.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    (*outputs)[i].dims = outs[i].dims;
    (*outputs)[i].data.assign(Numel(outs[i].dims), std::nanf(""));
    out_views[i].data = (*outputs)[i].data.data();
    out_views[i].shape = Resolve(outs[i].dims, 1);
    out_shapes[i] = out_views[i].shape;
  }
  size_t scratch_bytes = (*kernel)->ScratchBytes(in_shapes, out_shapes);
  // Poisoned scratch: a kernel must not rely on its contents.
  std::vector<float> scratch(scratch_bytes / 4 + 16, std::nanf(""));
  KernelContext ctx;
  ctx.in = in_views.data();
  ctx.num_in = static_cast<int>(in_views.size());
  ctx.out = out_views.data();
  ctx.num_out = static_cast<int>(out_views.size());
  ctx.scratch = scratch.data();
  ctx.scratch_bytes = scratch_bytes;
  (*kernel)->Run(ctx);
  return Status::Ok();
}

// A tensor of `dims` with values uniform in [lo, hi) from `seed`.
inline TestTensor RandomTensor(const Dims& dims, uint32_t seed, float lo = -2.f, float hi = 2.f) {
  return {dims, RandomFloats(static_cast<size_t>(Numel(dims)), seed, lo, hi)};
}

// Runs a one-output op and returns its output; fails the test on an error.
inline TestTensor RunOp(const std::string& op, const Attrs& attrs,
                        const std::vector<TestTensor>& in) {
  std::vector<TestTensor> out;
  Status s = RunSingleOp(op, attrs, in, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out.empty() ? TestTensor{} : out[0];
}

inline void ExpectNear(const std::vector<float>& got, const std::vector<float>& want,
                       float rel_tol = 1e-5f, float abs_tol = 1e-5f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    float tol = abs_tol + rel_tol * std::abs(want[i]);
    ASSERT_NEAR(got[i], want[i], tol) << "at element " << i;
  }
}

}  // namespace edgeinfer::testing
