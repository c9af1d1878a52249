// Calibration for static INT8: runs the FP32 graph over sample inputs and turns the values each
// observed tensor takes into a threshold T (its int8 scale is T / 127), with the statistics of
// inference/quant/calibrate.h. Used by `edgeinfer convert --precision int8-static`.
#pragma once

#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "inference/graph.h"
#include "inference/quant/calibrate.h"

namespace edgeinfer {

struct CalibrationOptions {
  quant::CalibrationMethod method = quant::CalibrationMethod::kPercentile;
  double percentile = 99.99;
  int64_t max_samples = 1000;  // the first max_samples samples; 0 for all
  int batch = 16;
  // Called now and then with (samples done, samples in this pass, pass 1 or 2); may be empty.
  std::function<void(int64_t, int64_t, int)> progress;
};

// T per tensor name for `tensors` (float32 activations of `graph`, or its input), observed while
// `graph` (float32, one input, validated) runs over `samples`: raw float32 inputs, one after the
// other, as `edgeinfer run` reads them. A tensor that only ever held zeros gets T = 0.
// Errors (InvalidArgument, naming the problem): no samples, a size that is not a whole number
// of samples, NaN or infinity in a sample (with its index), a graph with other than one input,
// a tensor name the graph does not have or that is not float32.
Result<std::map<std::string, float>> Calibrate(const Graph& graph, std::span<const float> samples,
                                               const std::vector<std::string>& tensors,
                                               const CalibrationOptions& options);

}  // namespace edgeinfer
