// Lowering of single ONNX ops: attributes made explicit, auto_pad resolved, shape ops turned
// into one Reshape with symbolic dims, refusals naming the node.
#include <gtest/gtest.h>

#include <algorithm>
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
constexpr int64_t kAny = OnnxBuilder::kUnknownDim;

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

// ---------------------------------------------------------------- reductions, math, Pad, LayerNorm

TEST(OnnxLower, ReduceAxesFromAttributeOrInput) {
  // Opset 11: axes attribute for every reduction; opset 13: ReduceSum reads them from input 1.
  {
    OnnxBuilder b(11);
    b.Input("x", {-1, 4, 6}).Output("y", {-1, 4});
    b.Node("ReduceSum", {"x"}, {"y"}).Ints("axes", {-1}).Int("keepdims", 0);
    Graph g = MustImport(b);
    ASSERT_EQ(OpList(g), std::vector<std::string>{"ReduceSum"});
    EXPECT_EQ(g.nodes[0].attrs.GetInts("axes"), (Ints{2}));
    EXPECT_EQ(OutputDesc(g).dims, (Dims{B, 4}));
  }
  {
    OnnxBuilder b(13);
    b.Input("x", {-1, 4, 6}).Output("y", {-1, 1, 1}).IntInit("axes", {-1, 1});
    b.Node("ReduceSum", {"x", "axes"}, {"y"});
    Graph g = MustImport(b);
    EXPECT_EQ(g.nodes[0].attrs.GetInts("axes"), (Ints{1, 2}));  // sorted, normalized
    EXPECT_EQ(g.nodes[0].attrs.GetInt("keepdims", -1), 1);
    EXPECT_EQ(OutputDesc(g).dims, (Dims{B, 1, 1}));
  }
  {
    OnnxBuilder b(13);
    b.Input("x", {-1, 4, 6}).Output("y", {-1, 6});
    b.Node("ReduceMean", {"x"}, {"y"}).Ints("axes", {-2}).Int("keepdims", 0);
    Graph g = MustImport(b);
    EXPECT_EQ(OpList(g), std::vector<std::string>{"ReduceMean"});
    EXPECT_EQ(OutputDesc(g).dims, (Dims{B, 6}));
  }
}

TEST(OnnxLower, ReduceSumWithoutAxes) {
  // noop_with_empty_axes: the node is an identity (here feeding a Relu).
  OnnxBuilder noop(13);
  noop.Input("x", {2, 3}).Output("y", {2, 3});
  noop.Node("ReduceSum", {"x"}, {"r"}).Int("noop_with_empty_axes", 1);
  noop.Node("Relu", {"r"}, {"y"});
  EXPECT_EQ(OpList(MustImport(noop)), std::vector<std::string>{"Relu"});
  // Otherwise every axis; on a batched input that would mix samples and is refused.
  OnnxBuilder all(13);
  all.Input("x", {2, 3}).Output("y", {1, 1});
  all.Node("ReduceSum", {"x"}, {"y"});
  Graph g = MustImport(all);
  EXPECT_EQ(g.nodes[0].attrs.GetInts("axes"), (Ints{0, 1}));
  OnnxBuilder batch(13);
  batch.Input("x", {-1, 3}).Output("y", {});
  batch.Node("ReduceMax", {"x"}, {"y"}, "rmax").Int("keepdims", 0);
  ExpectError(batch, {"node 'rmax' (ReduceMax)", "batch"});
  OnnxBuilder twice(11);
  twice.Input("x", {-1, 3, 4}).Output("y", {-1, 4});  // what ONNX infers
  twice.Node("ReduceMin", {"x"}, {"y"}, "rmin").Ints("axes", {1, -2}).Int("keepdims", 0);
  ExpectError(twice, {"node 'rmin' (ReduceMin)", "repeat"});
}

TEST(OnnxLower, PowIntegerExponentAndActivationDefaults) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3}).Output("y", {-1, 3}).IntInit("two", {2});
  b.Node("Pow", {"x", "two"}, {"p"});
  b.Node("HardSigmoid", {"p"}, {"h"});
  b.Node("Selu", {"h"}, {"s"}).Float("gamma", 2.f);
  b.Node("Erf", {"s"}, {"y"});
  Graph g = MustImport(b);
  ASSERT_EQ(OpList(g), (std::vector<std::string>{"Pow", "HardSigmoid", "Selu", "Erf"}));
  const TensorDesc& e = g.tensors[g.nodes[0].inputs[1]];
  ASSERT_TRUE(e.is_constant());
  EXPECT_EQ(e.dtype, DType::kFloat32);
  EXPECT_EQ(*static_cast<const float*>(e.data), 2.f);
  EXPECT_EQ(g.nodes[1].attrs.GetFloat("alpha"), 0.2f);
  EXPECT_EQ(g.nodes[1].attrs.GetFloat("beta"), 0.5f);
  EXPECT_EQ(g.nodes[2].attrs.GetFloat("gamma"), 2.f);
  EXPECT_FLOAT_EQ(g.nodes[2].attrs.GetFloat("alpha"), 1.6732632f);
  auto y = testing::RunGraph(g, {{-1.f, 0.5f, 3.f, 0.f, 2.f, -4.f}}, 2);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  for (int i = 0; i < 6; ++i) {
    const float x = std::vector<float>{-1.f, 0.5f, 3.f, 0.f, 2.f, -4.f}[i];
    const float h = std::clamp(0.2f * x * x + 0.5f, 0.f, 1.f);
    const float s = h <= 0 ? 0 : 2.f * h;  // h >= 0 here
    EXPECT_NEAR((*y)[0][i], std::erf(s), 1e-6f) << i;
  }
}

// torch.nn.functional.pad exports its pads through ConstantOfShape, Concat, Reshape, a reversing
// Slice of a [rank, 2] tensor, Transpose and Cast: all folded at import into Pad's attribute.
TEST(OnnxLower, TorchPadExportFoldsIntoPads) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 10}).Output("y", {-1, 3, 14});
  b.IntInit("torch_pads", {2, 2}).IntInit("rest", {4}).IntInit("pairs", {-1, 2});
  b.IntInit("start", {-1}).IntInit("end", {std::numeric_limits<int64_t>::min() + 1});
  b.IntInit("axis0", {0}).IntInit("back", {-1}).IntInit("flat", {-1});
  onnx::TensorProto zero = testing::IntTensor("", {1}, {0});
  b.Node("ConstantOfShape", {"rest"}, {"zeros"}).Tensor("value", zero);
  b.Node("Concat", {"torch_pads", "zeros"}, {"c"}).Int("axis", 0);
  b.Node("Reshape", {"c", "pairs"}, {"r"});
  b.Node("Slice", {"r", "start", "end", "axis0", "back"}, {"s"});
  b.Node("Transpose", {"s"}, {"t"}).Ints("perm", {1, 0});
  b.Node("Reshape", {"t", "flat"}, {"f"});
  b.Node("Cast", {"f"}, {"pads"}).Int("to", onnx::TensorProto::INT64);
  b.Node("Pad", {"x", "pads"}, {"y"}, "pad").Str("mode", "reflect");
  Graph g = MustImport(b);
  ASSERT_EQ(OpList(g), std::vector<std::string>{"Pad"});
  EXPECT_EQ(g.nodes[0].attrs.GetInts("pads"), (Ints{0, 0, 2, 0, 0, 2}));
  EXPECT_EQ(g.nodes[0].attrs.GetString("mode"), "reflect");
  EXPECT_EQ(OutputDesc(g).dims, (Dims{B, 3, 14}));
}

TEST(OnnxLower, PadValueMustBeConstantAndTheBatchUnpadded) {
  OnnxBuilder b(13);
  b.Input("x", {-1, 4}).Input("v", {}).Output("y", {-1, 6}).IntInit("pads", {0, 1, 0, 1});
  b.Node("Pad", {"x", "pads", "v"}, {"y"}, "pad");
  ExpectError(b, {"node 'pad' (Pad)", "constant_value", "constant"});

  OnnxBuilder c(13);
  c.Input("x", {-1, 4}).Output("y", {-1, 6}).IntInit("pads", {0, 1, 0, 1});
  c.Init("v", {}, {2.5f});
  c.Node("Pad", {"x", "pads", "v"}, {"y"});
  Graph g = MustImport(c);
  EXPECT_EQ(g.nodes[0].attrs.GetFloat("value"), 2.5f);
  auto y = testing::RunGraph(g, {{1, 2, 3, 4, 5, 6, 7, 8}}, 2);
  ASSERT_TRUE(y.ok());
  EXPECT_EQ((*y)[0], (std::vector<float>{2.5f, 1, 2, 3, 4, 2.5f, 2.5f, 5, 6, 7, 8, 2.5f}));

  OnnxBuilder d(13);
  d.Input("x", {-1, 4}).Output("y", {-1, 4}).IntInit("pads", {1, 0, 0, 0});
  d.Node("Pad", {"x", "pads"}, {"y"}, "pad");
  ExpectError(d, {"node 'pad' (Pad)", "batch"});
}

TEST(OnnxLower, LayerNormalizationStatisticsOnlyWhenRead) {
  OnnxBuilder b(17);
  b.Input("x", {-1, 5, 8}).Output("y", {-1, 5, 8});
  b.Init("s", {8}, std::vector<float>(8, 2.f)).Init("bias", {8}, std::vector<float>(8, 1.f));
  b.Node("LayerNormalization", {"x", "s", "bias"}, {"y", "m", "inv"}).Float("epsilon", 1e-3f);
  Graph g = MustImport(b);
  ASSERT_EQ(OpList(g), std::vector<std::string>{"LayerNormalization"});
  EXPECT_EQ(g.nodes[0].outputs.size(), 1u);
  EXPECT_EQ(g.nodes[0].attrs.GetInt("axis"), 2);  // default -1, normalized
  EXPECT_EQ(g.nodes[0].attrs.GetFloat("epsilon"), 1e-3f);

  OnnxBuilder stats(17);
  stats.Input("x", {-1, 5, 8}).Output("y", {-1, 5, 8}).Output("inv", {-1, 1, 1});
  stats.Init("s", {5, 8}, std::vector<float>(40, 1.f));
  stats.Node("LayerNormalization", {"x", "s"}, {"y", "", "inv"}).Int("axis", 1);
  Graph h = MustImport(stats);
  ASSERT_EQ(h.nodes[0].outputs.size(), 3u);
  EXPECT_EQ(OutputDesc(h, 1).dims, (Dims{B, 1, 1}));
  std::vector<float> x(80);
  for (int i = 0; i < 80; ++i) x[i] = (i % 40 < 20) ? 1.f : 3.f;  // mean 2, std 1 per sample
  auto y = testing::RunGraph(h, {x}, 2);
  ASSERT_TRUE(y.ok());
  EXPECT_NEAR((*y)[0][0], -1.f, 1e-5f);
  EXPECT_NEAR((*y)[0][79], 1.f, 1e-5f);
  EXPECT_NEAR((*y)[1][1], 1.f / std::sqrt(1.f + 1e-5f), 1e-6f);

  OnnxBuilder batch(17);
  batch.Input("x", {-1, 8}).Output("y", {-1, 8}).Init("s", {1}, {1.f});
  batch.Node("LayerNormalization", {"x", "s"}, {"y"}, "ln").Int("axis", 0);
  ExpectError(batch, {"node 'ln' (LayerNormalization)", "batch"});
}

// The decomposed layer norm and exact GELU that torch exports at opset 13 (ReduceMean, Sub,
// Pow, ReduceMean, Add, Sqrt, Div, Mul, Add; Div, Erf, Add, Mul, Mul) run at any batch size and
// match the formula, as written (optimize off) and fused into LayerNormalization and Gelu.
TEST(OnnxLower, DecomposedLayerNormAndGeluRunAndFuse) {
  const std::vector<float> gamma = {1, 2, 0.5f, -1, 1, 3}, beta = {0, 1, -1, 0.5f, 0, 2};
  for (int variant = 0; variant < 8; ++variant) {
    const bool optimize = variant & 1, mul_square = variant & 2, affine = variant & 4;
    SCOPED_TRACE("optimize " + std::to_string(optimize) + " x*x " + std::to_string(mul_square) +
                 " affine " + std::to_string(affine));
    OnnxBuilder b(13);
    b.Input("x", {-1, 6}).Output("y", {-1, 6});
    b.Init("two", {}, {2.f}).Init("eps", {}, {1e-5f}).Init("sqrt2", {}, {1.41421356f});
    b.Init("one", {}, {1.f}).Init("half", {}, {0.5f});
    b.Init("gamma", {6}, gamma).Init("beta", {6}, beta);
    b.Node("ReduceMean", {"x"}, {"m"}).Ints("axes", {-1});
    b.Node("Sub", {"x", "m"}, {"d"});
    if (mul_square) {
      b.Node("Mul", {"d", "d"}, {"d2"});
    } else {
      b.Node("Pow", {"d", "two"}, {"d2"});
    }
    b.Node("ReduceMean", {"d2"}, {"v"}).Ints("axes", {-1});
    b.Node("Add", {"v", "eps"}, {"ve"});
    b.Node("Sqrt", {"ve"}, {"sd"});
    b.Node("Div", {"d", "sd"}, {affine ? "n0" : "n"});
    if (affine) {
      b.Node("Mul", {"n0", "gamma"}, {"n1"});
      b.Node("Add", {"beta", "n1"}, {"n"});
    }
    b.Node("Div", {"n", "sqrt2"}, {"g0"});
    b.Node("Erf", {"g0"}, {"g1"});
    b.Node("Add", {"g1", "one"}, {"g2"});
    b.Node("Mul", {"n", "g2"}, {"g3"});
    b.Node("Mul", {"g3", "half"}, {"y"});
    Graph g = MustImport(b, optimize);
    EXPECT_EQ(OutputDesc(g).dims, (Dims{B, 6}));
    if (optimize) {
      EXPECT_EQ(OpList(g), (std::vector<std::string>{"LayerNormalization", "Gelu"}));
    } else {
      EXPECT_EQ(g.nodes.size(), affine ? 14u : 12u);
    }
    const std::vector<float> x = {1, 2, 3, 4, 5, 6, -3, 0, 0, 0, 0, 3, 7, 7, 7, 7, 7, 8};
    auto y = testing::RunGraph(g, {x}, 3);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    for (int r = 0; r < 3; ++r) {
      double m = 0, v = 0;
      for (int i = 0; i < 6; ++i) m += x[r * 6 + i] / 6.0;
      for (int i = 0; i < 6; ++i) v += (x[r * 6 + i] - m) * (x[r * 6 + i] - m) / 6.0;
      for (int i = 0; i < 6; ++i) {
        double n = (x[r * 6 + i] - m) / std::sqrt(v + 1e-5);
        if (affine) n = n * gamma[i] + beta[i];
        EXPECT_NEAR((*y)[0][r * 6 + i], 0.5 * n * (1 + std::erf(n / std::sqrt(2.0))), 4e-6)
            << r << "," << i;
      }
    }
  }
}

// Not a layer norm to fuse: the deviations are read elsewhere too, or the mean is over a
// leading axis.
TEST(OnnxLower, LayerNormPatternNeedsPrivateIntermediatesAndTrailingAxes) {
  for (int variant = 0; variant < 2; ++variant) {
    OnnxBuilder b(13);
    b.Input("x", {-1, 4, 6}).Output("y", {-1, 4, 6});
    if (variant == 0) b.Output("d", {-1, 4, 6});
    b.Init("two", {}, {2.f}).Init("eps", {}, {1e-5f});
    const Ints axes = variant == 0 ? Ints{-1} : Ints{1};
    b.Node("ReduceMean", {"x"}, {"m"}).Ints("axes", axes);
    b.Node("Sub", {"x", "m"}, {"d"});
    b.Node("Pow", {"d", "two"}, {"d2"});
    b.Node("ReduceMean", {"d2"}, {"v"}).Ints("axes", axes);
    b.Node("Add", {"v", "eps"}, {"ve"});
    b.Node("Sqrt", {"ve"}, {"sd"});
    b.Node("Div", {"d", "sd"}, {"y"});
    Graph g = MustImport(b, /*optimize=*/true);
    EXPECT_EQ(g.nodes.size(), 7u) << variant;
  }
}

// GELU and HardSwish written out by exporters become one activation, fused into the Gemm; the
// result matches the formula. Variants: Div by sqrt 2 or Mul by 1/sqrt 2, the 0.5 applied
// last, in the middle, or to x first; operands in either order.
TEST(OnnxLower, GeluAndHardSwishPatternsFuseIntoGemm) {
  const std::vector<float> w = {0.5f, -1.f, 2.f, 0.25f, -0.75f, 1.5f};  // [2, 3]
  const std::vector<float> x = {1.f, -2.f, 0.5f, 3.f, -1.f, 0.25f};
  auto gelu = [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); };
  for (int variant = 0; variant < 4; ++variant) {
    SCOPED_TRACE("variant " + std::to_string(variant));
    OnnxBuilder b(13);
    b.Input("x", {-1, 2}).Output("y", {-1, 3}).Init("w", {2, 3}, w);
    b.Init("sqrt2", {}, {1.41421356f}).Init("rsqrt2", {}, {0.70710678f});
    b.Init("one", {}, {1.f}).Init("half", {}, {0.5f});
    b.Node("MatMul", {"x", "w"}, {"h"});
    if (variant == 1) {
      b.Node("Mul", {"rsqrt2", "h"}, {"u"});
    } else {
      b.Node("Div", {"h", "sqrt2"}, {"u"});
    }
    b.Node("Erf", {"u"}, {"e"});
    b.Node("Add", {"one", "e"}, {"a"});
    if (variant <= 1) {  // (h * a) * 0.5
      b.Node("Mul", {"h", "a"}, {"p"});
      b.Node("Mul", {"p", "half"}, {"y"});
    } else if (variant == 2) {  // (a * 0.5) * h
      b.Node("Mul", {"a", "half"}, {"p"});
      b.Node("Mul", {"h", "p"}, {"y"});
    } else {  // (h * 0.5) * a
      b.Node("Mul", {"h", "half"}, {"p"});
      b.Node("Mul", {"p", "a"}, {"y"});
    }
    Graph g = MustImport(b, /*optimize=*/true);
    ASSERT_EQ(OpList(g), std::vector<std::string>{"Gemm"});
    EXPECT_EQ(g.nodes[0].attrs.GetString("activation"), "Gelu");
    auto y = testing::RunGraph(g, {x}, 3);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) {
        const double h = x[r * 2] * w[c] + x[r * 2 + 1] * w[3 + c];
        EXPECT_NEAR((*y)[0][r * 3 + c], gelu(h), 1e-6) << r << "," << c;
      }
  }
  // An intermediate that is also a graph output stays: no fusion.
  OnnxBuilder kept(13);
  kept.Input("x", {-1, 2}).Output("y", {-1, 2}).Output("e", {-1, 2});
  kept.Init("sqrt2", {}, {1.41421356f}).Init("one", {}, {1.f}).Init("half", {}, {0.5f});
  kept.Node("Div", {"x", "sqrt2"}, {"u"});
  kept.Node("Erf", {"u"}, {"e"});
  kept.Node("Add", {"e", "one"}, {"a"});
  kept.Node("Mul", {"x", "a"}, {"p"});
  kept.Node("Mul", {"p", "half"}, {"y"});
  EXPECT_EQ(OpList(MustImport(kept, true)),
            (std::vector<std::string>{"Div", "Erf", "Add", "Mul", "Mul"}));

  OnnxBuilder hs(13);
  hs.Input("x", {-1, 2}).Output("y", {-1, 3}).Init("w", {2, 3}, w);
  hs.Node("MatMul", {"x", "w"}, {"h"});
  hs.Node("HardSigmoid", {"h"}, {"s"}).Float("alpha", 1.f / 6.f).Float("beta", 0.5f);
  hs.Node("Mul", {"s", "h"}, {"y"});
  Graph g = MustImport(hs, true);
  ASSERT_EQ(OpList(g), std::vector<std::string>{"Gemm"});
  EXPECT_EQ(g.nodes[0].attrs.GetString("activation"), "HardSwish");
  auto y = testing::RunGraph(g, {x}, 3);
  ASSERT_TRUE(y.ok());
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) {
      const double h = x[r * 2] * w[c] + x[r * 2 + 1] * w[3 + c];
      EXPECT_NEAR((*y)[0][r * 3 + c], h * std::clamp(h / 6 + 0.5, 0.0, 1.0), 1e-6);
    }
  // Another HardSigmoid (default alpha 0.2) is not a HardSwish.
  OnnxBuilder other(13);
  other.Input("x", {-1, 2}).Output("y", {-1, 2});
  other.Node("HardSigmoid", {"x"}, {"s"});
  other.Node("Mul", {"x", "s"}, {"y"});
  EXPECT_EQ(OpList(MustImport(other, true)), (std::vector<std::string>{"HardSigmoid", "Mul"}));
}

// Causal padding written as F.pad before a Conv moves into the Conv's pads, with the same
// result; a non-zero pad value, a crop or a pad wider than the kernel stays.
TEST(OnnxLower, ZeroPadFoldsIntoTheConvAfterIt) {
  struct Case {
    Ints pads;
    float value;
    bool folds;
  };
  const Case cases[] = {
      {{0, 0, 2, 0, 0, 0}, 0.f, true},    // causal: (k - 1) on the left
      {{0, 0, 1, 0, 0, 1}, 0.f, true},    // adds to the Conv's own pads of 1
      {{0, 0, 2, 0, 0, 0}, 1.f, false},   // pads with 1
      {{0, 0, -1, 0, 0, 1}, 0.f, false},  // crops
      {{0, 0, 5, 0, 0, 0}, 0.f, false},   // wider than the kernel
  };
  const std::vector<float> w = {0.5f, -1.f, 2.f, 1.f, 0.25f, -0.5f};  // [2, 1, 3]
  std::vector<float> x(2 * 1 * 7);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 5) - 1.5f;
  for (const Case& c : cases) {
    SCOPED_TRACE(DimsToString(c.pads) + " value " + std::to_string(c.value));
    OnnxBuilder b(13);
    const bool own_pads = c.pads[5] == 1;
    b.Input("x", {-1, 1, 7}).Output("y", {-1, 2, kAny}).Init("w", {2, 1, 3}, w);
    b.IntInit("pads", c.pads).Init("v", {}, {c.value});
    b.Node("Pad", {"x", "pads", "v"}, {"p"});
    auto conv = b.Node("Conv", {"p", "w"}, {"y"});
    if (own_pads) conv.Ints("pads", {1, 1});
    Graph plain = MustImport(b, /*optimize=*/false);
    Graph g = MustImport(b, /*optimize=*/true);
    if (c.folds) {
      ASSERT_EQ(OpList(g), std::vector<std::string>{"Conv"});
      const int64_t extra = own_pads ? 1 : 0;
      EXPECT_EQ(g.nodes[0].attrs.GetInts("pads"), (Ints{c.pads[2] + extra, c.pads[5] + extra}));
    } else {
      EXPECT_EQ(OpList(g), (std::vector<std::string>{"Pad", "Conv"}));
    }
    auto want = testing::RunGraph(plain, {x}, 2);
    auto got = testing::RunGraph(g, {x}, 2);
    ASSERT_TRUE(want.ok() && got.ok());
    EXPECT_EQ((*got)[0], (*want)[0]);
  }
}

// --- LSTM, GRU, RNN ---

// x [4, 2, 3] (layout 0) -> `op` with hidden 5 -> the given outputs; W, R, B as initializers.
OnnxBuilder RecurrentModel(const std::string& op, std::vector<std::string> outs, int opset = 14) {
  const int64_t g = op == "LSTM" ? 4 : op == "GRU" ? 3 : 1;
  OnnxBuilder b(opset);
  b.Input("x", {4, 2, 3});
  b.Init("w", {1, g * 5, 3}, std::vector<float>(g * 15, 0.1f));
  b.Init("r", {1, g * 5, 5}, std::vector<float>(g * 25, -0.1f));
  b.Init("b", {1, g * 10}, std::vector<float>(g * 10, 0.05f));
  for (const auto& o : outs)
    if (!o.empty()) b.Output(o, o == "y" ? Ints{4, 1, 2, 5} : Ints{1, 2, 5});
  return b;
}

void AddStrings(testing::NodeRef n, const std::string& name, std::vector<std::string> v) {
  auto* a = n.proto()->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRINGS);
  for (const auto& s : v) a->add_strings(s);
}

TEST(OnnxLower, RecurrentOutputsAnySubsetAndYOptional) {
  OnnxBuilder b = RecurrentModel("GRU", {"", "yh"});
  b.Node("GRU", {"x", "w", "r", "b"}, {"", "yh"}, "gru").Int("hidden_size", 5);
  Graph g = MustImport(b);
  EXPECT_EQ(OpList(g), std::vector<std::string>{"GRU"});
  EXPECT_EQ(OutputDesc(g).dims, (Dims{1, 2, 5}));

  OnnxBuilder l = RecurrentModel("LSTM", {"y", "", "yc"});
  l.Node("LSTM", {"x", "w", "r", "b"}, {"y", "", "yc"}, "lstm");
  Graph lg = MustImport(l);
  EXPECT_EQ(OutputDesc(lg, 0).dims, (Dims{4, 1, 2, 5}));
  EXPECT_EQ(OutputDesc(lg, 1).dims, (Dims{1, 2, 5}));
  auto out = testing::RunGraph(lg, {std::vector<float>(24, 1.f)}, 1);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_GT((*out)[1][0], 0.f);  // c grows from a positive input
}

TEST(OnnxLower, RecurrentSequenceLensOnlyFullLength) {
  for (bool full : {true, false}) {
    OnnxBuilder b = RecurrentModel("RNN", {"", "yh"});
    onnx::TensorProto lens;  // int32, as ONNX wants it
    lens.set_data_type(onnx::TensorProto::INT32);
    lens.add_dims(2);
    lens.add_int32_data(4);
    lens.add_int32_data(full ? 4 : 3);
    b.Node("Constant", {}, {"lens"}).Tensor("value", lens);
    b.Node("RNN", {"x", "w", "r", "b", "lens"}, {"", "yh"}, "rnn");
    if (full) {
      EXPECT_EQ(OpList(MustImport(b)), std::vector<std::string>{"RNN"});
    } else {
      ExpectError(b, {"node 'rnn' (RNN)", "sequence_lens", "holds 3"});
    }
  }
}

TEST(OnnxLower, RecurrentRefusesOtherActivationsNamingTheAttribute) {
  OnnxBuilder b = RecurrentModel("LSTM", {"", "yh"});
  auto n = b.Node("LSTM", {"x", "w", "r", "b"}, {"", "yh"}, "lstm");
  AddStrings(n, "activations", {"Sigmoid", "Relu", "Tanh"});
  ExpectError(b, {"node 'lstm' (LSTM)", "'activations'"});

  OnnxBuilder d = RecurrentModel("LSTM", {"", "yh"});
  AddStrings(d.Node("LSTM", {"x", "w", "r", "b"}, {"", "yh"}, "lstm"), "activations",
             {"sigmoid", "tanh", "tanh"});  // the defaults, spelled in lower case
  EXPECT_EQ(OpList(MustImport(d)), std::vector<std::string>{"LSTM"});

  OnnxBuilder f = RecurrentModel("LSTM", {"", "yh"});
  f.Node("LSTM", {"x", "w", "r", "b"}, {"", "yh"}, "lstm").Int("input_forget", 1);
  ExpectError(f, {"node 'lstm' (LSTM)", "input_forget"});
}

TEST(OnnxLower, GatherAndSliceOfAFloatTensorOnLiteralAxes) {
  OnnxBuilder b;
  b.Input("x", {-1, 4, 3}).Output("y", {-1, 3}).Output("z", {-1, 2, 2});
  onnx::TensorProto last;  // a scalar index: y = x[:, -1]
  last.set_data_type(onnx::TensorProto::INT64);
  last.add_int64_data(-1);
  b.Node("Constant", {}, {"last"}).Tensor("value", last);
  b.Node("Gather", {"x", "last"}, {"y"}).Int("axis", 1);
  b.IntInit("s", {1, 0}).IntInit("e", {3, 2}).IntInit("a", {1, 2});
  b.Node("Slice", {"x", "s", "e", "a"}, {"z"});
  Graph g = MustImport(b);
  EXPECT_EQ(OutputDesc(g, 0).dims, (Dims{B, 3}));
  EXPECT_EQ(OutputDesc(g, 1).dims, (Dims{B, 2, 2}));
  std::vector<float> x(2 * 12);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  auto out = testing::RunGraph(g, {x}, 2);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0], (std::vector<float>{9, 10, 11, 21, 22, 23}));
  EXPECT_EQ((*out)[1], (std::vector<float>{3, 4, 6, 7, 15, 16, 18, 19}));

  OnnxBuilder step;
  step.Input("x", {-1, 4, 3}).Output("z", {-1, 2, 3});
  step.IntInit("s", {0}).IntInit("e", {4}).IntInit("a", {1}).IntInit("st", {2});
  step.Node("Slice", {"x", "s", "e", "a", "st"}, {"z"}, "sl");
  auto stepped = testing::RunGraph(MustImport(step), {x}, 2);  // x[:, ::2]
  ASSERT_TRUE(stepped.ok()) << stepped.status().ToString();
  EXPECT_EQ((*stepped)[0], (std::vector<float>{0, 1, 2, 6, 7, 8, 12, 13, 14, 18, 19, 20}));

  OnnxBuilder flip;  // torch's x.flip(1): start -1, end INT64_MIN, step -1
  flip.Input("x", {-1, 4, 3}).Output("z", {-1, 4, 3});
  flip.IntInit("s", {-1}).IntInit("e", {std::numeric_limits<int64_t>::min()});
  flip.IntInit("a", {1}).IntInit("st", {-1});
  flip.Node("Slice", {"x", "s", "e", "a", "st"}, {"z"});
  auto flipped =
      testing::RunGraph(MustImport(flip), {std::vector<float>(x.begin(), x.begin() + 12)}, 1);
  ASSERT_TRUE(flipped.ok()) << flipped.status().ToString();
  EXPECT_EQ((*flipped)[0], (std::vector<float>{9, 10, 11, 6, 7, 8, 3, 4, 5, 0, 1, 2}));
}

// Small torch exports (tests/data/rnn/gen.py: batch_first, a Linear head on y[:, -1]) against
// the outputs torch computed, at the batch they were made with and at a smaller one.
TEST(OnnxLower, TorchRecurrentModelsMatchTorch) {
  const std::filesystem::path dir = std::filesystem::path(EDGEINFER_SOURCE_DIR) / "tests/data/rnn";
  for (const char* name : {"lstm_tiny_bf", "gru_tiny_bidir_bf"}) {
    SCOPED_TRACE(name);
    auto g = ImportOnnxFile((dir / (std::string(name) + ".onnx")).string());
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(g->tensors[g->inputs[0]].dims, (Dims{B, 20, 3}));
    auto read = [&](const char* ext) {
      std::ifstream f(dir / (std::string(name) + ext), std::ios::binary);
      std::vector<float> v(4096);
      f.read(reinterpret_cast<char*>(v.data()), v.size() * sizeof(float));
      v.resize(f.gcount() / sizeof(float));
      return v;
    };
    std::vector<float> x = read(".in.f32"), want = read(".out.f32");
    ASSERT_EQ(x.size(), 5u * 20 * 3);
    ASSERT_EQ(want.size(), 5u * 4);
    // The session too, planned for batch 5 and run at 5 and 1: the arena and scratch sizing.
    auto model = Model::FromGraph(*g);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    SessionOptions options;
    options.max_batch = 5;
    auto session = Session::Create(*model, options);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    for (int batch : {5, 1}) {
      const float* in[] = {x.data()};
      ASSERT_TRUE((*session)->Run(in, batch).ok());
      const TensorView y = (*session)->output(0);
      ASSERT_EQ(y.shape.NumElements(), batch * 4);
      testing::ExpectNear(std::vector<float>(y.f32(), y.f32() + batch * 4),
                          std::vector<float>(want.begin(), want.begin() + batch * 4), 1e-4f, 1e-5f);
    }
    for (int64_t batch : {5, 2}) {
      x.resize(batch * 60);
      want.resize(batch * 4);
      auto got = testing::RunGraph(*g, {x}, batch);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      testing::ExpectNear((*got)[0], want, 1e-4f, 1e-5f);
    }
  }
}

}  // namespace
}  // namespace edgeinfer
