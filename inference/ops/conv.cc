// Conv: ONNX Conv over 1-D (NCW) and 2-D (NCHW) inputs with groups, strides, dilations,
// asymmetric pads, an optional bias and a fused activation. Three kernels, picked at create from
// the literal channel and window dims:
//  - depthwise (group == C, any channel multiplier): a direct kernel per plane, no BLAS, because
//    the GEMM would have K = kh*kw;
//  - pointwise (1x1, stride 1, no pad): the input planes already are the GEMM's right matrix;
//  - otherwise im2col into scratch and one sgemm per group per sample, or per block of samples
//    when the output plane is narrow (see kBlockColumns).
// A Conv whose constant W is float16 or quantized (inference/quant/weight_format.h) runs one of
// two more kernels, both ending in the quantized GEMM rows[positions, K] * W[M/group, K]^T with
// the bias fused and a transposition into the output planes with the activation:
//  - DynamicQConvKernel, for int8 and int4 weights stored OHWI ([M, k..., C/group], attribute
//    weight_layout = "ohwi", what the converter writes): per sample and group the input planes
//    are quantized once, with one scale (max|x| / 127 over those planes, taken at run time), and
//    transposed to HWC in the same pass; the int8 im2row that QConv uses (quant::Im2RowHwc) then
//    builds the GEMM's rows in W's (k..., C/group) order. Bytes, not floats, move through the
//    im2row, and C*H*W values are quantized instead of positions * K. One GEMM takes the rows
//    of a block of samples (see kQBlockRows);
//  - QuantConvKernel, for float16 weights and for int8/int4 weights in ONNX's OIHW order (files
//    written before the OHWI layout): im2col transposed into float rows, each row quantized on
//    its own by the GEMM's quantize step (K-fold redundant work, kept for those files).
// Depthwise convs keep float32 weights (the converter never quantizes them: a K of kh*kw taps is
// too short for integer dot products to pay).
#include <algorithm>
#include <climits>

#include "inference/kernels/blas.h"
#include "inference/kernels/depthwise_conv.h"
#include "inference/kernels/im2col.h"
#include "inference/kernels/quant_acts.h"
#include "inference/ops/nn_ops_internal.h"
#include "inference/profiler.h"
#include "inference/quant/quantize.h"
#include "inference/quant/requant.h"

namespace edgeinfer::nn {

namespace {

struct ConvParams {
  int64_t group = 1;
  WindowAxis h, w;  // a 1-D conv keeps the default 1-high h
  Dims out_dims;
  bool depthwise = false;
  bool pointwise = false;
  bool quantized = false;  // W is not float32: QuantConvKernel or DynamicQConvKernel
  bool ohwi = false;       // W is [M, k..., C/group] (int8/int4 only): DynamicQConvKernel
  Activation act;
};

// The optional weight_layout attribute: "oihw" (ONNX's [M, C/group, k...], the default) or
// "ohwi" ([M, k..., C/group]), which only int8 and int4 weights may take.
Status ParseWeightLayout(const Node& node, const TensorDesc& w, bool* ohwi) {
  *ohwi = false;
  if (!node.attrs.Has("weight_layout")) return Status::Ok();
  const std::string layout = node.attrs.GetString("weight_layout");
  if (layout != "oihw" && layout != "ohwi")
    return NodeError(node, "weight_layout must be the string \"oihw\" or \"ohwi\"");
  *ohwi = layout == "ohwi";
  if (*ohwi && w.dtype != DType::kQInt8Channel && w.dtype != DType::kQInt4Block)
    return NodeUnsupported(node, std::string("weight_layout \"ohwi\" needs a qint8_channel or "
                                             "qint4_block weight, got ") +
                                     DTypeName(w.dtype));
  return Status::Ok();
}

// W is [M, C/group, k...] (or [M, k..., C/group] when ohwi) with literal dims; group divides C
// and M.
Status CheckWeight(const Node& node, const TensorDesc& x, const TensorDesc& w, bool ohwi,
                   int64_t* group) {
  if (w.dims.size() != x.dims.size())
    return NodeError(node, "weight " + DimsToString(w.dims) + " must have the input's rank " +
                               std::to_string(x.dims.size()));
  for (int64_t d : w.dims) {
    if (d <= 0)
      return NodeError(node,
                       "weight dims must be literal and positive, got " + DimsToString(w.dims));
  }
  EI_RETURN_IF_ERROR(IntAttr(node, "group", 1, group));
  const int64_t g = *group, c = x.dims[1], m = w.dims[0];
  if (g < 1 || g > kMaxWindowAttr)
    return NodeError(node, "group must be positive, got " + std::to_string(g));
  if (c % g != 0 || m % g != 0)
    return NodeError(node, "group " + std::to_string(g) + " must divide the input channels (" +
                               std::to_string(c) + ") and the output channels (" +
                               std::to_string(m) + ")");
  if ((ohwi ? w.dims.back() : w.dims[1]) != c / g)
    return NodeError(node, "weight " + DimsToString(w.dims) +
                               " must have C/group = " + std::to_string(c / g) + " input channels");
  return Status::Ok();
}

Status CheckBias(const Node& node, const TensorDesc* b, int64_t m) {
  if (b && (b->dims.size() != 1 || b->dims[0] != m))
    return NodeError(node,
                     "bias must be [" + std::to_string(m) + "], got " + DimsToString(b->dims));
  return Status::Ok();
}

void ChooseKernel(int64_t c, ConvParams* p) {
  const WindowAxis& h = p->h;
  const WindowAxis& w = p->w;
  p->depthwise = p->group == c;
  p->pointwise = h.kernel == 1 && w.kernel == 1 && h.stride == 1 && w.stride == 1 &&
                 h.pad_begin == 0 && h.pad_end == 0 && w.pad_begin == 0 && w.pad_end == 0;
}

// A W of a quantized kernel dtype: a GEMM conv (not depthwise); int4 rows are stored in groups
// of 8, so each conv group's M/group output channels must be a multiple of 8.
Status CheckQuantizedConv(const Node& node, const TensorDesc& w, int64_t c, int64_t k,
                          const ConvParams& p) {
  if (p.group == c && c > 1)
    return NodeUnsupported(
        node, std::string("a depthwise conv takes float32 weights, not ") + DTypeName(w.dtype));
  if (k > quant::kMaxQuantK)
    return NodeUnsupported(node, "C/group*kh*kw = " + std::to_string(k) +
                                     " exceeds the quantized kernels' " +
                                     std::to_string(quant::kMaxQuantK));
  if (w.dtype == DType::kQInt4Block && p.group > 1 && (w.dims[0] / p.group) % quant::kQ4RowGroup)
    return NodeUnsupported(node, "a grouped qint4_block conv needs M/group to be a multiple of 8");
  return Status::Ok();
}

Status ParseConv(const Node& node, const Graph& graph, ConvParams* p) {
  EI_RETURN_IF_ERROR(CheckInputsWithWeight(node, graph, 2, 3, /*weight=*/1));
  EI_RETURN_IF_ERROR(ParseActivation(node, &p->act));
  const TensorDesc& x = *InputDesc(node, graph, 0);
  const TensorDesc& w = *InputDesc(node, graph, 1);
  int spatial;
  EI_RETURN_IF_ERROR(CheckSpatialInput(node, x, &spatial));
  EI_RETURN_IF_ERROR(ParseWeightLayout(node, w, &p->ohwi));
  EI_RETURN_IF_ERROR(CheckWeight(node, x, w, p->ohwi, &p->group));
  const int64_t c = x.dims[1], m = w.dims[0];
  EI_RETURN_IF_ERROR(CheckBias(node, InputDesc(node, graph, 2), m));
  WindowAxis axes[2];
  const int64_t* kernel_dims = p->ohwi ? &w.dims[1] : &w.dims[2];
  EI_RETURN_IF_ERROR(ParseWindow(node, spatial, kernel_dims, /*allow_dilations=*/true, axes));
  p->out_dims = {x.dims[0], m};
  EI_RETURN_IF_ERROR(SpatialOutput(node, x.dims, spatial, axes, /*ceil_mode=*/false, &p->out_dims));
  const int64_t out_plane = spatial == 2 ? p->out_dims[2] * p->out_dims[3] : p->out_dims[2];
  if (spatial == 2) p->h = axes[0];
  p->w = axes[spatial - 1];
  const int64_t gemm_k = (c / p->group) * p->h.kernel * p->w.kernel;
  if (out_plane > INT_MAX || gemm_k > INT_MAX)
    return NodeUnsupported(node, "output plane or C/group*kh*kw exceeds the BLAS int range");
  ChooseKernel(c, p);
  p->quantized = w.dtype != DType::kFloat32;
  if (p->quantized) EI_RETURN_IF_ERROR(CheckQuantizedConv(node, w, c, gemm_k, *p));
  return Status::Ok();
}

// The float GEMM convs of a batch run in blocks of samples: one sgemm per block and group, with
// the block's im2col columns side by side ([K, n*P]). OpenBLAS packs W again on every call and
// runs short of columns when the output plane P is narrow; planes of kBlockColumns or more run a
// sample per call, straight into the output (a block's output [M, n*P] has to be copied into
// the samples' planes). Measured on the vibration CNN at batch 16: blocks of 128 columns (P = 64:
// 2 samples, P = 32: 4) took 3% off the model; 256 columns gained no more and grew its arena.
// The block's columns and output stay within kBlockScratchBytes, and the block depends on the
// batch only through min(batch, ...), so the scratch planned for the maximum batch covers every
// smaller one.
constexpr int64_t kBlockColumns = 128;
constexpr int64_t kBlockScratchBytes = int64_t{256} << 10;

// rows [m, n] (rows ld apart) = bias[row] (0 without a bias): the GEMM then accumulates onto
// it with beta = 1, which also spares OpenBLAS its separate pass zeroing C for beta = 0.
void FillBias(float* rows, const float* bias, int64_t m, int64_t n, int64_t ld) {
  for (int64_t i = 0; i < m; ++i) std::fill_n(rows + i * ld, n, bias ? bias[i] : 0.f);
}

class ConvKernel final : public Kernel {
 public:
  explicit ConvKernel(const ConvParams& p) : p_(p) {}

  // Depthwise: one padded input plane. GEMM: the columns of one group of one block of samples
  // (none for a pointwise conv run a sample at a time), and for blocks of several samples the
  // GEMM's output [M/group, n*P] before it is scattered into the samples' planes.
  size_t ScratchBytes(std::span<const Shape> in, std::span<const Shape> out) const override {
    const PlaneGeom g = MakePlaneGeom(in[0], out[0], p_.h, p_.w);
    if (p_.depthwise) {
      const int64_t floats = NeedsPadding(g) ? PaddedFloats(g) : 0;
      return static_cast<size_t>(floats) * sizeof(float);
    }
    return MakeLayout(in[0], out[0], g).total;
  }

  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[0].shape;
    const Shape& ys = ctx.out[0].shape;
    const PlaneGeom g = MakePlaneGeom(xs, ys, p_.h, p_.w);
    const int64_t c = xs[1], m = ys[1];
    const int64_t x_size = c * g.in_h * g.in_w, y_size = m * g.out_h * g.out_w;
    const float* w = ctx.in[1].f32();
    const float* bias = ctx.num_in > 2 ? ctx.in[2].f32() : nullptr;
    if (p_.depthwise) {
      for (int64_t n = 0; n < xs[0]; ++n) {
        RunDepthwise(ctx.in[0].f32() + n * x_size, w, bias, g, c, m,
                     static_cast<float*>(ctx.scratch), ctx.out[0].f32() + n * y_size);
      }
      return;
    }
    const Layout l = MakeLayout(xs, ys, g);
    auto* col = static_cast<float*>(ctx.scratch);
    auto* tmp = reinterpret_cast<float*>(static_cast<uint8_t*>(ctx.scratch) + l.tmp_offset);
    for (int64_t n0 = 0; n0 < xs[0]; n0 += l.block) {
      const int64_t nb = std::min(l.block, xs[0] - n0);
      const float* x = ctx.in[0].f32() + n0 * x_size;
      float* y = ctx.out[0].f32() + n0 * y_size;
      if (nb == 1) {
        RunSample(x, w, bias, g, c, m, col, y);
      } else {
        RunBlock(x, nb, w, bias, g, c, m, col, tmp, y);
      }
    }
  }

 private:
  struct Layout {
    int64_t block = 1;
    size_t tmp_offset = 0, total = 0;
  };

  static size_t Align64(size_t v) { return (v + 63) / 64 * 64; }

  Layout MakeLayout(const Shape& x, const Shape& y, const PlaneGeom& g) const {
    const int64_t cg = x[1] / p_.group, mg = y[1] / p_.group;
    const int64_t k = cg * g.h.kernel * g.w.kernel, plane = g.out_h * g.out_w;
    Layout l;
    const int64_t per_sample = (k + mg) * plane * static_cast<int64_t>(sizeof(float));
    if (plane < kBlockColumns) {
      l.block = std::min<int64_t>(x[0], kBlockColumns / plane);
      while (l.block > 1 && l.block * per_sample > kBlockScratchBytes) --l.block;
    }
    if (l.block <= 1) {
      l.block = 1;
      l.total = p_.pointwise ? 0 : static_cast<size_t>(k * plane) * sizeof(float);
      return l;
    }
    l.tmp_offset = Align64(static_cast<size_t>(k * l.block * plane) * sizeof(float));
    l.total = l.tmp_offset + static_cast<size_t>(mg * l.block * plane) * sizeof(float);
    return l;
  }

  // One sample; input channel ic feeds output channels ic * (m / c) ... (ic + 1) * (m / c) - 1,
  // so each input plane is padded once for all of them.
  void RunDepthwise(const float* x, const float* w, const float* bias, const PlaneGeom& g,
                    int64_t c, int64_t m, float* padded, float* y) const {
    const int64_t multiplier = m / c, taps = g.h.kernel * g.w.kernel;
    const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
    const bool pad = NeedsPadding(g);
    const PlaneGeom gp = pad ? PaddedGeom(g) : g;
    for (int64_t ic = 0; ic < c; ++ic) {
      const float* src = x + ic * in_plane;
      if (pad) {
        PadPlane(src, g, 0.f, padded);
        src = padded;
      }
      for (int64_t oc = ic * multiplier; oc < (ic + 1) * multiplier; ++oc) {
        float* out = y + oc * out_plane;
        DepthwiseConvPlane(src, w + oc * taps, bias ? bias[oc] : 0.f, gp, out);
        p_.act.Apply(out, static_cast<size_t>(out_plane));  // while the plane is in cache
      }
    }
  }

  // One sample: per group, Y_g [M/g, P] = bias + W_g [M/g, K] x cols [K, P], straight into the
  // output planes.
  void RunSample(const float* x, const float* w, const float* bias, const PlaneGeom& g, int64_t c,
                 int64_t m, float* col, float* y) const {
    const int64_t cg = c / p_.group, mg = m / p_.group;
    const int64_t k = cg * g.h.kernel * g.w.kernel;
    const int64_t in_plane = g.in_h * g.in_w, plane = g.out_h * g.out_w;
    for (int64_t grp = 0; grp < p_.group; ++grp) {
      const float* cols = x + grp * cg * in_plane;
      if (!p_.pointwise) {
        Im2Col(cols, cg, g, col);
        cols = col;
      }
      float* yg = y + grp * mg * plane;
      FillBias(yg, bias ? bias + grp * mg : nullptr, mg, plane, plane);
      Sgemm(false, false, mg, plane, k, 1.f, w + grp * mg * k, k, cols, plane, 1.f, yg, plane);
      p_.act.Apply(yg, static_cast<size_t>(mg * plane));
    }
  }

  // nb samples: per group, tmp [M/g, nb*P] = bias + W_g x cols [K, nb*P] (sample j's columns
  // at j*P), then each sample's P-wide slices of tmp go to its planes, activated there.
  void RunBlock(const float* x, int64_t nb, const float* w, const float* bias, const PlaneGeom& g,
                int64_t c, int64_t m, float* col, float* tmp, float* y) const {
    const int64_t cg = c / p_.group, mg = m / p_.group;
    const int64_t k = cg * g.h.kernel * g.w.kernel;
    const int64_t in_plane = g.in_h * g.in_w, plane = g.out_h * g.out_w;
    const int64_t cols = nb * plane;
    for (int64_t grp = 0; grp < p_.group; ++grp) {
      for (int64_t j = 0; j < nb; ++j)
        Im2Col(x + (j * c + grp * cg) * in_plane, cg, g, col + j * plane, cols);
      FillBias(tmp, bias ? bias + grp * mg : nullptr, mg, cols, cols);
      Sgemm(false, false, mg, cols, k, 1.f, w + grp * mg * k, k, col, cols, 1.f, tmp, cols);
      for (int64_t j = 0; j < nb; ++j) {
        float* yg = y + (j * m + grp * mg) * plane;
        for (int64_t oc = 0; oc < mg; ++oc)
          std::copy_n(tmp + oc * cols + j * plane, plane, yg + oc * plane);
        p_.act.Apply(yg, static_cast<size_t>(mg * plane));
      }
    }
  }

  ConvParams p_;
};

// Conv with a quantized W (see the top of the file). Scratch, 64-byte aligned pieces: Im2Col's
// columns [K, P] (P = out_h * out_w, K = C/group * kh * kw; none for a pointwise conv, whose
// input planes already are that matrix), their transposition: the rows [P, K], the GEMM's scratch
// for P rows, and the GEMM's output [P, M/group] before its transposition into the output planes.
class QuantConvKernel final : public Kernel {
 public:
  QuantConvKernel(const ConvParams& p, const TensorDesc& w)
      : p_(p), gemm_(w), transpose_(quant::SelectStatic(quant::BestCpuLevel()).transpose) {}

  size_t ScratchBytes(std::span<const Shape> in, std::span<const Shape> out) const override {
    const Layout l = MakeLayout(in[0], out[0]);
    return l.total;
  }

  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[0].shape;
    const Shape& ys = ctx.out[0].shape;
    const PlaneGeom g = MakePlaneGeom(xs, ys, p_.h, p_.w);
    const Layout l = MakeLayout(xs, ys);
    auto* base = static_cast<uint8_t*>(ctx.scratch);
    auto* cols = reinterpret_cast<float*>(base);
    auto* rows = reinterpret_cast<float*>(base + l.rows_offset);
    void* qscratch = base + l.qscratch_offset;
    auto* tmp = reinterpret_cast<float*>(base + l.tmp_offset);
    const int64_t c = xs[1], m = ys[1];
    const int64_t cg = c / p_.group, mg = m / p_.group;
    const int64_t in_plane = g.in_h * g.in_w, plane = g.out_h * g.out_w;
    const float* bias = ctx.num_in > 2 ? ctx.in[2].f32() : nullptr;
    for (int64_t n = 0; n < xs[0]; ++n) {
      const float* x = ctx.in[0].f32() + n * c * in_plane;
      float* y = ctx.out[0].f32() + n * m * plane;
      for (int64_t grp = 0; grp < p_.group; ++grp) {
        const float* xg = x + grp * cg * in_plane;
        if (!p_.pointwise) {
          Im2Col(xg, cg, g, cols);
          xg = cols;
        }
        transpose_(xg, l.k, plane, plane, rows, l.k);
        gemm_.Run(plane, rows, l.k, grp * mg, (grp + 1) * mg, bias, tmp, mg, qscratch,
                  ctx.profiler);
        TransposeInto(tmp, plane, mg, y + grp * mg * plane);
      }
    }
  }

 private:
  struct Layout {
    int64_t k = 0;
    size_t rows_offset = 0, qscratch_offset = 0, tmp_offset = 0, total = 0;
  };

  static size_t Align64(size_t v) { return (v + 63) / 64 * 64; }

  Layout MakeLayout(const Shape& x, const Shape& y) const {
    const PlaneGeom g = MakePlaneGeom(x, y, p_.h, p_.w);
    const int64_t plane = g.out_h * g.out_w;
    Layout l;
    l.k = x[1] / p_.group * g.h.kernel * g.w.kernel;
    const size_t matrix = Align64(static_cast<size_t>(plane * l.k) * sizeof(float));
    l.rows_offset = p_.pointwise ? 0 : matrix;
    l.qscratch_offset = l.rows_offset + matrix;
    l.tmp_offset = l.qscratch_offset + Align64(gemm_.ScratchBytes(plane));
    l.total = l.tmp_offset + static_cast<size_t>(plane * (y[1] / p_.group)) * sizeof(float);
    return l;
  }

  // out[j][i] = act(tmp[i][j]) for the group's mg output planes.
  void TransposeInto(const float* tmp, int64_t plane, int64_t mg, float* out) const {
    transpose_(tmp, plane, mg, mg, out, plane);
    p_.act.Apply(out, static_cast<size_t>(mg * plane));
  }

  ConvParams p_;
  QuantGemm gemm_;
  quant::TransposeFn transpose_ = nullptr;
};

// Conv with int8 or int4 weights in OHWI order (see the top of the file). A batch runs in
// blocks of samples, one GEMM per block and group over the rows of all of the block's samples
// (n*P rows, P = out_h * out_w; each row keeps its own sample's scale), up to kQBlockRows rows
// (measured: about 1% off the int8 vibration CNN at batch 16; its int8 GEMM already runs
// well on one sample's 32 or 64 rows).
// Scratch, 64-byte aligned pieces: one sample's group input as int8 HWC [H*W, C/group], the GEMM's
// activations for n*P rows (QuantGemm::Acts: the im2row's rows [n*P, Kp], their scales and the int4
// corrections), and the GEMM's output [n*P, M/group] before its transposition into the planes.
constexpr int64_t kQBlockRows = 256;
constexpr int64_t kQBlockScratchBytes = int64_t{256} << 10;

class DynamicQConvKernel final : public Kernel {
 public:
  DynamicQConvKernel(const ConvParams& p, const TensorDesc& w)
      : p_(p), gemm_(w), kernels_(quant::SelectStatic(quant::BestCpuLevel())) {}

  size_t ScratchBytes(std::span<const Shape> in, std::span<const Shape> out) const override {
    return MakeLayout(in[0], out[0]).total;
  }

  void Run(const KernelContext& ctx) override {
    const Shape& xs = ctx.in[0].shape;
    const Shape& ys = ctx.out[0].shape;
    const PlaneGeom g = MakePlaneGeom(xs, ys, p_.h, p_.w);
    const Layout l = MakeLayout(xs, ys);
    auto* base = static_cast<uint8_t*>(ctx.scratch);
    auto* hwc = reinterpret_cast<int8_t*>(base);
    void* acts_scratch = base + l.acts_offset;
    auto* tmp = reinterpret_cast<float*>(base + l.tmp_offset);
    const int64_t c = xs[1], m = ys[1];
    const int64_t cg = c / p_.group, mg = m / p_.group;
    const int64_t in_plane = g.in_h * g.in_w, plane = g.out_h * g.out_w;
    const float* bias = ctx.num_in > 2 ? ctx.in[2].f32() : nullptr;
    for (int64_t n0 = 0; n0 < xs[0]; n0 += l.block) {
      const int64_t nb = std::min(l.block, xs[0] - n0);
      const quant::QuantizedActs acts = gemm_.Acts(nb * plane, acts_scratch);
      for (int64_t grp = 0; grp < p_.group; ++grp) {
        const float* xg = ctx.in[0].f32() + (n0 * c + grp * cg) * in_plane;
        QuantizeRows(xg, nb, c * in_plane, cg, g, hwc, acts, ctx.profiler);
        gemm_.RunQuantized(nb * plane, grp * mg, (grp + 1) * mg, bias, tmp, mg, acts_scratch);
        for (int64_t j = 0; j < nb; ++j) {
          float* y = ctx.out[0].f32() + ((n0 + j) * m + grp * mg) * plane;
          kernels_.transpose(tmp + j * plane * mg, plane, mg, mg, y, plane);
          p_.act.Apply(y, static_cast<size_t>(mg * plane));
        }
      }
    }
  }

 private:
  struct Layout {
    int64_t block = 1;
    size_t acts_offset = 0, tmp_offset = 0, total = 0;
  };

  static size_t Align64(size_t v) { return (v + 63) / 64 * 64; }

  Layout MakeLayout(const Shape& x, const Shape& y) const {
    const PlaneGeom g = MakePlaneGeom(x, y, p_.h, p_.w);
    const int64_t plane = g.out_h * g.out_w, mg = y[1] / p_.group;
    Layout l;
    l.acts_offset = Align64(static_cast<size_t>(g.in_h * g.in_w * (x[1] / p_.group)));
    auto total = [&](int64_t block) {
      const size_t tmp_offset = l.acts_offset + Align64(gemm_.ScratchBytes(block * plane));
      return tmp_offset + static_cast<size_t>(block * plane * mg) * sizeof(float);
    };
    l.block = std::max<int64_t>(1, std::min<int64_t>(x[0], kQBlockRows / plane));
    while (l.block > 1 && total(l.block) > static_cast<size_t>(kQBlockScratchBytes)) --l.block;
    l.tmp_offset = l.acts_offset + Align64(gemm_.ScratchBytes(l.block * plane));
    l.total = total(l.block);
    return l;
  }

  // The GEMM's activations from one group's cg input planes of nb samples (sample_size floats
  // apart): per sample, one scale for all of its planes (as quant::QuantizeActRow would give a
  // row holding every value), codes transposed to HWC, the im2row into that sample's P rows and
  // their scale; then the int4 corrections of every row. The profiler's "quantize" span covers it
  // all: it is what replaces the GEMM's own per-row quantize step.
  void QuantizeRows(const float* x, int64_t nb, int64_t sample_size, int64_t cg, const PlaneGeom& g,
                    int8_t* hwc, const quant::QuantizedActs& a, Profiler* profiler) const {
    const int64_t start = profiler != nullptr ? Profiler::NowNs() : 0;
    const int64_t in_plane = g.in_h * g.in_w, plane = g.out_h * g.out_w;
    for (int64_t j = 0; j < nb; ++j) {
      const float* xs = x + j * sample_size;
      const float amax = MaxAbs(xs, cg * in_plane);
      const bool zero = amax < quant::kTinyScaleLimit;
      const float inv = zero ? 0.f : quant::kInt8Max / amax;
      kernels_.requant_transpose(xs, cg, in_plane, in_plane, inv, -127.f, 127.f, hwc, cg);
      quant::Im2RowHwc(hwc, cg, cg, g, a.kp, a.q + j * plane * a.kp);
      std::fill_n(a.scales + j * plane, plane, zero ? 0.f : amax / quant::kInt8Max);
    }
    if (a.corr != nullptr) Q4Corrections(a.q, a.m, a.kp, a.corr);
    if (profiler != nullptr) profiler->RecordQuantize(start, Profiler::NowNs() - start);
  }

  ConvParams p_;
  QuantGemm gemm_;
  quant::StaticKernels kernels_;
};

}  // namespace

Status InferConv(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  ConvParams p;
  EI_RETURN_IF_ERROR(ParseConv(node, graph, &p));
  (*outs)[0].dtype = DType::kFloat32;
  (*outs)[0].dims = p.out_dims;
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateConv(const Node& node, const Graph& graph) {
  ConvParams p;
  EI_RETURN_IF_ERROR(ParseConv(node, graph, &p));
  const TensorDesc& w = *InputDesc(node, graph, 1);
  if (p.ohwi) return std::unique_ptr<Kernel>(new DynamicQConvKernel(p, w));
  if (p.quantized) return std::unique_ptr<Kernel>(new QuantConvKernel(p, w));
  return std::unique_ptr<Kernel>(new ConvKernel(p));
}

}  // namespace edgeinfer::nn
