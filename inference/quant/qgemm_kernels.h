// Private to inference/quant: the per-level kernels behind SelectQGemm, and the tiling they share.
// Each level lives in its own file (qgemm_<level>.cc); only qgemm.cc and the tests call them.
#pragma once

#include <cstdint>

#include "inference/quant/qgemm.h"

namespace edgeinfer::quant {

namespace scalar {
void QuantizeActs(const QGemmProblem& p, void* scratch);
void GemmInt8(const QGemmProblem& p, const void* scratch);
void GemmQ4(const QGemmProblem& p, const void* scratch);
void GemmFp16(const QGemmProblem& p, const void* scratch);
}  // namespace scalar

#if defined(__x86_64__)
namespace avx2 {
void QuantizeActs(const QGemmProblem& p, void* scratch);
void GemmInt8(const QGemmProblem& p, const void* scratch);
void GemmQ4(const QGemmProblem& p, const void* scratch);
void GemmFp16(const QGemmProblem& p, const void* scratch);
}  // namespace avx2

namespace avx512 {  // quantizes with avx2::QuantizeActs (same bytes; AVX-512 adds nothing there)
void GemmInt8(const QGemmProblem& p, const void* scratch);
void GemmQ4(const QGemmProblem& p, const void* scratch);
void GemmFp16(const QGemmProblem& p, const void* scratch);
}  // namespace avx512
#endif

#if defined(__aarch64__)
namespace neon {  // the *Dot kernels use sdot and need CpuHasArmDotProd()
void QuantizeActs(const QGemmProblem& p, void* scratch);
void GemmInt8(const QGemmProblem& p, const void* scratch);
void GemmQ4(const QGemmProblem& p, const void* scratch);
void GemmFp16(const QGemmProblem& p, const void* scratch);
void GemmInt8Dot(const QGemmProblem& p, const void* scratch);
void GemmQ4Dot(const QGemmProblem& p, const void* scratch);
}  // namespace neon
#endif

// The activation layout of a gemm step's (read-only) scratch.
inline QuantizedActs ActsOf(const QGemmProblem& p, const void* scratch) {
  return ActsLayout(p.w.format, p.m, p.w.k, const_cast<void*>(scratch));
}

inline float BiasAt(const QGemmProblem& p, int64_t n) {
  return p.bias != nullptr ? p.bias[n] : 0.f;
}

// For kInt8 and kFp16: calls tile.template operator()<MR, NR>(m0, n0) over an M x N output in
// register tiles: blocks of 4 weight rows (kept in L1 while every row of X passes over them, so at
// M = 16 each weight byte comes from memory once), 4 x 2 tiles inside, 1 x 4 tiles for the last
// M % 4 rows (the M = 1 GEMV case: four weight rows share each activation load), then the last
// N % 4 weight rows.
template <class Tile>
inline void ForEachTile(int64_t m, int64_t n, Tile&& tile) {
  int64_t n0 = 0;
  for (; n0 + 4 <= n; n0 += 4) {
    int64_t m0 = 0;
    for (; m0 + 4 <= m; m0 += 4) {
      tile.template operator()<4, 2>(m0, n0);
      tile.template operator()<4, 2>(m0, n0 + 2);
    }
    for (; m0 < m; ++m0) tile.template operator()<1, 4>(m0, n0);
  }
  for (; n0 < n; ++n0) {
    int64_t m0 = 0;
    for (; m0 + 4 <= m; m0 += 4) tile.template operator()<4, 1>(m0, n0);
    for (; m0 < m; ++m0) tile.template operator()<1, 1>(m0, n0);
  }
}

// For kQ4: calls tile.template operator()<MR>(m0, g) over blocks of MR rows of X and groups g of
// 8 weight rows: each group's blocks stay in L1 while every row of X passes over them.
template <class Tile>
inline void ForEachQ4Tile(int64_t m, int64_t n, Tile&& tile) {
  for (int64_t g = 0; g < Q4RowGroups(n); ++g) {
    int64_t m0 = 0;
    for (; m0 + 4 <= m; m0 += 4) tile.template operator()<4>(m0, g);
    for (; m0 < m; ++m0) tile.template operator()<1>(m0, g);
  }
}

}  // namespace edgeinfer::quant
