// --precision auto on an MLP whose answer is forced: fc1 is identity-like with two huge weights
// per row on inputs that are always zero. In float they add nothing; at int4 they set each block's
// scale (100 / 8) so the unit weights round to 0 and the model answers class 0 for everything;
// at int8 (step 100 / 127) the unit weights survive. fc2 and fc3 are near-identity and lose
// nothing at int4. So the search must raise fc1, and only fc1, to int8.
#include "inference/precision_search.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "inference/model.h"

namespace edgeinfer {
namespace {

constexpr int64_t kWidth = 64, kClasses = 16;

int AddGemm(Graph* g, const std::string& name, int x, const std::vector<float>& w, int64_t n) {
  Node node;
  node.name = name;
  node.op = "Gemm";
  node.attrs.Set("transB", int64_t{1});
  const std::vector<float> b(static_cast<size_t>(n), 0.f);
  node.inputs = {x,
                 g->AddConstant(name + ".w", DType::kFloat32, {n, kWidth}, w.data(), w.size() * 4),
                 g->AddConstant(name + ".b", DType::kFloat32, {n}, b.data(), b.size() * 4)};
  TensorDesc y;
  y.name = name + ":y";
  node.outputs = {g->AddTensor(y)};
  g->nodes.push_back(node);
  return node.outputs[0];
}

// Identity-like [n, 64] weights with small noise.
std::vector<float> NearIdentity(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> noise(-0.02f, 0.02f);
  std::vector<float> w(static_cast<size_t>(n * kWidth));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < kWidth; ++c) w[r * kWidth + c] = (r == c ? 1.f : 0.f) + noise(rng);
  return w;
}

Graph ForcedMlp() {
  Graph g;
  TensorDesc x;
  x.name = "x";
  x.dims = {kBatchDim, kWidth};
  g.inputs = {g.AddTensor(x)};
  std::vector<float> w1(static_cast<size_t>(kWidth * kWidth), 0.f);
  for (int64_t r = 0; r < kWidth; ++r) {
    w1[r * kWidth + r] = 1.f;
    w1[r * kWidth + 31] = 100.f;  // inputs 31 and 63 are always 0
    w1[r * kWidth + 63] = 100.f;
  }
  int t = AddGemm(&g, "fc1", g.inputs[0], w1, kWidth);
  t = AddGemm(&g, "fc2", t, NearIdentity(kWidth, 1), kWidth);
  t = AddGemm(&g, "fc3", t, NearIdentity(kClasses, 2), kClasses);
  g.outputs = {t};
  return g;
}

struct Data {
  std::vector<float> x;
  std::vector<uint8_t> labels;
};

Data ForcedData(int n) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> noise(-0.1f, 0.1f);
  Data d;
  for (int i = 0; i < n; ++i) {
    const int c = i % kClasses;
    for (int64_t k = 0; k < kWidth; ++k)
      d.x.push_back(k == 31 || k == 63 ? 0.f : (k == c ? 3.f : 0.f) + noise(rng));
    d.labels.push_back(static_cast<uint8_t>(c));
  }
  return d;
}

TEST(PrecisionSearch, RaisesOnlyTheSensitiveLayer) {
  auto model = Model::FromGraph(ForcedMlp());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const Data d = ForcedData(256);
  PrecisionSearchOptions o;
  o.max_drop_points = 1.0;
  auto r = SearchPrecision((*model)->graph(), d.x, d.labels, QuantizeOptions{}, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->fp32_accuracy, 1.0);
  ASSERT_EQ(r->sensitivity.size(), 3u);
  EXPECT_EQ(r->sensitivity[0].node, "fc1");
  EXPECT_GT(r->sensitivity[0].drop_points, 50.0);  // class 0 for everything: 6.25% left
  EXPECT_LE(r->sensitivity[1].drop_points, 1.0);
  const std::map<std::string, Precision> want = {
      {"fc1", Precision::kInt8}, {"fc2", Precision::kInt4}, {"fc3", Precision::kInt4}};
  EXPECT_EQ(r->plan, want);
  EXPECT_LE(100 * (r->fp32_accuracy - r->accuracy), o.max_drop_points);
  EXPECT_EQ(r->evaluations, 1 + 3 + 1 + 1);  // fp32, one per layer, all int4, fc1 raised

  // The plan is an ordinary keep map: QuantizeGraph stores it.
  QuantizeOptions q;
  q.keep = r->plan;
  std::vector<LayerPlan> plan;
  ASSERT_TRUE(QuantizeGraph((*model)->graph(), q, &plan).ok());
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].precision, Precision::kInt8);
  EXPECT_EQ(plan[1].precision, Precision::kInt4);
}

TEST(PrecisionSearch, AGenerousBudgetKeepsEverythingAtInt4) {
  auto model = Model::FromGraph(ForcedMlp());
  ASSERT_TRUE(model.ok());
  const Data d = ForcedData(64);
  PrecisionSearchOptions o;
  o.max_drop_points = 100;
  auto r = SearchPrecision((*model)->graph(), d.x, d.labels, QuantizeOptions{}, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const auto& [node, p] : r->plan) EXPECT_EQ(p, Precision::kInt4) << node;
}

TEST(PrecisionSearch, BadEvaluationDataIsAnError) {
  auto model = Model::FromGraph(ForcedMlp());
  ASSERT_TRUE(model.ok());
  Data d = ForcedData(32);
  const PrecisionSearchOptions o;
  d.x.pop_back();
  EXPECT_FALSE(SearchPrecision((*model)->graph(), d.x, d.labels, QuantizeOptions{}, o).ok());
  d = ForcedData(32);
  d.labels[5] = kClasses;  // past the last class
  auto r = SearchPrecision((*model)->graph(), d.x, d.labels, QuantizeOptions{}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("label 16 of sample 5"), std::string::npos)
      << r.status().ToString();
  EXPECT_FALSE(SearchPrecision((*model)->graph(), {}, {}, QuantizeOptions{}, o).ok());
}

}  // namespace
}  // namespace edgeinfer
