#include "inference/quant/fp16.h"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace edgeinfer::quant {

namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) void Fp16ToFp32RowF16c(const uint16_t* in, float* out,
                                                           int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) out[i] = Fp16ToFp32(in[i]);
}

__attribute__((target("avx,f16c"))) void Fp32ToFp16RowF16c(const float* in, uint16_t* out,
                                                           int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  for (; i < n; ++i) out[i] = Fp32ToFp16(in[i]);
}
#endif

#if defined(__aarch64__)
void Fp16ToFp32RowNeon(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    vst1q_f32(out + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(in + i))));
  }
  for (; i < n; ++i) out[i] = Fp16ToFp32(in[i]);
}

void Fp32ToFp16RowNeon(const float* in, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(in + i))));
  }
  for (; i < n; ++i) out[i] = Fp32ToFp16(in[i]);
}
#endif

}  // namespace

float Fp16ToFp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in float
    return FromBits(sign | Bits(static_cast<float>(mant) * 0x1p-24f));
  }
  if (exp == 31) {  // infinity, or NaN made quiet (as the hardware does)
    return FromBits(sign | 0x7F800000u | (mant << 13) | (mant != 0 ? 0x400000u : 0));
  }
  return FromBits(sign | ((exp + 112) << 23) | (mant << 13));  // rebias 15 -> 127
}

// After F. Giesen's float_to_half_fast3_rtne: integer rounding for normals, a float addition for
// subnormals (adding 0.5 puts the value's bits where a half subnormal's are, rounded by the FPU).
uint16_t Fp32ToFp16(float f) {
  uint32_t u = Bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  u &= 0x7FFFFFFFu;
  if (u > 0x7F800000u) return sign | 0x7E00 | ((u >> 13) & 0x3FF);  // NaN: quiet, payload kept
  if (u >= 0x47800000u) return sign | 0x7C00;                       // >= 65536: infinity
  if (u < 0x38800000u) {                                            // below 2^-14: subnormal
    return sign | static_cast<uint16_t>(Bits(FromBits(u) + 0.5f) - Bits(0.5f));
  }
  const uint32_t mant_odd = (u >> 13) & 1;
  u += ((15u - 127u) << 23) + 0xFFFu + mant_odd;  // rebias and round half to even
  return sign | static_cast<uint16_t>(u >> 13);   // a carry into the exponent is the right answer
}

void Fp16ToFp32Row(const uint16_t* in, float* out, int64_t n, CpuLevel level) {
#if defined(__x86_64__)
  if (level == CpuLevel::kAvx2 || level == CpuLevel::kAvx512Vnni) {
    return Fp16ToFp32RowF16c(in, out, n);
  }
#elif defined(__aarch64__)
  if (level == CpuLevel::kNeon) return Fp16ToFp32RowNeon(in, out, n);
#endif
  (void)level;
  for (int64_t i = 0; i < n; ++i) out[i] = Fp16ToFp32(in[i]);
}

void Fp32ToFp16Row(const float* in, uint16_t* out, int64_t n, CpuLevel level) {
#if defined(__x86_64__)
  if (level == CpuLevel::kAvx2 || level == CpuLevel::kAvx512Vnni) {
    return Fp32ToFp16RowF16c(in, out, n);
  }
#elif defined(__aarch64__)
  if (level == CpuLevel::kNeon) return Fp32ToFp16RowNeon(in, out, n);
#endif
  (void)level;
  for (int64_t i = 0; i < n; ++i) out[i] = Fp32ToFp16(in[i]);
}

}  // namespace edgeinfer::quant
