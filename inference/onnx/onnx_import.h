// Imports an ONNX model into edgeinfer's graph (docs/ops.md).
#pragma once

#include <string>

#include "common/status.h"
#include "inference/graph.h"

namespace edgeinfer {

struct OnnxImportOptions {
  bool run_checker = true;  // ONNX's own checker and shape inference first
  // Fold batch norm and bias into weights, fuse activations, MatMul -> Gemm (graph_passes.h).
  // Off only to compare against the plain lowering; constants are folded either way.
  bool optimize = true;
};

// Reads, checks and lowers an ONNX file (opsets 11 to 17 of the default domain, float32 inputs
// and outputs, a dynamic dim 0 becomes the batch). An unsupported op or attribute fails naming the
// node and the op. The returned graph owns its constants and has been validated by every op's
// infer.
Result<Graph> ImportOnnxFile(const std::string& path, const OnnxImportOptions& options = {});
// The same for a serialized ModelProto in memory.
Result<Graph> ImportOnnxBytes(const std::string& bytes, const OnnxImportOptions& options = {});

}  // namespace edgeinfer
