#include "inference/onnx/onnx_attrs.h"

namespace edgeinfer {

const onnx::AttributeProto* FindOnnxAttr(const onnx::NodeProto& n, std::string_view name) {
  for (const onnx::AttributeProto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t OnnxAttrInt(const onnx::NodeProto& n, std::string_view name, int64_t def) {
  const onnx::AttributeProto* a = FindOnnxAttr(n, name);
  return a ? a->i() : def;
}

float OnnxAttrFloat(const onnx::NodeProto& n, std::string_view name, float def) {
  const onnx::AttributeProto* a = FindOnnxAttr(n, name);
  return a ? a->f() : def;
}

std::string OnnxAttrString(const onnx::NodeProto& n, std::string_view name,
                           const std::string& def) {
  const onnx::AttributeProto* a = FindOnnxAttr(n, name);
  return a ? a->s() : def;
}

std::vector<int64_t> OnnxAttrInts(const onnx::NodeProto& n, std::string_view name,
                                  const std::vector<int64_t>& def) {
  const onnx::AttributeProto* a = FindOnnxAttr(n, name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : def;
}

std::vector<float> OnnxAttrFloats(const onnx::NodeProto& n, std::string_view name,
                                  const std::vector<float>& def) {
  const onnx::AttributeProto* a = FindOnnxAttr(n, name);
  return a ? std::vector<float>(a->floats().begin(), a->floats().end()) : def;
}

}  // namespace edgeinfer
