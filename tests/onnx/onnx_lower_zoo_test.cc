// Patterns of models trained elsewhere (torch exports) that a model-zoo sweep found failing:
// Split (qkv.split), Equal and Where (masked_fill, expand(B, -1, -1)), Expand over the batch
// (ViT's class token, F.normalize), InstanceNormalization (GroupNorm), Resize (F.interpolate),
// ReduceProd of shape values (x.var()), ConvTranspose, Max/Min/Sum; and small torch models run
// against torch's outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "inference/model.h"
#include "inference/session.h"
#include "tests/inference/op_test_util.h"
#include "tests/onnx/onnx_test_util.h"

namespace edgeinfer {
namespace {

using testing::ExpectError;
using testing::MustImport;
using testing::OnnxBuilder;
using testing::OpList;
using testing::OutputDesc;
using Ints = std::vector<int64_t>;

constexpr int64_t B = kBatchDim;
constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> Iota(size_t n, float from = 0.f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = from + static_cast<float>(i);
  return v;
}

onnx::TensorProto BoolTensor(const std::string& name, const Ints& dims, const Ints& v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::BOOL);
  for (int64_t d : dims) t.add_dims(d);
  for (int64_t x : v) t.add_int32_data(static_cast<int32_t>(x));
  return t;
}

TEST(OnnxLowerZoo, SplitBecomesSlicesPerOutput) {
  // Opset 13: sizes from an input; x [B, 2, 6] -> [B, 2, 1], [B, 2, 2], [B, 2, 3].
  OnnxBuilder b;
  b.Input("x", {-1, 2, 6}).Output("a", {-1, 2, 1}).Output("b", {-1, 2, 2}).Output("c", {-1, 2, 3});
  b.IntInit("sizes", {1, 2, 3});
  b.Node("Split", {"x", "sizes"}, {"a", "b", "c"}, "split").Int("axis", -1);
  Graph g = MustImport(b);
  EXPECT_EQ(OpList(g), (std::vector<std::string>{"Slice", "Slice", "Slice"}));
  EXPECT_EQ(OutputDesc(g, 2).dims, (Dims{B, 2, 3}));
  auto out = testing::RunGraph(g, {Iota(24)}, 2);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0], (std::vector<float>{0, 6, 12, 18}));
  EXPECT_EQ((*out)[1], (std::vector<float>{1, 2, 7, 8, 13, 14, 19, 20}));
  EXPECT_EQ((*out)[2], (std::vector<float>{3, 4, 5, 9, 10, 11, 15, 16, 17, 21, 22, 23}));

  // Opset 11: equal parts when neither input nor attribute gives sizes.
  OnnxBuilder e(11);
  e.Input("x", {-1, 4}).Output("p", {-1, 2}).Output("q", {-1, 2});
  e.Node("Split", {"x"}, {"p", "q"}).Int("axis", 1);
  auto eq = testing::RunGraph(MustImport(e), {Iota(4)}, 1);
  ASSERT_TRUE(eq.ok()) << eq.status().ToString();
  EXPECT_EQ((*eq)[1], (std::vector<float>{2, 3}));

  OnnxBuilder batch;
  batch.Input("x", {-1, 4}).Output("p", {-1, 4}).Output("q", {-1, 4});
  batch.Node("Split", {"x"}, {"p", "q"}, "split0").Int("axis", 0);
  ExpectError(batch, {"node 'split0' (Split)", "batch axis"});

  OnnxBuilder uneven(11);
  uneven.Input("x", {-1, 5}).Output("p", {-1, 2}).Output("q", {-1, 3});
  uneven.Node("Split", {"x"}, {"p", "q"}, "s").Int("axis", 1);
  ExpectError(uneven, {"Split", "evenly"});  // ONNX's checker finds it first
}

// torch's masked_fill(mask == 0, -inf) with a constant causal mask, then Softmax.
TEST(OnnxLowerZoo, WhereWithAConstantMask) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 3}).Output("y", {-1, 3, 3});
  b.Init("tril", {3, 3}, {1, 0, 0, 1, 1, 0, 1, 1, 1});
  b.Init("zero", {}, {0.f});
  b.Init("ninf", {}, {-kInf});
  b.Node("Equal", {"tril", "zero"}, {"masked"});
  b.Node("Where", {"masked", "ninf", "x"}, {"filled"}, "where");
  b.Node("Softmax", {"filled"}, {"y"}).Int("axis", -1);
  Graph g = MustImport(b);
  EXPECT_EQ(OpList(g), (std::vector<std::string>{"Where", "Softmax"}));
  auto out = testing::RunGraph(g, {std::vector<float>(18, 1.f)}, 2);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const std::vector<float> row = {1, 0, 0, .5f, .5f, 0, 1 / 3.f, 1 / 3.f, 1 / 3.f};
  std::vector<float> want = row;
  want.insert(want.end(), row.begin(), row.end());
  testing::ExpectNear((*out)[0], want);

  // A bool initializer as the condition, broadcast against X and Y.
  OnnxBuilder c;
  c.Input("x", {-1, 2}).Output("y", {-1, 2});
  *c.model().mutable_graph()->add_initializer() = BoolTensor("cond", {2}, {0, 1});
  c.Init("seven", {1}, {7.f});
  c.Node("Where", {"cond", "x", "seven"}, {"y"});
  auto cy = testing::RunGraph(MustImport(c), {{3, 4, 5, 6}}, 2);
  ASSERT_TRUE(cy.ok()) << cy.status().ToString();
  EXPECT_EQ((*cy)[0], (std::vector<float>{7, 4, 7, 6}));

  // A condition computed at run time needs boolean tensors: refused naming the node.
  OnnxBuilder r;
  r.Input("x", {-1, 2}).Output("y", {-1, 2});
  r.Init("zero", {}, {0.f});
  r.Node("Equal", {"x", "zero"}, {"m"}, "eq");
  r.Node("Where", {"m", "zero", "x"}, {"y"});
  ExpectError(r, {"node 'eq' (Equal)", "run time"});
}

// cls_token.expand(x.shape[0], -1, -1): the shape is Shape/Gather/Concat with -1s, then Equal
// with -1 and Where picking 1 (torch's export of expand's -1), then Expand of a constant.
TEST(OnnxLowerZoo, ExpandOfATokenOverTheBatch) {
  OnnxBuilder b;
  b.Input("x", {-1, 2, 3}).Output("y", {-1, 3, 3});
  b.Init("cls", {1, 1, 3}, {10, 20, 30});
  b.Node("Shape", {"x"}, {"shape"});
  b.IntInit("i0", {0});
  b.Node("Gather", {"shape", "i0"}, {"batch"}).Int("axis", 0);
  b.IntInit("rest", {-1, -1});
  b.Node("Concat", {"batch", "rest"}, {"want"}).Int("axis", 0);
  b.IntInit("minus1", {-1});
  b.Node("Equal", {"want", "minus1"}, {"keep"});
  b.IntInit("ones", {1, 1, 1});
  b.Node("Where", {"keep", "ones", "want"}, {"shape2"});
  b.Node("Expand", {"cls", "shape2"}, {"c"}, "expand");
  b.Node("Concat", {"c", "x"}, {"y"}).Int("axis", 1);
  Graph g = MustImport(b, /*optimize=*/true);
  EXPECT_EQ(OpList(g), (std::vector<std::string>{"Expand", "Concat"}));
  auto model = Model::FromGraph(g);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  SessionOptions options;
  options.max_batch = 3;
  auto session = Session::Create(*model, options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  const std::vector<float> x = Iota(18);
  for (int batch : {3, 1}) {
    const float* in[] = {x.data()};
    ASSERT_TRUE((*session)->Run(in, batch).ok());
    const TensorView y = (*session)->output(0);
    ASSERT_EQ(y.shape.NumElements(), batch * 9);
    for (int s = 0; s < batch; ++s) {
      EXPECT_EQ(y.f32()[s * 9], 10.f);
      EXPECT_EQ(y.f32()[s * 9 + 2], 30.f);
      EXPECT_EQ(y.f32()[s * 9 + 3], x[s * 6]);
    }
  }

  // Expand of a computed tensor (F.normalize expands the norm [B, 1] to [B, 4]).
  OnnxBuilder c;
  c.Input("x", {-1, 1}).Output("y", {-1, 4});
  c.Node("Shape", {"x"}, {"s"});
  c.IntInit("i0", {0});
  c.Node("Gather", {"s", "i0"}, {"n"}).Int("axis", 0);
  c.IntInit("four", {4});
  c.Node("Concat", {"n", "four"}, {"shape"}).Int("axis", 0);
  c.Node("Expand", {"x", "shape"}, {"y"});
  auto cy = testing::RunGraph(MustImport(c), {{2, 5}}, 2);
  ASSERT_TRUE(cy.ok()) << cy.status().ToString();
  EXPECT_EQ((*cy)[0], (std::vector<float>{2, 2, 2, 2, 5, 5, 5, 5}));

  // Comparing the batch with a positive literal depends on the batch size: refused.
  OnnxBuilder d;
  d.Input("x", {-1, 1}).Output("y", {-1, 1});
  d.Node("Shape", {"x"}, {"s"});
  d.IntInit("two", {2, 1});
  d.Node("Equal", {"s", "two"}, {"e"}, "eq");
  d.Node("Where", {"e", "s", "two"}, {"w"});
  d.Node("Expand", {"x", "w"}, {"y"});
  ExpectError(d, {"node 'eq' (Equal)", "depends on the batch"});
}

TEST(OnnxLowerZoo, InstanceNormalizationIsALayerNormPerChannel) {
  OnnxBuilder b;
  b.Input("x", {-1, 2, 4}).Output("y", {-1, 2, 4});
  b.Init("scale", {2}, {1.f, 2.f});
  b.Init("bias", {2}, {0.f, 1.f});
  b.Node("InstanceNormalization", {"x", "scale", "bias"}, {"y"}, "in").Float("epsilon", 0.f);
  Graph g = MustImport(b);
  EXPECT_EQ(OpList(g), (std::vector<std::string>{"LayerNormalization", "Mul", "Add"}));
  // Each channel's row [a, a+1, a+2, a+3] normalizes to +-1.342, +-0.447 (std sqrt(1.25)).
  auto out = testing::RunGraph(g, {Iota(8)}, 1);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const float k = 1.f / std::sqrt(1.25f);
  testing::ExpectNear(
      (*out)[0], {-1.5f * k, -.5f * k, .5f * k, 1.5f * k, -3 * k + 1, -k + 1, k + 1, 3 * k + 1});

  // GroupNorm's form: unit scale, zero bias -> the LayerNormalization alone.
  OnnxBuilder u;
  u.Input("x", {-1, 2, 4}).Output("y", {-1, 2, 4});
  u.Init("scale", {2}, {1.f, 1.f});
  u.Init("bias", {2}, {0.f, 0.f});
  u.Node("InstanceNormalization", {"x", "scale", "bias"}, {"y"});
  EXPECT_EQ(OpList(MustImport(u)), std::vector<std::string>{"LayerNormalization"});
}

// x [1, 1, 2, 2] = [[1, 2], [3, 4]] upsampled 2x.
OnnxBuilder ResizeModel(const std::string& mode, const std::string& coord, bool sizes) {
  OnnxBuilder b;
  b.Input("x", {-1, 1, 2, 2}).Output("y", {-1, 1, 4, 4});
  b.Init("roi", {0}, {});
  if (sizes) {  // as torch's F.interpolate(size=...) exports it: x.shape[:2] + (4, 4)
    b.Node("Shape", {"x"}, {"shape"});
    b.IntInit("s0", {0}).IntInit("s2", {2}).IntInit("hw", {4, 4});
    b.Node("Slice", {"shape", "s0", "s2"}, {"nc"});
    b.Node("Concat", {"nc", "hw"}, {"sizes"}).Int("axis", 0);
    b.Node("Resize", {"x", "roi", "", "sizes"}, {"y"}, "resize")
        .Str("mode", mode)
        .Str("coordinate_transformation_mode", coord)
        .Str("nearest_mode", "floor");
  } else {
    b.Init("scales", {4}, {1, 1, 2, 2});
    b.Node("Resize", {"x", "roi", "scales"}, {"y"}, "resize")
        .Str("mode", mode)
        .Str("coordinate_transformation_mode", coord)
        .Str("nearest_mode", "floor");
  }
  return b;
}

TEST(OnnxLowerZoo, ResizeNearestAndBilinear) {
  // torch's nearest: asymmetric + floor.
  auto nearest =
      testing::RunGraph(MustImport(ResizeModel("nearest", "asymmetric", false)), {{1, 2, 3, 4}}, 1);
  ASSERT_TRUE(nearest.ok()) << nearest.status().ToString();
  EXPECT_EQ((*nearest)[0], (std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}));
  // torch's bilinear, align_corners=False: half_pixel, edges clamped.
  auto linear =
      testing::RunGraph(MustImport(ResizeModel("linear", "half_pixel", true)), {{1, 2, 3, 4}}, 1);
  ASSERT_TRUE(linear.ok()) << linear.status().ToString();
  testing::ExpectNear((*linear)[0], {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f,
                                     3.25f, 3.5f, 3, 3.25f, 3.75f, 4});
  // align_corners=True.
  auto corners = testing::RunGraph(MustImport(ResizeModel("linear", "align_corners", true)),
                                   {{1, 2, 3, 4}}, 1);
  ASSERT_TRUE(corners.ok()) << corners.status().ToString();
  EXPECT_NEAR((*corners)[0][1], 1 + 1 / 3.f, 1e-6f);
  EXPECT_EQ((*corners)[0][15], 4.f);

  ExpectError(ResizeModel("cubic", "half_pixel", false), {"node 'resize' (Resize)", "cubic"});
  ExpectError(ResizeModel("linear", "tf_crop_and_resize", false),
              {"node 'resize' (Resize)", "tf_crop_and_resize"});
  OnnxBuilder nc;
  nc.Input("x", {-1, 1, 2, 2}).Output("y", {-1, 2, 4, 4});
  nc.Init("roi", {0}, {});
  nc.Init("scales", {4}, {1, 2, 2, 2});
  nc.Node("Resize", {"x", "roi", "scales"}, {"y"}, "r");
  ExpectError(nc, {"node 'r' (Resize)", "N or C axis"});
}

// torch's x.var(1): the element count as ReduceProd of gathered dims, cast to float.
TEST(OnnxLowerZoo, ReduceProdOfShapeValuesFolds) {
  OnnxBuilder b;
  b.Input("x", {-1, 4}).Output("y", {-1, 4});
  b.Node("Shape", {"x"}, {"s"});
  b.IntInit("i1", {1});
  b.Node("Gather", {"s", "i1"}, {"n"}).Int("axis", 0);
  b.Node("ReduceProd", {"n"}, {"count"}).Int("keepdims", 0);
  b.Node("Cast", {"count"}, {"f"}).Int("to", onnx::TensorProto::FLOAT);
  b.Node("Mul", {"x", "f"}, {"y"});
  Graph g = MustImport(b);
  EXPECT_EQ(OpList(g), std::vector<std::string>{"Mul"});
  auto out = testing::RunGraph(g, {{1, 2, 3, 4}}, 1);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0], (std::vector<float>{4, 8, 12, 16}));

  OnnxBuilder batch;  // the product over the batch dim would be B x 4: fine; B x B is refused
  batch.Input("x", {-1, 4}).Output("y", {-1, 4});
  batch.Node("Shape", {"x"}, {"s"});
  batch.IntInit("i", {0, 0});
  batch.Node("Gather", {"s", "i"}, {"n"}).Int("axis", 0);
  batch.Node("ReduceProd", {"n"}, {"count"}, "prod").Int("keepdims", 0);
  batch.Node("Cast", {"count"}, {"f"}).Int("to", onnx::TensorProto::FLOAT);
  batch.Node("Mul", {"x", "f"}, {"y"});
  ExpectError(batch, {"node 'prod' (ReduceProd)"});
}

// torch.arange(T) causal mask (Range, Unsqueeze, GreaterOrEqual, Not, Where) and learned
// positions (Gather of an embedding table at arange) fold at import.
TEST(OnnxLowerZoo, ArangeMaskAndPositionsFold) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 3}).Output("y", {-1, 3, 3});
  b.IntInit("zero", {0}).IntInit("three", {3}).IntInit("one", {1});
  b.IntInit("ax0", {0}).IntInit("ax1", {1});
  b.Node("Squeeze", {"zero"}, {"s0"});
  b.Node("Squeeze", {"three"}, {"s3"});
  b.Node("Squeeze", {"one"}, {"s1"});
  b.Node("Range", {"s0", "s3", "s1"}, {"i"});
  b.Node("Unsqueeze", {"i", "ax1"}, {"col"});
  b.Node("Unsqueeze", {"i", "ax0"}, {"row"});
  b.Node("GreaterOrEqual", {"col", "row"}, {"keep"});
  b.Node("Not", {"keep"}, {"drop"});
  b.Init("table", {5, 3}, Iota(15, 100.f));
  b.Node("Gather", {"table", "i"}, {"pos"}).Int("axis", 0);
  b.Node("Add", {"x", "pos"}, {"h"});
  b.Init("ninf", {}, {-kInf});
  b.Node("Where", {"drop", "ninf", "h"}, {"y"});
  Graph g = MustImport(b);
  EXPECT_EQ(OpList(g), (std::vector<std::string>{"Add", "Where"}));
  auto out = testing::RunGraph(g, {std::vector<float>(9, 0.f)}, 1);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0], (std::vector<float>{100, -kInf, -kInf, 103, 104, -kInf, 106, 107, 108}));

  OnnxBuilder f;  // a Range of floats is a tensor, not shape values: refused
  f.Input("x", {-1, 3}).Output("y", {-1, 3});
  f.Init("a", {}, {0.f}).Init("c", {}, {3.f}).Init("d", {}, {1.f});
  f.Node("Range", {"a", "c", "d"}, {"r"}, "range");
  f.Node("Add", {"x", "r"}, {"y"});
  ExpectError(f, {"node 'range' (Range)", "floats"});
}

// torch.maximum / torch.minimum / sum of several tensors: variadic ONNX ops as chains.
TEST(OnnxLowerZoo, VariadicMaxMinSumBecomeChains) {
  OnnxBuilder b;
  b.Input("x", {-1, 3}).Output("mx", {-1, 3}).Output("mn", {-1, 3}).Output("s", {-1, 3});
  b.Init("a", {3}, {0, 5, -5});
  b.Init("c", {1}, {1});
  b.Node("Max", {"x", "a", "c"}, {"mx"});
  b.Node("Min", {"x", "a"}, {"mn"});
  b.Node("Sum", {"x", "a", "c"}, {"s"});
  Graph g = MustImport(b);
  EXPECT_EQ(OpList(g), (std::vector<std::string>{"Max", "Max", "Min", "Add", "Add"}));
  auto out = testing::RunGraph(g, {{2, 3, -7}}, 1);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0], (std::vector<float>{2, 5, 1}));
  EXPECT_EQ((*out)[1], (std::vector<float>{0, 3, -7}));
  EXPECT_EQ((*out)[2], (std::vector<float>{3, 9, -11}));
}

// Small torch exports (tests/data/zoo/gen.py) against torch's outputs, through the session at
// the batch they were made with and at batch 1.
TEST(OnnxLowerZoo, TorchModelsMatchTorch) {
  const std::filesystem::path dir = std::filesystem::path(EDGEINFER_SOURCE_DIR) / "tests/data/zoo";
  struct Case {
    const char* name;
    int64_t in_per_sample, out_per_sample;
  };
  const Case cases[] = {
      {"split_heads", 10 * 16, 4},
      {"mha_pool", 12 * 8, 3},
      {"groupnorm", 3 * 8 * 8, 4},
      {"up_bilinear", 3 * 16 * 16, 2 * 16 * 16},
      {"glu", 4 * 20, 4},
      {"ae1d", 3 * 32, 3 * 32},
      {"unet_tiny", 3 * 16 * 16, 2 * 16 * 16},
      {"causal_attn", 12 * 8, 3},
      {"misc", 3 * 8 * 8, 4},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto g = ImportOnnxFile((dir / (std::string(c.name) + ".onnx")).string());
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    auto read = [&](const char* ext) {
      std::ifstream f(dir / (std::string(c.name) + ext), std::ios::binary);
      std::vector<float> v(1 << 16);
      f.read(reinterpret_cast<char*>(v.data()), v.size() * sizeof(float));
      v.resize(f.gcount() / sizeof(float));
      return v;
    };
    const std::vector<float> x = read(".in.f32"), want = read(".out.f32");
    const int64_t batch = static_cast<int64_t>(x.size()) / c.in_per_sample;
    ASSERT_EQ(batch * c.in_per_sample, static_cast<int64_t>(x.size()));
    ASSERT_EQ(want.size(), static_cast<size_t>(batch * c.out_per_sample));
    auto model = Model::FromGraph(*g);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    SessionOptions options;
    options.max_batch = static_cast<int>(batch);
    auto session = Session::Create(*model, options);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    for (int64_t n : {batch, int64_t{1}}) {
      const float* in[] = {x.data()};
      ASSERT_TRUE((*session)->Run(in, static_cast<int>(n)).ok());
      const TensorView y = (*session)->output(0);
      ASSERT_EQ(y.shape.NumElements(), n * c.out_per_sample);
      testing::ExpectNear(std::vector<float>(y.f32(), y.f32() + n * c.out_per_sample),
                          std::vector<float>(want.begin(), want.begin() + n * c.out_per_sample),
                          1e-4f, 1e-5f);
    }
  }
}

}  // namespace
}  // namespace edgeinfer
