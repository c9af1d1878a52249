// aarch64 Advanced SIMD kernels (compiled only there; Advanced SIMD is part of the base ISA).
// Arm multiplies s8 by s8, so neither of the x86 tricks is needed. Two variants of the integer
// kernels share one template: with the Armv8.2 dotprod extension (sdot: 16 products into 4 int32
// lanes, Cortex-A55/A76 and later, Raspberry Pi 5), compiled for that extension and chosen by
// qgemm.cc when CpuHasArmDotProd(); and without it (Cortex-A53/A72, Raspberry Pi 3/4):
// smull + smlal2 into int16 (two products of |v| <= 127 fit) and sadalp into int32.
#if defined(__aarch64__)

#include <arm_neon.h>

#include <cmath>

#include "inference/quant/fp16.h"
#include "inference/quant/qgemm_kernels.h"
#include "inference/quant/quantize.h"

namespace edgeinfer::quant::neon {

namespace {

// Dot: acc + the 16 products a[i] * b[i], in 4 int32 lanes (which lane gets which product
// differs between the variants; only the total matters).
// DotLane<l>: lane i of acc + sum_j a[4i + j] * b[4l + j], i.e. 4 rows of 4 codes times the same 4
// activations (Q4: a group's chunk holds 4 rows x 4 elements per 16 bytes).
struct Sdot {
  __attribute__((target("arch=armv8.2-a+dotprod"))) static int32x4_t Dot(int32x4_t acc, int8x16_t a,
                                                                         int8x16_t b) {
    return vdotq_s32(acc, a, b);
  }
  template <int kLane>
  __attribute__((target("arch=armv8.2-a+dotprod"))) static int32x4_t DotLane(int32x4_t acc,
                                                                             int8x16_t a,
                                                                             int8x16_t b) {
    return vdotq_laneq_s32(acc, a, b, kLane);
  }
};
struct Plain {
  static int32x4_t Dot(int32x4_t acc, int8x16_t a, int8x16_t b) {
    const int16x8_t prod = vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b);
    return vpadalq_s16(acc, prod);
  }
  template <int kLane>
  static int32x4_t DotLane(int32x4_t acc, int8x16_t a, int8x16_t b) {
    const int8x16_t bl = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(b), kLane));
    // Products of rows 0-1 and rows 2-3 (|code - 8| * |x| <= 1016), pairwise added twice.
    const int16x8_t p01 = vmull_s8(vget_low_s8(a), vget_low_s8(bl));
    const int16x8_t p23 = vmull_high_s8(a, bl);
    return vpadalq_s16(acc, vpaddq_s16(p01, p23));
  }
};

// --- Activation quantization (bit-exact with QuantizeActRow). ---

float MaxAbs(const float* x, int64_t k) {
  float32x4_t vmax = vdupq_n_f32(0.f);
  int64_t i = 0;
  // maxnm returns the number when one operand is NaN: NaN inputs are skipped, as in the reference.
  for (; i + 4 <= k; i += 4) vmax = vmaxnmq_f32(vmax, vabsq_f32(vld1q_f32(x + i)));
  float amax = vmaxnmvq_f32(vmax);
  for (; i < k; ++i) {
    const float a = std::fabs(x[i]);
    amax = a > amax ? a : amax;
  }
  return amax;
}

// 16 codes: clamp (maxnm maps NaN to -127, as QuantizeActValue), round half to even (fcvtns).
int8x16_t Quantize16(const float* x, float inv) {
  const float32x4_t lo = vdupq_n_f32(-127.f);
  const float32x4_t hi = vdupq_n_f32(127.f);
  int16x4_t h[4];
  for (int j = 0; j < 4; ++j) {
    const float32x4_t v = vmulq_n_f32(vld1q_f32(x + 4 * j), inv);
    h[j] = vqmovn_s32(vcvtnq_s32_f32(vminnmq_f32(vmaxnmq_f32(v, lo), hi)));
  }
  return vcombine_s8(vqmovn_s16(vcombine_s16(h[0], h[1])), vqmovn_s16(vcombine_s16(h[2], h[3])));
}

float QuantizeRow(const float* x, int64_t k, int8_t* q, int64_t kp) {
  const float amax = MaxAbs(x, k);
  const bool zero = amax < kTinyScaleLimit;
  const float inv = zero ? 0.f : kInt8Max / amax;
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) vst1q_s8(q + i, Quantize16(x + i, inv));
  for (; i < k; ++i) q[i] = QuantizeActValue(x[i], inv);
  for (; i < kp; ++i) q[i] = 0;
  return zero ? 0.f : amax / kInt8Max;
}

// --- Kernels ---

template <class D, int MR, int NR>
void Int8Tile(const QGemmProblem& p, const QuantizedActs& a, int64_t m0, int64_t n0) {
  const int8_t* x = a.q + m0 * a.kp;
  const int8_t* w = static_cast<const int8_t*>(p.w.data) + n0 * a.kp;
  int32x4_t acc[MR][NR];
#pragma GCC unroll 4
  for (auto& row : acc) {
#pragma GCC unroll 4
    for (auto& v : row) v = vdupq_n_s32(0);
  }
  for (int64_t k = 0; k < a.kp; k += 16) {
    int8x16_t wv[NR];
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) wv[j] = vld1q_s8(w + j * a.kp + k);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const int8x16_t xv = vld1q_s8(x + i * a.kp + k);
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) acc[i][j] = D::Dot(acc[i][j], xv, wv[j]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) {
      const float scale = a.scales[m0 + i] * p.w.scales[n0 + j];
      p.y[(m0 + i) * p.ldy + n0 + j] =
          std::fma(static_cast<float>(vaddvq_s32(acc[i][j])), scale, BiasAt(p, n0 + j));
    }
  }
}

// y[m][8g + r] = fma(acc[r], sx, bias[8g + r]) for the rows of group g that exist.
void StoreGroup(const QGemmProblem& p, int64_t m, int64_t g, const float32x4_t acc[2], float sx) {
  const int64_t n0 = g * kQ4RowGroup;
  const int64_t valid = p.w.n - n0 < kQ4RowGroup ? p.w.n - n0 : kQ4RowGroup;
  float bias[kQ4RowGroup] = {};
  for (int64_t r = 0; r < valid && p.bias != nullptr; ++r) bias[r] = p.bias[n0 + r];
  float out[kQ4RowGroup];
#pragma GCC unroll 4
  for (int h = 0; h < 2; ++h)
    vst1q_f32(out + 4 * h, vfmaq_n_f32(vld1q_f32(bias + 4 * h), acc[h], sx));
  for (int64_t r = 0; r < valid; ++r) p.y[m * p.ldy + n0 + r] = out[r];
}

// Chunk c of a block: 16 bytes per half h (rows 4h..4h+3) x 4 elements; the low nibbles are
// elements 4c.. (lane c of the first 16 activations), the high ones 16 + 4c.. (lane c of the next).
template <class D, int kChunk, int MR>
void Q4Chunk(const BlockQ4x8& blk, const int8x16_t x[MR][2], int32x4_t sum[MR][2]) {
  const uint8x16_t low_mask = vdupq_n_u8(0x0F);
  const int8x16_t eight = vdupq_n_s8(8);
#pragma GCC unroll 4
  for (int h = 0; h < 2; ++h) {
    const uint8x16_t v = vld1q_u8(blk.qs + 32 * kChunk + 16 * h);
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, low_mask)), eight);
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      sum[i][h] = D::template DotLane<kChunk>(sum[i][h], lo, x[i][0]);
      sum[i][h] = D::template DotLane<kChunk>(sum[i][h], hi, x[i][1]);
    }
  }
}

// MR rows of X times one group of 8 weight rows (lanes of acc[i][h]: rows 8g + 4h + lane).
// s8 x s8 products, so no offset correction is needed.
template <class D, int MR>
void Q4Tile(const QGemmProblem& p, const QuantizedActs& a, int64_t m0, int64_t g) {
  const int64_t kb = Q4BlocksPerRow(p.w.k);
  const BlockQ4x8* blocks = static_cast<const BlockQ4x8*>(p.w.data) + g * kb;
  float32x4_t acc[MR][2];
#pragma GCC unroll 4
  for (auto& row : acc) {
#pragma GCC unroll 4
    for (auto& v : row) v = vdupq_n_f32(0.f);
  }
  for (int64_t b = 0; b < kb; ++b) {
    const BlockQ4x8& blk = blocks[b];
    int8x16_t x[MR][2];
    int32x4_t sum[MR][2];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const int8_t* xb = a.q + (m0 + i) * a.kp + b * kQ4BlockSize;
      x[i][0] = vld1q_s8(xb);
      x[i][1] = vld1q_s8(xb + 16);
      sum[i][0] = sum[i][1] = vdupq_n_s32(0);
    }
    Q4Chunk<D, 0, MR>(blk, x, sum);
    Q4Chunk<D, 1, MR>(blk, x, sum);
    Q4Chunk<D, 2, MR>(blk, x, sum);
    Q4Chunk<D, 3, MR>(blk, x, sum);
    const float32x4_t d[2] = {vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(blk.d))),
                              vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(blk.d + 4)))};
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int h = 0; h < 2; ++h) acc[i][h] = vfmaq_f32(acc[i][h], d[h], vcvtq_f32_s32(sum[i][h]));
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
  float32x4_t acc[MR][NR];
#pragma GCC unroll 4
  for (auto& row : acc) {
#pragma GCC unroll 4
    for (auto& v : row) v = vdupq_n_f32(0.f);
  }
  int64_t k = 0;
  for (; k + 4 <= kk; k += 4) {
    float32x4_t wv[NR];
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j)
      wv[j] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + j * kk + k)));
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const float32x4_t xv = vld1q_f32(x + i * p.ldx + k);
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) acc[i][j] = vfmaq_f32(acc[i][j], xv, wv[j]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) {
      float sum = vaddvq_f32(acc[i][j]);
      for (int64_t t = k; t < kk; ++t) sum += Fp16ToFp32(w[j * kk + t]) * x[i * p.ldx + t];
      p.y[(m0 + i) * p.ldy + n0 + j] = sum + BiasAt(p, n0 + j);
    }
  }
}

template <class D>
void GemmInt8With(const QGemmProblem& p, const void* scratch) {
  const QuantizedActs a = ActsOf(p, scratch);
  ForEachTile(p.m, p.w.n,
              [&]<int MR, int NR>(int64_t m0, int64_t n0) { Int8Tile<D, MR, NR>(p, a, m0, n0); });
}

template <class D>
void GemmQ4With(const QGemmProblem& p, const void* scratch) {
  const QuantizedActs a = ActsOf(p, scratch);
  ForEachQ4Tile(p.m, p.w.n, [&]<int MR>(int64_t m0, int64_t g) { Q4Tile<D, MR>(p, a, m0, g); });
}

}  // namespace

void QuantizeActs(const QGemmProblem& p, void* scratch) {
  const QuantizedActs a = ActsLayout(p.w.format, p.m, p.w.k, scratch);
  for (int64_t m = 0; m < p.m; ++m) {
    int8_t* q = a.q + m * a.kp;
    a.scales[m] = QuantizeRow(p.x + m * p.ldx, p.w.k, q, a.kp);
    if (a.corr != nullptr) Q4Correction(q, a.kp, a.corr + m * (a.kp / kQ4BlockSize));
  }
}

void GemmInt8(const QGemmProblem& p, const void* scratch) { GemmInt8With<Plain>(p, scratch); }
void GemmQ4(const QGemmProblem& p, const void* scratch) { GemmQ4With<Plain>(p, scratch); }
// Sdot::Dot can only be inlined into code compiled for dotprod: flatten inlines the whole kernel
// (tiles included) into these two functions, which are.
__attribute__((target("arch=armv8.2-a+dotprod"), flatten)) void GemmInt8Dot(const QGemmProblem& p,
                                                                            const void* scratch) {
  GemmInt8With<Sdot>(p, scratch);
}
__attribute__((target("arch=armv8.2-a+dotprod"), flatten)) void GemmQ4Dot(const QGemmProblem& p,
                                                                          const void* scratch) {
  GemmQ4With<Sdot>(p, scratch);
}

void GemmFp16(const QGemmProblem& p, const void* /*scratch*/) {
  ForEachTile(p.m, p.w.n,
              [&]<int MR, int NR>(int64_t m0, int64_t n0) { Fp16Tile<MR, NR>(p, m0, n0); });
}

}  // namespace edgeinfer::quant::neon

#endif  // defined(__aarch64__)
