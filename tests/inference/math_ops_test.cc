// Tests of the math ops (reductions, unary math and activations, Pow, PRelu, LayerNormalization,
// Pad): each kernel against a straightforward reference on odd shapes, special values (NaN,
// +-inf, -0), and the infer errors that keep the batch symbolic. ONNX's own node tests run the
// same ops through the importer (tests/onnx/conformance_test.cc).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "inference/op.h"
#include "inference/ops/activation.h"
#include "inference/ops/fast_erf.h"
#include "tests/inference/op_test_util.h"

namespace edgeinfer {
namespace {

using testing::ExpectNear;
using testing::Numel;
using testing::RandomFloats;
using testing::RunOp;
using testing::RunSingleOp;
using testing::TestTensor;
using Ints = std::vector<int64_t>;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

Attrs MakeAttrs(std::initializer_list<std::pair<std::string, AttrValue>> kv) {
  Attrs a;
  for (const auto& [k, v] : kv) a.Set(k, v);
  return a;
}

// Infer only, on inputs of these (possibly symbolic) dims.
Status Infer(const std::string& op, const Attrs& attrs, const std::vector<Dims>& in_dims,
             Dims* out_dims = nullptr, int num_outputs = 1) {
  std::vector<TestTensor> in;
  for (const Dims& d : in_dims) in.push_back({d, {0.f}});
  Graph g = testing::MakeSingleOpGraph(op, attrs, in, num_outputs);
  std::vector<TensorDesc> outs(g.nodes[0].outputs.size());
  Status s = FindOp(op)->infer(g.nodes[0], g, &outs);
  if (s.ok() && out_dims) *out_dims = outs[0].dims;
  return s;
}

void ExpectRejected(const std::string& op, const Attrs& attrs, const std::vector<Dims>& in,
                    const std::string& part) {
  Status s = Infer(op, attrs, in);
  ASSERT_FALSE(s.ok()) << op << " accepted " << DimsToString(in[0]);
  EXPECT_NE(s.message().find("node 'n0' (" + op + ")"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(part), std::string::npos) << s.message();
}

std::vector<int64_t> Unravel(int64_t flat, const Dims& d) {
  std::vector<int64_t> idx(d.size());
  for (int k = static_cast<int>(d.size()) - 1; k >= 0; --k) {
    idx[k] = flat % d[k];
    flat /= d[k];
  }
  return idx;
}

int64_t Ravel(const std::vector<int64_t>& idx, const Dims& d) {
  int64_t f = 0;
  for (size_t k = 0; k < d.size(); ++k) f = f * d[k] + idx[k];
  return f;
}

// ---------------------------------------------------------------- reductions

struct RefReduce {
  const char* op;
  double init;
  std::function<double(double, double)> combine;  // (acc, x)
  std::function<double(double, int64_t)> finish;  // (acc, count)
};

const RefReduce kReductions[] = {
    {"ReduceSum", 0, [](double a, double x) { return a + x; }, [](double a, int64_t) { return a; }},
    {"ReduceMean", 0, [](double a, double x) { return a + x; },
     [](double a, int64_t n) { return a / n; }},
    {"ReduceMax", -INFINITY, [](double a, double x) { return std::max(a, x); },
     [](double a, int64_t) { return a; }},
    {"ReduceMin", INFINITY, [](double a, double x) { return std::min(a, x); },
     [](double a, int64_t) { return a; }},
    {"ReduceProd", 1, [](double a, double x) { return a * x; },
     [](double a, int64_t) { return a; }},
    {"ReduceL1", 0, [](double a, double x) { return a + std::fabs(x); },
     [](double a, int64_t) { return a; }},
    {"ReduceL2", 0, [](double a, double x) { return a + x * x; },
     [](double a, int64_t) { return std::sqrt(a); }},
    {"ReduceSumSquare", 0, [](double a, double x) { return a + x * x; },
     [](double a, int64_t) { return a; }},
    {"ReduceLogSum", 0, [](double a, double x) { return a + x; },
     [](double a, int64_t) { return std::log(a); }},
    {"ReduceLogSumExp", 0, [](double a, double x) { return a + std::exp(x); },
     [](double a, int64_t) { return std::log(a); }},
};

std::vector<float> ReferenceReduce(const RefReduce& r, const TestTensor& x, const Ints& axes) {
  Dims kept = x.dims;  // keepdims form
  for (int64_t a : axes) kept[a] = 1;
  std::vector<double> acc(Numel(kept), r.init);
  for (int64_t i = 0; i < Numel(x.dims); ++i) {
    std::vector<int64_t> idx = Unravel(i, x.dims);
    for (int64_t a : axes) idx[a] = 0;
    double& v = acc[Ravel(idx, kept)];
    v = r.combine(v, x.data[i]);
  }
  int64_t count = Numel(x.dims) / Numel(kept);
  std::vector<float> out;
  for (double v : acc) out.push_back(static_cast<float>(r.finish(v, count)));
  return out;
}

TEST(MathReduceTest, MatchesReferenceOnAxisMixes) {
  // Leading, trailing, middle, alternating, all axes, size-1 axes that merge, rank 1.
  const std::pair<Dims, Ints> cases[] = {
      {{2, 3, 4}, {2}},          {{2, 3, 4}, {0}},       {{2, 3, 4}, {1}},
      {{2, 3, 4, 5}, {0, 2}},    {{2, 3, 4, 5}, {1, 3}}, {{2, 3, 4}, {0, 1, 2}},
      {{3, 1, 4, 1, 5}, {1, 2}}, {{1, 7, 1}, {0, 2}},    {{37}, {0}},
      {{2, 1037}, {1}},          {{5, 1, 6}, {1}},
  };
  uint32_t seed = 1;
  for (const RefReduce& r : kReductions) {
    for (const auto& [dims, axes] : cases) {
      for (int64_t keep : {0, 1}) {
        SCOPED_TRACE(std::string(r.op) + " " + DimsToString(dims) + " axes " + DimsToString(axes) +
                     " keepdims " + std::to_string(keep));
        // Positive inputs for the logs; ReduceProd on values near 1 stays in range.
        const bool positive = std::string(r.op) == "ReduceLogSum";
        TestTensor x = testing::RandomTensor(dims, seed++, positive ? 0.1f : -1.5f, 1.5f);
        TestTensor y = RunOp(r.op, MakeAttrs({{"axes", axes}, {"keepdims", keep}}), {x});
        Dims want_dims;
        for (size_t k = 0; k < dims.size(); ++k) {
          const bool reduced =
              std::find(axes.begin(), axes.end(), static_cast<int64_t>(k)) != axes.end();
          if (!reduced) want_dims.push_back(dims[k]);
          if (reduced && keep) want_dims.push_back(1);
        }
        EXPECT_EQ(y.dims, want_dims);
        // float accumulation against double: long sums drift by a few 1e-5.
        ExpectNear(y.data, ReferenceReduce(r, x, axes), 1e-4f, 1e-4f);
      }
    }
  }
}

TEST(MathReduceTest, MaxAndMinPropagateNaN) {
  TestTensor x{{2, 3}, {1.f, kNaN, 3.f, -kInf, 2.f, kInf}};
  TestTensor mx = RunOp("ReduceMax", MakeAttrs({{"axes", Ints{1}}, {"keepdims", int64_t{0}}}), {x});
  EXPECT_TRUE(std::isnan(mx.data[0]));
  EXPECT_EQ(mx.data[1], kInf);
  TestTensor mn = RunOp("ReduceMin", MakeAttrs({{"axes", Ints{1}}, {"keepdims", int64_t{0}}}), {x});
  EXPECT_TRUE(std::isnan(mn.data[0]));
  EXPECT_EQ(mn.data[1], -kInf);
}

TEST(MathReduceTest, KeepsTheBatchSymbolicAndRefusesToReduceIt) {
  Dims out;
  ASSERT_TRUE(Infer("ReduceMean", MakeAttrs({{"axes", Ints{2}}, {"keepdims", int64_t{0}}}),
                    {{-1, 16, 64}}, &out)
                  .ok());
  EXPECT_EQ(out, (Dims{-1, 16}));
  ASSERT_TRUE(
      Infer("ReduceSum", MakeAttrs({{"axes", Ints{1}}, {"keepdims", int64_t{1}}}), {{-1, 8}}, &out)
          .ok());
  EXPECT_EQ(out, (Dims{-1, 1}));
  ExpectRejected("ReduceMean", MakeAttrs({{"axes", Ints{0}}}), {{-1, 8}}, "batch");
  ExpectRejected("ReduceMax", MakeAttrs({{"axes", Ints{1}}}), {{2, -3}}, "batch");
  ExpectRejected("ReduceSum", MakeAttrs({{"axes", Ints{1, 1}}}), {{2, 3}}, "axes");
  ExpectRejected("ReduceSum", MakeAttrs({{"axes", Ints{2}}}), {{2, 3}}, "axes");
  ExpectRejected("ReduceSum", MakeAttrs({{"axes", Ints{-1}}}), {{2, 3}}, "axes");
  ExpectRejected("ReduceSum", MakeAttrs({}), {{2, 3}}, "axes");
  ExpectRejected("ReduceSum", MakeAttrs({{"axes", Ints{1}}, {"keepdims", int64_t{2}}}), {{2, 3}},
                 "keepdims");
  ExpectRejected("ReduceSum", MakeAttrs({{"axes", 1.f}}), {{2, 3}}, "axes");
}

// ---------------------------------------------------------------- unary math and activations

struct UnaryCase {
  const char* op;
  Attrs attrs;
  std::function<double(double)> f;
};

double Selu(double x) {
  const double a = 1.67326319217681884765625, g = 1.05070102214813232421875;
  return x <= 0 ? g * (a * std::exp(x) - a) : g * x;
}

std::vector<UnaryCase> UnaryCases() {
  auto none = Attrs{};
  return {
      {"Erf", none, [](double x) { return std::erf(x); }},
      {"Exp", none, [](double x) { return std::exp(x); }},
      {"Log", none, [](double x) { return std::log(x); }},
      {"Sqrt", none, [](double x) { return std::sqrt(x); }},
      {"Abs", none, [](double x) { return std::fabs(x); }},
      {"Neg", none, [](double x) { return -x; }},
      {"Reciprocal", none, [](double x) { return 1 / x; }},
      {"Floor", none, [](double x) { return std::floor(x); }},
      {"Ceil", none, [](double x) { return std::ceil(x); }},
      {"Round", none, [](double x) { return std::nearbyint(x); }},
      {"Sign", none,
       [](double x) {
         if (std::isnan(x)) return x;
         return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
       }},
      {"Sin", none, [](double x) { return std::sin(x); }},
      {"Cos", none, [](double x) { return std::cos(x); }},
      {"HardSigmoid", MakeAttrs({{"alpha", 0.3f}, {"beta", 0.4f}}),
       [](double x) { return std::clamp(0.3 * x + 0.4, 0.0, 1.0); }},
      {"HardSigmoid", none, [](double x) { return std::clamp(0.2 * x + 0.5, 0.0, 1.0); }},
      {"HardSwish", none, [](double x) { return x * std::clamp(x / 6 + 0.5, 0.0, 1.0); }},
      {"Elu", MakeAttrs({{"alpha", 0.7f}}),
       [](double x) { return x < 0 ? 0.7 * (std::exp(x) - 1) : x; }},
      {"Selu", none, Selu},
      {"Celu", MakeAttrs({{"alpha", 1.3f}}),
       [](double x) {
         if (std::isnan(x)) return x;  // numpy's maximum/minimum propagate NaN
         return std::max(0.0, x) + std::min(0.0, 1.3 * (std::exp(x / 1.3) - 1));
       }},
      {"Softplus", none, [](double x) { return std::log1p(std::exp(x)); }},
      {"Softsign", none, [](double x) { return x / (1 + std::fabs(x)); }},
      {"ThresholdedRelu", MakeAttrs({{"alpha", 0.5f}}), [](double x) { return x > 0.5 ? x : 0; }},
      {"Gelu", none, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }},
  };
}

TEST(MathUnaryTest, MatchesReferenceOnOddLengths) {
  uint32_t seed = 100;
  for (const UnaryCase& c : UnaryCases()) {
    for (int64_t n : {1, 7, 33, 1029}) {
      SCOPED_TRACE(std::string(c.op) + " n=" + std::to_string(n));
      const bool positive = std::string(c.op) == "Log" || std::string(c.op) == "Sqrt";
      TestTensor x = testing::RandomTensor({n}, seed++, positive ? 0.01f : -6.f, 6.f);
      // Exact halves and integers for Round / Floor / Ceil / Sign (finite results only here;
      // zeros, infinities and NaN are in SpecialValuesFollowLibm).
      const bool no_zero = positive || std::string(c.op) == "Reciprocal";
      if (n > 4) {
        x.data[0] = 2.5f;
        x.data[1] = positive ? 1.5f : -1.5f;
        x.data[2] = no_zero ? 0.5f : 0.f;
        x.data[3] = 3.f;
      }
      TestTensor y = RunOp(c.op, c.attrs, {x});
      std::vector<float> want;
      for (float v : x.data) want.push_back(static_cast<float>(c.f(v)));
      ExpectNear(y.data, want, 2e-6f, 1e-6f);
    }
  }
}

TEST(MathUnaryTest, SpecialValuesFollowLibm) {
  const std::vector<float> x = {kNaN, kInf, -kInf, -0.f, 100.f, -100.f};
  for (const UnaryCase& c : UnaryCases()) {
    SCOPED_TRACE(c.op);
    TestTensor y = RunOp(c.op, c.attrs, {{{6}, x}});
    for (size_t i = 0; i < x.size(); ++i) {
      const float want = static_cast<float>(c.f(x[i]));
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(y.data[i])) << "x=" << x[i] << " got " << y.data[i];
      } else if (std::isinf(want)) {
        EXPECT_EQ(y.data[i], want) << "x=" << x[i];
      } else {
        EXPECT_NEAR(y.data[i], want, 1e-5f * std::max(1.f, std::fabs(want))) << "x=" << x[i];
        if (want == 0.f && std::string(c.op) == "Sign") {
          EXPECT_FALSE(std::signbit(y.data[i]));
        }
      }
    }
  }
}

TEST(MathUnaryTest, RejectsMistypedAttributesNamingTheNode) {
  ExpectRejected("Elu", MakeAttrs({{"alpha", int64_t{1}}}), {{4}}, "alpha");
  ExpectRejected("Celu", MakeAttrs({{"alpha", 0.f}}), {{4}}, "alpha");
  Dims out;
  ASSERT_TRUE(Infer("Erf", {}, {{-1, 5}}, &out).ok());
  EXPECT_EQ(out, (Dims{-1, 5}));
}

// ---------------------------------------------------------------- Pow and PRelu

TEST(MathPowTest, ScalarExponentFastPathsEqualPow) {
  const std::vector<float> x = {-2.f, -0.f, 0.f, 0.25f, 3.f, kInf, -kInf, kNaN, 1e20f, -1e-20f};
  for (float e : {2.f, 0.5f, 1.f, 3.f, -1.f, 0.f}) {
    SCOPED_TRACE("exponent " + std::to_string(e));
    TestTensor y = RunOp("Pow", {}, {{{10}, x}, {{}, {e}}});
    for (size_t i = 0; i < x.size(); ++i) {
      const float want = std::pow(x[i], e);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(y.data[i])) << x[i];
      } else {
        EXPECT_EQ(y.data[i], want) << x[i];
        EXPECT_EQ(std::signbit(y.data[i]), std::signbit(want)) << x[i];
      }
    }
  }
}

TEST(MathPowTest, BroadcastsExponentTensors) {
  TestTensor x = testing::RandomTensor({2, 3, 4}, 7, 0.1f, 2.f);
  TestTensor e = testing::RandomTensor({3, 1}, 8, -2.f, 2.f);
  TestTensor y = RunOp("Pow", {}, {x, e});
  std::vector<float> want;
  for (int64_t i = 0; i < 24; ++i) want.push_back(std::pow(x.data[i], e.data[(i / 4) % 3]));
  ExpectNear(y.data, want, 1e-6f, 0.f);
  TestTensor base{{}, {2.f}};
  TestTensor y2 = RunOp("Pow", {}, {base, e});  // scalar base, tensor exponent
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(y2.data[i], std::pow(2.f, e.data[i]));
}

TEST(MathPReluTest, SlopeBroadcastsPerChannel) {
  TestTensor x = testing::RandomTensor({2, 3, 5}, 9);
  TestTensor slope{{3, 1}, {0.1f, -0.5f, 2.f}};
  TestTensor y = RunOp("PRelu", {}, {x, slope});
  ASSERT_EQ(y.dims, x.dims);
  for (int64_t i = 0; i < 30; ++i) {
    const float v = x.data[i], s = slope.data[(i / 5) % 3];
    EXPECT_EQ(y.data[i], v < 0 ? v * s : v);
  }
  // The slope may not grow X.
  ExpectRejected("PRelu", {}, {{3}, {2, 3}}, "does not broadcast onto X");
  Dims out;
  ASSERT_TRUE(Infer("PRelu", {}, {{-1, 3, 5}, {3, 1}}, &out).ok());
  EXPECT_EQ(out, (Dims{-1, 3, 5}));
}

// ---------------------------------------------------------------- LayerNormalization

std::vector<float> ReferenceLayerNorm(const TestTensor& x, int axis, const std::vector<float>& s,
                                      const std::vector<float>& b, float eps,
                                      std::vector<float>* mean, std::vector<float>* inv_std) {
  int64_t n = 1;
  for (size_t k = axis; k < x.dims.size(); ++k) n *= x.dims[k];
  const int64_t rows = Numel(x.dims) / n;
  std::vector<float> y(x.data.size());
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < n; ++i) m += x.data[r * n + i];
    m /= n;
    for (int64_t i = 0; i < n; ++i) v += (x.data[r * n + i] - m) * (x.data[r * n + i] - m);
    const double inv = 1 / std::sqrt(v / n + eps);
    for (int64_t i = 0; i < n; ++i) {
      const double sc = s.size() == 1 ? s[0] : s[i];
      const double bi = b.empty() ? 0 : b.size() == 1 ? b[0] : b[i];
      y[r * n + i] = static_cast<float>((x.data[r * n + i] - m) * inv * sc + bi);
    }
    mean->push_back(static_cast<float>(m));
    inv_std->push_back(static_cast<float>(inv));
  }
  return y;
}

TEST(MathLayerNormTest, MatchesReferenceWithStatistics) {
  struct Case {
    Dims x;
    int64_t axis;
    Dims scale, bias;  // empty bias dims: no bias
  };
  const Case cases[] = {
      {{4, 24}, 1, {24}, {24}},       {{2, 3, 5}, 1, {3, 5}, {1, 3, 5}},
      {{2, 3, 5}, 2, {5}, {}},        {{3, 7}, 0, {3, 7}, {3, 7}},
      {{2, 2, 3, 4}, 2, {1}, {3, 4}}, {{1, 1037}, 1, {1037}, {1037}},
  };
  uint32_t seed = 200;
  for (const Case& c : cases) {
    SCOPED_TRACE(DimsToString(c.x) + " axis " + std::to_string(c.axis));
    TestTensor x = testing::RandomTensor(c.x, seed++, -3.f, 5.f);
    TestTensor s = testing::RandomTensor(c.scale, seed++, 0.5f, 1.5f);
    std::vector<TestTensor> in = {x, s};
    std::vector<float> bias;
    if (!c.bias.empty()) {
      in.push_back(testing::RandomTensor(c.bias, seed++));
      bias = in.back().data;
    }
    std::vector<TestTensor> out;
    Status st = RunSingleOp("LayerNormalization", MakeAttrs({{"axis", c.axis}, {"epsilon", 1e-3f}}),
                            in, &out, 3);
    ASSERT_TRUE(st.ok()) << st.ToString();
    std::vector<float> mean, inv;
    // Scale and bias broadcast over the row exactly as their data is laid out.
    std::vector<float> want =
        ReferenceLayerNorm(x, static_cast<int>(c.axis), s.data, bias, 1e-3f, &mean, &inv);
    ExpectNear(out[0].data, want, 1e-5f, 2e-5f);
    ExpectNear(out[1].data, mean, 1e-5f, 1e-5f);
    ExpectNear(out[2].data, inv, 1e-5f, 1e-5f);
    Dims stats(c.x.begin(), c.x.begin() + c.axis);
    stats.resize(c.x.size(), 1);
    EXPECT_EQ(out[1].dims, stats);
  }
}

TEST(MathLayerNormTest, RefusesTheBatchAxisAndMismatchedScale) {
  const Attrs last = MakeAttrs({{"axis", int64_t{2}}});
  Dims out;
  ASSERT_TRUE(Infer("LayerNormalization", last, {{-1, 10, 24}, {24}, {24}}, &out).ok());
  EXPECT_EQ(out, (Dims{-1, 10, 24}));
  ExpectRejected("LayerNormalization", MakeAttrs({{"axis", int64_t{0}}}), {{-1, 24}, {24}},
                 "batch");
  ExpectRejected("LayerNormalization", last, {{-1, 10, 24}, {12}}, "normalized dims");
  ExpectRejected("LayerNormalization", last, {{-1, 10, 24}, {10, 24}}, "normalized dims");
  ExpectRejected("LayerNormalization", last, {{-1, 10, 24}, {24}, {2}}, "normalized dims");
  // A bias that would broadcast over part of the row is not supported.
  ExpectRejected("LayerNormalization", MakeAttrs({{"axis", int64_t{1}}}),
                 {{-1, 10, 24}, {10, 24}, {1, 24}}, "normalized dims");
  ExpectRejected("LayerNormalization", MakeAttrs({{"axis", int64_t{3}}}), {{-1, 10, 24}, {24}},
                 "axis");
  ExpectRejected("LayerNormalization", {}, {{-1, 10, 24}, {24}}, "axis");
}

// ---------------------------------------------------------------- Pad

// numpy.pad semantics, one output element at a time.
std::vector<float> ReferencePad(const TestTensor& x, const Ints& pads, const std::string& mode,
                                float value, Dims* out_dims) {
  const size_t r = x.dims.size();
  Dims od(r);
  for (size_t k = 0; k < r; ++k) od[k] = x.dims[k] + pads[k] + pads[k + r];
  std::vector<float> y(Numel(od));
  for (int64_t o = 0; o < Numel(od); ++o) {
    std::vector<int64_t> idx = Unravel(o, od);
    bool outside = false;
    for (size_t k = 0; k < r; ++k) {
      int64_t i = idx[k] - pads[k];
      const int64_t n = x.dims[k];
      if (i < 0 || i >= n) {
        if (mode == "constant") outside = true;
        if (mode == "edge") i = i < 0 ? 0 : n - 1;
        if (mode == "reflect") i = i < 0 ? -i : 2 * (n - 1) - i;
      }
      idx[k] = i;
    }
    y[o] = outside ? value : x.data[Ravel(idx, x.dims)];
  }
  *out_dims = od;
  return y;
}

TEST(MathPadTest, MatchesNumpyPadInEveryMode) {
  const std::pair<Dims, Ints> cases[] = {
      {{5}, {2, 3}},
      {{2, 3, 7}, {0, 0, 2, 0, 0, 2}},
      {{2, 3, 7}, {0, 1, 3, 0, 2, 1}},
      {{3, 4}, {1, 2, 2, 1}},
      {{2, 3, 4, 5}, {0, 0, 1, 1, 0, 0, 2, 3}},
      {{4, 6}, {0, -2, 0, 3}},  // crops the start of axis 1, pads its end
      {{3, 8}, {-1, 1, 1, -3}},
  };
  uint32_t seed = 300;
  for (const char* mode : {"constant", "edge", "reflect"}) {
    for (const auto& [dims, pads] : cases) {
      SCOPED_TRACE(std::string(mode) + " " + DimsToString(dims) + " pads " + DimsToString(pads));
      TestTensor x = testing::RandomTensor(dims, seed++);
      TestTensor y = RunOp(
          "Pad", MakeAttrs({{"mode", std::string(mode)}, {"pads", pads}, {"value", 1.5f}}), {x});
      Dims want_dims;
      std::vector<float> want = ReferencePad(x, pads, mode, 1.5f, &want_dims);
      EXPECT_EQ(y.dims, want_dims);
      EXPECT_EQ(y.data, want);
    }
  }
}

TEST(MathPadTest, KeepsTheBatchAndRefusesWhatItCannotDo) {
  Dims out;
  ASSERT_TRUE(
      Infer("Pad", MakeAttrs({{"pads", Ints{0, 0, 2, 0, 0, 2}}}), {{-1, 3, 50}}, &out).ok());
  EXPECT_EQ(out, (Dims{-1, 3, 54}));
  ExpectRejected("Pad", MakeAttrs({{"pads", Ints{1, 0, 0, 0}}}), {{-1, 3}}, "batch");
  ExpectRejected("Pad", MakeAttrs({{"pads", Ints{1, 0}}}), {{-1, 3}}, "pads");
  ExpectRejected("Pad", MakeAttrs({{"pads", Ints{0, -4}}}), {{3}}, "below 0");
  ExpectRejected("Pad", MakeAttrs({{"pads", Ints{3, 0}}, {"mode", std::string("reflect")}}), {{3}},
                 "reflect");
  ExpectRejected("Pad", MakeAttrs({{"pads", Ints{1, 0}}, {"mode", std::string("wrap")}}), {{3}},
                 "mode 'wrap'");
  ExpectRejected("Pad", {}, {{3}}, "pads");
}

// The fused forms (Conv/Gemm/Dense epilogues) compute what the standalone ops do, to a few ulps
// (the ops' AVX2 clone may contract a multiply-add into an FMA).
TEST(MathUnaryTest, FusedGeluAndHardSwishEqualTheOps) {
  for (const char* name : {"Gelu", "HardSwish"}) {
    SCOPED_TRACE(name);
    Attrs attrs;
    attrs.Set("activation", std::string(name));
    Result<Activation> act = Activation::FromAttrs(attrs);
    ASSERT_TRUE(act.ok());
    EXPECT_STREQ(Activation::Name(act->kind), name);
    TestTensor x = testing::RandomTensor({257}, 400, -8.f, 8.f);
    x.data[0] = kNaN;
    x.data[1] = -0.f;
    TestTensor y = RunOp(name, {}, {x});
    std::vector<float> fused = x.data;
    act->Apply(fused.data(), fused.size());
    EXPECT_TRUE(std::isnan(fused[0]));
    for (size_t i = 1; i < fused.size(); ++i) EXPECT_FLOAT_EQ(fused[i], y.data[i]) << x.data[i];
  }
}

// The documented bound of the vectorizable erf behind Erf and Gelu, on a dense grid.
TEST(MathUnaryTest, FastErfWithinItsBound) {
  double worst = 0, worst_rel_small = 0;
  for (int i = -700000; i <= 700000; ++i) {
    const float x = static_cast<float>(i) * 1e-5f;  // [-7, 7]
    const double want = std::erf(static_cast<double>(x));
    const double err = std::fabs(FastErf(x) - want);
    worst = std::max(worst, err);
    if (std::fabs(x) < 0.5f && x != 0.f)
      worst_rel_small = std::max(worst_rel_small, err / std::fabs(want));
    ASSERT_LE(std::fabs(FastErf(x)), 1.f) << x;
  }
  EXPECT_LT(worst, 4e-7);
  EXPECT_LT(worst_rel_small, 3e-7);
  EXPECT_EQ(FastErf(kInf), 1.f);
  EXPECT_EQ(FastErf(-kInf), -1.f);
  EXPECT_EQ(FastErf(1e30f), 1.f);
  EXPECT_TRUE(std::isnan(FastErf(kNaN)));
  EXPECT_TRUE(std::signbit(FastErf(-0.f)));
  EXPECT_EQ(FastErf(-2.5f), -FastErf(2.5f));
}

// A hostile .eim can put any attribute value on any op: infer refuses what the kernel cannot
// run, and whatever infer accepts runs.
TEST(MathInferTest, SurvivesArbitraryAttributes) {
  const std::vector<AttrValue> values = {int64_t{-1},
                                         int64_t{1} << 62,
                                         std::numeric_limits<int64_t>::min(),
                                         int64_t{0},
                                         1.5f,
                                         0.f,
                                         std::string("reflect"),
                                         std::string("x"),
                                         Ints{},
                                         Ints{1},
                                         Ints{0, 1},
                                         Ints{1, 0},
                                         Ints{9, -9, 0, 1},
                                         Ints{std::numeric_limits<int64_t>::min(), 0, 0, 0},
                                         Ints{1, 2, 3, 4},
                                         std::vector<float>{1}};
  int ran = 0;
  for (const OpDef* op : AllOps()) {
    const std::string name = op->name;
    const bool math = name.rfind("Reduce", 0) == 0 || name == "Pad" ||
                      name == "LayerNormalization" || name == "Pow" || name == "PRelu" ||
                      op->infer == FindOp("Erf")->infer;
    if (!math) continue;
    for (const char* attr : {"axes", "keepdims", "pads", "mode", "value", "axis", "epsilon",
                             "alpha", "beta", "gamma"}) {
      for (const AttrValue& v : values) {
        Attrs attrs;
        attrs.Set(attr, v);
        if (name.rfind("Reduce", 0) == 0 && std::string(attr) != "axes") attrs.Set("axes", Ints{1});
        if (name == "Pad" && std::string(attr) != "pads") attrs.Set("pads", Ints{0, 1, 0, 1});
        if (name == "LayerNormalization" && std::string(attr) != "axis")
          attrs.Set("axis", int64_t{1});
        const int n_in = name == "LayerNormalization"         ? 3
                         : (name == "Pow" || name == "PRelu") ? 2
                                                              : 1;
        for (int outputs : {1, 3}) {
          if (outputs == 3 && name != "LayerNormalization") continue;
          std::vector<TestTensor> in = {testing::RandomTensor({2, 3}, 1)};
          for (int i = 1; i < n_in; ++i) in.push_back(testing::RandomTensor({3}, 2 + i));
          std::vector<TestTensor> out;
          if (RunSingleOp(name, attrs, in, &out, outputs).ok()) ++ran;
          std::vector<TestTensor> batched = {{{-1, 3}, {0.f}}};  // infer only
          for (int i = 1; i < n_in; ++i) batched.push_back({{3}, {0.f}});
          Graph g = testing::MakeSingleOpGraph(name, attrs, batched, outputs);
          std::vector<TensorDesc> outs(outputs);
          (void)op->infer(g.nodes[0], g, &outs);
        }
      }
    }
  }
  EXPECT_GT(ran, 500);  // most combinations are valid and ran
}

}  // namespace
}  // namespace edgeinfer
