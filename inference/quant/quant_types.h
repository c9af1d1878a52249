// Quantized weight formats: the bytes a weight tensor is stored as, in the .eim file and in memory.
//
// Weights are quantized once (by the converter) into one blob per tensor, in exactly the layout
// the kernels read, so loading is mmap + ViewWeights with no copy. Every layout below is pinned by
// static_asserts and must not change without a format version bump. All values little-endian.
//
// kInt8 (per output channel, symmetric), for W [N, K]:
//   int8_t  q[N][Kp]      w[n][k] ~= scales[n] * q[n][k], q in [-127, 127] (never -128);
//                         Kp = RoundUp(K, 32), the pad columns are 0 so kernels run tail-free
//   float   scales[N]     max|w[n][:]| / 127 (0 for an all-zero row)
//   int32_t row_sums[N]   sum_k q[n][k]: the AVX-512 VNNI kernel multiplies u8 by s8, so it feeds
//                         x + 128 and subtracts 128 * row_sums[n] afterwards (see qgemm.h)
// kQ4 (blocks of 32 weights along K, like ggml Q4_0), for W [N, K]:
//   BlockQ4 blocks[N][KB] KB = ceil(K / 32); the pad weights of the last block are 0
// kFp16: uint16_t w[N][K] IEEE binary16, converted to float in registers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgeinfer::quant {

enum class WeightFormat : uint8_t { kInt8 = 0, kQ4 = 1, kFp16 = 2 };
constexpr int kNumWeightFormats = 3;
const char* WeightFormatName(WeightFormat f);  // "int8", "q4", "fp16"

constexpr int64_t kQ4BlockSize = 32;
constexpr int64_t kInt8RowAlign = 32;  // K of int8 rows (weights and activations) padded to this
constexpr int kInt8Max = 127;          // symmetric range [-127, 127]

// 32 weights: w[j] = fp16(d) * (q[j] - 8) with q[j] a 4-bit code in [0, 15].
// qs[j] holds element j in its low nibble and element j + 16 in its high nibble, so one 16-byte
// load, a 4-bit shift and a mask yield the 32 codes in element order (the low half from the low
// nibbles, the high half from the high ones). 18 bytes per 32 weights = 4.5 bits per weight.
struct BlockQ4 {
  uint16_t d;  // scale, IEEE binary16; may be negative
  uint8_t qs[kQ4BlockSize / 2];
};
static_assert(sizeof(BlockQ4) == 18, "BlockQ4 is 2 + 16 bytes, no padding");
static_assert(alignof(BlockQ4) == 2);
static_assert(offsetof(BlockQ4, qs) == 2);

inline int64_t RoundUp(int64_t v, int64_t to) { return (v + to - 1) / to * to; }
inline int64_t Int8PaddedK(int64_t k) { return RoundUp(k, kInt8RowAlign); }
inline int64_t Q4BlocksPerRow(int64_t k) { return (k + kQ4BlockSize - 1) / kQ4BlockSize; }

// Size of the blob holding a quantized [n, k] weight in format `f`.
size_t WeightBytes(WeightFormat f, int64_t n, int64_t k);

// A read-only view of a weight blob: what kernels receive. Fields unused by a format are null.
struct QuantWeights {
  WeightFormat format = WeightFormat::kInt8;
  int64_t n = 0;                      // output channels (rows)
  int64_t k = 0;                      // inputs per channel (logical, before any padding)
  const void* data = nullptr;         // int8_t[N][Kp] | BlockQ4[N][KB] | uint16_t[N][K]
  const float* scales = nullptr;      // kInt8: [N]
  const int32_t* row_sums = nullptr;  // kInt8: [N]
};

// The view of `blob` (WeightBytes(f, n, k) bytes, 4-byte aligned; 64 recommended). No copy.
QuantWeights ViewWeights(WeightFormat f, int64_t n, int64_t k, const void* blob);

// Rows [n_begin, n_end) of `w` as a view of their own (to split the N dimension across threads).
QuantWeights SliceRows(const QuantWeights& w, int64_t n_begin, int64_t n_end);

}  // namespace edgeinfer::quant
