// Geometry of a sliding window over one 2-D plane, shared by the convolution and pooling kernels.
// A 1-D op is the 2-D case with height 1 and a 1-high window, so each kernel is written once.
#pragma once

#include <cstdint>

namespace edgeinfer {

struct WindowAxis {
  int64_t kernel = 1;
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t pad_begin = 0;
  int64_t pad_end = 0;

  // Input positions covered by one window, first to last tap inclusive.
  int64_t span() const { return dilation * (kernel - 1) + 1; }
};

struct PlaneGeom {
  int64_t in_h = 1, in_w = 1;
  int64_t out_h = 1, out_w = 1;
  WindowAxis h, w;
};

// The outputs o in [*lo, *hi) whose tap at input position o * stride + offset lies in [0, in).
// Kernels loop over exactly this range, so their inner loops carry no bounds checks.
inline void ValidOutputs(int64_t offset, int64_t stride, int64_t in, int64_t out, int64_t* lo,
                         int64_t* hi) {
  int64_t l = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t last = in - 1 - offset;  // the largest o * stride that is still inside
  int64_t h = last < 0 ? 0 : last / stride + 1;
  if (h > out) h = out;
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

// Materialized padding. The window kernels (depthwise conv, pooling) require every window to lie
// inside their input, which keeps their inner loops free of bounds checks and edge cases; a
// plane whose windows reach into padding (or, with ceil_mode, past it) is first copied into a
// scratch plane surrounded by a fill value (0 for sums, the lowest float for max).

// True when some window of g reads outside the input.
bool NeedsPadding(const PlaneGeom& g);
// The geometry of the same windows over the padded plane (no pads, every window inside).
PlaneGeom PaddedGeom(const PlaneGeom& g);
// Floats of the padded plane.
int64_t PaddedFloats(const PlaneGeom& g);
// Writes the padded plane of `in` (PaddedFloats(g) floats) to `out`.
void PadPlane(const float* in, const PlaneGeom& g, float fill, float* out);

}  // namespace edgeinfer
