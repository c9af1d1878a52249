// QuantGemm: the quantized GEMM step of Gemm and Conv (declared in nn_ops_internal.h).

#include "inference/ops/nn_ops_internal.h"
#include "inference/profiler.h"
#include "inference/quant/weight_format.h"

namespace edgeinfer::nn {

QuantGemm::QuantGemm(const TensorDesc& w) {
  quant::WeightFormat format = quant::WeightFormat::kInt8;
  quant::WeightFormatOf(w.dtype, &format);  // validated: always true here
  int64_t n = 0, k = 0;
  (void)quant::WeightMatrix(w.dims, &n, &k);  // validated: always ok here
  weights_ = quant::ViewWeights(format, n, k, w.data);
  kernels_ = quant::SelectQGemm(format, quant::BestCpuLevel());
}

size_t QuantGemm::ScratchBytes(int64_t m) const {
  return quant::ScratchBytes(weights_.format, m, weights_.k);
}

quant::QuantizedActs QuantGemm::Acts(int64_t m, void* scratch) const {
  return quant::ActsLayout(weights_.format, m, weights_.k, scratch);
}

void QuantGemm::RunQuantized(int64_t m, int64_t n_begin, int64_t n_end, const float* bias, float* y,
                             int64_t ldy, const void* scratch) const {
  quant::QGemmProblem p;
  p.m = m;
  p.w = n_begin == 0 && n_end == weights_.n ? weights_ : quant::SliceRows(weights_, n_begin, n_end);
  p.bias = bias != nullptr ? bias + n_begin : nullptr;
  p.y = y;
  p.ldy = ldy;
  kernels_.gemm(p, scratch);
}

void QuantGemm::Run(int64_t m, const float* x, int64_t ldx, int64_t n_begin, int64_t n_end,
                    const float* bias, float* y, int64_t ldy, void* scratch,
                    Profiler* profiler) const {
  quant::QGemmProblem p;
  p.m = m;
  p.x = x;
  p.ldx = ldx;
  p.w = n_begin == 0 && n_end == weights_.n ? weights_ : quant::SliceRows(weights_, n_begin, n_end);
  p.bias = bias != nullptr ? bias + n_begin : nullptr;
  p.y = y;
  p.ldy = ldy;
  if (kernels_.quantize != nullptr) {
    if (profiler != nullptr) {
      const int64_t start = Profiler::NowNs();
      kernels_.quantize(p, scratch);
      profiler->RecordQuantize(start, Profiler::NowNs() - start);
    } else {
      kernels_.quantize(p, scratch);
    }
  }
  kernels_.gemm(p, scratch);
}

}  // namespace edgeinfer::nn
