// FP32 fully connected layer (the Dense op) on weights packed once, at convert time, in the
// layout the micro-kernel reads: OpenBLAS's sgemm re-packs B on every call, which at small M costs
// as much as the arithmetic.
//
// Packed layout ("panels"): W [N, K] (rows are output channels, Gemm's B with transB=1) becomes
// P = ceil(N / 16) panels of 16 output columns, each K rows of 16 contiguous floats:
//   packed[(p * K + k) * 16 + j] = W[16p + j, k]   (0 for 16p + j >= N)
// so a panel is one sequential stream of K x 64 bytes (one cache line per k), and the whole packed
// tensor [P, K, 16] is one stream too. The .eim file stores this tensor as is (zero-copy load).
//
// Kernels: the reference (dense_scalar: plain C++ on 4-float GCC vectors, so SSE2 on baseline
// x86-64 and NEON on aarch64; 3-4 row x 16 column tiles, ~30 GFLOP/s on Zen 3 at M = 16, memory
// speed at M = 1) and AVX2+FMA (sgemm_packed_avx2.cc: 6x16 register tiles, 12 ymm accumulators,
// next-panel prefetch, K-blocking; a 4-panel GEMV at M = 1). Select once per op with
// SelectDenseKernel. Both sum each output as bias, then k in order (the AVX2 one with FMA).
#pragma once

#include <cstdint>

#include "inference/ops/activation.h"
#include "inference/quant/cpu_features.h"

namespace edgeinfer {

constexpr int64_t kDensePanelWidth = 16;

inline int64_t DensePanels(int64_t n) { return (n + kDensePanelWidth - 1) / kDensePanelWidth; }
// Floats in the packed form of an [n, k] matrix: DensePanels(n) * k * 16.
inline int64_t DensePackedElements(int64_t n, int64_t k) {
  return DensePanels(n) * k * kDensePanelWidth;
}

// Packs row-major W [n, k] into `packed` (DensePackedElements(n, k) floats), padding with zeros.
void PackDensePanels(const float* w, int64_t n, int64_t k, float* packed);

// One Dense product: y[m, n] = act(x[m, k] * W^T + bias), W packed as above.
struct DenseArgs {
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  const float* x = nullptr;         // [m, k], row-major
  const float* w = nullptr;         // packed [DensePanels(n), k, 16]
  const float* bias = nullptr;      // [n], or nullptr
  float* y = nullptr;               // [m, n], row-major; not read
  const Activation* act = nullptr;  // nullptr = none
};

// No allocation, no checks: the arguments are what the op's infer validated. m == 0 does nothing.
using DenseFn = void (*)(const DenseArgs&);

namespace dense_scalar {
void Dense(const DenseArgs& a);
}  // namespace dense_scalar

#if defined(__x86_64__)
namespace dense_avx2 {
void Dense(const DenseArgs& a);  // needs quant::CpuSupports(kAvx2)
}  // namespace dense_avx2
#endif

// The kernel for `level`, a level the CPU supports: AVX2 for kAvx2 and kAvx512Vnni (no AVX-512
// kernel), the reference for kScalar and kNeon. Select once, e.g. with quant::BestCpuLevel(), when
// the op is created (the environment override EDGEINFER_CPU_LEVEL then applies to Dense too).
DenseFn SelectDenseKernel(quant::CpuLevel level);

}  // namespace edgeinfer
