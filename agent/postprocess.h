// Post-processing of one output vector (the model's output 0 for one input): optional
// softmax, the best class, and the top-k classes above a threshold, with labels.
//
// Scores: with softmax on, `score` and top-k scores are probabilities; otherwise they are the
// raw outputs. The result message's `outputs` stay raw either way.
//
// Thread safety: a Postprocessor is immutable; each thread passes its own PostResult, whose
// buffers are reused (no allocation once they have grown to the output size).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "agent/config.h"

namespace edgeinfer::agent {

struct TopEntry {
  int index;
  float score;
};

struct PostResult {
  bool has_class = false;  // false when there is nothing to classify (empty output)
  int best = -1;
  float best_score = 0.f;
  std::vector<TopEntry> top;  // best first; at most top_k entries, none below the threshold
  std::vector<float> probs;   // softmax scratch
};

class Postprocessor {
 public:
  // `labels` (may be empty) name the classes; they must outlive the Postprocessor.
  Postprocessor(const PostprocessConfig& config, const std::vector<std::string>* labels);

  // Fills `out` from one output vector. Non-finite scores never win (NaN compares false).
  void Run(std::span<const float> output, PostResult* out) const;

  // The label of class `index`, or empty when the model has none for it.
  std::string_view Label(int index) const;
  // True when results carry class/score (and top_k): post-processing is configured or the
  // model names its classes.
  bool classifies() const { return classifies_; }

 private:
  std::span<const float> Scores(std::span<const float> output, PostResult* out) const;
  void TopK(std::span<const float> scores, PostResult* out) const;

  PostprocessConfig config_;
  const std::vector<std::string>* labels_;
  bool classifies_;
};

}  // namespace edgeinfer::agent
