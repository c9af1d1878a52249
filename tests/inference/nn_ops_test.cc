// Tests of the nn ops (Conv, Gemm, MatMul, pooling, BatchNormalization): each kernel against a
// naive reference written here with plain loops on odd shapes, known ONNX answers, symbolic
// shape inference, and infer rejecting malformed nodes with an error instead of crashing.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "inference/model.h"
#include "inference/op.h"
#include "inference/session.h"
#include "op_test_util.h"

namespace edgeinfer::testing {
namespace {

constexpr float kRelTol = 1e-4f;
constexpr float kAbsTol = 1e-4f;

// --- Shared reference pieces ---

struct ActSpec {
  std::string name;  // "", "Relu", "LeakyRelu", "Clip"
  float alpha = 0.1f;
  float min = -0.3f;
  float max = 0.4f;
};

void SetActivation(const ActSpec& act, Attrs* a) {
  if (act.name.empty()) return;
  a->Set("activation", act.name);
  a->Set("activation_alpha", act.alpha);
  a->Set("activation_min", act.min);
  a->Set("activation_max", act.max);
}

float RefActivate(const ActSpec& act, double v) {
  if (act.name == "Relu") return static_cast<float>(std::max(v, 0.0));
  if (act.name == "LeakyRelu") return static_cast<float>(v >= 0 ? v : v * act.alpha);
  if (act.name == "Clip")
    return static_cast<float>(std::min(std::max(v, double{act.min}), double{act.max}));
  return static_cast<float>(v);
}

// Runs the op and checks the output dims and values against the reference.
void ExpectOp(const std::string& op, const Attrs& attrs, const std::vector<TestTensor>& inputs,
              const Dims& want_dims, const std::vector<float>& want) {
  std::vector<TestTensor> out;
  Status st = RunSingleOp(op, attrs, inputs, &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].dims, want_dims) << DimsToString(out[0].dims);
  ExpectNear(out[0].data, want, kRelTol, kAbsTol);
}

// Only infer: the output dims, or the error.
Status InferDims(const std::string& op, const Attrs& attrs, const std::vector<TestTensor>& inputs,
                 Dims* dims) {
  Graph g = MakeSingleOpGraph(op, attrs, inputs, 1);
  const OpDef* def = FindOp(op);
  if (!def) return Status::NotFound(op);
  std::vector<TensorDesc> outs(1);
  EI_RETURN_IF_ERROR(def->infer(g.nodes[0], g, &outs));
  EXPECT_EQ(outs[0].dtype, DType::kFloat32);
  *dims = outs[0].dims;
  return Status::Ok();
}

// Infer must fail, with a message naming the node.
void ExpectRejected(const std::string& op, const Attrs& attrs,
                    const std::vector<TestTensor>& inputs, const std::string& fragment = "") {
  Dims dims;
  Status st = InferDims(op, attrs, inputs, &dims);
  ASSERT_FALSE(st.ok()) << op << " accepted, output " << DimsToString(dims);
  const std::string prefix = "node 'n0' (" + op + ")";
  EXPECT_EQ(st.message().rfind(prefix, 0), 0u) << st.message();
  if (!fragment.empty()) {
    EXPECT_NE(st.message().find(fragment), std::string::npos) << st.message();
  }
}

// A non-constant input of literal dims with no data: enough for infer.
TestTensor Desc(Dims dims) { return {std::move(dims), std::vector<float>(1), false}; }

// --- Conv ---

struct ConvCase {
  int64_t n = 1, c = 3, h = 7, w = 9, m = 4, group = 1, kh = 3, kw = 3;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
  bool one_d = false;  // X [N, C, W]: the h fields must stay 1 / 0
  bool bias = true;
  bool weight_constant = true;
  ActSpec act;
};

int64_t ConvOut(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1) {
  return (in + p0 + p1 - d * (k - 1) - 1) / s + 1;
}

std::vector<float> RefConv(const ConvCase& t, const std::vector<float>& x,
                           const std::vector<float>& w, const std::vector<float>& b) {
  const int64_t oh = ConvOut(t.h, t.kh, t.sh, t.dh, t.pt, t.pb);
  const int64_t ow = ConvOut(t.w, t.kw, t.sw, t.dw, t.pl, t.pr);
  const int64_t cg = t.c / t.group, mg = t.m / t.group;
  std::vector<float> y(t.n * t.m * oh * ow);
  for (int64_t n = 0; n < t.n; ++n)
    for (int64_t m = 0; m < t.m; ++m)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double acc = t.bias ? b[m] : 0.0;
          const int64_t g = m / mg;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t ky = 0; ky < t.kh; ++ky)
              for (int64_t kx = 0; kx < t.kw; ++kx) {
                const int64_t iy = oy * t.sh - t.pt + ky * t.dh;
                const int64_t ix = ox * t.sw - t.pl + kx * t.dw;
                if (iy < 0 || iy >= t.h || ix < 0 || ix >= t.w) continue;
                const int64_t c = g * cg + ci;
                acc += double{x[((n * t.c + c) * t.h + iy) * t.w + ix]} *
                       w[((m * cg + ci) * t.kh + ky) * t.kw + kx];
              }
          y[((n * t.m + m) * oh + oy) * ow + ox] = RefActivate(t.act, acc);
        }
  return y;
}

void CheckConv(const ConvCase& t) {
  const int64_t cg = t.c / t.group;
  std::vector<float> x = RandomFloats(t.n * t.c * t.h * t.w, 1);
  std::vector<float> w = RandomFloats(t.m * cg * t.kh * t.kw, 2);
  std::vector<float> b = RandomFloats(t.m, 3);
  Attrs a;
  if (t.one_d) {
    a.Set("kernel_shape", std::vector<int64_t>{t.kw});
    a.Set("strides", std::vector<int64_t>{t.sw});
    a.Set("dilations", std::vector<int64_t>{t.dw});
    a.Set("pads", std::vector<int64_t>{t.pl, t.pr});
  } else {
    a.Set("kernel_shape", std::vector<int64_t>{t.kh, t.kw});
    a.Set("strides", std::vector<int64_t>{t.sh, t.sw});
    a.Set("dilations", std::vector<int64_t>{t.dh, t.dw});
    a.Set("pads", std::vector<int64_t>{t.pt, t.pl, t.pb, t.pr});
  }
  a.Set("group", t.group);
  SetActivation(t.act, &a);
  const int64_t oh = ConvOut(t.h, t.kh, t.sh, t.dh, t.pt, t.pb);
  const int64_t ow = ConvOut(t.w, t.kw, t.sw, t.dw, t.pl, t.pr);
  std::vector<TestTensor> in;
  Dims want;
  if (t.one_d) {
    in = {{{t.n, t.c, t.w}, x}, {{t.m, cg, t.kw}, w, t.weight_constant}};
    want = {t.n, t.m, ow};
  } else {
    in = {{{t.n, t.c, t.h, t.w}, x}, {{t.m, cg, t.kh, t.kw}, w, t.weight_constant}};
    want = {t.n, t.m, oh, ow};
  }
  if (t.bias) in.push_back({{t.m}, b, true});
  ExpectOp("Conv", a, in, want, RefConv(t, x, w, b));
}

TEST(NnConvTest, Basic2D) { CheckConv({}); }

TEST(NnConvTest, Batch2NoBias) {
  ConvCase t;
  t.n = 2;
  t.bias = false;
  CheckConv(t);
}

TEST(NnConvTest, StridesDilationsAsymmetricPads) {
  ConvCase t;
  t.c = 5, t.h = 11, t.w = 13, t.m = 6, t.kh = 3, t.kw = 2;
  t.sh = 2, t.sw = 3, t.dh = 2, t.dw = 3;
  t.pt = 1, t.pl = 0, t.pb = 2, t.pr = 3;
  CheckConv(t);
}

TEST(NnConvTest, PadsLargerThanKernel) {
  ConvCase t;
  t.h = 4, t.w = 5, t.kh = 2, t.kw = 2;
  t.pt = 3, t.pl = 2, t.pb = 1, t.pr = 4;
  CheckConv(t);
}

TEST(NnConvTest, Conv1D) {
  ConvCase t;
  t.one_d = true;
  t.h = 1, t.kh = 1, t.w = 17, t.kw = 4, t.sw = 2, t.dw = 2, t.pl = 3, t.pr = 1;
  t.n = 2;
  CheckConv(t);
}

TEST(NnConvTest, Conv1DGroupedPointwise) {
  ConvCase t;
  t.one_d = true;
  t.h = 1, t.kh = 1, t.w = 10, t.kw = 1, t.c = 6, t.m = 9, t.group = 3;
  CheckConv(t);
}

TEST(NnConvTest, Groups) {
  ConvCase t;
  t.n = 2, t.c = 6, t.m = 9, t.group = 3, t.h = 8, t.w = 7;
  t.pt = t.pl = t.pb = t.pr = 1;
  t.sh = 2;
  CheckConv(t);
}

TEST(NnConvTest, Depthwise) {
  ConvCase t;
  t.n = 2, t.c = 5, t.m = 5, t.group = 5, t.h = 9, t.w = 11;
  t.pt = t.pl = t.pb = t.pr = 1;
  CheckConv(t);
}

TEST(NnConvTest, DepthwiseStride2Dilated) {
  ConvCase t;
  t.c = 4, t.m = 4, t.group = 4, t.h = 12, t.w = 13, t.kh = 3, t.kw = 5;
  t.sh = 2, t.sw = 2, t.dh = 2, t.dw = 1, t.pt = 2, t.pl = 1, t.pb = 0, t.pr = 2;
  t.act = {"Relu"};
  CheckConv(t);
}

TEST(NnConvTest, DepthwiseMultiplier2) {
  ConvCase t;
  t.c = 3, t.m = 6, t.group = 3, t.h = 7, t.w = 10;
  t.pt = 1, t.pl = 2, t.pb = 0, t.pr = 1;
  t.sw = 2;
  CheckConv(t);
}

TEST(NnConvTest, Depthwise1D) {
  ConvCase t;
  t.one_d = true;
  t.h = 1, t.kh = 1, t.c = 4, t.m = 8, t.group = 4, t.w = 15, t.kw = 3, t.pl = 1, t.pr = 2;
  CheckConv(t);
}

// Every path of the vectorized window kernel: 32-wide rows, 4-row groups of 8 or 4 lanes, scalar
// planes, overlapping last blocks, strides 1, 2 and gathered, leftover rows.
TEST(NnConvTest, DepthwiseEveryWidthAndStride) {
  for (int64_t w : {1, 3, 4, 6, 8, 11, 16, 31, 32, 37, 70}) {
    for (int64_t s : {1, 2, 3}) {
      SCOPED_TRACE("w=" + std::to_string(w) + " stride=" + std::to_string(s));
      ConvCase t;
      t.c = t.m = t.group = 2;
      t.h = 7, t.w = w, t.sw = s;
      t.pt = t.pl = t.pb = t.pr = 1;
      CheckConv(t);
      t.pt = t.pl = t.pb = t.pr = 0;  // no padding: the kernel reads the input directly
      if (w >= 3) CheckConv(t);
    }
  }
}

TEST(NnConvTest, SingleInputChannelIsDirect) {
  ConvCase t;  // group == C == 1: the direct kernel with multiplier M
  t.c = 1, t.m = 5, t.h = 6, t.w = 8, t.kh = 2, t.kw = 3;
  CheckConv(t);
}

TEST(NnConvTest, Pointwise) {
  ConvCase t;
  t.n = 2, t.c = 7, t.m = 5, t.h = 5, t.w = 6, t.kh = 1, t.kw = 1;
  CheckConv(t);
}

TEST(NnConvTest, PointwiseStride2UsesIm2Col) {
  ConvCase t;
  t.c = 4, t.m = 3, t.h = 7, t.w = 9, t.kh = 1, t.kw = 1, t.sh = 2, t.sw = 2;
  CheckConv(t);
}

TEST(NnConvTest, NonConstantWeight) {
  ConvCase t;
  t.weight_constant = false;
  CheckConv(t);
}

TEST(NnConvTest, FusedActivations) {
  for (const char* name : {"Relu", "LeakyRelu", "Clip"}) {
    SCOPED_TRACE(name);
    ConvCase t;
    t.act = {name};
    t.pt = t.pb = 1;
    CheckConv(t);
    ConvCase dw = t;  // depthwise applies the activation per plane
    dw.c = dw.m = dw.group = 3;
    CheckConv(dw);
  }
}

TEST(NnConvTest, KernelShapeOptional) {
  std::vector<float> x = RandomFloats(2 * 5 * 5, 4), w = RandomFloats(3 * 2 * 2 * 2, 5);
  Attrs a;
  ConvCase t;
  t.c = 2, t.m = 3, t.h = t.w = 5, t.kh = t.kw = 2, t.bias = false;
  ExpectOp("Conv", a, {{{1, 2, 5, 5}, x}, {{3, 2, 2, 2}, w, true}}, {1, 3, 4, 4},
           RefConv(t, x, w, {}));
}

// --- Conv over batches ---
//
// The GEMM convs run narrow output planes in blocks of samples (one sgemm over the columns of
// several samples, then copied into each sample's planes) and wide ones a sample at a time;
// the block is planned for the session's maximum batch and cut to the batch run. A session
// planned for 17 samples runs batches of 1, 3, 16 and 17 (a last block of one sample, blocks
// that do not divide the batch), each sample's output equal within float rounding to the
// sample run alone, and batch 17 checked against the reference as well.

// The conv of `t` as a graph with a batch dim, and its random weights.
struct BatchConv {
  std::shared_ptr<const Model> model;
  std::vector<float> w, b;
};

BatchConv MakeBatchConv(const ConvCase& t) {
  BatchConv bc;
  const int64_t cg = t.c / t.group;
  bc.w = RandomFloats(t.m * cg * t.kh * t.kw, 2);
  bc.b = RandomFloats(t.m, 3);
  Attrs a;
  if (t.one_d) {
    a.Set("strides", std::vector<int64_t>{t.sw});
    a.Set("dilations", std::vector<int64_t>{t.dw});
    a.Set("pads", std::vector<int64_t>{t.pl, t.pr});
  } else {
    a.Set("strides", std::vector<int64_t>{t.sh, t.sw});
    a.Set("dilations", std::vector<int64_t>{t.dh, t.dw});
    a.Set("pads", std::vector<int64_t>{t.pt, t.pl, t.pb, t.pr});
  }
  a.Set("group", t.group);
  SetActivation(t.act, &a);
  std::vector<TestTensor> in;
  if (t.one_d) {
    in = {{{kBatchDim, t.c, t.w}, {}}, {{t.m, cg, t.kw}, bc.w, true}};
  } else {
    in = {{{kBatchDim, t.c, t.h, t.w}, {}}, {{t.m, cg, t.kh, t.kw}, bc.w, true}};
  }
  if (t.bias) in.push_back({{t.m}, bc.b, true});
  auto model = Model::FromGraph(MakeSingleOpGraph("Conv", a, in, 1));
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (model.ok()) bc.model = *model;
  return bc;
}

std::vector<float> RunBatch(Session& s, const float* x, int batch) {
  EXPECT_TRUE(s.Run({&x, 1}, batch).ok());
  const TensorView out = s.output(0);
  return std::vector<float>(out.f32(), out.f32() + out.shape.NumElements());
}

void CheckConvBatches(ConvCase t) {
  constexpr int kMaxBatch = 17;
  const BatchConv bc = MakeBatchConv(t);
  ASSERT_NE(bc.model, nullptr);
  auto big = Session::Create(bc.model, SessionOptions{.max_batch = kMaxBatch});
  auto one = Session::Create(bc.model, SessionOptions{.max_batch = 1});
  ASSERT_TRUE(big.ok() && one.ok());
  const int64_t in_sample = t.c * t.h * t.w;
  const std::vector<float> x = RandomFloats(kMaxBatch * in_sample, 1);
  std::vector<float> alone;  // every sample run on its own
  for (int n = 0; n < kMaxBatch; ++n) {
    const std::vector<float> y = RunBatch(**one, x.data() + n * in_sample, 1);
    alone.insert(alone.end(), y.begin(), y.end());
  }
  t.n = kMaxBatch;
  ExpectNear(alone, RefConv(t, x, bc.w, bc.b), kRelTol, kAbsTol);
  const size_t out_sample = alone.size() / kMaxBatch;
  for (int batch : {1, 3, 16, 17}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    // Start a few samples in, so a block never lines up with the input's start by chance.
    const int first = kMaxBatch - batch;
    const std::vector<float> y = RunBatch(**big, x.data() + first * in_sample, batch);
    const std::vector<float> want(alone.begin() + first * out_sample, alone.end());
    ExpectNear(y, want, 1e-5f, 1e-6f);
  }
}

TEST(NnConvBatchTest, Conv1DStemStride2) {  // P = 25: blocks of 5 samples
  ConvCase t;
  t.one_d = true;
  t.h = 1, t.kh = 1, t.c = 3, t.w = 50, t.kw = 7, t.sw = 2, t.pl = t.pr = 3, t.m = 16;
  t.act = {"Relu"};
  CheckConvBatches(t);
}

TEST(NnConvBatchTest, Conv1DDilatedNoBias) {  // P = 40
  ConvCase t;
  t.one_d = true;
  t.h = 1, t.kh = 1, t.c = 16, t.w = 40, t.kw = 5, t.dw = 2, t.pl = t.pr = 4, t.m = 16;
  t.bias = false;
  CheckConvBatches(t);
}

TEST(NnConvBatchTest, Pointwise1D) {  // the block gathers the input planes
  ConvCase t;
  t.one_d = true;
  t.h = 1, t.kh = 1, t.kw = 1, t.c = 32, t.w = 33, t.m = 24;
  t.act = {"Clip"};
  CheckConvBatches(t);
}

TEST(NnConvBatchTest, GroupsStride2UnevenPads) {
  ConvCase t;
  t.one_d = true;
  t.h = 1, t.kh = 1, t.c = 12, t.m = 16, t.group = 2, t.w = 21, t.kw = 3, t.sw = 2;
  t.pl = 1, t.pr = 2;
  t.act = {"LeakyRelu"};
  CheckConvBatches(t);
}

TEST(NnConvBatchTest, TwoDNarrowPlane) {  // P = 5 x 11
  ConvCase t;
  t.c = 5, t.h = 9, t.w = 11, t.m = 9, t.sh = 2, t.pt = 1, t.pb = 2, t.pl = 0, t.pr = 1;
  CheckConvBatches(t);
}

TEST(NnConvBatchTest, TwoDWidePlaneRunsPerSample) {  // P = 12 x 12 = 144
  ConvCase t;
  t.c = 4, t.h = t.w = 12, t.m = 8, t.pt = t.pb = t.pl = t.pr = 1;
  t.act = {"Relu"};
  CheckConvBatches(t);
}

TEST(NnConvBatchTest, Depthwise) {
  ConvCase t;
  t.c = t.m = t.group = 6, t.h = t.w = 6, t.pt = t.pl = 1;
  CheckConvBatches(t);
}

// --- Gemm ---

struct GemmCase {
  int64_t m = 5, n = 7, k = 6;
  bool trans_a = false, trans_b = false;
  float alpha = 1.f, beta = 1.f;
  bool has_c = true;
  Dims c_dims = {7};
  Dims a_lead;  // when set (transA = 0), A is [a_lead..., K] and M is their product
  bool b_constant = true;
  ActSpec act;
};

void CheckGemm(const GemmCase& t) {
  std::vector<float> a = RandomFloats(t.m * t.k, 10), b = RandomFloats(t.k * t.n, 11);
  std::vector<float> c = RandomFloats(Numel(t.c_dims), 12);
  const int64_t c_rows = t.c_dims.size() == 2 ? t.c_dims[0] : 1;
  const int64_t c_cols = t.c_dims.empty() ? 1 : t.c_dims.back();
  std::vector<float> want(t.m * t.n);
  for (int64_t i = 0; i < t.m; ++i)
    for (int64_t j = 0; j < t.n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < t.k; ++p) {
        const float av = t.trans_a ? a[p * t.m + i] : a[i * t.k + p];
        const float bv = t.trans_b ? b[j * t.k + p] : b[p * t.n + j];
        acc += double{av} * bv;
      }
      acc *= t.alpha;
      if (t.has_c)
        acc += double{t.beta} * c[(c_rows == 1 ? 0 : i) * c_cols + (c_cols == 1 ? 0 : j)];
      want[i * t.n + j] = RefActivate(t.act, acc);
    }
  Attrs at;
  at.Set("transA", int64_t{t.trans_a});
  at.Set("transB", int64_t{t.trans_b});
  at.Set("alpha", t.alpha);
  at.Set("beta", t.beta);
  SetActivation(t.act, &at);
  Dims a_dims = t.trans_a ? Dims{t.k, t.m} : Dims{t.m, t.k};
  Dims want_dims = {t.m, t.n};
  if (!t.a_lead.empty()) {
    a_dims = t.a_lead;
    a_dims.push_back(t.k);
    want_dims = t.a_lead;
    want_dims.push_back(t.n);
  }
  std::vector<TestTensor> in = {{a_dims, a},
                                {t.trans_b ? Dims{t.n, t.k} : Dims{t.k, t.n}, b, t.b_constant}};
  if (t.has_c) in.push_back({t.c_dims, c, true});
  ExpectOp("Gemm", at, in, want_dims, want);
}

TEST(NnGemmTest, AllTransposeCombinations) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      SCOPED_TRACE("transA=" + std::to_string(ta) + " transB=" + std::to_string(tb));
      GemmCase t;
      t.trans_a = ta, t.trans_b = tb;
      CheckGemm(t);
      t.b_constant = false;
      CheckGemm(t);
    }
}

TEST(NnGemmTest, AlphaBeta) {
  GemmCase t;
  t.alpha = 0.5f, t.beta = -2.f;
  CheckGemm(t);
  t.beta = 0.f;  // C ignored
  CheckGemm(t);
}

TEST(NnGemmTest, EveryCBroadcastForm) {
  const Dims forms[] = {{}, {1}, {7}, {1, 7}, {5, 1}, {5, 7}, {1, 1}};
  for (const Dims& c : forms) {
    SCOPED_TRACE(DimsToString(c));
    GemmCase t;
    t.c_dims = c;
    t.beta = 1.5f;
    CheckGemm(t);
  }
}

TEST(NnGemmTest, NoC) {
  GemmCase t;
  t.has_c = false;
  t.c_dims = {};
  t.act = {"LeakyRelu"};
  CheckGemm(t);
}

TEST(NnGemmTest, GemvPathMEquals1) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      SCOPED_TRACE("transA=" + std::to_string(ta) + " transB=" + std::to_string(tb));
      GemmCase t;
      t.m = 1, t.n = 33, t.k = 19, t.c_dims = {33}, t.alpha = 0.7f, t.beta = 0.3f;
      t.trans_a = ta, t.trans_b = tb;
      t.act = {"Relu"};
      CheckGemm(t);
    }
}

TEST(NnGemmTest, GemvPathNEquals1) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      GemmCase t;
      t.m = 9, t.n = 1, t.k = 13, t.c_dims = {9, 1}, t.trans_a = ta, t.trans_b = tb;
      CheckGemm(t);
    }
}

TEST(NnGemmTest, ARank3KeepsLeadingDims) {
  GemmCase t;
  t.a_lead = {2, 3};
  t.m = 6, t.n = 4, t.k = 5, t.c_dims = {4}, t.trans_b = true;
  t.act = {"Clip"};
  CheckGemm(t);
}

TEST(NnGemmTest, ImporterLayoutTransB) {
  GemmCase t;  // constant B stored [N, K], transB = 1, bias [N]
  t.m = 3, t.n = 10, t.k = 16, t.c_dims = {10}, t.trans_b = true;
  CheckGemm(t);
}

// --- MatMul ---

// Numpy matmul with plain loops over the promoted, broadcast operands.
void RefMatMul(const Dims& ad, const std::vector<float>& a, const Dims& bd,
               const std::vector<float>& b, Dims* out_dims, std::vector<float>* out) {
  Dims a2 = ad.size() == 1 ? Dims{1, ad[0]} : ad, b2 = bd.size() == 1 ? Dims{bd[0], 1} : bd;
  const size_t rank = std::max(a2.size(), b2.size());
  a2.insert(a2.begin(), rank - a2.size(), 1);
  b2.insert(b2.begin(), rank - b2.size(), 1);
  const int64_t m = a2[rank - 2], k = a2[rank - 1], n = b2[rank - 1];
  Dims batch(rank - 2);
  for (size_t i = 0; i + 2 < rank; ++i) batch[i] = std::max(a2[i], b2[i]);
  const int64_t batches = Numel(batch);
  out->assign(batches * m * n, 0.f);
  for (int64_t bi = 0; bi < batches; ++bi) {
    int64_t a_index = 0, b_index = 0, rest = bi, a_mul = 1, b_mul = 1;
    for (int64_t i = static_cast<int64_t>(batch.size()) - 1; i >= 0; --i) {
      const int64_t coord = rest % batch[i];
      rest /= batch[i];
      a_index += (a2[i] == 1 ? 0 : coord) * a_mul;
      b_index += (b2[i] == 1 ? 0 : coord) * b_mul;
      a_mul *= a2[i];
      b_mul *= b2[i];
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += double{a[(a_index * m + i) * k + p]} * b[(b_index * k + p) * n + j];
        (*out)[(bi * m + i) * n + j] = static_cast<float>(acc);
      }
  }
  *out_dims = batch;
  if (ad.size() >= 2) out_dims->push_back(m);
  if (bd.size() >= 2) out_dims->push_back(n);
}

void CheckMatMul(const Dims& ad, const Dims& bd, bool b_constant = false) {
  SCOPED_TRACE(DimsToString(ad) + " x " + DimsToString(bd));
  std::vector<float> a = RandomFloats(Numel(ad), 20), b = RandomFloats(Numel(bd), 21);
  Dims want_dims;
  std::vector<float> want;
  RefMatMul(ad, a, bd, b, &want_dims, &want);
  ExpectOp("MatMul", {}, {{ad, a}, {bd, b, b_constant}}, want_dims, want);
}

TEST(NnMatMulTest, TwoD) {
  CheckMatMul({5, 7}, {7, 3});
  CheckMatMul({1, 7}, {7, 9}, true);
}
TEST(NnMatMulTest, VectorTimesMatrix) { CheckMatMul({7}, {7, 5}); }
TEST(NnMatMulTest, MatrixTimesVector) { CheckMatMul({6, 7}, {7}); }
TEST(NnMatMulTest, VectorTimesVector) { CheckMatMul({9}, {9}); }
TEST(NnMatMulTest, Batch3DTimes2D) { CheckMatMul({3, 5, 7}, {7, 4}, true); }
TEST(NnMatMulTest, Batch2DTimes3D) { CheckMatMul({5, 7}, {3, 7, 4}); }
TEST(NnMatMulTest, VectorTimesBatch) { CheckMatMul({7}, {2, 7, 4}); }
TEST(NnMatMulTest, Batch4DTimes4D) { CheckMatMul({2, 3, 4, 5}, {2, 3, 5, 6}); }
TEST(NnMatMulTest, BroadcastBatchDims) {
  CheckMatMul({2, 1, 4, 5}, {1, 3, 5, 6});
  CheckMatMul({3, 4, 5}, {2, 1, 5, 6});
  CheckMatMul({1, 4, 5}, {1, 5, 6});
}

TEST(NnMatMulTest, FusedActivation) {
  std::vector<float> a = RandomFloats(4 * 6, 22), b = RandomFloats(6 * 3, 23);
  Dims dims;
  std::vector<float> want;
  RefMatMul({4, 6}, a, {6, 3}, b, &dims, &want);
  for (float& v : want) v = std::max(v, 0.f);
  Attrs at;
  at.Set("activation", std::string("Relu"));
  ExpectOp("MatMul", at, {{{4, 6}, a}, {{6, 3}, b}}, dims, want);
}

// --- Windowed pools ---

struct PoolCase {
  int64_t n = 1, c = 2, h = 7, w = 8, kh = 3, kw = 3;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
  bool ceil_mode = false, count_include_pad = false, one_d = false;
};

// ONNX output size, written independently of the implementation's.
int64_t PoolOut(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1, bool ceil) {
  const double len = static_cast<double>(in + p0 + p1 - d * (k - 1) - 1) / s;
  int64_t out = static_cast<int64_t>(ceil ? std::ceil(len) : std::floor(len)) + 1;
  if (ceil && (out - 1) * s >= in + p0) --out;
  return out;
}

// ONNX Runtime's pooling loops.
std::vector<float> RefPool(const PoolCase& t, bool average, const std::vector<float>& x,
                           Dims* dims) {
  const int64_t oh = PoolOut(t.h, t.kh, t.sh, t.dh, t.pt, t.pb, t.ceil_mode);
  const int64_t ow = PoolOut(t.w, t.kw, t.sw, t.dw, t.pl, t.pr, t.ceil_mode);
  *dims = t.one_d ? Dims{t.n, t.c, ow} : Dims{t.n, t.c, oh, ow};
  std::vector<float> y;
  for (int64_t p = 0; p < t.n * t.c; ++p)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        const float* plane = x.data() + p * t.h * t.w;
        if (!average) {
          float best = std::numeric_limits<float>::lowest();
          for (int64_t ky = 0; ky < t.kh; ++ky)
            for (int64_t kx = 0; kx < t.kw; ++kx) {
              const int64_t iy = oy * t.sh - t.pt + ky * t.dh, ix = ox * t.sw - t.pl + kx * t.dw;
              if (iy >= 0 && iy < t.h && ix >= 0 && ix < t.w)
                best = std::max(best, plane[iy * t.w + ix]);
            }
          y.push_back(best);
          continue;
        }
        int64_t y0 = oy * t.sh - t.pt, x0 = ox * t.sw - t.pl;
        int64_t y1 = std::min(y0 + t.kh, t.h + t.pb), x1 = std::min(x0 + t.kw, t.w + t.pr);
        const int64_t padded_count = (y1 - y0) * (x1 - x0);
        y0 = std::max<int64_t>(y0, 0), x0 = std::max<int64_t>(x0, 0);
        y1 = std::min(y1, t.h), x1 = std::min(x1, t.w);
        double sum = 0;
        for (int64_t iy = y0; iy < y1; ++iy)
          for (int64_t ix = x0; ix < x1; ++ix) sum += plane[iy * t.w + ix];
        y.push_back(
            static_cast<float>(sum / (t.count_include_pad ? padded_count : (y1 - y0) * (x1 - x0))));
      }
  return y;
}

Attrs PoolAttrs(const PoolCase& t, bool average) {
  Attrs a;
  if (t.one_d) {
    a.Set("kernel_shape", std::vector<int64_t>{t.kw});
    a.Set("strides", std::vector<int64_t>{t.sw});
    a.Set("pads", std::vector<int64_t>{t.pl, t.pr});
    if (!average) a.Set("dilations", std::vector<int64_t>{t.dw});
  } else {
    a.Set("kernel_shape", std::vector<int64_t>{t.kh, t.kw});
    a.Set("strides", std::vector<int64_t>{t.sh, t.sw});
    a.Set("pads", std::vector<int64_t>{t.pt, t.pl, t.pb, t.pr});
    if (!average) a.Set("dilations", std::vector<int64_t>{t.dh, t.dw});
  }
  a.Set("ceil_mode", int64_t{t.ceil_mode});
  if (average) a.Set("count_include_pad", int64_t{t.count_include_pad});
  return a;
}

void CheckPool(const PoolCase& t, bool average) {
  SCOPED_TRACE(average ? "AveragePool" : "MaxPool");
  std::vector<float> x = RandomFloats(t.n * t.c * t.h * t.w, 30);
  Dims want_dims;
  std::vector<float> want = RefPool(t, average, x, &want_dims);
  Dims x_dims = t.one_d ? Dims{t.n, t.c, t.w} : Dims{t.n, t.c, t.h, t.w};
  ExpectOp(average ? "AveragePool" : "MaxPool", PoolAttrs(t, average), {{x_dims, x}}, want_dims,
           want);
}

void CheckBothPools(const PoolCase& t) {
  CheckPool(t, false);
  PoolCase with_pad = t;
  with_pad.count_include_pad = true;
  CheckPool(t, true);
  CheckPool(with_pad, true);
}

TEST(NnPoolTest, Plain) { CheckBothPools({}); }

TEST(NnPoolTest, StridesAndAsymmetricPads) {
  PoolCase t;
  t.n = 2, t.c = 3, t.h = 9, t.w = 11, t.kh = 3, t.kw = 4;
  t.sh = 2, t.sw = 3, t.pt = 1, t.pl = 2, t.pb = 2, t.pr = 0;
  CheckBothPools(t);
}

TEST(NnPoolTest, CeilMode) {
  PoolCase t;
  t.h = 8, t.w = 10, t.kh = 3, t.kw = 3, t.sh = 2, t.sw = 2, t.ceil_mode = true;
  CheckBothPools(t);
  t.pt = 1, t.pl = 1, t.pb = 1, t.pr = 2;
  CheckBothPools(t);
}

TEST(NnPoolTest, CeilModeDropsWindowStartingInRightPad) {
  // H: in 5, k 2, s 3, pads 0/1: ceil gives 3 windows, the 3rd would start at 6 >= 5 + 0.
  // W: in 8, k 3, s 3, pads 0/2: ceil gives 4 windows, the 4th would start at 9 >= 8 + 0.
  PoolCase t;
  t.h = 5, t.w = 8, t.kh = 2, t.kw = 3, t.sh = 3, t.sw = 3, t.pb = 1, t.pr = 2;
  t.ceil_mode = true;
  Dims dims;
  RefPool(t, false, std::vector<float>(2 * 5 * 8), &dims);
  EXPECT_EQ(dims, (Dims{1, 2, 2, 3}));
  CheckBothPools(t);
}

TEST(NnPoolTest, MaxPoolDilation) {
  PoolCase t;
  t.h = 10, t.w = 12, t.kh = 2, t.kw = 3, t.dh = 3, t.dw = 2, t.sh = 1, t.sw = 2;
  t.pt = 1, t.pl = 2, t.pb = 0, t.pr = 1;
  CheckPool(t, false);
  t.ceil_mode = true;
  CheckPool(t, false);
}

TEST(NnPoolTest, Pool1D) {
  PoolCase t;
  t.one_d = true;
  t.h = 1, t.kh = 1, t.w = 13, t.kw = 4, t.sw = 3, t.pl = 1, t.pr = 2, t.ceil_mode = true;
  CheckBothPools(t);
  t.dw = 2;
  CheckPool(t, false);
}

TEST(NnPoolTest, EveryWidthAndStride) {
  for (int64_t w : {2, 4, 7, 9, 16, 33, 66, 75}) {
    for (int64_t s : {1, 2, 3}) {
      SCOPED_TRACE("w=" + std::to_string(w) + " stride=" + std::to_string(s));
      PoolCase t;
      t.h = 9, t.w = w, t.kh = 2, t.kw = 3, t.sh = 2, t.sw = s;
      t.pt = t.pl = 1, t.pb = 0, t.pr = 2;
      t.ceil_mode = s == 2;
      CheckBothPools(t);
    }
  }
}

TEST(NnPoolTest, PaddingNeverWinsMax) {
  std::vector<float> x(9, -5.f);
  Attrs a;
  a.Set("kernel_shape", std::vector<int64_t>{2, 2});
  a.Set("pads", std::vector<int64_t>{1, 1, 1, 1});
  ExpectOp("MaxPool", a, {{{1, 1, 3, 3}, x}}, {1, 1, 4, 4}, std::vector<float>(16, -5.f));
}

// Known answers from the ONNX operator tests (maxpool_2d_ceil, averagepool_2d_ceil).
TEST(NnPoolTest, OnnxCeilExamples) {
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = static_cast<float>(i + 1);
  Attrs a;
  a.Set("kernel_shape", std::vector<int64_t>{3, 3});
  a.Set("strides", std::vector<int64_t>{2, 2});
  a.Set("ceil_mode", int64_t{1});
  ExpectOp("MaxPool", a, {{{1, 1, 4, 4}, x}}, {1, 1, 2, 2}, {11, 12, 15, 16});
  ExpectOp("AveragePool", a, {{{1, 1, 4, 4}, x}}, {1, 1, 2, 2}, {6, 7.5, 12, 13.5});
}

// --- Global pools ---

TEST(NnGlobalPoolTest, TwoDAndOneD) {
  for (const Dims& dims : {Dims{2, 3, 5, 7}, Dims{2, 3, 37}, Dims{1, 2, 1, 1}}) {
    SCOPED_TRACE(DimsToString(dims));
    std::vector<float> x = RandomFloats(Numel(dims), 40);
    const int64_t plane = Numel(dims) / (dims[0] * dims[1]);
    std::vector<float> mean, max;
    for (int64_t p = 0; p < dims[0] * dims[1]; ++p) {
      double s = 0;
      float m = x[p * plane];
      for (int64_t i = 0; i < plane; ++i) {
        s += x[p * plane + i];
        m = std::max(m, x[p * plane + i]);
      }
      mean.push_back(static_cast<float>(s / plane));
      max.push_back(m);
    }
    Dims out(dims.size(), 1);
    out[0] = dims[0], out[1] = dims[1];
    ExpectOp("GlobalAveragePool", {}, {{dims, x}}, out, mean);
    ExpectOp("GlobalMaxPool", {}, {{dims, x}}, out, max);
  }
}

// --- BatchNormalization ---

TEST(NnBatchNormTest, MatchesFormula) {
  for (const Dims& dims : {Dims{2, 3, 4, 5}, Dims{3, 4}, Dims{1, 2, 9}}) {
    SCOPED_TRACE(DimsToString(dims));
    const int64_t c = dims[1], plane = Numel(dims) / (dims[0] * c);
    std::vector<float> x = RandomFloats(Numel(dims), 50), scale = RandomFloats(c, 51);
    std::vector<float> bias = RandomFloats(c, 52), mean = RandomFloats(c, 53);
    std::vector<float> var = RandomFloats(c, 54, 0.1f, 2.f);
    const float eps = 1e-3f;
    ActSpec act{"LeakyRelu"};
    std::vector<float> want(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const int64_t ch = (static_cast<int64_t>(i) / plane) % c;
      want[i] = RefActivate(
          act, (x[i] - mean[ch]) / std::sqrt(double{var[ch]} + eps) * scale[ch] + bias[ch]);
    }
    Attrs a;
    a.Set("epsilon", eps);
    SetActivation(act, &a);
    ExpectOp(
        "BatchNormalization", a,
        {{dims, x}, {{c}, scale, true}, {{c}, bias, true}, {{c}, mean, true}, {{c}, var, true}},
        dims, want);
  }
}

// --- Symbolic shape inference ---

TEST(NnInferTest, ConvKeepsSymbolicBatch) {
  Attrs a;
  a.Set("strides", std::vector<int64_t>{2, 2});
  a.Set("pads", std::vector<int64_t>{1, 1, 1, 1});
  Dims dims;
  ASSERT_TRUE(InferDims("Conv", a, {Desc({-1, 3, 224, 224}), Desc({8, 3, 3, 3})}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-1, 8, 112, 112}));
}

TEST(NnInferTest, GemmAndMatMulKeepLeadingDims) {
  Attrs t;
  t.Set("transB", int64_t{1});
  Dims dims;
  ASSERT_TRUE(InferDims("Gemm", t, {Desc({-1, 7, 16}), Desc({10, 16}), Desc({10})}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-1, 7, 10}));
  ASSERT_TRUE(InferDims("Gemm", {}, {Desc({-2, 16}), Desc({16, 4}), Desc({-2, 4})}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-2, 4}));
  ASSERT_TRUE(InferDims("MatMul", {}, {Desc({-1, 4, 5, 6}), Desc({6, 3})}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-1, 4, 5, 3}));
  ASSERT_TRUE(InferDims("MatMul", {}, {Desc({-1, 1, 5, 6}), Desc({1, 4, 6, 3})}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-1, 4, 5, 3}));
  ASSERT_TRUE(InferDims("MatMul", {}, {Desc({6}), Desc({-1, 6, 3})}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-1, 3}));
}

TEST(NnInferTest, PoolsKeepSymbolicBatch) {
  Attrs a;
  a.Set("kernel_shape", std::vector<int64_t>{3});
  a.Set("strides", std::vector<int64_t>{2});
  Dims dims;
  ASSERT_TRUE(InferDims("MaxPool", a, {Desc({-1, 4, 11})}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-1, 4, 5}));
  ASSERT_TRUE(InferDims("GlobalAveragePool", {}, {Desc({-1, 4, 3, 3})}, &dims).ok());
  EXPECT_EQ(dims, (Dims{-1, 4, 1, 1}));
}

// --- Infer rejections ---

std::vector<TestTensor> ConvInputs(Dims x = {1, 6, 8, 8}, Dims w = {4, 6, 3, 3}) {
  return {Desc(std::move(x)), Desc(std::move(w))};
}

TEST(NnRejectTest, ConvBadGroup) {
  Attrs a;
  a.Set("group", int64_t{4});
  ExpectRejected("Conv", a, ConvInputs({1, 6, 8, 8}, {4, 1, 3, 3}), "group");
  a.Set("group", int64_t{0});
  ExpectRejected("Conv", a, ConvInputs(), "group");
  a.Set("group", int64_t{-3});
  ExpectRejected("Conv", a, ConvInputs(), "group");
  a.Set("group", int64_t{2});  // W must have C/group = 3 input channels
  ExpectRejected("Conv", a, ConvInputs({1, 6, 8, 8}, {4, 6, 3, 3}), "C/group");
  a.Set("group", 2.f);
  ExpectRejected("Conv", a, ConvInputs(), "must be an int");
}

TEST(NnRejectTest, ConvWrongRanks) {
  ExpectRejected("Conv", {}, ConvInputs({1, 6, 8, 8, 8}, {4, 6, 3, 3, 3}));
  ExpectRejected("Conv", {}, ConvInputs({6, 8}, {4, 6}));
  ExpectRejected("Conv", {}, ConvInputs({1, 6, 8, 8}, {4, 6, 3}), "rank");
  ExpectRejected("Conv", {}, {Desc({1, 6, 8, 8}), Desc({4, 6, 3, 3}), Desc({5})}, "bias");
  ExpectRejected("Conv", {}, {Desc({1, 6, 8, 8})}, "inputs");
  ExpectRejected("Conv", {}, ConvInputs({1, -1, 8, 8}, {4, 6, 3, 3}), "literal");
  ExpectRejected("Conv", {}, ConvInputs({1, 6, 8, 8}, {4, 6, 3, -1}), "literal");
}

TEST(NnRejectTest, ConvBadWindowAttributes) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  const std::vector<std::pair<const char*, std::vector<int64_t>>> bad = {
      {"strides", {0, 1}},         {"strides", {1}},          {"strides", {-1, 1}},
      {"strides", {big, 1}},       {"dilations", {1, 0}},     {"pads", {0, 0, -1, 0}},
      {"pads", {0, 0, 0}},         {"pads", {big, 0, 0, 0}},  {"kernel_shape", {3, 2}},
      {"kernel_shape", {3, 3, 3}}, {"dilations", {big, big}},
  };
  for (const auto& [name, value] : bad) {
    SCOPED_TRACE(name);
    Attrs a;
    a.Set(name, value);
    ExpectRejected("Conv", a, ConvInputs(), name);
  }
  Attrs a;
  a.Set("dilations", std::vector<int64_t>{5, 5});  // window span 11 > 8
  ExpectRejected("Conv", a, ConvInputs(), "larger than the padded input");
  Attrs s;
  s.Set("strides", int64_t{2});
  ExpectRejected("Conv", s, ConvInputs(), "list of ints");
  // Huge pads and strides on both axes: a valid output, but no plane could hold the padding.
  Attrs huge;
  huge.Set("strides", std::vector<int64_t>{(1 << 30) + 1, (1 << 30) + 1});
  huge.Set("pads", std::vector<int64_t>{1 << 30, 1 << 30, 1 << 30, 1 << 30});
  ExpectRejected("Conv", huge, ConvInputs({1, 2, 1, 1}, {2, 2, 1, 1}), "2^31");
  Attrs ap;
  ap.Set("auto_pad", std::string("SAME_UPPER"));
  ExpectRejected("Conv", ap, ConvInputs(), "auto_pad");
}

TEST(NnRejectTest, BadActivationAndDtype) {
  Attrs a;
  a.Set("activation", std::string("Swish"));
  ExpectRejected("Conv", a, ConvInputs(), "Swish");
  Attrs b;
  b.Set("activation", std::string("LeakyRelu"));
  b.Set("activation_alpha", int64_t{1});
  ExpectRejected("Gemm", b, {Desc({2, 3}), Desc({3, 4})}, "activation_alpha");
  Graph g = MakeSingleOpGraph("MatMul", {}, {Desc({2, 3}), Desc({3, 4})}, 1);
  g.tensors[g.nodes[0].inputs[0]].dtype = DType::kInt8;
  std::vector<TensorDesc> outs(1);
  Status st = FindOp("MatMul")->infer(g.nodes[0], g, &outs);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("float32"), std::string::npos) << st.message();
  Attrs pool;
  pool.Set("kernel_shape", std::vector<int64_t>{2, 2});
  pool.Set("activation", std::string("Relu"));
  ExpectRejected("MaxPool", pool, {Desc({1, 2, 4, 4})}, "activation");
}

TEST(NnRejectTest, GemmShapes) {
  ExpectRejected("Gemm", {}, {Desc({2, 3}), Desc({4, 5})}, "K mismatch");
  Attrs tb;
  tb.Set("transB", int64_t{1});
  ExpectRejected("Gemm", tb, {Desc({2, 3}), Desc({3, 4})}, "K mismatch");
  Attrs ta;
  ta.Set("transA", int64_t{1});
  ExpectRejected("Gemm", ta, {Desc({2, 3, 4}), Desc({4, 5})}, "2-D");
  Attrs t2;
  t2.Set("transA", int64_t{2});
  ExpectRejected("Gemm", t2, {Desc({2, 3}), Desc({3, 4})}, "transA");
  ExpectRejected("Gemm", {}, {Desc({3}), Desc({3, 4})}, "2-D");
  ExpectRejected("Gemm", {}, {Desc({2, 3}), Desc({2, 3, 4})}, "2-D");
  ExpectRejected("Gemm", {}, {Desc({2, -1}), Desc({-1, 4})}, "literal");
  for (const Dims& c : {Dims{3}, Dims{2, 3}, Dims{3, 4}, Dims{1, 2, 4}, Dims{-1, 4}}) {
    SCOPED_TRACE(DimsToString(c));
    ExpectRejected("Gemm", {}, {Desc({2, 3}), Desc({3, 4}), Desc(c)}, "broadcast");
  }
  ExpectRejected("Gemm", {}, {Desc({-1, 2, 3}), Desc({3, 4}), Desc({-3, 4})}, "broadcast");
  // Two batch dims flatten into an M no single dim can state; a per-row C cannot match it.
  ExpectRejected("Gemm", {}, {Desc({-1, -1, 3}), Desc({3, 4}), Desc({-1, 4})}, "broadcast");
}

TEST(NnRejectTest, MatMulShapes) {
  ExpectRejected("MatMul", {}, {Desc({2, 3}), Desc({4, 5})}, "K mismatch");
  ExpectRejected("MatMul", {}, {Desc({3}), Desc({4})}, "K mismatch");
  ExpectRejected("MatMul", {}, {Desc({2, 2, 3}), Desc({3, 3, 4})}, "broadcast");
  ExpectRejected("MatMul", {}, {Desc({-1, 2, 3}), Desc({4, 3, 4})}, "broadcast");
  ExpectRejected("MatMul", {}, {Desc({2, 3})}, "inputs");
  ExpectRejected("MatMul", {}, {Desc({}), Desc({3, 4})});
}

TEST(NnRejectTest, Pools) {
  Attrs none;
  ExpectRejected("MaxPool", none, {Desc({1, 2, 4, 4})}, "kernel_shape");
  Attrs a;
  a.Set("kernel_shape", std::vector<int64_t>{2, 2});
  a.Set("pads", std::vector<int64_t>{2, 0, 0, 0});
  ExpectRejected("MaxPool", a, {Desc({1, 2, 4, 4})}, "pads");
  a.Set("pads", std::vector<int64_t>{0, 0, 0, 0});
  a.Set("strides", std::vector<int64_t>{0, 1});
  ExpectRejected("AveragePool", a, {Desc({1, 2, 4, 4})}, "strides");
  a.Set("strides", std::vector<int64_t>{1, 1});
  a.Set("ceil_mode", int64_t{3});
  ExpectRejected("MaxPool", a, {Desc({1, 2, 4, 4})}, "ceil_mode");
  a.Set("ceil_mode", int64_t{0});
  a.Set("dilations", std::vector<int64_t>{2, 2});
  ExpectRejected("AveragePool", a, {Desc({1, 2, 4, 4})}, "dilations");
  a.Set("dilations", std::vector<int64_t>{1, 1});
  a.Set("kernel_shape", std::vector<int64_t>{5, 2});
  ExpectRejected("MaxPool", a, {Desc({1, 2, 4, 4})}, "larger than the padded input");
  a.Set("kernel_shape", std::vector<int64_t>{2, 2});
  ExpectRejected("MaxPool", a, {Desc({1, 2, 4})}, "kernel_shape");
  ExpectRejected("MaxPool", a, {Desc({2, 4})}, "input");
  ExpectRejected("GlobalMaxPool", {}, {Desc({2, 4})}, "input");
  ExpectRejected("GlobalAveragePool", {}, {Desc({2, 4, -1})}, "literal");
  ExpectRejected("GlobalAveragePool", {}, {Desc({2, 4, 0})}, "literal");
}

TEST(NnRejectTest, BatchNorm) {
  auto inputs = [](Dims x, int64_t c) {
    return std::vector<TestTensor>{Desc(x), Desc({c}), Desc({c}), Desc({c}), Desc({c})};
  };
  ExpectRejected("BatchNormalization", {}, inputs({2, 3, 4}, 4), "scale");
  ExpectRejected("BatchNormalization", {}, inputs({2}, 2), "input");
  ExpectRejected("BatchNormalization", {}, {Desc({2, 3}), Desc({3})}, "inputs");
  Attrs a;
  a.Set("epsilon", -1.f);
  ExpectRejected("BatchNormalization", a, inputs({2, 3}, 3), "epsilon");
}

}  // namespace
}  // namespace edgeinfer::testing
