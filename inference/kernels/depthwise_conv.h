// Direct depthwise convolution (group == channels): each output plane is one input plane
// correlated with one small filter. GEMM would have K = kh*kw (9 for 3x3), far too small for BLAS
// to pay off, so this runs as plain loops along the output width, which the compiler vectorizes.
#pragma once

#include <cstdint>

#include "inference/kernels/window.h"

namespace edgeinfer {

// out[oy, ox] = bias + sum over taps of filter[ky, kx] * in[oy*sh + ky*dh - pad_t,
// ox*sw + kx*dw - pad_l] (taps in padding add nothing). filter is g.h.kernel x g.w.kernel.
void DepthwiseConvPlane(const float* in, const float* filter, float bias, const PlaneGeom& g,
                        float* out);

}  // namespace edgeinfer
