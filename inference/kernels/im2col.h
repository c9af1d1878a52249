// im2col: unfolds the input patches of a convolution into a matrix so the convolution becomes
// one GEMM (weights [M, C*kh*kw] x columns [C*kh*kw, out_h*out_w]).
#pragma once

#include <cstdint>

#include "inference/kernels/window.h"

namespace edgeinfer {

// x holds `channels` planes of g.in_h x g.in_w; col receives [channels*kh*kw, out_h*out_w]
// row-major with rows `ld` floats apart (ld >= out_h*out_w), row (c, ky, kx) holding that tap for
// every output position (0 where it falls in padding). Writes every element of those rows and
// nothing between them, so several samples' columns can sit side by side in one matrix
// ([K, n*P] with ld = n*P, sample j at col + j*P): one GEMM then covers all of them.
void Im2Col(const float* x, int64_t channels, const PlaneGeom& g, float* col, int64_t ld);

inline void Im2Col(const float* x, int64_t channels, const PlaneGeom& g, float* col) {
  Im2Col(x, channels, g, col, g.out_h * g.out_w);
}

}  // namespace edgeinfer
