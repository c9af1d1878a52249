// The importer's contract at the model level: what it refuses (with messages naming the
// culprit), the interface it reads and the model info it fills in.
#include "inference/onnx/onnx_import.h"

#include <gtest/gtest.h>

#include <random>

#include "inference/onnx/onnx_model_info.h"
#include "tests/inference/op_test_util.h"
#include "tests/onnx/onnx_test_util.h"

namespace edgeinfer {
namespace {

using testing::OnnxBuilder;
using testing::OpList;

constexpr int64_t B = kBatchDim;

// x [B, 4] -> Relu -> y
OnnxBuilder ReluModel(int opset = 13) {
  OnnxBuilder b(opset);
  b.Input("x", {-1, 4}).Output("y", {-1, 4});
  b.Node("Relu", {"x"}, {"y"}, "relu");
  return b;
}

void ExpectError(const Result<Graph>& r, std::initializer_list<std::string> parts) {
  ASSERT_FALSE(r.ok());
  for (const std::string& p : parts)
    EXPECT_NE(r.status().message().find(p), std::string::npos)
        << "'" << p << "' not in: " << r.status().message();
}

TEST(OnnxImport, SimpleModelHasBatchAndInfo) {
  OnnxBuilder b = ReluModel();
  b.Meta("model_name", "tiny").Meta("model_version", "2.1").Meta("labels", R"(["a","b"])");
  b.Meta("preprocessing", R"({"mean":[0.5],"std":[0.25],"axis":1})");
  auto g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(OpList(*g), std::vector<std::string>{"Relu"});
  EXPECT_EQ(g->tensors[g->inputs[0]].dims, (Dims{B, 4}));
  EXPECT_EQ(testing::OutputDesc(*g).dims, (Dims{B, 4}));
  EXPECT_EQ(testing::OutputDesc(*g).name, "y");
  EXPECT_EQ(g->info.name, "tiny");
  EXPECT_EQ(g->info.version, "2.1");
  EXPECT_EQ(g->info.producer, "edgeinfer-test 1");
  EXPECT_EQ(g->info.labels, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(g->info.norm_mean, std::vector<float>{0.5f});
  EXPECT_EQ(g->info.norm_std, std::vector<float>{0.25f});
  EXPECT_EQ(g->info.norm_axis, 1);
  EXPECT_EQ(g->info.source_hash.size(), 16u);
  EXPECT_EQ(g->info.source_hash, Fnv1a64Hex(b.Bytes()));
  EXPECT_EQ(Fnv1a64Hex(""), "cbf29ce484222325");
}

TEST(OnnxImport, NameFallsBackToGraphName) {
  auto g = ReluModel().Import();
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->info.name, "test_graph");
}

TEST(OnnxImport, StaticModelKeepsLiteralDims) {
  OnnxBuilder b;
  b.Input("x", {2, 4}).Output("y", {2, 4});
  b.Node("Relu", {"x"}, {"y"});
  auto g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(testing::OutputDesc(*g).dims, (Dims{2, 4}));
}

TEST(OnnxImport, RefusesGarbage) {
  ExpectError(ImportOnnxBytes("this is not an onnx model at all"), {"not an ONNX model"});
  ExpectError(ImportOnnxBytes(""), {"not an ONNX model"});
  ExpectError(ImportOnnxBytes(std::string("\x08\x07\x12\x03\x66\x6f\x6f", 7)),
              {"not an ONNX model"});
}

TEST(OnnxImport, RefusesOpsetsOutsideElevenToSeventeen) {
  ExpectError(ReluModel(10).Import(), {"opset 10"});
  ExpectError(ReluModel(18).Import(), {"opset 18"});
  EXPECT_TRUE(ReluModel(11).Import().ok());
  EXPECT_TRUE(ReluModel(17).Import().ok());
}

TEST(OnnxImport, RefusesNonFloatInputAndDynamicInnerDims) {
  OnnxBuilder b;
  b.Input("ids", {-1, 4}, onnx::TensorProto::INT64).Output("y", {-1, 4});
  b.Node("Cast", {"ids"}, {"y"}).Int("to", onnx::TensorProto::FLOAT);
  ExpectError(b.Import(), {"'ids'", "INT64"});

  OnnxBuilder c;
  c.Input("x", {-1, -2}).Output("y", {-1, -2});
  c.Node("Relu", {"x"}, {"y"});
  ExpectError(c.Import(), {"'x'", "dim 1"});
}

TEST(OnnxImport, RefusesUnsupportedOpNamingNode) {
  OnnxBuilder b;
  b.Input("x", {-1, 4}).Output("y", {-1, 4});
  b.Node("Hardmax", {"x"}, {"y"}, "my_hardmax");
  ExpectError(b.Import(), {"node 'my_hardmax'", "(Hardmax)", "unsupported op"});
}

TEST(OnnxImport, RefusesLoopNamingNode) {
  OnnxBuilder b;
  b.Input("x", {-1, 4}).Output("y", {-1, 4});
  b.IntInit("trip", {3});
  onnx::GraphProto body;
  body.set_name("body");
  auto add_io = [](google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* l,
                   const std::string& name, int type) {
    auto* v = l->Add();
    v->set_name(name);
    v->mutable_type()->mutable_tensor_type()->set_elem_type(type);
    v->mutable_type()->mutable_tensor_type()->mutable_shape();
  };
  add_io(body.mutable_input(), "i", onnx::TensorProto::INT64);
  add_io(body.mutable_input(), "cond", onnx::TensorProto::BOOL);
  add_io(body.mutable_input(), "v", onnx::TensorProto::FLOAT);
  add_io(body.mutable_output(), "cond_out", onnx::TensorProto::BOOL);
  add_io(body.mutable_output(), "v_out", onnx::TensorProto::FLOAT);
  auto* id1 = body.add_node();
  id1->set_op_type("Identity");
  id1->add_input("cond");
  id1->add_output("cond_out");
  auto* relu = body.add_node();
  relu->set_op_type("Relu");
  relu->add_input("v");
  relu->add_output("v_out");
  auto loop = b.Node("Loop", {"trip", "", "x"}, {"y"}, "the_loop");
  auto* attr = loop.proto()->add_attribute();
  attr->set_name("body");
  attr->set_type(onnx::AttributeProto::GRAPH);
  *attr->mutable_g() = body;
  // Refused before ONNX's checker runs, with or without it.
  ExpectError(b.Import(), {"node 'the_loop'", "(Loop)", "unsupported op"});
  OnnxImportOptions no_check;
  no_check.run_checker = false;
  ExpectError(ImportOnnxBytes(b.Bytes(), no_check), {"node 'the_loop'", "(Loop)"});
}

TEST(OnnxImport, CheckerErrorsBecomeInvalidArgument) {
  OnnxBuilder b;
  b.Input("x", {-1, 4}).Output("y", {-1, 4});
  b.Node("Relu", {"nope"}, {"y"});
  auto r = b.Import();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("ONNX checker"), std::string::npos);
  OnnxImportOptions no_check;
  no_check.run_checker = false;
  ExpectError(ImportOnnxBytes(b.Bytes(), no_check), {"'nope'", "not produced"});
}

TEST(OnnxImport, RefusesBadMetadata) {
  OnnxBuilder b = ReluModel();
  b.Meta("labels", "{not json");
  ExpectError(b.Import(), {"labels"});
  OnnxBuilder c = ReluModel();
  c.Meta("preprocessing", R"({"mean":[1,2],"std":[1]})");
  ExpectError(c.Import(), {"preprocessing"});
}

TEST(OnnxImport, OutputThatIsAnInputOrConstantGetsCopy) {
  OnnxBuilder b;
  b.Input("x", {-1, 4}).Output("y", {-1, 4}).Output("c", {2});
  b.Init("k", {2}, {1, 2});
  b.Node("Identity", {"x"}, {"y"});
  b.Node("Identity", {"k"}, {"c"});
  auto g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(OpList(*g), (std::vector<std::string>{"Copy", "Copy"}));
  EXPECT_EQ(testing::OutputDesc(*g, 0).name, "y");
  EXPECT_EQ(testing::OutputDesc(*g, 1).dims, (Dims{2}));
}

TEST(OnnxImport, FileImportUsesStemAndReportsMissingFile) {
  auto missing = ImportOnnxFile("/nonexistent/model.onnx");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  OnnxBuilder b = ReluModel();
  b.model().mutable_graph()->set_name("torch_jit");
  std::string path = ::testing::TempDir() + "/my_model.onnx";
  FILE* f = std::fopen(path.c_str(), "wb");
  std::string bytes = b.Bytes();
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  auto g = ImportOnnxFile(path);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->info.name, "my_model");
  std::remove(path.c_str());
}

TEST(OnnxImport, RefusesExternalDataNamingTheTensor) {
  OnnxBuilder b;
  b.Input("x", {-1, 4}).Output("y", {-1, 4});
  b.Init("k", {4}, {1, 2, 3, 4});
  onnx::TensorProto* k = b.model().mutable_graph()->mutable_initializer(0);
  k->clear_raw_data();
  k->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* loc = k->add_external_data();
  loc->set_key("location");
  loc->set_value("k.bin");
  b.Node("Add", {"x", "k"}, {"y"});
  OnnxImportOptions no_check;  // the checker would look for k.bin first
  no_check.run_checker = false;
  ExpectError(ImportOnnxBytes(b.Bytes(), no_check), {"'k'", "external", "k.bin"});
}

TEST(OnnxImport, UnusedInitializerOfUnsupportedTypeIsIgnored) {
  OnnxBuilder b = ReluModel();
  onnx::TensorProto* s = b.model().mutable_graph()->add_initializer();
  s->set_name("class_names");
  s->set_data_type(onnx::TensorProto::STRING);
  s->add_dims(1);
  s->add_string_data("cat");
  auto g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(OpList(*g), std::vector<std::string>{"Relu"});
}

// Bad input is expected: truncated or corrupted models fail with a Status, never crash.
TEST(OnnxImport, CorruptedModelsFailCleanly) {
  OnnxBuilder b = testing::OnnxBuilder(13);
  b.Input("x", {-1, 1, 28, 28}).Output("y", {-1, 10});
  b.Init("w", {10, 784}, edgeinfer::testing::RandomFloats(7840, 1));
  b.IntInit("shape", {0, -1});
  b.Node("Reshape", {"x", "shape"}, {"r"});
  b.Node("Gemm", {"r", "w"}, {"g"}).Int("transB", 1);
  b.Node("Relu", {"g"}, {"y"});
  const std::string good = b.Bytes();
  ASSERT_TRUE(ImportOnnxBytes(good).ok());
  std::mt19937 rng(42);
  int failed = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string bad = good;
    if (trial % 3 == 0) {
      bad.resize(rng() % bad.size());
    } else {
      for (int flips = 1 + trial % 4; flips > 0; --flips)
        bad[rng() % bad.size()] ^= 1 << (rng() % 8);
    }
    OnnxImportOptions options;
    options.run_checker = trial % 2 == 0;
    auto r = ImportOnnxBytes(bad, options);
    if (!r.ok()) {
      ++failed;
      EXPECT_FALSE(r.status().message().empty());
    }
  }
  EXPECT_GT(failed, 0);
}

}  // namespace
}  // namespace edgeinfer
