// Internal to inference/ops: the infer and create functions of the basic ops (element-wise,
// softmax and layout; docs/ops.md), which basic_ops.cc puts in the op table, and the
// validation helpers they share.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "common/status.h"
#include "inference/graph.h"
#include "inference/op.h"

namespace edgeinfer::basic_ops {

// InvalidArgument "node 'n' (Op): <what>".
Status Invalid(const Node& node, const std::string& what);

// Checks that the node has [min_inputs, max_inputs] inputs, all present, float32, of rank <=
// kMaxRank with an element count that fits int64, and exactly one output. Fills `inputs`.
Status CheckFloatInputs(const Node& node, const Graph& graph, const std::vector<TensorDesc>& outs,
                        size_t min_inputs, size_t max_inputs,
                        std::vector<const TensorDesc*>* inputs);

// Sets the single output's dtype (float32) and dims.
void SetOutput(std::vector<TensorDesc>* outs, Dims dims);

// Maps axis in [-rank, rank) to [0, rank); an error naming the attribute otherwise.
Status NormalizeAxis(const Node& node, int64_t axis, size_t rank, int64_t* out);

// Checks the fused activation attributes (activation, activation_alpha/min/max).
Status CheckActivationAttrs(const Node& node);

template <class T>
const char* AttrTypeName() {
  if constexpr (std::is_same_v<T, int64_t>) return "an int";
  if constexpr (std::is_same_v<T, float>) return "a float";
  if constexpr (std::is_same_v<T, std::string>) return "a string";
  if constexpr (std::is_same_v<T, std::vector<int64_t>>) return "a list of ints";
  if constexpr (std::is_same_v<T, std::vector<float>>) return "a list of floats";
}

// Reads attribute `name` as a T: `def` when absent (or an error when `required`), an error when
// it has another type. Attrs' own getters silently return the default on a type mismatch,
// which would let a malformed file run with values it did not ask for.
template <class T>
Status GetAttr(const Node& node, const std::string& name, T def, T* out, bool required = false) {
  const auto& values = node.attrs.values();
  auto it = values.find(name);
  if (it == values.end()) {
    if (required) return Invalid(node, "missing required attribute '" + name + "'");
    *out = std::move(def);
    return Status::Ok();
  }
  const T* v = std::get_if<T>(&it->second);
  if (!v) return Invalid(node, "attribute '" + name + "' must be " + AttrTypeName<T>());
  *out = *v;
  return Status::Ok();
}

using KernelResult = Result<std::unique_ptr<Kernel>>;

// elementwise.cc
Status InferBinary(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateAdd(const Node& node, const Graph& graph);
KernelResult CreateSub(const Node& node, const Graph& graph);
KernelResult CreateMul(const Node& node, const Graph& graph);
KernelResult CreateDiv(const Node& node, const Graph& graph);
KernelResult CreatePow(const Node& node, const Graph& graph);
KernelResult CreateMax(const Node& node, const Graph& graph);
KernelResult CreateMin(const Node& node, const Graph& graph);
Status InferPRelu(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreatePRelu(const Node& node, const Graph& graph);
Status InferUnary(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
Status InferLeakyRelu(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
Status InferClip(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateRelu(const Node& node, const Graph& graph);
KernelResult CreateLeakyRelu(const Node& node, const Graph& graph);
KernelResult CreateSigmoid(const Node& node, const Graph& graph);
KernelResult CreateTanh(const Node& node, const Graph& graph);
KernelResult CreateClip(const Node& node, const Graph& graph);

// softmax.cc
Status InferSoftmax(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateSoftmax(const Node& node, const Graph& graph);
KernelResult CreateLogSoftmax(const Node& node, const Graph& graph);

// layout.cc
Status InferReshape(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateReshape(const Node& node, const Graph& graph);
Status InferTranspose(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateTranspose(const Node& node, const Graph& graph);
Status InferConcat(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateConcat(const Node& node, const Graph& graph);
Status InferCopy(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateCopy(const Node& node, const Graph& graph);

// conv_transpose.cc
Status InferConvTranspose(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateConvTranspose(const Node& node, const Graph& graph);

// where_expand.cc
Status InferWhere(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateWhere(const Node& node, const Graph& graph);
Status InferExpand(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateExpand(const Node& node, const Graph& graph);

}  // namespace edgeinfer::basic_ops
