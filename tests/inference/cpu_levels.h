// The CPU levels a kernel test runs at: every level this machine supports, up to what
// EDGEINFER_CPU_LEVEL allows (so `EDGEINFER_CPU_LEVEL=scalar` runs the reference alone), and a
// scope that forces one level on kernels created inside it.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "inference/quant/cpu_features.h"

namespace edgeinfer::testing {

inline std::vector<quant::CpuLevel> TestedLevels() {
  std::vector<quant::CpuLevel> out;
  const int best = static_cast<int>(quant::BestCpuLevel());
  for (int i = 0; i < quant::kNumCpuLevels; ++i) {
    const auto level = static_cast<quant::CpuLevel>(i);
    if (quant::CpuSupports(level) && i <= best) out.push_back(level);
  }
  return out;
}

// Sets EDGEINFER_CPU_LEVEL (read when a kernel is created) for the scope.
class ScopedLevel {
 public:
  explicit ScopedLevel(quant::CpuLevel level) {
    const char* old = std::getenv(quant::kCpuLevelEnv);
    had_ = old != nullptr;
    if (had_) old_ = old;
    ::setenv(quant::kCpuLevelEnv, quant::CpuLevelName(level), 1);
  }
  ~ScopedLevel() {
    if (had_) {
      ::setenv(quant::kCpuLevelEnv, old_.c_str(), 1);
    } else {
      ::unsetenv(quant::kCpuLevelEnv);
    }
  }
  ScopedLevel(const ScopedLevel&) = delete;
  ScopedLevel& operator=(const ScopedLevel&) = delete;

 private:
  bool had_ = false;
  std::string old_;
};

}  // namespace edgeinfer::testing
