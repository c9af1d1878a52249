// Reading ONNX node attributes with defaults. The ONNX checker has already verified attribute
// types against the op schema, so a getter reads its own field and returns the default only
// when the attribute is absent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "onnx/onnx_pb.h"

namespace edgeinfer {

const onnx::AttributeProto* FindOnnxAttr(const onnx::NodeProto& n, std::string_view name);
int64_t OnnxAttrInt(const onnx::NodeProto& n, std::string_view name, int64_t def);
float OnnxAttrFloat(const onnx::NodeProto& n, std::string_view name, float def);
std::string OnnxAttrString(const onnx::NodeProto& n, std::string_view name, const std::string& def);
std::vector<int64_t> OnnxAttrInts(const onnx::NodeProto& n, std::string_view name,
                                  const std::vector<int64_t>& def);
std::vector<float> OnnxAttrFloats(const onnx::NodeProto& n, std::string_view name,
                                  const std::vector<float>& def);

}  // namespace edgeinfer
