#include "inference/quant/requant.h"

#include <algorithm>
#include <cstring>

namespace edgeinfer::quant {

namespace scalar {

void QuantizeClamp(const float* x, int64_t n, float inv_scale, float lo, float hi, int8_t* q) {
  for (int64_t i = 0; i < n; ++i) q[i] = ClampCode(x[i], inv_scale, lo, hi);
}

void RequantTranspose(const float* src, int64_t rows, int64_t cols, int64_t ld_src, float inv_scale,
                      float lo, float hi, int8_t* dst, int64_t ld_dst) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      dst[j * ld_dst + i] = ClampCode(src[i * ld_src + j], inv_scale, lo, hi);
}

// In 8 x 8 tiles, so both sides stream through L1 in whole cache lines.
void Transpose(const float* src, int64_t rows, int64_t cols, int64_t ld_src, float* dst,
               int64_t ld_dst) {
  constexpr int64_t kTile = 8;
  for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
    const int64_t i1 = std::min(rows, i0 + kTile);
    for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
      const int64_t j1 = std::min(cols, j0 + kTile);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) dst[j * ld_dst + i] = src[i * ld_src + j];
    }
  }
}

}  // namespace scalar

StaticKernels SelectStatic(CpuLevel level) {
  StaticKernels k;
  k.quantize_clamp = scalar::QuantizeClamp;
  k.requant_transpose = scalar::RequantTranspose;
  k.transpose = scalar::Transpose;
#if defined(__x86_64__)
  if ((level == CpuLevel::kAvx2 || level == CpuLevel::kAvx512Vnni) && CpuSupports(level)) {
    k.level = CpuLevel::kAvx2;
    k.quantize_clamp = avx2::QuantizeClamp;
    k.requant_transpose = avx2::RequantTranspose;
    k.transpose = avx2::Transpose;
  }
#else
  (void)level;
#endif
  return k;
}

void TransposeS8(const int8_t* src, int64_t rows, int64_t cols, int8_t* dst) {
  constexpr int64_t kTile = 16;
  for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
    const int64_t i1 = std::min(rows, i0 + kTile);
    for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
      const int64_t j1 = std::min(cols, j0 + kTile);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) dst[j * rows + i] = src[i * cols + j];
    }
  }
}

void Im2RowHwc(const int8_t* x, int64_t stride, int64_t c, const PlaneGeom& g, int64_t kp,
               int8_t* rows) {
  const int64_t kh = g.h.kernel, kw = g.w.kernel, k = kh * kw * c;
  // A stride-1 window row of a group-1 conv is contiguous: kw pixels of c channels.
  const bool runs = c == stride && g.w.dilation == 1;
  for (int64_t oh = 0; oh < g.out_h; ++oh) {
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      int8_t* row = rows + (oh * g.out_w + ow) * kp;
      const int64_t w0 = ow * g.w.stride - g.w.pad_begin;
      const bool w_inside = w0 >= 0 && w0 + g.w.span() <= g.in_w;
      for (int64_t i = 0; i < kh; ++i) {
        int8_t* out = row + i * kw * c;
        const int64_t ih = oh * g.h.stride + i * g.h.dilation - g.h.pad_begin;
        if (ih < 0 || ih >= g.in_h) {
          std::memset(out, 0, static_cast<size_t>(kw * c));
          continue;
        }
        const int8_t* in = x + ih * g.in_w * stride;
        if (runs && w_inside) {
          std::memcpy(out, in + w0 * c, static_cast<size_t>(kw * c));
          continue;
        }
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t iw = w0 + j * g.w.dilation;
          if (iw >= 0 && iw < g.in_w) {
            std::memcpy(out + j * c, in + iw * stride, static_cast<size_t>(c));
          } else {
            std::memset(out + j * c, 0, static_cast<size_t>(c));
          }
        }
      }
      if (kp > k) std::memset(row + k, 0, static_cast<size_t>(kp - k));
    }
  }
}

namespace {

// The max of the taps of output (oh, ow) that lie inside the input (-128 when none does).
int8_t MaxAt(const int8_t* in, const PlaneGeom& g, int64_t oh, int64_t ow) {
  int best = -128;
  for (int64_t i = 0; i < g.h.kernel; ++i) {
    const int64_t ih = oh * g.h.stride + i * g.h.dilation - g.h.pad_begin;
    if (ih < 0 || ih >= g.in_h) continue;
    for (int64_t j = 0; j < g.w.kernel; ++j) {
      const int64_t iw = ow * g.w.stride + j * g.w.dilation - g.w.pad_begin;
      if (iw >= 0 && iw < g.in_w) best = std::max<int>(best, in[ih * g.in_w + iw]);
    }
  }
  return static_cast<int8_t>(best);
}

}  // namespace

// Per output row, the outputs whose windows lie inside the input take the max tap by tap over
// the whole row (a strided loop the compiler vectorizes); the edges go through MaxAt.
void MaxPoolS8(const int8_t* x, int64_t planes, const PlaneGeom& g, int8_t* y) {
  int64_t lo = 0, hi = 0;
  ValidOutputs(-g.w.pad_begin, g.w.stride, g.in_w - g.w.span() + 1, g.out_w, &lo, &hi);
  const int64_t sw = g.w.stride;
  for (int64_t p = 0; p < planes; ++p) {
    const int8_t* in = x + p * g.in_h * g.in_w;
    int8_t* out_plane = y + p * g.out_h * g.out_w;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      int8_t* __restrict out = out_plane + oh * g.out_w;
      const int64_t h0 = oh * g.h.stride - g.h.pad_begin;
      const bool h_inside = h0 >= 0 && h0 + g.h.span() <= g.in_h;
      const int64_t a = h_inside ? lo : g.out_w, b = h_inside ? hi : g.out_w;
      for (int64_t ow = 0; ow < a; ++ow) out[ow] = MaxAt(in, g, oh, ow);
      for (int64_t ow = b; ow < g.out_w; ++ow) out[ow] = MaxAt(in, g, oh, ow);
      if (a >= b) continue;
      for (int64_t ow = a; ow < b; ++ow) out[ow] = -128;
      for (int64_t i = 0; i < g.h.kernel; ++i) {
        for (int64_t j = 0; j < g.w.kernel; ++j) {
          const int8_t* __restrict src =
              in + (h0 + i * g.h.dilation) * g.in_w + j * g.w.dilation - g.w.pad_begin;
          if (sw == 2) {
            for (int64_t ow = a; ow < b; ++ow) out[ow] = std::max(out[ow], src[2 * ow]);
          } else {
            for (int64_t ow = a; ow < b; ++ow) out[ow] = std::max(out[ow], src[sw * ow]);
          }
        }
      }
    }
  }
}

}  // namespace edgeinfer::quant
