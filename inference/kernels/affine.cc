#include "inference/kernels/affine.h"

#include "inference/kernels/vectorize.h"

namespace edgeinfer {

EI_KERNEL_CLONES
void AddChannelBias(float* y, const float* bias, int64_t channels, int64_t plane) {
  for (int64_t c = 0; c < channels; ++c) {
    float* __restrict row = y + c * plane;
    const float b = bias[c];
    for (int64_t i = 0; i < plane; ++i) row[i] += b;
  }
}

EI_KERNEL_CLONES
void AffinePlane(const float* x, float scale, float shift, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale + shift;
}

EI_KERNEL_CLONES
void AddBroadcastMatrix(float* y, int64_t m, int64_t n, const float* c, int64_t c_rows,
                        int64_t c_cols, float beta) {
  for (int64_t i = 0; i < m; ++i) {
    float* __restrict row = y + i * n;
    const float* __restrict c_row = c + (c_rows == 1 ? 0 : i * c_cols);
    if (c_cols == 1) {
      const float v = beta * c_row[0];
      for (int64_t j = 0; j < n; ++j) row[j] += v;
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] += beta * c_row[j];
    }
  }
}

}  // namespace edgeinfer
