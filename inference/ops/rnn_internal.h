// Internal to inference/ops: the recurrent ops LSTM, GRU and RNN (rnn.cc), the vectorizable
// sigmoid and tanh rows their gate math runs on (exposed for the tests), and Slice (slice.cc),
// which exported recurrent models need to take the last step.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "inference/graph.h"
#include "inference/op.h"

namespace edgeinfer::rnn {

Status InferRecurrent(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
Result<std::unique_ptr<Kernel>> CreateRecurrent(const Node& node, const Graph& graph);

Status InferSlice(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
Result<std::unique_ptr<Kernel>> CreateSlice(const Node& node, const Graph& graph);

// In place over n floats, branch-free so that the loops vectorize (AVX2 clone on x86-64).
// Absolute error below 1e-6 against the exact functions. For large |x| tanh saturates to -1 / 1
// and sigmoid to 1 / a value below 1e-37 (the exp stops at e^-87); NaN propagates.
void SigmoidRow(float* x, int64_t n);
void TanhRow(float* x, int64_t n);

}  // namespace edgeinfer::rnn
