// The reference kernels: the specification every SIMD level is tested against. Plain loops in the
// order qgemm.h states; integer sums in int32, float steps fused (std::fma) as the SIMD ones are.
#include <cmath>

#include "inference/quant/fp16.h"
#include "inference/quant/qgemm_kernels.h"
#include "inference/quant/quantize.h"

namespace edgeinfer::quant::scalar {

namespace {

// sum_j (code(r, j) - 8) * x[j] over one block of row r of a group.
int32_t DotQ4Block(const BlockQ4x8& b, int r, const int8_t* x) {
  int32_t sum = 0;
  for (int j = 0; j < kQ4BlockSize; ++j) sum += (Q4Code(b, r, j) - 8) * x[j];
  return sum;
}

}  // namespace

void QuantizeActs(const QGemmProblem& p, void* scratch) {
  const QuantizedActs a = ActsLayout(p.w.format, p.m, p.w.k, scratch);
  for (int64_t m = 0; m < p.m; ++m) {
    int8_t* q = a.q + m * a.kp;
    a.scales[m] = QuantizeActRow(p.x + m * p.ldx, p.w.k, q, a.kp);
    if (a.corr != nullptr) Q4Correction(q, a.kp, a.corr + m * (a.kp / kQ4BlockSize));
  }
}

void GemmInt8(const QGemmProblem& p, const void* scratch) {
  const QuantizedActs a = ActsOf(p, scratch);
  const auto* wq = static_cast<const int8_t*>(p.w.data);
  for (int64_t m = 0; m < p.m; ++m) {
    const int8_t* x = a.q + m * a.kp;
    for (int64_t n = 0; n < p.w.n; ++n) {
      const int8_t* w = wq + n * a.kp;
      int32_t sum = 0;
      for (int64_t k = 0; k < a.kp; ++k) sum += x[k] * w[k];
      p.y[m * p.ldy + n] =
          std::fma(static_cast<float>(sum), a.scales[m] * p.w.scales[n], BiasAt(p, n));
    }
  }
}

void GemmQ4(const QGemmProblem& p, const void* scratch) {
  const QuantizedActs a = ActsOf(p, scratch);
  const auto* blocks = static_cast<const BlockQ4x8*>(p.w.data);
  const int64_t kb = Q4BlocksPerRow(p.w.k);
  for (int64_t m = 0; m < p.m; ++m) {
    const int8_t* x = a.q + m * a.kp;
    for (int64_t n = 0; n < p.w.n; ++n) {
      const BlockQ4x8* group = blocks + n / kQ4RowGroup * kb;
      const int r = static_cast<int>(n % kQ4RowGroup);
      float acc = 0.f;
      for (int64_t b = 0; b < kb; ++b) {
        const int32_t sum = DotQ4Block(group[b], r, x + b * kQ4BlockSize);
        acc = std::fma(Fp16ToFp32(group[b].d[r]), static_cast<float>(sum), acc);
      }
      p.y[m * p.ldy + n] = std::fma(acc, a.scales[m], BiasAt(p, n));
    }
  }
}

void GemmFp16(const QGemmProblem& p, const void* /*scratch*/) {
  const auto* wh = static_cast<const uint16_t*>(p.w.data);
  for (int64_t m = 0; m < p.m; ++m) {
    const float* x = p.x + m * p.ldx;
    for (int64_t n = 0; n < p.w.n; ++n) {
      const uint16_t* w = wh + n * p.w.k;
      float acc = 0.f;
      for (int64_t k = 0; k < p.w.k; ++k) acc += Fp16ToFp32(w[k]) * x[k];
      p.y[m * p.ldy + n] = acc + BiasAt(p, n);
    }
  }
}

}  // namespace edgeinfer::quant::scalar
