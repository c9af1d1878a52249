// Quantized GEMM: Y[M, N] = X[M, K] * W^T (+ bias[N]), X and Y float, W [N, K] quantized.
//
// Two steps, so a profiler can time them apart (quantize time shows as its own entry):
//   1. quantize: X -> activation codes in the caller's scratch (none for kFp16 weights);
//   2. gemm: integer dot products, dequantized into Y.
// RunQGemm does both. Kernels never allocate and never check: the caller validates shapes once
// (TFLite Micro's prepare/eval split: M, N, K >= 0, K <= kMaxQuantK, blob size). Kernels are
// single-threaded and reentrant; callers may split N across threads with SliceRows.
//
// Arithmetic (the scalar kernels in qgemm_scalar.cc are the specification):
//   kInt8  sum = sum_k qx[m][k] * qw[n][k] in int32 (exact: K <= kMaxQuantK is required);
//          y = fma(float(sum), sx[m] * sw[n], bias[n])
//   kQ4    acc = 0; for each block b: acc = fma(fp16(d[n][b]), float(sum_b), acc), with sum_b the
//          int32 sum over the block of qx[m][k] * (code - 8); y = fma(acc, sx[m], bias[n])
//   kFp16  y = sum_k float(w[n][k]) * x[m][k] + bias[n], float accumulation
// kInt8 and kQ4 results are bit-identical at every level (exact integer sums, the same fused
// float steps in the same order); kFp16 sums in a level-specific order (a few roundings apart).
//
// The integer tricks (why the activation layout below has what it has):
//   - x86 has no s8 x s8 multiply-add. AVX2's vpmaddubsw is u8 x s8 -> s16 pairs, so for int8
//     weights it multiplies |x| by (w with x's sign), via vpsignb; a pair sum is at most
//     2 * 127 * 127 = 32258 and never saturates. AVX-512 has no vpsignb, so the VNNI kernel feeds
//     u8 (x + 128) to vpdpbusd and subtracts 128 * row_sums[n] (stored with the weights).
//   - Q4 codes are already unsigned (0..15), so x86 multiplies code (u8) by x (s8) and adds the
//     block's offset correction corr = -8 * sum(x) after the block. A vpmaddubsw pair sum is at
//     most 2 * 15 * 127 = 3810, so AVX2 adds a whole block's 8 pair sums per lane in int16
//     (<= 30480) and widens once per block.
//   - Arm's sdot (and smull/sadalp without dotprod) is s8 x s8: no trick needed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "inference/quant/cpu_features.h"
#include "inference/quant/quant_types.h"

namespace edgeinfer::quant {

struct QGemmProblem {
  int64_t m = 0;
  const float* x = nullptr;  // [M, K], rows ldx floats apart
  int64_t ldx = 0;
  QuantWeights w;               // [N, K]
  const float* bias = nullptr;  // [N], or nullptr for none
  float* y = nullptr;           // [M, N], rows ldy floats apart; may not alias x
  int64_t ldy = 0;
};

// Scratch for `m` rows of K activations before `format` weights; 0 for kFp16.
size_t ScratchBytes(WeightFormat format, int64_t m, int64_t k);

// Quantized activations, in scratch (64-byte aligned recommended, 4 required):
//   int8_t  q[M][Kp]        x[m][k] ~= scales[m] * q[m][k] (QuantizeActRow), pad columns 0
//   int32_t corr[M][Kp/32]  kQ4 only: Q4Correction of each row
//   float   scales[M]
struct QuantizedActs {
  int64_t m = 0;
  int64_t kp = 0;  // Int8PaddedK(K)
  int8_t* q = nullptr;
  int32_t* corr = nullptr;  // nullptr unless kQ4
  float* scales = nullptr;
};
QuantizedActs ActsLayout(WeightFormat format, int64_t m, int64_t k, void* scratch);

// Step 1: fills scratch (ScratchBytes(p.w.format, p.m, p.w.k) bytes) from p.x.
using QuantizeActsFn = void (*)(const QGemmProblem& p, void* scratch);
// Step 2: writes p.y from the quantized activations (or p.x for kFp16) and p.w.
using GemmFn = void (*)(const QGemmProblem& p, const void* scratch);

struct QGemmKernels {
  CpuLevel level = CpuLevel::kScalar;  // the level these kernels run at
  QuantizeActsFn quantize = nullptr;   // nullptr for kFp16: nothing to quantize
  GemmFn gemm = nullptr;
};

// The kernels for `format` at `level`, or at kScalar when this build or CPU cannot run `level`.
// Select once (e.g. with BestCpuLevel()) when the op is created, then call per run.
QGemmKernels SelectQGemm(WeightFormat format, CpuLevel level);

// Both steps.
void RunQGemm(const QGemmKernels& kernels, const QGemmProblem& p, void* scratch);

}  // namespace edgeinfer::quant
