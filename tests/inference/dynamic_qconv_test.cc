// The dynamic quantized Conv (inference/ops/conv.cc, DynamicQConvKernel): int8 and int4 weights
// stored OHWI, each sample's (and group's) input planes quantized once with one scale, the int8
// im2row, the integer GEMM. Checked against the float32 Conv and a float64 reference on random
// data and odd shapes (1-D and 2-D, strides, dilations, uneven pads, groups, K not a multiple of
// 32, an all-zero sample), at every CPU level the machine runs, under the bound the quantization
// steps give; int8 and int4 outputs must be bit-identical across levels. Plus: files with OIHW
// integer conv weights (written before the OHWI layout) still run, the weight_layout attribute is
// validated, the profiler shows the quantize span, and the .eim round trip keeps the layout.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "inference/eim_writer.h"
#include "inference/graph_json.h"
#include "inference/kernels/quant_acts.h"
#include "inference/model.h"
#include "inference/profiler.h"
#include "inference/quant/cpu_features.h"
#include "inference/quant/fp16.h"
#include "inference/quant/quant_types.h"
#include "inference/quant/quantize.h"
#include "inference/quant/weight_format.h"
#include "inference/quantize_graph.h"
#include "inference/session.h"
#include "tests/inference/cpu_levels.h"
#include "tests/inference/layer_test_util.h"
#include "tests/inference/op_test_util.h"

namespace edgeinfer {
namespace {

using quant::CpuLevel;
using testing::ConvSpec;
using testing::Numel;
using testing::ScopedLevel;
using testing::TestedLevels;
using ConvLayer = testing::FloatLayer;

std::string Describe(const ConvSpec& s) {
  return "Conv c=" + std::to_string(s.c) + " m=" + std::to_string(s.m) +
         " group=" + std::to_string(s.group) + " over " + DimsToString(s.spatial) + " kernel " +
         DimsToString(s.kernel);
}

// The graph with its conv at `p` (int8 or int4), as the converter writes it.
Graph Quantized(const Graph& g, Precision p) {
  QuantizeOptions o;
  o.precision = p;
  o.min_weights = 0;
  o.min_int8_conv_k = 0;
  o.logits_int4 = Precision::kInt4;
  std::vector<LayerPlan> plan;
  auto q = QuantizeGraph(g, o, &plan);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  if (!q.ok()) return Graph{};
  EXPECT_EQ(plan.size(), 1u);
  if (!plan.empty()) {
    EXPECT_EQ(plan[0].precision, p);
  }
  return std::move(q).value();
}

// Half the largest quantization step of each output channel's stored weight row: the bound of
// every weight's error, whatever order the row's columns are stored in.
std::vector<double> RowWeightError(const TensorDesc& w) {
  int64_t n = 0, k = 0;
  EXPECT_TRUE(quant::WeightMatrix(w.dims, &n, &k).ok());
  quant::WeightFormat f;
  EXPECT_TRUE(quant::WeightFormatOf(w.dtype, &f));
  const quant::QuantWeights v = quant::ViewWeights(f, n, k, w.data);
  std::vector<double> e(static_cast<size_t>(n), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    if (f == quant::WeightFormat::kInt8) {
      e[r] = v.scales[r] / 2.0;
      continue;
    }
    const auto* blocks = static_cast<const quant::BlockQ4x8*>(v.data);
    const int64_t kb = quant::Q4BlocksPerRow(k);
    for (int64_t b = 0; b < kb; ++b)
      e[r] = std::max(e[r], std::fabs(quant::Fp16ToFp32(blocks[r / 8 * kb + b].d[r % 8])) / 2.0);
  }
  return e;
}

// The float64 conv of x with the float weight, and per output the sums the bound needs.
struct Reference {
  std::vector<double> y;       // before the ReLU
  std::vector<double> sum_x;   // sum of |x| over the output's patch
  std::vector<double> sum_xw;  // sum of |x * w|
  std::vector<double> sum_w;   // sum of |w| over the output channel's row
  std::vector<double> amax;    // the activation max of the output's sample and group
  Dims out_spatial;
};

Reference Convolve(const ConvSpec& s, const ConvLayer& l, const std::vector<float>& x, int batch) {
  const bool two_d = s.spatial.size() == 2;
  const int64_t ih = two_d ? s.spatial[0] : 1, iw = s.spatial.back();
  const int64_t kh = two_d ? s.kernel[0] : 1, kw = s.kernel.back();
  const int64_t sh = two_d ? s.strides[0] : 1, sw = s.strides.back();
  const int64_t dh = two_d ? s.dilations[0] : 1, dw = s.dilations.back();
  const int64_t ph = two_d ? s.pads[0] : 0, pw = two_d ? s.pads[1] : s.pads[0];
  const int64_t ph_end = two_d ? s.pads[2] : 0, pw_end = two_d ? s.pads[3] : s.pads[1];
  const int64_t oh = (ih + ph + ph_end - (dh * (kh - 1) + 1)) / sh + 1;
  const int64_t ow = (iw + pw + pw_end - (dw * (kw - 1) + 1)) / sw + 1;
  const int64_t cg = s.c / s.group, mg = s.m / s.group, k = cg * kh * kw;
  Reference r;
  r.out_spatial = two_d ? Dims{oh, ow} : Dims{ow};
  for (int n = 0; n < batch; ++n) {
    for (int64_t oc = 0; oc < s.m; ++oc) {
      const int64_t grp = oc / mg;
      const float* xs = &x[(n * s.c + grp * cg) * ih * iw];
      double amax = 0, row_w = 0;
      for (int64_t i = 0; i < cg * ih * iw; ++i) amax = std::max(amax, std::fabs(double{xs[i]}));
      for (int64_t i = 0; i < k; ++i) row_w += std::fabs(l.w[oc * k + i]);
      for (int64_t oy = 0; oy < oh; ++oy) {
        for (int64_t ox = 0; ox < ow; ++ox) {
          double acc = l.bias[oc], sx = 0, sxw = 0;
          for (int64_t c = 0; c < cg; ++c) {
            for (int64_t ky = 0; ky < kh; ++ky) {
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * sh - ph + ky * dh, ix = ox * sw - pw + kx * dw;
                if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) continue;
                const double xv = xs[(c * ih + iy) * iw + ix];
                const double wv = l.w[((oc * cg + c) * kh + ky) * kw + kx];
                acc += xv * wv;
                sx += std::fabs(xv);
                sxw += std::fabs(xv * wv);
              }
            }
          }
          r.y.push_back(acc);
          r.sum_x.push_back(sx);
          r.sum_xw.push_back(sxw);
          r.sum_w.push_back(row_w);
          r.amax.push_back(amax);
        }
      }
    }
  }
  return r;
}

// |y - relu(ref)| <= e_w * sum|x| + (sum|w| + K e_w) * s_x / 2 + 1e-5 * sum|x w| + 1e-6, with
// e_w the channel's weight bound and s_x = amax / 127 the sample's (and group's) scale; with
// `quantized_acts` false (the float Conv) only the float rounding term.
void ExpectWithinBound(const Reference& r, const std::vector<float>& y, int64_t k, int64_t plane,
                       const std::vector<double>& ew, bool quantized_acts,
                       const std::string& what) {
  ASSERT_EQ(y.size(), r.y.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const int64_t oc = static_cast<int64_t>(i) / plane % static_cast<int64_t>(ew.size());
    double bound = 1e-6 + 1e-5 * r.sum_xw[i];
    if (quantized_acts) {
      const double sx = r.amax[i] / 127.0;
      bound += ew[oc] * r.sum_x[i] + (r.sum_w[i] + static_cast<double>(k) * ew[oc]) * sx / 2;
    }
    const double ref = std::max(r.y[i], 0.0);
    if (!(std::fabs(y[i] - ref) <= bound) && ++bad <= 5)
      ADD_FAILURE() << what << ": y[" << i << "] = " << y[i] << ", reference " << ref << ", bound "
                    << bound;
  }
  EXPECT_EQ(bad, 0) << what;
}

// The activation helpers against their specification: quant::QuantizeActRow's max (NaN
// skipped, inf counted) and quant::Q4Correction, on lengths that leave vector tails.
TEST(DynamicQConvKernels, MaxAbsAndQ4CorrectionsMatchTheReference) {
  for (int64_t n : {0, 1, 7, 8, 33, 4096 + 5}) {
    std::vector<float> x =
        testing::RandomFloats(static_cast<size_t>(n), static_cast<uint32_t>(n) + 1, -3.f, 3.f);
    if (n > 5) {
      x[1] = std::nanf("");
      x[2] = -std::nanf("");
      x[3] = -0.f;
      x[4] = 1e-40f;  // subnormal
    }
    float want = 0.f;
    for (float v : x) want = std::fabs(v) > want ? std::fabs(v) : want;
    EXPECT_EQ(MaxAbs(x.data(), n), want) << n;
    if (n > 5) {
      x[n - 1] = -INFINITY;
      EXPECT_EQ(MaxAbs(x.data(), n), INFINITY) << n;
      std::fill(x.begin(), x.end(), std::nanf(""));
      EXPECT_EQ(MaxAbs(x.data(), n), 0.f) << n;
    }
  }
  const int64_t rows = 5, kp = 96;
  std::vector<int8_t> q(static_cast<size_t>(rows * kp));
  std::mt19937 rng(9);
  for (int8_t& v : q) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  std::fill(q.begin(), q.begin() + 32, int8_t{-127});  // the largest |sum| a block has
  std::vector<int32_t> got(static_cast<size_t>(rows * kp / 32)), want(got.size());
  Q4Corrections(q.data(), rows, kp, got.data());
  for (int64_t r = 0; r < rows; ++r) quant::Q4Correction(&q[r * kp], kp, &want[r * kp / 32]);
  EXPECT_EQ(got, want);
  EXPECT_EQ(got[0], 8 * 127 * 32);
}

const ConvSpec kCases[] = {
    {3, 16, 1, {50}, {7}, {2}, {1}, {3, 3}},                    // a stem: K = 21, stride 2
    {32, 24, 1, {33}, {1}, {1}, {1}, {0, 0}},                   // pointwise, M not 8k
    {16, 16, 1, {40}, {5}, {1}, {2}, {4, 4}},                   // dilated, K = 80
    {12, 16, 2, {21}, {3}, {2}, {1}, {1, 2}},                   // groups, stride 2, uneven pads
    {5, 9, 1, {9, 11}, {3, 3}, {2, 1}, {1, 1}, {1, 0, 2, 1}},   // 2-D, K = 45, M = 9
    {4, 12, 1, {6, 7}, {2, 3}, {1, 1}, {2, 1}, {1, 0, 0, 2}},   // 2-D dilated, uneven pads
    {64, 8, 1, {12}, {9}, {1}, {1}, {4, 4}},                    // K = 576
    {16, 32, 4, {8, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}},  // 2-D, 4 groups of 8
};

TEST(DynamicQConv, MatchesFloatConvWithinQuantizationBoundAtEveryLevel) {
  const int batch = 3;
  uint32_t seed = 300;
  for (const ConvSpec& s : kCases) {
    const ConvLayer l = testing::MakeConvLayer(s, seed++);
    const int64_t in_sample = s.c * Numel(s.spatial);
    std::vector<float> x = testing::RandomFloats(static_cast<size_t>(batch * in_sample), seed + 11);
    // Sample 1 is all zero (scale 0); sample 2 has one loud channel (a coarse shared scale).
    std::fill(x.begin() + in_sample, x.begin() + 2 * in_sample, 0.f);
    for (int64_t i = 0; i < in_sample / s.c; ++i) x[2 * in_sample + i] *= 8.f;
    const Reference r = Convolve(s, l, x, batch);
    const int64_t plane = Numel(r.out_spatial);
    const int64_t k = static_cast<int64_t>(l.w.size()) / s.m;
    // The float Conv agrees with the reference: the reference can tell a wrong answer.
    ExpectWithinBound(r, testing::RunSession(l.graph, x, batch), k, plane,
                      std::vector<double>(s.m, 0.0), false, Describe(s) + " fp32");
    for (Precision p : {Precision::kInt8, Precision::kInt4}) {
      if (p == Precision::kInt4 && s.group > 1 && (s.m / s.group) % 8 != 0) continue;
      const Graph q = Quantized(l.graph, p);
      ASSERT_FALSE(q.nodes.empty());
      EXPECT_EQ(q.nodes[0].attrs.GetString("weight_layout"), "ohwi");
      const TensorDesc& wq = q.tensors[q.nodes[0].inputs[1]];
      Dims ohwi = {s.m};
      ohwi.insert(ohwi.end(), s.kernel.begin(), s.kernel.end());
      ohwi.push_back(s.c / s.group);
      EXPECT_EQ(wq.dims, ohwi);
      const std::vector<double> ew = RowWeightError(wq);
      std::vector<float> first;
      for (CpuLevel level : TestedLevels()) {
        ScopedLevel scoped(level);
        const std::vector<float> y = testing::RunSession(q, x, batch);
        const std::string what =
            Describe(s) + " " + PrecisionName(p) + " at " + quant::CpuLevelName(level);
        ExpectWithinBound(r, y, k, plane, ew, true, what);
        // The all-zero sample gives relu(bias) exactly: scale 0, codes 0.
        for (int64_t oc = 0; oc < s.m; ++oc)
          for (int64_t i = 0; i < plane; ++i)
            ASSERT_EQ(y[(s.m + oc) * plane + i], std::max(l.bias[oc], 0.f)) << what;
        if (first.empty()) first = y;
        EXPECT_EQ(y, first) << what << ": integer sums give the same bits at every level";
      }
    }
  }
}

// A batch runs in blocks of samples, one integer GEMM over all of a block's rows, each row with
// its own sample's scale: every sample's output must be bit-identical to that sample run alone,
// at every level. A session planned for 17 samples runs batches of 1, 3, 16 and 17 (blocks that
// do not divide the batch, a last block of one sample); among the samples are an all-zero one
// (scale 0) and a loud one, so a row given a neighbour's scale changes the bits.
TEST(DynamicQConv, BatchesMatchEachSampleRunAloneBitForBit) {
  constexpr int kMaxBatch = 17;
  uint32_t seed = 800;
  for (const ConvSpec& s : kCases) {
    const ConvLayer l = testing::MakeConvLayer(s, seed++);
    const int64_t in_sample = s.c * Numel(s.spatial);
    std::vector<float> x =
        testing::RandomFloats(static_cast<size_t>(kMaxBatch * in_sample), seed + 7);
    std::fill(x.begin() + 5 * in_sample, x.begin() + 6 * in_sample, 0.f);
    for (int64_t i = 0; i < in_sample; ++i) x[9 * in_sample + i] *= 50.f;
    for (Precision p : {Precision::kInt8, Precision::kInt4}) {
      if (p == Precision::kInt4 && s.group > 1 && (s.m / s.group) % 8 != 0) continue;
      auto model = Model::FromGraph(Quantized(l.graph, p));
      ASSERT_TRUE(model.ok()) << model.status().ToString();
      for (CpuLevel level : TestedLevels()) {
        ScopedLevel scoped(level);
        const std::string what =
            Describe(s) + " " + PrecisionName(p) + " at " + quant::CpuLevelName(level);
        auto one = Session::Create(*model, SessionOptions{.max_batch = 1});
        auto big = Session::Create(*model, SessionOptions{.max_batch = kMaxBatch});
        ASSERT_TRUE(one.ok() && big.ok()) << what;
        auto run = [](Session& session, const float* in, int batch) {
          EXPECT_TRUE(session.Run({&in, 1}, batch).ok());
          const TensorView out = session.output(0);
          return std::vector<float>(out.f32(), out.f32() + out.shape.NumElements());
        };
        std::vector<float> alone;
        for (int n = 0; n < kMaxBatch; ++n) {
          const std::vector<float> y = run(**one, x.data() + n * in_sample, 1);
          alone.insert(alone.end(), y.begin(), y.end());
        }
        const size_t out_sample = alone.size() / kMaxBatch;
        for (int batch : {1, 3, 16, 17}) {
          const int first = kMaxBatch - batch;
          const std::vector<float> want(alone.begin() + first * out_sample, alone.end());
          EXPECT_EQ(run(**big, x.data() + first * in_sample, batch), want)
              << what << ", batch " << batch;
        }
      }
    }
  }
}

// An int8 or int4 conv weight in ONNX's OIHW order with no weight_layout attribute, as files
// written before the OHWI layout hold it: the op still runs it (per-row quantized activations,
// whose scales are at most the per-sample one, so the same bound holds).
TEST(DynamicQConv, OihwIntegerWeightsFromOlderFilesStillRun) {
  const int batch = 2;
  uint32_t seed = 400;
  for (const ConvSpec& s : {kCases[0], kCases[3], kCases[4]}) {
    ConvLayer l = testing::MakeConvLayer(s, seed++);
    const int64_t in_sample = s.c * Numel(s.spatial);
    const std::vector<float> x =
        testing::RandomFloats(static_cast<size_t>(batch * in_sample), seed + 5);
    const Reference r = Convolve(s, l, x, batch);
    const int64_t k = static_cast<int64_t>(l.w.size()) / s.m;
    for (DType dtype : {DType::kQInt8Channel, DType::kQInt4Block}) {
      quant::WeightFormat f;
      ASSERT_TRUE(quant::WeightFormatOf(dtype, &f));
      Graph g = l.graph;
      const Dims dims = g.tensors[g.nodes[0].inputs[1]].dims;
      std::vector<uint8_t> blob(*ConstantBytes(dtype, dims) + 64);
      void* aligned = blob.data() + (64 - reinterpret_cast<uintptr_t>(blob.data()) % 64) % 64;
      quant::QuantizeWeights(f, l.w.data(), s.m, k, aligned);
      g.nodes[0].inputs[1] = g.AddConstant("wq", dtype, dims, aligned,
                                           static_cast<size_t>(*ConstantBytes(dtype, dims)));
      g.nodes[0].attrs.Set("precision", std::string(quant::WeightPrecisionName(dtype)));
      ASSERT_TRUE(ValidateGraph(&g, false).ok());
      const std::vector<double> ew = RowWeightError(g.tensors[g.nodes[0].inputs[1]]);
      ExpectWithinBound(r, testing::RunSession(g, x, batch), k, Numel(r.out_spatial), ew, true,
                        Describe(s) + " OIHW " + DTypeName(dtype));
    }
  }
}

// Validation of weight_layout on a 1-D conv x [B, 8, 16], W 16 x 3 taps.
Status ValidateWith(DType dtype, const Dims& w_dims, const std::string* layout) {
  Graph g;
  TensorDesc x;
  x.name = "x";
  x.dims = {kBatchDim, 8, 16};
  g.inputs.push_back(g.AddTensor(x));
  const size_t bytes = dtype == DType::kFloat32 ? static_cast<size_t>(Numel(w_dims)) * 4
                                                : *ConstantBytes(dtype, w_dims);
  std::vector<uint8_t> blob(bytes, 0);
  Node n;
  n.name = "conv";
  n.op = "Conv";
  if (layout != nullptr) n.attrs.Set("weight_layout", *layout);
  n.inputs = {g.inputs[0], g.AddConstant("w", dtype, w_dims, blob.data(), bytes)};
  TensorDesc y;
  y.name = "y";
  n.outputs.push_back(g.AddTensor(y));
  g.outputs.push_back(n.outputs[0]);
  g.nodes.push_back(n);
  return ValidateGraph(&g, false);
}

TEST(DynamicQConv, ValidatesTheWeightLayout) {
  const std::string ohwi = "ohwi", oihw = "oihw", bogus = "hwio";
  EXPECT_TRUE(ValidateWith(DType::kQInt8Channel, {16, 3, 8}, &ohwi).ok());
  EXPECT_TRUE(ValidateWith(DType::kQInt4Block, {16, 3, 8}, &ohwi).ok());
  EXPECT_TRUE(ValidateWith(DType::kQInt8Channel, {16, 8, 3}, &oihw).ok());
  EXPECT_TRUE(ValidateWith(DType::kQInt8Channel, {16, 8, 3}, nullptr).ok());
  // The channel count sits last in OHWI: [16, 8, 3] read as OHWI has 3 input channels.
  Status st = ValidateWith(DType::kQInt8Channel, {16, 8, 3}, &ohwi);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("C/group"), std::string::npos) << st.message();
  st = ValidateWith(DType::kQInt8Channel, {16, 3, 8}, &bogus);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("weight_layout"), std::string::npos) << st.message();
  // Only integer weights come in OHWI.
  st = ValidateWith(DType::kFloat32, {16, 3, 8}, &ohwi);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("float32"), std::string::npos) << st.message();
  EXPECT_FALSE(ValidateWith(DType::kFloat16, {16, 3, 8}, &ohwi).ok());
}

TEST(DynamicQConv, ProfilerShowsTheQuantizeSpan) {
  const ConvSpec s = kCases[2];
  const ConvLayer l = testing::MakeConvLayer(s, 500);
  const std::vector<float> x =
      testing::RandomFloats(static_cast<size_t>(2 * s.c * Numel(s.spatial)), 501);
  Profiler profiler;
  testing::RunSession(Quantized(l.graph, Precision::kInt8), x, 2, &profiler);
  const std::string table = profiler.SummaryTable();
  EXPECT_NE(table.find("quantize"), std::string::npos) << table;
  EXPECT_NE(table.find("Conv"), std::string::npos) << table;
}

TEST(DynamicQConv, EimRoundTripKeepsTheLayout) {
  const ConvSpec s = kCases[4];
  const ConvLayer l = testing::MakeConvLayer(s, 600);
  const Graph q = Quantized(l.graph, Precision::kInt4);
  const std::string path =
      ::testing::TempDir() + "/dynamic_qconv." + std::to_string(getpid()) + ".eim";
  ASSERT_TRUE(WriteEim(q, path).ok());
  auto loaded = Model::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->graph().nodes[0].attrs.GetString("weight_layout"), "ohwi");
  const std::vector<float> x =
      testing::RandomFloats(static_cast<size_t>(2 * s.c * Numel(s.spatial)), 601);
  const std::vector<float> want = testing::RunSession(q, x, 2);
  auto session = Session::Create(*loaded, SessionOptions{.max_batch = 2});
  ASSERT_TRUE(session.ok());
  const float* in = x.data();
  ASSERT_TRUE((*session)->Run({&in, 1}, 2).ok());
  const TensorView out = (*session)->output(0);
  EXPECT_EQ(std::vector<float>(out.f32(), out.f32() + out.shape.NumElements()), want);
  std::remove(path.c_str());
}

// NaN and infinite inputs are bad input: the run completes (no trap, no out-of-range code).
TEST(DynamicQConv, NonFiniteInputRunsToTheEnd) {
  const ConvSpec s = kCases[1];
  const ConvLayer l = testing::MakeConvLayer(s, 700);
  std::vector<float> x =
      testing::RandomFloats(static_cast<size_t>(2 * s.c * Numel(s.spatial)), 701);
  x[3] = std::nanf("");
  x[x.size() - 2] = INFINITY;
  for (Precision p : {Precision::kInt8, Precision::kInt4}) {
    const std::vector<float> y = testing::RunSession(Quantized(l.graph, p), x, 2);
    EXPECT_EQ(static_cast<int64_t>(y.size()), 2 * s.m * s.spatial[0]);
  }
}

}  // namespace
}  // namespace edgeinfer
