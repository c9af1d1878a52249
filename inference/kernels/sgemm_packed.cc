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

namespace {

// MR rows times one panel: 16 sums per row, bias first, then k in order (the order the SIMD
// kernels use). Plain C++ that compilers vectorize along the 16 columns (SSE2 on baseline x86,
// NEON on aarch64), so this reference is also a usable fallback.
template <int MR>
void Tile(const DenseArgs& a, int64_t row, int64_t p, float* y) {
  const int64_t k = a.k;
  const int64_t cols = std::min(kDensePanelWidth, a.n - p * kDensePanelWidth);
  const float* w = a.w + p * k * kDensePanelWidth;
  float acc[MR][kDensePanelWidth];
  for (int r = 0; r < MR; ++r)
    for (int64_t j = 0; j < kDensePanelWidth; ++j)
      acc[r][j] = a.bias != nullptr && j < cols ? a.bias[p * kDensePanelWidth + j] : 0.f;
  for (int64_t kk = 0; kk < k; ++kk) {
    const float* wk = w + kk * kDensePanelWidth;
    for (int r = 0; r < MR; ++r) {
      const float xv = a.x[(row + r) * k + kk];
      for (int64_t j = 0; j < kDensePanelWidth; ++j) acc[r][j] += xv * wk[j];
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* out = y + r * a.n;
    std::memcpy(out, acc[r], static_cast<size_t>(cols) * sizeof(float));
    if (a.act != nullptr) a.act->Apply(out, static_cast<size_t>(cols));
  }
}

// Rows per tile: the accumulators (4 vectors per row) must fit the vector registers: 16 on
// x86-64 (SSE2), 32 on aarch64.
#if defined(__aarch64__)
constexpr int kRows = 4;
#else
constexpr int kRows = KR;
#endif

}  // namespace

void Dense(const DenseArgs& a) {
  const int64_t panels = DensePanels(a.n);
  int64_t row = 0;
  for (; row + kRows <= a.m; row += kRows)
    for (int64_t p = 0; p < panels; ++p)
      Tile<kRows>(a, row, p, a.y + row * a.n + p * kDensePanelWidth);
  for (; row < a.m; ++row)
    for (int64_t p = 0; p < panels; ++p)
      Tile<1>(a, row, p, a.y + row * a.n + p * kDensePanelWidth);
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
