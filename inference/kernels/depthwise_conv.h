// Direct depthwise convolution (group == channels): each output plane is one input plane
// correlated with one small filter. GEMM would have K = kh*kw (9 for 3x3), far too small for BLAS
// to pay off, so this accumulates the taps in vector registers (window_reduce.h).
#pragma once

#include <cstdint>

#include "inference/kernels/window.h"

namespace edgeinfer {

// out[oy, ox] = bias + sum over taps of filter[ky, kx] * in[oy*sh + ky*dh, ox*sw + kx*dw];
// filter is g.h.kernel x g.w.kernel. Requires !NeedsPadding(g): pad with PadPlane (fill 0) and
// pass PaddedGeom.
void DepthwiseConvPlane(const float* in, const float* filter, float bias, const PlaneGeom& g,
                        float* out);

}  // namespace edgeinfer
