// Lowering of single ONNX ops: attributes made explicit, auto_pad resolved, shape ops turned
// into one Reshape with symbolic dims, refusals naming the node.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/onnx/onnx_test_util.h"

namespace edgeinfer {
namespace {

using testing::OnnxBuilder;
using testing::OpList;
using testing::OutputDesc;
using Ints = std::vector<int64_t>;

constexpr int64_t B = kBatchDim;
constexpr int64_t kAny = OnnxBuilder::kUnknownDim;

Graph MustImport(const OnnxBuilder& b, bool optimize = false) {
  auto g = b.Import(optimize);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? std::move(g).value() : Graph{};
}

void ExpectError(const OnnxBuilder& b, std::initializer_list<std::string> parts) {
  auto r = b.Import();
  ASSERT_FALSE(r.ok());
  for (const std::string& p : parts)
    EXPECT_NE(r.status().message().find(p), std::string::npos)
        << "'" << p << "' not in: " << r.status().message();
}

std::vector<float> Zeros(size_t n) { return std::vector<float>(n, 0.f); }

// x [B, C, *spatial] -> Conv(W [M, C, *k]) -> y, with extra attributes set by `attrs`.
template <class F>
OnnxBuilder ConvModel(Ints spatial, Ints kernel, F attrs, int64_t c = 1, int64_t m = 2) {
  OnnxBuilder b;
  Ints x = {-1, c}, w = {m, c}, y = {-1, m};
  x.insert(x.end(), spatial.begin(), spatial.end());
  w.insert(w.end(), kernel.begin(), kernel.end());
  for (size_t i = 0; i < spatial.size(); ++i) y.push_back(kAny);
  b.Input("x", x).Output("y", y);
  size_t wn = m * c;
  for (int64_t k : kernel) wn *= k;
  b.Init("w", w, Zeros(wn));
  attrs(b.Node("Conv", {"x", "w"}, {"y"}, "conv"));
  return b;
}

TEST(OnnxLower, ConvAttributesAreExplicit) {
  auto b = ConvModel({16, 16}, {3, 3}, [](testing::NodeRef n) {
    n.Ints("strides", {2, 2}).Ints("pads", {1, 1, 1, 1});
  });
  Graph g = MustImport(b);
  ASSERT_EQ(OpList(g), std::vector<std::string>{"Conv"});
  const Attrs& a = g.nodes[0].attrs;
  EXPECT_EQ(a.GetInts("kernel_shape"), (Ints{3, 3}));
  EXPECT_EQ(a.GetInts("strides"), (Ints{2, 2}));
  EXPECT_EQ(a.GetInts("dilations"), (Ints{1, 1}));
  EXPECT_EQ(a.GetInts("pads"), (Ints{1, 1, 1, 1}));
  EXPECT_EQ(a.GetInt("group", -1), 1);
  EXPECT_EQ(OutputDesc(g).dims, (Dims{B, 2, 8, 8}));
}

TEST(OnnxLower, ConvAutoPadResolvedToPads) {
  struct Case {
    const char* mode;
    Ints spatial, kernel, strides, pads, out;
  };
  const Case cases[] = {
      {"SAME_UPPER", {5, 5}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {3, 3}},
      {"SAME_UPPER", {5, 6}, {4, 4}, {1, 1}, {1, 1, 2, 2}, {5, 6}},
      {"SAME_LOWER", {5, 6}, {4, 4}, {1, 1}, {2, 2, 1, 1}, {5, 6}},
      {"VALID", {5, 6}, {3, 3}, {1, 1}, {0, 0, 0, 0}, {3, 4}},
      {"SAME_UPPER", {256}, {7}, {2}, {2, 3}, {128}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.mode) + " " + DimsToString(c.spatial));
    auto b = ConvModel(c.spatial, c.kernel, [&](testing::NodeRef n) {
      n.Str("auto_pad", c.mode).Ints("strides", c.strides);
    });
    Graph g = MustImport(b);
    ASSERT_EQ(g.nodes.size(), 1u);
    EXPECT_EQ(g.nodes[0].attrs.GetInts("pads"), c.pads);
    Dims want = {B, 2};
    want.insert(want.end(), c.out.begin(), c.out.end());
    EXPECT_EQ(OutputDesc(g).dims, want);
  }
}

TEST(OnnxLower, ConvRefusesUnknownAutoPad) {
  auto b = ConvModel({8, 8}, {3, 3}, [](testing::NodeRef n) { n.Str("auto_pad", "FOO"); });
  auto r = b.Import();  // ONNX's checker lets any auto_pad string through
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("node 'conv' (Conv)"), std::string::npos);
  EXPECT_NE(r.status().message().find("FOO"), std::string::npos);
}

TEST(OnnxLower, ConvRefuses3D) {
  auto b = ConvModel({4, 4, 4}, {3, 3, 3}, [](testing::NodeRef) {});
  ExpectError(b, {"node 'conv' (Conv)", "3-D"});
}

TEST(OnnxLower, MaxPoolAttributesAndRefusals) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 9, 9}).Output("y", {-1, 3, kAny, kAny});
  b.Node("MaxPool", {"x"}, {"y"}, "pool")
      .Ints("kernel_shape", {3, 3})
      .Ints("strides", {2, 2})
      .Ints("dilations", {1, 1})
      .Int("ceil_mode", 1);
  Graph g = MustImport(b);
  ASSERT_EQ(OpList(g), std::vector<std::string>{"MaxPool"});
  EXPECT_EQ(g.nodes[0].attrs.GetInt("ceil_mode"), 1);
  EXPECT_EQ(g.nodes[0].attrs.GetInts("pads"), (Ints{0, 0, 0, 0}));
  EXPECT_EQ(OutputDesc(g).dims, (Dims{B, 3, 4, 4}));

  OnnxBuilder order;
  order.Input("x", {-1, 3, 9, 9}).Output("y", {-1, 3, kAny, kAny});
  order.Node("MaxPool", {"x"}, {"y"}, "pool").Ints("kernel_shape", {3, 3}).Int("storage_order", 1);
  ExpectError(order, {"node 'pool' (MaxPool)", "storage_order"});

  OnnxBuilder idx;
  idx.Input("x", {-1, 3, 9, 9}).Output("y", {-1, 3, kAny, kAny});
  idx.Node("MaxPool", {"x"}, {"p", "i"}, "pool").Ints("kernel_shape", {3, 3});
  idx.Node("Cast", {"i"}, {"f"}).Int("to", onnx::TensorProto::FLOAT);
  idx.Node("Add", {"p", "f"}, {"y"});
  ExpectError(idx, {"node 'pool' (MaxPool)", "Indices"});

  OnnxBuilder unused;  // an Indices output nobody reads is fine
  unused.Input("x", {-1, 3, 9, 9}).Output("y", {-1, 3, kAny, kAny});
  unused.Node("MaxPool", {"x"}, {"y", "i"}, "pool").Ints("kernel_shape", {3, 3});
  EXPECT_EQ(OpList(MustImport(unused)), std::vector<std::string>{"MaxPool"});
}

TEST(OnnxLower, AveragePoolAndGlobalPools) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 8}).Output("y", {-1, 3, 1});
  b.Node("AveragePool", {"x"}, {"a"})
      .Ints("kernel_shape", {2})
      .Ints("pads", {1, 1})
      .Int("count_include_pad", 1);
  b.Node("GlobalMaxPool", {"a"}, {"m"});
  b.Node("GlobalAveragePool", {"m"}, {"y"});
  Graph g = MustImport(b);
  ASSERT_EQ(OpList(g),
            (std::vector<std::string>{"AveragePool", "GlobalMaxPool", "GlobalAveragePool"}));
  EXPECT_EQ(g.nodes[0].attrs.GetInt("count_include_pad"), 1);
  EXPECT_EQ(g.tensors[g.nodes[0].outputs[0]].dims, (Dims{B, 3, 9}));
  EXPECT_EQ(OutputDesc(g).dims, (Dims{B, 3, 1}));
}

TEST(OnnxLower, BatchNormRefusesTrainingMode) {
  OnnxBuilder b(15);
  b.Input("x", {-1, 2}).Output("y", {-1, 2});
  for (const char* p : {"s", "bias", "mean", "var"}) b.Init(p, {2}, {1, 1});
  b.Node("BatchNormalization", {"x", "s", "bias", "mean", "var"}, {"y"}, "bn")
      .Int("training_mode", 1);
  OnnxImportOptions no_check;  // the checker wants the training outputs with training_mode=1
  no_check.run_checker = false;
  auto r = ImportOnnxBytes(b.Bytes(), no_check);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("node 'bn' (BatchNormalization)"), std::string::npos);
  EXPECT_NE(r.status().message().find("training_mode"), std::string::npos);
}

TEST(OnnxLower, GemmAttributesAreExplicit) {
  OnnxBuilder b;
  b.Input("x", {-1, 4}).Output("y", {-1, 3});
  b.Init("w", {3, 4}, Zeros(12)).Init("c", {3}, Zeros(3));
  b.Node("Gemm", {"x", "w", "c"}, {"y"}).Int("transB", 1).Float("alpha", 0.5f);
  Graph g = MustImport(b);
  ASSERT_EQ(OpList(g), std::vector<std::string>{"Gemm"});
  const Attrs& a = g.nodes[0].attrs;
  EXPECT_EQ(a.GetInt("transA", -1), 0);
  EXPECT_EQ(a.GetInt("transB", -1), 1);
  EXPECT_EQ(a.GetFloat("alpha"), 0.5f);
  EXPECT_EQ(a.GetFloat("beta"), 1.f);
  EXPECT_EQ(OutputDesc(g).dims, (Dims{B, 3}));
}

TEST(OnnxLower, FlattenReshapeSqueezeUnsqueezeKeepTheBatch) {
  OnnxBuilder b;
  b.Input("x", {-1, 3, 4, 5}).Output("y", {kAny, kAny, kAny, kAny});
  b.IntInit("shape", {0, -1, 5}).IntInit("axes", {1, 3});
  b.Node("Flatten", {"x"}, {"f"}).Int("axis", 2);  // [3B, 20]
  b.Node("Reshape", {"f", "shape"}, {"r"});        // [3B, 4, 5]
  b.Node("Unsqueeze", {"r", "axes"}, {"u"});       // [3B, 1, 4, 1, 5]
  b.Node("Squeeze", {"u"}, {"s"});                 // [3B, 4, 5]
  b.Node("Reshape", {"s", "four"}, {"y"});         // [B, 3, 4, 5]
  b.IntInit("four", {-1, 3, 4, 5});
  Graph g = MustImport(b);
  ASSERT_EQ(OpList(g),
            (std::vector<std::string>{"Reshape", "Reshape", "Reshape", "Reshape", "Reshape"}));
  auto dims = [&](int i) { return g.tensors[g.nodes[i].outputs[0]].dims; };
  EXPECT_EQ(dims(0), (Dims{-3, 20}));
  EXPECT_EQ(dims(1), (Dims{-3, 4, 5}));
  EXPECT_EQ(dims(2), (Dims{-3, 1, 4, 1, 5}));
  EXPECT_EQ(dims(3), (Dims{-3, 4, 5}));
  EXPECT_EQ(dims(4), (Dims{B, 3, 4, 5}));
  EXPECT_EQ(g.nodes[0].attrs.GetInts("shape"), (Ints{-3, 20}));
}

TEST(OnnxLower, SqueezeOfTheBatchIsRefused) {
  OnnxBuilder b(11);
  b.Input("x", {-1, 3}).Output("y", {3});
  b.Node("Squeeze", {"x"}, {"y"}, "sq").Ints("axes", {0});
  ExpectError(b, {"node 'sq' (Squeeze)", "axis 0"});
}

// What torch.onnx.export writes for x.reshape(x.size(0), -1) with a dynamic batch.
OnnxBuilder DynamicReshapeModel(int opset) {
  OnnxBuilder b(opset);
  b.Input("x", {-1, 1, 28, 28}).Output("y", {-1, 784});
  b.Node("Shape", {"x"}, {"shape"});
  b.Node("Constant", {}, {"zero"}).Tensor("value", testing::IntTensor("", {}, {0}));
  b.Node("Gather", {"shape", "zero"}, {"batch"}).Int("axis", 0);
  if (opset >= 13) {
    b.IntInit("axes", {0});
    b.Node("Unsqueeze", {"batch", "axes"}, {"batch1"});
  } else {
    b.Node("Unsqueeze", {"batch"}, {"batch1"}).Ints("axes", {0});
  }
  b.Node("Constant", {}, {"minus1"}).Tensor("value", testing::IntTensor("", {1}, {-1}));
  b.Node("Concat", {"batch1", "minus1"}, {"target"}).Int("axis", 0);
  b.Node("Reshape", {"x", "target"}, {"y"});
  return b;
}

TEST(OnnxLower, ShapeGatherUnsqueezeConcatReshapeFoldsToOneReshape) {
  for (int opset : {11, 13, 17}) {
    SCOPED_TRACE(opset);
    Graph g = MustImport(DynamicReshapeModel(opset));
    ASSERT_EQ(OpList(g), std::vector<std::string>{"Reshape"});
    EXPECT_EQ(g.nodes[0].attrs.GetInts("shape"), (Ints{B, 784}));
    EXPECT_EQ(OutputDesc(g).dims, (Dims{B, 784}));
    EXPECT_EQ(g.tensors.size(), 2u);  // no int64 tensor survives
  }
}

TEST(OnnxLower, ShapeArithmeticWithSliceCastAndMul) {
  // y = x.reshape(x.size(0) * 3, x.size(2) * x.size(3) / 2 ... ) in the style of exporters.
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 4, 6}).Output("y", {kAny, kAny});
  b.Node("Shape", {"x"}, {"s"});
  b.IntInit("lo", {2}).IntInit("hi", {4}).IntInit("zero", {0}).IntInit("one", {1});
  b.Node("Slice", {"s", "lo", "hi"}, {"hw"});              // [4, 6]
  b.Node("Gather", {"hw", "zero"}, {"h"}).Int("axis", 0);  // [4] (1-D index -> 1-D)
  b.Node("Gather", {"hw", "one"}, {"w"}).Int("axis", 0);   // [6]
  b.Node("Mul", {"h", "w"}, {"hw2"});                      // [24]
  b.Node("Cast", {"hw2"}, {"hw3"}).Int("to", onnx::TensorProto::INT64);
  b.Node("Slice", {"s", "zero", "one"}, {"n"});  // [B]
  b.Node("Mul", {"n", "three"}, {"n3"});         // [3B]
  b.IntInit("three", {3});
  b.Node("Concat", {"n3", "hw3"}, {"target"}).Int("axis", 0);
  b.Node("Reshape", {"x", "target"}, {"y"});
  Graph g = MustImport(b);
  ASSERT_EQ(OpList(g), std::vector<std::string>{"Reshape"});
  EXPECT_EQ(OutputDesc(g).dims, (Dims{-3, 24}));
}

TEST(OnnxLower, SoftmaxLegacyOnlyWhenItDiffers) {
  struct Case {
    int opset;
    Ints dims;
    int64_t axis;  // -100: attribute absent
    int64_t want_axis, want_legacy;
  };
  const Case cases[] = {
      {11, {-1, 10}, -100, 1, 0},    // default axis 1 is the last: same as opset 13
      {11, {-1, 3, 4}, -100, 1, 1},  // normalizes over 3x4 together
      {11, {-1, 3, 1}, 1, 1, 0},     // trailing 1s: equivalent
      {13, {-1, 3, 4}, -100, 2, 0}, {13, {-1, 3, 4}, -2, 1, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.opset) + " " + DimsToString(c.dims));
    OnnxBuilder b(c.opset);
    Ints out = c.dims;
    b.Input("x", c.dims).Output("y", out);
    auto n = b.Node("LogSoftmax", {"x"}, {"y"});
    if (c.axis != -100) n.Int("axis", c.axis);
    Graph g = MustImport(b);
    ASSERT_EQ(OpList(g), std::vector<std::string>{"LogSoftmax"});
    EXPECT_EQ(g.nodes[0].attrs.GetInt("axis", -7), c.want_axis);
    EXPECT_EQ(g.nodes[0].attrs.GetInt("legacy", -7), c.want_legacy);
  }
}

TEST(OnnxLower, ClipBoundsBecomeAttributes) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 4}).Output("y", {-1, 4});
  b.Init("lo", {}, {-1.5f});
  b.Node("Clip", {"x", "lo"}, {"y"});
  Graph g = MustImport(b);
  ASSERT_EQ(OpList(g), std::vector<std::string>{"Clip"});
  EXPECT_EQ(g.nodes[0].attrs.GetFloat("min"), -1.5f);
  EXPECT_FALSE(g.nodes[0].attrs.Has("max"));  // absent: +inf

  OnnxBuilder c(13);
  c.Input("x", {-1, 4}).Input("hi", {}).Output("y", {-1, 4});
  c.Node("Clip", {"x", "", "hi"}, {"y"}, "clip");
  ExpectError(c, {"node 'clip' (Clip)", "constant"});
}

TEST(OnnxLower, TransposeConcatLeakyReluAndConstants) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 2, 3}).Output("y", {6, 2, -1});
  b.Node("Constant", {}, {"half"}).Float("value_float", 0.5f);
  b.Node("Constant", {}, {"vec"}).Floats("value_floats", {1, 2, 3});
  b.Node("Mul", {"x", "half"}, {"m"});
  b.Node("Add", {"m", "vec"}, {"a"});
  b.Node("LeakyRelu", {"a"}, {"l"}).Float("alpha", 0.2f);
  b.Node("Concat", {"l", "x"}, {"c"}).Int("axis", -1);
  b.Node("Transpose", {"c"}, {"y"});
  Graph g = MustImport(b);
  ASSERT_EQ(OpList(g),
            (std::vector<std::string>{"Mul", "Add", "LeakyRelu", "Concat", "Transpose"}));
  EXPECT_EQ(g.nodes[2].attrs.GetFloat("alpha"), 0.2f);
  EXPECT_EQ(g.nodes[3].attrs.GetInt("axis"), 2);
  EXPECT_EQ(g.nodes[4].attrs.GetInts("perm"), (Ints{2, 1, 0}));
  EXPECT_EQ(OutputDesc(g).dims, (Dims{6, 2, B}));
}

TEST(OnnxLower, IdentityAndDropoutDisappear) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 4}).Output("y", {-1, 4});
  b.Node("Identity", {"x"}, {"i"});
  b.Node("Dropout", {"i"}, {"d"});
  b.Node("Relu", {"d"}, {"y"});
  EXPECT_EQ(OpList(MustImport(b)), std::vector<std::string>{"Relu"});

  OnnxBuilder mask(13);
  mask.Input("x", {-1, 4}).Output("y", {-1, 4}).Output("m", {-1, 4}, onnx::TensorProto::BOOL);
  mask.Node("Dropout", {"x"}, {"y", "m"}, "drop");
  ExpectError(mask, {"node 'drop' (Dropout)", "mask"});
}

TEST(OnnxLower, RefusesIntegerTensorsAtRuntime) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 4}).Output("y", {2});
  b.Node("Shape", {"x"}, {"s"});
  b.Node("Cast", {"s"}, {"y"}).Int("to", onnx::TensorProto::FLOAT);
  // [B, 4] cast to float depends on the batch: not a constant.
  ExpectError(b, {"Cast", "batch"});
}

}  // namespace
}  // namespace edgeinfer
