// Quantizers and dequantizers.
//
// Weights are quantized once, offline (the converter): plain float code, exact error bounds,
// speed does not matter. Activations are quantized at run time by every kernel level; the scalar
// QuantizeActRow here is the specification, which the SIMD versions reproduce bit for bit.
//
// Error bounds (what the round-trip tests check), for finite input:
//   kInt8 weights  |w - scale * q| <= scale / 2 per element, scale = max|row| / 127
//   kQ4 weights    |w - d * (q - 8)| <= |d| / 2 per element, d per block of 32 (see below)
//   activations    |x - scale * q| <= scale / 2 per element, scale = max|row| / 127
// All-zero rows and blocks (and rows whose max is below kTinyScaleLimit) get scale 0, codes 0.
#pragma once

#include <cmath>
#include <cstdint>

#include "inference/quant/quant_types.h"

namespace edgeinfer::quant {

// Rows or blocks with max|v| below this are treated as zero, so 127 / max stays finite.
constexpr float kTinyScaleLimit = 1e-30f;

// Quantizes W [n, k] (row-major floats) into `blob`, WeightBytes(f, n, k) bytes, 4-byte aligned.
void QuantizeWeights(WeightFormat f, const float* w, int64_t n, int64_t k, void* blob);
// out [n, k] (row-major) = the values `w` stands for.
void DequantizeWeights(const QuantWeights& w, float* out);

// One int8 weight row: q[0, k) = round(w / scale) in [-127, 127]; returns scale.
float QuantizeInt8Row(const float* w, int64_t k, int8_t* q);

// One Q4 block from `count` (<= 32) weights, the rest of the block zero: its fp16 scale *d and
// codes[32] (weight = d * (code - 8)). d is chosen so every value falls within [-8, 7] steps of d,
// with the larger-magnitude side mapped towards code 0 (-8 d) when that gives the smaller |d| (so
// |d| is between max|w| / 8 and max|w| / 7), then rounded to fp16 away from zero so the bound
// |d| / 2 holds with the stored d.
void QuantizeBlockQ4(const float* w, int64_t count, uint16_t* d, uint8_t codes[kQ4BlockSize]);

// The activation code for x given inv_scale = 127 / max|row|: round half to even after clamping
// to [-127, 127]. NaN becomes -127 (what the SIMD max/min instructions do), never UB.
inline int8_t QuantizeActValue(float x, float inv_scale) {
  float v = x * inv_scale;
  v = v > -127.f ? v : -127.f;
  v = v < 127.f ? v : 127.f;
  return static_cast<int8_t>(std::nearbyint(v));
}

// The activation row quantizer (the spec): scale = max|x| / 127 over finite, non-NaN values
// (NaN is skipped); q[0, k) = QuantizeActValue(x, 127 / max|x|), q[k, kp) = 0. Returns scale.
float QuantizeActRow(const float* x, int64_t k, int8_t* q, int64_t kp);

// The Q4 offset correction of a quantized activation row (kp a multiple of 32), per block:
// corr[b] = -8 * (q[32b] + ... + q[32b+31]). See qgemm.h.
void Q4Correction(const int8_t* q, int64_t kp, int32_t* corr);

}  // namespace edgeinfer::quant
