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
// kQ4 (blocks of 32 weights along K, each with an fp16 scale: ggml Q4_0's numbers), for W [N, K],
// stored in groups of 8 output rows (as ggml's repacked q4_0x8) so one 256-bit vector holds the
// same 4 weights of 8 rows and the kernels compute 8 outputs per lane-parallel step:
//   BlockQ4x8 blocks[Np / 8][KB]   Np = RoundUp(N, 8), pad rows all zero; KB = ceil(K / 32), the
//                                  pad weights of the last block 0
// kFp16: uint16_t w[N][K] IEEE binary16, converted to float in registers.
//
// A blob read from an untrusted file needs only its size checked (WeightBytes) and K limited
// (kMaxQuantK): any bytes are then safe to run (odd values give odd numbers, never UB or a crash).
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
// Largest K the kernels take: int32 dot products stay exact (K * 127 * 128 < 2^31) even for codes
// of -128 from a corrupt blob. The op's validation rejects larger K.
constexpr int64_t kMaxQuantK = int64_t{1} << 17;

constexpr int kQ4RowGroup = 8;  // rows per BlockQ4x8

// Block b of 8 consecutive rows: 8 x 32 weights, w[r][j] = fp16(d[r]) * (code(r, j) - 8) with
// 4-bit codes in [0, 15]. 144 bytes per 256 weights = 4.5 bits per weight, like Q4_0.
// qs is 4 chunks of 32 bytes; chunk c, byte 4 * r + i holds, for row r,
//   low nibble:  code(r, 4c + i)        (elements 0..15 of the block)
//   high nibble: code(r, 16 + 4c + i)   (elements 16..31)
// so a 32-byte load, a mask and a shift give the codes of 8 rows x 4 consecutive elements, with
// row r in 32-bit lane r: multiplied by 4 activations broadcast to every lane, the lane sums
// are 8 rows' partial dot products, no horizontal reduction needed.
struct BlockQ4x8 {
  uint16_t d[kQ4RowGroup];  // scales, IEEE binary16; may be negative
  uint8_t qs[kQ4BlockSize * kQ4RowGroup / 2];
};
static_assert(sizeof(BlockQ4x8) == 144, "BlockQ4x8 is 16 + 128 bytes, no padding");
static_assert(alignof(BlockQ4x8) == 2);
static_assert(offsetof(BlockQ4x8, qs) == 16);

// Where code (r, j) lives in a BlockQ4x8 (the layout above): byte index, and shift (0 or 4).
inline int Q4CodeByte(int r, int j) { return 32 * ((j / 4) % 4) + 4 * r + j % 4; }
inline int Q4CodeShift(int j) { return j < kQ4BlockSize / 2 ? 0 : 4; }
inline int Q4Code(const BlockQ4x8& b, int r, int j) {
  return (b.qs[Q4CodeByte(r, j)] >> Q4CodeShift(j)) & 0x0F;
}

inline int64_t RoundUp(int64_t v, int64_t to) { return (v + to - 1) / to * to; }
inline int64_t Int8PaddedK(int64_t k) { return RoundUp(k, kInt8RowAlign); }
inline int64_t Q4BlocksPerRow(int64_t k) { return (k + kQ4BlockSize - 1) / kQ4BlockSize; }
inline int64_t Q4RowGroups(int64_t n) { return (n + kQ4RowGroup - 1) / kQ4RowGroup; }

// Size of the blob holding a quantized [n, k] weight in format `f`.
size_t WeightBytes(WeightFormat f, int64_t n, int64_t k);

// A read-only view of a weight blob: what kernels receive. Fields unused by a format are null.
struct QuantWeights {
  WeightFormat format = WeightFormat::kInt8;
  int64_t n = 0;                      // output channels (rows)
  int64_t k = 0;                      // inputs per channel (logical, before any padding)
  const void* data = nullptr;         // int8_t[N][Kp] | BlockQ4x8[Np/8][KB] | uint16_t[N][K]
  const float* scales = nullptr;      // kInt8: [N]
  const int32_t* row_sums = nullptr;  // kInt8: [N]
};

// The view of `blob` (WeightBytes(f, n, k) bytes, 4-byte aligned; 64 recommended). No copy.
QuantWeights ViewWeights(WeightFormat f, int64_t n, int64_t k, const void* blob);

// Rows [n_begin, n_end) of `w` as a view of their own (to split the N dimension across threads).
// For kQ4, n_begin must be a multiple of 8.
QuantWeights SliceRows(const QuantWeights& w, int64_t n_begin, int64_t n_end);

}  // namespace edgeinfer::quant
