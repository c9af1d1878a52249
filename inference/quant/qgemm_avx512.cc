// AVX-512 VNNI kernels (Ice Lake, Sapphire Rapids, Zen 4 and later). As in qgemm_avx2.cc, the ISA
// is enabled for this file's functions only and qgemm.cc hands them out only when
// CpuSupports(kAvx512Vnni). Activations are quantized by avx2::QuantizeActs (the same bytes).
//
// vpdpbusd multiplies u8 by s8 and adds groups of 4 into int32 lanes, with no 16-bit
// intermediate to saturate. int8 weights: it is fed u8 (x + 128) (an xor with 0x80) and the
// epilogue subtracts 128 * row_sums[n]; the wrap-around int32 arithmetic is exact because the true
// sum fits. Q4: the codes are the u8 operand and the accumulator starts at the activation's corr.
#if defined(__x86_64__)

// GCC 12 warns about its own _mm512_undefined_* placeholders once they are inlined here
// (GCC bug 105593, fixed in 13); the state must be set before the header to apply to its lines.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "inference/quant/qgemm_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")

namespace edgeinfer::quant::avx512 {

namespace {

__m256i Fold(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}
__m256 Fold(__m512 v) {
  return _mm256_add_ps(_mm512_castps512_ps256(v),
                       _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

__m128i HSum4(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i abcd = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
  return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
}
__m128 HSum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}
void Store4(__m128i v, int32_t* out) { _mm_storeu_si128(reinterpret_cast<__m128i*>(out), v); }
void Store4(__m128 v, float* out) { _mm_storeu_ps(out, v); }

// out[i] = sum of the lanes of acc[i], i < count.
template <class V, class S>
void ReduceAll(const V* acc, int count, S* out) {
  int i = 0;
  for (; i + 4 <= count; i += 4) {
    Store4(HSum4(Fold(acc[i]), Fold(acc[i + 1]), Fold(acc[i + 2]), Fold(acc[i + 3])), out + i);
  }
  for (; i < count; ++i) {
    S lanes[4];
    const auto v = Fold(acc[i]);
    Store4(HSum4(v, v, v, v), lanes);
    out[i] = lanes[0];
  }
}

__m256i Load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

template <int MR, int NR>
void Int8Tile(const QGemmProblem& p, const QuantizedActs& a, int64_t m0, int64_t n0) {
  const int8_t* x = a.q + m0 * a.kp;
  const int8_t* w = static_cast<const int8_t*>(p.w.data) + n0 * a.kp;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i acc[MR][NR];
#pragma GCC unroll 4
  for (auto& row : acc) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm512_setzero_si512();
  }
  for (int64_t k = 0; k < a.kp; k += 64) {
    // Kp is a multiple of 32: the last step may cover 32 bytes; masked-off bytes load as 0
    // (x + 128 = 128 there, times w = 0).
    const __mmask64 mask = a.kp - k >= 64 ? ~__mmask64{0} : (__mmask64{1} << (a.kp - k)) - 1;
    __m512i wv[NR];
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_maskz_loadu_epi8(mask, w + j * a.kp + k);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m512i xu = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, x + i * a.kp + k), flip);
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], xu, wv[j]);
    }
  }
  int32_t sums[MR * NR];
  ReduceAll(&acc[0][0], MR * NR, sums);
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) {
      const uint32_t offset = 128u * static_cast<uint32_t>(p.w.row_sums[n0 + j]);
      const auto sum = static_cast<int32_t>(static_cast<uint32_t>(sums[i * NR + j]) - offset);
      const float scale = a.scales[m0 + i] * p.w.scales[n0 + j];
      p.y[(m0 + i) * p.ldy + n0 + j] = std::fma(static_cast<float>(sum), scale, BiasAt(p, n0 + j));
    }
  }
}

int32_t Load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// y[m][8g + r] = fma(acc[r], sx, bias[8g + r]) for the rows of group g that exist (masked).
void StoreGroup(const QGemmProblem& p, int64_t m, int64_t g, __m256 acc, float sx) {
  const int64_t n0 = g * kQ4RowGroup;
  const int64_t valid = p.w.n - n0 < kQ4RowGroup ? p.w.n - n0 : kQ4RowGroup;
  const auto mask = static_cast<__mmask8>((1u << valid) - 1);
  const __m256 bias =
      p.bias != nullptr ? _mm256_maskz_loadu_ps(mask, p.bias + n0) : _mm256_setzero_ps();
  _mm256_mask_storeu_ps(p.y + m * p.ldy + n0, mask, _mm256_fmadd_ps(acc, _mm256_set1_ps(sx), bias));
}

// As avx2::Q4Tile (lane r is weight row 8g + r), with vpdpbusd accumulating the codes (u8) times
// the broadcast activations (s8) straight into int32, starting from the block's correction.
template <int MR>
void Q4Tile(const QGemmProblem& p, const QuantizedActs& a, int64_t m0, int64_t g) {
  const int64_t kb = Q4BlocksPerRow(p.w.k);
  const BlockQ4x8* blocks = static_cast<const BlockQ4x8*>(p.w.data) + g * kb;
  const __m256i low = _mm256_set1_epi8(0x0F);
  __m256 acc[MR];
#pragma GCC unroll 4
  for (auto& v : acc) v = _mm256_setzero_ps();
  for (int64_t b = 0; b < kb; ++b) {
    const BlockQ4x8& blk = blocks[b];
    __m256i sum[MR];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      sum[i] = _mm256_set1_epi32(a.corr[(m0 + i) * (a.kp / kQ4BlockSize) + b]);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m256i v = Load32(blk.qs + 32 * c);
      const __m256i lo = _mm256_and_si256(v, low);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) {
        const int8_t* x = a.q + (m0 + i) * a.kp + b * kQ4BlockSize + 4 * c;
        sum[i] = _mm256_dpbusd_epi32(sum[i], lo, _mm256_set1_epi32(Load4(x)));
        sum[i] = _mm256_dpbusd_epi32(sum[i], hi, _mm256_set1_epi32(Load4(x + 16)));
      }
    }
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.d)));
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) acc[i] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum[i]), acc[i]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) StoreGroup(p, m0 + i, g, acc[i], a.scales[m0 + i]);
}

template <int MR, int NR>
void Fp16Tile(const QGemmProblem& p, int64_t m0, int64_t n0) {
  const int64_t kk = p.w.k;
  const uint16_t* w = static_cast<const uint16_t*>(p.w.data) + n0 * kk;
  const float* x = p.x + m0 * p.ldx;
  __m512 acc[MR][NR];
#pragma GCC unroll 4
  for (auto& row : acc) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kk; k += 16) {
    // The K % 16 tail: masked loads, the lanes past K are 0 in both operands.
    const __mmask16 mask = kk - k >= 16 ? __mmask16{0xFFFF} : (__mmask16{1} << (kk - k)) - 1;
    __m512 wv[NR];
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j)
      wv[j] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, w + j * kk + k));
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * p.ldx + k);
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  float sums[MR * NR];
  ReduceAll(&acc[0][0], MR * NR, sums);
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) {
      p.y[(m0 + i) * p.ldy + n0 + j] = sums[i * NR + j] + BiasAt(p, n0 + j);
    }
  }
}

}  // namespace

void GemmInt8(const QGemmProblem& p, const void* scratch) {
  const QuantizedActs a = ActsOf(p, scratch);
  ForEachTile(p.m, p.w.n,
              [&]<int MR, int NR>(int64_t m0, int64_t n0) { Int8Tile<MR, NR>(p, a, m0, n0); });
}

void GemmQ4(const QGemmProblem& p, const void* scratch) {
  const QuantizedActs a = ActsOf(p, scratch);
  ForEachQ4Tile(p.m, p.w.n, [&]<int MR>(int64_t m0, int64_t g) { Q4Tile<MR>(p, a, m0, g); });
}

void GemmFp16(const QGemmProblem& p, const void* /*scratch*/) {
  ForEachTile(p.m, p.w.n,
              [&]<int MR, int NR>(int64_t m0, int64_t n0) { Fp16Tile<MR, NR>(p, m0, n0); });
}

}  // namespace edgeinfer::quant::avx512

#pragma GCC pop_options
#pragma GCC diagnostic pop

#endif  // defined(__x86_64__)
