// AVX2 versions of the static int8 kernels (requant.h). As in qgemm_avx2.cc, the ISA is enabled
// for this file's functions only, after the headers; SelectStatic hands them out only when
// CpuSupports(kAvx2). Same bits as the scalar code: _mm256_round_ps in the default rounding mode
// is round-half-even like nearbyint, and max(v, lo) returns lo for NaN like the scalar clamp.
#if defined(__x86_64__)

#include <immintrin.h>

#include "inference/quant/requant.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace edgeinfer::quant::avx2 {

namespace {

// 8 codes as int32 lanes.
__m256i Codes8(const float* x, __m256 inv, __m256 lo, __m256 hi) {
  __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x), inv);
  v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);  // max first: NaN -> lo
  return _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// 32 codes from four groups of 8 lanes, in order.
__m256i Pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);  // lanes interleave per 128-bit half
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace

void QuantizeClamp(const float* x, int64_t n, float inv_scale, float lo, float hi, int8_t* q) {
  const __m256 inv = _mm256_set1_ps(inv_scale), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i codes =
        Pack32(Codes8(x + i, inv, vlo, vhi), Codes8(x + i + 8, inv, vlo, vhi),
               Codes8(x + i + 16, inv, vlo, vhi), Codes8(x + i + 24, inv, vlo, vhi));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), codes);
  }
  for (; i < n; ++i) q[i] = ClampCode(x[i], inv_scale, lo, hi);
}

// 8 source rows at a time: for each column j, the 8 codes of rows i..i+7 are contiguous in dst
// (dst row j), so each column is one 8-byte store after an 8 x 8 transpose done in int32 lanes.
void RequantTranspose(const float* src, int64_t rows, int64_t cols, int64_t ld_src, float inv_scale,
                      float lo, float hi, int8_t* dst, int64_t ld_dst) {
  const __m256 inv = _mm256_set1_ps(inv_scale), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  int64_t i = 0;
  for (; i + 8 <= rows; i += 8) {
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      alignas(32) int32_t t[8][8];
      for (int r = 0; r < 8; ++r)
        _mm256_store_si256(reinterpret_cast<__m256i*>(t[r]),
                           Codes8(src + (i + r) * ld_src + j, inv, vlo, vhi));
      for (int c = 0; c < 8; ++c) {
        int8_t* out = dst + (j + c) * ld_dst + i;
        for (int r = 0; r < 8; ++r) out[r] = static_cast<int8_t>(t[r][c]);
      }
    }
    for (; j < cols; ++j)
      for (int r = 0; r < 8; ++r)
        dst[j * ld_dst + i + r] = ClampCode(src[(i + r) * ld_src + j], inv_scale, lo, hi);
  }
  for (; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      dst[j * ld_dst + i] = ClampCode(src[i * ld_src + j], inv_scale, lo, hi);
}

}  // namespace edgeinfer::quant::avx2

#pragma GCC pop_options

#endif  // __x86_64__
