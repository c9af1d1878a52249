#include "inference/kernels/depthwise_conv.h"

#include "inference/kernels/vectorize.h"

namespace edgeinfer {

namespace {

// Adds one input row, seen through filter row `taps`, to one output row.
__attribute__((always_inline)) inline void AccumulateRow(const float* __restrict in_row,
                                                         const float* taps, const PlaneGeom& g,
                                                         float* __restrict out_row) {
  const int64_t sw = g.w.stride;
  for (int64_t kx = 0; kx < g.w.kernel; ++kx) {
    const int64_t x_off = kx * g.w.dilation - g.w.pad_begin;
    int64_t lo, hi;
    ValidOutputs(x_off, sw, g.in_w, g.out_w, &lo, &hi);
    if (hi <= lo) continue;
    const float w = taps[kx];
    const float* src = in_row + lo * sw + x_off;
    float* dst = out_row + lo;
    const int64_t n = hi - lo;
    // Stride 1 gets its own loop: contiguous loads vectorize without gathers.
    if (sw == 1) {
      for (int64_t i = 0; i < n; ++i) dst[i] += w * src[i];
    } else {
      for (int64_t i = 0; i < n; ++i) dst[i] += w * src[i * sw];
    }
  }
}

}  // namespace

EI_KERNEL_CLONES
void DepthwiseConvPlane(const float* in, const float* filter, float bias, const PlaneGeom& g,
                        float* out) {
  for (int64_t oy = 0; oy < g.out_h; ++oy) {
    float* out_row = out + oy * g.out_w;
    for (int64_t ox = 0; ox < g.out_w; ++ox) out_row[ox] = bias;
    for (int64_t ky = 0; ky < g.h.kernel; ++ky) {
      const int64_t iy = oy * g.h.stride + ky * g.h.dilation - g.h.pad_begin;
      if (iy < 0 || iy >= g.in_h) continue;
      AccumulateRow(in + iy * g.in_w, filter + ky * g.w.kernel, g, out_row);
    }
  }
}

}  // namespace edgeinfer
