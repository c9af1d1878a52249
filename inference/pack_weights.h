// Convert-time weight packing for the FP32 path: Gemm layers on constant weights become Dense
// nodes whose weights are stored packed (inference/kernels/sgemm_packed.h), so the .eim file
// holds the layout the micro-kernel reads and loading stays zero-copy.
#pragma once

#include "common/status.h"
#include "inference/graph.h"

namespace edgeinfer {

// Rewrites every eligible Gemm into Dense:
//   transA = 0, alpha = 1, beta = 1 (any beta when there is no C), transB = 1 with B a constant
//   float32 [N, K], C absent or a constant float32 [N] or [1, N], A of rank >= 2, and no
//   attributes other than those and the fused activation ones.
// The Dense node keeps the Gemm's name, A, output and activation attributes, gets `n` = N, a new
// constant "<B>.packed" [ceil(N/16), K, 16] and the bias as a [N] constant. Other Gemms are left
// alone. Constants that no node reads any more (the replaced B and [1, N] C) are removed and the
// remaining tensors renumbered (nodes, graph inputs and outputs); their bytes stay in
// Graph::owned until the graph dies. Ends with ValidateGraph(g, false); on an error the graph may
// be partly rewritten. Returns the first validation error (the graph is validated first too).
Status PackDenseWeights(Graph* g);

}  // namespace edgeinfer
