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

namespace {

// The 8 x 8 tile at src (rows ld_src apart) requantized and transposed into dst (rows ld_dst
// apart): dst row c gets the 8 codes of source column c. The codes are packed to bytes first
// (packs keep each 128-bit half apart: half h of rows0123 holds rows 0-3 of columns 4h..4h+3,
// row-major 4 x 4), a byte shuffle turns each half's 4 x 4 block column-major, and interleaving
// the 32-bit pieces of the rows 0-3 and rows 4-7 halves gives each column's 8 bytes together.
// The codes lie in [-127, 127], so the saturating packs change nothing.
void RequantTile8x8(const float* src, int64_t ld_src, __m256 inv, __m256 lo, __m256 hi, int8_t* dst,
                    int64_t ld_dst) {
  __m256i r[8];
  for (int i = 0; i < 8; ++i) r[i] = Codes8(src + i * ld_src, inv, lo, hi);
  const __m256i rows0123 =
      _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
  const __m256i rows4567 =
      _mm256_packs_epi16(_mm256_packs_epi32(r[4], r[5]), _mm256_packs_epi32(r[6], r[7]));
  const __m256i to_columns = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                              0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m256i a = _mm256_shuffle_epi8(rows0123, to_columns);
  const __m256i b = _mm256_shuffle_epi8(rows4567, to_columns);
  const __m256i lo_cols = _mm256_unpacklo_epi32(a, b);  // columns 0, 1 | 4, 5
  const __m256i hi_cols = _mm256_unpackhi_epi32(a, b);  // columns 2, 3 | 6, 7
  const __m128i c01 = _mm256_castsi256_si128(lo_cols), c45 = _mm256_extracti128_si256(lo_cols, 1);
  const __m128i c23 = _mm256_castsi256_si128(hi_cols), c67 = _mm256_extracti128_si256(hi_cols, 1);
  const __m128i halves[4] = {c01, c23, c45, c67};
  for (int h = 0; h < 4; ++h) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + (2 * h) * ld_dst), halves[h]);
    _mm_storeh_pd(reinterpret_cast<double*>(dst + (2 * h + 1) * ld_dst),
                  _mm_castsi128_pd(halves[h]));
  }
}

}  // namespace

// 8 x 8 tiles, each column's 8 codes one 8-byte store; the edges go through ClampCode.
void RequantTranspose(const float* src, int64_t rows, int64_t cols, int64_t ld_src, float inv_scale,
                      float lo, float hi, int8_t* dst, int64_t ld_dst) {
  const __m256 inv = _mm256_set1_ps(inv_scale), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  int64_t i = 0;
  for (; i + 8 <= rows; i += 8) {
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8)
      RequantTile8x8(src + i * ld_src + j, ld_src, inv, vlo, vhi, dst + j * ld_dst + i, ld_dst);
    for (; j < cols; ++j)
      for (int r = 0; r < 8; ++r)
        dst[j * ld_dst + i + r] = ClampCode(src[(i + r) * ld_src + j], inv_scale, lo, hi);
  }
  for (; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      dst[j * ld_dst + i] = ClampCode(src[i * ld_src + j], inv_scale, lo, hi);
}

namespace {

// The 8 x 8 float tile at src (rows ld_src apart) transposed into dst (rows ld_dst apart): the
// usual three rounds of interleaving (32-bit pairs, 64-bit pairs, 128-bit halves).
void TransposeTile8x8(const float* src, int64_t ld_src, float* dst, int64_t ld_dst) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld_src);
  __m256 t[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  __m256 u[8];
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ld_dst, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ld_dst, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}

}  // namespace

void Transpose(const float* src, int64_t rows, int64_t cols, int64_t ld_src, float* dst,
               int64_t ld_dst) {
  int64_t i = 0;
  for (; i + 8 <= rows; i += 8) {
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8)
      TransposeTile8x8(src + i * ld_src + j, ld_src, dst + j * ld_dst + i, ld_dst);
    for (; j < cols; ++j)
      for (int r = 0; r < 8; ++r) dst[j * ld_dst + i + r] = src[(i + r) * ld_src + j];
  }
  for (; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * ld_dst + i] = src[i * ld_src + j];
}

}  // namespace edgeinfer::quant::avx2

#pragma GCC pop_options

#endif  // __x86_64__
