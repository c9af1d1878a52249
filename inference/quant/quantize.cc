#include "inference/quant/quantize.h"

#include <algorithm>
#include <cstring>

#include "inference/quant/fp16.h"

namespace edgeinfer::quant {

namespace {

// NaN-safe clamp then round: out-of-range and NaN inputs never reach the int conversion.
int RoundClamped(float v, float lo, float hi) {
  v = v > lo ? v : lo;
  v = v < hi ? v : hi;
  return static_cast<int>(std::nearbyint(v));
}

float MaxAbs(const float* v, int64_t n) {
  float m = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(v[i]);
    m = a > m ? a : m;  // NaN skipped
  }
  return m;
}

// |d| rounded to fp16 away from zero, so dividing by the stored scale never overshoots the range.
uint16_t ScaleToFp16RoundUp(float d) {
  const float mag = std::fabs(d);
  uint16_t h = Fp32ToFp16(mag);
  if (h >= 0x7C00) h = 0x7BFF;  // beyond fp16: largest finite (the bound no longer holds)
  if (Fp16ToFp32(h) < mag && h < 0x7BFF) ++h;
  return d < 0 ? static_cast<uint16_t>(h | 0x8000) : h;
}

// Writes the kInt8 blob: q [n][Kp], then scales [n], then row_sums [n] (see quant_types.h).
void QuantizeInt8Weights(const float* w, int64_t n, int64_t k, void* blob) {
  const int64_t kp = Int8PaddedK(k);
  auto* q = static_cast<int8_t*>(blob);
  auto* scales = reinterpret_cast<float*>(q + n * kp);
  auto* sums = reinterpret_cast<int32_t*>(scales + n);
  for (int64_t r = 0; r < n; ++r) {
    int8_t* row = q + r * kp;
    scales[r] = QuantizeInt8Row(w + r * k, k, row);
    std::memset(row + k, 0, static_cast<size_t>(kp - k));
    int32_t sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += row[i];
    sums[r] = sum;
  }
}

}  // namespace

float QuantizeInt8Row(const float* w, int64_t k, int8_t* q) {
  const float amax = MaxAbs(w, k);
  const float scale = amax < kTinyScaleLimit ? 0.f : amax / kInt8Max;
  for (int64_t i = 0; i < k; ++i) {
    q[i] = static_cast<int8_t>(scale == 0.f ? 0 : RoundClamped(w[i] / scale, -127.f, 127.f));
  }
  return scale;
}

void QuantizeBlockQ4(const float* w, int64_t count, BlockQ4* out) {
  float max_pos = 0.f, max_neg = 0.f;  // largest positive value, largest negative magnitude
  for (int64_t i = 0; i < count; ++i) {
    if (w[i] > max_pos) max_pos = w[i];
    if (-w[i] > max_neg) max_neg = -w[i];
  }
  // Negatives towards -8 (d > 0) or positives towards -8 (d < 0): the smaller |d| wins.
  const float d_neg_low = std::max(max_neg / 8.f, max_pos / 7.f);
  const float d_pos_low = std::max(max_pos / 8.f, max_neg / 7.f);
  float d = d_neg_low <= d_pos_low ? d_neg_low : -d_pos_low;
  if (std::max(max_pos, max_neg) < kTinyScaleLimit) d = 0.f;
  out->d = ScaleToFp16RoundUp(d);
  const float ds = Fp16ToFp32(out->d);
  const float inv = ds != 0.f ? 1.f / ds : 0.f;
  uint8_t codes[kQ4BlockSize];
  for (int64_t i = 0; i < kQ4BlockSize; ++i) {
    const float v = i < count ? w[i] * inv : 0.f;
    codes[i] = static_cast<uint8_t>(RoundClamped(v, -8.f, 7.f) + 8);
  }
  for (int j = 0; j < kQ4BlockSize / 2; ++j) {
    out->qs[j] = static_cast<uint8_t>(codes[j] | (codes[j + kQ4BlockSize / 2] << 4));
  }
}

void DequantizeBlockQ4(const BlockQ4& b, float out[kQ4BlockSize]) {
  const float d = Fp16ToFp32(b.d);
  for (int j = 0; j < kQ4BlockSize / 2; ++j) {
    out[j] = d * static_cast<float>((b.qs[j] & 0x0F) - 8);
    out[j + kQ4BlockSize / 2] = d * static_cast<float>((b.qs[j] >> 4) - 8);
  }
}

void QuantizeWeights(WeightFormat f, const float* w, int64_t n, int64_t k, void* blob) {
  switch (f) {
    case WeightFormat::kInt8:
      return QuantizeInt8Weights(w, n, k, blob);
    case WeightFormat::kQ4: {
      auto* blocks = static_cast<BlockQ4*>(blob);
      const int64_t kb = Q4BlocksPerRow(k);
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t b = 0; b < kb; ++b) {
          const int64_t begin = b * kQ4BlockSize;
          QuantizeBlockQ4(w + r * k + begin, std::min(kQ4BlockSize, k - begin), &blocks[r * kb + b]);
        }
      }
      return;
    }
    case WeightFormat::kFp16:
      return Fp32ToFp16Row(w, static_cast<uint16_t*>(blob), n * k, CpuLevel::kScalar);
  }
}

void DequantizeWeights(const QuantWeights& w, float* out) {
  switch (w.format) {
    case WeightFormat::kInt8: {
      const int64_t kp = Int8PaddedK(w.k);
      const auto* q = static_cast<const int8_t*>(w.data);
      for (int64_t r = 0; r < w.n; ++r) {
        for (int64_t i = 0; i < w.k; ++i) out[r * w.k + i] = w.scales[r] * q[r * kp + i];
      }
      return;
    }
    case WeightFormat::kQ4: {
      const auto* blocks = static_cast<const BlockQ4*>(w.data);
      const int64_t kb = Q4BlocksPerRow(w.k);
      float tmp[kQ4BlockSize];
      for (int64_t r = 0; r < w.n; ++r) {
        for (int64_t b = 0; b < kb; ++b) {
          DequantizeBlockQ4(blocks[r * kb + b], tmp);
          const int64_t begin = b * kQ4BlockSize;
          const int64_t count = std::min(kQ4BlockSize, w.k - begin);
          std::memcpy(out + r * w.k + begin, tmp, static_cast<size_t>(count) * sizeof(float));
        }
      }
      return;
    }
    case WeightFormat::kFp16:
      return Fp16ToFp32Row(static_cast<const uint16_t*>(w.data), out, w.n * w.k,
                           CpuLevel::kScalar);
  }
}

float QuantizeActRow(const float* x, int64_t k, int8_t* q, int64_t kp) {
  const float amax = MaxAbs(x, k);
  const bool zero = amax < kTinyScaleLimit;
  const float inv = zero ? 0.f : kInt8Max / amax;
  for (int64_t i = 0; i < k; ++i) q[i] = QuantizeActValue(x[i], inv);
  for (int64_t i = k; i < kp; ++i) q[i] = 0;
  return zero ? 0.f : amax / kInt8Max;
}

void Q4Correction(const int8_t* q, int64_t kp, int32_t* corr) {
  for (int64_t j = 0; j < kp / 4; ++j) {
    corr[j] = -8 * (q[4 * j] + q[4 * j + 1] + q[4 * j + 2] + q[4 * j + 3]);
  }
}

}  // namespace edgeinfer::quant
