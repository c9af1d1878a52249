// Decoding ONNX TensorProto contents (initializers and Constant values) into plain vectors.
//
// Data may be in raw_data (little-endian, as every exporter writes it) or in the typed repeated
// fields. Tensors stored outside the model (external data) and segmented tensors are refused
// with a message naming the tensor. The element count must match the declared dims exactly, so
// a hostile file cannot make the importer allocate more than the file holds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "inference/tensor.h"
#include "onnx/onnx_pb.h"

namespace edgeinfer {

// "FLOAT", "INT64", ... or "type 42" for values ONNX does not define.
std::string OnnxTypeName(int32_t elem_type);

// Float element types the importer turns into float32 constants (FLOAT, DOUBLE, FLOAT16).
bool IsOnnxFloatType(int32_t elem_type);
// Integer and bool element types the importer keeps as known int64 shape values.
bool IsOnnxIntType(int32_t elem_type);

// The tensor's dims (all literal, each >= 0, element count fits int64).
Result<Dims> OnnxTensorDims(const onnx::TensorProto& t);

// Contents as float32 (FLOAT, DOUBLE and FLOAT16 tensors); other types are refused.
Result<std::vector<float>> OnnxTensorFloats(const onnx::TensorProto& t);
// Contents as int64 (the integer types and BOOL); other types are refused.
Result<std::vector<int64_t>> OnnxTensorInts(const onnx::TensorProto& t);

}  // namespace edgeinfer
