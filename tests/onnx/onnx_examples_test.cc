// The example models from scripts/train_examples.py (torch.onnx.export, dynamic batch): they
// must import to a small graph and reproduce PyTorch's logits on the committed test subset.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "inference/onnx/onnx_import.h"
#include "tests/inference/op_test_util.h"
#include "tests/onnx/onnx_test_util.h"

namespace edgeinfer {
namespace {

namespace fs = std::filesystem;
using testing::OpList;

const fs::path kExamples = fs::path(EDGEINFER_SOURCE_DIR) / "examples";

std::vector<float> ReadFloats(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

// The test data of a model: scripts/train_examples.py names fashion_mlp's "fashion_*".
std::string DataPrefix(const std::string& model) {
  return model == "fashion_mlp" ? "fashion" : model;
}

int64_t SampleElements(const Graph& g, int tensor) {
  return Resolve(g.tensors[tensor].dims, 1).NumElements();
}

// Runs `g` on the example's test inputs at `batch` (the whole subset when 0).
void ExpectReproducesLogits(const Graph& g, const std::string& name, int64_t batch = 0) {
  std::vector<float> x = ReadFloats(kExamples / (DataPrefix(name) + "_test_x.bin"));
  std::vector<float> want = ReadFloats(kExamples / (DataPrefix(name) + "_test_logits.bin"));
  int64_t samples = static_cast<int64_t>(x.size()) / SampleElements(g, g.inputs[0]);
  ASSERT_GT(samples, 0);
  if (batch == 0) batch = samples;
  x.resize(batch * SampleElements(g, g.inputs[0]));
  want.resize(batch * SampleElements(g, g.outputs[0]));
  auto got = testing::RunGraph(g, {x}, batch);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  testing::ExpectNear((*got)[0], want, 1e-4f, 1e-4f);
}

Graph ImportExample(const std::string& name, bool optimize = true) {
  OnnxImportOptions o;
  o.optimize = optimize;
  auto g = ImportOnnxFile((kExamples / (name + ".onnx")).string(), o);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? std::move(g).value() : Graph{};
}

bool HaveExample(const std::string& name) {
  std::string data = DataPrefix(name);
  return fs::exists(kExamples / (name + ".onnx")) &&
         fs::exists(kExamples / (data + "_test_x.bin")) &&
         fs::exists(kExamples / (data + "_test_logits.bin"));
}

TEST(OnnxExamples, VibrationCnnLowersToFusedConvs) {
  if (!HaveExample("vibration")) GTEST_SKIP() << "examples/vibration.* not generated yet";
  Graph g = ImportExample("vibration");
  EXPECT_EQ(OpList(g),
            (std::vector<std::string>{"Conv", "Conv", "Conv", "MaxPool", "Conv", "MaxPool", "Conv",
                                      "GlobalAveragePool", "Reshape", "Gemm"}));
  for (const Node& n : g.nodes) {
    if (n.op != "Conv") continue;
    EXPECT_EQ(n.attrs.GetString("activation"), "Relu") << n.name;
  }
  EXPECT_EQ(g.tensors[g.inputs[0]].dims, (Dims{kBatchDim, 3, 256}));
  EXPECT_EQ(g.tensors[g.outputs[0]].dims, (Dims{kBatchDim, 4}));
  EXPECT_EQ(g.info.name, "vibration");
  EXPECT_EQ(g.info.labels.size(), 4u);
  EXPECT_EQ(g.info.norm_mean.size(), 3u);
  ExpectReproducesLogits(g, "vibration");
  ExpectReproducesLogits(g, "vibration", /*batch=*/1);
}

TEST(OnnxExamples, FashionMlpFoldsNormalizationReshapeAndBatchNorm) {
  if (!HaveExample("fashion_mlp")) GTEST_SKIP() << "examples/fashion_mlp.* not generated yet";
  Graph g = ImportExample("fashion_mlp");
  // (x - mean) / std folds into fc1's weights and bias; the dynamic reshape is one Reshape; BN
  // folds into fc1 and the ReLUs fuse.
  EXPECT_EQ(OpList(g), (std::vector<std::string>{"Reshape", "Gemm", "Gemm", "Gemm"}));
  const Node& reshape = g.nodes[0];
  EXPECT_EQ(reshape.attrs.GetInts("shape"), (std::vector<int64_t>{kBatchDim, 784}));
  EXPECT_EQ(reshape.inputs[0], g.inputs[0]);
  EXPECT_EQ(g.nodes[1].attrs.GetString("activation"), "Relu");
  EXPECT_EQ(g.nodes[2].attrs.GetString("activation"), "Relu");
  EXPECT_EQ(g.nodes[3].attrs.GetString("activation"), "");
  ExpectReproducesLogits(g, "fashion_mlp");
  ExpectReproducesLogits(g, "fashion_mlp", /*batch=*/3);
}

TEST(OnnxExamples, OptimizedAndPlainLoweringAgree) {
  for (const char* name : {"vibration", "fashion_mlp"}) {
    if (!HaveExample(name)) continue;
    SCOPED_TRACE(name);
    Graph plain = ImportExample(name, /*optimize=*/false);
    EXPECT_GT(plain.nodes.size(), ImportExample(name).nodes.size());
    ExpectReproducesLogits(plain, name);
  }
}

}  // namespace
}  // namespace edgeinfer
