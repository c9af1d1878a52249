#include "inference/kernels/quant_acts.h"

#include <bit>

#include "inference/kernels/vectorize.h"

namespace edgeinfer {

// On the bits: the bits of |x| (sign cleared) as an int32 order like the float for every
// non-NaN value (+inf included), and NaNs are exactly the patterns above +inf's, so an integer
// max that maps those to 0 is max|x| with NaN skipped. Integer max reductions vectorize; float
// ones do not without -ffast-math.
EI_KERNEL_CLONES
float MaxAbs(const float* x, int64_t n) {
  constexpr int32_t kInfBits = 0x7F800000;
  int32_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t bits = std::bit_cast<int32_t>(x[i]) & 0x7FFFFFFF;
    const int32_t v = bits <= kInfBits ? bits : 0;
    m = m > v ? m : v;
  }
  return std::bit_cast<float>(m);
}

EI_KERNEL_CLONES
void Q4Corrections(const int8_t* q, int64_t rows, int64_t kp, int32_t* corr) {
  constexpr int kBlock = 32;
  const int64_t blocks = rows * (kp / kBlock);  // rows are contiguous: one run of blocks
  for (int64_t b = 0; b < blocks; ++b) {
    const int8_t* __restrict v = q + b * kBlock;
    int16_t sum = 0;  // exact: |sum| <= 32 * 127; 16-bit lanes halve the widening work
    for (int j = 0; j < kBlock; ++j) sum = static_cast<int16_t>(sum + v[j]);
    corr[b] = -8 * int32_t{sum};
  }
}

}  // namespace edgeinfer
