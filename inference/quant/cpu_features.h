// Which SIMD level the quantized kernels run at, chosen at run time.
//
// The build stays portable (baseline x86-64 or aarch64); each SIMD kernel file enables its own ISA
// per function, and the level is picked from the CPU's features when a kernel is selected.
// EDGEINFER_CPU_LEVEL=scalar|avx2|avx512vnni|neon forces a level the CPU supports (so tests and
// users can exercise lower levels); a value that is unknown, or names a level this CPU or build
// cannot run, is ignored and the detected level is used. Nothing is printed: a caller that wants
// to log the ignored value asks ResolveCpuLevel. All functions are thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace edgeinfer::quant {

// Ordered within an architecture: a higher x86 level implies the lower ones. kNeon is the aarch64
// level (Advanced SIMD; the sdot instructions are used where the CPU has them).
enum class CpuLevel : uint8_t { kScalar = 0, kAvx2 = 1, kAvx512Vnni = 2, kNeon = 3 };
constexpr int kNumCpuLevels = 4;
constexpr const char* kCpuLevelEnv = "EDGEINFER_CPU_LEVEL";

// "scalar", "avx2", "avx512vnni", "neon".
const char* CpuLevelName(CpuLevel level);
// False (and *out untouched) for an unknown name.
bool ParseCpuLevel(std::string_view name, CpuLevel* out);

// True when this CPU (and OS, for the AVX register state) and this build can run `level`.
// avx2 needs AVX2+FMA+F16C; avx512vnni needs those and AVX-512 F/BW/VL/VNNI.
bool CpuSupports(CpuLevel level);
// aarch64 only: the CPU has the SDOT/UDOT instructions (Armv8.2 dotprod).
bool CpuHasArmDotProd();

// The best level this CPU supports, ignoring the environment.
CpuLevel DetectedCpuLevel();

// The level that `env_value` (the variable's value, or nullptr when unset) selects given the
// hardware: the named level when CpuSupports it, else DetectedCpuLevel(). *ignored (optional) is
// set when a value was given but not honoured.
CpuLevel ResolveCpuLevel(const char* env_value, bool* ignored = nullptr);

// ResolveCpuLevel(getenv(EDGEINFER_CPU_LEVEL)). Reads the environment on every call, so call it
// when a kernel is set up, not per GEMM.
CpuLevel BestCpuLevel();

}  // namespace edgeinfer::quant
