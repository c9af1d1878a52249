#include "inference/kernels/im2col.h"

#include <cstring>

namespace edgeinfer {

namespace {

void Zero(float* dst, int64_t n) {
  if (n > 0) std::memset(dst, 0, static_cast<size_t>(n) * sizeof(float));
}

// Where tap (ky, kx) reads the input, and which outputs see it inside the input: the same for
// every channel, so it is worked out once per tap (the divisions in ValidOutputs are not free
// next to a 64-float copy).
struct TapRange {
  int64_t y_off, x_off;  // input position of output (0, 0)'s tap
  int64_t y_lo, y_hi, x_lo, x_hi;
};

TapRange MakeTapRange(const PlaneGeom& g, int64_t ky, int64_t kx) {
  TapRange t;
  t.y_off = ky * g.h.dilation - g.h.pad_begin;
  t.x_off = kx * g.w.dilation - g.w.pad_begin;
  ValidOutputs(t.y_off, g.h.stride, g.in_h, g.out_h, &t.y_lo, &t.y_hi);
  ValidOutputs(t.x_off, g.w.stride, g.in_w, g.out_w, &t.x_lo, &t.x_hi);
  return t;
}

// One row of col: one tap of one input plane for all outputs.
void TapRow(const float* plane, const PlaneGeom& g, const TapRange& t, float* dst) {
  const int64_t sw = g.w.stride;
  Zero(dst, t.y_lo * g.out_w);
  for (int64_t oy = t.y_lo; oy < t.y_hi; ++oy) {
    float* out = dst + oy * g.out_w;
    const float* in = plane + (oy * g.h.stride + t.y_off) * g.in_w;
    Zero(out, t.x_lo);
    if (sw == 1) {
      if (t.x_hi > t.x_lo)
        std::memcpy(out + t.x_lo, in + t.x_lo + t.x_off, (t.x_hi - t.x_lo) * sizeof(float));
    } else {
      for (int64_t ox = t.x_lo; ox < t.x_hi; ++ox) out[ox] = in[ox * sw + t.x_off];
    }
    Zero(out + t.x_hi, g.out_w - t.x_hi);
  }
  Zero(dst + t.y_hi * g.out_w, (g.out_h - t.y_hi) * g.out_w);
}

}  // namespace

void Im2Col(const float* x, int64_t channels, const PlaneGeom& g, float* col, int64_t ld) {
  const int64_t plane = g.in_h * g.in_w;
  const int64_t taps = g.h.kernel * g.w.kernel;
  for (int64_t ky = 0; ky < g.h.kernel; ++ky) {
    for (int64_t kx = 0; kx < g.w.kernel; ++kx) {
      const TapRange t = MakeTapRange(g, ky, kx);
      float* dst = col + (ky * g.w.kernel + kx) * ld;
      for (int64_t c = 0; c < channels; ++c) TapRow(x + c * plane, g, t, dst + c * taps * ld);
    }
  }
}

}  // namespace edgeinfer
