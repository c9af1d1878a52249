#include "inference/session.h"

#include <gtest/gtest.h>

#include <cmath>

#include "inference/arena_planner.h"
#include "inference/profiler.h"
#include "op_test_util.h"

namespace edgeinfer {
namespace {

using testing::RandomFloats;

// x[B,4] -> Gemm(W[3,4], bias, Relu) -> h[B,3] -> Reshape [3B] -> Add(h2, h2) -> y[3B]
struct SmallNet {
  Graph graph;
  std::vector<float> w = RandomFloats(12, 1);
  std::vector<float> bias = {0.1f, -0.2f, 0.3f};

  SmallNet() {
    Graph& g = graph;
    TensorDesc x{"x", DType::kFloat32, {kBatchDim, 4}};
    int xi = g.AddTensor(x);
    g.inputs.push_back(xi);
    int wi = g.AddConstant("w", DType::kFloat32, {3, 4}, w.data(), w.size() * 4);
    int bi = g.AddConstant("b", DType::kFloat32, {3}, bias.data(), bias.size() * 4);
    int hi = g.AddTensor({"h", DType::kFloat32, {}});
    int ri = g.AddTensor({"r", DType::kFloat32, {}});
    int yi = g.AddTensor({"y", DType::kFloat32, {}});
    Node gemm{"fc", "Gemm", {xi, wi, bi}, {hi}, {}};
    gemm.attrs.Set("transB", int64_t{1});
    gemm.attrs.Set("activation", std::string("Relu"));
    Node reshape{"flat", "Reshape", {hi}, {ri}, {}};
    reshape.attrs.Set("shape", std::vector<int64_t>{-3});
    Node add{"double", "Add", {ri, ri}, {yi}, {}};
    g.nodes = {gemm, reshape, add};
    g.outputs.push_back(yi);
  }

  std::vector<float> Reference(const std::vector<float>& x, int batch) const {
    std::vector<float> y;
    for (int b = 0; b < batch; ++b) {
      for (int n = 0; n < 3; ++n) {
        float acc = bias[n];
        for (int k = 0; k < 4; ++k) acc += x[b * 4 + k] * w[n * 4 + k];
        y.push_back(2 * std::max(acc, 0.f));
      }
    }
    return y;
  }
};

std::shared_ptr<const Model> Load(Graph g) {
  auto m = Model::FromGraph(std::move(g));
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return *m;
}

TEST(SessionTest, RunsEveryBatchUpToMax) {
  SmallNet net;
  auto model = Load(net.graph);
  SessionOptions so;
  so.max_batch = 5;
  auto s = Session::Create(model, so);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE((*s)->batch_dynamic());
  for (int batch = 1; batch <= 5; ++batch) {
    std::vector<float> x = RandomFloats(4 * batch, 10 + batch);
    const float* in = x.data();
    ASSERT_TRUE((*s)->Run({&in, 1}, batch).ok());
    TensorView out = (*s)->output(0);
    ASSERT_EQ(out.shape.NumElements(), 3 * batch);
    std::vector<float> got(out.f32(), out.f32() + 3 * batch);
    testing::ExpectNear(got, net.Reference(x, batch));
  }
}

TEST(SessionTest, RejectsBadBatchAndInputCount) {
  SmallNet net;
  auto s = Session::Create(Load(net.graph), SessionOptions{.max_batch = 2});
  ASSERT_TRUE(s.ok());
  std::vector<float> x(12);
  const float* in = x.data();
  EXPECT_FALSE((*s)->Run({&in, 1}, 3).ok());
  EXPECT_FALSE((*s)->Run({&in, 1}, 0).ok());
  EXPECT_FALSE((*s)->Run({}, 1).ok());
}

TEST(SessionTest, ArenaIsPlannedBelowNaiveAndShrinksOnReplan) {
  SmallNet net;
  auto s = Session::Create(Load(net.graph), SessionOptions{.max_batch = 64});
  ASSERT_TRUE(s.ok());
  const size_t big = (*s)->arena_bytes();
  EXPECT_GT(big, 0u);
  EXPECT_LE(big, (*s)->naive_arena_bytes());
  // h aliases r (Reshape), y is separate: 2 buffers of 64*3 floats.
  EXPECT_EQ(big, 2 * AlignUp(64 * 3 * 4, 64));

  ASSERT_TRUE((*s)->Replan(4).ok());
  EXPECT_EQ((*s)->max_batch(), 4);
  EXPECT_LT((*s)->arena_bytes(), big);
  std::vector<float> x = RandomFloats(16, 3);
  const float* in = x.data();
  ASSERT_TRUE((*s)->Run({&in, 1}, 4).ok());
  std::vector<float> got((*s)->output(0).f32(), (*s)->output(0).f32() + 12);
  testing::ExpectNear(got, net.Reference(x, 4));
  EXPECT_FALSE((*s)->Run({&in, 1}, 5).ok());
}

TEST(SessionTest, StaticGraphRunsOneSample) {
  SmallNet net;
  net.graph.tensors[net.graph.inputs[0]].dims = {2, 4};
  net.graph.nodes[1].attrs.Set("shape", std::vector<int64_t>{6});
  auto s = Session::Create(Load(net.graph), SessionOptions{.max_batch = 8});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE((*s)->batch_dynamic());
  EXPECT_EQ((*s)->max_batch(), 1);
  EXPECT_EQ((*s)->input_sample_elements(0), 8);
  std::vector<float> x = RandomFloats(8, 5);
  const float* in = x.data();
  ASSERT_TRUE((*s)->Run({&in, 1}, 1).ok());
  std::vector<float> got((*s)->output(0).f32(), (*s)->output(0).f32() + 6);
  testing::ExpectNear(got, net.Reference(x, 2));
}

TEST(SessionTest, ProfilerRecordsEveryNode) {
  SmallNet net;
  Profiler profiler;
  auto s = Session::Create(Load(net.graph), SessionOptions{.max_batch = 1, .profiler = &profiler});
  ASSERT_TRUE(s.ok());
  std::vector<float> x(4, 1.f);
  const float* in = x.data();
  ASSERT_TRUE((*s)->Run({&in, 1}, 1).ok());
  ASSERT_TRUE((*s)->Run({&in, 1}, 1).ok());
  EXPECT_EQ(profiler.size(), 6u);
  std::string table = profiler.SummaryTable();
  EXPECT_NE(table.find("Gemm"), std::string::npos);
  EXPECT_NE(table.find("Add"), std::string::npos);
  std::string path = ::testing::TempDir() + "/trace.json";
  ASSERT_TRUE(profiler.WriteChromeTrace(path).ok());
}

TEST(SessionTest, UnknownOpIsRefusedAtLoad) {
  SmallNet net;
  net.graph.nodes[2].op = "FancyOp";
  auto m = Model::FromGraph(net.graph);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("FancyOp"), std::string::npos);
  EXPECT_NE(m.status().message().find("double"), std::string::npos);
}

}  // namespace
}  // namespace edgeinfer
