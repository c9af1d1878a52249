// ModelInfo from an ONNX model's metadata_props and header fields.
//
// metadata_props keys read: model_name, model_version, labels (a JSON array of strings) and
// preprocessing (JSON {"mean": [..], "std": [..], "axis": 1}). Other keys are ignored.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "inference/graph.h"
#include "onnx/onnx_pb.h"

namespace edgeinfer {

// `source` is the serialized model (hashed into source_hash); `fallback_name` names the model
// when neither model_name nor a graph name does (exporter defaults such as torch's
// "torch_jit" and "main_graph" do not count). Malformed labels or preprocessing JSON is
// InvalidArgument naming the key.
Result<ModelInfo> ReadOnnxModelInfo(const onnx::ModelProto& m, std::string_view source,
                                    const std::string& fallback_name);

// FNV-1a 64 of `bytes` as 16 lowercase hex digits: cheap, and enough to tell sources apart.
std::string Fnv1a64Hex(std::string_view bytes);

}  // namespace edgeinfer
