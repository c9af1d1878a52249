// Small editing helpers on the internal Graph shared by the importer and the graph passes:
// who produces and who consumes a tensor, constant data, dead-code removal and compaction.
// No ONNX types here: the passes built on these must stay reusable outside the importer.
#pragma once

#include <string>
#include <vector>

#include "inference/graph.h"

namespace edgeinfer {

// Per tensor: how many node inputs read it plus how many times it is a graph output.
std::vector<int> ConsumerCounts(const Graph& g);
// Per tensor: the index of the node that writes it, or -1 (inputs, constants, dead tensors).
std::vector<int> Producers(const Graph& g);
bool IsGraphOutput(const Graph& g, int tensor);
bool IsGraphInput(const Graph& g, int tensor);

// A float32 constant owning a copy of `values`; returns its index.
int AddFloatConstant(Graph* g, const std::string& name, const Dims& dims,
                     const std::vector<float>& values);
// Gives existing tensor `t` (literal dims already set) a copy of `data` and makes it constant.
void SetConstantData(Graph* g, int t, const void* data, size_t bytes);
// A copy of a float32 constant's values (empty if `t` is not a float constant).
std::vector<float> ConstantFloats(const Graph& g, int t);
// True when tensor index `t` is present (>= 0) and constant float32.
bool IsFloatConstant(const Graph& g, int t);

// The node that produces `tensor` when that tensor may be rewritten away: it has a producer,
// exactly one consumer and is not a graph output. -1 otherwise.
int FusableProducer(const Graph& g, const std::vector<int>& producers,
                    const std::vector<int>& consumer_counts, int tensor);
// Erases the nodes marked in `removed` (same length as g->nodes), keeping the order.
void EraseNodes(Graph* g, const std::vector<bool>& removed);
// `base`, or `base` with a numeric suffix, whichever no tensor is named yet.
std::string UniqueTensorName(const Graph& g, const std::string& base);

// Removes nodes whose outputs nobody reads (repeatedly, so chains go too), then every tensor
// that no node, input or output refers to, renumbering the rest compactly in their order.
// Constant data that is no longer referenced stays in Graph::owned until the graph dies.
void RemoveDeadCode(Graph* g);

}  // namespace edgeinfer
