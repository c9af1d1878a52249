#include "inference/quant/qgemm.h"

#include "inference/quant/qgemm_kernels.h"

namespace edgeinfer::quant {

namespace {

// The kernel table: one row per weight format, one column per CpuLevel (in enum order). An empty
// entry is a level this build does not compile (x86 levels on Arm and the reverse).
struct LevelKernels {
  QuantizeActsFn quantize;
  GemmFn gemm;
};
using FormatRow = LevelKernels[kNumCpuLevels];

#if defined(__x86_64__)
#define EI_X86(q, g) \
  { q, g }
#else
#define EI_X86(q, g) \
  { nullptr, nullptr }
#endif
#if defined(__aarch64__)
#define EI_NEON(q, g) \
  { q, g }
#else
#define EI_NEON(q, g) \
  { nullptr, nullptr }
#endif

constexpr FormatRow kTable[kNumWeightFormats] = {
    // kInt8
    {{scalar::QuantizeActs, scalar::GemmInt8},
     EI_X86(avx2::QuantizeActs, avx2::GemmInt8),
     EI_X86(avx2::QuantizeActs, avx512::GemmInt8),
     EI_NEON(neon::QuantizeActs, neon::GemmInt8)},
    // kQ4
    {{scalar::QuantizeActs, scalar::GemmQ4},
     EI_X86(avx2::QuantizeActs, avx2::GemmQ4),
     EI_X86(avx2::QuantizeActs, avx512::GemmQ4),
     EI_NEON(neon::QuantizeActs, neon::GemmQ4)},
    // kFp16: weights are converted in registers; X is read as is.
    {{nullptr, scalar::GemmFp16},
     EI_X86(nullptr, avx2::GemmFp16),
     EI_X86(nullptr, avx512::GemmFp16),
     EI_NEON(nullptr, neon::GemmFp16)},
};

#undef EI_X86
#undef EI_NEON

// Arm without the dotprod extension (e.g. Cortex-A72, Raspberry Pi 4) runs the plain NEON
// kernels; with it, the sdot ones.
GemmFn ArmDotProdVariant(WeightFormat format, GemmFn plain) {
#if defined(__aarch64__)
  if (CpuHasArmDotProd()) {
    if (format == WeightFormat::kInt8) return neon::GemmInt8Dot;
    if (format == WeightFormat::kQ4) return neon::GemmQ4Dot;
  }
#endif
  (void)format;
  return plain;
}

size_t Align64(size_t v) { return (v + 63) / 64 * 64; }

}  // namespace

size_t ScratchBytes(WeightFormat format, int64_t m, int64_t k) {
  if (format == WeightFormat::kFp16) return 0;
  const auto codes = static_cast<size_t>(m) * static_cast<size_t>(Int8PaddedK(k));
  const size_t corr = format == WeightFormat::kQ4 ? codes / 8 : 0;  // Kp/32 int32 per row
  return Align64(codes) + Align64(corr) + static_cast<size_t>(m) * sizeof(float);
}

QuantizedActs ActsLayout(WeightFormat format, int64_t m, int64_t k, void* scratch) {
  QuantizedActs a;
  a.m = m;
  a.kp = Int8PaddedK(k);
  auto* base = static_cast<uint8_t*>(scratch);
  const auto codes = static_cast<size_t>(m * a.kp);
  a.q = reinterpret_cast<int8_t*>(base);
  size_t offset = Align64(codes);
  if (format == WeightFormat::kQ4) {
    a.corr = reinterpret_cast<int32_t*>(base + offset);
    offset += Align64(codes / 8);
  }
  a.scales = reinterpret_cast<float*>(base + offset);
  return a;
}

QGemmKernels SelectQGemm(WeightFormat format, CpuLevel level) {
  const auto& row = kTable[static_cast<int>(format)];
  if (!CpuSupports(level) || row[static_cast<int>(level)].gemm == nullptr) {
    level = CpuLevel::kScalar;
  }
  const LevelKernels& k = row[static_cast<int>(level)];
  QGemmKernels out;
  out.level = level;
  out.quantize = k.quantize;
  out.gemm = level == CpuLevel::kNeon ? ArmDotProdVariant(format, k.gemm) : k.gemm;
  return out;
}

void RunQGemm(const QGemmKernels& kernels, const QGemmProblem& p, void* scratch) {
  if (kernels.quantize != nullptr) kernels.quantize(p, scratch);
  kernels.gemm(p, scratch);
}

}  // namespace edgeinfer::quant
