// Static INT8: the calibration statistics on known distributions, the static kernels (SIMD
// against the scalar reference at every level this machine runs, odd shapes, saturation, NaN),
// int8 im2row and max pooling against direct formulas, and whole int8-static graphs (QConv,
// QMaxPool, QGemm with int8 tensors between them) against their fp32 graphs, through the .eim
// file, with calibration errors for bad data.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "inference/calibration.h"
#include "inference/eim_writer.h"
#include "inference/model.h"
#include "inference/quant/calibrate.h"
#include "inference/quant/quant_types.h"
#include "inference/quant/requant.h"
#include "inference/quantize_graph.h"
#include "inference/session.h"

namespace edgeinfer {
namespace {

using quant::CpuLevel;

std::vector<float> Uniform(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<float> Normal(size_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// --- Calibration statistics ---

TEST(Calibrate, AbsMaxSkipsAndCountsNonFinite) {
  quant::AbsMax m;
  const float x[] = {0.5f, -3.f, std::nanf(""), INFINITY, 2.f};
  m.Add(x, 5);
  EXPECT_EQ(m.max(), 3.f);
  EXPECT_EQ(m.non_finite(), 2);
}

TEST(Calibrate, PercentileOfUniform) {
  const std::vector<float> x = Uniform(200000, 1, -1.f, 1.f);  // |x| uniform on [0, 1)
  quant::AbsMax m;
  m.Add(x.data(), static_cast<int64_t>(x.size()));
  quant::AbsHistogram h(m.max());
  h.Add(x.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(h.total(), x.size());
  // One bin is max / 2048 wide: the threshold is exact to a bin and the sampling noise.
  EXPECT_NEAR(quant::PercentileThreshold(h, 50.0), 0.5f, 0.005f);
  EXPECT_NEAR(quant::PercentileThreshold(h, 99.0), 0.99f, 0.002f);
  EXPECT_NEAR(quant::PercentileThreshold(h, 100.0), m.max(), 1e-6f);
}

TEST(Calibrate, PercentileOfNormal) {
  const std::vector<float> x = Normal(400000, 2, 1.f);
  quant::AbsMax m;
  m.Add(x.data(), static_cast<int64_t>(x.size()));
  quant::AbsHistogram h(m.max());
  h.Add(x.data(), static_cast<int64_t>(x.size()));
  // P(|x| < 1.96) = 95%, P(|x| < 2.576) = 99%.
  EXPECT_NEAR(quant::PercentileThreshold(h, 95.0), 1.96f, 0.02f);
  EXPECT_NEAR(quant::PercentileThreshold(h, 99.0), 2.576f, 0.03f);
}

// A Gaussian with a few far outliers: min-max follows the outlier, entropy stays near the bulk
// (TensorRT's calibrator clips a normal distribution at a few sigma).
TEST(Calibrate, EntropyClipsOutliersMinMaxDoesNot) {
  std::vector<float> x = Normal(200000, 3, 1.f);
  for (int i = 0; i < 5; ++i) x[i * 1000] = 40.f;
  quant::AbsMax m;
  m.Add(x.data(), static_cast<int64_t>(x.size()));
  quant::AbsHistogram h(m.max());
  h.Add(x.data(), static_cast<int64_t>(x.size()));
  const float entropy = quant::Threshold(quant::CalibrationMethod::kEntropy, m.max(), &h, 99.99);
  const float minmax = quant::Threshold(quant::CalibrationMethod::kMinMax, m.max(), &h, 99.99);
  EXPECT_EQ(minmax, 40.f);
  EXPECT_GT(entropy, 2.5f);
  EXPECT_LT(entropy, 8.f);
}

// Uniform data has nothing to clip: the entropy threshold stays near the max.
TEST(Calibrate, EntropyOfUniformKeepsTheRange) {
  const std::vector<float> x = Uniform(200000, 4, -2.f, 2.f);
  quant::AbsMax m;
  m.Add(x.data(), static_cast<int64_t>(x.size()));
  quant::AbsHistogram h(m.max());
  h.Add(x.data(), static_cast<int64_t>(x.size()));
  EXPECT_GT(quant::EntropyThreshold(h), 1.8f);
}

TEST(Calibrate, EmptyHistogramGivesZero) {
  quant::AbsHistogram h(0.f);
  EXPECT_EQ(quant::PercentileThreshold(h, 99.0), 0.f);
  EXPECT_EQ(quant::EntropyThreshold(h), 0.f);
  quant::CalibrationMethod m;
  EXPECT_TRUE(quant::ParseCalibrationMethod("entropy", &m));
  EXPECT_EQ(m, quant::CalibrationMethod::kEntropy);
  EXPECT_FALSE(quant::ParseCalibrationMethod("kl", &m));
}

// --- Kernels ---

std::vector<CpuLevel> Levels() {
  std::vector<CpuLevel> out;
  for (int i = 0; i < quant::kNumCpuLevels; ++i) {
    const auto l = static_cast<CpuLevel>(i);
    if (quant::CpuSupports(l)) out.push_back(l);
  }
  return out;
}

TEST(StaticKernels, QuantizeClampMatchesScalarAtEveryLevel) {
  for (int64_t n : {0, 1, 7, 31, 32, 33, 100, 1027}) {
    std::vector<float> x = Uniform(static_cast<size_t>(n), 10 + n, -3.f, 3.f);
    if (n > 5) {
      x[1] = 1e30f;  // saturates high
      x[2] = -1e30f;
      x[3] = std::nanf("");  // -> lo
      x[4] = 0.5f;           // a tie: round half to even
      x[5] = -INFINITY;
    }
    for (const float lo : {-127.f, 0.f}) {
      std::vector<int8_t> want(static_cast<size_t>(n));
      quant::scalar::QuantizeClamp(x.data(), n, 1.f, lo, 127.f, want.data());
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_GE(want[i], lo);
        ASSERT_LE(want[i], 127);
      }
      if (n > 5) {
        EXPECT_EQ(want[1], 127);
        EXPECT_EQ(want[2], lo);
        EXPECT_EQ(want[3], lo);
        EXPECT_EQ(want[4], 0);
        EXPECT_EQ(want[5], lo);
      }
      for (CpuLevel level : Levels()) {
        const quant::StaticKernels k = quant::SelectStatic(level);
        std::vector<int8_t> got(static_cast<size_t>(n), 99);
        k.quantize_clamp(x.data(), n, 1.f, lo, 127.f, got.data());
        EXPECT_EQ(got, want) << "n " << n << " at " << quant::CpuLevelName(level);
      }
    }
  }
}

TEST(StaticKernels, RequantTransposeMatchesScalarAtEveryLevel) {
  struct Case {
    int64_t rows, cols, ld_src, ld_dst;
  };
  for (const Case& c : {Case{1, 1, 1, 1}, Case{8, 8, 8, 8}, Case{13, 19, 21, 15},
                        Case{64, 70, 70, 64}, Case{3, 40, 40, 5}}) {
    const std::vector<float> src =
        Uniform(static_cast<size_t>(c.rows * c.ld_src), 7, -200.f, 200.f);
    std::vector<int8_t> want(static_cast<size_t>(c.cols * c.ld_dst), 0);
    quant::scalar::RequantTranspose(src.data(), c.rows, c.cols, c.ld_src, 0.9f, -20.f, 127.f,
                                    want.data(), c.ld_dst);
    EXPECT_EQ(want[0], quant::ClampCode(src[0], 0.9f, -20.f, 127.f));
    for (CpuLevel level : Levels()) {
      std::vector<int8_t> got(want.size(), 0);
      quant::SelectStatic(level).requant_transpose(src.data(), c.rows, c.cols, c.ld_src, 0.9f,
                                                   -20.f, 127.f, got.data(), c.ld_dst);
      EXPECT_EQ(got, want) << c.rows << "x" << c.cols << " at " << quant::CpuLevelName(level);
    }
  }
}

// The 8 x 8 tiles of the AVX2 version on NaN, infinities and values far out of range: the same
// codes as the scalar clamp (NaN -> lo), whole tiles and the edges around them.
TEST(StaticKernels, RequantTransposeKeepsTheClampOnNonFiniteValues) {
  const int64_t rows = 17, cols = 11, ld_src = 12, ld_dst = 19;
  std::vector<float> src = Uniform(static_cast<size_t>(rows * ld_src), 8, -500.f, 500.f);
  for (size_t i = 0; i < src.size(); i += 7) src[i] = std::nanf("");
  for (size_t i = 3; i < src.size(); i += 11) src[i] = i % 2 ? INFINITY : -INFINITY;
  std::vector<int8_t> want(static_cast<size_t>(cols * ld_dst), 5);
  quant::scalar::RequantTranspose(src.data(), rows, cols, ld_src, 0.5f, -3.f, 100.f, want.data(),
                                  ld_dst);
  EXPECT_EQ(want[0], -3);  // src[0] is NaN
  for (CpuLevel level : Levels()) {
    std::vector<int8_t> got(want.size(), 5);
    quant::SelectStatic(level).requant_transpose(src.data(), rows, cols, ld_src, 0.5f, -3.f, 100.f,
                                                 got.data(), ld_dst);
    EXPECT_EQ(got, want) << quant::CpuLevelName(level);
  }
}

// The float transposition (the dynamic quantized Conv's output into its planes) at every level
// against the formula, bit for bit (NaN payloads included), leaving the gaps between dst rows.
TEST(StaticKernels, TransposeMatchesTheFormulaAtEveryLevel) {
  struct Case {
    int64_t rows, cols, ld_src, ld_dst;
  };
  for (const Case& c : {Case{1, 1, 1, 1}, Case{8, 8, 8, 8}, Case{13, 19, 21, 15},
                        Case{64, 64, 64, 64}, Case{3, 40, 40, 5}, Case{32, 17, 20, 35}}) {
    std::vector<float> src = Uniform(static_cast<size_t>(c.rows * c.ld_src), 9, -2.f, 2.f);
    src[0] = std::nanf("");
    for (CpuLevel level : Levels()) {
      std::vector<float> got(static_cast<size_t>(c.cols * c.ld_dst), 7.f);
      quant::SelectStatic(level).transpose(src.data(), c.rows, c.cols, c.ld_src, got.data(),
                                           c.ld_dst);
      int bad = 0;
      for (int64_t j = 0; j < c.cols; ++j) {
        for (int64_t i = 0; i < c.ld_dst; ++i) {
          const float want = i < c.rows ? src[i * c.ld_src + j] : 7.f;
          const float v = got[j * c.ld_dst + i];
          if (std::memcmp(&v, &want, sizeof v) != 0) ++bad;
        }
      }
      EXPECT_EQ(bad, 0) << c.rows << "x" << c.cols << " at " << quant::CpuLevelName(level);
    }
  }
}

PlaneGeom Geom(int64_t in_h, int64_t in_w, WindowAxis h, WindowAxis w, bool ceil = false) {
  PlaneGeom g;
  g.in_h = in_h;
  g.in_w = in_w;
  g.h = h;
  g.w = w;
  auto out = [ceil](int64_t in, const WindowAxis& a) {
    const int64_t span = in + a.pad_begin + a.pad_end - a.span();
    return (ceil ? (span + a.stride - 1) / a.stride : span / a.stride) + 1;
  };
  g.out_h = out(in_h, h);
  g.out_w = out(in_w, w);
  return g;
}

TEST(StaticKernels, Im2RowHwcMatchesTheFormula) {
  struct Case {
    int64_t c, stride, in_h, in_w;
    WindowAxis h, w;
  };
  const Case cases[] = {
      {5, 5, 1, 17, {}, {3, 1, 1, 1, 1}},              // 1-D, padded, contiguous runs
      {4, 12, 1, 9, {}, {2, 2, 2, 0, 3}},              // a group of 4 of 12 channels, dilated
      {3, 3, 6, 7, {3, 2, 1, 1, 0}, {2, 1, 1, 0, 1}},  // 2-D, asymmetric pads
      {33, 33, 1, 4, {}, {1, 1, 1, 0, 0}},             // pointwise, K = 33 pads to 64
  };
  for (const Case& t : cases) {
    const PlaneGeom g = Geom(t.in_h, t.in_w, t.h, t.w);
    const int64_t k = g.h.kernel * g.w.kernel * t.c, kp = quant::Int8PaddedK(k);
    std::vector<int8_t> x(static_cast<size_t>(t.in_h * t.in_w * t.stride));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int8_t>(i * 37 % 255 - 127);
    std::vector<int8_t> rows(static_cast<size_t>(g.out_h * g.out_w * kp), 99);
    quant::Im2RowHwc(x.data(), t.stride, t.c, g, kp, rows.data());
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow)
        for (int64_t col = 0; col < kp; ++col) {
          int want = 0;
          if (col < k) {
            const int64_t i = col / (g.w.kernel * t.c), j = col / t.c % g.w.kernel, ci = col % t.c;
            const int64_t ih = oh * g.h.stride + i * g.h.dilation - g.h.pad_begin;
            const int64_t iw = ow * g.w.stride + j * g.w.dilation - g.w.pad_begin;
            if (ih >= 0 && ih < t.in_h && iw >= 0 && iw < t.in_w)
              want = x[(ih * t.in_w + iw) * t.stride + ci];
          }
          ASSERT_EQ(rows[(oh * g.out_w + ow) * kp + col], want)
              << "c " << t.c << " at " << oh << "," << ow << " col " << col;
        }
  }
}

TEST(StaticKernels, MaxPoolS8MatchesTheFormula) {
  struct Case {
    int64_t in_h, in_w;
    WindowAxis h, w;
    bool ceil;
  };
  const Case cases[] = {
      {1, 132, {}, {2, 2, 1, 0, 0}, false},
      {1, 35, {}, {3, 2, 1, 1, 1}, true},
      {5, 7, {2, 1, 1, 0, 1}, {3, 3, 1, 1, 0}, true},
      {4, 9, {2, 2, 1, 0, 0}, {2, 1, 2, 0, 0}, false},
  };
  for (const Case& t : cases) {
    const PlaneGeom g = Geom(t.in_h, t.in_w, t.h, t.w, t.ceil);
    const int64_t planes = 3;
    std::vector<int8_t> x(static_cast<size_t>(planes * t.in_h * t.in_w));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int8_t>(i * 53 % 255 - 127);
    std::vector<int8_t> y(static_cast<size_t>(planes * g.out_h * g.out_w), 99);
    quant::MaxPoolS8(x.data(), planes, g, y.data());
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t oh = 0; oh < g.out_h; ++oh)
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          int want = -128;
          for (int64_t i = 0; i < g.h.kernel; ++i)
            for (int64_t j = 0; j < g.w.kernel; ++j) {
              const int64_t ih = oh * g.h.stride + i * g.h.dilation - g.h.pad_begin;
              const int64_t iw = ow * g.w.stride + j * g.w.dilation - g.w.pad_begin;
              if (ih >= 0 && ih < t.in_h && iw >= 0 && iw < t.in_w)
                want = std::max<int>(want, x[(p * t.in_h + ih) * t.in_w + iw]);
            }
          ASSERT_EQ(y[(p * g.out_h + oh) * g.out_w + ow], want) << p << "," << oh << "," << ow;
        }
  }
}

// --- Graphs ---

// Builds small float graphs with random weights.
class Builder {
 public:
  int Input(Dims d) {
    TensorDesc t;
    t.name = "x";
    t.dims = std::move(d);
    g_.inputs.push_back(g_.AddTensor(t));
    return g_.inputs.back();
  }
  int Conv(const std::string& name, int x, int64_t c, int64_t m, Dims kernel, Dims strides,
           Dims dilations, Dims pads, int64_t group) {
    Dims wd = {m, c / group};
    wd.insert(wd.end(), kernel.begin(), kernel.end());
    Attrs a;
    a.Set("group", group);
    a.Set("strides", strides);
    a.Set("dilations", dilations);
    a.Set("pads", pads);
    a.Set("activation", std::string("Relu"));
    return Layer(name, "Conv", x, wd, m, a);
  }
  int Gemm(const std::string& name, int x, int64_t k, int64_t n, bool relu) {
    Attrs a;
    a.Set("transB", int64_t{1});
    if (relu) a.Set("activation", std::string("Relu"));
    return Layer(name, "Gemm", x, {n, k}, n, a);
  }
  int Node1(const std::string& name, const std::string& op, int x, Attrs a) {
    Node n;
    n.name = name;
    n.op = op;
    n.attrs = std::move(a);
    n.inputs = {x};
    n.outputs = {Tensor(name + ":y")};
    g_.nodes.push_back(n);
    return n.outputs[0];
  }
  Graph Finish(int y) {
    g_.outputs = {y};
    return g_;
  }

 private:
  int Tensor(const std::string& name) {
    TensorDesc t;
    t.name = name;
    return g_.AddTensor(t);
  }
  int Layer(const std::string& name, const std::string& op, int x, const Dims& wd, int64_t m,
            const Attrs& a) {
    int64_t count = 1;
    for (int64_t d : wd) count *= d;
    const float bound = 1.5f / std::sqrt(static_cast<float>(count / m));
    const std::vector<float> w = Uniform(static_cast<size_t>(count), ++seed_, -bound, bound);
    const std::vector<float> b = Uniform(static_cast<size_t>(m), ++seed_, -0.1f, 0.1f);
    Node n;
    n.name = name;
    n.op = op;
    n.attrs = a;
    n.inputs = {x, g_.AddConstant(name + ".w", DType::kFloat32, wd, w.data(), w.size() * 4),
                g_.AddConstant(name + ".b", DType::kFloat32, {m}, b.data(), b.size() * 4)};
    n.outputs = {Tensor(name + ":y")};
    g_.nodes.push_back(n);
    return n.outputs[0];
  }

  Graph g_;
  uint32_t seed_ = 100;
};

Attrs PoolAttrs(Dims kernel, Dims strides) {
  Attrs a;
  a.Set("kernel_shape", kernel);
  a.Set("strides", strides);
  return a;
}

// 1-D: conv -> maxpool -> grouped conv -> strided dilated conv -> reshape -> fc -> fc, all int8
// from c1's output to fc2's input.
Graph Net1d() {
  Builder b;
  int t = b.Input({kBatchDim, 16, 24});
  t = b.Conv("c1", t, 16, 16, {5}, {1}, {1}, {2, 2}, 1);
  t = b.Node1("p1", "MaxPool", t, PoolAttrs({2}, {2}));
  t = b.Conv("c2", t, 16, 32, {3}, {1}, {1}, {1, 1}, 2);
  t = b.Conv("c3", t, 32, 32, {3}, {2}, {2}, {2, 2}, 1);  // 12 -> 6
  Attrs r;
  r.Set("shape", Dims{kBatchDim, 32 * 6});
  t = b.Node1("flat", "Reshape", t, r);
  t = b.Gemm("fc1", t, 32 * 6, 48, true);
  t = b.Gemm("fc2", t, 48, 10, false);
  return b.Finish(t);
}

// 2-D: strided padded conv -> overlapping maxpool -> 2x2 conv (float output).
Graph Net2d() {
  Builder b;
  int t = b.Input({kBatchDim, 8, 9, 7});
  t = b.Conv("c1", t, 8, 16, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1);  // 5 x 4
  t = b.Node1("p1", "MaxPool", t, PoolAttrs({2, 2}, {1, 1}));           // 4 x 3
  t = b.Conv("c2", t, 16, 24, {2, 2}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1);
  return b.Finish(t);
}

int64_t SampleElements(const Graph& g) {
  return Resolve(g.tensors[g.inputs[0]].dims, 1).NumElements();
}

Result<Graph> StaticGraph(Graph g, quant::CalibrationMethod method, std::vector<LayerPlan>* plan) {
  EI_ASSIGN_OR_RETURN(auto model, Model::FromGraph(g));  // fills the inferred dims
  const Graph& fg = model->graph();
  const std::vector<float> calib =
      Uniform(static_cast<size_t>(64 * SampleElements(fg)), 999, -1.f, 1.f);
  CalibrationOptions co;
  co.method = method;
  EI_ASSIGN_OR_RETURN(auto t, Calibrate(fg, calib, CalibrationTensors(fg), co));
  QuantizeOptions o;
  o.precision = Precision::kInt8Static;
  o.min_weights = 0;
  o.min_static_conv_k = 0;
  o.thresholds = &t;
  return QuantizeGraph(fg, o, plan);
}

std::vector<float> RunModel(const std::shared_ptr<const Model>& model, const std::vector<float>& x,
                            int batch) {
  auto s = Session::Create(model, SessionOptions{.max_batch = batch});
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return {};
  const float* in = x.data();
  EXPECT_TRUE((*s)->Run({&in, 1}, batch).ok());
  const TensorView y = (*s)->output(0);
  return std::vector<float>(y.f32(), y.f32() + y.shape.NumElements());
}

std::vector<std::string> Ops(const Graph& g) {
  std::vector<std::string> ops;
  for (const Node& n : g.nodes) ops.push_back(n.op);
  return ops;
}

// Max |static - fp32| over the outputs, relative to max |fp32|.
double RelativeError(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, range = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(got[i]) - want[i]));
    range = std::max(range, std::fabs(static_cast<double>(want[i])));
  }
  return err / range;
}

// RMS of (static - fp32) relative to the RMS of fp32.
double RelativeRms(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    ref += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(err / ref);
}

struct NetCase {
  const char* name;
  Graph (*make)();
  std::vector<std::string> ops;
  int int8_tensors;
};

class StaticGraphTest : public ::testing::TestWithParam<quant::CalibrationMethod> {};

// Each layer adds at most half a step of its input's and output's scales per value (plus the
// weights' half steps); over 3-5 layers with ReLU that stays well under 6% of the output range
// (measured: about 1-2% for all three methods; percentile and entropy clip only a sparse tail
// here). The RMS error, under 5% of the output's RMS, checks the bulk as well. The test inputs
// are drawn like the calibration data but from another seed.
TEST_P(StaticGraphTest, MatchesFp32WithinBound) {
  const NetCase cases[] = {
      {"1d", Net1d, {"QConv", "QMaxPool", "QConv", "QConv", "QReshape", "QGemm", "QGemm"}, 6},
      {"2d", Net2d, {"QConv", "QMaxPool", "QConv"}, 2},
  };
  for (const NetCase& c : cases) {
    const Graph g = c.make();
    std::vector<LayerPlan> plan;
    auto q = StaticGraph(g, GetParam(), &plan);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    EXPECT_EQ(Ops(*q), c.ops) << c.name;
    int int8_tensors = 0;
    for (const TensorDesc& t : q->tensors) int8_tensors += t.dtype == DType::kInt8;
    EXPECT_EQ(int8_tensors, c.int8_tensors) << c.name;
    for (const LayerPlan& l : plan) EXPECT_EQ(l.precision, Precision::kInt8Static) << l.node;

    auto fp32 = Model::FromGraph(g);
    auto st = Model::FromGraph(*q);
    ASSERT_TRUE(fp32.ok() && st.ok());
    const int batch = 5;
    const std::vector<float> x =
        Uniform(static_cast<size_t>(batch * SampleElements((*fp32)->graph())), 5, -1.f, 1.f);
    const std::vector<float> want = RunModel(*fp32, x, batch);
    const std::vector<float> got = RunModel(*st, x, batch);
    ASSERT_EQ(got.size(), want.size());
    const double rel = RelativeError(got, want), rms = RelativeRms(got, want);
    std::printf("[ %s %s ] max error %.4f of the output range, RMS error %.4f of the RMS\n", c.name,
                quant::CalibrationMethodName(GetParam()), rel, rms);
    EXPECT_LT(rel, 0.06) << c.name;
    EXPECT_LT(rms, 0.05) << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, StaticGraphTest,
                         ::testing::Values(quant::CalibrationMethod::kMinMax,
                                           quant::CalibrationMethod::kPercentile,
                                           quant::CalibrationMethod::kEntropy),
                         [](const auto& info) {
                           return std::string(quant::CalibrationMethodName(info.param));
                         });

// The same bits at every CPU level (the GEMM and the static kernels are exact across levels).
TEST(StaticGraph, SameOutputsAtEveryCpuLevel) {
  std::vector<LayerPlan> plan;
  auto q = StaticGraph(Net1d(), quant::CalibrationMethod::kPercentile, &plan);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  auto model = Model::FromGraph(*q);
  ASSERT_TRUE(model.ok());
  const std::vector<float> x = Uniform(static_cast<size_t>(3 * 16 * 24), 6, -1.5f, 1.5f);
  const char* old = std::getenv(quant::kCpuLevelEnv);
  const std::string saved = old ? old : "";
  std::vector<float> first;
  for (CpuLevel level : Levels()) {
    setenv(quant::kCpuLevelEnv, quant::CpuLevelName(level), 1);
    const std::vector<float> y = RunModel(*model, x, 3);
    if (first.empty()) first = y;
    EXPECT_EQ(y, first) << quant::CpuLevelName(level);
  }
  if (old) {
    setenv(quant::kCpuLevelEnv, saved.c_str(), 1);
  } else {
    unsetenv(quant::kCpuLevelEnv);
  }
}

// Each sample's outputs are the same bits whatever batch it runs in: a session planned for 17
// samples runs batches of 1, 3, 16 and 17 against every sample run alone, at every level.
TEST(StaticGraph, BatchesMatchEachSampleRunAlone) {
  constexpr int kMaxBatch = 17;
  for (Graph (*make)() : {Net1d, Net2d}) {
    std::vector<LayerPlan> plan;
    auto q = StaticGraph(make(), quant::CalibrationMethod::kMinMax, &plan);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    auto model = Model::FromGraph(*q);
    ASSERT_TRUE(model.ok());
    const int64_t in_sample = SampleElements((*model)->graph());
    const std::vector<float> x =
        Uniform(static_cast<size_t>(kMaxBatch * in_sample), 10, -1.5f, 1.5f);
    const char* old = std::getenv(quant::kCpuLevelEnv);
    const std::string saved = old ? old : "";
    for (CpuLevel level : Levels()) {
      setenv(quant::kCpuLevelEnv, quant::CpuLevelName(level), 1);
      std::vector<float> alone;
      for (int n = 0; n < kMaxBatch; ++n) {
        const std::vector<float> x1(x.begin() + n * in_sample, x.begin() + (n + 1) * in_sample);
        const std::vector<float> y = RunModel(*model, x1, 1);
        alone.insert(alone.end(), y.begin(), y.end());
      }
      auto s = Session::Create(*model, SessionOptions{.max_batch = kMaxBatch});
      ASSERT_TRUE(s.ok());
      const size_t out_sample = alone.size() / kMaxBatch;
      for (int batch : {1, 3, 16, 17}) {
        const int first = kMaxBatch - batch;
        const float* in = x.data() + first * in_sample;
        ASSERT_TRUE((*s)->Run({&in, 1}, batch).ok());
        const TensorView y = (*s)->output(0);
        EXPECT_EQ(std::vector<float>(y.f32(), y.f32() + y.shape.NumElements()),
                  std::vector<float>(alone.begin() + first * out_sample, alone.end()))
            << quant::CpuLevelName(level) << ", batch " << batch;
      }
    }
    if (old) {
      setenv(quant::kCpuLevelEnv, saved.c_str(), 1);
    } else {
      unsetenv(quant::kCpuLevelEnv);
    }
  }
}

TEST(StaticGraph, EimRoundTripKeepsScales) {
  std::vector<LayerPlan> plan;
  auto q = StaticGraph(Net1d(), quant::CalibrationMethod::kPercentile, &plan);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  const std::string path =
      ::testing::TempDir() + "/static_int8." + std::to_string(getpid()) + ".eim";
  ASSERT_TRUE(WriteEim(*q, path).ok());
  auto loaded = Model::Load(path);
  std::remove(path.c_str());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Graph& g = (*loaded)->graph();
  ASSERT_EQ(g.nodes.size(), q->nodes.size());
  int scales = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (const char* a : {"x_scale", "y_scale"}) {
      if (!q->nodes[i].attrs.Has(a)) continue;
      EXPECT_EQ(g.nodes[i].attrs.GetFloat(a), q->nodes[i].attrs.GetFloat(a)) << a;
      ++scales;
    }
  }
  EXPECT_EQ(scales, 5 + 4);  // every layer's x_scale; y_scale on c1, c2, c3 and fc1
  auto mem = Model::FromGraph(*q);
  ASSERT_TRUE(mem.ok());
  const std::vector<float> x = Uniform(static_cast<size_t>(2 * 16 * 24), 8, -1.f, 1.f);
  EXPECT_EQ(RunModel(*loaded, x, 2), RunModel(*mem, x, 2));
}

// --- Bad calibration data and bad static nodes ---

TEST(StaticGraph, BadCalibrationDataIsAClearError) {
  auto model = Model::FromGraph(Net1d());
  ASSERT_TRUE(model.ok());
  const Graph& g = (*model)->graph();
  const std::vector<std::string> names = CalibrationTensors(g);
  const CalibrationOptions co;
  auto empty = Calibrate(g, {}, names, co);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty"), std::string::npos);

  std::vector<float> x = Uniform(static_cast<size_t>(2 * 16 * 24 + 3), 1, -1.f, 1.f);
  auto ragged = Calibrate(g, x, names, co);
  ASSERT_FALSE(ragged.ok());
  EXPECT_NE(ragged.status().message().find("whole number of samples"), std::string::npos)
      << ragged.status().ToString();

  x.resize(2 * 16 * 24);
  x[16 * 24 + 7] = std::nanf("");
  auto nan = Calibrate(g, x, names, co);
  ASSERT_FALSE(nan.ok());
  EXPECT_NE(nan.status().message().find("sample 1 holds NaN at element 7"), std::string::npos)
      << nan.status().ToString();

  x[16 * 24 + 7] = 0.f;
  auto unknown = Calibrate(g, x, {"nope"}, co);
  EXPECT_FALSE(unknown.ok());

  // An int8-static plan without ranges is refused, not run with made-up scales.
  QuantizeOptions o;
  o.precision = Precision::kInt8Static;
  std::vector<LayerPlan> plan;
  auto q = QuantizeGraph(g, o, &plan);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("calibrat"), std::string::npos);
}

TEST(StaticGraph, BadScaleAttributesAreRejected) {
  std::vector<LayerPlan> plan;
  auto q = StaticGraph(Net1d(), quant::CalibrationMethod::kMinMax, &plan);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  for (const float bad : {0.f, -1.f, std::nanf(""), INFINITY}) {
    Graph g = *q;
    g.nodes[0].attrs.Set("x_scale", bad);
    auto m = Model::FromGraph(g);
    ASSERT_FALSE(m.ok()) << bad;
    EXPECT_NE(m.status().message().find("x_scale"), std::string::npos) << m.status().ToString();
  }
  Graph g = *q;
  g.nodes[0].attrs.Erase("x_scale");
  EXPECT_FALSE(Model::FromGraph(g).ok());

  // An int8 tensor as a graph output would hand callers codes where they read floats.
  g = *q;
  g.outputs = {g.nodes[0].outputs[0]};
  auto m = Model::FromGraph(g);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("graph outputs must be float32"), std::string::npos)
      << m.status().ToString();
}

}  // namespace
}  // namespace edgeinfer
