// AVX2 + FMA + F16C kernels (x86-64-v3: Haswell, Zen and later). The build targets baseline
// x86-64, so this file enables the ISA for its own functions (the pragma is the same as
// __attribute__((target(...))) on each of them, helpers included); qgemm.cc only hands these
// kernels out when CpuSupports(kAvx2). Headers are included before the pragma so that no inline
// function of theirs is compiled for AVX2.
#if defined(__x86_64__)

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "inference/quant/fp16.h"
#include "inference/quant/qgemm_kernels.h"
#include "inference/quant/quantize.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace edgeinfer::quant::avx2 {

namespace {

// --- Horizontal sums: one lane sum per accumulator, four accumulators at a time. ---

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
  for (; i + 4 <= count; i += 4) Store4(HSum4(acc[i], acc[i + 1], acc[i + 2], acc[i + 3]), out + i);
  for (; i < count; ++i) {
    S lanes[4];
    Store4(HSum4(acc[i], acc[i], acc[i], acc[i]), lanes);
    out[i] = lanes[0];
  }
}

// --- Activation quantization (bit-exact with QuantizeActRow). ---

float MaxAbs(const float* x, int64_t k) {
  const __m256 sign = _mm256_set1_ps(-0.f);
  __m256 vmax = _mm256_setzero_ps();
  int64_t i = 0;
  // max_ps(a, b) returns b when a is NaN, so NaN inputs are skipped as in the reference.
  for (; i + 8 <= k; i += 8)
    vmax = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), vmax);
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  float amax = _mm_cvtss_f32(m);
  for (; i < k; ++i) {
    const float a = std::fabs(x[i]);
    amax = a > amax ? a : amax;
  }
  return amax;
}

// 32 codes in element order. max_ps(NaN, -127) is -127, like QuantizeActValue; cvtps rounds half
// to even (the default MXCSR mode, as nearbyint's default mode).
__m256i Quantize32(const float* x, __m256 inv) {
  const __m256 lo = _mm256_set1_ps(-127.f);
  const __m256 hi = _mm256_set1_ps(127.f);
  __m256i c[4];
  for (int j = 0; j < 4; ++j) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), inv);
    c[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
  }
  // The packs work per 128-bit lane: the bytes come out as 4-element groups
  // [c0 c1 c2 c3 | c0' c1' c2' c3'] (' = upper half of each input), which the permute restores.
  const __m256i packed =
      _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
  return _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

float QuantizeRow(const float* x, int64_t k, int8_t* q, int64_t kp) {
  const float amax = MaxAbs(x, k);
  const bool zero = amax < kTinyScaleLimit;
  const float inv = zero ? 0.f : kInt8Max / amax;
  const __m256 vinv = _mm256_set1_ps(inv);
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), Quantize32(x + i, vinv));
  }
  for (; i < k; ++i) q[i] = QuantizeActValue(x[i], inv);
  for (; i < kp; ++i) q[i] = 0;
  return zero ? 0.f : amax / kInt8Max;
}

// corr[b] = -8 * (sum of block b's 32 codes), four blocks at a time: maddubs(1, q) adds pairs,
// madd(-8) adds pairs of those times -8, HSum4 adds each block's 8 lanes.
void Q4Corr(const int8_t* q, int64_t kp, int32_t* corr) {
  const __m256i one = _mm256_set1_epi8(1);
  const __m256i minus_eight = _mm256_set1_epi16(-8);
  __m256i lanes[4];
  const int64_t kb = kp / kQ4BlockSize;
  for (int64_t b0 = 0; b0 < kb; b0 += 4) {
    const int count = static_cast<int>(kb - b0 < 4 ? kb - b0 : 4);
    for (int i = 0; i < count; ++i) {
      const __m256i v =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + (b0 + i) * kQ4BlockSize));
      lanes[i] = _mm256_madd_epi16(_mm256_maddubs_epi16(one, v), minus_eight);
    }
    ReduceAll(lanes, count, corr + b0);
  }
}

// --- Kernels ---

__m256i Load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// The int8 tiles: MR rows of X times NR weight rows, K in steps of 32. vpmaddubsw multiplies u8 by
// s8 into int16 pair sums, which vpmaddwd by 1 widens to int32 (a pair is at most 2 * 127 * 127 =
// 32258, so nothing saturates). When no code of X is negative (after a ReLU, the common case) the
// codes are the u8 operand as they are: 3 instructions per 32 products. Otherwise x * w is
// |x| * (w with x's sign), via vpsignb: a fourth, and |x| once per row and step. The integer
// multiplies (and on Zen 3 the sign/abs) share two ports, so a 32-product step costs at least a
// cycle. Measured on Zen 3 at M = 16, K = 2048: about 85 GMAC/s unsigned, 60 signed; for the
// signed case wider tiles (3x3, 4x3, 2x4), |x| precomputed, sign by xor/sub, or int16 operands
// widened by shifts (2 vpmaddwd per 32 products) measured no faster.
constexpr int kInt8Mr = 4;      // rows of X per tile
constexpr int kInt8Nr = 2;      // weight rows per tile at M >= kInt8Mr
constexpr int kInt8GemvNr = 4;  // weight rows per tile for the rows left over (M = 1: GEMV)

template <bool kSigned, int MR, int NR>
void Int8Tile(const QGemmProblem& p, const QuantizedActs& a, int64_t m0, int64_t n0) {
  const int8_t* x = a.q + m0 * a.kp;
  const int8_t* w = static_cast<const int8_t*>(p.w.data) + n0 * a.kp;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[MR][NR];
#pragma GCC unroll 4
  for (auto& row : acc) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm256_setzero_si256();
  }
  for (int64_t k = 0; k < a.kp; k += 32) {
    __m256i wv[NR];
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) wv[j] = Load32(w + j * a.kp + k);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m256i xv = Load32(x + i * a.kp + k);
      const __m256i ax = kSigned ? _mm256_abs_epi8(xv) : xv;
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) {
        const __m256i wx = kSigned ? _mm256_sign_epi8(wv[j], xv) : wv[j];
        const __m256i pairs = _mm256_maddubs_epi16(ax, wx);
        acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(pairs, ones));
      }
    }
  }
  int32_t sums[MR * NR];
  ReduceAll(&acc[0][0], MR * NR, sums);
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) {
      const float scale = a.scales[m0 + i] * p.w.scales[n0 + j];
      p.y[(m0 + i) * p.ldy + n0 + j] =
          std::fma(static_cast<float>(sums[i * NR + j]), scale, BiasAt(p, n0 + j));
    }
  }
}

// True when no activation code is negative (the sign bits of every byte, ORed).
bool NoNegativeCodes(const QuantizedActs& a) {
  __m256i any = _mm256_setzero_si256();
  const int8_t* end = a.q + a.m * a.kp;
  for (const int8_t* q = a.q; q < end; q += 32) any = _mm256_or_si256(any, Load32(q));
  return _mm256_movemask_epi8(any) == 0;
}

// Rows [m0, m) of X (fewer than kInt8Mr) against weight rows [n0, n1), 1 x NR tiles: NR weight
// rows share each activation load (the M = 1 GEMV case).
template <bool kSigned, int NR>
void Int8Rows(const QGemmProblem& p, const QuantizedActs& a, int64_t m0, int64_t n0, int64_t n1) {
  for (int64_t m = m0; m < p.m; ++m) {
    int64_t n = n0;
    for (; n + NR <= n1; n += NR) Int8Tile<kSigned, 1, NR>(p, a, m, n);
    for (; n < n1; ++n) Int8Tile<kSigned, 1, 1>(p, a, m, n);
  }
}

// Blocks of kInt8Nr weight rows, each kept in L1 while every row of X passes over it (so at
// M = 16 each weight byte comes from memory once), in kInt8Mr x kInt8Nr tiles; the last N % Nr
// weight rows one at a time; the last M % Mr rows of X after all blocks, as 1 x 4 tiles.
template <bool kSigned>
void Int8Gemm(const QGemmProblem& p, const QuantizedActs& a) {
  constexpr int MR = kInt8Mr, NR = kInt8Nr;
  const int64_t m_tiled = p.m / MR * MR;
  if (m_tiled > 0) {
    int64_t n0 = 0;
    for (; n0 + NR <= p.w.n; n0 += NR) {
      for (int64_t m0 = 0; m0 < m_tiled; m0 += MR) Int8Tile<kSigned, MR, NR>(p, a, m0, n0);
    }
    for (; n0 < p.w.n; ++n0) {
      for (int64_t m0 = 0; m0 < m_tiled; m0 += MR) Int8Tile<kSigned, MR, 1>(p, a, m0, n0);
    }
  }
  Int8Rows<kSigned, kInt8GemvNr>(p, a, m_tiled, 0, p.w.n);
}

int32_t Load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// y[m][8g + r] = fma(acc[r], sx, bias[8g + r]) for the rows of group g that exist.
void StoreGroup(const QGemmProblem& p, int64_t m, int64_t g, __m256 acc, float sx) {
  const int64_t n0 = g * kQ4RowGroup;
  const int64_t valid = p.w.n - n0 < kQ4RowGroup ? p.w.n - n0 : kQ4RowGroup;
  float bias[kQ4RowGroup] = {};
  for (int64_t r = 0; r < valid && p.bias != nullptr; ++r) bias[r] = p.bias[n0 + r];
  const __m256 y = _mm256_fmadd_ps(acc, _mm256_set1_ps(sx), _mm256_loadu_ps(bias));
  if (valid == kQ4RowGroup) {
    _mm256_storeu_ps(p.y + m * p.ldy + n0, y);
    return;
  }
  float out[kQ4RowGroup];
  _mm256_storeu_ps(out, y);
  for (int64_t r = 0; r < valid; ++r) p.y[m * p.ldy + n0 + r] = out[r];
}

// MR rows of X times one group of 8 weight rows; lane r of every vector is weight row 8g + r.
template <int MR>
void Q4Tile(const QGemmProblem& p, const QuantizedActs& a, int64_t m0, int64_t g) {
  const int64_t kb = Q4BlocksPerRow(p.w.k);
  const BlockQ4x8* blocks = static_cast<const BlockQ4x8*>(p.w.data) + g * kb;
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[MR];
#pragma GCC unroll 4
  for (auto& v : acc) v = _mm256_setzero_ps();
  for (int64_t b = 0; b < kb; ++b) {
    const BlockQ4x8& blk = blocks[b];
    __m256i sum16[MR];
#pragma GCC unroll 4
    for (auto& v : sum16) v = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {  // chunk c: elements 4c..4c+3 (low), 16+4c.. (high nibbles)
      const __m256i v = Load32(blk.qs + 32 * c);
      const __m256i lo = _mm256_and_si256(v, low);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) {
        const int8_t* x = a.q + (m0 + i) * a.kp + b * kQ4BlockSize + 4 * c;
        // code (u8) * x (s8), x broadcast: the block's 8 pair sums add up to <= 30480 in int16.
        sum16[i] =
            _mm256_add_epi16(sum16[i], _mm256_maddubs_epi16(lo, _mm256_set1_epi32(Load4(x))));
        sum16[i] =
            _mm256_add_epi16(sum16[i], _mm256_maddubs_epi16(hi, _mm256_set1_epi32(Load4(x + 16))));
      }
    }
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.d)));
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m256i corr = _mm256_set1_epi32(a.corr[(m0 + i) * (a.kp / kQ4BlockSize) + b]);
      const __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(sum16[i], ones), corr);
      acc[i] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum), acc[i]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) StoreGroup(p, m0 + i, g, acc[i], a.scales[m0 + i]);
}

template <int MR, int NR>
void Fp16Tile(const QGemmProblem& p, int64_t m0, int64_t n0) {
  const int64_t kk = p.w.k;
  const uint16_t* w = static_cast<const uint16_t*>(p.w.data) + n0 * kk;
  const float* x = p.x + m0 * p.ldx;
  __m256 acc[MR][NR];
#pragma GCC unroll 4
  for (auto& row : acc) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm256_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 8 <= kk; k += 8) {
    __m256 wv[NR];
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) {
      wv[j] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + j * kk + k)));
    }
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * p.ldx + k);
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  float sums[MR * NR];
  ReduceAll(&acc[0][0], MR * NR, sums);
  for (; k < kk; ++k) {  // K % 8 tail
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) sums[i * NR + j] += _cvtsh_ss(w[j * kk + k]) * x[i * p.ldx + k];
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) {
      p.y[(m0 + i) * p.ldy + n0 + j] = sums[i * NR + j] + BiasAt(p, n0 + j);
    }
  }
}

}  // namespace

void QuantizeActs(const QGemmProblem& p, void* scratch) {
  const QuantizedActs a = ActsLayout(p.w.format, p.m, p.w.k, scratch);
  for (int64_t m = 0; m < p.m; ++m) {
    int8_t* q = a.q + m * a.kp;
    a.scales[m] = QuantizeRow(p.x + m * p.ldx, p.w.k, q, a.kp);
    if (a.corr != nullptr) Q4Corr(q, a.kp, a.corr + m * (a.kp / kQ4BlockSize));
  }
}

void GemmInt8(const QGemmProblem& p, const void* scratch) {
  const QuantizedActs a = ActsOf(p, scratch);
  if (NoNegativeCodes(a)) {
    Int8Gemm<false>(p, a);
  } else {
    Int8Gemm<true>(p, a);
  }
}

void GemmQ4(const QGemmProblem& p, const void* scratch) {
  const QuantizedActs a = ActsOf(p, scratch);
  ForEachQ4Tile(p.m, p.w.n, [&]<int MR>(int64_t m0, int64_t g) { Q4Tile<MR>(p, a, m0, g); });
}

void GemmFp16(const QGemmProblem& p, const void* /*scratch*/) {
  ForEachTile(p.m, p.w.n,
              [&]<int MR, int NR>(int64_t m0, int64_t n0) { Fp16Tile<MR, NR>(p, m0, n0); });
}

}  // namespace edgeinfer::quant::avx2

#pragma GCC pop_options

#endif  // defined(__x86_64__)
