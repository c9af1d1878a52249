// Direct pooling kernels over one 2-D plane (1-D pools use height 1), accumulating the window in
// vector registers (window_reduce.h).
#pragma once

#include <cstdint>

#include "inference/kernels/window.h"

namespace edgeinfer {

// Max over each window. Requires !NeedsPadding(g): pad with PadPlane, filling with the lowest
// float, so padding never wins (a window entirely in padding, possible only with dilation, gives
// the lowest float, as in ONNX Runtime).
void MaxPoolPlane(const float* in, const PlaneGeom& g, float* out);

// The divisors of AveragePool for the original (unpadded) geometry g, as factors:
// row_scale[oy] * col_scale[ox] = 1 / (number of counted taps of window (oy, ox)), which is the
// number of in-bounds taps, or with count_include_pad the number of taps inside the padded input
// (a ceil_mode window running past it counts only its part inside), as ONNX Runtime does.
// Assumes dilation 1. Writes g.out_h and g.out_w floats.
void AvgPoolScales(const PlaneGeom& g, bool count_include_pad, float* row_scale, float* col_scale);

// Mean over each window: the window sum times row_scale[oy] * col_scale[ox]. Requires
// !NeedsPadding(g): pad with PadPlane (fill 0).
void AvgPoolPlane(const float* in, const PlaneGeom& g, const float* row_scale,
                  const float* col_scale, float* out);

// Sum and max of n contiguous floats (n >= 1 for MaxOf).
float SumOf(const float* x, int64_t n);
float MaxOf(const float* x, int64_t n);

}  // namespace edgeinfer
