// Direct pooling kernels over one 2-D plane (1-D pools use height 1). The inner loops run along
// the output width over a precomputed in-bounds range, so they are contiguous for stride 1 and
// carry no bounds checks.
#pragma once

#include <cstdint>

#include "inference/kernels/window.h"

namespace edgeinfer {

// Max over each window. Padding never wins: taps outside the input are skipped. A window with no
// tap inside the input (possible only with dilation) gives the lowest float, as in ONNX Runtime.
void MaxPoolPlane(const float* in, const PlaneGeom& g, float* out);

// scale[ox] = 1 / (number of counted columns of window ox), g.out_w entries. Computed once per
// run (into scratch) and shared by every plane. Assumes dilation 1.
void AvgPoolColumnScales(const PlaneGeom& g, bool count_include_pad, float* scale);

// Mean over each window (dilation 1): the sum of the in-bounds taps divided by the number of
// in-bounds taps, or with count_include_pad by the number of taps inside the padded input (a
// ceil_mode window running past it counts only its part inside), as ONNX Runtime does.
// col_scale comes from AvgPoolColumnScales.
void AvgPoolPlane(const float* in, const PlaneGeom& g, bool count_include_pad,
                  const float* col_scale, float* out);

// Sum and max of n contiguous floats (n >= 1 for MaxOf).
float SumOf(const float* x, int64_t n);
float MaxOf(const float* x, int64_t n);

}  // namespace edgeinfer
