#include "agent/postprocess.h"

#include <algorithm>
#include <cmath>

namespace edgeinfer::agent {

Postprocessor::Postprocessor(const PostprocessConfig& config,
                             const std::vector<std::string>* labels)
    : config_(config),
      labels_(labels),
      classifies_(config.softmax || config.top_k > 0 || (labels && !labels->empty())) {}

std::string_view Postprocessor::Label(int index) const {
  if (!labels_ || index < 0 || static_cast<size_t>(index) >= labels_->size()) return {};
  return (*labels_)[index];
}

void Postprocessor::Run(std::span<const float> output, PostResult* out) const {
  out->has_class = false;
  out->best = -1;
  out->top.clear();
  if (!classifies_ || output.empty()) return;
  const std::span<const float> scores = Scores(output, out);
  int best = 0;
  for (size_t i = 1; i < scores.size(); ++i)
    if (scores[i] > scores[best] || std::isnan(scores[best])) best = static_cast<int>(i);
  out->has_class = true;
  out->best = best;
  out->best_score = scores[best];
  TopK(scores, out);
}

// Numerically stable softmax into the reused scratch; the raw output when softmax is off.
std::span<const float> Postprocessor::Scores(std::span<const float> output, PostResult* out) const {
  if (!config_.softmax) return output;
  out->probs.resize(output.size());
  const float max = *std::max_element(output.begin(), output.end());
  float sum = 0.f;
  for (size_t i = 0; i < output.size(); ++i) sum += out->probs[i] = std::exp(output[i] - max);
  for (float& p : out->probs) p /= sum;
  return out->probs;
}

// Insertion into a list of at most k entries: O(n*k), and k is small (a handful of classes).
void Postprocessor::TopK(std::span<const float> scores, PostResult* out) const {
  const size_t k = static_cast<size_t>(std::max(config_.top_k, 0));
  if (k == 0) return;
  auto& top = out->top;
  for (size_t i = 0; i < scores.size(); ++i) {
    const float s = scores[i];
    if (!(s >= config_.threshold)) continue;  // also drops NaN
    if (top.size() == k && s <= top.back().score) continue;
    if (top.size() == k) top.pop_back();
    auto at = std::find_if(top.begin(), top.end(), [s](const TopEntry& e) { return s > e.score; });
    top.insert(at, TopEntry{static_cast<int>(i), s});
  }
}

}  // namespace edgeinfer::agent
