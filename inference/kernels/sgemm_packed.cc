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

// Four floats in one 128-bit register (SSE2 on baseline x86-64, NEON on aarch64), GCC/Clang
// vector extensions: plain per-lane arithmetic, no ISA intrinsics.
typedef float V4 __attribute__((vector_size(16)));
constexpr int kLanes = 4;
constexpr int kVecs = kDensePanelWidth / kLanes;  // 4 per panel row

inline V4 Load(const float* p) {
  V4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Rows per tile: MR x 4 accumulators + 4 W vectors must fit the 16 (x86-64) or 32 (aarch64)
// vector registers. (x86-64 SSE2, 2048 x 784: 1, 2, 3 rows -> 27, 29, 33 GFLOP/s at M = 16;
// M = 1 runs at memory speed, like the AVX2 GEMV.)
#if defined(__aarch64__)
constexpr int kRows = 4;
#else
constexpr int kRows = 3;
#endif

// MR rows times one panel: 16 sums per row, starting from the bias and adding k in order (the
// order the SIMD kernels use), then stored (the valid columns) and activated.
template <int MR>
void Tile(const DenseArgs& a, int64_t row, int64_t p) {
  const int64_t k = a.k;
  const int64_t cols = std::min(kDensePanelWidth, a.n - p * kDensePanelWidth);
  const float* const w = a.w + p * k * kDensePanelWidth;
  const float* const x = a.x + row * k;
  float init[kDensePanelWidth] = {};
  for (int64_t j = 0; j < cols && a.bias != nullptr; ++j)
    init[j] = a.bias[p * kDensePanelWidth + j];
  V4 acc[MR][kVecs];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < kVecs; ++v) acc[r][v] = Load(init + v * kLanes);
  for (int64_t kk = 0; kk < k; ++kk) {
    V4 wv[kVecs];
    for (int v = 0; v < kVecs; ++v) wv[v] = Load(w + kk * kDensePanelWidth + v * kLanes);
    for (int r = 0; r < MR; ++r) {
      const float xv = x[r * k + kk];
      for (int v = 0; v < kVecs; ++v) acc[r][v] += xv * wv[v];
    }
  }
  for (int r = 0; r < MR; ++r) {
    float out[kDensePanelWidth];
    std::memcpy(out, acc[r], sizeof(out));
    float* y = a.y + (row + r) * a.n + p * kDensePanelWidth;
    std::memcpy(y, out, static_cast<size_t>(cols) * sizeof(float));
    if (a.act != nullptr) a.act->Apply(y, static_cast<size_t>(cols));
  }
}

}  // namespace

// The reference, and the kernel of CPUs without AVX2: row tiles times one panel at a time.
void Dense(const DenseArgs& a) {
  const int64_t panels = DensePanels(a.n);
  int64_t row = 0;
  for (; row + kRows <= a.m; row += kRows)
    for (int64_t p = 0; p < panels; ++p) Tile<kRows>(a, row, p);
  for (; row < a.m; ++row)
    for (int64_t p = 0; p < panels; ++p) Tile<1>(a, row, p);
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
