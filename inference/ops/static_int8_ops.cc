// Static INT8 ops (docs/ops.md, "Static INT8"): QGemm, QConv, QMaxPool and QReshape.
//
// QGemm and QConv run a qint8_channel weight against activations quantized with a calibrated
// per-tensor scale (attribute x_scale): a float32 X is quantized on entry (no max scan), an int8 X
// is used as it is (it was produced with that scale). The integer GEMM is the dynamic int8
// kernel (qgemm.h) fed a QuantizedActs whose row scales all equal x_scale. With a y_scale
// attribute the output is int8 at that scale: the requantizing epilogue clamps
// round(y / y_scale) to the fused activation's range in codes (ReLU: [0, 127], Clip: its bounds;
// other activations are applied in float first), so the next int8 layer reads it directly.
// Without y_scale the output is float32 (a layer at the int8 region's edge).
//
// The epilogue reads the GEMM's float output [rows, N] from scratch: the GEMM kernels (another
// file's, with their own tuning) write float, so the requantization is a second pass over an
// L1/L2-sized tile rather than fused into the kernel's registers.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "inference/ops/nn_ops_internal.h"
#include "inference/ops/shape_util.h"
#include "inference/profiler.h"
#include "inference/quant/qgemm.h"
#include "inference/quant/requant.h"
#include "inference/quant/weight_format.h"

namespace edgeinfer {

namespace {

using nn::NodeError;
using nn::NodeUnsupported;

size_t Align64(size_t v) { return (v + 63) / 64 * 64; }

// What QGemm and QConv share: scales, the fused activation as a code range, the weight.
struct StaticParams {
  float x_scale = 1.f;
  float y_scale = 0.f;  // 0: float32 output
  Activation act;
  float lo = -127.f, hi = 127.f;  // int8 output: the activation as a clamp, in codes
  bool float_act = false;         // int8 output: apply `act` in float before the clamp
  bool int8_in = false;
};

Status PositiveScale(const Node& node, const char* name, bool required, float* out) {
  if (!node.attrs.Has(name)) {
    if (required) return NodeError(node, std::string("attribute '") + name + "' is required");
    *out = 0.f;
    return Status::Ok();
  }
  EI_RETURN_IF_ERROR(nn::FloatAttr(node, name, 0.f, out));
  if (!(std::isfinite(*out) && *out > 0.f))
    return NodeError(node, std::string("attribute '") + name + "' must be finite and positive");
  return Status::Ok();
}

float CodeBound(float v, float inv) {
  if (std::isnan(v)) return 0.f;
  return std::clamp(std::nearbyint(v * inv), -127.f, 127.f);
}

Status ParseStatic(const Node& node, const Graph& graph, StaticParams* p) {
  EI_RETURN_IF_ERROR(PositiveScale(node, "x_scale", true, &p->x_scale));
  EI_RETURN_IF_ERROR(PositiveScale(node, "y_scale", false, &p->y_scale));
  EI_RETURN_IF_ERROR(nn::ParseActivation(node, &p->act));
  const size_t n = node.inputs.size();
  if (n < 2 || n > 3) return NodeError(node, "expects 2 or 3 inputs, got " + std::to_string(n));
  if (node.outputs.size() != 1) return NodeError(node, "expects 1 output");
  const TensorDesc* x = InputDesc(node, graph, 0);
  const TensorDesc* w = InputDesc(node, graph, 1);
  const TensorDesc* b = InputDesc(node, graph, 2);
  if (!x || !w) return NodeError(node, "inputs 0 and 1 are required");
  if (x->dtype != DType::kFloat32 && x->dtype != DType::kInt8)
    return NodeUnsupported(node,
                           std::string("X must be float32 or int8, got ") + DTypeName(x->dtype));
  p->int8_in = x->dtype == DType::kInt8;
  if (w->dtype != DType::kQInt8Channel || !w->is_constant())
    return NodeUnsupported(node, "W must be a constant qint8_channel weight");
  if (b && b->dtype != DType::kFloat32) return NodeUnsupported(node, "bias must be float32");
  if (p->y_scale > 0.f) {
    const float inv = 1.f / p->y_scale;
    using K = Activation::Kind;
    if (p->act.kind == K::kRelu) {
      p->lo = 0.f;
    } else if (p->act.kind == K::kClip) {
      p->lo = p->act.min <= -INFINITY ? -127.f : CodeBound(p->act.min, inv);
      p->hi = p->act.max >= INFINITY ? 127.f : CodeBound(p->act.max, inv);
      if (p->lo > p->hi) p->hi = p->lo;
    } else {
      p->float_act = !p->act.is_none();
    }
  }
  return Status::Ok();
}

// The shared run-time half: activation codes into the GEMM's scratch, the GEMM, the epilogue.
class StaticGemm {
 public:
  StaticGemm() = default;
  StaticGemm(const StaticParams& p, const TensorDesc& w) : p_(p) {
    int64_t n = 0, k = 0;
    (void)quant::WeightMatrix(w.dims, &n, &k);  // validated
    weights_ = quant::ViewWeights(quant::WeightFormat::kInt8, n, k, w.data);
    const quant::CpuLevel level = quant::BestCpuLevel();
    gemm_ = quant::SelectQGemm(quant::WeightFormat::kInt8, level).gemm;
    kernels_ = quant::SelectStatic(level);
  }
  int64_t k() const { return weights_.k; }
  int64_t kp() const { return quant::Int8PaddedK(weights_.k); }
  const StaticParams& params() const { return p_; }
  const quant::StaticKernels& kernels() const { return kernels_; }

  size_t ActsBytes(int64_t m) const {
    return Align64(quant::ScratchBytes(quant::WeightFormat::kInt8, m, weights_.k));
  }
  quant::QuantizedActs Acts(int64_t m, void* scratch) const {
    return quant::ActsLayout(quant::WeightFormat::kInt8, m, weights_.k, scratch);
  }
  // Static quantization of m rows of K floats (ldx apart) into the activation codes.
  void QuantizeRows(const float* x, int64_t m, int64_t ldx, const quant::QuantizedActs& a,
                    Profiler* profiler) const {
    const int64_t start = profiler ? Profiler::NowNs() : 0;
    for (int64_t r = 0; r < m; ++r) {
      int8_t* q = a.q + r * a.kp;
      kernels_.quantize_clamp(x + r * ldx, weights_.k, 1.f / p_.x_scale, -127.f, 127.f, q);
      std::memset(q + weights_.k, 0, static_cast<size_t>(a.kp - weights_.k));
    }
    if (profiler) profiler->RecordQuantize(start, Profiler::NowNs() - start);
  }
  // y[m, n_end - n_begin] (ldy apart) = acts * W[n_begin:n_end]^T + bias, float.
  void Gemm(const quant::QuantizedActs& a, void* scratch, int64_t n_begin, int64_t n_end,
            const float* bias, float* y, int64_t ldy) const {
    std::fill(a.scales, a.scales + a.m, p_.x_scale);
    quant::QGemmProblem prob;
    prob.m = a.m;
    prob.w =
        n_begin == 0 && n_end == weights_.n ? weights_ : quant::SliceRows(weights_, n_begin, n_end);
    prob.bias = bias ? bias + n_begin : nullptr;
    prob.y = y;
    prob.ldy = ldy;
    gemm_(prob, scratch);
  }

 private:
  StaticParams p_;
  quant::QuantWeights weights_;
  quant::GemmFn gemm_ = nullptr;
  quant::StaticKernels kernels_;
};

// --- QGemm: X [..., K] -> Y [..., N] ---

Status ParseQGemm(const Node& node, const Graph& graph, StaticParams* p, Dims* out_dims) {
  EI_RETURN_IF_ERROR(ParseStatic(node, graph, p));
  const TensorDesc& x = *InputDesc(node, graph, 0);
  const TensorDesc& w = *InputDesc(node, graph, 1);
  int64_t n = 0, k = 0;
  if (w.dims.size() != 2) return NodeError(node, "W must be [N, K], got " + DimsToString(w.dims));
  EI_RETURN_IF_ERROR(quant::WeightMatrix(w.dims, &n, &k));
  if (x.dims.size() < 2 || x.dims.back() != k)
    return NodeError(node, "X " + DimsToString(x.dims) + " must be [..., " + std::to_string(k) +
                               "] (rank >= 2)");
  if (const TensorDesc* b = InputDesc(node, graph, 2)) {
    if (b->dims.size() != 1 || b->dims[0] != n)
      return NodeError(node,
                       "bias must be [" + std::to_string(n) + "], got " + DimsToString(b->dims));
  }
  *out_dims = Dims(x.dims.begin(), x.dims.end() - 1);
  out_dims->push_back(n);
  return Status::Ok();
}

class QGemmKernel final : public Kernel {
 public:
  QGemmKernel(const StaticParams& p, const TensorDesc& w) : g_(p, w) {}

  size_t ScratchBytes(std::span<const Shape> in, std::span<const Shape> out) const override {
    const int64_t m = in[0].Product(0, in[0].rank - 1);
    const int64_t n = out[0][out[0].rank - 1];
    const size_t tmp = g_.params().y_scale > 0.f ? static_cast<size_t>(m * n) * sizeof(float) : 0;
    return g_.ActsBytes(m) + tmp;
  }

  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[0].shape;
    const int64_t m = xs.Product(0, xs.rank - 1), k = g_.k();
    const int64_t n = ctx.out[0].shape[ctx.out[0].shape.rank - 1];
    const StaticParams& p = g_.params();
    const quant::QuantizedActs a = g_.Acts(m, ctx.scratch);
    if (p.int8_in) {
      const auto* x = static_cast<const int8_t*>(ctx.in[0].data);
      for (int64_t r = 0; r < m; ++r) {
        std::memcpy(a.q + r * a.kp, x + r * k, static_cast<size_t>(k));
        std::memset(a.q + r * a.kp + k, 0, static_cast<size_t>(a.kp - k));
      }
    } else {
      g_.QuantizeRows(ctx.in[0].f32(), m, k, a, ctx.profiler);
    }
    const float* bias = ctx.num_in > 2 && ctx.in[2].data ? ctx.in[2].f32() : nullptr;
    if (p.y_scale <= 0.f) {
      float* y = ctx.out[0].f32();
      g_.Gemm(a, ctx.scratch, 0, n, bias, y, n);
      p.act.Apply(y, static_cast<size_t>(m * n));
      return;
    }
    auto* tmp = reinterpret_cast<float*>(static_cast<uint8_t*>(ctx.scratch) + g_.ActsBytes(m));
    g_.Gemm(a, ctx.scratch, 0, n, bias, tmp, n);
    if (p.float_act) p.act.Apply(tmp, static_cast<size_t>(m * n));
    g_.kernels().quantize_clamp(tmp, m * n, 1.f / p.y_scale, p.lo, p.hi,
                                static_cast<int8_t*>(ctx.out[0].data));
  }

 private:
  StaticGemm g_;
};

Status InferQGemm(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  StaticParams p;
  Dims dims;
  EI_RETURN_IF_ERROR(ParseQGemm(node, graph, &p, &dims));
  (*outs)[0].dtype = p.y_scale > 0.f ? DType::kInt8 : DType::kFloat32;
  (*outs)[0].dims = std::move(dims);
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateQGemm(const Node& node, const Graph& graph) {
  StaticParams p;
  Dims dims;
  EI_RETURN_IF_ERROR(ParseQGemm(node, graph, &p, &dims));
  return std::unique_ptr<Kernel>(new QGemmKernel(p, *InputDesc(node, graph, 1)));
}

// --- QConv: X [N, C, (H,) W] -> Y [N, M, (OH,) OW], not depthwise ---

struct QConvParams {
  StaticParams s;
  int64_t group = 1;
  WindowAxis h, w;
  Dims out_dims;
};

Status ParseQConv(const Node& node, const Graph& graph, QConvParams* p) {
  EI_RETURN_IF_ERROR(ParseStatic(node, graph, &p->s));
  const TensorDesc& x = *InputDesc(node, graph, 0);
  const TensorDesc& w = *InputDesc(node, graph, 1);
  int spatial;
  EI_RETURN_IF_ERROR(nn::CheckSpatialInput(node, x, &spatial));
  if (w.dims.size() != x.dims.size())
    return NodeError(node, "W " + DimsToString(w.dims) + " must have X's rank");
  int64_t n = 0, k = 0;
  EI_RETURN_IF_ERROR(quant::WeightMatrix(w.dims, &n, &k));
  EI_RETURN_IF_ERROR(nn::IntAttr(node, "group", 1, &p->group));
  // W is OHWI: [M, (kh,) kw, C/group], the order Im2RowHwc writes a patch in.
  const int64_t c = x.dims[1], m = w.dims[0], g = p->group;
  if (g < 1 || c % g != 0 || m % g != 0 || w.dims.back() != c / g)
    return NodeError(node, "group " + std::to_string(g) + " does not fit X " +
                               DimsToString(x.dims) + " and W " + DimsToString(w.dims));
  if (g == c && c > 1) return NodeUnsupported(node, "a depthwise conv has no static int8 kernel");
  if (const TensorDesc* b = InputDesc(node, graph, 2)) {
    if (b->dims.size() != 1 || b->dims[0] != m)
      return NodeError(node,
                       "bias must be [" + std::to_string(m) + "], got " + DimsToString(b->dims));
  }
  WindowAxis axes[2];
  EI_RETURN_IF_ERROR(nn::ParseWindow(node, spatial, &w.dims[1], /*allow_dilations=*/true, axes));
  p->out_dims = {x.dims[0], m};
  EI_RETURN_IF_ERROR(nn::SpatialOutput(node, x.dims, spatial, axes, false, &p->out_dims));
  if (spatial == 2) p->h = axes[0];
  p->w = axes[spatial - 1];
  return Status::Ok();
}

// Scratch: the sample's input as int8 HWC (quantized and transposed from float, or transposed
// from int8 CHW), the GEMM's activation rows [P, Kp] (the im2row output) with their scales, and
// the GEMM's float output [P, M/group].
class QConvKernel final : public Kernel {
 public:
  QConvKernel(const QConvParams& p, const TensorDesc& w) : p_(p), g_(p.s, w) {}

  size_t ScratchBytes(std::span<const Shape> in, std::span<const Shape> out) const override {
    return MakeLayout(in[0], out[0]).total;
  }

  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[0].shape;
    const Shape& ys = ctx.out[0].shape;
    const PlaneGeom geom = nn::MakePlaneGeom(xs, ys, p_.h, p_.w);
    const Layout l = MakeLayout(xs, ys);
    auto* base = static_cast<uint8_t*>(ctx.scratch);
    auto* hwc = reinterpret_cast<int8_t*>(base);
    void* acts_scratch = base + l.acts_offset;
    auto* tmp = reinterpret_cast<float*>(base + l.tmp_offset);
    const int64_t c = xs[1], m = ys[1], cg = c / p_.group, mg = m / p_.group;
    const int64_t in_plane = geom.in_h * geom.in_w, plane = geom.out_h * geom.out_w;
    const StaticParams& s = p_.s;
    const quant::StaticKernels& k = g_.kernels();
    const float* bias = ctx.num_in > 2 && ctx.in[2].data ? ctx.in[2].f32() : nullptr;
    const quant::QuantizedActs a = g_.Acts(plane, acts_scratch);
    for (int64_t n = 0; n < xs[0]; ++n) {
      if (s.int8_in) {
        quant::TransposeS8(static_cast<const int8_t*>(ctx.in[0].data) + n * c * in_plane, c,
                           in_plane, hwc);
      } else {
        const int64_t start = ctx.profiler ? Profiler::NowNs() : 0;
        k.requant_transpose(ctx.in[0].f32() + n * c * in_plane, c, in_plane, in_plane,
                            1.f / s.x_scale, -127.f, 127.f, hwc, c);
        if (ctx.profiler) ctx.profiler->RecordQuantize(start, Profiler::NowNs() - start);
      }
      for (int64_t grp = 0; grp < p_.group; ++grp) {
        quant::Im2RowHwc(hwc + grp * cg, c, cg, geom, a.kp, a.q);
        g_.Gemm(a, acts_scratch, grp * mg, (grp + 1) * mg, bias, tmp, mg);
        const int64_t first = (n * m + grp * mg) * plane;  // output element of this group
        if (s.y_scale > 0.f) {
          if (s.float_act) s.act.Apply(tmp, static_cast<size_t>(plane * mg));
          k.requant_transpose(tmp, plane, mg, mg, 1.f / s.y_scale, s.lo, s.hi,
                              static_cast<int8_t*>(ctx.out[0].data) + first, plane);
        } else {
          float* y = ctx.out[0].f32() + first;
          for (int64_t i = 0; i < plane; ++i)
            for (int64_t j = 0; j < mg; ++j) y[j * plane + i] = tmp[i * mg + j];
          s.act.Apply(y, static_cast<size_t>(mg * plane));
        }
      }
    }
  }

 private:
  struct Layout {
    size_t acts_offset = 0, tmp_offset = 0, total = 0;
  };

  Layout MakeLayout(const Shape& x, const Shape& y) const {
    const PlaneGeom geom = nn::MakePlaneGeom(x, y, p_.h, p_.w);
    const int64_t plane = geom.out_h * geom.out_w;
    Layout l;
    l.acts_offset = Align64(static_cast<size_t>(x.Product(1, x.rank)));
    l.tmp_offset = l.acts_offset + g_.ActsBytes(plane);
    l.total = l.tmp_offset + static_cast<size_t>(plane * (y[1] / p_.group)) * sizeof(float);
    return l;
  }

  QConvParams p_;
  StaticGemm g_;
};

Status InferQConv(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  QConvParams p;
  EI_RETURN_IF_ERROR(ParseQConv(node, graph, &p));
  (*outs)[0].dtype = p.s.y_scale > 0.f ? DType::kInt8 : DType::kFloat32;
  (*outs)[0].dims = p.out_dims;
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateQConv(const Node& node, const Graph& graph) {
  QConvParams p;
  EI_RETURN_IF_ERROR(ParseQConv(node, graph, &p));
  return std::unique_ptr<Kernel>(new QConvKernel(p, *InputDesc(node, graph, 1)));
}

// --- QMaxPool: MaxPool of an int8 X (no padding beyond what leaves every window a tap) ---

struct QPoolParams {
  WindowAxis h, w;
  Dims out_dims;
};

Status ParseQMaxPool(const Node& node, const Graph& graph, QPoolParams* p) {
  if (node.inputs.size() != 1 || node.outputs.size() != 1)
    return NodeError(node, "expects 1 input and 1 output");
  const TensorDesc* x = InputDesc(node, graph, 0);
  if (!x || x->dtype != DType::kInt8) return NodeUnsupported(node, "X must be int8");
  EI_RETURN_IF_ERROR(nn::CheckNoActivation(node));
  int spatial;
  EI_RETURN_IF_ERROR(nn::CheckSpatialInput(node, *x, &spatial));
  WindowAxis axes[2];
  EI_RETURN_IF_ERROR(nn::ParseWindow(node, spatial, nullptr, /*allow_dilations=*/true, axes));
  bool ceil_mode;
  EI_RETURN_IF_ERROR(nn::FlagAttr(node, "ceil_mode", &ceil_mode));
  for (int i = 0; i < spatial; ++i) {
    if (axes[i].pad_begin >= axes[i].span() || axes[i].pad_end >= axes[i].span())
      return NodeError(node, "pads must be smaller than the window");
  }
  p->out_dims = {x->dims[0], x->dims[1]};
  EI_RETURN_IF_ERROR(nn::SpatialOutput(node, x->dims, spatial, axes, ceil_mode, &p->out_dims));
  if (spatial == 2) p->h = axes[0];
  p->w = axes[spatial - 1];
  return Status::Ok();
}

class QMaxPoolKernel final : public Kernel {
 public:
  explicit QMaxPoolKernel(const QPoolParams& p) : p_(p) {}
  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[0].shape;
    const PlaneGeom g = nn::MakePlaneGeom(xs, ctx.out[0].shape, p_.h, p_.w);
    quant::MaxPoolS8(static_cast<const int8_t*>(ctx.in[0].data), xs[0] * xs[1], g,
                     static_cast<int8_t*>(ctx.out[0].data));
  }

 private:
  QPoolParams p_;
};

Status InferQMaxPool(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  QPoolParams p;
  EI_RETURN_IF_ERROR(ParseQMaxPool(node, graph, &p));
  (*outs)[0].dtype = DType::kInt8;
  (*outs)[0].dims = p.out_dims;
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateQMaxPool(const Node& node, const Graph& graph) {
  QPoolParams p;
  EI_RETURN_IF_ERROR(ParseQMaxPool(node, graph, &p));
  return std::unique_ptr<Kernel>(new QMaxPoolKernel(p));
}

// --- QReshape: Reshape of an int8 X (the output aliases X's bytes; the kernel does nothing) ---

Status InferQReshape(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  if (node.inputs.size() != 1 || node.outputs.size() != 1)
    return NodeError(node, "expects 1 input and 1 output");
  const TensorDesc* x = InputDesc(node, graph, 0);
  if (!x || x->dtype != DType::kInt8) return NodeUnsupported(node, "X must be int8");
  const std::vector<int64_t>* shape = nullptr;
  EI_RETURN_IF_ERROR(nn::IntsAttr(node, "shape", &shape));
  if (!shape) return NodeError(node, "attribute 'shape' is required");
  if (shape->size() > static_cast<size_t>(kMaxRank) ||
      std::find(shape->begin(), shape->end(), 0) != shape->end())
    return NodeError(node, "shape " + DimsToString(*shape) + " must have rank <= " +
                               std::to_string(kMaxRank) + " and no 0 entry");
  SymbolicCount in_count, out_count;
  EI_RETURN_IF_ERROR(CountElements(x->dims, &in_count));
  Status st = CountElements(*shape, &out_count);
  if (!st.ok()) return NodeError(node, "shape: " + st.message());
  if (!(in_count == out_count))
    return NodeError(node, "cannot reshape " + DimsToString(x->dims) + " to " +
                               DimsToString(*shape) + ": element counts differ");
  (*outs)[0].dtype = DType::kInt8;
  (*outs)[0].dims = *shape;
  return Status::Ok();
}

// The session gives the output X's bytes; should it ever not, the bytes are copied.
class AliasKernel final : public Kernel {
 public:
  void Run(const KernelContext& ctx) override {
    if (ctx.out[0].data != ctx.in[0].data)
      std::memcpy(ctx.out[0].data, ctx.in[0].data, ctx.in[0].bytes());
  }
};

Result<std::unique_ptr<Kernel>> CreateQReshape(const Node&, const Graph&) {
  return std::unique_ptr<Kernel>(new AliasKernel());
}

constexpr OpDef kStaticInt8Ops[] = {
    {"QGemm", InferQGemm, CreateQGemm},
    {"QConv", InferQConv, CreateQConv},
    {"QMaxPool", InferQMaxPool, CreateQMaxPool},
    {"QReshape", InferQReshape, CreateQReshape, /*aliases_input=*/true},
};

}  // namespace

std::span<const OpDef> StaticInt8Ops() { return kStaticInt8Ops; }

}  // namespace edgeinfer
