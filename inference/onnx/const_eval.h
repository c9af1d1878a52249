// Evaluates a node whose inputs are all constant, once, at import: the op's own kernel runs
// (FindOp -> create -> Run with a scratch buffer) so folding can never disagree with run time.
#pragma once

#include "common/status.h"
#include "inference/graph.h"

namespace edgeinfer {

// Runs the op's infer and stores each output's dtype and dims on the graph's tensors.
// Returns the op's error (which names the node), or Unsupported if the op is unknown.
Status InferNodeOutputs(const Node& node, Graph* g);

// True when the node has at least one input and every present input is a constant.
bool AllInputsConstant(const Graph& g, const Node& node);

// Runs `node` (its outputs' dtype and literal dims already inferred) and turns each output
// tensor into a constant holding the result. The node itself is left to the caller to drop.
Status EvaluateConstantNode(const Node& node, Graph* g);

}  // namespace edgeinfer
