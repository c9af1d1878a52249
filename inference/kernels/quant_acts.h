// Activation-side helpers of the dynamic quantized Conv (inference/ops/conv.cc): the absmax that
// sets a sample's scale, and the Q4 offset corrections of its im2row rows. Plain loops compiled
// for AVX2 and the baseline (EI_KERNEL_CLONES); the results are exact, so every build and CPU
// gives the same bits as quant::QuantizeActRow's max and quant::Q4Correction.
#pragma once

#include <cstdint>

namespace edgeinfer {

// max |x[i]| over i < n, NaN skipped (0 for n = 0 or all NaN); +inf counts.
float MaxAbs(const float* x, int64_t n);

// quant::Q4Correction of `rows` rows of kp codes (kp a multiple of 32), rows kp apart:
// corr[r * kp / 32 + b] = -8 * (sum of the 32 codes of block b of row r).
void Q4Corrections(const int8_t* q, int64_t rows, int64_t kp, int32_t* corr);

}  // namespace edgeinfer
