// Per-channel and broadcast affine updates that finish a GEMM or a batch norm in one pass over
// the output.
#pragma once

#include <cstdint>

namespace edgeinfer {

// y[c, i] += bias[c] for `channels` rows of `plane` floats.
void AddChannelBias(float* y, const float* bias, int64_t channels, int64_t plane);

// y[i] = x[i] * scale + shift for n floats (x may equal y).
void AffinePlane(const float* x, float scale, float shift, int64_t n, float* y);

// y[m, n] += beta * C broadcast to [m, n], where C is [c_rows, c_cols] with c_rows in {1, m} and
// c_cols in {1, n} (a scalar is 1 x 1).
void AddBroadcastMatrix(float* y, int64_t m, int64_t n, const float* c, int64_t c_rows,
                        int64_t c_cols, float beta);

}  // namespace edgeinfer
