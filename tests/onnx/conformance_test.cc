// ONNX's own backend node tests (Debian's libonnx-testdata), run through the importer and the
// session: every test whose ops edgeinfer claims to support must import, run and match ONNX's
// expected outputs. A conformance suite that no one here wrote.
//
// Inputs that a static-shape engine takes as constants (integer tensors such as Reshape's shape
// or Squeeze's axes, and 0-d floats such as Clip's bounds) are baked into initializers from the
// test's own data before import; every other input must be float32 data.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "inference/model.h"
#include "inference/onnx/onnx_import.h"
#include "inference/onnx/onnx_tensor.h"
#include "inference/session.h"
#include "onnx/onnx_pb.h"

namespace edgeinfer {
namespace {

namespace fs = std::filesystem;

const char kNodeTests[] = "/usr/share/libonnx-testdata/data/node";

// The ONNX ops the importer claims (README "Supported ONNX operators").
const std::set<std::string> kClaimedOps = {
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax",
    "LogSoftmax", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "BatchNormalization", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Concat",
    "Clip", "Identity", "Dropout", "Constant",
    // Reductions, unary math, activations, LayerNormalization, Pad.
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", "Erf", "Exp", "Log", "Sqrt", "Abs", "Neg",
    "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Pow", "HardSigmoid", "HardSwish",
    "Elu", "Selu", "Celu", "Softplus", "Softsign", "ThresholdedRelu", "PRelu", "LayerNormalization",
    "Pad",
    // Recurrent (default activations; sequence_lens only when every sequence is full length).
    "LSTM", "GRU", "RNN",
    // Attention, normalization and upsampling patterns of torch exports.
    "Split", "Equal", "Where", "Expand", "InstanceNormalization", "Resize", "Max", "Min", "Sum",
    "ConvTranspose", "DepthToSpace", "SpaceToDepth", "Range", "Less", "LessOrEqual", "Greater",
    "GreaterOrEqual", "Not"};

// Node tests that use what edgeinfer documents as unsupported; each must fail cleanly at import
// (an error, not a crash or a wrong answer). Anything else that fails fails the suite.
const std::map<std::string, std::string> kKnownUnsupported = {
    {"test_resize_downsample_scales_cubic", "cubic Resize"},
    {"test_resize_downsample_scales_cubic_A_n0p5_exclude_outside", "cubic Resize"},
    {"test_resize_downsample_scales_cubic_align_corners", "cubic Resize"},
    {"test_resize_downsample_sizes_cubic", "cubic Resize"},
    {"test_resize_upsample_scales_cubic", "cubic Resize"},
    {"test_resize_upsample_scales_cubic_A_n0p5_exclude_outside", "cubic Resize"},
    {"test_resize_upsample_scales_cubic_align_corners", "cubic Resize"},
    {"test_resize_upsample_scales_cubic_asymmetric", "cubic Resize"},
    {"test_resize_upsample_sizes_cubic", "cubic Resize"},
    {"test_resize_downsample_sizes_nearest_tf_half_pixel_for_nn", "TensorFlow coordinate mode"},
    {"test_resize_tf_crop_and_resize", "TensorFlow crop and resize"},
    {"test_split_zero_size_splits", "zero-sized tensors"},
    {"test_convtranspose_3d", "3-D ConvTranspose (1-D and 2-D are supported)"},
    {"test_averagepool_3d_default", "3-D pooling (1-D and 2-D are supported)"},
    {"test_maxpool_3d_default", "3-D pooling (1-D and 2-D are supported)"},
    {"test_batchnorm_epsilon_training_mode", "training mode"},
    {"test_batchnorm_example_training_mode", "training mode"},
    {"test_training_dropout", "training mode"},
    {"test_training_dropout_default", "training mode"},
    {"test_globalaveragepool", "opset 1 model (opsets 11 to 17 are imported)"},
    {"test_globalaveragepool_precomputed", "opset 1 model (opsets 11 to 17 are imported)"},
    {"test_globalmaxpool", "opset 1 model (opsets 11 to 17 are imported)"},
    {"test_globalmaxpool_precomputed", "opset 1 model (opsets 11 to 17 are imported)"},
    {"test_reshape_allowzero_reordered", "zero-sized tensors"},
};

bool ReadProto(const fs::path& p, google::protobuf::Message* m) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return f.good() && m->ParseFromString(ss.str());
}

enum class Outcome { kPassed, kFailed, kNotClaimed, kNotFloat, kKnownUnsupported, kOldOpset };

struct CaseResult {
  Outcome outcome;
  std::string message;
};

bool UsesOnlyClaimedOps(const onnx::GraphProto& g) {
  for (const auto& n : g.node())
    if (!n.domain().empty() || !kClaimedOps.count(n.op_type())) return false;
  return true;
}

// Many node tests were generated at the opset that introduced their op (Softplus at 1, Selu
// at 6, ...), below the imported range 11..17: those must be refused, naming the opset.
bool OpsetOutOfRange(const onnx::ModelProto& m) {
  for (const auto& o : m.opset_import())
    if (o.domain().empty() && (o.version() < 11 || o.version() > 17)) return true;
  return false;
}

bool IsFloatValue(const onnx::ValueInfoProto& v) {
  return v.type().tensor_type().elem_type() == onnx::TensorProto::FLOAT;
}

// Float inputs that are parameters, not data (Resize's roi and scales): baked as constants.
bool IsParameterInput(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& n : g.node())
    if (n.op_type() == "Resize")
      for (int i = 1; i <= 2 && i < n.input_size(); ++i)
        if (n.input(i) == name) return true;
  return false;
}

// Moves constant-like inputs into initializers; returns the remaining data inputs' tensors.
Result<std::vector<onnx::TensorProto>> BakeConstInputs(onnx::ModelProto* model,
                                                       const fs::path& dataset) {
  onnx::GraphProto* g = model->mutable_graph();
  std::vector<onnx::TensorProto> data_inputs;
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> kept;
  for (int i = 0; i < g->input_size(); ++i) {
    onnx::TensorProto t;
    if (!ReadProto(dataset / ("input_" + std::to_string(i) + ".pb"), &t))
      return Status::NotFound("missing input_" + std::to_string(i) + ".pb");
    const bool bake = !IsFloatValue(g->input(i)) || t.dims_size() == 0 ||
                      IsParameterInput(*g, g->input(i).name());
    if (bake) {
      t.set_name(g->input(i).name());
      *g->add_initializer() = t;
    } else {
      *kept.Add() = g->input(i);
      data_inputs.push_back(t);
    }
  }
  g->mutable_input()->Swap(&kept);
  return data_inputs;
}

Status CompareOutput(const TensorView& got, const onnx::TensorProto& want, int index) {
  auto dims = OnnxTensorDims(want);
  auto values = OnnxTensorFloats(want);
  if (!dims.ok() || !values.ok()) return Status::Internal("cannot read expected output");
  Shape expected = Resolve(*dims, 1);
  if (!(got.shape == expected))
    return Status::InvalidArgument("output " + std::to_string(index) + " shape " +
                                   got.shape.ToString() + ", expected " + expected.ToString());
  for (size_t i = 0; i < values->size(); ++i) {
    float g = got.f32()[i], w = (*values)[i];
    if (std::isnan(w) && std::isnan(g)) continue;
    if (std::isinf(w) && g == w) continue;
    if (!(std::abs(g - w) <= 1e-4f + 1e-3f * std::abs(w)))
      return Status::InvalidArgument("output " + std::to_string(index) + " element " +
                                     std::to_string(i) + ": " + std::to_string(g) + ", expected " +
                                     std::to_string(w));
  }
  return Status::Ok();
}

Status RunDataset(const Model& model, Session& session, const fs::path& dataset,
                  const std::vector<onnx::TensorProto>& data_inputs) {
  std::vector<std::vector<float>> inputs;
  std::vector<const float*> ptrs;
  for (const auto& t : data_inputs) {
    auto v = OnnxTensorFloats(t);
    if (!v.ok()) return v.status();
    inputs.push_back(std::move(v).value());
  }
  for (auto& v : inputs) ptrs.push_back(v.data());
  EI_RETURN_IF_ERROR(session.Run(ptrs, 1));
  for (int o = 0; o < session.num_outputs(); ++o) {
    onnx::TensorProto want;
    if (!ReadProto(dataset / ("output_" + std::to_string(o) + ".pb"), &want))
      return Status::NotFound("missing output_" + std::to_string(o) + ".pb");
    EI_RETURN_IF_ERROR(CompareOutput(session.output(o), want, o));
  }
  (void)model;
  return Status::Ok();
}

CaseResult RunCase(const fs::path& dir) {
  onnx::ModelProto model;
  if (!ReadProto(dir / "model.onnx", &model)) return {Outcome::kFailed, "unreadable model"};
  if (!UsesOnlyClaimedOps(model.graph())) return {Outcome::kNotClaimed, ""};
  for (const auto& o : model.graph().output())
    if (!IsFloatValue(o)) return {Outcome::kNotFloat, ""};
  const fs::path dataset = dir / "test_data_set_0";
  auto data_inputs = BakeConstInputs(&model, dataset);
  if (!data_inputs.ok()) return {Outcome::kFailed, data_inputs.status().ToString()};
  if (model.graph().input_size() == 0) return {Outcome::kNotFloat, "no data inputs"};

  auto graph = ImportOnnxBytes(model.SerializeAsString());
  if (OpsetOutOfRange(model)) {
    if (graph.ok()) return {Outcome::kFailed, "imported a model of an opset outside 11..17"};
    if (graph.status().message().find("opset") == std::string::npos)
      return {Outcome::kFailed, "refused without naming the opset: " + graph.status().ToString()};
    return {Outcome::kOldOpset, ""};
  }
  if (!graph.ok() && kKnownUnsupported.count(dir.filename().string()))
    return {Outcome::kKnownUnsupported, graph.status().ToString()};
  if (!graph.ok()) return {Outcome::kFailed, "import: " + graph.status().ToString()};
  auto loaded = Model::FromGraph(std::move(graph).value());
  if (!loaded.ok()) return {Outcome::kFailed, "load: " + loaded.status().ToString()};
  auto session = Session::Create(*loaded, SessionOptions{});
  if (!session.ok()) return {Outcome::kFailed, "session: " + session.status().ToString()};
  Status st = RunDataset(**loaded, **session, dataset, *data_inputs);
  if (!st.ok()) return {Outcome::kFailed, st.ToString()};
  return {Outcome::kPassed, ""};
}

TEST(OnnxConformanceTest, BackendNodeTestsOfClaimedOpsPass) {
  if (!fs::exists(kNodeTests)) GTEST_SKIP() << "libonnx-testdata is not installed";
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(kNodeTests)) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  int passed = 0, failed = 0, not_claimed = 0, not_float = 0, known = 0, old_opset = 0;
  std::string failures;
  for (const fs::path& dir : dirs) {
    CaseResult r = RunCase(dir);
    switch (r.outcome) {
      case Outcome::kPassed:
        ++passed;
        break;
      case Outcome::kNotClaimed:
        ++not_claimed;
        break;
      case Outcome::kNotFloat:
        ++not_float;
        break;
      case Outcome::kKnownUnsupported:
        ++known;
        break;
      case Outcome::kOldOpset:
        ++old_opset;
        break;
      case Outcome::kFailed:
        ++failed;
        failures += "  " + dir.filename().string() + ": " + r.message + "\n";
        break;
    }
  }
  std::printf(
      "ONNX node tests: %zu in the suite, %d ran (claimed ops, float32): %d passed, "
      "%d failed, %d refused cleanly as documented unsupported features, %d refused "
      "cleanly for an opset outside 11..17; %d use ops edgeinfer does not claim, %d "
      "have non-float32 outputs\n",
      dirs.size(), passed + failed + known + old_opset, passed, failed, known, old_opset,
      not_claimed, not_float);
  EXPECT_EQ(failed, 0) << "failing node tests:\n" << failures;
  EXPECT_GT(passed, 100);
}

}  // namespace
}  // namespace edgeinfer
