// Folding and fusion on imported graphs: the optimized graph must be smaller and compute what
// the plain lowering computes (both run through the kernels).
#include "inference/onnx/graph_passes.h"

#include <gtest/gtest.h>

#include "tests/inference/op_test_util.h"
#include "tests/onnx/onnx_test_util.h"

namespace edgeinfer {
namespace {

using testing::OnnxBuilder;
using testing::OpList;
using testing::RandomFloats;
using Ops = std::vector<std::string>;

constexpr int64_t kAny = OnnxBuilder::kUnknownDim;

// Imports `b` with and without the passes, runs both at batch 2 on the same random input and
// expects equal outputs. Returns the optimized graph.
Graph ExpectOptimizedMatchesPlain(const OnnxBuilder& b) {
  auto fused = b.Import(/*optimize=*/true);
  auto plain = b.Import(/*optimize=*/false);
  EXPECT_TRUE(fused.ok()) << fused.status().ToString();
  EXPECT_TRUE(plain.ok()) << plain.status().ToString();
  if (!fused.ok() || !plain.ok()) return Graph{};
  constexpr int64_t kBatch = 2;
  std::vector<std::vector<float>> inputs;
  for (int t : plain->inputs)
    inputs.push_back(RandomFloats(Resolve(plain->tensors[t].dims, kBatch).NumElements(), 7));
  auto want = testing::RunGraph(*plain, inputs, kBatch);
  auto got = testing::RunGraph(*fused, inputs, kBatch);
  EXPECT_TRUE(want.ok() && got.ok());
  if (want.ok() && got.ok()) {
    for (size_t i = 0; i < want->size(); ++i) testing::ExpectNear((*got)[i], (*want)[i], 1e-4f);
  }
  return std::move(fused).value();
}

void AddBatchNorm(OnnxBuilder& b, const std::string& in, const std::string& out, int64_t c,
                  uint32_t seed) {
  std::string p = out + ".";
  b.Init(p + "scale", {c}, RandomFloats(c, seed, 0.5f, 2.f));
  b.Init(p + "bias", {c}, RandomFloats(c, seed + 1));
  b.Init(p + "mean", {c}, RandomFloats(c, seed + 2));
  b.Init(p + "var", {c}, RandomFloats(c, seed + 3, 0.1f, 3.f));
  b.Node("BatchNormalization", {in, p + "scale", p + "bias", p + "mean", p + "var"}, {out})
      .Float("epsilon", 1e-3f);
}

TEST(OnnxPasses, TransposeOfConstantWeightFoldsAndMatMulBecomesGemm) {
  OnnxBuilder b;
  b.Input("x", {-1, 8}).Output("y", {-1, 4});
  b.Init("w", {4, 8}, RandomFloats(32, 1)).Init("bias", {4}, RandomFloats(4, 2));
  b.Node("Transpose", {"w"}, {"wt"});  // constant: evaluated at import
  b.Node("MatMul", {"x", "wt"}, {"m"});
  b.Node("Add", {"m", "bias"}, {"a"});
  b.Node("Relu", {"a"}, {"y"});
  Graph g = ExpectOptimizedMatchesPlain(b);
  ASSERT_EQ(OpList(g), Ops{"Gemm"});
  EXPECT_EQ(g.nodes[0].attrs.GetInt("transB"), 1);
  EXPECT_EQ(g.tensors[g.nodes[0].inputs[1]].dims, (Dims{4, 8}));  // [N, K]
  EXPECT_EQ(g.nodes[0].attrs.GetString("activation"), "Relu");
  auto plain = b.Import(false);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(OpList(*plain), (Ops{"MatMul", "Add", "Relu"}));  // no Transpose either way
}

TEST(OnnxPasses, ConvBatchNormReluFoldIntoOneConv) {
  OnnxBuilder b;
  b.Input("x", {-1, 4, 6, 6}).Output("y", {-1, 6, 6, 6});
  b.Init("w", {6, 2, 3, 3}, RandomFloats(6 * 2 * 9, 3));
  b.Node("Conv", {"x", "w"}, {"c"}).Ints("pads", {1, 1, 1, 1}).Int("group", 2);
  AddBatchNorm(b, "c", "bn", 6, 10);
  b.Node("Relu", {"bn"}, {"y"});
  Graph g = ExpectOptimizedMatchesPlain(b);
  ASSERT_EQ(OpList(g), Ops{"Conv"});
  EXPECT_EQ(g.nodes[0].inputs.size(), 3u);  // a bias appeared
  EXPECT_EQ(g.nodes[0].attrs.GetString("activation"), "Relu");
}

TEST(OnnxPasses, Conv1dWithBiasBatchNormFolds) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 16}).Output("y", {-1, 5, 8});
  b.Init("w", {5, 3, 3}, RandomFloats(45, 4)).Init("cb", {5}, RandomFloats(5, 5));
  b.Node("Conv", {"x", "w", "cb"}, {"c"}).Ints("strides", {2}).Ints("pads", {1, 1});
  AddBatchNorm(b, "c", "y", 5, 20);
  EXPECT_EQ(OpList(ExpectOptimizedMatchesPlain(b)), Ops{"Conv"});
}

TEST(OnnxPasses, GemmBatchNormFoldsWithTransposedWeights) {
  OnnxBuilder b;
  b.Input("x", {-1, 8}).Output("y", {-1, 5});
  b.Init("w", {8, 5}, RandomFloats(40, 6)).Init("c", {1, 5}, RandomFloats(5, 7));
  b.Node("Gemm", {"x", "w", "c"}, {"g"}).Float("alpha", 0.5f).Float("beta", 2.f);
  AddBatchNorm(b, "g", "y", 5, 30);
  Graph g = ExpectOptimizedMatchesPlain(b);
  ASSERT_EQ(OpList(g), Ops{"Gemm"});
  EXPECT_EQ(g.nodes[0].attrs.GetInt("transB"), 1);
  EXPECT_EQ(g.tensors[g.nodes[0].inputs[1]].dims, (Dims{5, 8}));
}

TEST(OnnxPasses, PerChannelAddFoldsIntoConvBiasButPerColumnDoesNot) {
  // Output [B, 4, 4, 4]: [4, 1, 1] is per channel; [4] broadcasts along the last axis.
  for (bool per_channel : {true, false}) {
    SCOPED_TRACE(per_channel);
    OnnxBuilder b;
    b.Input("x", {-1, 2, 4, 4}).Output("y", {-1, 4, 4, 4});
    b.Init("w", {4, 2, 1, 1}, RandomFloats(8, 8));
    Dims cdims = per_channel ? Dims{4, 1, 1} : Dims{4};
    b.Init("k", cdims, RandomFloats(4, 9));
    b.Node("Conv", {"x", "w"}, {"c"});
    b.Node("Add", {"k", "c"}, {"a"});
    b.Node("Sigmoid", {"a"}, {"y"});
    Graph g = ExpectOptimizedMatchesPlain(b);
    EXPECT_EQ(OpList(g), per_channel ? Ops{"Conv"} : (Ops{"Conv", "Add"}));
  }
}

TEST(OnnxPasses, SubOfConstantFoldsIntoGemmBias) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 8}).Output("y", {-1, 3, 4});
  b.Init("w", {8, 4}, RandomFloats(32, 11)).Init("k", {4}, RandomFloats(4, 12));
  b.Node("MatMul", {"x", "w"}, {"m"});  // rank-3 A: Gemm's extension
  b.Node("Sub", {"m", "k"}, {"y"});
  EXPECT_EQ(OpList(ExpectOptimizedMatchesPlain(b)), Ops{"Gemm"});
}

TEST(OnnxPasses, ScalarAffineOnAGemmInputFoldsIntoItsWeights) {
  OnnxBuilder b;  // ((2.5 - x) * 3 + 1) / 0.5 -> Flatten -> Gemm with alpha and beta
  b.Input("x", {-1, 2, 3}).Output("y", {-1, 4});
  b.Init("c", {}, {2.5f}).Init("k3", {1}, {3.f}).Init("one", {}, {1.f}).Init("h", {}, {0.5f});
  b.Init("w", {4, 6}, RandomFloats(24, 21)).Init("bias", {4}, RandomFloats(4, 22));
  b.Node("Sub", {"c", "x"}, {"a"});
  b.Node("Mul", {"a", "k3"}, {"m"});
  b.Node("Add", {"one", "m"}, {"p"});
  b.Node("Div", {"p", "h"}, {"d"});
  b.Node("Flatten", {"d"}, {"f"});
  b.Node("Gemm", {"f", "w", "bias"}, {"y"})
      .Int("transB", 1)
      .Float("alpha", 0.75f)
      .Float("beta", 2.f);
  Graph g = ExpectOptimizedMatchesPlain(b);
  ASSERT_EQ(OpList(g), (Ops{"Reshape", "Gemm"}));
  EXPECT_EQ(g.nodes[0].inputs[0], g.inputs[0]);
}

TEST(OnnxPasses, AffineThatIsNotScalarOrIsSharedDoesNotFold) {
  OnnxBuilder b;  // a per-column constant: would need the Reshape's index mapping
  b.Input("x", {-1, 6}).Output("y", {-1, 4});
  b.Init("k", {6}, RandomFloats(6, 23)).Init("w", {4, 6}, RandomFloats(24, 24));
  b.Node("Mul", {"x", "k"}, {"m"});
  b.Node("Gemm", {"m", "w"}, {"y"}).Int("transB", 1);
  EXPECT_EQ(OpList(ExpectOptimizedMatchesPlain(b)), (Ops{"Mul", "Gemm"}));

  OnnxBuilder shared;  // the normalised input also goes elsewhere
  shared.Input("x", {-1, 6}).Output("y", {-1, 4}).Output("z", {-1, 6});
  shared.Init("k", {}, {4.f}).Init("w", {4, 6}, RandomFloats(24, 25));
  shared.Node("Div", {"x", "k"}, {"d"});
  shared.Node("Gemm", {"d", "w"}, {"y"}).Int("transB", 1);
  shared.Node("Relu", {"d"}, {"z"});
  EXPECT_EQ(OpList(ExpectOptimizedMatchesPlain(shared)), (Ops{"Div", "Gemm", "Relu"}));
}

TEST(OnnxPasses, ClipAndLeakyReluCarryTheirParameters) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 4}).Output("y", {-1, 4}).Output("z", {-1, 4});
  b.Init("lo", {}, {0.f}).Init("hi", {}, {0.25f}).Init("k", {4}, RandomFloats(4, 13));
  b.Node("Mul", {"x", "k"}, {"m"});
  b.Node("Clip", {"m", "lo", "hi"}, {"y"});
  b.Node("Div", {"x", "k"}, {"d"});
  b.Node("LeakyRelu", {"d"}, {"z"}).Float("alpha", 0.3f);
  Graph g = ExpectOptimizedMatchesPlain(b);
  ASSERT_EQ(OpList(g), (Ops{"Mul", "Div"}));
  EXPECT_EQ(g.nodes[0].attrs.GetString("activation"), "Clip");
  EXPECT_EQ(g.nodes[0].attrs.GetFloat("activation_min", -1), 0.f);
  EXPECT_EQ(g.nodes[0].attrs.GetFloat("activation_max"), 0.25f);
  EXPECT_EQ(g.nodes[1].attrs.GetFloat("activation_alpha"), 0.3f);
}

TEST(OnnxPasses, ReluThenClipFromReLU6BecomesOneClip) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 2, 8}).Output("y", {-1, 3, 8});
  b.Init("w", {3, 2, 1}, RandomFloats(6, 17, -3.f, 3.f)).Init("lo", {}, {-1.f});
  b.Init("hi", {}, {0.5f});
  b.Node("Conv", {"x", "w"}, {"c"});
  b.Node("Relu", {"c"}, {"r"});
  b.Node("Clip", {"r", "lo", "hi"}, {"y"});
  Graph g = ExpectOptimizedMatchesPlain(b);
  ASSERT_EQ(OpList(g), Ops{"Conv"});
  EXPECT_EQ(g.nodes[0].attrs.GetString("activation"), "Clip");
  EXPECT_EQ(g.nodes[0].attrs.GetFloat("activation_min", -1), 0.f);  // max(-1, 0)
  EXPECT_EQ(g.nodes[0].attrs.GetFloat("activation_max"), 0.5f);
}

TEST(OnnxPasses, ReshapeChainsCollapse) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 2, 3}).Output("y", {-1, 1, 6}).Output("z", {-1, 2, 3});
  b.IntInit("one", {1}).IntInit("last", {-1});
  b.Node("Flatten", {"x"}, {"f"});           // [B, 6]
  b.Node("Unsqueeze", {"f", "one"}, {"u"});  // [B, 1, 6]
  b.Node("Relu", {"u"}, {"y"});
  b.Node("Unsqueeze", {"x", "last"}, {"v"});  // [B, 2, 3, 1]
  b.Node("Squeeze", {"v", "last"}, {"w"});    // [B, 2, 3] again
  b.Node("Sigmoid", {"w"}, {"z"});
  Graph g = ExpectOptimizedMatchesPlain(b);
  ASSERT_EQ(OpList(g), (Ops{"Reshape", "Relu", "Sigmoid"}));
  EXPECT_EQ(g.nodes[0].inputs[0], g.inputs[0]);
  EXPECT_EQ(g.nodes[0].attrs.GetInts("shape"), (std::vector<int64_t>{kBatchDim, 1, 6}));
  EXPECT_EQ(g.nodes[2].inputs[0], g.inputs[0]);
}

TEST(OnnxPasses, NoFusionThroughSharedOrOutputTensors) {
  OnnxBuilder b;
  b.Input("x", {-1, 4}).Output("g", {-1, 3}).Output("y", {-1, 3}).Output("z", {-1, 3});
  b.Init("w", {3, 4}, RandomFloats(12, 14));
  b.Init("s", {3}, {1, 1, 1}).Init("bb", {3}, {0, 0, 0}).Init("m", {3}, {0, 0, 0});
  b.Node("Gemm", {"x", "w"}, {"g"}).Int("transB", 1);  // g is a graph output
  b.Node("Relu", {"g"}, {"y"});
  b.Node("BatchNormalization", {"g", "s", "bb", "m", "s"}, {"z"});
  Graph g = ExpectOptimizedMatchesPlain(b);
  EXPECT_EQ(OpList(g), (Ops{"Gemm", "Relu", "BatchNormalization"}));

  OnnxBuilder shared;  // t feeds two nodes
  shared.Input("x", {-1, 4}).Output("y", {-1, 4}).Output("z", {-1, 4});
  shared.Init("k", {4}, RandomFloats(4, 15));
  shared.Node("Add", {"x", "k"}, {"t"});
  shared.Node("Relu", {"t"}, {"y"});
  shared.Node("Tanh", {"t"}, {"z"});
  EXPECT_EQ(OpList(ExpectOptimizedMatchesPlain(shared)), (Ops{"Add", "Relu", "Tanh"}));
}

TEST(OnnxPasses, RemoveDeadCodeRenumbersCompactly) {
  OnnxBuilder b;
  b.Input("x", {-1, 4}).Output("y", {-1, 4});
  b.Init("unused", {100}, RandomFloats(100, 16));
  b.Node("Sigmoid", {"x"}, {"dead"});
  b.Node("Relu", {"x"}, {"y"});
  auto g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(OpList(*g), Ops{"Relu"});
  EXPECT_EQ(g->tensors.size(), 2u);
  EXPECT_EQ(g->WeightBytes(), 0u);
}

}  // namespace
}  // namespace edgeinfer
