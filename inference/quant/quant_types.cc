#include "inference/quant/quant_types.h"

namespace edgeinfer::quant {

const char* WeightFormatName(WeightFormat f) {
  switch (f) {
    case WeightFormat::kInt8:
      return "int8";
    case WeightFormat::kQ4:
      return "q4";
    case WeightFormat::kFp16:
      return "fp16";
  }
  return "unknown";
}

size_t WeightBytes(WeightFormat f, int64_t n, int64_t k) {
  const auto un = static_cast<size_t>(n);

  switch (f) {
    case WeightFormat::kInt8:
      return un * static_cast<size_t>(Int8PaddedK(k)) + un * (sizeof(float) + sizeof(int32_t));
    case WeightFormat::kQ4:
      return static_cast<size_t>(Q4RowGroups(n) * Q4BlocksPerRow(k)) * sizeof(BlockQ4x8);
    case WeightFormat::kFp16:
      return un * static_cast<size_t>(k) * sizeof(uint16_t);
  }
  return 0;
}

QuantWeights ViewWeights(WeightFormat f, int64_t n, int64_t k, const void* blob) {
  QuantWeights w;
  w.format = f;
  w.n = n;
  w.k = k;
  w.data = blob;
  if (f == WeightFormat::kInt8) {
    // n * Kp is a multiple of 32, so the float and int32 arrays stay 4-byte aligned.
    const auto* base = static_cast<const uint8_t*>(blob) + n * Int8PaddedK(k);
    w.scales = reinterpret_cast<const float*>(base);
    w.row_sums = reinterpret_cast<const int32_t*>(base + n * sizeof(float));
  }
  return w;
}

QuantWeights SliceRows(const QuantWeights& w, int64_t n_begin, int64_t n_end) {
  QuantWeights s = w;
  s.n = n_end - n_begin;
  const auto* base = static_cast<const uint8_t*>(w.data);
  switch (w.format) {
    case WeightFormat::kInt8:
      s.data = base + n_begin * Int8PaddedK(w.k);
      s.scales = w.scales + n_begin;
      s.row_sums = w.row_sums + n_begin;
      break;
    case WeightFormat::kQ4:
      s.data = base + n_begin / kQ4RowGroup * Q4BlocksPerRow(w.k) *
                          static_cast<int64_t>(sizeof(BlockQ4x8));
      break;
    case WeightFormat::kFp16:
      s.data = base + n_begin * w.k * static_cast<int64_t>(sizeof(uint16_t));
      break;
  }
  return s;
}

}  // namespace edgeinfer::quant
