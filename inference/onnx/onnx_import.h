// Imports an ONNX model into edgeinfer's graph (docs/ops.md); what is supported and refused
// is listed in inference/onnx/README.md.
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

// Reads, checks and lowers an ONNX file: opsets 11 to 17 of the default domain, float32
// inputs and outputs, a dynamic dim 0 of an input becomes the batch (any other dynamic dim is
// refused). Errors: NotFound/IOError for the file; InvalidArgument for bytes that are not a
// valid model (ONNX's checker message included); Unsupported for an op, attribute value,
// opset or type edgeinfer does not handle, naming the node ("node 'conv1' (Conv): ...") or
// the tensor. Never throws. The returned graph owns its constants, carries ModelInfo from
// metadata_props and has passed ValidateGraph. Keeps no state of its own between calls.
Result<Graph> ImportOnnxFile(const std::string& path, const OnnxImportOptions& options = {});
// The same for a serialized ModelProto in memory.
Result<Graph> ImportOnnxBytes(const std::string& bytes, const OnnxImportOptions& options = {});

}  // namespace edgeinfer
