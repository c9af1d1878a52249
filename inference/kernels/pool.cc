#include "inference/kernels/pool.h"

#include <algorithm>
#include <limits>

#include "inference/kernels/vectorize.h"

namespace edgeinfer {

namespace {

// Number of taps of window `o` along one axis that count towards an average.
int64_t CountedTaps(const WindowAxis& a, int64_t in, int64_t o, bool count_include_pad) {
  const int64_t start = o * a.stride - a.pad_begin;
  if (count_include_pad) return std::min(start + a.kernel, in + a.pad_end) - start;
  return std::min(start + a.kernel, in) - std::max<int64_t>(start, 0);
}

// Applies `op(dst[i], src[i * stride])` to one output row for every in-bounds tap of the window
// rows of output row oy.
template <class Op>
__attribute__((always_inline)) inline void ReduceRow(const float* in, const PlaneGeom& g,
                                                     int64_t oy, float* __restrict out_row, Op op) {
  const int64_t sw = g.w.stride;
  for (int64_t ky = 0; ky < g.h.kernel; ++ky) {
    const int64_t iy = oy * g.h.stride + ky * g.h.dilation - g.h.pad_begin;
    if (iy < 0 || iy >= g.in_h) continue;
    const float* in_row = in + iy * g.in_w;
    for (int64_t kx = 0; kx < g.w.kernel; ++kx) {
      const int64_t x_off = kx * g.w.dilation - g.w.pad_begin;
      int64_t lo, hi;
      ValidOutputs(x_off, sw, g.in_w, g.out_w, &lo, &hi);
      if (hi <= lo) continue;
      const float* __restrict src = in_row + lo * sw + x_off;
      float* __restrict dst = out_row + lo;
      const int64_t n = hi - lo;
      if (sw == 1) {
        for (int64_t i = 0; i < n; ++i) dst[i] = op(dst[i], src[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) dst[i] = op(dst[i], src[i * sw]);
      }
    }
  }
}

}  // namespace

EI_KERNEL_CLONES
void MaxPoolPlane(const float* in, const PlaneGeom& g, float* out) {
  const float lowest = std::numeric_limits<float>::lowest();
  for (int64_t oy = 0; oy < g.out_h; ++oy) {
    float* out_row = out + oy * g.out_w;
    for (int64_t ox = 0; ox < g.out_w; ++ox) out_row[ox] = lowest;
    // `v > m ? v : m` (not std::max) so the loop maps onto maxps; a NaN input is skipped.
    ReduceRow(in, g, oy, out_row, [](float m, float v) { return v > m ? v : m; });
  }
}

void AvgPoolColumnScales(const PlaneGeom& g, bool count_include_pad, float* scale) {
  for (int64_t ox = 0; ox < g.out_w; ++ox)
    scale[ox] = 1.f / static_cast<float>(CountedTaps(g.w, g.in_w, ox, count_include_pad));
}

EI_KERNEL_CLONES
void AvgPoolPlane(const float* in, const PlaneGeom& g, bool count_include_pad,
                  const float* col_scale, float* out) {
  for (int64_t oy = 0; oy < g.out_h; ++oy) {
    float* __restrict out_row = out + oy * g.out_w;
    for (int64_t ox = 0; ox < g.out_w; ++ox) out_row[ox] = 0.f;
    ReduceRow(in, g, oy, out_row, [](float s, float v) { return s + v; });
    const float row_scale =
        1.f / static_cast<float>(CountedTaps(g.h, g.in_h, oy, count_include_pad));
    for (int64_t ox = 0; ox < g.out_w; ++ox) out_row[ox] *= row_scale * col_scale[ox];
  }
}

// Independent partial results per lane: a single accumulator is a serial dependency chain the
// compiler may not reorder (no -ffast-math), while the lanes map onto vector registers.
constexpr int kLanes = 16;

EI_KERNEL_CLONES
float SumOf(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[i + j];
  float sum = 0.f;
  for (; i < n; ++i) sum += x[i];
  for (int j = 0; j < kLanes; ++j) sum += acc[j];
  return sum;
}

EI_KERNEL_CLONES
float MaxOf(const float* x, int64_t n) {
  float acc[kLanes];
  for (int j = 0; j < kLanes; ++j) acc[j] = x[0];
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
  float m = acc[0];
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  for (int j = 1; j < kLanes; ++j) m = acc[j] > m ? acc[j] : m;
  return m;
}

}  // namespace edgeinfer
