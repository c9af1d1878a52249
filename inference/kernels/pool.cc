#include "inference/kernels/pool.h"

#include <algorithm>
#include <limits>

#include "inference/kernels/vectorize.h"
#include "inference/kernels/window_reduce.h"

namespace edgeinfer {

namespace {

// `x > m ? x : m` rather than std::max: it maps onto maxps, and a NaN input is skipped as in
// ONNX Runtime.
struct MaxTaps {
  float Init() const { return std::numeric_limits<float>::lowest(); }
  void Tap(float* m, float x, int64_t) const { *m = x > *m ? x : *m; }
  template <class V>
  void InitV(V* m) const {
    *m = V{} + Init();
  }
  template <class V>
  void TapV(V* m, const V& x, int64_t) const {
    *m = x > *m ? x : *m;
  }
};

struct SumTaps {
  float Init() const { return 0.f; }
  void Tap(float* s, float x, int64_t) const { *s += x; }
  template <class V>
  void InitV(V* s) const {
    *s = V{};
  }
  template <class V>
  void TapV(V* s, const V& x, int64_t) const {
    *s += x;
  }
};

// Number of taps of window `o` along one axis that count towards an average.
int64_t CountedTaps(const WindowAxis& a, int64_t in, int64_t o, bool count_include_pad) {
  const int64_t start = o * a.stride - a.pad_begin;
  if (count_include_pad) return std::min(start + a.kernel, in + a.pad_end) - start;
  return std::min(start + a.kernel, in) - std::max<int64_t>(start, 0);
}

}  // namespace

EI_KERNEL_CLONES
void MaxPoolPlane(const float* in, const PlaneGeom& g, float* out) {
  MaxTaps taps;
  window_internal::ReducePlane(in, g, taps, out);
}

void AvgPoolScales(const PlaneGeom& g, bool count_include_pad, float* row_scale, float* col_scale) {
  for (int64_t oy = 0; oy < g.out_h; ++oy)
    row_scale[oy] = 1.f / static_cast<float>(CountedTaps(g.h, g.in_h, oy, count_include_pad));
  for (int64_t ox = 0; ox < g.out_w; ++ox)
    col_scale[ox] = 1.f / static_cast<float>(CountedTaps(g.w, g.in_w, ox, count_include_pad));
}

EI_KERNEL_CLONES
void AvgPoolPlane(const float* in, const PlaneGeom& g, const float* row_scale,
                  const float* col_scale, float* out) {
  SumTaps taps;
  window_internal::ReducePlane(in, g, taps, out);
  for (int64_t oy = 0; oy < g.out_h; ++oy) {
    float* __restrict out_row = out + oy * g.out_w;
    for (int64_t ox = 0; ox < g.out_w; ++ox) out_row[ox] *= row_scale[oy] * col_scale[ox];
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
