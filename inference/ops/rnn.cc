// LSTM, GRU and RNN (ONNX semantics, default activations, fp32).
//
// Where the FLOPs are: the input projection of every time step does not depend on the
// recurrence, so it runs first as one sgemm over all steps ([seq*batch, I] x W^T, bias added by
// starting from the bias rows with beta 1). Each step then needs only the recurrent sgemm
// ([batch, H] x R^T) and the gate math, which runs on rows of H floats with a branch-free
// sigmoid/tanh that vectorizes (AVX2 clone). Weights are read where they lie, in ONNX's layout
// ([dirs, gates*H, I] and [dirs, gates*H, H]); all temporaries live in the node's scratch.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <set>
#include <string>

#include "inference/kernels/blas.h"
#include "inference/kernels/vectorize.h"
#include "inference/op.h"
#include "inference/ops/fast_erf.h"
#include "inference/ops/rnn_internal.h"

namespace edgeinfer {

namespace rnn {

namespace {

// --- Branch-free exp, sigmoid and tanh ---

// e^x for x clamped to [-87, 87] (normal floats only): x = n ln2 + r with |r| <= ln2/2, e^r by
// its Taylor series to r^6 (truncation below 1.3e-7 relative), times 2^n built in the exponent
// bits. n is rounded with the 1.5 * 2^23 trick, which needs no float->int conversion. The clamp
// works on the bits (fast_erf.h): float selects would keep GCC from vectorizing the loops.
inline float ExpClamped(float x) {
  constexpr int32_t kBits87 = 0x42ae0000;  // 87.0f
  x = fast_erf_internal::ClampMagnitude(x, kBits87);
  constexpr float kMagic = 12582912.f;  // 1.5 * 2^23
  const float t = x * 1.44269504f + kMagic;
  const float n = t - kMagic;
  const int32_t ni = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kMagic);
  // ln 2 = 0.693359375 - 2.121944400547e-4, the first part exact in few bits so n * it is exact.
  float r = x - n * 0.693359375f;
  r = r + n * 2.121944400547e-4f;
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  return p * std::bit_cast<float>((ni + 127) << 23);
}

inline float Sigmoid(float x) { return 1.f / (1.f + ExpClamped(-x)); }
inline float Tanh(float x) { return 1.f - 2.f / (ExpClamped(2.f * x) + 1.f); }
// ONNX `clip`: bounds the input of every activation to [-c, c]; `c_bits` are the bits of c
// (+inf when the node has none).
inline float Clip(float x, int32_t c_bits) { return fast_erf_internal::ClampMagnitude(x, c_bits); }

}  // namespace

EI_KERNEL_CLONES void SigmoidRow(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = Sigmoid(x[i]);
}

EI_KERNEL_CLONES void TanhRow(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = Tanh(x[i]);
}

namespace {

// --- Gate math of one batch row (n = hidden size) ---

// g: this step's input projection plus bias [i, o, f, c] x n (overwritten); rec: h_prev x R^T;
// p: peepholes [i, o, f] x n or nullptr; c, h: the state, updated in place.
EI_KERNEL_CLONES void LstmRow(float* g, const float* rec, const float* p, int32_t clip, float* c,
                              float* h, int64_t n) {
  float *gi = g, *go = g + n, *gf = g + 2 * n, *gc = g + 3 * n;
  const float *ri = rec, *ro = rec + n, *rf = rec + 2 * n, *rc = rec + 3 * n;
  if (p) {
    for (int64_t j = 0; j < n; ++j) {
      gi[j] += p[j] * c[j];
      gf[j] += p[2 * n + j] * c[j];
    }
  }
  for (int64_t j = 0; j < n; ++j) {
    const float i = Sigmoid(Clip(gi[j] + ri[j], clip));
    const float f = Sigmoid(Clip(gf[j] + rf[j], clip));
    const float cc = Tanh(Clip(gc[j] + rc[j], clip));
    c[j] = f * c[j] + i * cc;
  }
  if (p) {
    for (int64_t j = 0; j < n; ++j) go[j] += p[n + j] * c[j];
  }
  for (int64_t j = 0; j < n; ++j) h[j] = Sigmoid(Clip(go[j] + ro[j], clip)) * Tanh(c[j]);
}

// GRU with linear_before_reset: g = [z, r, h] projections (+ Wb, + Rb for z and r), rec = h_prev
// x R^T without bias, rbh = Rb of the h gate.
EI_KERNEL_CLONES void GruRowLinear(const float* g, const float* rec, const float* rbh, int32_t clip,
                                   float* h, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float z = Sigmoid(Clip(g[j] + rec[j], clip));
    const float r = Sigmoid(Clip(g[n + j] + rec[n + j], clip));
    const float ht = Tanh(Clip(g[2 * n + j] + r * (rec[2 * n + j] + rbh[j]), clip));
    h[j] = (1.f - z) * ht + z * h[j];
  }
}

// GRU without linear_before_reset, first half: z into g[0, n), r * h_prev into rh.
EI_KERNEL_CLONES void GruRowGates(float* g, const float* rec, int32_t clip, const float* h,
                                  float* rh, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    g[j] = Sigmoid(Clip(g[j] + rec[j], clip));
    rh[j] = Sigmoid(Clip(g[n + j] + rec[n + j], clip)) * h[j];
  }
}

// Second half: hh = (r * h_prev) x Rh^T.
EI_KERNEL_CLONES void GruRowUpdate(const float* g, const float* hh, int32_t clip, float* h,
                                   int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float ht = Tanh(Clip(g[2 * n + j] + hh[j], clip));
    h[j] = (1.f - g[j]) * ht + g[j] * h[j];
  }
}

EI_KERNEL_CLONES void RnnRow(const float* g, const float* rec, int32_t clip, float* h, int64_t n) {
  for (int64_t j = 0; j < n; ++j) h[j] = Tanh(Clip(g[j] + rec[j], clip));
}

// --- Validation ---

enum class Cell { kRnn, kGru, kLstm };

Cell CellOf(const std::string& op) {
  return op == "LSTM" ? Cell::kLstm : op == "GRU" ? Cell::kGru : Cell::kRnn;
}
int64_t GatesOf(Cell c) { return c == Cell::kLstm ? 4 : c == Cell::kGru ? 3 : 1; }

// ONNX input positions (sequence_lens, 4, is resolved at import and must be absent).
enum Input { kX = 0, kW, kR, kB, kSeqLens, kInitH, kInitC, kP };

struct Params {
  Cell cell = Cell::kRnn;
  int64_t gates = 1;
  int64_t dirs = 1;
  bool reverse = false;  // direction "reverse" (with dirs 1)
  bool batch_first = false;
  bool linear_before_reset = false;
  float clip = std::numeric_limits<float>::infinity();
};

Status Error(const Node& node, const std::string& what) {
  return Status::InvalidArgument(NodeContext(node) + ": " + what);
}
Status Refuse(const Node& node, const std::string& what) {
  return Status::Unsupported(NodeContext(node) + ": " + what);
}

Status CheckAttrTypes(const Node& node) {
  static const std::set<std::string> kKnown = {"hidden_size", "direction", "layout", "clip",
                                               "linear_before_reset"};
  for (const auto& [name, value] : node.attrs.values()) {
    if (!kKnown.count(name))
      return Refuse(node, "attribute '" + name +
                              "' is not supported (default activations only; see docs/ops.md)");
    const bool want_string = name == "direction";
    const bool want_float = name == "clip";
    const bool ok = want_string  ? std::holds_alternative<std::string>(value)
                    : want_float ? std::holds_alternative<float>(value)
                                 : std::holds_alternative<int64_t>(value);
    if (!ok)
      return Error(node, "attribute '" + name + "' must be " +
                             (want_string  ? "a string"
                              : want_float ? "a float"
                                           : "an int"));
  }
  return Status::Ok();
}

Status ParseParams(const Node& node, Params* p) {
  EI_RETURN_IF_ERROR(CheckAttrTypes(node));
  p->cell = CellOf(node.op);
  p->gates = GatesOf(p->cell);
  const std::string dir = node.attrs.GetString("direction", "forward");
  if (dir != "forward" && dir != "reverse" && dir != "bidirectional")
    return Error(
        node, "attribute 'direction' is '" + dir + "', expected forward, reverse or bidirectional");
  p->dirs = dir == "bidirectional" ? 2 : 1;
  p->reverse = dir == "reverse";
  const int64_t layout = node.attrs.GetInt("layout", 0);
  if (layout != 0 && layout != 1)
    return Error(node, "attribute 'layout' must be 0 or 1, got " + std::to_string(layout));
  p->batch_first = layout == 1;
  const int64_t lbr = node.attrs.GetInt("linear_before_reset", 0);
  if (lbr != 0 && (p->cell != Cell::kGru || lbr != 1))
    return Error(node, "attribute 'linear_before_reset' must be 0 or 1 (GRU only)");
  p->linear_before_reset = lbr == 1;
  if (node.attrs.Has("clip")) {
    const float clip = node.attrs.GetFloat("clip");
    if (!(clip > 0.f)) return Error(node, "attribute 'clip' must be positive");
    p->clip = clip;
  }
  return Status::Ok();
}

Status CheckDims(const Node& node, const Graph& graph, int i, const char* what, const Dims& want) {
  const TensorDesc* t = InputDesc(node, graph, i);
  if (!t) return Status::Ok();
  if (t->dims != want)
    return Error(node, std::string(what) + " ('" + t->name + "') must be " + DimsToString(want) +
                           ", got " + DimsToString(t->dims));
  return Status::Ok();
}

}  // namespace

Status InferRecurrent(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  Params p;
  EI_RETURN_IF_ERROR(ParseParams(node, &p));
  const size_t max_inputs = p.cell == Cell::kLstm ? 8 : 6;
  const size_t num_outputs = p.cell == Cell::kLstm ? 3 : 2;
  if (node.inputs.size() < 3 || node.inputs.size() > max_inputs)
    return Error(node, "expects 3 to " + std::to_string(max_inputs) + " inputs, got " +
                           std::to_string(node.inputs.size()));
  if (node.outputs.size() != num_outputs)
    return Error(node, "expects " + std::to_string(num_outputs) + " outputs, got " +
                           std::to_string(node.outputs.size()));
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const TensorDesc* t = InputDesc(node, graph, i);
    if (!t) {
      if (i < 3) return Error(node, "input " + std::to_string(i) + " is required");
      continue;
    }
    if (i == kSeqLens)
      return Refuse(node, "input sequence_lens must be absent (the importer resolves it)");
    if (t->dtype != DType::kFloat32)
      return Refuse(node, "input " + std::to_string(i) + " ('" + t->name +
                              "') must be float32, got " + DTypeName(t->dtype));
  }
  const Dims& x = graph.tensors[node.inputs[kX]].dims;
  if (x.size() != 3 || x[2] <= 0 || x[0] == 0 || x[1] == 0)
    return Error(node,
                 "X must be [seq, batch, input] (layout 0) or [batch, seq, input] "
                 "(layout 1) with a literal input size, got " +
                     DimsToString(x));
  const Dims& r = graph.tensors[node.inputs[kR]].dims;
  if (r.size() != 3 || r[2] <= 0 || r[2] > (int64_t{1} << 24))
    return Error(node, "R must be [num_directions, gates*hidden, hidden], got " + DimsToString(r));
  const int64_t h = r[2], gh = p.gates * h, in = x[2];
  if (node.attrs.Has("hidden_size") && node.attrs.GetInt("hidden_size") != h)
    return Error(node, "attribute 'hidden_size' is " +
                           std::to_string(node.attrs.GetInt("hidden_size")) + " but R is " +
                           DimsToString(r));
  const int64_t seq = p.batch_first ? x[1] : x[0];
  const int64_t batch = p.batch_first ? x[0] : x[1];
  const Dims state = p.batch_first ? Dims{batch, p.dirs, h} : Dims{p.dirs, batch, h};
  EI_RETURN_IF_ERROR(CheckDims(node, graph, kW, "W", {p.dirs, gh, in}));
  EI_RETURN_IF_ERROR(CheckDims(node, graph, kR, "R", {p.dirs, gh, h}));
  EI_RETURN_IF_ERROR(CheckDims(node, graph, kB, "B", {p.dirs, 2 * gh}));
  EI_RETURN_IF_ERROR(CheckDims(node, graph, kInitH, "initial_h", state));
  EI_RETURN_IF_ERROR(CheckDims(node, graph, kInitC, "initial_c", state));
  EI_RETURN_IF_ERROR(CheckDims(node, graph, kP, "P", {p.dirs, 3 * h}));
  (*outs)[0].dims = p.batch_first ? Dims{batch, seq, p.dirs, h} : Dims{seq, p.dirs, batch, h};
  for (size_t i = 0; i < num_outputs; ++i) {
    (*outs)[i].dtype = DType::kFloat32;
    if (i > 0) (*outs)[i].dims = state;
  }
  return Status::Ok();
}

namespace {

// Scratch, in floats, each part rounded up to 64 bytes.
struct ScratchPlan {
  int64_t xw = 0, rec = 0, h = 0, c = 0, rh = 0, hh = 0, bias = 0, rbh = 0, total = 0;
};

int64_t Round16(int64_t n) { return (n + 15) / 16 * 16; }

// Optional input i, or nullptr when the node does not have it.
const float* OptionalIn(const KernelContext& ctx, int i) {
  return i < ctx.num_in ? static_cast<const float*>(ctx.in[i].data) : nullptr;
}

class RecurrentKernel : public Kernel {
 public:
  explicit RecurrentKernel(const Params& p) : p_(p) {}

  size_t ScratchBytes(std::span<const Shape> in, std::span<const Shape> out) const override {
    (void)out;
    return static_cast<size_t>(Plan(in[kX], in[kR][2]).total) * sizeof(float);
  }

  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[kX].shape;
    const int64_t h = ctx.in[kR].shape[2];
    Geometry geo;
    geo.seq = p_.batch_first ? xs[1] : xs[0];
    geo.batch = p_.batch_first ? xs[0] : xs[1];
    geo.in = xs[2];
    geo.h = h;
    const ScratchPlan plan = Plan(xs, h);
    float* s = static_cast<float*>(ctx.scratch);
    for (int64_t d = 0; d < p_.dirs; ++d) RunDirection(ctx, geo, plan, s, d);
  }

 private:
  struct Geometry {
    int64_t seq = 0, batch = 0, in = 0, h = 0;
  };

  ScratchPlan Plan(const Shape& x, int64_t h) const {
    const int64_t seq = p_.batch_first ? x[1] : x[0];
    const int64_t batch = p_.batch_first ? x[0] : x[1];
    const int64_t gh = p_.gates * h;
    ScratchPlan s;
    int64_t at = 0;
    auto take = [&at](int64_t n) {
      const int64_t off = at;
      at += Round16(n);
      return off;
    };
    s.xw = take(seq * batch * gh);
    s.rec = take(batch * gh);
    s.h = take(batch * h);
    s.c = take(batch * h);
    s.rh = take(batch * h);
    s.hh = take(batch * h);
    s.bias = take(gh);
    s.rbh = take(h);
    s.total = at;
    return s;
  }

  // Row of X (and of the projection) for step t, sample b.
  int64_t XRow(const Geometry& g, int64_t t, int64_t b) const {
    return p_.batch_first ? b * g.seq + t : t * g.batch + b;
  }
  // Offset of Y[t, d, b, :] (layout 0) or Y[b, t, d, :] (layout 1).
  int64_t YOffset(const Geometry& g, int64_t t, int64_t d, int64_t b) const {
    return (p_.batch_first ? (b * g.seq + t) * p_.dirs + d : (t * p_.dirs + d) * g.batch + b) * g.h;
  }
  // Offset of a state row (initial_h/c, Y_h, Y_c) for direction d, sample b.
  int64_t StateOffset(const Geometry& g, int64_t d, int64_t b) const {
    return (p_.batch_first ? b * p_.dirs + d : d * g.batch + b) * g.h;
  }

  // Bias of the projection (Wb + Rb, except the GRU h gate with linear_before_reset, which
  // keeps Rb inside r * (...): it goes to rbh). Returns false when the node has no B.
  bool PrepareBias(const KernelContext& ctx, int64_t d, int64_t h, float* bias, float* rbh) const {
    const int64_t gh = p_.gates * h;
    std::fill(rbh, rbh + h, 0.f);
    const float* wb = OptionalIn(ctx, kB);
    if (!wb) return false;
    wb += d * 2 * gh;
    const float* rb = wb + gh;
    const int64_t split = p_.linear_before_reset ? 2 * h : gh;
    for (int64_t k = 0; k < split; ++k) bias[k] = wb[k] + rb[k];
    for (int64_t k = split; k < gh; ++k) {
      bias[k] = wb[k];
      rbh[k - split] = rb[k];
    }
    return true;
  }

  void InitState(const KernelContext& ctx, const Geometry& g, int in, int64_t d,
                 float* state) const {
    const float* init = OptionalIn(ctx, in);
    if (!init) {
      std::fill(state, state + g.batch * g.h, 0.f);
      return;
    }
    for (int64_t b = 0; b < g.batch; ++b)
      std::memcpy(state + b * g.h, init + StateOffset(g, d, b), g.h * sizeof(float));
  }

  void RunDirection(const KernelContext& ctx, const Geometry& g, const ScratchPlan& plan, float* s,
                    int64_t d) const {
    const int64_t h = g.h, gh = p_.gates * h, rows = g.seq * g.batch;
    float *xw = s + plan.xw, *rec = s + plan.rec, *hs = s + plan.h, *cs = s + plan.c;
    float *bias = s + plan.bias, *rbh = s + plan.rbh;
    const float* w = ctx.in[kW].f32() + d * gh * g.in;
    const float* r = ctx.in[kR].f32() + d * gh * h;
    const bool has_bias = PrepareBias(ctx, d, h, bias, rbh);
    if (has_bias) {
      for (int64_t i = 0; i < rows; ++i) std::memcpy(xw + i * gh, bias, gh * sizeof(float));
    }
    Sgemm(false, true, rows, gh, g.in, 1.f, ctx.in[kX].f32(), g.in, w, g.in, has_bias ? 1.f : 0.f,
          xw, gh);
    InitState(ctx, g, kInitH, d, hs);
    if (p_.cell == Cell::kLstm) InitState(ctx, g, kInitC, d, cs);
    const float* peep = p_.cell == Cell::kLstm ? OptionalIn(ctx, kP) : nullptr;
    if (peep) peep += d * 3 * h;
    const bool reverse = p_.reverse || d == 1;
    const int32_t clip = std::bit_cast<int32_t>(p_.clip);
    // The GRU without linear_before_reset multiplies by R_h only after the reset gate.
    const int64_t rec_n = p_.cell == Cell::kGru && !p_.linear_before_reset ? 2 * h : gh;
    for (int64_t step = 0; step < g.seq; ++step) {
      const int64_t t = reverse ? g.seq - 1 - step : step;
      Sgemm(false, true, g.batch, rec_n, h, 1.f, hs, h, r, h, 0.f, rec, gh);
      if (p_.cell == Cell::kGru && !p_.linear_before_reset) {
        float *rh = s + plan.rh, *hh = s + plan.hh;
        for (int64_t b = 0; b < g.batch; ++b)
          GruRowGates(xw + XRow(g, t, b) * gh, rec + b * gh, clip, hs + b * h, rh + b * h, h);
        Sgemm(false, true, g.batch, h, h, 1.f, rh, h, r + 2 * h * h, h, 0.f, hh, h);
        for (int64_t b = 0; b < g.batch; ++b)
          GruRowUpdate(xw + XRow(g, t, b) * gh, hh + b * h, clip, hs + b * h, h);
      } else {
        for (int64_t b = 0; b < g.batch; ++b) {
          float* gates = xw + XRow(g, t, b) * gh;
          const float* rr = rec + b * gh;
          if (p_.cell == Cell::kLstm) {
            LstmRow(gates, rr, peep, clip, cs + b * h, hs + b * h, h);
          } else if (p_.cell == Cell::kGru) {
            GruRowLinear(gates, rr, rbh, clip, hs + b * h, h);
          } else {
            RnnRow(gates, rr, clip, hs + b * h, h);
          }
        }
      }
      float* y = ctx.out[0].f32();
      for (int64_t b = 0; b < g.batch; ++b)
        std::memcpy(y + YOffset(g, t, d, b), hs + b * h, h * sizeof(float));
    }
    for (int64_t b = 0; b < g.batch; ++b) {
      std::memcpy(ctx.out[1].f32() + StateOffset(g, d, b), hs + b * h, h * sizeof(float));
      if (p_.cell == Cell::kLstm)
        std::memcpy(ctx.out[2].f32() + StateOffset(g, d, b), cs + b * h, h * sizeof(float));
    }
  }

  Params p_;
};

}  // namespace

Result<std::unique_ptr<Kernel>> CreateRecurrent(const Node& node, const Graph& graph) {
  (void)graph;
  Params p;
  EI_RETURN_IF_ERROR(ParseParams(node, &p));
  return std::unique_ptr<Kernel>(new RecurrentKernel(p));
}

}  // namespace rnn

std::span<const OpDef> RnnOps() {
  static const OpDef kOps[] = {
      {"LSTM", rnn::InferRecurrent, rnn::CreateRecurrent},
      {"GRU", rnn::InferRecurrent, rnn::CreateRecurrent},
      {"RNN", rnn::InferRecurrent, rnn::CreateRecurrent},
      {"Slice", rnn::InferSlice, rnn::CreateSlice},
  };
  return kOps;
}

}  // namespace edgeinfer
