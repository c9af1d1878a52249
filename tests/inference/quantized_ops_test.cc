// Gemm and Conv with quantized weights (fp16, int8 per channel, int4 blocks), end to end as a
// session runs them: the converter pass (QuantizeGraph) stores the weight, ValidateGraph checks
// it, the op picks its kernels at create and runs on the arena's scratch. Each output is compared
// with a float64 reference under a bound derived from the weight scales and the activation
// scales, at every CPU level the machine runs (EDGEINFER_CPU_LEVEL, read at kernel creation);
// int8 and int4 results must also be bit-identical across levels. Plus the validation of
// quantized weights, the converter's per-layer decisions, the profiler's quantize span and the
// .eim round trip (zero copy).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "inference/eim_writer.h"
#include "inference/graph_json.h"
#include "inference/model.h"
#include "inference/profiler.h"
#include "inference/quant/cpu_features.h"
#include "inference/quant/fp16.h"
#include "inference/quant/quant_types.h"
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
using Layer = testing::FloatLayer;

// --- One-layer float graphs ---

Layer GemmLayer(const Dims& a_dims, int64_t n, bool relu, uint32_t seed, const Dims& c_dims = {-2},
                float beta = 1.f) {
  Layer l;
  Graph& g = l.graph;
  const int64_t k = a_dims.back();
  TensorDesc x;
  x.name = "x";
  x.dims = a_dims;
  g.inputs.push_back(g.AddTensor(x));
  l.w = testing::RandomFloats(static_cast<size_t>(n * k), seed);
  Node node;
  node.name = "fc";
  node.op = "Gemm";
  node.attrs.Set("transB", int64_t{1});
  node.attrs.Set("beta", beta);
  if (relu) node.attrs.Set("activation", std::string("Relu"));
  node.inputs = {g.inputs[0],
                 g.AddConstant("w", DType::kFloat32, {n, k}, l.w.data(), l.w.size() * 4)};
  if (!c_dims.empty()) {
    const Dims dims = c_dims == Dims{-2} ? Dims{n} : c_dims;
    l.bias = testing::RandomFloats(static_cast<size_t>(Numel(dims)), seed + 1, -0.5f, 0.5f);
    node.inputs.push_back(
        g.AddConstant("c", DType::kFloat32, dims, l.bias.data(), l.bias.size() * 4));
  }
  TensorDesc y;
  y.name = "y";
  node.outputs.push_back(g.AddTensor(y));
  g.outputs.push_back(node.outputs[0]);
  g.nodes.push_back(node);
  return l;
}

// The layer's graph with its one layer at `p` (no size or logits policy in the way).
Graph Quantized(const Graph& g, Precision p) {
  QuantizeOptions o;
  o.precision = p;
  o.min_weights = 0;
  o.logits_int4 = Precision::kInt4;
  o.conv_int8 = Precision::kInt8;
  o.min_int8_conv_k = 0;
  std::vector<LayerPlan> plan;
  auto q = QuantizeGraph(g, o, &plan);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(plan.size(), 1u);
  if (!plan.empty()) {
    EXPECT_EQ(plan[0].precision, p);
  }
  return q.ok() ? std::move(q).value() : Graph{};
}

// Per-element error bound of each stored weight, from its format's scales.
std::vector<double> WeightErrorBound(const TensorDesc& w) {
  int64_t n = 0, k = 0;
  EXPECT_TRUE(quant::WeightMatrix(w.dims, &n, &k).ok());
  std::vector<double> e(static_cast<size_t>(n * k));
  quant::WeightFormat f;
  EXPECT_TRUE(quant::WeightFormatOf(w.dtype, &f));
  const quant::QuantWeights v = quant::ViewWeights(f, n, k, w.data);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      double bound = 0;
      if (f == quant::WeightFormat::kInt8) {
        bound = v.scales[r] / 2.0;
      } else if (f == quant::WeightFormat::kQ4) {
        const auto* blocks = static_cast<const quant::BlockQ4x8*>(v.data);
        const auto& b = blocks[r / 8 * quant::Q4BlocksPerRow(k) + c / quant::kQ4BlockSize];
        bound = std::fabs(quant::Fp16ToFp32(b.d[r % 8])) / 2.0;
      } else {  // fp16: half an ulp, relative 2^-11, and the subnormal step
        const auto* h = static_cast<const uint16_t*>(v.data);
        bound = std::fabs(quant::Fp16ToFp32(h[r * k + c])) * std::ldexp(1.0, -11) +
                std::ldexp(1.0, -25);
      }
      e[r * k + c] = bound;
    }
  }
  return e;
}

// Checks y[m][n] (after a ReLU when `relu`) against rows X [M, K] . W [N, K]^T + bias in float64:
//   |y - ref| <= sum_k |x| e_w + sum_k (|w| + e_w) * s_x / 2 + 1e-5 * sum_k |x| |w| + 1e-6
// with e_w the weight's bound and s_x = max|x[m]| / 127 the row's activation scale (0 for fp16,
// which keeps activations float), or row_amax[m] / 127 when given (a dynamic int8 Conv quantizes
// a sample's planes with one scale). `out(m, n)` reads the op's output.
template <class Out>
void ExpectWithinBound(const std::vector<double>& rows, int64_t m_count, int64_t k,
                       const std::vector<float>& w, const std::vector<double>& ew,
                       const std::vector<float>& bias, int64_t n_count, bool quantized_acts,
                       bool relu, Out out, const std::string& what,
                       const std::vector<double>* row_amax = nullptr) {
  int bad = 0;
  for (int64_t m = 0; m < m_count; ++m) {
    const double* x = &rows[m * k];
    double amax = 0;
    for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(x[i]));
    if (row_amax != nullptr) amax = (*row_amax)[m];
    const double sx = quantized_acts ? amax / 127.0 : 0.0;
    for (int64_t n = 0; n < n_count; ++n) {
      double ref = bias.empty() ? 0.0 : bias[n];
      double bound = 1e-6, mag = 0;
      for (int64_t i = 0; i < k; ++i) {
        const double wv = w[n * k + i];
        ref += x[i] * wv;
        bound += std::fabs(x[i]) * ew[n * k + i] + (std::fabs(wv) + ew[n * k + i]) * sx / 2;
        mag += std::fabs(x[i] * wv);
      }
      bound += 1e-5 * mag;
      if (relu) ref = std::max(ref, 0.0);
      const double got = out(m, n);
      if (!(std::fabs(got - ref) <= bound) && ++bad <= 5)
        ADD_FAILURE() << what << ": y[" << m << "][" << n << "] = " << got << ", reference " << ref
                      << ", bound " << bound;
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

constexpr Precision kQuantized[] = {Precision::kFp16, Precision::kInt8, Precision::kInt4};

std::string Describe(Precision p, CpuLevel level) {
  return std::string(PrecisionName(p)) + " at " + quant::CpuLevelName(level);
}

// --- Gemm ---

struct GemmCase {
  Dims a;  // input dims with the batch
  int64_t n;
  int batch;
  Dims c = {-2};  // {-2}: [N]
  float beta = 1.f;
};

TEST(QuantOpGemm, MatchesFloatWithinScaleBoundsAtEveryLevel) {
  const GemmCase cases[] = {
      {{kBatchDim, 37}, 1, 1},               // N = 1, K not a multiple of 32
      {{kBatchDim, 64}, 10, 3, {1, 10}},     // C [1, N] fused as the bias
      {{kBatchDim, 784}, 33, 16},            // the MLP's K, N not a multiple of 8
      {{kBatchDim, 100}, 8, 5, {}},          // no C
      {{kBatchDim, 2, 45}, 12, 2},           // rank-3 A: leading dims flattened into M
      {{kBatchDim, 50}, 20, 4, {20}, 0.5f},  // beta != 1: C added after the GEMM
      {{kBatchDim, 300}, 17, 4, {1}},        // C [1] broadcast
  };
  uint32_t seed = 1;
  for (const GemmCase& gc : cases) {
    Layer l = GemmLayer(gc.a, gc.n, /*relu=*/seed % 2 == 0, seed, gc.c, gc.beta);
    const bool relu = seed % 2 == 0;
    ++seed;
    const int64_t k = gc.a.back();
    const int64_t rows_per_sample = Numel(Dims(gc.a.begin() + 1, gc.a.end() - 1));
    const int64_t m = gc.batch * rows_per_sample;
    std::vector<float> x = testing::RandomFloats(static_cast<size_t>(m * k), seed + 100);
    if (m > 1) std::fill(x.begin(), x.begin() + k, 0.f);  // an all-zero row: scale 0
    std::vector<double> rows(x.begin(), x.end());
    // The bias the reference adds: C broadcast along N, scaled by beta.
    std::vector<float> bias;
    if (!l.bias.empty()) {
      for (int64_t n = 0; n < gc.n; ++n)
        bias.push_back(gc.beta * l.bias[l.bias.size() == 1 ? 0 : n]);
    }
    for (Precision p : kQuantized) {
      Graph q = Quantized(l.graph, p);
      const std::vector<double> ew = WeightErrorBound(q.tensors[q.nodes[0].inputs[1]]);
      std::vector<float> first;
      for (CpuLevel level : TestedLevels()) {
        ScopedLevel scoped(level);
        const std::vector<float> y = testing::RunSession(q, x, gc.batch);
        ASSERT_EQ(static_cast<int64_t>(y.size()), m * gc.n);
        ExpectWithinBound(
            rows, m, k, l.w, ew, bias, gc.n, p != Precision::kFp16, relu,
            [&](int64_t i, int64_t j) { return y[i * gc.n + j]; },
            "Gemm " + DimsToString(gc.a) + " x " + std::to_string(gc.n) + " " + Describe(p, level));
        // int8 and int4 sums are exact integers and the float steps are fixed: every level
        // gives the same bits.
        if (first.empty()) first = y;
        if (p != Precision::kFp16) {
          EXPECT_EQ(y, first) << Describe(p, level);
        }
      }
    }
  }
}

// --- Conv ---

// Rows of the conv's GEMM in float64: the patch of output position (n, pos) of group `grp`.
std::vector<double> ConvRows(const ConvSpec& s, const std::vector<float>& x, int batch, int64_t grp,
                             Dims* out_spatial) {
  const bool two_d = s.spatial.size() == 2;
  const int64_t ih = two_d ? s.spatial[0] : 1, iw = s.spatial.back();
  const int64_t kh = two_d ? s.kernel[0] : 1, kw = s.kernel.back();
  const int64_t sh = two_d ? s.strides[0] : 1, sw = s.strides.back();
  const int64_t dh = two_d ? s.dilations[0] : 1, dw = s.dilations.back();
  const int64_t ph = two_d ? s.pads[0] : 0, pw = two_d ? s.pads[1] : s.pads[0];
  const int64_t ph_end = two_d ? s.pads[2] : 0, pw_end = two_d ? s.pads[3] : s.pads[1];
  const int64_t oh = (ih + ph + ph_end - (dh * (kh - 1) + 1)) / sh + 1;
  const int64_t ow = (iw + pw + pw_end - (dw * (kw - 1) + 1)) / sw + 1;
  *out_spatial = two_d ? Dims{oh, ow} : Dims{ow};
  const int64_t cg = s.c / s.group, k = cg * kh * kw;
  std::vector<double> rows;
  for (int n = 0; n < batch; ++n) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        for (int64_t c = 0; c < cg; ++c) {
          for (int64_t ky = 0; ky < kh; ++ky) {
            for (int64_t kx = 0; kx < kw; ++kx) {
              const int64_t iy = oy * sh - ph + ky * dh, ix = ox * sw - pw + kx * dw;
              const bool inside = iy >= 0 && iy < ih && ix >= 0 && ix < iw;
              const int64_t ch = grp * cg + c;
              rows.push_back(inside ? x[((n * s.c + ch) * ih + iy) * iw + ix] : 0.0);
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(static_cast<int64_t>(rows.size()), batch * oh * ow * k);
  return rows;
}

// The bounds of rows [n_begin, n_end) of a conv weight's `ew` (storage order) in OIHW order: an
// OHWI weight [M, k..., C/g] has its columns (tap, channel) reordered to (channel, tap).
std::vector<double> OihwOrder(const std::vector<double>& ew, const ConvSpec& s, bool ohwi,
                              int64_t n_begin, int64_t n_end) {
  const int64_t cg = s.c / s.group, taps = Numel(s.kernel), k = cg * taps;
  std::vector<double> out;
  for (int64_t n = n_begin; n < n_end; ++n)
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t t = 0; t < taps; ++t)
        out.push_back(ew[n * k + (ohwi ? t * cg + c : c * taps + t)]);
  return out;
}

TEST(QuantOpConv, MatchesFloatWithinScaleBoundsAtEveryLevel) {
  const ConvSpec cases[] = {
      {3, 32, 1, {50}, {7}, {2}, {1}, {3, 3}},   // a stem: K = 21, stride 2, padding
      {32, 24, 1, {33}, {1}, {1}, {1}, {0, 0}},  // pointwise
      {16, 16, 1, {40}, {5}, {1}, {2}, {4, 4}},  // dilated
      {8, 16, 2, {20}, {3}, {1}, {1}, {1, 1}},   // two groups of 8 output channels
      {3, 8, 1, {9, 11}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}},  // 2-D
      {4, 12, 1, {6, 7}, {2, 3}, {1, 1}, {2, 1}, {1, 0, 0, 2}},  // 2-D, dilated, uneven pads
  };
  const int batch = 2;
  uint32_t seed = 50;
  for (const ConvSpec& s : cases) {
    Layer l = testing::MakeConvLayer(s, seed++);
    const int64_t in_sample = s.c * Numel(s.spatial);
    const std::vector<float> x =
        testing::RandomFloats(static_cast<size_t>(batch * in_sample), seed + 7);
    const int64_t mg = s.m / s.group;
    for (Precision p : kQuantized) {
      Graph q = Quantized(l.graph, p);
      const TensorDesc& wq = q.tensors[q.nodes[0].inputs[1]];
      const std::vector<double> ew = WeightErrorBound(wq);
      // int8 and int4 conv weights are stored OHWI (fp16 keeps ONNX's OIHW).
      EXPECT_EQ(q.nodes[0].attrs.GetString("weight_layout"), p == Precision::kFp16 ? "" : "ohwi");
      std::vector<float> first;
      for (CpuLevel level : TestedLevels()) {
        ScopedLevel scoped(level);
        const std::vector<float> y = testing::RunSession(q, x, batch);
        for (int64_t grp = 0; grp < s.group; ++grp) {
          Dims out_spatial;
          const std::vector<double> rows = ConvRows(s, x, batch, grp, &out_spatial);
          const int64_t plane = Numel(out_spatial);
          const int64_t k = static_cast<int64_t>(l.w.size()) / s.m;
          ASSERT_EQ(static_cast<int64_t>(y.size()), batch * s.m * plane);
          const std::vector<float> w(l.w.begin() + grp * mg * k, l.w.begin() + (grp + 1) * mg * k);
          const bool ohwi = q.nodes[0].attrs.GetString("weight_layout") == "ohwi";
          const std::vector<double> e = OihwOrder(ew, s, ohwi, grp * mg, (grp + 1) * mg);
          // int8/int4 weights are stored OHWI and run the dynamic kernel: one activation scale
          // per sample and group, max|x| over the group's input planes.
          std::vector<double> amax;
          for (int n = 0; n < batch; ++n) {
            double a = 0;
            for (int64_t i = 0; i < in_sample / s.group; ++i)
              a = std::max(a,
                           std::fabs(double{x[n * in_sample + grp * (in_sample / s.group) + i]}));
            amax.insert(amax.end(), static_cast<size_t>(plane), a);
          }
          const std::vector<float> b(l.bias.begin() + grp * mg, l.bias.begin() + (grp + 1) * mg);
          ExpectWithinBound(
              rows, batch * plane, k, w, e, b, mg, p != Precision::kFp16, /*relu=*/true,
              [&](int64_t row, int64_t oc) {
                const int64_t n = row / plane, pos = row % plane;
                return y[(n * s.m + grp * mg + oc) * plane + pos];
              },
              "Conv " + DimsToString(wq.dims) + " over " + DimsToString(s.spatial) + " " +
                  Describe(p, level),
              ohwi ? &amax : nullptr);
        }
        if (first.empty()) first = y;
        if (p != Precision::kFp16) {
          EXPECT_EQ(y, first) << Describe(p, level);
        }
      }
    }
  }
}

// --- Validation ---

// A Gemm of `x` [B, K] with the constant `w` as given.
Status ValidateGemmWith(DType dtype, const Dims& w_dims, size_t bytes, const Attrs& attrs,
                        bool constant = true) {
  Graph g;
  TensorDesc x;
  x.name = "x";
  x.dims = {kBatchDim, w_dims.size() > 1 ? w_dims[1] : 1};
  g.inputs.push_back(g.AddTensor(x));
  std::vector<uint8_t> blob(bytes, 0);
  int w;
  if (constant) {
    w = g.AddConstant("w", dtype, w_dims, blob.data(), blob.size());
  } else {
    TensorDesc t;
    t.name = "w";
    t.dtype = dtype;
    t.dims = w_dims;
    w = g.AddTensor(t);
    g.inputs.push_back(w);
  }
  Node n;
  n.name = "fc";
  n.op = "Gemm";
  n.attrs = attrs;
  n.inputs = {g.inputs[0], w};
  TensorDesc y;
  y.name = "y";
  n.outputs.push_back(g.AddTensor(y));
  g.outputs.push_back(n.outputs[0]);
  g.nodes.push_back(n);
  return ValidateGraph(&g, false);
}

Attrs TransB(int64_t v) {
  Attrs a;
  a.Set("transB", v);
  return a;
}

TEST(QuantOpValidation, AcceptsWellFormedWeights) {
  for (DType t : {DType::kQInt8Channel, DType::kQInt4Block, DType::kFloat16}) {
    const size_t bytes = t == DType::kFloat16 ? 10 * 40 * 2 : *ConstantBytes(t, {10, 40});
    EXPECT_TRUE(ValidateGemmWith(t, {10, 40}, bytes, TransB(1)).ok()) << DTypeName(t);
  }
  // int8 rows pad K to 32 and carry a scale and a row sum; int4 packs 8-row groups of blocks.
  EXPECT_EQ(*quant::WeightBlobBytes(DType::kQInt8Channel, {10, 40}), 10u * 64 + 10 * 8);
  EXPECT_EQ(*quant::WeightBlobBytes(DType::kQInt4Block, {10, 40}), 2u * 2 * 144);
  EXPECT_EQ(*quant::WeightBlobBytes(DType::kQInt8Channel, {16, 3, 5}), 16u * 32 + 16 * 8);
}

TEST(QuantOpValidation, RejectsWhatTheKernelsCannotRun) {
  const size_t bytes = *ConstantBytes(DType::kQInt8Channel, {10, 40});
  // Wrong blob size: ValidateGraph (and the .eim reader, through ConstantBytes) refuse it.
  Status st = ValidateGemmWith(DType::kQInt8Channel, {10, 40}, bytes - 1, TransB(1));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("needs"), std::string::npos) << st.message();
  // transB = 0 or alpha != 1: the kernels take exactly X * W^T.
  EXPECT_FALSE(ValidateGemmWith(DType::kQInt8Channel, {10, 40}, bytes, TransB(0)).ok());
  Attrs alpha = TransB(1);
  alpha.Set("alpha", 2.f);
  EXPECT_FALSE(ValidateGemmWith(DType::kQInt8Channel, {10, 40}, bytes, alpha).ok());
  // A packed dtype is for constants only.
  st = ValidateGemmWith(DType::kQInt8Channel, {10, 40}, 0, TransB(1), /*constant=*/false);
  EXPECT_FALSE(st.ok());
  // The precision attribute must name the weight's precision.
  Attrs wrong = TransB(1);
  wrong.Set("precision", std::string("int4"));
  st = ValidateGemmWith(DType::kQInt8Channel, {10, 40}, bytes, wrong);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("precision"), std::string::npos) << st.message();
  Attrs right = TransB(1);
  right.Set("precision", std::string("int8"));
  EXPECT_TRUE(ValidateGemmWith(DType::kQInt8Channel, {10, 40}, bytes, right).ok());
  // K beyond the exact-int32 limit, and weights that are not [N, K...].
  EXPECT_FALSE(quant::WeightBlobBytes(DType::kQInt8Channel, {2, quant::kMaxQuantK + 1}).ok());
  EXPECT_FALSE(quant::WeightBlobBytes(DType::kQInt4Block, {40}).ok());
  EXPECT_FALSE(quant::WeightBlobBytes(DType::kQInt4Block, {0, 40}).ok());
  EXPECT_FALSE(quant::WeightBlobBytes(DType::kFloat32, {4, 40}).ok());
}

TEST(QuantOpValidation, RejectsDepthwiseAndUnalignedGroupedInt4Convs) {
  auto conv = [](int64_t c, int64_t m, int64_t group, DType dtype) {
    ConvSpec s{c, m, group, {16}, {3}, {1}, {1}, {1, 1}};
    Layer l = testing::MakeConvLayer(s, 3);
    Graph& g = l.graph;
    const Dims dims = g.tensors[g.nodes[0].inputs[1]].dims;
    const size_t bytes = dtype == DType::kFloat16 ? static_cast<size_t>(Numel(dims)) * 2
                                                  : *ConstantBytes(dtype, dims);
    std::vector<uint8_t> blob(bytes, 0);
    g.nodes[0].inputs[1] = g.AddConstant("wq", dtype, dims, blob.data(), bytes);
    return ValidateGraph(&g, false);
  };
  EXPECT_TRUE(conv(8, 16, 1, DType::kQInt8Channel).ok());
  EXPECT_FALSE(conv(8, 8, 8, DType::kQInt8Channel).ok());  // depthwise
  EXPECT_FALSE(conv(8, 8, 8, DType::kFloat16).ok());
  EXPECT_TRUE(conv(8, 16, 2, DType::kQInt4Block).ok());   // M/group = 8
  EXPECT_FALSE(conv(8, 12, 2, DType::kQInt4Block).ok());  // M/group = 6
  EXPECT_TRUE(conv(8, 12, 2, DType::kQInt8Channel).ok());
}

// --- The converter pass ---

// x [B, 64] -> Conv-free MLP: fc1 64 -> 32 (Relu), fc2 32 -> 24 (Relu), small 24 -> 4 (logits).
Graph Mlp(std::vector<std::vector<float>>* weights) {
  Graph g;
  TensorDesc x;
  x.name = "x";
  x.dims = {kBatchDim, 64};
  g.inputs.push_back(g.AddTensor(x));
  int prev = g.inputs[0];
  const int64_t sizes[] = {64, 32, 24, 4};
  const char* names[] = {"fc1", "fc2", "logits"};
  for (int i = 0; i < 3; ++i) {
    weights->push_back(testing::RandomFloats(static_cast<size_t>(sizes[i] * sizes[i + 1]), 10 + i));
    Node n;
    n.name = names[i];
    n.op = "Gemm";
    n.attrs.Set("transB", int64_t{1});
    if (i < 2) n.attrs.Set("activation", std::string("Relu"));
    n.inputs = {
        prev, g.AddConstant(std::string(names[i]) + ".w", DType::kFloat32, {sizes[i + 1], sizes[i]},
                            weights->back().data(), weights->back().size() * 4)};
    TensorDesc y;
    y.name = std::string(names[i]) + ".y";
    n.outputs.push_back(g.AddTensor(y));
    prev = n.outputs[0];
    g.nodes.push_back(n);
  }
  g.outputs.push_back(prev);
  EXPECT_TRUE(ValidateGraph(&g, false).ok());
  return g;
}

std::vector<std::string> Precisions(const std::vector<LayerPlan>& plan) {
  std::vector<std::string> out;
  for (const LayerPlan& l : plan) out.push_back(PrecisionName(l.precision));
  return out;
}

TEST(QuantOpQuantizeGraph, PlansPerLayerWithKeepSizeAndLogitsRules) {
  std::vector<std::vector<float>> w;
  const Graph g = Mlp(&w);
  std::vector<LayerPlan> plan;
  QuantizeOptions o;
  o.precision = Precision::kInt4;
  o.min_weights = 100;
  auto q = QuantizeGraph(g, o, &plan);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  // fc1, fc2 int4; the logits layer (96 weights) is small: fp32, not int8.
  EXPECT_EQ(Precisions(plan), (std::vector<std::string>{"int4", "int4", "fp32"}));
  EXPECT_NE(plan[2].note.find("small"), std::string::npos);
  EXPECT_EQ(plan[0].bytes_before, 64u * 32 * 4);
  EXPECT_EQ(plan[0].bytes_after, *quant::WeightBlobBytes(DType::kQInt4Block, {32, 64}));
  EXPECT_EQ(plan[0].weight_dtype, "qint4_block");
  EXPECT_EQ(q->nodes[0].attrs.GetString("precision"), "int4");
  EXPECT_EQ(q->nodes[2].attrs.GetString("precision"), "fp32");
  // The input graph is untouched.
  EXPECT_EQ(g.tensors[g.nodes[0].inputs[1]].dtype, DType::kFloat32);

  o.min_weights = 0;  // now the logits rule decides: int8
  ASSERT_TRUE(QuantizeGraph(g, o, &plan).ok());
  EXPECT_EQ(Precisions(plan), (std::vector<std::string>{"int4", "int4", "int8"}));
  EXPECT_EQ(plan[2].note, "logits layer");

  o.keep = {{"fc2", Precision::kFp16}, {"logits", Precision::kFp32}};
  ASSERT_TRUE(QuantizeGraph(g, o, &plan).ok());
  EXPECT_EQ(Precisions(plan), (std::vector<std::string>{"int4", "fp16", "fp32"}));

  o.keep = {{"nope", Precision::kFp16}};
  Status st = QuantizeGraph(g, o, &plan).status();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("nope"), std::string::npos);

  o.keep.clear();
  o.precision = Precision::kFp32;
  ASSERT_TRUE(QuantizeGraph(g, o, &plan).ok());
  EXPECT_EQ(Precisions(plan), (std::vector<std::string>{"fp32", "fp32", "fp32"}));
}

TEST(QuantOpQuantizeGraph, ConvPolicyAndDepthwise) {
  // A depthwise conv and a regular one.
  ConvSpec dw{8, 8, 8, {16}, {3}, {1}, {1}, {1, 1}};
  Layer l = testing::MakeConvLayer(dw, 5);
  std::vector<LayerPlan> plan;
  QuantizeOptions o;
  o.precision = Precision::kInt8;
  o.min_weights = 0;
  ASSERT_TRUE(QuantizeGraph(l.graph, o, &plan).ok());
  EXPECT_EQ(Precisions(plan), std::vector<std::string>{"fp32"});
  EXPECT_NE(plan[0].note.find("depthwise"), std::string::npos);
  o.keep = {{"conv", Precision::kFp16}};
  EXPECT_FALSE(QuantizeGraph(l.graph, o, &plan).ok());  // a depthwise conv cannot run fp16

  ConvSpec regular{8, 16, 1, {16}, {3}, {1}, {1}, {1, 1}};
  Layer r = testing::MakeConvLayer(regular, 6);
  o.keep.clear();
  ASSERT_TRUE(QuantizeGraph(r.graph, o, &plan).ok());
  // K = 8 * 3 = 24: too short for int8 to beat fp32 sgemm (QuantizeOptions::min_int8_conv_k).
  EXPECT_EQ(Precisions(plan), std::vector<std::string>{"fp32"});
  EXPECT_NE(plan[0].note.find("K = 24 < 64"), std::string::npos) << plan[0].note;
  ConvSpec longer{32, 16, 1, {16}, {3}, {1}, {1}, {1, 1}};  // K = 96: int8, stored OHWI
  auto q = QuantizeGraph(testing::MakeConvLayer(longer, 7).graph, o, &plan);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(Precisions(plan), std::vector<std::string>{"int8"});
  EXPECT_EQ(q->nodes[0].attrs.GetString("weight_layout"), "ohwi");
  EXPECT_EQ(q->tensors[q->nodes[0].inputs[1]].dims, (Dims{16, 3, 32}));
  o.precision = Precision::kInt4;
  ASSERT_TRUE(QuantizeGraph(r.graph, o, &plan).ok());
  EXPECT_EQ(Precisions(plan), std::vector<std::string>{"int8"});  // it is the logits layer
  o.logits_int4 = Precision::kInt4;
  ASSERT_TRUE(QuantizeGraph(r.graph, o, &plan).ok());
  EXPECT_EQ(Precisions(plan), std::vector<std::string>{"int4"});
}

TEST(QuantOpQuantizeGraph, TransposesBFoldsAlphaAndSplitsSharedWeights) {
  // "scaled" = 2 * x B and "plain" = x B read the same constant B [K, N] with transB = 0;
  // "scaled" is quantized (B transposed to [N, K], alpha folded in), "plain" kept fp32.
  Graph g;
  TensorDesc x;
  x.name = "x";
  x.dims = {kBatchDim, 40};
  g.inputs.push_back(g.AddTensor(x));
  const std::vector<float> b = testing::RandomFloats(40 * 24, 77);
  const int bt = g.AddConstant("B", DType::kFloat32, {40, 24}, b.data(), b.size() * 4);
  for (const char* name : {"scaled", "plain"}) {
    Node n;
    n.name = name;
    n.op = "Gemm";
    if (std::string(name) == "scaled") n.attrs.Set("alpha", 2.f);
    n.inputs = {g.inputs[0], bt};
    TensorDesc y;
    y.name = std::string(name) + ".y";
    n.outputs.push_back(g.AddTensor(y));
    g.outputs.push_back(n.outputs[0]);
    g.nodes.push_back(n);
  }
  ASSERT_TRUE(ValidateGraph(&g, false).ok());
  QuantizeOptions o;
  o.precision = Precision::kInt8;
  o.min_weights = 0;
  o.keep = {{"plain", Precision::kFp32}};
  std::vector<LayerPlan> plan;
  auto q = QuantizeGraph(g, o, &plan);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(Precisions(plan), (std::vector<std::string>{"int8", "fp32"}));
  const TensorDesc& wq = q->tensors[q->nodes[0].inputs[1]];
  EXPECT_EQ(wq.dtype, DType::kQInt8Channel);
  EXPECT_EQ(wq.dims, (Dims{24, 40}));
  EXPECT_EQ(q->tensors[q->nodes[1].inputs[1]].dtype, DType::kFloat32);  // still the float B
  EXPECT_EQ(q->nodes[0].attrs.GetFloat("alpha"), 1.f);
  EXPECT_EQ(q->nodes[0].attrs.GetInt("transB"), 1);

  const std::vector<float> in = testing::RandomFloats(3 * 40, 78);
  auto model = Model::FromGraph(std::move(q).value());
  ASSERT_TRUE(model.ok());
  auto s = Session::Create(*model, SessionOptions{.max_batch = 3});
  ASSERT_TRUE(s.ok());
  const float* p = in.data();
  ASSERT_TRUE((*s)->Run({&p, 1}, 3).ok());
  // 2 * x B within int8's error (a loose bound here: the bound test is above).
  for (int m = 0; m < 3; ++m) {
    for (int n = 0; n < 24; ++n) {
      double ref = 0, mag = 0;
      for (int k = 0; k < 40; ++k) {
        ref += 2.0 * in[m * 40 + k] * b[k * 24 + n];
        mag += std::fabs(2.0 * in[m * 40 + k] * b[k * 24 + n]);
      }
      EXPECT_NEAR((*s)->output(0).f32()[m * 24 + n], ref, 0.02 * mag) << m << "," << n;
      EXPECT_NEAR((*s)->output(1).f32()[m * 24 + n], ref / 2, 1e-4 * mag + 1e-5);
    }
  }
}

// --- Profiler ---

TEST(QuantOpProfiler, QuantizeTimeIsItsOwnEntry) {
  Layer l = GemmLayer({kBatchDim, 256}, 64, true, 9);
  const std::vector<float> x = testing::RandomFloats(4 * 256, 10);
  Profiler profiler;
  testing::RunSession(Quantized(l.graph, Precision::kInt8), x, 4, &profiler);
  EXPECT_EQ(profiler.size(), 2u);  // the Gemm and its quantize span
  const std::string table = profiler.SummaryTable();
  EXPECT_NE(table.find("quantize"), std::string::npos) << table;
  EXPECT_NE(table.find("Gemm"), std::string::npos) << table;
  // fp16 weights quantize nothing: no span.
  Profiler fp16;
  testing::RunSession(Quantized(l.graph, Precision::kFp16), x, 4, &fp16);
  EXPECT_EQ(fp16.size(), 1u);
}

// --- The .eim file ---

TEST(QuantOpEim, RoundTripIsZeroCopyAndRunsTheSame) {
  std::vector<std::vector<float>> w;
  const Graph g = Mlp(&w);
  QuantizeOptions o;
  o.precision = Precision::kInt4;
  o.min_weights = 0;
  o.keep = {{"fc2", Precision::kFp16}};
  std::vector<LayerPlan> plan;
  auto q = QuantizeGraph(g, o, &plan);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(Precisions(plan), (std::vector<std::string>{"int4", "fp16", "int8"}));
  const std::string path =
      ::testing::TempDir() + "/quant_roundtrip." + std::to_string(getpid()) + ".eim";
  ASSERT_TRUE(WriteEim(*q, path).ok());
  auto loaded = Model::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Graph& lg = (*loaded)->graph();
  const auto* map = static_cast<const char*>(lg.owned.back().get());
  for (size_t i = 0; i < lg.tensors.size(); ++i) {
    const TensorDesc& t = lg.tensors[i];
    if (!t.is_constant()) continue;
    EXPECT_EQ(t.dtype, q->tensors[i].dtype) << t.name;
    EXPECT_EQ(t.bytes, q->tensors[i].bytes) << t.name;
    // Zero copy: the weight is read where it lies in the mapping, 64-byte aligned.
    const auto* data = static_cast<const char*>(t.data);
    EXPECT_TRUE(data >= map && data + t.bytes <= map + (*loaded)->file_bytes()) << t.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % 64, 0u) << t.name;
    EXPECT_EQ(std::memcmp(t.data, q->tensors[i].data, t.bytes), 0) << t.name;
  }
  EXPECT_EQ(lg.nodes[1].attrs.GetString("precision"), "fp16");

  const std::vector<float> x = testing::RandomFloats(5 * 64, 3);
  const std::vector<float> want = testing::RunSession(*q, x, 5);
  auto s = Session::Create(*loaded, SessionOptions{.max_batch = 5});
  ASSERT_TRUE(s.ok());
  const float* in = x.data();
  ASSERT_TRUE((*s)->Run({&in, 1}, 5).ok());
  EXPECT_EQ(std::vector<float>((*s)->output(0).f32(), (*s)->output(0).f32() + want.size()), want);
  std::remove(path.c_str());
}

TEST(QuantOpEim, WriterRefusesABlobOfTheWrongSize) {
  std::vector<std::vector<float>> w;
  Graph g = Mlp(&w);
  std::vector<uint8_t> blob(*ConstantBytes(DType::kQInt8Channel, {32, 64}) - 8, 0);
  TensorDesc& t = g.tensors[g.nodes[0].inputs[1]];
  t.dtype = DType::kQInt8Channel;
  t.data = blob.data();
  t.bytes = blob.size();
  const std::string path = ::testing::TempDir() + "/quant_bad." + std::to_string(getpid()) + ".eim";
  Status st = WriteEim(g, path);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("fc1.w"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace edgeinfer
