#include "inference/quant/cpu_features.h"

#include <cstdlib>

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace edgeinfer::quant {

namespace {

constexpr const char* kNames[kNumCpuLevels] = {"scalar", "avx2", "avx512vnni", "neon"};

#if defined(__x86_64__) || defined(__i386__)
// __builtin_cpu_supports also checks that the OS saves the YMM/ZMM state (XGETBV).
bool HasAvx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
}
bool HasAvx512Vnni() {
  return HasAvx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#endif

}  // namespace

const char* CpuLevelName(CpuLevel level) {
  const int i = static_cast<int>(level);
  return i >= 0 && i < kNumCpuLevels ? kNames[i] : "unknown";
}

bool ParseCpuLevel(std::string_view name, CpuLevel* out) {
  for (int i = 0; i < kNumCpuLevels; ++i) {
    if (name == kNames[i]) {
      *out = static_cast<CpuLevel>(i);
      return true;
    }
  }
  return false;
}

bool CpuSupports(CpuLevel level) {
  switch (level) {
    case CpuLevel::kScalar:
      return true;
#if defined(__x86_64__)
    case CpuLevel::kAvx2:
      return HasAvx2();
    case CpuLevel::kAvx512Vnni:
      return HasAvx512Vnni();
#endif
#if defined(__aarch64__)
    case CpuLevel::kNeon:
      return true;  // Advanced SIMD is part of the aarch64 base.
#endif
    default:
      return false;
  }
}

bool CpuHasArmDotProd() {
#if defined(__aarch64__) && defined(__linux__) && defined(HWCAP_ASIMDDP)
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
  return false;
#endif
}

CpuLevel DetectedCpuLevel() {
  for (CpuLevel l : {CpuLevel::kAvx512Vnni, CpuLevel::kAvx2, CpuLevel::kNeon}) {
    if (CpuSupports(l)) return l;
  }
  return CpuLevel::kScalar;
}

CpuLevel ResolveCpuLevel(const char* env_value, bool* ignored) {
  if (ignored != nullptr) *ignored = false;
  if (env_value == nullptr || *env_value == '\0') return DetectedCpuLevel();
  CpuLevel requested;
  if (ParseCpuLevel(env_value, &requested) && CpuSupports(requested)) return requested;
  if (ignored != nullptr) *ignored = true;
  return DetectedCpuLevel();
}

CpuLevel BestCpuLevel() { return ResolveCpuLevel(std::getenv(kCpuLevelEnv)); }

}  // namespace edgeinfer::quant
