// IEEE binary16 <-> binary32 conversion: a scalar reference (bit manipulation, portable) and row
// versions that use the hardware converters (x86 F16C, Arm FCVT) at the levels that have them.
// Every path gives the same bits: round to nearest even, subnormals kept, overflow to infinity,
// NaN kept quiet with the payload's top bits (what F16C and FCVT do).
#pragma once

#include <cstdint>

#include "inference/quant/cpu_features.h"

namespace edgeinfer::quant {

float Fp16ToFp32(uint16_t h);
uint16_t Fp32ToFp16(float f);

// out[i] = convert(in[i]) for i < n, with the conversion instructions of `level` when it has them
// (avx2 and avx512vnni: F16C; neon: FCVT), else the scalar reference. `level` must be supported.
void Fp16ToFp32Row(const uint16_t* in, float* out, int64_t n, CpuLevel level);
void Fp32ToFp16Row(const float* in, uint16_t* out, int64_t n, CpuLevel level);

}  // namespace edgeinfer::quant
