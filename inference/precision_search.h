// Automatic mixed precision (`edgeinfer convert --precision auto`): the fewest layers above the
// lowest precision such that top-1 accuracy on labelled data drops at most a given number of
// points below FP32.
//
// 1. FP32 accuracy A0 on the evaluation data.
// 2. Candidates: the layers an int4 plan would quantize (QuantizeGraph's rules: not small, not
//    depthwise, ...). Sensitivity of each: the drop when it alone runs at int4, every other
//    layer fp32.
// 3. All candidates at int4; while the drop exceeds the budget, move the next most sensitive
//    candidate one rung up the ladder int4 -> int8 -> fp16 -> fp32 (a layer moves again only
//    after every candidate has reached the rung it is on), re-measuring each time.
// The answer is a per-layer plan (QuantizeOptions::keep), written into the file like any plan.
// Evaluation runs whole sessions on the data, so the cost is (2 + candidates + steps) passes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "inference/graph.h"
#include "inference/quantize_graph.h"

namespace edgeinfer {

struct PrecisionSearchOptions {
  double max_drop_points = 0.5;  // accuracy points (percent) below FP32
  int batch = 16;
  // Called with a line of progress (a measured plan); may be empty.
  std::function<void(const std::string&)> log;
};

struct LayerSensitivity {
  std::string node;
  double drop_points = 0;  // accuracy drop with only this layer at int4
};

struct PrecisionSearchResult {
  std::map<std::string, Precision> plan;      // every candidate layer's precision
  std::vector<LayerSensitivity> sensitivity;  // most sensitive first
  double fp32_accuracy = 0;                   // fractions in [0, 1]
  double accuracy = 0;
  int evaluations = 0;
};

// `graph` is the imported float graph (one input; output 0 the class scores); `x` holds whole
// samples of the input, `labels` one class per sample. `base` gives the QuantizeGraph policy
// (its precision and keep are ignored; keep is where the result goes). Errors: InvalidArgument
// for data that does not match the model (sizes, a label past the class count, no samples).
Result<PrecisionSearchResult> SearchPrecision(const Graph& graph, std::span<const float> x,
                                              std::span<const uint8_t> labels,
                                              const QuantizeOptions& base,
                                              const PrecisionSearchOptions& options);

}  // namespace edgeinfer
