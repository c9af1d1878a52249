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

// Quantizes each (row, block) and scatters its scale and codes into the 8-row groups.
void QuantizeQ4Weights(const float* w, int64_t n, int64_t k, BlockQ4x8* blocks) {
  const int64_t kb = Q4BlocksPerRow(k);
  std::memset(blocks, 0, static_cast<size_t>(Q4RowGroups(n) * kb) * sizeof(BlockQ4x8));
  uint8_t codes[kQ4BlockSize];
  for (int64_t row = 0; row < Q4RowGroups(n) * kQ4RowGroup; ++row) {
    const int r = static_cast<int>(row % kQ4RowGroup);
    for (int64_t b = 0; b < kb; ++b) {
      BlockQ4x8& out = blocks[row / kQ4RowGroup * kb + b];
      const int64_t begin = b * kQ4BlockSize;
      const int64_t count = row < n ? std::min(kQ4BlockSize, k - begin) : 0;  // pad rows: 0
      const float* src = row < n ? w + row * k + begin : w;
      QuantizeBlockQ4(src, count, &out.d[r], codes);
      for (int j = 0; j < kQ4BlockSize; ++j) {
        out.qs[Q4CodeByte(r, j)] |= static_cast<uint8_t>(codes[j] << Q4CodeShift(j));
      }
    }
  }
}

void DequantizeQ4Weights(const QuantWeights& w, float* out) {
  const int64_t kb = Q4BlocksPerRow(w.k);
  const auto* blocks = static_cast<const BlockQ4x8*>(w.data);
  for (int64_t row = 0; row < w.n; ++row) {
    const int r = static_cast<int>(row % kQ4RowGroup);
    for (int64_t i = 0; i < w.k; ++i) {
      const BlockQ4x8& b = blocks[row / kQ4RowGroup * kb + i / kQ4BlockSize];
      const int j = static_cast<int>(i % kQ4BlockSize);
      out[row * w.k + i] = Fp16ToFp32(b.d[r]) * static_cast<float>(Q4Code(b, r, j) - 8);
    }
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

void QuantizeBlockQ4(const float* w, int64_t count, uint16_t* d_out, uint8_t codes[kQ4BlockSize]) {
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
  *d_out = ScaleToFp16RoundUp(d);
  const float ds = Fp16ToFp32(*d_out);
  const float inv = ds != 0.f ? 1.f / ds : 0.f;
  for (int64_t i = 0; i < kQ4BlockSize; ++i) {
    const float v = i < count ? w[i] * inv : 0.f;
    codes[i] = static_cast<uint8_t>(RoundClamped(v, -8.f, 7.f) + 8);
  }
}

void QuantizeWeights(WeightFormat f, const float* w, int64_t n, int64_t k, void* blob) {
  switch (f) {
    case WeightFormat::kInt8:
      return QuantizeInt8Weights(w, n, k, blob);
    case WeightFormat::kQ4:
      return QuantizeQ4Weights(w, n, k, static_cast<BlockQ4x8*>(blob));
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
    case WeightFormat::kQ4:
      return DequantizeQ4Weights(w, out);
    case WeightFormat::kFp16:
      return Fp16ToFp32Row(static_cast<const uint16_t*>(w.data), out, w.n * w.k, CpuLevel::kScalar);
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
  for (int64_t b = 0; b < kp / kQ4BlockSize; ++b) {
    int32_t sum = 0;
    for (int j = 0; j < kQ4BlockSize; ++j) sum += q[b * kQ4BlockSize + j];
    corr[b] = -8 * sum;
  }
}

}  // namespace edgeinfer::quant
