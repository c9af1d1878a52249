// Folding and fusion passes on the internal graph (docs/ops.md, "What the importer removes or
// folds"). They know nothing of ONNX, so any producer of a Graph can run them.
//
// Every pass keeps the graph's meaning and its topological order. A rewrite that removes an
// intermediate tensor only happens when that tensor has exactly one consumer and is not a graph
// output. Each returns an error only for an internal failure (a kernel or infer refusing a node
// the pass built), never because a pattern did not apply.
#pragma once

#include "common/status.h"
#include "inference/graph.h"

namespace edgeinfer {

// Evaluates every node whose inputs are all constant (through its kernel) and drops it.
Status FoldConstantNodes(Graph* g);
// MatMul(A, constant 2-D B) with rank(A) >= 2 -> Gemm(A, B^T) with transB = 1.
Status MatMulToGemm(Graph* g);
// Gemm with a constant B and transB = 0 -> B stored transposed ([N,K]) with transB = 1.
Status CanonicalizeGemmWeights(Graph* g);
// BatchNormalization after a Conv, or after a rank-2 Gemm with constant [N,K] weights,
// folded into the weights and bias.
Status FoldBatchNorm(Graph* g);
// Add (or Sub) of a constant per-output-channel vector after a Conv or a Gemm with constant
// weights, folded into its bias.
Status FoldBiasAdd(Graph* g);
// Ops exporters write out as several nodes, made one (fuse_decomposed.cc): exact GELU (Div/Mul
// by sqrt 2, Erf, Add 1, Mul x, Mul 0.5) -> Gelu; Mul(x, HardSigmoid(x; 1/6, 0.5)) ->
// HardSwish; ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div (then Mul, Add by constants) ->
// LayerNormalization; zero Pad before a Conv -> the Conv's pads.
Status FuseDecomposedOps(Graph* g);
// Relu/LeakyRelu/Sigmoid/Tanh/Clip/Gelu/HardSwish after
// Conv/Gemm/MatMul/Add/Sub/Mul/Div/BatchNormalization
// moved into the producer's `activation` attributes, if it has none yet (or only a Relu that
// the new one can absorb: Relu then Clip, as ReLU6 exports, is one Clip).
Status FuseActivations(Graph* g);
// Folds a chain of Add/Sub/Mul/Div by scalar constants (and a Reshape/Flatten after it) that
// feeds a Gemm with constant weights into that Gemm's weights and bias (fold_input_affine.cc).
Status FoldInputAffine(Graph* g);
// Reshape of a Reshape -> one Reshape; a Reshape back to its input's dims -> nothing.
Status CollapseReshapes(Graph* g);

// All of the above in order, then dead code removal and compaction.
Status OptimizeGraph(Graph* g);

}  // namespace edgeinfer
