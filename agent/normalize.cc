#include "agent/normalize.h"

#include <cmath>
#include <string>

namespace edgeinfer::agent {

Result<Normalizer> Normalizer::Create(const ModelInfo& info, const Dims& input_dims) {
  Normalizer n;
  if (info.norm_mean.empty() && info.norm_std.empty()) return n;
  if (info.norm_mean.size() != info.norm_std.size())
    return Status::InvalidArgument("model normalization: " + std::to_string(info.norm_mean.size()) +
                                   " means but " + std::to_string(info.norm_std.size()) + " stds");
  const Shape shape = Resolve(input_dims, 1);  // one sample; the batch axis is 1
  int axis = info.norm_axis < 0 ? info.norm_axis + shape.rank : info.norm_axis;
  if (axis < 0 || axis >= shape.rank)
    return Status::InvalidArgument("model normalization: axis " + std::to_string(info.norm_axis) +
                                   " outside the input " + DimsToString(input_dims));
  const size_t len = info.norm_mean.size();
  if (len != 1 && static_cast<int64_t>(len) != shape[axis])
    return Status::InvalidArgument("model normalization: " + std::to_string(len) +
                                   " channels, but axis " + std::to_string(axis) + " of " +
                                   DimsToString(input_dims) + " has " +
                                   std::to_string(shape[axis]));
  for (float s : info.norm_std)
    if (!std::isfinite(s) || s == 0.f)
      return Status::InvalidArgument("model normalization: std " + std::to_string(s) +
                                     " is zero or not finite");
  n.outer_ = shape.Product(0, axis);
  n.channels_ = shape[axis];
  n.inner_ = shape.Product(axis + 1, shape.rank);
  n.mean_.assign(n.channels_, 0.f);
  n.std_.assign(n.channels_, 1.f);
  for (int64_t c = 0; c < n.channels_; ++c) {
    n.mean_[c] = info.norm_mean[len == 1 ? 0 : c];
    n.std_[c] = info.norm_std[len == 1 ? 0 : c];
  }
  return n;
}

void Normalizer::Apply(std::span<float> sample) const {
  if (mean_.empty()) return;
  float* x = sample.data();
  for (int64_t o = 0; o < outer_; ++o) {
    for (int64_t c = 0; c < channels_; ++c) {
      // Division, not a multiply by 1/std: bit-for-bit the formula the model was trained with.
      const float m = mean_[c], s = std_[c];
      for (int64_t i = 0; i < inner_; ++i) x[i] = (x[i] - m) / s;
      x += inner_;
    }
  }
}

}  // namespace edgeinfer::agent
