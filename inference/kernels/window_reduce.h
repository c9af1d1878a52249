// Internal to the window kernels (depthwise_conv.cc, pool.cc): a sliding-window reduction over
// one plane whose windows all lie inside it (padding is materialized first, see window.h), with
// the taps accumulated in registers.
//
// Outputs run in blocks of four 8-float vectors: 32 columns of one row, or 8 columns of four
// rows when the plane is narrower than 32. Each output is stored once instead of once per tap,
// and the four independent accumulation chains hide the latency of the dependent adds/FMAs. The
// last block of a row overlaps the previous one instead of falling back to scalar code. Stride 1
// and 2 load contiguously (stride 2 de-interleaves two loads); other strides gather lanes.
//
// Planes 4 to 7 wide use 4-float vectors the same way; narrower ones a scalar loop.
//
// A policy P supplies the reduction (t = ky * kernel_w + kx is the tap index; V is Vec8 or Vec4):
//   float Init() const;                         template <class V> void InitV(V* acc) const;
//   void Tap(float* acc, float x, int64_t t);   template <class V> void TapV(V* acc, const V& x,
//                                                                            int64_t t) const;
// Vectors never pass by value: in the baseline (non-AVX) clone that draws GCC's -Wpsabi ABI
// warning, although everything here is inlined.
#pragma once

#include <cstdint>

#include "inference/kernels/window.h"

namespace edgeinfer::window_internal {

// 8 floats in one vector: the compiler maps it to one AVX register in the x86-64-v3 clone and to
// two SSE registers (or NEON pairs) elsewhere.
typedef float Vec8 __attribute__((vector_size(32)));
typedef int32_t Int8 __attribute__((vector_size(32)));
typedef float Vec4 __attribute__((vector_size(16)));
typedef int32_t Int4 __attribute__((vector_size(16)));

template <class V>
constexpr int kLanes = sizeof(V) / sizeof(float);

#define EI_INLINE __attribute__((always_inline)) inline

template <class V>
EI_INLINE void Load(const float* p, V* v) {
  __builtin_memcpy(v, p, sizeof *v);
}
template <class V>
EI_INLINE void Store(float* p, const V& v) {
  __builtin_memcpy(p, &v, sizeof v);
}

// *v = p[0], p[s], ..., p[(n-1)s] for n lanes; kStride 0 means the runtime stride s. Reads
// nothing past the last of them.
template <int kStride, class V>
EI_INLINE void LoadStrided(const float* p, int64_t s, V* v) {
  constexpr int n = kLanes<V>;
  if constexpr (kStride == 1) {
    Load(p, v);
  } else if constexpr (kStride == 2) {
    // The even lanes of p[0..n) and the odd lanes of p[n-1..2n-1): p[0], p[2], ..., p[2n-2].
    V lo, hi;
    Load(p, &lo);
    Load(p + n - 1, &hi);
#if defined(__clang__)
    if constexpr (n == 8) {
      *v = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 9, 11, 13, 15);
    } else {
      *v = __builtin_shufflevector(lo, hi, 0, 2, 5, 7);
    }
#else
    if constexpr (n == 8) {
      const Int8 even = {0, 2, 4, 6, 9, 11, 13, 15};
      *v = __builtin_shuffle(lo, hi, even);
    } else {
      const Int4 even = {0, 2, 5, 7};
      *v = __builtin_shuffle(lo, hi, even);
    }
#endif
  } else {
    for (int i = 0; i < n; ++i) (*v)[i] = p[i * s];
  }
}

// Scalar path for one output (planes narrower than 4).
template <class P>
EI_INLINE float Column(const float* in, const PlaneGeom& g, int64_t oy, int64_t ox, P& p) {
  float acc = p.Init();
  const float* base = in + oy * g.h.stride * g.in_w + ox * g.w.stride;
  for (int64_t ky = 0; ky < g.h.kernel; ++ky) {
    const float* src = base + ky * g.h.dilation * g.in_w;
    for (int64_t kx = 0; kx < g.w.kernel; ++kx)
      p.Tap(&acc, src[kx * g.w.dilation], ky * g.w.kernel + kx);
  }
  return acc;
}

// kRows x kVecs vectors of outputs, top-left output (oy, ox).
template <int kStride, int kRows, int kVecs, class V, class P>
EI_INLINE void Block(const float* in, const PlaneGeom& g, int64_t oy, int64_t ox, P& p,
                     float* out) {
  constexpr int n = kLanes<V>;
  const int64_t s = g.w.stride;
  V acc[kRows][kVecs];
  for (int r = 0; r < kRows; ++r)
    for (int j = 0; j < kVecs; ++j) p.InitV(&acc[r][j]);
  const float* base = in + oy * g.h.stride * g.in_w + ox * s;
  for (int64_t ky = 0; ky < g.h.kernel; ++ky) {
    for (int64_t kx = 0; kx < g.w.kernel; ++kx) {
      const float* tap = base + ky * g.h.dilation * g.in_w + kx * g.w.dilation;
      const int64_t t = ky * g.w.kernel + kx;
      for (int r = 0; r < kRows; ++r) {
        for (int j = 0; j < kVecs; ++j) {
          V x;
          LoadStrided<kStride>(tap + r * g.h.stride * g.in_w + n * j * s, s, &x);
          p.TapV(&acc[r][j], x, t);
        }
      }
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int j = 0; j < kVecs; ++j) Store(out + (oy + r) * g.out_w + ox + n * j, acc[r][j]);
}

// Output rows oy..oy+kRows-1 (out_w >= kVecs vectors). The last block ends at out_w,
// overlapping the previous one (recomputing the same values) rather than going scalar.
template <int kStride, int kRows, int kVecs, class V, class P>
EI_INLINE void Rows(const float* in, const PlaneGeom& g, int64_t oy, P& p, float* out) {
  constexpr int64_t kWidth = kLanes<V> * kVecs;
  for (int64_t ox = 0;; ox += kWidth) {
    const int64_t at = ox + kWidth <= g.out_w ? ox : g.out_w - kWidth;
    Block<kStride, kRows, kVecs, V>(in, g, oy, at, p, out);
    if (at + kWidth >= g.out_w) break;
  }
}

// Four rows at a time (one vector each), then the rest one by one.
template <int kStride, class V, class P>
EI_INLINE void NarrowRows(const float* in, const PlaneGeom& g, P& p, float* out) {
  int64_t oy = 0;
  for (; oy + 4 <= g.out_h; oy += 4) Rows<kStride, 4, 1, V>(in, g, oy, p, out);
  for (; oy < g.out_h; ++oy) Rows<kStride, 1, 1, V>(in, g, oy, p, out);
}

template <int kStride, class P>
EI_INLINE void ReducePlaneWithStride(const float* in, const PlaneGeom& g, P& p, float* out) {
  if (g.out_w >= 32) {
    for (int64_t oy = 0; oy < g.out_h; ++oy) Rows<kStride, 1, 4, Vec8>(in, g, oy, p, out);
  } else if (g.out_w >= 8) {
    NarrowRows<kStride, Vec8>(in, g, p, out);
  } else if (g.out_w >= 4) {
    NarrowRows<kStride, Vec4>(in, g, p, out);
  } else {
    for (int64_t oy = 0; oy < g.out_h; ++oy)
      for (int64_t ox = 0; ox < g.out_w; ++ox) out[oy * g.out_w + ox] = Column(in, g, oy, ox, p);
  }
}

// out = the reduction over every window of the plane. Requires !NeedsPadding(g).
template <class P>
EI_INLINE void ReducePlane(const float* in, const PlaneGeom& g, P& p, float* out) {
  if (g.w.stride == 1) {
    ReducePlaneWithStride<1>(in, g, p, out);
  } else if (g.w.stride == 2) {
    ReducePlaneWithStride<2>(in, g, p, out);
  } else {
    ReducePlaneWithStride<0>(in, g, p, out);
  }
}

#undef EI_INLINE

}  // namespace edgeinfer::window_internal
