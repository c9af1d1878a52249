// Static INT8 activation kernels: quantizing with a calibrated scale, requantizing a layer's
// output for the next int8 layer, and the int8 im2row that feeds a Conv's GEMM.
//
// Static int8 tensors are symmetric s8 with one scale per tensor (x ~= scale * q, q in
// [-127, 127], zero point 0), so padding is code 0 and they slot into the existing GEMM kernels'
// activation layout (QuantizedActs with every row scale equal: qgemm.h).
//
// The scalar functions here are the specification; the AVX2 versions (requant_avx2.cc) give the
// same bits. Kernels never allocate and never check: callers validate shapes once.
//
// Arithmetic: code(v) = clamp(round_half_even(v * inv_scale), lo, hi), computed in float. NaN
// gives lo (the SIMD max/min instructions return their second operand for NaN, and the scalar
// code is written to do the same), so bad input never reaches UB.
#pragma once

#include <cmath>
#include <cstdint>

#include "inference/kernels/window.h"
#include "inference/quant/cpu_features.h"

namespace edgeinfer::quant {

// One code, as the kernels compute it: lo <= result <= hi (lo, hi integral, within [-127, 127]).
inline int8_t ClampCode(float v, float inv_scale, float lo, float hi) {
  float s = v * inv_scale;
  s = s > lo ? s : lo;  // NaN -> lo
  s = s < hi ? s : hi;
  return static_cast<int8_t>(std::nearbyint(s));
}

// q[i] = ClampCode(x[i], inv_scale, lo, hi), i < n. With lo = -127, hi = 127 this is the static
// quantization of a float tensor; with the output's scale and the fused activation's bounds
// (ReLU: lo = 0; Clip: its bounds in codes) it is the requantizing epilogue of a layer.
using QuantizeClampFn = void (*)(const float* x, int64_t n, float inv_scale, float lo, float hi,
                                 int8_t* q);

// The [rows, cols] float matrix src (rows ld_src apart) requantized and transposed:
// dst[j * ld_dst + i] = ClampCode(src[i * ld_src + j]), the GEMM's [positions, channels] output
// written as a Conv's channel planes.
using RequantTransposeFn = void (*)(const float* src, int64_t rows, int64_t cols, int64_t ld_src,
                                    float inv_scale, float lo, float hi, int8_t* dst,
                                    int64_t ld_dst);

// The float version without requantizing, dst[j * ld_dst + i] = src[i * ld_src + j]: the
// dynamic quantized Conv's GEMM output [positions, channels] written as its channel planes.
using TransposeFn = void (*)(const float* src, int64_t rows, int64_t cols, int64_t ld_src,
                             float* dst, int64_t ld_dst);

struct StaticKernels {
  CpuLevel level = CpuLevel::kScalar;
  QuantizeClampFn quantize_clamp = nullptr;
  RequantTransposeFn requant_transpose = nullptr;
  TransposeFn transpose = nullptr;
};

// The kernels at `level`, or at kScalar when this build or CPU cannot run it (kAvx512Vnni uses
// the AVX2 ones: these are memory-bound passes).
StaticKernels SelectStatic(CpuLevel level);

// dst[j * rows + i] = src[i * cols + j]: int8 planes [rows, cols] to [cols, rows] (a Conv's
// CHW input to the HWC layout Im2RowHwc reads).
void TransposeS8(const int8_t* src, int64_t rows, int64_t cols, int8_t* dst);

// The int8 im2row of one group of one sample, from an HWC input (pixel (ih, iw) holds `stride`
// channels at x + (ih * in_w + iw) * stride; the group's `c` channels start at x):
// rows[p][(i * kw + j) * c + ci] = x[ih][iw][ci] with ih = oh * sh + i * dh - ph and
// iw = ow * sw + j * dw - pw, 0 outside the input, for p = oh * out_w + ow; each row kp long
// (>= kh * kw * c, pad columns 0). This (kh, kw, C) order is QConv's weight order (OHWI), so a
// stride-1 window of a group-1 conv is one contiguous run of the input.
void Im2RowHwc(const int8_t* x, int64_t stride, int64_t c, const PlaneGeom& g, int64_t kp,
               int8_t* rows);

// Max pooling of int8 planes (max commutes with a positive scale, so the codes pool directly):
// `planes` planes of g.in_h x g.in_w to g.out_h x g.out_w. Taps outside the input are skipped
// (every window holds at least one input tap: the op's validation guarantees it).
void MaxPoolS8(const int8_t* x, int64_t planes, const PlaneGeom& g, int8_t* y);

namespace scalar {
void QuantizeClamp(const float* x, int64_t n, float inv_scale, float lo, float hi, int8_t* q);
void RequantTranspose(const float* src, int64_t rows, int64_t cols, int64_t ld_src, float inv_scale,
                      float lo, float hi, int8_t* dst, int64_t ld_dst);
void Transpose(const float* src, int64_t rows, int64_t cols, int64_t ld_src, float* dst,
               int64_t ld_dst);
}  // namespace scalar

#if defined(__x86_64__)
namespace avx2 {
void QuantizeClamp(const float* x, int64_t n, float inv_scale, float lo, float hi, int8_t* q);
void RequantTranspose(const float* src, int64_t rows, int64_t cols, int64_t ld_src, float inv_scale,
                      float lo, float hi, int8_t* dst, int64_t ld_dst);
void Transpose(const float* src, int64_t rows, int64_t cols, int64_t ld_src, float* dst,
               int64_t ld_dst);
}  // namespace avx2
#endif

}  // namespace edgeinfer::quant
