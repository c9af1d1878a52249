// LSTM, GRU and RNN against a plain double-precision transcription of the ONNX equations, over
// directions, layouts and the optional inputs; the vectorized sigmoid/tanh against libm; Slice;
// and the validation errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "inference/ops/rnn_internal.h"
#include "tests/inference/op_test_util.h"

namespace edgeinfer {
namespace {

using testing::RandomFloats;
using testing::RunSingleOp;
using testing::TestTensor;

TEST(RnnMath, SigmoidAndTanhRowsMatchLibm) {
  std::vector<float> x;
  for (float v = -100.f; v <= 100.f; v += 0.0137f) x.push_back(v);
  for (float v : {0.f, -0.f, 1e-30f, -1e-30f, 87.5f, -87.5f, 1e30f, -1e30f}) x.push_back(v);
  std::vector<float> s = x, t = x;
  rnn::SigmoidRow(s.data(), static_cast<int64_t>(s.size()));
  rnn::TanhRow(t.data(), static_cast<int64_t>(t.size()));
  double worst_s = 0, worst_t = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    worst_s = std::max(worst_s, std::abs(s[i] - 1.0 / (1.0 + std::exp(-v))));
    worst_t = std::max(worst_t, std::abs(t[i] - std::tanh(v)));
  }
  EXPECT_LT(worst_s, 1e-6);
  EXPECT_LT(worst_t, 1e-6);

  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> special = {inf, -inf, std::nanf("")};
  std::vector<float> ss = special, tt = special;
  rnn::SigmoidRow(ss.data(), 3);
  rnn::TanhRow(tt.data(), 3);
  EXPECT_EQ(ss[0], 1.f);
  EXPECT_GE(ss[1], 0.f);
  EXPECT_LT(ss[1], 1e-37f);  // e^-88 is as far as the exp goes
  EXPECT_TRUE(std::isnan(ss[2]));
  EXPECT_EQ(tt[0], 1.f);
  EXPECT_EQ(tt[1], -1.f);
  EXPECT_TRUE(std::isnan(tt[2]));
}

// --- Reference ---

struct Config {
  std::string op = "LSTM";
  std::string direction = "forward";
  bool batch_first = false;
  bool bias = false, init_h = false, init_c = false, peepholes = false;
  bool linear_before_reset = false;
  float clip = 0.f;  // 0: none
  int64_t seq = 4, batch = 3, in = 3, h = 5;

  int64_t dirs() const { return direction == "bidirectional" ? 2 : 1; }
  int64_t gates() const { return op == "LSTM" ? 4 : op == "GRU" ? 3 : 1; }
  std::string Name() const {
    return op + " " + direction + (batch_first ? " layout1" : " layout0") + (bias ? " B" : "") +
           (init_h ? " h0" : "") + (init_c ? " c0" : "") + (peepholes ? " P" : "") +
           (linear_before_reset ? " lbr" : "") + (clip > 0 ? " clip" : "");
  }
};

struct Data {
  std::vector<float> x, w, r, b, h0, c0, p;
};

double Sig(double v) { return 1.0 / (1.0 + std::exp(-v)); }

struct Outputs {
  std::vector<float> y, yh, yc;
};

Outputs Reference(const Config& c, const Data& d) {
  const int64_t H = c.h, G = c.gates(), D = c.dirs(), S = c.seq, N = c.batch, I = c.in;
  auto cl = [&](double v) {
    return c.clip > 0 ? std::min<double>(std::max<double>(v, -c.clip), c.clip) : v;
  };
  auto xat = [&](int64_t t, int64_t b) {
    return &d.x[(c.batch_first ? b * S + t : t * N + b) * I];
  };
  auto state = [&](int64_t dir, int64_t b) {
    return (c.batch_first ? b * D + dir : dir * N + b) * H;
  };
  Outputs o;
  o.y.assign(S * D * N * H, 0.f);
  o.yh.assign(D * N * H, 0.f);
  o.yc.assign(D * N * H, 0.f);
  for (int64_t dir = 0; dir < D; ++dir) {
    const float* W = &d.w[dir * G * H * I];
    const float* R = &d.r[dir * G * H * H];
    for (int64_t b = 0; b < N; ++b) {
      std::vector<double> h(H, 0.0), cs(H, 0.0);
      for (int64_t j = 0; j < H; ++j) {
        if (c.init_h) h[j] = d.h0[state(dir, b) + j];
        if (c.init_c) cs[j] = d.c0[state(dir, b) + j];
      }
      const bool reverse = c.direction == "reverse" || dir == 1;
      for (int64_t step = 0; step < S; ++step) {
        const int64_t t = reverse ? S - 1 - step : step;
        const float* x = xat(t, b);
        std::vector<double> wx(G * H), rh(G * H), wb(G * H, 0.0), rb(G * H, 0.0);
        for (int64_t k = 0; k < G * H; ++k) {
          for (int64_t i = 0; i < I; ++i) wx[k] += double(W[k * I + i]) * x[i];
          for (int64_t j = 0; j < H; ++j) rh[k] += double(R[k * H + j]) * h[j];
          if (c.bias) {
            wb[k] = d.b[dir * 2 * G * H + k];
            rb[k] = d.b[dir * 2 * G * H + G * H + k];
          }
        }
        std::vector<double> nh(H);
        if (c.op == "LSTM") {
          const float* P = c.peepholes ? &d.p[dir * 3 * H] : nullptr;
          for (int64_t j = 0; j < H; ++j) {
            auto pre = [&](int gate) {
              return wx[gate * H + j] + rh[gate * H + j] + wb[gate * H + j] + rb[gate * H + j];
            };
            const double ig = Sig(cl(pre(0) + (P ? P[j] * cs[j] : 0)));
            const double fg = Sig(cl(pre(2) + (P ? P[2 * H + j] * cs[j] : 0)));
            const double cg = std::tanh(cl(pre(3)));
            cs[j] = fg * cs[j] + ig * cg;
            const double og = Sig(cl(pre(1) + (P ? P[H + j] * cs[j] : 0)));
            nh[j] = og * std::tanh(cs[j]);
          }
        } else if (c.op == "GRU") {
          std::vector<double> z(H), r(H);
          for (int64_t j = 0; j < H; ++j) {
            z[j] = Sig(cl(wx[j] + rh[j] + wb[j] + rb[j]));
            r[j] = Sig(cl(wx[H + j] + rh[H + j] + wb[H + j] + rb[H + j]));
          }
          for (int64_t j = 0; j < H; ++j) {
            double hh;
            if (c.linear_before_reset) {
              hh = wx[2 * H + j] + wb[2 * H + j] + r[j] * (rh[2 * H + j] + rb[2 * H + j]);
            } else {
              double acc = 0;
              for (int64_t k = 0; k < H; ++k) acc += double(R[(2 * H + j) * H + k]) * r[k] * h[k];
              hh = wx[2 * H + j] + wb[2 * H + j] + acc + rb[2 * H + j];
            }
            nh[j] = (1 - z[j]) * std::tanh(cl(hh)) + z[j] * h[j];
          }
        } else {
          for (int64_t j = 0; j < H; ++j) nh[j] = std::tanh(cl(wx[j] + rh[j] + wb[j] + rb[j]));
        }
        h = nh;
        const int64_t yo = (c.batch_first ? (b * S + t) * D + dir : (t * D + dir) * N + b) * H;
        for (int64_t j = 0; j < H; ++j) o.y[yo + j] = static_cast<float>(h[j]);
      }
      for (int64_t j = 0; j < H; ++j) {
        o.yh[state(dir, b) + j] = static_cast<float>(h[j]);
        o.yc[state(dir, b) + j] = static_cast<float>(cs[j]);
      }
    }
  }
  return o;
}

Data MakeData(const Config& c, uint32_t seed) {
  const int64_t H = c.h, G = c.gates(), D = c.dirs();
  Data d;
  d.x = RandomFloats(c.seq * c.batch * c.in, seed, -2.f, 2.f);
  d.w = RandomFloats(D * G * H * c.in, seed + 1, -0.8f, 0.8f);
  d.r = RandomFloats(D * G * H * H, seed + 2, -0.8f, 0.8f);
  d.b = RandomFloats(D * 2 * G * H, seed + 3, -0.5f, 0.5f);
  d.h0 = RandomFloats(D * c.batch * H, seed + 4);
  d.c0 = RandomFloats(D * c.batch * H, seed + 5);
  d.p = RandomFloats(D * 3 * H, seed + 6);
  return d;
}

Status RunCell(const Config& c, const Data& d, std::vector<TestTensor>* out) {
  const int64_t H = c.h, G = c.gates(), D = c.dirs();
  const Dims state = c.batch_first ? Dims{c.batch, D, H} : Dims{D, c.batch, H};
  const TestTensor absent;
  std::vector<TestTensor> in = {
      {c.batch_first ? Dims{c.batch, c.seq, c.in} : Dims{c.seq, c.batch, c.in}, d.x},
      {{D, G * H, c.in}, d.w, true},
      {{D, G * H, H}, d.r, true},
      c.bias ? TestTensor{{D, 2 * G * H}, d.b, true} : absent,
      absent,  // sequence_lens
      c.init_h ? TestTensor{state, d.h0} : absent,
  };
  if (c.op == "LSTM") {
    in.push_back(c.init_c ? TestTensor{state, d.c0} : absent);
    in.push_back(c.peepholes ? TestTensor{{D, 3 * H}, d.p, true} : absent);
  }
  while (in.size() > 3 && in.back().data.empty()) in.pop_back();
  Attrs a;
  a.Set("hidden_size", H);
  a.Set("direction", c.direction);
  a.Set("layout", int64_t{c.batch_first ? 1 : 0});
  if (c.clip > 0) a.Set("clip", c.clip);
  if (c.op == "GRU") a.Set("linear_before_reset", int64_t{c.linear_before_reset ? 1 : 0});
  return RunSingleOp(c.op, a, in, out, c.op == "LSTM" ? 3 : 2);
}

void ExpectMatchesReference(const Config& c, uint32_t seed) {
  SCOPED_TRACE(c.Name());
  const Data d = MakeData(c, seed);
  std::vector<TestTensor> out;
  Status st = RunCell(c, d, &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  const Outputs want = Reference(c, d);
  const Dims y_dims =
      c.batch_first ? Dims{c.batch, c.seq, c.dirs(), c.h} : Dims{c.seq, c.dirs(), c.batch, c.h};
  EXPECT_EQ(out[0].dims, y_dims);
  testing::ExpectNear(out[0].data, want.y, 1e-5f, 2e-6f);
  testing::ExpectNear(out[1].data, want.yh, 1e-5f, 2e-6f);
  if (c.op == "LSTM") testing::ExpectNear(out[2].data, want.yc, 1e-5f, 2e-6f);
}

TEST(RnnOps, MatchReferenceOverDirectionsLayoutsAndOptionalInputs) {
  uint32_t seed = 1;
  for (const char* op : {"LSTM", "GRU", "RNN"}) {
    for (const char* dir : {"forward", "reverse", "bidirectional"}) {
      for (bool batch_first : {false, true}) {
        Config c;
        c.op = op;
        c.direction = dir;
        c.batch_first = batch_first;
        ExpectMatchesReference(c, seed++);
        c.bias = c.init_h = true;
        c.init_c = c.peepholes = c.op == "LSTM";
        c.linear_before_reset = c.op == "GRU";
        ExpectMatchesReference(c, seed++);
        c.clip = 0.7f;
        c.linear_before_reset = false;
        ExpectMatchesReference(c, seed++);
      }
    }
  }
}

TEST(RnnOps, OddSizesAndSingleStep) {
  for (const char* op : {"LSTM", "GRU", "RNN"}) {
    Config c;
    c.op = op;
    c.direction = "bidirectional";
    c.bias = true;
    c.seq = 1;
    c.batch = 1;
    c.in = 1;
    c.h = 1;
    ExpectMatchesReference(c, 100);
    c.seq = 7;
    c.batch = 5;
    c.in = 11;
    c.h = 19;  // not a multiple of the vector width
    ExpectMatchesReference(c, 200);
  }
}

TEST(RnnOps, BatchStaysSymbolic) {
  Graph g = testing::MakeSingleOpGraph(
      "LSTM", {}, {{{20, kBatchDim, 3}, {}}, {{2, 16, 3}, {}, false}, {{2, 16, 4}, {}, false}}, 3);
  g.nodes[0].attrs.Set("direction", std::string("bidirectional"));
  std::vector<TensorDesc> outs(3);
  ASSERT_TRUE(FindOp("LSTM")->infer(g.nodes[0], g, &outs).ok());
  EXPECT_EQ(outs[0].dims, (Dims{20, 2, kBatchDim, 4}));
  EXPECT_EQ(outs[1].dims, (Dims{2, kBatchDim, 4}));
  EXPECT_EQ(outs[2].dims, (Dims{2, kBatchDim, 4}));
}

Status InferError(const std::string& op, const Attrs& a, const std::vector<TestTensor>& in,
                  int outputs) {
  Graph g = testing::MakeSingleOpGraph(op, a, in, outputs);
  std::vector<TensorDesc> outs(outputs);
  return FindOp(op)->infer(g.nodes[0], g, &outs);
}

TEST(RnnOps, RefusesWhatItDoesNotSupportNamingNodeAndAttribute) {
  const std::vector<TestTensor> in = {{{4, 2, 3}, {}}, {{1, 20, 3}, {}}, {{1, 20, 5}, {}}};
  Attrs acts;
  acts.Set("activations", std::vector<int64_t>{1});
  Status st = InferError("LSTM", acts, in, 3);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("node 'n0' (LSTM)"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("'activations'"), std::string::npos) << st.ToString();

  Attrs dir;
  dir.Set("direction", std::string("sideways"));
  EXPECT_NE(InferError("LSTM", dir, in, 3).message().find("direction"), std::string::npos);

  Attrs hidden;
  hidden.Set("hidden_size", int64_t{6});
  EXPECT_NE(InferError("LSTM", hidden, in, 3).message().find("hidden_size"), std::string::npos);

  // W of a GRU's gate count given to an LSTM.
  st = InferError("LSTM", {}, {{{4, 2, 3}, {}}, {{1, 15, 3}, {}}, {{1, 20, 5}, {}}}, 3);
  EXPECT_NE(st.message().find("W ("), std::string::npos) << st.ToString();
  // initial_h with another batch than X.
  std::vector<TestTensor> bad_h = in;
  bad_h.push_back({});
  bad_h.push_back({});
  bad_h.push_back({{1, 3, 5}, {}});
  EXPECT_NE(InferError("LSTM", {}, bad_h, 3).message().find("initial_h"), std::string::npos);
  // sequence_lens is resolved by the importer.
  std::vector<TestTensor> lens = in;
  lens.push_back({});
  lens.push_back({{2}, {4.f, 4.f}});
  EXPECT_NE(InferError("LSTM", {}, lens, 3).message().find("sequence_lens"), std::string::npos);
  EXPECT_NE(InferError("LSTM", {}, in, 2).message().find("outputs"), std::string::npos);
  Attrs lbr;
  lbr.Set("linear_before_reset", int64_t{1});
  EXPECT_FALSE(InferError("LSTM", lbr, in, 3).ok());
  Attrs clip;
  clip.Set("clip", -1.f);
  EXPECT_FALSE(
      InferError("RNN", clip, {{{4, 2, 3}, {}}, {{1, 5, 3}, {}}, {{1, 5, 5}, {}}}, 2).ok());
}

TEST(SliceOp, CopiesARangeOfOneAxis) {
  std::vector<float> x(2 * 5 * 3);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  Attrs a;
  a.Set("axis", int64_t{1});
  a.Set("start", int64_t{4});
  a.Set("end", int64_t{5});
  std::vector<TestTensor> out;
  ASSERT_TRUE(RunSingleOp("Slice", a, {{{2, 5, 3}, x}}, &out).ok());
  EXPECT_EQ(out[0].dims, (Dims{2, 1, 3}));
  EXPECT_EQ(out[0].data, (std::vector<float>{12, 13, 14, 27, 28, 29}));

  a.Set("start", int64_t{1});
  a.Set("end", int64_t{3});
  a.Set("axis", int64_t{0});
  Status st = RunSingleOp("Slice", a, {{{kBatchDim, 5, 3}, x}}, &out);
  EXPECT_NE(st.message().find("batch"), std::string::npos) << st.ToString();
  a.Set("axis", int64_t{1});
  a.Set("end", int64_t{6});
  EXPECT_FALSE(RunSingleOp("Slice", a, {{{2, 5, 3}, x}}, &out).ok());
  a.Erase("end");
  EXPECT_FALSE(RunSingleOp("Slice", a, {{{2, 5, 3}, x}}, &out).ok());
}

}  // namespace
}  // namespace edgeinfer
