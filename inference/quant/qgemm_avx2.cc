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
  // Four running maxima: one chain of dependent vmaxps measured 15-50% slower.
  __m256 vmax[4] = {};
  int64_t i = 0;
  // max_ps(a, b) returns b when a is NaN, so NaN inputs are skipped as in the reference.
  for (; i + 32 <= k; i += 32) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      vmax[j] = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i + 8 * j)), vmax[j]);
    }
  }
  for (; i + 8 <= k; i += 8) {
    vmax[0] = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), vmax[0]);
  }
  const __m256 all =
      _mm256_max_ps(_mm256_max_ps(vmax[0], vmax[1]), _mm256_max_ps(vmax[2], vmax[3]));
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(all), _mm256_extractf128_ps(all, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  float amax = _mm_cvtss_f32(m);
  for (; i < k; ++i) {
    const float a = std::fabs(x[i]);
    amax = a > amax ? a : amax;
  }
  return amax;
}

// 32 codes in element order, for inv = 127 / max|row| (or 0) of the row x belongs to. cvtps rounds
// half to even (the default MXCSR mode, as nearbyint's default mode). QuantizeActValue clamps to
// [-127, 127] before rounding; here the clamp is one integer max at the end, which gives the same
// codes: a finite x has |x * inv| <= 127 * (1 + 2^-23), which rounds into [-127, 127]; anything
// else is NaN (x NaN, or x infinite and so inv = 0), which converts to INT_MIN, saturates to -128
// in the packs, and becomes -127, as NaN does in QuantizeActValue.
__m256i Quantize32(const float* x, __m256 inv) {
  __m256i c[4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j)
    c[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), inv));
  // The packs work per 128-bit lane: the bytes come out as 4-element groups
  // [c0 c1 c2 c3 | c0' c1' c2' c3'] (' = upper half of each input), which the permute restores.
  const __m256i packed =
      _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
  const __m256i ordered =
      _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  return _mm256_max_epi8(ordered, _mm256_set1_epi8(-kInt8Max));
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
// multiplies and the sign share two ports on Zen 3, so a 32-product step costs at least a cycle
// unsigned and 1.5 signed (about 100 and 66 GMAC/s at 3.2 GHz). Measured on Zen 3 at M = 16:
// about 88-94 GMAC/s unsigned, 62 signed. For the signed case wider tiles (3x3, 4x3), |w| with
// x's sign, int16 operands (vpmovsxbw, 2 vpmaddwd per 32 products) measured no faster.
//
// 2 x 4 tiles: 8 accumulators, the ones vector, 4 weight vectors and a row of X (and |X|) fit the
// 16 ymm registers; each step loads 6 vectors for 8 multiply-adds (at M = 16 about as fast as
// 4 x 2 and 1 x 4; 4 x 3 and 3 x 4 spill). What costs more than the tile shape is the code around
// it (measured at K = 784: 75 GMAC/s before, 88 after):
//   - GCC 12 schedules all MR * NR vpmaddubsw of a step ahead of their adds, runs out of
//     registers, and spills one accumulator and copies the others every step. The empty asm on
//     each accumulator after its update keeps the order as written (it emits nothing).
//   - The horizontal sums and the dequantization run once per tile, which at K = 784 is every 25
//     steps: 8 lane sums by one hadd tree and the 8 outputs by one fma (same arithmetic as the
//     scalar reference: float(sum) * (sx * sw) + bias, fused) instead of 8 scalar ones.
constexpr int kInt8Mr = 2;  // rows of X per tile
constexpr int kInt8Nr = 4;  // weight rows per tile

// out[i * NR + j] = the 8 int32 lane sums of row i of X times weight row j over all of Kp. With
// kPrefetch, also asks for the NR weight rows that follow (the next block) a cache line at a time.
template <bool kSigned, int MR, int NR, bool kPrefetch>
void Int8Dots(const int8_t* x, const int8_t* w, int64_t kp, __m256i* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[MR][NR];
#pragma GCC unroll 4
  for (auto& row : acc) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm256_setzero_si256();
  }
  for (int64_t k = 0; k < kp; k += 32) {
    if (kPrefetch && k % 64 == 0) {
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) _mm_prefetch(w + (NR + j) * kp + k, _MM_HINT_T0);
    }
    __m256i wv[NR];
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) wv[j] = Load32(w + j * kp + k);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m256i xv = Load32(x + i * kp + k);
      const __m256i ax = kSigned ? _mm256_abs_epi8(xv) : xv;
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) {
        const __m256i wx = kSigned ? _mm256_sign_epi8(wv[j], xv) : wv[j];
        const __m256i pairs = _mm256_maddubs_epi16(ax, wx);
        acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(pairs, ones));
        asm("" : "+x"(acc[i][j]));  // see above: keeps GCC from spilling accumulators
      }
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) out[i * NR + j] = acc[i][j];
  }
}

// The lane sums of a[0..7], in order.
__m256i Sum8(const __m256i* a) {
  const __m256i lo =
      _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
  const __m256i hi =
      _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
  // lo = [a0..a3 over lanes 0-3 | a0..a3 over lanes 4-7], hi the same for a4..a7.
  return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20),
                          _mm256_permute2x128_si256(lo, hi, 0x31));
}

__m128 Bias4(const QGemmProblem& p, int64_t n0) {
  return p.bias != nullptr ? _mm_loadu_ps(p.bias + n0) : _mm_setzero_ps();
}

// y = fma(float(sum), sx * sw, bias) for weight rows n0..n0 + 3: rows m0 and m0 + 1 of Y from the
// lower and upper half of `sums`, or row m0 alone.
void Store2x4(const QGemmProblem& p, const QuantizedActs& a, int64_t m0, int64_t n0, __m256i sums) {
  const __m256 sx = _mm256_set_m128(_mm_set1_ps(a.scales[m0 + 1]), _mm_set1_ps(a.scales[m0]));
  const __m128 sw = _mm_loadu_ps(p.w.scales + n0);
  const __m128 bias = Bias4(p, n0);
  const __m256 scale = _mm256_mul_ps(sx, _mm256_set_m128(sw, sw));
  const __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, _mm256_set_m128(bias, bias));
  _mm_storeu_ps(p.y + m0 * p.ldy + n0, _mm256_castps256_ps128(y));
  _mm_storeu_ps(p.y + (m0 + 1) * p.ldy + n0, _mm256_extractf128_ps(y, 1));
}
void Store1x4(const QGemmProblem& p, const QuantizedActs& a, int64_t m0, int64_t n0, __m128i sums) {
  const __m128 scale = _mm_mul_ps(_mm_set1_ps(a.scales[m0]), _mm_loadu_ps(p.w.scales + n0));
  _mm_storeu_ps(p.y + m0 * p.ldy + n0, _mm_fmadd_ps(_mm_cvtepi32_ps(sums), scale, Bias4(p, n0)));
}

// MR rows of X from m0 times NR weight rows from n0, into Y.
template <bool kSigned, int MR, int NR, bool kPrefetch = false>
void Int8Tile(const QGemmProblem& p, const QuantizedActs& a, int64_t m0, int64_t n0) {
  __m256i acc[MR * NR];
  Int8Dots<kSigned, MR, NR, kPrefetch>(a.q + m0 * a.kp,
                                       static_cast<const int8_t*>(p.w.data) + n0 * a.kp, a.kp, acc);
  if constexpr (MR == 2 && NR == 4) {
    Store2x4(p, a, m0, n0, Sum8(acc));
  } else if constexpr (MR == 1 && NR == 4) {
    Store1x4(p, a, m0, n0, HSum4(acc[0], acc[1], acc[2], acc[3]));
  } else {  // the last N % 4 weight rows
    int32_t sums[MR * NR];
    ReduceAll(acc, MR * NR, sums);
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
}

// True when no activation code is negative (the sign bits of every byte, ORed).
bool NoNegativeCodes(const QuantizedActs& a) {
  __m256i any = _mm256_setzero_si256();
  const int8_t* end = a.q + a.m * a.kp;
  for (const int8_t* q = a.q; q < end; q += 32) any = _mm256_or_si256(any, Load32(q));
  return _mm256_movemask_epi8(any) == 0;
}

// Blocks of kInt8Nr weight rows, each kept in L1 while every row of X passes over it (so at
// M = 16 each weight byte comes from memory once), in kInt8Mr x kInt8Nr tiles and a 1 x kInt8Nr
// tile for an odd last row (the only tile at M = 1: four weight rows share each activation load);
// then the last N % kInt8Nr weight rows one at a time. The first tile of a block prefetches the
// next block, whose rows otherwise arrive from L3 or memory while the multiplies wait (measured:
// 2% at M = 16, 5-10% at M = 1).
template <bool kSigned>
void Int8Gemm(const QGemmProblem& p, const QuantizedActs& a) {
  constexpr int MR = kInt8Mr, NR = kInt8Nr;
  const int64_t m_tiled = p.m / MR * MR;
  int64_t n0 = 0;
  for (; n0 + NR <= p.w.n; n0 += NR) {
    const bool next_block = n0 + 2 * NR <= p.w.n;
    int64_t m0 = 0;
    if (next_block && m_tiled > 0) {
      Int8Tile<kSigned, MR, NR, true>(p, a, 0, n0);
      m0 = MR;
    }
    for (; m0 < m_tiled; m0 += MR) Int8Tile<kSigned, MR, NR>(p, a, m0, n0);
    if (next_block && m_tiled == 0 && m0 < p.m) {
      Int8Tile<kSigned, 1, NR, true>(p, a, m0, n0);
      ++m0;
    }
    for (; m0 < p.m; ++m0) Int8Tile<kSigned, 1, NR>(p, a, m0, n0);
  }
  for (; n0 < p.w.n; ++n0) {
    for (int64_t m0 = 0; m0 < m_tiled; m0 += MR) Int8Tile<kSigned, MR, 1>(p, a, m0, n0);
    for (int64_t m0 = m_tiled; m0 < p.m; ++m0) Int8Tile<kSigned, 1, 1>(p, a, m0, n0);
  }
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
