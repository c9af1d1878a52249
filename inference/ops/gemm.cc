// Gemm and MatMul: both end in one OpenBLAS call per matrix product (kernels/blas.h routes the
// M == 1 and N == 1 cases to sgemv), followed by a single pass adding C and the fused activation.
// A Gemm whose constant B is float16 or quantized (inference/quant/weight_format.h) runs on the
// quantized kernels instead (QuantGemm), with C and the activation in float as before.
#include <algorithm>

#include "inference/kernels/affine.h"
#include "inference/kernels/blas.h"
#include "inference/ops/nn_ops_internal.h"
#include "inference/ops/shape_util.h"

namespace edgeinfer::nn {

namespace {

// --- Gemm ---

struct GemmParams {
  bool trans_a = false;
  bool trans_b = false;
  float alpha = 1.f;
  float beta = 1.f;
  Activation act;
  Dims out_dims;
  bool quantized = false;  // B is a constant weight of a quantized kernel format (not float32)
  bool c_is_bias = false;  // C is a length-N row added once per output row with beta 1
};

// M as one symbolic dim: the product of `dims`, or 0 with *ok = false when more than one of them
// is a batch dim (then M is batch^2 x c, which no single dim can state).
int64_t SymbolicProduct(const Dims& dims, size_t count, bool* ok) {
  int64_t coeff = 1;
  int batch_dims = 0;
  for (size_t i = 0; i < count; ++i) {
    coeff *= dims[i] < 0 ? -dims[i] : dims[i];
    batch_dims += dims[i] < 0;
  }
  *ok = batch_dims <= 1;
  return batch_dims == 1 ? -coeff : coeff;
}

// C broadcasts to [M, N]: a scalar, [N] or [1], or [M or 1, N or 1].
Status CheckGemmC(const Node& node, const TensorDesc& c, int64_t m, bool m_known, int64_t n) {
  const Dims& d = c.dims;
  const int64_t cols = d.empty() ? 1 : d.back();
  const int64_t rows = d.size() == 2 ? d[0] : 1;
  const bool rows_ok = rows == 1 || (m_known && rows == m);
  if (d.size() > 2 || (cols != 1 && cols != n) || !rows_ok) {
    const std::string mn = m_known ? DimsToString({m, n}) : "[M, " + std::to_string(n) + "]";
    return NodeError(node, "C " + DimsToString(d) + " does not broadcast to " + mn);
  }
  return Status::Ok();
}

Status ParseGemmAttrs(const Node& node, GemmParams* p) {
  EI_RETURN_IF_ERROR(ParseActivation(node, &p->act));
  EI_RETURN_IF_ERROR(FlagAttr(node, "transA", &p->trans_a));
  EI_RETURN_IF_ERROR(FlagAttr(node, "transB", &p->trans_b));
  EI_RETURN_IF_ERROR(FloatAttr(node, "alpha", 1.f, &p->alpha));
  return FloatAttr(node, "beta", 1.f, &p->beta);
}

// B of another dtype than float32 runs on the quantized kernels, which take exactly
// Y[M, N] = A[M, K] * B[N, K]^T (+ a bias row): the converter folds alpha into the weight.
Status CheckQuantizedGemm(const Node& node, const TensorDesc& b, int64_t k, const GemmParams& p) {
  if (p.trans_a || !p.trans_b || p.alpha != 1.f)
    return NodeUnsupported(node, std::string("a ") + DTypeName(b.dtype) +
                                     " B needs transA=0, transB=1 and alpha=1");
  if (k > quant::kMaxQuantK)
    return NodeUnsupported(node, "K = " + std::to_string(k) + " exceeds the quantized kernels' " +
                                     std::to_string(quant::kMaxQuantK));
  return Status::Ok();
}

Status ParseGemm(const Node& node, const Graph& graph, GemmParams* p) {
  EI_RETURN_IF_ERROR(CheckInputsWithWeight(node, graph, 2, 3, /*weight=*/1));
  EI_RETURN_IF_ERROR(ParseGemmAttrs(node, p));
  const Dims& a = InputDesc(node, graph, 0)->dims;
  const Dims& b = InputDesc(node, graph, 1)->dims;
  if (a.size() < 2 || (p->trans_a && a.size() != 2))
    return NodeError(node, "A must be 2-D (or rank > 2 with transA=0), got " + DimsToString(a));
  if (b.size() != 2) return NodeError(node, "B must be 2-D, got " + DimsToString(b));
  const int64_t k = p->trans_a ? a[0] : a.back();
  const int64_t k_b = p->trans_b ? b[1] : b[0];
  const int64_t n = p->trans_b ? b[0] : b[1];
  if (k <= 0 || k_b <= 0 || n <= 0)
    return NodeError(node, "K and N must be literal and positive: A " + DimsToString(a) + ", B " +
                               DimsToString(b));
  if (k != k_b)
    return NodeError(node, "K mismatch: A " + DimsToString(a) + " gives K = " + std::to_string(k) +
                               ", B " + DimsToString(b) + " gives K = " + std::to_string(k_b));
  bool m_known = true;
  const int64_t m = p->trans_a ? a[1] : SymbolicProduct(a, a.size() - 1, &m_known);
  p->quantized = InputDesc(node, graph, 1)->dtype != DType::kFloat32;
  if (p->quantized) EI_RETURN_IF_ERROR(CheckQuantizedGemm(node, *InputDesc(node, graph, 1), k, *p));
  if (const TensorDesc* c = InputDesc(node, graph, 2)) {
    EI_RETURN_IF_ERROR(CheckGemmC(node, *c, m, m_known, n));
    const Dims& d = c->dims;
    p->c_is_bias = p->beta == 1.f && !d.empty() && d.back() == n && (d.size() == 1 || d[0] == 1);
  }
  p->out_dims = p->trans_a ? Dims{a[1]} : Dims(a.begin(), a.end() - 1);
  p->out_dims.push_back(n);
  return Status::Ok();
}

// The Gemm epilogue shared by the float and quantized kernels: y += beta * C (C broadcast to
// [m, n]; none when `c` is null or beta is 0), then the fused activation. Row by row, so the
// activation reads what the C pass just wrote from cache.
void AddCAndActivate(const GemmParams& p, const TensorView* c, float* y, int64_t m, int64_t n) {
  if (!c || p.beta == 0.f) {
    p.act.Apply(y, static_cast<size_t>(m * n));
    return;
  }
  const Shape& cs = c->shape;
  const int64_t c_rows = cs.rank == 2 ? cs[0] : 1;
  const int64_t c_cols = cs.rank >= 1 ? cs[cs.rank - 1] : 1;
  for (int64_t i = 0; i < m; ++i) {
    const float* c_row = c->f32() + (c_rows == 1 ? 0 : i * c_cols);
    AddBroadcastMatrix(y + i * n, 1, n, c_row, 1, c_cols, p.beta);
    p.act.Apply(y + i * n, static_cast<size_t>(n));
  }
}

class GemmKernel final : public Kernel {
 public:
  explicit GemmKernel(const GemmParams& p) : p_(p) {}

  void Run(const KernelContext& ctx) override {
    const Shape& as = ctx.in[0].shape;
    const Shape& bs = ctx.in[1].shape;
    const int64_t m = p_.trans_a ? as[1] : as.Product(0, as.rank - 1);
    const int64_t k = p_.trans_a ? as[0] : as[as.rank - 1];
    const int64_t n = p_.trans_b ? bs[0] : bs[1];
    float* y = ctx.out[0].f32();
    Sgemm(p_.trans_a, p_.trans_b, m, n, k, p_.alpha, ctx.in[0].f32(), p_.trans_a ? m : k,
          ctx.in[1].f32(), p_.trans_b ? k : n, 0.f, y, n);
    const TensorView* c = ctx.num_in > 2 && ctx.in[2].data ? &ctx.in[2] : nullptr;
    AddCAndActivate(p_, c, y, m, n);
  }

 private:
  GemmParams p_;
};

// Gemm with a quantized B: the activations' rows are quantized into scratch, the integer GEMM
// writes Y with C fused as the bias when it is a plain row (the converter's case), then any other
// C and the activation follow as in the float kernel.
class QuantGemmKernel final : public Kernel {
 public:
  QuantGemmKernel(const GemmParams& p, const TensorDesc& b) : p_(p), gemm_(b) {}

  size_t ScratchBytes(std::span<const Shape> in, std::span<const Shape> out) const override {
    (void)out;
    return gemm_.ScratchBytes(in[0].Product(0, in[0].rank - 1));
  }

  void Run(const KernelContext& ctx) override {
    const Shape& as = ctx.in[0].shape;
    const int64_t m = as.Product(0, as.rank - 1);
    const int64_t k = as[as.rank - 1];
    const int64_t n = ctx.in[1].shape[0];
    float* y = ctx.out[0].f32();
    const TensorView* c = ctx.num_in > 2 && ctx.in[2].data ? &ctx.in[2] : nullptr;
    const float* bias = c && p_.c_is_bias ? c->f32() : nullptr;
    gemm_.Run(m, ctx.in[0].f32(), k, 0, n, bias, y, n, ctx.scratch, ctx.profiler);
    AddCAndActivate(p_, bias ? nullptr : c, y, m, n);  // a fused bias is already in y
  }

 private:
  GemmParams p_;
  QuantGemm gemm_;
};

// --- MatMul ---

struct MatMulParams {
  Activation act;
  Dims out_dims;
};

Status ParseMatMul(const Node& node, const Graph& graph, MatMulParams* p) {
  EI_RETURN_IF_ERROR(CheckInputs(node, graph, 2, 2));
  EI_RETURN_IF_ERROR(ParseActivation(node, &p->act));
  const Dims& a = InputDesc(node, graph, 0)->dims;
  const Dims& b = InputDesc(node, graph, 1)->dims;
  if (a.empty() || b.empty()) return NodeError(node, "MatMul operands must have rank >= 1");
  // Rank-1 operands are promoted: A [K] -> [1, K], B [K] -> [K, 1].
  const Dims a2 = a.size() == 1 ? Dims{1, a[0]} : a;
  const Dims b2 = b.size() == 1 ? Dims{b[0], 1} : b;
  if (a2.back() != b2[b2.size() - 2])
    return NodeError(node, "K mismatch: A " + DimsToString(a) + " and B " + DimsToString(b));
  Dims batch;
  Status st = BroadcastDims(Dims(a2.begin(), a2.end() - 2), Dims(b2.begin(), b2.end() - 2), &batch);
  if (!st.ok()) return st.WithContext(NodeContext(node) + ": batch dims");
  p->out_dims = batch;
  if (a.size() >= 2) p->out_dims.push_back(a2[a2.size() - 2]);
  if (b.size() >= 2) p->out_dims.push_back(b2.back());
  return Status::Ok();
}

// The batch part (all but the last two dims) of a matrix operand's concrete shape.
Shape BatchShape(const Shape& s) {
  Shape b;
  b.rank = std::max(s.rank - 2, 0);
  for (int i = 0; i < b.rank; ++i) b[i] = s[i];
  return b;
}

class MatMulKernel final : public Kernel {
 public:
  explicit MatMulKernel(const MatMulParams& p) : p_(p) {}

  void Run(const KernelContext& ctx) override {
    const Shape& as = ctx.in[0].shape;
    const Shape& bs = ctx.in[1].shape;
    const int64_t m = as.rank >= 2 ? as[as.rank - 2] : 1;
    const int64_t k = as[as.rank - 1];
    const int64_t n = bs.rank >= 2 ? bs[bs.rank - 1] : 1;
    const Shape a_batch = BatchShape(as), b_batch = BatchShape(bs);
    const float* a = ctx.in[0].f32();
    const float* b = ctx.in[1].f32();
    float* y = ctx.out[0].f32();
    if (b_batch.NumElements() == 1) {
      // One B for every batch: A's batches stack into the rows of a single GEMM.
      Sgemm(false, false, a_batch.NumElements() * m, n, k, 1.f, a, k, b, n, 0.f, y, n);
    } else {
      RunBatched(a_batch, b_batch, m, n, k, a, b, y);
    }
    p_.act.Apply(y, static_cast<size_t>(ctx.out[0].shape.NumElements()));
  }

 private:
  // One GEMM per output batch entry; broadcast operands step with stride 0 on their size-1 dims.
  static void RunBatched(const Shape& a_batch, const Shape& b_batch, int64_t m, int64_t n,
                         int64_t k, const float* a, const float* b, float* y) {
    Shape out;
    out.rank = std::max(a_batch.rank, b_batch.rank);
    int64_t a_strides[kMaxRank], b_strides[kMaxRank];
    BroadcastStrides(a_batch, out.rank, a_strides);
    BroadcastStrides(b_batch, out.rank, b_strides);
    for (int i = 0; i < out.rank; ++i) {
      const int ai = i - (out.rank - a_batch.rank), bi = i - (out.rank - b_batch.rank);
      out[i] = std::max(ai >= 0 ? a_batch[ai] : 1, bi >= 0 ? b_batch[bi] : 1);
    }
    const int64_t batches = out.NumElements();
    for (int64_t idx = 0; idx < batches; ++idx) {
      int64_t a_off = 0, b_off = 0, rest = idx;
      for (int i = out.rank - 1; i >= 0; --i) {
        const int64_t coord = rest % out[i];
        rest /= out[i];
        a_off += coord * a_strides[i];
        b_off += coord * b_strides[i];
      }
      Sgemm(false, false, m, n, k, 1.f, a + a_off * m * k, k, b + b_off * k * n, n, 0.f,
            y + idx * m * n, n);
    }
  }

  MatMulParams p_;
};

}  // namespace

Status InferGemm(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  GemmParams p;
  EI_RETURN_IF_ERROR(ParseGemm(node, graph, &p));
  (*outs)[0].dtype = DType::kFloat32;
  (*outs)[0].dims = p.out_dims;
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateGemm(const Node& node, const Graph& graph) {
  GemmParams p;
  EI_RETURN_IF_ERROR(ParseGemm(node, graph, &p));
  if (p.quantized)
    return std::unique_ptr<Kernel>(new QuantGemmKernel(p, *InputDesc(node, graph, 1)));
  return std::unique_ptr<Kernel>(new GemmKernel(p));
}

Status InferMatMul(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs) {
  MatMulParams p;
  EI_RETURN_IF_ERROR(ParseMatMul(node, graph, &p));
  (*outs)[0].dtype = DType::kFloat32;
  (*outs)[0].dims = p.out_dims;
  return Status::Ok();
}

Result<std::unique_ptr<Kernel>> CreateMatMul(const Node& node, const Graph& graph) {
  MatMulParams p;
  EI_RETURN_IF_ERROR(ParseMatMul(node, graph, &p));
  return std::unique_ptr<Kernel>(new MatMulKernel(p));
}

}  // namespace edgeinfer::nn
