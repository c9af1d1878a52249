#include "inference/kernels/window.h"

#include <algorithm>

#include "inference/kernels/vectorize.h"

namespace edgeinfer {

namespace {

// Input positions the windows of one axis read: [-pad_begin, -pad_begin + extent).
int64_t Extent(const WindowAxis& a, int64_t out) { return (out - 1) * a.stride + a.span(); }

}  // namespace

bool NeedsPadding(const PlaneGeom& g) {
  return g.h.pad_begin > 0 || g.w.pad_begin > 0 || Extent(g.h, g.out_h) > g.in_h ||
         Extent(g.w, g.out_w) > g.in_w;
}

PlaneGeom PaddedGeom(const PlaneGeom& g) {
  PlaneGeom p = g;
  p.in_h = Extent(g.h, g.out_h);
  p.in_w = Extent(g.w, g.out_w);
  p.h.pad_begin = p.h.pad_end = p.w.pad_begin = p.w.pad_end = 0;
  return p;
}

int64_t PaddedFloats(const PlaneGeom& g) { return Extent(g.h, g.out_h) * Extent(g.w, g.out_w); }

// Plain loops rather than memcpy/std::fill: rows are short, and per-call overhead dominated.
EI_KERNEL_CLONES
void PadPlane(const float* in, const PlaneGeom& g, float fill, float* out) {
  const int64_t rows = Extent(g.h, g.out_h), cols = Extent(g.w, g.out_w);
  // Padded column c holds input column c - pad_l; [copy_lo, copy_hi) are the ones inside.
  const int64_t copy_lo = std::min(g.w.pad_begin, cols);
  const int64_t copy_hi = std::max(copy_lo, std::min(g.w.pad_begin + g.in_w, cols));
  for (int64_t r = 0; r < rows; ++r) {
    float* __restrict dst = out + r * cols;
    const int64_t iy = r - g.h.pad_begin;
    if (iy < 0 || iy >= g.in_h) {
      for (int64_t c = 0; c < cols; ++c) dst[c] = fill;
      continue;
    }
    for (int64_t c = 0; c < copy_lo; ++c) dst[c] = fill;
    const float* __restrict src = in + iy * g.in_w;
    for (int64_t c = copy_lo; c < copy_hi; ++c) dst[c] = src[c - g.w.pad_begin];
    for (int64_t c = copy_hi; c < cols; ++c) dst[c] = fill;
  }
}

}  // namespace edgeinfer
