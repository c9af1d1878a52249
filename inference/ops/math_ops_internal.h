// Internal to inference/ops: the infer and create functions of the math ops (reductions,
// unary math and activations, LayerNormalization, Pad; docs/ops.md), which math_ops.cc puts in
// the op table. They share basic_ops' validation helpers.
#pragma once

#include <vector>

#include "inference/ops/basic_ops_internal.h"

namespace edgeinfer::math_ops {

using basic_ops::KernelResult;

// reduce.cc: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
// ReduceSumSquare, ReduceLogSum, ReduceLogSumExp.
Status InferReduce(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateReduce(const Node& node, const Graph& graph);

// unary_math.cc: element-wise functions of one float (Erf, Exp, ..., HardSwish, Gelu).
Status InferUnaryMath(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateUnaryMath(const Node& node, const Graph& graph);

// layer_norm.cc
Status InferLayerNorm(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateLayerNorm(const Node& node, const Graph& graph);

// pad.cc
Status InferPad(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreatePad(const Node& node, const Graph& graph);

// resize.cc
Status InferResize(const Node& node, const Graph& graph, std::vector<TensorDesc>* outs);
KernelResult CreateResize(const Node& node, const Graph& graph);

}  // namespace edgeinfer::math_ops
