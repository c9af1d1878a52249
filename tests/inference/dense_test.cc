// Dense: the packed-weight kernels (scalar reference and AVX2 against a naive triple loop), the
// op's validation, and the PackDenseWeights pass (outputs identical to the unpacked graph).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "inference/eim_writer.h"
#include "inference/kernels/sgemm_packed.h"
#include "inference/model.h"
#include "inference/pack_weights.h"
#include "inference/session.h"
#include "op_test_util.h"

namespace edgeinfer {
namespace {

using testing::RandomFloats;

// ---- Kernels ----

std::vector<float> Pack(const std::vector<float>& w, int64_t n, int64_t k) {
  std::vector<float> p(static_cast<size_t>(DensePackedElements(n, k)), std::nanf(""));
  PackDensePanels(w.data(), n, k, p.data());
  return p;
}

// y = x W^T + bias in double, then the activation (Activation::Apply) row by row.
std::vector<float> Naive(const std::vector<float>& x, const std::vector<float>& w,
                         const float* bias, int64_t m, int64_t n, int64_t k,
                         const Activation* act) {
  std::vector<float> y(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = bias != nullptr ? bias[j] : 0.0;
      for (int64_t kk = 0; kk < k; ++kk) acc += double(x[i * k + kk]) * w[j * k + kk];
      y[i * n + j] = static_cast<float>(acc);
    }
    if (act != nullptr) act->Apply(y.data() + i * n, static_cast<size_t>(n));
  }
  return y;
}

// Runs `fn` with y poisoned and a guard after it; checks the guard is untouched.
std::vector<float> RunKernel(DenseFn fn, const DenseArgs& base, int64_t m, int64_t n) {
  constexpr int kGuard = 37;
  std::vector<float> y(static_cast<size_t>(m * n) + kGuard, std::nanf(""));
  for (int i = 0; i < kGuard; ++i) y[m * n + i] = 12345.f;
  DenseArgs a = base;
  a.y = y.data();
  fn(a);
  for (int i = 0; i < kGuard; ++i) EXPECT_EQ(y[m * n + i], 12345.f) << "wrote past y";
  y.resize(static_cast<size_t>(m * n));
  return y;
}

std::vector<DenseFn> KernelsUnderTest() {
  std::vector<DenseFn> fns = {dense_scalar::Dense};
#if defined(__x86_64__)
  if (quant::CpuSupports(quant::CpuLevel::kAvx2)) fns.push_back(dense_avx2::Dense);
#endif
  return fns;
}

// Tolerance for float sums of k products of values in [-1, 1] against the double result.
void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, int64_t k,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  const float tol = 1e-5f * static_cast<float>(k + 1);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol + 1e-5f * std::abs(want[i])) << what << " at " << i;
  }
}

Activation MakeAct(Activation::Kind kind) {
  Activation a;
  a.kind = kind;
  a.alpha = 0.2f;
  a.min = -0.25f;
  a.max = 0.5f;
  return a;
}

void CheckShape(int64_t m, int64_t n, int64_t k, bool with_bias, Activation::Kind kind,
                uint32_t seed) {
  const std::vector<float> x = RandomFloats(static_cast<size_t>(m * k), seed);
  const std::vector<float> w = RandomFloats(static_cast<size_t>(n * k), seed + 1);
  const std::vector<float> bias = RandomFloats(static_cast<size_t>(n), seed + 2);
  const std::vector<float> packed = Pack(w, n, k);
  const Activation act = MakeAct(kind);
  DenseArgs a;
  a.m = m;
  a.n = n;
  a.k = k;
  a.x = x.data();
  a.w = packed.data();
  a.bias = with_bias ? bias.data() : nullptr;
  a.act = act.is_none() ? nullptr : &act;
  const std::vector<float> want = Naive(x, w, a.bias, m, n, k, a.act);
  const std::vector<float> ref = RunKernel(dense_scalar::Dense, a, m, n);
  const std::string what = "M=" + std::to_string(m) + " N=" + std::to_string(n) +
                           " K=" + std::to_string(k) + (with_bias ? " bias " : " ") +
                           Activation::Name(kind);
  ExpectClose(ref, want, k, "scalar " + what);
  for (DenseFn fn : KernelsUnderTest()) {
    if (fn == dense_scalar::Dense) continue;
    const std::vector<float> got = RunKernel(fn, a, m, n);
    ExpectClose(got, want, k, "avx2 vs naive " + what);
    ExpectClose(got, ref, k, "avx2 vs scalar " + what);
  }
}

TEST(DenseKernelTest, PackLayoutIsPanelsOf16ZeroPadded) {
  const int64_t n = 17, k = 3;
  std::vector<float> w(n * k);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t kk = 0; kk < k; ++kk) w[j * k + kk] = static_cast<float>(100 * j + kk);
  const std::vector<float> p = Pack(w, n, k);
  ASSERT_EQ(p.size(), 2u * 3 * 16);
  EXPECT_EQ(DensePanels(16), 1);
  EXPECT_EQ(DensePanels(17), 2);
  for (int64_t panel = 0; panel < 2; ++panel)
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < 16; ++j) {
        const int64_t col = panel * 16 + j;
        const float want = col < n ? static_cast<float>(100 * col + kk) : 0.f;
        EXPECT_EQ(p[(panel * k + kk) * 16 + j], want) << panel << " " << kk << " " << j;
      }
}

TEST(DenseKernelTest, OddShapesMatchNaive) {
  const int64_t ms[] = {1, 2, 3, 5, 6, 7, 13, 16, 17, 64};
  const int64_t ks[] = {1, 3, 15, 16, 17, 100, 784};
  const int64_t ns[] = {1, 5, 15, 16, 17, 33, 2048};
  uint32_t seed = 1;
  int cases = 0;
  for (int64_t m : ms)
    for (int64_t k : ks)
      for (int64_t n : ns) {
        // Bounded: the big corners only at the sizes the example model runs.
        if (m * n * k > 2'000'000 && !(k == 784 && n == 2048 && (m == 1 || m == 16))) continue;
        const bool bias = (seed % 2) == 0;
        CheckShape(m, n, k, bias, bias ? Activation::Kind::kRelu : Activation::Kind::kNone, seed++);
        ++cases;
        if (::testing::Test::HasFatalFailure()) return;
      }
  EXPECT_GT(cases, 350);
}

TEST(DenseKernelTest, LongKRunsInChunks) {
  // K > 1024 is split into chunks whose sums go back through y (M > 1); M = 1 runs it whole.
  // M = 64 also spans two blocks of X rows at these K.
  for (int64_t m : {1, 7, 16, 64})
    for (int64_t n : {5, 33}) CheckShape(m, n, 2500, true, Activation::Kind::kTanh, 77);
  CheckShape(3, 17, 1025, false, Activation::Kind::kClip, 78);
  CheckShape(16, 40, 4096, true, Activation::Kind::kRelu, 79);
}

TEST(DenseKernelTest, EveryActivationWithAndWithoutBias) {
  using K = Activation::Kind;
  for (K kind : {K::kNone, K::kRelu, K::kLeakyRelu, K::kSigmoid, K::kTanh, K::kClip})
    for (bool bias : {false, true})
      for (int64_t m : {1, 5, 16}) CheckShape(m, 33, 17, bias, kind, 200 + m);
}

// The in-register activations give exactly Activation::Apply's results, NaN and -0 included.
TEST(DenseKernelTest, FusedActivationIsBitExactWithApply) {
  const int64_t m = 7, n = 21, k = 5;
  std::vector<float> x = RandomFloats(m * k, 9);
  x[2 * k + 1] = std::nanf("");  // row 2 all NaN
  std::vector<float> w = RandomFloats(n * k, 10);
  for (int64_t kk = 0; kk < k; ++kk) w[3 * k + kk] = 0.f;  // column 3: bias only
  std::vector<float> bias = RandomFloats(n, 11);
  bias[3] = -0.f;
  bias[4] = -0.25f;  // Clip bound
  const std::vector<float> packed = Pack(w, n, k);
  using K = Activation::Kind;
  for (DenseFn fn : KernelsUnderTest()) {
    for (K kind : {K::kRelu, K::kLeakyRelu, K::kClip, K::kSigmoid, K::kTanh}) {
      const Activation act = MakeAct(kind);
      DenseArgs a;
      a.m = m;
      a.n = n;
      a.k = k;
      a.x = x.data();
      a.w = packed.data();
      a.bias = bias.data();
      std::vector<float> want = RunKernel(fn, a, m, n);
      act.Apply(want.data(), want.size());
      a.act = &act;
      const std::vector<float> got = RunKernel(fn, a, m, n);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(std::memcmp(&got[i], &want[i], 4), 0)
            << Activation::Name(kind) << " at " << i << ": " << got[i] << " vs " << want[i];
      }
      EXPECT_TRUE(std::isnan(got[2 * n]));
    }
  }
}

TEST(DenseKernelTest, SelectByLevel) {
  EXPECT_EQ(SelectDenseKernel(quant::CpuLevel::kScalar), &dense_scalar::Dense);
#if defined(__x86_64__)
  EXPECT_EQ(SelectDenseKernel(quant::CpuLevel::kAvx2), &dense_avx2::Dense);
  EXPECT_EQ(SelectDenseKernel(quant::CpuLevel::kAvx512Vnni), &dense_avx2::Dense);
#endif
}

TEST(DenseKernelTest, ZeroRowsDoNothing) {
  const std::vector<float> packed = Pack(RandomFloats(16 * 4, 1), 16, 4);
  for (DenseFn fn : KernelsUnderTest()) {
    DenseArgs a;
    a.m = 0;
    a.n = 16;
    a.k = 4;
    a.w = packed.data();
    fn(a);  // x and y are nullptr: must not be touched
  }
}

// ---- The op ----

struct DenseOpCase {
  int64_t n = 20, k = 6;
  std::vector<float> w = RandomFloats(n * k, 3);
  std::vector<float> bias = RandomFloats(n, 4);
  std::vector<float> packed = Pack(w, n, k);

  Attrs MakeAttrs(int64_t n_attr) const {
    Attrs a;
    a.Set("n", n_attr);
    return a;
  }
  testing::TestTensor W() const { return {{DensePanels(n), k, 16}, packed, /*constant=*/true}; }
  testing::TestTensor Bias() const { return {{n}, bias, true}; }
};

TEST(DenseOpTest, RunsRank3XAndKeepsLeadingDims) {
  DenseOpCase c;
  const Dims xd = {2, 3, c.k};
  const std::vector<float> x = RandomFloats(2 * 3 * c.k, 5);
  Attrs attrs = c.MakeAttrs(c.n);
  attrs.Set("activation", std::string("LeakyRelu"));
  attrs.Set("activation_alpha", 0.1f);
  std::vector<testing::TestTensor> out;
  ASSERT_TRUE(testing::RunSingleOp("Dense", attrs, {{xd, x}, c.W(), c.Bias()}, &out).ok());
  ASSERT_EQ(out[0].dims, (Dims{2, 3, c.n}));
  Activation act;
  act.kind = Activation::Kind::kLeakyRelu;
  act.alpha = 0.1f;
  testing::ExpectNear(out[0].data, Naive(x, c.w, c.bias.data(), 6, c.n, c.k, &act));
}

TEST(DenseOpTest, BiasIsOptional) {
  DenseOpCase c;
  const std::vector<float> x = RandomFloats(4 * c.k, 6);
  std::vector<testing::TestTensor> out;
  ASSERT_TRUE(testing::RunSingleOp("Dense", c.MakeAttrs(c.n), {{{4, c.k}, x}, c.W()}, &out).ok());
  testing::ExpectNear(out[0].data, Naive(x, c.w, nullptr, 4, c.n, c.k, nullptr));
}

#define EXPECT_REJECTS(status, text)                                           \
  do {                                                                         \
    const Status s_ = (status);                                                \
    EXPECT_FALSE(s_.ok());                                                     \
    EXPECT_EQ(s_.message().rfind("node 'n0' (Dense)", 0), 0u) << s_.message(); \
    EXPECT_NE(s_.message().find(text), std::string::npos) << s_.message();     \
  } while (0)

TEST(DenseOpTest, InferRejectsHostileNodes) {
  DenseOpCase c;  // n = 20: P = 2, so 17 <= n <= 32
  const testing::TestTensor x{{2, c.k}, RandomFloats(2 * c.k, 7)};
  std::vector<testing::TestTensor> out;
  auto run = [&](const Attrs& attrs, std::vector<testing::TestTensor> inputs) {
    return testing::RunSingleOp("Dense", attrs, inputs, &out);
  };
  EXPECT_REJECTS(run(c.MakeAttrs(0), {x, c.W()}), "n = 0");
  EXPECT_REJECTS(run(c.MakeAttrs(-5), {x, c.W()}), "n = -5");
  EXPECT_REJECTS(run(c.MakeAttrs(16), {x, c.W()}), "n = 16");  // would leave a panel unused
  EXPECT_REJECTS(run(c.MakeAttrs(33), {x, c.W()}), "n = 33");
  EXPECT_REJECTS(run(c.MakeAttrs(int64_t{1} << 40), {x, c.W()}), "does not fit W");
  EXPECT_REJECTS(run(Attrs{}, {x, c.W()}), "'n'");
  Attrs float_n;
  float_n.Set("n", 20.f);
  EXPECT_REJECTS(run(float_n, {x, c.W()}), "must be an int");

  testing::TestTensor w_var = c.W();
  w_var.constant = false;
  EXPECT_REJECTS(run(c.MakeAttrs(c.n), {x, w_var}), "W must be a constant");
  EXPECT_REJECTS(run(c.MakeAttrs(c.n), {{{2, c.k + 1}, RandomFloats(2 * (c.k + 1), 8)}, c.W()}),
                 "K mismatch");
  EXPECT_REJECTS(run(c.MakeAttrs(c.n), {x, {{2, c.k, 8}, RandomFloats(2 * c.k * 8, 9), true}}),
                 "[P, K, 16]");
  EXPECT_REJECTS(run(c.MakeAttrs(c.n), {x, {{2 * c.k, 16}, c.packed, true}}), "[P, K, 16]");
  EXPECT_REJECTS(run(c.MakeAttrs(c.n), {{{c.k}, RandomFloats(c.k, 10)}, c.W()}), "rank >= 2");
  EXPECT_REJECTS(run(c.MakeAttrs(c.n), {x, c.W(), {{c.n + 1}, RandomFloats(c.n + 1, 11), true}}),
                 "bias must be");
  EXPECT_REJECTS(run(c.MakeAttrs(c.n), {x, c.W(), {{1, c.n}, c.bias, true}}), "bias must be");
  Attrs bad_act = c.MakeAttrs(c.n);
  bad_act.Set("activation", std::string("Swish"));
  EXPECT_REJECTS(run(bad_act, {x, c.W()}), "Swish");
  Attrs bad_alpha = c.MakeAttrs(c.n);
  bad_alpha.Set("activation", std::string("LeakyRelu"));
  bad_alpha.Set("activation_alpha", int64_t{1});
  EXPECT_REJECTS(run(bad_alpha, {x, c.W()}), "activation_alpha");
  EXPECT_REJECTS(run(c.MakeAttrs(c.n), {x}), "2 or 3 inputs");

  // A constant whose byte count disagrees with its dims (only ValidateGraph would catch it
  // otherwise), and a symbolic K.
  Graph g = testing::MakeSingleOpGraph("Dense", c.MakeAttrs(c.n), {x, c.W()}, 1);
  g.tensors[g.nodes[0].inputs[1]].bytes -= 4;
  std::vector<TensorDesc> outs(1);
  EXPECT_REJECTS(FindOp("Dense")->infer(g.nodes[0], g, &outs), "bytes");
  Graph g2 = testing::MakeSingleOpGraph("Dense", c.MakeAttrs(c.n), {x, c.W()}, 1);
  g2.tensors[g2.nodes[0].inputs[0]].dims = {2, -1};
  EXPECT_REJECTS(FindOp("Dense")->infer(g2.nodes[0], g2, &outs), "literal");
}

// ---- The pass ----

// x [B, K] -> fc1 Gemm(W1 [H, K], C [H], Relu) -> h
//   -> fc2 Gemm(W2 [N, H], C [1, N], Sigmoid) -> y1
//   -> fc3 Gemm(y1, W3 [N, H] transB=0) -> y2 (ineligible: transB = 0)
//   -> fc4 Gemm(W2 again, alpha = 0.5) -> y3 (ineligible: alpha), W2 stays because fc4 reads it
//   -> fc5 Gemm(h, W5 [N, H], C scalar [1]) -> y4 (ineligible: C)
//   -> fc6 Gemm(y1, W6 [N, N], no C, beta = 0.3) -> y5 (eligible; beta is moot)
struct MlpNet {
  static constexpr int64_t K = 37, H = 70, N = 19;
  Graph graph;

  MlpNet() {
    Graph& g = graph;
    int x = g.AddTensor({"x", DType::kFloat32, {kBatchDim, K}});
    g.inputs.push_back(x);
    auto constant = [&](const std::string& name, Dims dims, uint32_t seed) {
      std::vector<float> v = RandomFloats(static_cast<size_t>(testing::Numel(dims)), seed);
      return g.AddConstant(name, DType::kFloat32, dims, v.data(), v.size() * 4);
    };
    auto tensor = [&](const std::string& name) { return g.AddTensor({name, DType::kFloat32, {}}); };
    const int w1 = constant("w1", {H, K}, 1), c1 = constant("c1", {H}, 2);
    const int w2 = constant("w2", {N, H}, 3), c2 = constant("c2", {1, N}, 4);
    const int w3 = constant("w3", {N, H}, 5);
    const int w5 = constant("w5", {N, H}, 6), c5 = constant("c5", {1}, 7);
    const int w6 = constant("w6", {N, N}, 8);
    const int h = tensor("h"), y1 = tensor("y1"), y2 = tensor("y2"), y3 = tensor("y3"),
              y4 = tensor("y4"), y5 = tensor("y5");
    Node fc1{"fc1", "Gemm", {x, w1, c1}, {h}, {}};
    fc1.attrs.Set("transB", int64_t{1});
    fc1.attrs.Set("activation", std::string("Relu"));
    Node fc2{"fc2", "Gemm", {h, w2, c2}, {y1}, {}};
    fc2.attrs.Set("transB", int64_t{1});
    fc2.attrs.Set("transA", int64_t{0});
    fc2.attrs.Set("alpha", 1.f);
    fc2.attrs.Set("beta", 1.f);
    fc2.attrs.Set("activation", std::string("Sigmoid"));
    Node fc3{"fc3", "Gemm", {y1, w3}, {y2}, {}};
    Node fc4{"fc4", "Gemm", {h, w2}, {y3}, {}};
    fc4.attrs.Set("transB", int64_t{1});
    fc4.attrs.Set("alpha", 0.5f);
    Node fc5{"fc5", "Gemm", {h, w5, c5}, {y4}, {}};
    fc5.attrs.Set("transB", int64_t{1});
    Node fc6{"fc6", "Gemm", {y1, w6}, {y5}, {}};
    fc6.attrs.Set("transB", int64_t{1});
    fc6.attrs.Set("beta", 0.3f);
    fc6.attrs.Set("activation", std::string("Clip"));
    fc6.attrs.Set("activation_min", -0.5f);
    fc6.attrs.Set("activation_max", 0.5f);
    g.nodes = {fc1, fc2, fc3, fc4, fc5, fc6};
    g.outputs = {y2, y3, y4, y5};
  }
};

const Node* NodeNamed(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

std::string InputName(const Graph& g, const Node& n, size_t i) {
  return n.inputs[i] < 0 ? "" : g.tensors[n.inputs[i]].name;
}

// Runs every batch 1..max_batch and returns all outputs, concatenated.
std::vector<float> RunAll(const Graph& graph, int max_batch) {
  auto model = Model::FromGraph(graph);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return {};
  auto s = Session::Create(*model, SessionOptions{.max_batch = max_batch});
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return {};
  std::vector<float> all;
  for (int batch = 1; batch <= max_batch; ++batch) {
    const std::vector<float> x = RandomFloats(static_cast<size_t>(MlpNet::K * batch), 50 + batch);
    const float* in = x.data();
    EXPECT_TRUE((*s)->Run({&in, 1}, batch).ok());
    for (int o = 0; o < (*s)->num_outputs(); ++o) {
      const TensorView v = (*s)->output(o);
      all.insert(all.end(), v.f32(), v.f32() + v.shape.NumElements());
    }
  }
  return all;
}

TEST(DensePassTest, RewritesEligibleGemmsWithIdenticalOutputs) {
  MlpNet net;
  Graph packed = net.graph;
  ASSERT_TRUE(PackDenseWeights(&packed).ok());

  const Node* fc1 = NodeNamed(packed, "fc1");
  const Node* fc2 = NodeNamed(packed, "fc2");
  const Node* fc6 = NodeNamed(packed, "fc6");
  ASSERT_TRUE(fc1 && fc2 && fc6);
  EXPECT_EQ(fc1->op, "Dense");
  EXPECT_EQ(fc2->op, "Dense");
  EXPECT_EQ(fc6->op, "Dense");
  EXPECT_EQ(fc1->attrs.GetInt("n"), MlpNet::H);
  EXPECT_EQ(fc1->attrs.GetString("activation"), "Relu");
  EXPECT_EQ(fc2->attrs.GetString("activation"), "Sigmoid");
  EXPECT_EQ(fc6->attrs.GetFloat("activation_max"), 0.5f);
  EXPECT_FALSE(fc6->attrs.Has("beta"));
  EXPECT_EQ(fc6->inputs.size(), 2u);
  EXPECT_EQ(packed.tensors[fc1->inputs[1]].dims, (Dims{5, MlpNet::K, 16}));
  EXPECT_EQ(InputName(packed, *fc1, 2), "c1");                        // [N] reused
  EXPECT_EQ(packed.tensors[fc2->inputs[2]].dims, (Dims{MlpNet::N}));  // [1, N] as [N]

  // The ineligible ones are untouched.
  for (const char* name : {"fc3", "fc4", "fc5"}) {
    const Node* n = NodeNamed(packed, name);
    const Node* before = NodeNamed(net.graph, name);
    ASSERT_TRUE(n && before);
    EXPECT_EQ(n->op, "Gemm") << name;
    ASSERT_EQ(n->inputs.size(), before->inputs.size());
    for (size_t i = 0; i < n->inputs.size(); ++i)
      EXPECT_EQ(InputName(packed, *n, i), InputName(net.graph, *before, i)) << name;
    EXPECT_TRUE(n->attrs.values() == before->attrs.values()) << name;
  }
  // Dead constants are gone (w2 stays: fc4 reads it; c2 [1, N] lives on as its [N] alias).
  for (const char* gone : {"w1", "w6"}) EXPECT_LT(packed.FindTensor(gone), 0) << gone;
  EXPECT_LT(packed.FindTensor("c2"), 0);
  for (const char* kept : {"w2", "w3", "w5", "c5", "c1", "x"})
    EXPECT_GE(packed.FindTensor(kept), 0) << kept;

  const std::vector<float> want = RunAll(net.graph, 6);
  const std::vector<float> got = RunAll(packed, 6);
  ASSERT_FALSE(want.empty());
  testing::ExpectNear(got, want, 1e-5f, 1e-5f);
}

TEST(DensePassTest, RoundTripsThroughEimAndIsIdempotent) {
  MlpNet net;
  Graph packed = net.graph;
  ASSERT_TRUE(PackDenseWeights(&packed).ok());
  Graph again = packed;
  ASSERT_TRUE(PackDenseWeights(&again).ok());  // nothing left to rewrite
  EXPECT_EQ(again.tensors.size(), packed.tensors.size());

  std::string dir = std::filesystem::temp_directory_path() / "dense_test.XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/packed.eim";
  ASSERT_TRUE(WriteEim(packed, path).ok());
  auto loaded = Model::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->weight_bytes(), packed.WeightBytes());
  EXPECT_EQ(NodeNamed((*loaded)->graph(), "fc1")->op, "Dense");
  const std::vector<float> want = RunAll(net.graph, 3);
  const std::vector<float> got = RunAll((*loaded)->graph(), 3);
  testing::ExpectNear(got, want, 1e-5f, 1e-5f);
  std::filesystem::remove_all(dir);
}

TEST(DensePassTest, SharedWeightIsPackedOnce) {
  Graph g;
  const int64_t k = 8, n = 5;
  int x = g.AddTensor({"x", DType::kFloat32, {kBatchDim, k}});
  g.inputs.push_back(x);
  std::vector<float> w = RandomFloats(n * k, 1);
  int wi = g.AddConstant("w", DType::kFloat32, {n, k}, w.data(), w.size() * 4);
  int y1 = g.AddTensor({"y1", DType::kFloat32, {}});
  int y2 = g.AddTensor({"y2", DType::kFloat32, {}});
  Node a{"a", "Gemm", {x, wi}, {y1}, {}};
  a.attrs.Set("transB", int64_t{1});
  Node b = a;
  b.name = "b";
  b.outputs = {y2};
  g.nodes = {a, b};
  g.outputs = {y1, y2};
  ASSERT_TRUE(PackDenseWeights(&g).ok());
  EXPECT_EQ(g.nodes[0].op, "Dense");
  EXPECT_EQ(g.nodes[0].inputs[1], g.nodes[1].inputs[1]);
  EXPECT_LT(g.FindTensor("w"), 0);
  EXPECT_EQ(g.tensors.size(), 4u);  // x, y1, y2, w.packed
  EXPECT_EQ(g.WeightBytes(), static_cast<size_t>(DensePackedElements(n, k)) * 4);
}

TEST(DensePassTest, RefusesAnInvalidGraph) {
  Graph g;  // no inputs
  EXPECT_FALSE(PackDenseWeights(&g).ok());
}

}  // namespace
}  // namespace edgeinfer
