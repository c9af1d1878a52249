// Calibration statistics: from observed activation values to the threshold T of a symmetric
// int8 tensor (scale = T / 127; values beyond T saturate).
//
// Three methods, as ONNX Runtime and TensorRT name them:
//   kMinMax      T = max |x| seen. No value saturates; one outlier widens every step.
//   kPercentile  T = the given percentile of |x| (default 99.99): the rare tail saturates.
//   kEntropy     T minimizing KL(P || Q) between the |x| histogram P clipped at T and its
//                128-level quantization Q (TensorRT's calibrator, over a 2048-bin histogram).
// Percentile and entropy need the range first (a histogram's bins are fixed), so calibration
// runs twice over the samples: AbsMax, then AbsHistogram with that maximum.
// NaN and infinities are skipped and counted: a calibration set that holds them is refused by
// the caller, never turned into a NaN scale.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace edgeinfer::quant {

enum class CalibrationMethod : uint8_t { kMinMax = 0, kPercentile = 1, kEntropy = 2 };
const char* CalibrationMethodName(CalibrationMethod m);  // "minmax", "percentile", "entropy"
bool ParseCalibrationMethod(std::string_view name, CalibrationMethod* out);

// Running max |x| over finite values.
class AbsMax {
 public:
  void Add(const float* x, int64_t n);
  float max() const { return max_; }
  int64_t non_finite() const { return non_finite_; }

 private:
  float max_ = 0.f;
  int64_t non_finite_ = 0;
};

// Histogram of |x| over [0, range] in `bins` equal bins; values above range go to the last bin.
class AbsHistogram {
 public:
  static constexpr int kDefaultBins = 2048;
  explicit AbsHistogram(float range, int bins = kDefaultBins);
  void Add(const float* x, int64_t n);

  float range() const { return range_; }
  int bins() const { return static_cast<int>(counts_.size()); }
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t total() const { return total_; }

 private:
  float range_;
  float bins_per_unit_;
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
};

// The threshold below which `percentile` percent of |x| lies (the upper edge of the bin where
// the cumulative count reaches it). 0 for an empty histogram.
float PercentileThreshold(const AbsHistogram& h, double percentile);

// TensorRT's entropy calibration: for each candidate i in [levels, bins], P = the first i bins
// with the counts beyond folded into bin i - 1, Q = the first i bins (outliers not folded in)
// merged into `levels` groups and spread back uniformly over the bins where P is non-empty;
// T = the upper edge of the i with the least KL(P||Q) (clipping costs through P's last bin).
// Bin 0 is given bin 1's count first, so a spike of exact zeros (ReLU) does not decide T.
// 0 for an empty histogram.
float EntropyThreshold(const AbsHistogram& h, int levels = 128);

// T for `method` from a histogram built with range = max.
float Threshold(CalibrationMethod method, float max, const AbsHistogram* h, double percentile);

}  // namespace edgeinfer::quant
