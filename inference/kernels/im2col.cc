#include "inference/kernels/im2col.h"

#include <cstring>

namespace edgeinfer {

namespace {

void Zero(float* dst, int64_t n) {
  if (n > 0) std::memset(dst, 0, static_cast<size_t>(n) * sizeof(float));
}

// One row of col: tap (ky, kx) of one input plane for all outputs.
void TapRow(const float* plane, const PlaneGeom& g, int64_t ky, int64_t kx, float* dst) {
  const int64_t y_off = ky * g.h.dilation - g.h.pad_begin;
  const int64_t x_off = kx * g.w.dilation - g.w.pad_begin;
  int64_t y_lo, y_hi, x_lo, x_hi;
  ValidOutputs(y_off, g.h.stride, g.in_h, g.out_h, &y_lo, &y_hi);
  ValidOutputs(x_off, g.w.stride, g.in_w, g.out_w, &x_lo, &x_hi);
  const int64_t sw = g.w.stride;
  Zero(dst, y_lo * g.out_w);
  for (int64_t oy = y_lo; oy < y_hi; ++oy) {
    float* out = dst + oy * g.out_w;
    const float* in = plane + (oy * g.h.stride + y_off) * g.in_w;
    Zero(out, x_lo);
    if (sw == 1) {
      if (x_hi > x_lo) std::memcpy(out + x_lo, in + x_lo + x_off, (x_hi - x_lo) * sizeof(float));
    } else {
      for (int64_t ox = x_lo; ox < x_hi; ++ox) out[ox] = in[ox * sw + x_off];
    }
    Zero(out + x_hi, g.out_w - x_hi);
  }
  Zero(dst + y_hi * g.out_w, (g.out_h - y_hi) * g.out_w);
}

}  // namespace

void Im2Col(const float* x, int64_t channels, const PlaneGeom& g, float* col) {
  const int64_t plane = g.in_h * g.in_w;
  const int64_t row = g.out_h * g.out_w;
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t ky = 0; ky < g.h.kernel; ++ky) {
      for (int64_t kx = 0; kx < g.w.kernel; ++kx) {
        TapRow(x + c * plane, g, ky, kx, col);
        col += row;
      }
    }
  }
}

}  // namespace edgeinfer
