// Normalizer: the per-channel normalization a model's metadata asks the caller to apply,
// (x - mean[c]) / std[c] along `norm_axis` of the input (ModelInfo; the axis counts the batch
// axis, which is 1 for one sample). A model without metadata gets no normalization.
//
// Thread safety: immutable after Create; Apply may run on many threads at once.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "inference/graph.h"

namespace edgeinfer::agent {

class Normalizer {
 public:
  // `input_dims` are the model input's symbolic dims (batch included). Fails when mean and
  // std differ in length, when their length is neither 1 nor the axis' size, when the axis is
  // out of range, or when a std is zero or not finite.
  static Result<Normalizer> Create(const ModelInfo& info, const Dims& input_dims);

  bool enabled() const { return !mean_.empty(); }
  // Normalizes one sample (sample_floats() values, the model's layout) in place. A no-op when
  // disabled. Allocates nothing.
  void Apply(std::span<float> sample) const;

 private:
  std::vector<float> mean_, std_;  // one per channel of the axis (a single value broadcasts)
  int64_t outer_ = 1, channels_ = 1, inner_ = 1;
};

}  // namespace edgeinfer::agent
