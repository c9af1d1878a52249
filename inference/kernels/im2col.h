// im2col: unfolds the input patches of a convolution into a matrix so the convolution becomes
// one GEMM (weights [M, C*kh*kw] x columns [C*kh*kw, out_h*out_w]).
#pragma once

#include <cstdint>

#include "inference/kernels/window.h"

namespace edgeinfer {

// x holds `channels` planes of g.in_h x g.in_w; col receives [channels*kh*kw, out_h*out_w]
// row-major, row (c, ky, kx) holding that tap for every output position (0 where it falls in
// padding). Writes every element of col.
void Im2Col(const float* x, int64_t channels, const PlaneGeom& g, float* col);

}  // namespace edgeinfer
