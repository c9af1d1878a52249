// Tests of the basic ops (element-wise, softmax, layout) and of shape_util's symbolic
// broadcasting, each kernel against a straightforward reference on odd shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "inference/op.h"
#include "inference/ops/shape_util.h"
#include "tests/inference/op_test_util.h"

namespace edgeinfer {
namespace {

using testing::ExpectNear;
using testing::Numel;
using testing::RandomFloats;
using testing::RunOp;
using testing::RunSingleOp;
using testing::TestTensor;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Runs only the op's infer on a one-node graph whose inputs have `in_dims`.
Status Infer(const std::string& op, const Attrs& attrs, const std::vector<Dims>& in_dims,
             Dims* out_dims = nullptr, int num_outputs = 1) {
  std::vector<TestTensor> in;
  // One element of data marks each input present; infer looks only at dims.
  for (const Dims& d : in_dims) in.push_back({d, {0.f}});
  Graph g = testing::MakeSingleOpGraph(op, attrs, in, num_outputs);
  std::vector<TensorDesc> outs(g.nodes[0].outputs.size());
  Status s = FindOp(op)->infer(g.nodes[0], g, &outs);
  if (s.ok() && out_dims) *out_dims = outs[0].dims;
  return s;
}

// Expects an infer error whose message names the node.
void ExpectRejected(const std::string& op, const Attrs& attrs, const std::vector<Dims>& in) {
  Status s = Infer(op, attrs, in);
  ASSERT_FALSE(s.ok()) << op << " accepted";
  EXPECT_EQ(s.message().rfind("node 'n0' (" + op + ")", 0), 0u) << s.message();
}

Attrs MakeAttrs(std::initializer_list<std::pair<std::string, AttrValue>> kv) {
  Attrs a;
  for (const auto& [k, v] : kv) a.Set(k, v);
  return a;
}

// Row-major strides of literal dims.
std::vector<int64_t> Strides(const Dims& d) {
  std::vector<int64_t> s(d.size(), 1);
  for (int i = static_cast<int>(d.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * d[i + 1];
  return s;
}

// Index of the element of `in` (broadcast onto `out`) at output multi-index `idx`.
int64_t BroadcastIndex(const Dims& in, const Dims& out, const std::vector<int64_t>& idx) {
  const size_t off = out.size() - in.size();
  const std::vector<int64_t> s = Strides(in);
  int64_t i = 0;
  for (size_t k = 0; k < in.size(); ++k) i += (in[k] == 1 ? 0 : idx[k + off]) * s[k];
  return i;
}

std::vector<int64_t> Unravel(int64_t flat, const Dims& d) {
  std::vector<int64_t> idx(d.size());
  for (int k = static_cast<int>(d.size()) - 1; k >= 0; --k) {
    idx[k] = flat % d[k];
    flat /= d[k];
  }
  return idx;
}

Dims RefBroadcastDims(const Dims& a, const Dims& b) {
  Dims out(std::max(a.size(), b.size()), 1);
  for (size_t i = 0; i < out.size(); ++i) {
    const size_t ia = out.size() - 1 - i, ib = i;
    int64_t da = ib < a.size() ? a[a.size() - 1 - ib] : 1;
    int64_t db = ib < b.size() ? b[b.size() - 1 - ib] : 1;
    out[ia] = da == 1 ? db : da;
  }
  return out;
}

std::vector<float> RefBinary(const TestTensor& a, const TestTensor& b, const Dims& out,
                             const std::function<float(float, float)>& f) {
  std::vector<float> r(Numel(out));
  for (int64_t i = 0; i < static_cast<int64_t>(r.size()); ++i) {
    std::vector<int64_t> idx = Unravel(i, out);
    r[i] = f(a.data[BroadcastIndex(a.dims, out, idx)], b.data[BroadcastIndex(b.dims, out, idx)]);
  }
  return r;
}

// ---------------------------------------------------------------- shape_util

TEST(BasicBroadcastTest, SymbolicRules) {
  struct Case {
    Dims a, b, want;
  };
  const Case ok[] = {
      {{-1, 3}, {3}, {-1, 3}}, {{-1, 1}, {1, 4}, {-1, 4}},           {{1}, {-2, 5}, {-2, 5}},
      {{-1}, {-1}, {-1}},      {{-1, 1, 7}, {-1, 5, 1}, {-1, 5, 7}}, {{}, {2, 3}, {2, 3}},
      {{0}, {1}, {0}},         {{2, 1, 4}, {3, 1}, {2, 3, 4}},
  };
  for (const Case& c : ok) {
    Dims out;
    ASSERT_TRUE(BroadcastDims(c.a, c.b, &out).ok()) << DimsToString(c.a) << DimsToString(c.b);
    EXPECT_EQ(out, c.want);
    ASSERT_TRUE(BroadcastDims(c.b, c.a, &out).ok());
    EXPECT_EQ(out, c.want);
  }
  const std::pair<Dims, Dims> bad[] = {
      {{4}, {-1}}, {{-1}, {-2}}, {{2, 3}, {4}}, {{0}, {3}}, {{-1, 3}, {2, 3}}};
  for (const auto& [a, b] : bad) {
    Dims out;
    Status s = BroadcastDims(a, b, &out);
    EXPECT_FALSE(s.ok()) << DimsToString(a) << DimsToString(b);
    EXPECT_NE(s.message().find("cannot broadcast"), std::string::npos);
    EXPECT_FALSE(BroadcastDims(b, a, &out).ok());
  }
}

TEST(BasicBroadcastTest, CountsElementsSymbolically) {
  SymbolicCount c;
  ASSERT_TRUE(CountElements({-1, 3, -2}, &c).ok());
  EXPECT_EQ(c.coeff, 6);
  EXPECT_EQ(c.batch_power, 2);
  ASSERT_TRUE(CountElements({}, &c).ok());
  EXPECT_EQ(c.coeff, 1);
  EXPECT_EQ(c.batch_power, 0);
  EXPECT_FALSE(CountElements({int64_t{1} << 40, int64_t{1} << 40}, &c).ok());
  EXPECT_FALSE(CountElements({std::numeric_limits<int64_t>::min()}, &c).ok());
  EXPECT_EQ(NumElements({-1, 3, -2}, 5), 5 * 3 * 10);
}

TEST(BasicBroadcastTest, StridesOfBroadcastOperand) {
  int64_t s[4];
  BroadcastStrides(Resolve({3, 1, 5}, 1), 4, s);
  EXPECT_EQ(std::vector<int64_t>(s, s + 4), (std::vector<int64_t>{0, 5, 0, 1}));
}

// ---------------------------------------------------------------- binary ops

struct BinaryOpCase {
  const char* op;
  std::function<float(float, float)> f;
};

const BinaryOpCase kBinaryOps[] = {
    {"Add", [](float a, float b) { return a + b; }},
    {"Sub", [](float a, float b) { return a - b; }},
    {"Mul", [](float a, float b) { return a * b; }},
    {"Div", [](float a, float b) { return a / b; }},
};

// Covers every reduced form of the broadcast: same shape, scalar either side, trailing vector,
// per channel, outer product, leading-1 operands and a general 5-D mix, in both directions.
const std::pair<Dims, Dims> kBroadcastShapes[] = {
    {{2, 3, 4}, {2, 3, 4}},
    {{2, 3, 4}, {4}},
    {{2, 1, 4}, {3, 1}},
    {{2, 3, 5}, {}},
    {{1}, {5, 1, 1, 7}},
    {{2, 3, 4, 5}, {3, 1, 1}},
    {{6, 1}, {1, 5}},
    {{1, 1, 1}, {1}},
    {{2, 1, 3, 1, 5}, {1, 4, 3, 7, 1}},
    {{3, 7}, {3, 1}},
    {{1, 3, 1, 5}, {2, 1, 4, 5}},
    {{4099}, {1}},
};

TEST(BasicBinaryTest, BroadcastsLikeNumpy) {
  uint32_t seed = 1;
  for (const BinaryOpCase& op : kBinaryOps) {
    for (const auto& [da, db] : kBroadcastShapes) {
      for (int flip = 0; flip < 2; ++flip) {
        const Dims& x = flip ? db : da;
        const Dims& y = flip ? da : db;
        SCOPED_TRACE(std::string(op.op) + " " + DimsToString(x) + " " + DimsToString(y));
        TestTensor a = testing::RandomTensor(x, seed++);
        // Denominators kept away from 0 so Div compares well.
        TestTensor b = testing::RandomTensor(y, seed++, 0.5f, 2.f);
        TestTensor out = RunOp(op.op, {}, {a, b});
        const Dims want_dims = RefBroadcastDims(x, y);
        EXPECT_EQ(out.dims, want_dims);
        ExpectNear(out.data, RefBinary(a, b, want_dims, op.f));
      }
    }
  }
}

TEST(BasicBinaryTest, ConstantOperand) {
  TestTensor a = testing::RandomTensor({2, 3, 4}, 7);
  TestTensor b = testing::RandomTensor({3, 1}, 8);
  b.constant = true;
  TestTensor out = RunOp("Mul", {}, {a, b});
  ExpectNear(out.data, RefBinary(a, b, {2, 3, 4}, std::multiplies<float>()));
}

float RefActivation(const std::string& kind, float x, float alpha, float lo, float hi) {
  if (kind == "Relu") return std::isnan(x) ? x : std::max(x, 0.f);
  if (kind == "LeakyRelu") return x < 0 ? alpha * x : x;
  if (kind == "Sigmoid") return static_cast<float>(1.0 / (1.0 + std::exp(-double{x})));
  if (kind == "Tanh") return static_cast<float>(std::tanh(double{x}));
  if (kind == "Clip") return std::isnan(x) ? x : std::min(std::max(x, lo), hi);
  return x;
}

TEST(BasicBinaryTest, AddAppliesFusedActivation) {
  TestTensor a = testing::RandomTensor({2, 3, 4}, 11);
  TestTensor b = testing::RandomTensor({3, 1}, 12);
  for (const char* kind : {"", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip"}) {
    SCOPED_TRACE(kind);
    Attrs attrs = MakeAttrs({{"activation", std::string(kind)}});
    if (std::string(kind) == "LeakyRelu") attrs.Set("activation_alpha", 0.2f);
    if (std::string(kind) == "Clip") {
      attrs.Set("activation_min", -0.3f);
      attrs.Set("activation_max", 0.4f);
    }
    TestTensor out = RunOp("Add", attrs, {a, b});
    std::vector<float> want = RefBinary(a, b, {2, 3, 4}, std::plus<float>());
    for (float& v : want) v = RefActivation(kind, v, 0.2f, -0.3f, 0.4f);
    ExpectNear(out.data, want);
  }
}

TEST(BasicBinaryTest, FusedActivationOnLargeSameShape) {
  // Longer than the kernel's activation chunk, so several chunks are written and activated.
  TestTensor a = testing::RandomTensor({3, 4099}, 13);
  TestTensor b = testing::RandomTensor({3, 4099}, 14);
  TestTensor out = RunOp("Sub", MakeAttrs({{"activation", std::string("Relu")}}), {a, b});
  std::vector<float> want = RefBinary(a, b, a.dims, std::minus<float>());
  for (float& v : want) v = std::max(v, 0.f);
  ExpectNear(out.data, want);
}

TEST(BasicBinaryTest, DivFollowsIeee) {
  TestTensor a{{6}, {1.f, -2.f, 0.f, 6.f, kInf, 3.f}};
  TestTensor b{{6}, {0.f, 0.f, 0.f, -4.f, 2.f, kInf}};
  TestTensor out = RunOp("Div", {}, {a, b});
  EXPECT_EQ(out.data[0], kInf);
  EXPECT_EQ(out.data[1], -kInf);
  EXPECT_TRUE(std::isnan(out.data[2]));
  EXPECT_FLOAT_EQ(out.data[3], -1.5f);
  EXPECT_EQ(out.data[4], kInf);
  EXPECT_EQ(out.data[5], 0.f);
  // Scalar divisor and scalar dividend.
  out = RunOp("Div", {}, {{{3}, {1.f, 2.f, 3.f}}, {{}, {4.f}}});
  ExpectNear(out.data, {0.25f, 0.5f, 0.75f});
  out = RunOp("Div", {}, {{{1}, {6.f}}, {{3}, {1.f, 2.f, 3.f}}});
  ExpectNear(out.data, {6.f, 3.f, 2.f});
}

// ---------------------------------------------------------------- activations

TEST(BasicActivationTest, MatchReference) {
  TestTensor x = testing::RandomTensor({3, 5, 7}, 21, -6.f, 6.f);
  struct Case {
    const char* op;
    Attrs attrs;
    float alpha, lo, hi;
  };
  const Case cases[] = {
      {"Relu", {}, 0, 0, 0},
      {"LeakyRelu", {}, 0.01f, 0, 0},
      {"LeakyRelu", MakeAttrs({{"alpha", 0.3f}}), 0.3f, 0, 0},
      {"Sigmoid", {}, 0, 0, 0},
      {"Tanh", {}, 0, 0, 0},
      {"Clip", MakeAttrs({{"min", -1.5f}, {"max", 2.5f}}), 0, -1.5f, 2.5f},
      {"Clip", MakeAttrs({{"min", -1.5f}}), 0, -1.5f, kInf},
      {"Clip", MakeAttrs({{"max", 0.5f}}), 0, -kInf, 0.5f},
      {"Clip", {}, 0, -kInf, kInf},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.op);
    TestTensor out = RunOp(c.op, c.attrs, {x});
    EXPECT_EQ(out.dims, x.dims);
    std::vector<float> want(x.data.size());
    for (size_t i = 0; i < want.size(); ++i) {
      want[i] = RefActivation(c.op, x.data[i], c.alpha, c.lo, c.hi);
    }
    ExpectNear(out.data, want);
  }
}

TEST(BasicActivationTest, SpecialValues) {
  TestTensor x{{5}, {kNaN, kInf, -kInf, -100.f, 100.f}};
  TestTensor relu = RunOp("Relu", {}, {x});
  EXPECT_TRUE(std::isnan(relu.data[0]));
  EXPECT_EQ(relu.data[1], kInf);
  EXPECT_EQ(relu.data[2], 0.f);
  TestTensor leaky = RunOp("LeakyRelu", {}, {x});
  EXPECT_TRUE(std::isnan(leaky.data[0]));
  EXPECT_EQ(leaky.data[2], -kInf);
  TestTensor sig = RunOp("Sigmoid", {}, {x});
  EXPECT_TRUE(std::isnan(sig.data[0]));
  EXPECT_EQ(sig.data[1], 1.f);
  EXPECT_EQ(sig.data[2], 0.f);
  EXPECT_NEAR(sig.data[3], 0.f, 1e-30);
  EXPECT_EQ(sig.data[4], 1.f);
  TestTensor tanh = RunOp("Tanh", {}, {x});
  EXPECT_TRUE(std::isnan(tanh.data[0]));
  EXPECT_EQ(tanh.data[1], 1.f);
  EXPECT_EQ(tanh.data[2], -1.f);
  TestTensor clip = RunOp("Clip", MakeAttrs({{"min", -1.f}, {"max", 1.f}}), {x});
  EXPECT_TRUE(std::isnan(clip.data[0]));
  EXPECT_EQ(clip.data[1], 1.f);
  EXPECT_EQ(clip.data[2], -1.f);
}

// ---------------------------------------------------------------- softmax

// Reference over literal dims, in double, straight from the definitions.
std::vector<float> RefSoftmax(const TestTensor& x, int64_t axis, bool legacy, bool log) {
  const Dims& d = x.dims;
  const int64_t r = static_cast<int64_t>(d.size());
  if (axis < 0) axis += r;
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= d[i];
  if (legacy) {
    for (int64_t i = axis; i < r; ++i) n *= d[i];
  } else {
    n = d[axis];
    for (int64_t i = axis + 1; i < r; ++i) inner *= d[i];
  }
  std::vector<float> y(x.data.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return (o * n + j) * inner + i; };
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += std::exp(double{x.data[at(j)]});
      for (int64_t j = 0; j < n; ++j) {
        const double v = x.data[at(j)];
        y[at(j)] = static_cast<float>(log ? v - std::log(sum) : std::exp(v) / sum);
      }
    }
  }
  return y;
}

TEST(BasicSoftmaxTest, AllAxesBothModes) {
  TestTensor x = testing::RandomTensor({3, 4, 5}, 31, -3.f, 3.f);
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    for (int64_t legacy : {0, 1}) {
      for (int64_t axis : {0, 1, 2, -1, -2, -3}) {
        SCOPED_TRACE(std::string(op) + " legacy " + std::to_string(legacy) + " axis " +
                     std::to_string(axis));
        TestTensor out = RunOp(op, MakeAttrs({{"axis", axis}, {"legacy", legacy}}), {x});
        EXPECT_EQ(out.dims, x.dims);
        ExpectNear(out.data, RefSoftmax(x, axis, legacy, std::string(op) == "LogSoftmax"));
      }
    }
  }
}

TEST(BasicSoftmaxTest, LegacyDiffersFromNewModeExceptOnLastAxis) {
  TestTensor x = testing::RandomTensor({2, 3, 4}, 32);
  auto run = [&](int64_t axis, int64_t legacy) {
    return RunOp("Softmax", MakeAttrs({{"axis", axis}, {"legacy", legacy}}), {x}).data;
  };
  ExpectNear(run(-1, 0), run(-1, 1));
  EXPECT_GT(std::abs(run(1, 0)[0] - run(1, 1)[0]), 1e-3f);
  // Default axes: -1 in new mode, 1 in legacy mode.
  ExpectNear(RunOp("Softmax", {}, {x}).data, RefSoftmax(x, -1, false, false));
  ExpectNear(RunOp("Softmax", MakeAttrs({{"legacy", int64_t{1}}}), {x}).data,
             RefSoftmax(x, 1, true, false));
}

// Inputs whose exp overflows float unless the maximum (placed last, so a max that misses an
// element shows) is subtracted first.
TEST(BasicSoftmaxTest, StableForLargeInputs) {
  TestTensor x{{2, 3}, {-1000.f, 0.f, 1000.f, 1000.f, 1001.f, 1002.f}};
  TestTensor y = RunOp("Softmax", {}, {x});
  ExpectNear(y.data, {0.f, 0.f, 1.f, 0.09003057f, 0.24472847f, 0.66524096f});
  TestTensor ly = RunOp("LogSoftmax", {}, {x});
  ExpectNear(ly.data, {-2000.f, -1000.f, 0.f, -2.40760596f, -1.40760596f, -0.40760596f});
  // Non-last axis.
  TestTensor z{{3, 2}, {-1000.f, 0.f, 0.f, 1.f, 1000.f, 2.f}};
  TestTensor sz = RunOp("Softmax", MakeAttrs({{"axis", int64_t{0}}}), {z});
  ExpectNear(sz.data, {0.f, 0.09003057f, 0.f, 0.24472847f, 1.f, 0.66524096f});
  TestTensor lz = RunOp("LogSoftmax", MakeAttrs({{"axis", int64_t{0}}}), {z});
  ExpectNear(lz.data, {-2000.f, -2.40760596f, -1000.f, -1.40760596f, 0.f, -0.40760596f});
}

// Run may use only the ScratchBytes it asked for: a canary after them must survive.
TEST(BasicSoftmaxTest, StaysWithinScratch) {
  const Dims dims = {2, 3, 40};
  TestTensor x = testing::RandomTensor(dims, 33);
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    Graph g = testing::MakeSingleOpGraph(op, MakeAttrs({{"axis", int64_t{1}}}), {x}, 1);
    auto kernel = FindOp(op)->create(g.nodes[0], g);
    ASSERT_TRUE(kernel.ok());
    const Shape shape = Resolve(dims, 1);
    const size_t bytes = (*kernel)->ScratchBytes({&shape, 1}, {&shape, 1});
    std::vector<float> scratch(bytes / sizeof(float) + 64, 12345.f);
    std::vector<float> y(x.data.size());
    TensorView in, out;
    in.data = x.data.data();
    out.data = y.data();
    in.shape = out.shape = shape;
    KernelContext ctx;
    ctx.in = &in;
    ctx.num_in = 1;
    ctx.out = &out;
    ctx.num_out = 1;
    ctx.scratch = scratch.data();
    ctx.scratch_bytes = bytes;
    (*kernel)->Run(ctx);
    for (size_t i = bytes / sizeof(float); i < scratch.size(); ++i) ASSERT_EQ(scratch[i], 12345.f);
    ExpectNear(y, RefSoftmax(x, 1, false, std::string(op) == "LogSoftmax"));
  }
}

// ---------------------------------------------------------------- transpose

std::vector<float> RefTranspose(const TestTensor& x, const std::vector<int64_t>& perm, Dims* od) {
  Dims out(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) out[i] = x.dims[perm[i]];
  const std::vector<int64_t> in_strides = Strides(x.dims);
  std::vector<float> y(x.data.size());
  for (int64_t i = 0; i < static_cast<int64_t>(y.size()); ++i) {
    std::vector<int64_t> idx = Unravel(i, out);
    int64_t src = 0;
    for (size_t k = 0; k < perm.size(); ++k) src += idx[k] * in_strides[perm[k]];
    y[i] = x.data[src];
  }
  *od = out;
  return y;
}

void CheckAllPermutations(const Dims& dims, uint32_t seed) {
  TestTensor x = testing::RandomTensor(dims, seed);
  std::vector<int64_t> perm(dims.size());
  std::iota(perm.begin(), perm.end(), 0);
  int count = 0;
  do {
    SCOPED_TRACE(DimsToString(dims) + " perm " + DimsToString(perm));
    TestTensor out = RunOp("Transpose", MakeAttrs({{"perm", perm}}), {x});
    Dims want_dims;
    std::vector<float> want = RefTranspose(x, perm, &want_dims);
    EXPECT_EQ(out.dims, want_dims);
    EXPECT_EQ(out.data, want);
    ++count;
  } while (std::next_permutation(perm.begin(), perm.end()));
  EXPECT_EQ(count, 24);
}

TEST(BasicTransposeTest, AllPermutationsOf4D) { CheckAllPermutations({2, 3, 4, 5}, 41); }

TEST(BasicTransposeTest, AllPermutationsWithUnitDims) { CheckAllPermutations({3, 1, 4, 1}, 42); }

TEST(BasicTransposeTest, Large2DAndHighRank) {
  for (const auto& [dims, perm] : std::vector<std::pair<Dims, std::vector<int64_t>>>{
           {{37, 53}, {1, 0}},
           {{1, 1}, {1, 0}},
           {{2, 3, 1, 2, 3, 2, 1, 2}, {7, 2, 5, 0, 3, 1, 6, 4}},
           {{5, 33, 70}, {0, 2, 1}},
           {{7}, {0}}}) {
    SCOPED_TRACE(DimsToString(dims) + " perm " + DimsToString(perm));
    TestTensor x = testing::RandomTensor(dims, 43);
    TestTensor out = RunOp("Transpose", MakeAttrs({{"perm", perm}}), {x});
    Dims want_dims;
    std::vector<float> want = RefTranspose(x, perm, &want_dims);
    EXPECT_EQ(out.dims, want_dims);
    EXPECT_EQ(out.data, want);
  }
}

// ---------------------------------------------------------------- concat

TEST(BasicConcatTest, EachAxisOfThreeInputs) {
  const Dims base = {2, 3, 4};
  for (int64_t axis = 0; axis < 3; ++axis) {
    SCOPED_TRACE("axis " + std::to_string(axis));
    std::vector<TestTensor> in;
    for (int k = 0; k < 3; ++k) {
      Dims d = base;
      d[axis] = k + 1;
      in.push_back(testing::RandomTensor(d, 50 + k));
    }
    TestTensor out = RunOp("Concat", MakeAttrs({{"axis", axis}}), in);
    Dims want_dims = base;
    want_dims[axis] = 6;
    ASSERT_EQ(out.dims, want_dims);
    // Reference: each output element comes from the input whose range holds its axis index.
    for (int64_t i = 0; i < Numel(want_dims); ++i) {
      std::vector<int64_t> idx = Unravel(i, want_dims);
      int k = 0;
      while (idx[axis] >= in[k].dims[axis]) idx[axis] -= in[k++].dims[axis];
      const std::vector<int64_t> s = Strides(in[k].dims);
      int64_t src = 0;
      for (size_t j = 0; j < idx.size(); ++j) src += idx[j] * s[j];
      ASSERT_EQ(out.data[i], in[k].data[src]) << "at " << i;
    }
  }
}

TEST(BasicConcatTest, SingleInputAndSymbolicBatch) {
  TestTensor x = testing::RandomTensor({2, 5}, 55);
  EXPECT_EQ(RunOp("Concat", MakeAttrs({{"axis", int64_t{1}}}), {x}).data, x.data);
  Dims dims;
  ASSERT_TRUE(Infer("Concat", MakeAttrs({{"axis", int64_t{0}}}), {{-1, 3}, {-2, 3}}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-3, 3}));
  ASSERT_TRUE(Infer("Concat", MakeAttrs({{"axis", int64_t{1}}}), {{-1, 3}, {-1, 4}}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-1, 7}));
}

// ---------------------------------------------------------------- reshape, copy

TEST(BasicReshapeTest, KeepsDataAndComputesSymbolicDims) {
  TestTensor x = testing::RandomTensor({2, 3, 4}, 61);
  TestTensor out = RunOp("Reshape", MakeAttrs({{"shape", Dims{4, 6}}}), {x});
  EXPECT_EQ(out.dims, (Dims{4, 6}));
  EXPECT_EQ(out.data, x.data);
  Dims dims;
  ASSERT_TRUE(Infer("Reshape", MakeAttrs({{"shape", Dims{-1, 12}}}), {{-1, 3, 4}}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-1, 12}));
  ASSERT_TRUE(Infer("Reshape", MakeAttrs({{"shape", Dims{-12}}}), {{-1, 3, 4}}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-12}));
  ASSERT_TRUE(Infer("Reshape", MakeAttrs({{"shape", Dims{-4, 3}}}), {{-2, 6}}, &dims).ok());
  ASSERT_TRUE(Infer("Reshape", MakeAttrs({{"shape", Dims{}}}), {{1, 1}}, &dims).ok());
  EXPECT_TRUE(dims.empty());
}

TEST(BasicReshapeTest, AliasedRunIsANoOp) {
  const OpDef* def = FindOp("Reshape");
  ASSERT_NE(def, nullptr);
  EXPECT_TRUE(def->aliases_input);
  Graph g = testing::MakeSingleOpGraph("Reshape", MakeAttrs({{"shape", Dims{6}}}),
                                       {{{2, 3}, std::vector<float>(6)}}, 1);
  auto kernel = def->create(g.nodes[0], g);
  ASSERT_TRUE(kernel.ok());
  std::vector<float> buf = {1, 2, 3, 4, 5, 6};
  TensorView in, out;
  in.data = out.data = buf.data();
  in.shape = Resolve({2, 3}, 1);
  out.shape = Resolve({6}, 1);
  KernelContext ctx;
  ctx.in = &in;
  ctx.num_in = 1;
  ctx.out = &out;
  ctx.num_out = 1;
  (*kernel)->Run(ctx);
  EXPECT_EQ(buf, (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(BasicCopyTest, CopiesData) {
  TestTensor x = testing::RandomTensor({3, 1, 7}, 71);
  TestTensor out = RunOp("Copy", {}, {x});
  EXPECT_EQ(out.dims, x.dims);
  EXPECT_EQ(out.data, x.data);
}

// ---------------------------------------------------------------- infer

TEST(BasicInferTest, SymbolicOutputDims) {
  Dims dims;
  ASSERT_TRUE(Infer("Add", {}, {{-1, 3, 4}, {4}}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-1, 3, 4}));
  ASSERT_TRUE(Infer("Mul", {}, {{-1, 3, 1}, {-1, 1, 5}}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-1, 3, 5}));
  ASSERT_TRUE(Infer("Transpose", MakeAttrs({{"perm", Dims{1, 2, 0}}}), {{-1, 3, -4}}, &dims).ok());
  EXPECT_EQ(dims, (Dims{3, -4, -1}));
  ASSERT_TRUE(Infer("Softmax", MakeAttrs({{"axis", int64_t{-1}}}), {{-1, 10}}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-1, 10}));
  ASSERT_TRUE(Infer("Sigmoid", {}, {{-2, 7}}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-2, 7}));
}

TEST(BasicInferTest, RejectsBadAxes) {
  const Dims x = {2, 3, 4};
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    ExpectRejected(op, MakeAttrs({{"axis", int64_t{3}}}), {x});
    ExpectRejected(op, MakeAttrs({{"axis", int64_t{-4}}}), {x});
    ExpectRejected(op, MakeAttrs({{"axis", 1.f}}), {x});
    ExpectRejected(op, MakeAttrs({{"legacy", int64_t{2}}}), {x});
    ExpectRejected(op, {}, {Dims{}});  // rank 0: no axis to normalize along
  }
  ExpectRejected("Concat", MakeAttrs({{"axis", int64_t{3}}}), {x, x});
  ExpectRejected("Concat", MakeAttrs({{"axis", int64_t{-1}}}), {x, x});
  ExpectRejected("Concat", {}, {x, x});  // axis is required
}

TEST(BasicInferTest, RejectsBadPerm) {
  const Dims x = {2, 3, 4};
  for (const Dims& perm :
       {Dims{0, 0, 1}, Dims{0, 1}, Dims{0, 1, 3}, Dims{-1, 0, 1}, Dims{0, 1, 2, 3}, Dims{}}) {
    SCOPED_TRACE(DimsToString(perm));
    ExpectRejected("Transpose", MakeAttrs({{"perm", perm}}), {x});
  }
  ExpectRejected("Transpose", {}, {x});
  ExpectRejected("Transpose", MakeAttrs({{"perm", std::vector<float>{1, 0}}}), {x});
}

TEST(BasicInferTest, RejectsBadReshape) {
  const Dims x = {2, 3, 4};
  ExpectRejected("Reshape", MakeAttrs({{"shape", Dims{5, 5}}}), {x});
  ExpectRejected("Reshape", MakeAttrs({{"shape", Dims{0, 24}}}), {x});
  ExpectRejected("Reshape", MakeAttrs({{"shape", Dims{-1, 24}}}), {x});  // B*24 vs 24
  ExpectRejected("Reshape", MakeAttrs({{"shape", Dims{-2, 6}}}), {{-1, 6}});
  ExpectRejected("Reshape", MakeAttrs({{"shape", Dims{-1, -1}}}), {{-1}});
  ExpectRejected("Reshape", MakeAttrs({{"shape", Dims(9, 1)}}), {{1}});
  ExpectRejected("Reshape", MakeAttrs({{"shape", Dims{std::numeric_limits<int64_t>::min(), 1}}}),
                 {x});
  ExpectRejected("Reshape", MakeAttrs({{"shape", Dims{int64_t{1} << 40, int64_t{1} << 40}}}), {x});
  ExpectRejected("Reshape", MakeAttrs({{"shape", std::string("24")}}), {x});
  ExpectRejected("Reshape", {}, {x});
}

TEST(BasicInferTest, RejectsIncompatibleOperands) {
  ExpectRejected("Add", {}, {{2, 3}, {4}});
  ExpectRejected("Sub", {}, {{-1, 3}, {4, 3}});
  ExpectRejected("Mul", {}, {{-1}, {-2}});
  ExpectRejected("Div", {}, {{2, 3}});            // one input
  ExpectRejected("Add", {}, {{2, 3}, {3}, {3}});  // three inputs
  ExpectRejected("Add", {}, {Dims(9, 1), {1}});   // rank 9
  ExpectRejected("Add", MakeAttrs({{"activation", std::string("Swish")}}), {{3}, {3}});
  ExpectRejected("Add", MakeAttrs({{"activation", int64_t{1}}}), {{3}, {3}});
  ExpectRejected("Add", MakeAttrs({{"activation_alpha", int64_t{1}}}), {{3}, {3}});
  ExpectRejected("Concat", MakeAttrs({{"axis", int64_t{1}}}), {{2, 3}, {3, 3}});
  ExpectRejected("Concat", MakeAttrs({{"axis", int64_t{1}}}), {{2, 3}, {2, 3, 1}});
  ExpectRejected("Concat", MakeAttrs({{"axis", int64_t{0}}}), {{-1, 3}, {2, 3}});
  ExpectRejected("Concat", MakeAttrs({{"axis", int64_t{0}}}), {});
  ExpectRejected("LeakyRelu", MakeAttrs({{"alpha", int64_t{1}}}), {{3}});
  ExpectRejected("Clip", MakeAttrs({{"min", std::string("0")}}), {{3}});
  ExpectRejected("Clip", MakeAttrs({{"max", std::vector<float>{1.f}}}), {{3}});
  ExpectRejected("Relu", {}, {{3}, {3}});
}

TEST(BasicInferTest, RejectsWrongDtypeAndOutputCount) {
  Graph g = testing::MakeSingleOpGraph("Relu", {}, {{{3}, {0.f}}}, 1);
  g.tensors[g.nodes[0].inputs[0]].dtype = DType::kInt8;
  std::vector<TensorDesc> outs(1);
  Status s = FindOp("Relu")->infer(g.nodes[0], g, &outs);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("int8"), std::string::npos) << s.message();
  ExpectRejected("Softmax", {}, {});
  // An absent input (index -1).
  Graph absent = testing::MakeSingleOpGraph("Add", {}, {{{2, 3}, {0.f}}, {}}, 1);
  std::vector<TensorDesc> absent_outs(1);
  EXPECT_FALSE(FindOp("Add")->infer(absent.nodes[0], absent, &absent_outs).ok());
  EXPECT_FALSE(Infer("Tanh", {}, {{3}}, nullptr, /*num_outputs=*/2).ok());
  EXPECT_FALSE(Infer("Tanh", {}, {{3}}, nullptr, /*num_outputs=*/0).ok());
}

// A hostile file may put any attribute of any type on any node: infer must answer, not crash.
TEST(BasicInferTest, SurvivesArbitraryAttributes) {
  const std::vector<AttrValue> values = {int64_t{-1},
                                         int64_t{1} << 62,
                                         std::numeric_limits<int64_t>::min(),
                                         1.5f,
                                         std::string("x"),
                                         Dims{},
                                         Dims{9, -9, 0},
                                         Dims{std::numeric_limits<int64_t>::min()},
                                         std::vector<float>{1}};
  for (const OpDef& op : BasicOps()) {
    for (const char* name : {"axis", "perm", "shape", "legacy", "alpha", "min", "max", "activation",
                             "activation_alpha"}) {
      for (const AttrValue& v : values) {
        Attrs attrs;
        attrs.Set(name, v);
        std::vector<TestTensor> in = {{{2, 3}, {0.f}}, {{-1, 3}, {0.f}}};
        Graph g = testing::MakeSingleOpGraph(op.name, attrs, in, 1);
        std::vector<TensorDesc> outs(1);
        (void)op.infer(g.nodes[0], g, &outs);
        g.nodes[0].inputs.resize(1);
        (void)op.infer(g.nodes[0], g, &outs);
      }
    }
  }
}

}  // namespace
}  // namespace edgeinfer
