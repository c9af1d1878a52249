#include "inference/kernels/sgemm_packed.h"

#include <algorithm>
#include <cstring>

namespace edgeinfer {

void PackDensePanels(const float* w, int64_t n, int64_t k, float* packed) {
  const int64_t panels = DensePanels(n);
  for (int64_t p = 0; p < panels; ++p) {
    float* panel = packed + p * k * kDensePanelWidth;
    const int64_t cols = std::min(kDensePanelWidth, n - p * kDensePanelWidth);
    if (cols < kDensePanelWidth)
      std::memset(panel, 0, static_cast<size_t>(k * kDensePanelWidth) * sizeof(float));
    for (int64_t j = 0; j < cols; ++j) {
      const float* row = w + (p * kDensePanelWidth + j) * k;
      for (int64_t kk = 0; kk < k; ++kk) panel[kk * kDensePanelWidth + j] = row[kk];
    }
  }
}

namespace dense_scalar {

// The reference: one dot product per output, bias first, activation on each finished row.
void Dense(const DenseArgs& a) {
  for (int64_t i = 0; i < a.m; ++i) {
    const float* x = a.x + i * a.k;
    float* y = a.y + i * a.n;
    for (int64_t c = 0; c < a.n; ++c) {
      const float* w = a.w + (c / kDensePanelWidth) * a.k * kDensePanelWidth + c % kDensePanelWidth;
      float acc = a.bias != nullptr ? a.bias[c] : 0.f;
      for (int64_t kk = 0; kk < a.k; ++kk) acc += x[kk] * w[kk * kDensePanelWidth];
      y[c] = acc;
    }
    if (a.act != nullptr) a.act->Apply(y, static_cast<size_t>(a.n));
  }
}

}  // namespace dense_scalar

DenseFn SelectDenseKernel(quant::CpuLevel level) {
#if defined(__x86_64__)
  if (level == quant::CpuLevel::kAvx2 || level == quant::CpuLevel::kAvx512Vnni)
    return dense_avx2::Dense;
#endif
  (void)level;
  return dense_scalar::Dense;
}

}  // namespace edgeinfer
