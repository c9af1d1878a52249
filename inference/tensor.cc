#include "inference/tensor.h"

namespace edgeinfer {

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kFloat32: return 4;
    case DType::kFloat16: return 2;
    case DType::kInt8: return 1;
    case DType::kUInt8: return 1;
    case DType::kInt32: return 4;
    case DType::kInt64: return 8;
    case DType::kQInt8Channel: return 0;
    case DType::kQInt4Block: return 0;
  }
  return 0;
}

bool IsPackedWeight(DType t) { return t == DType::kQInt8Channel || t == DType::kQInt4Block; }

namespace {
struct DTypeNameEntry {
  DType type;
  const char* name;
};
constexpr DTypeNameEntry kDTypeNames[] = {
    {DType::kFloat32, "float32"}, {DType::kFloat16, "float16"}, {DType::kInt8, "int8"},
    {DType::kUInt8, "uint8"},     {DType::kInt32, "int32"},     {DType::kInt64, "int64"},
    {DType::kQInt8Channel, "qint8_channel"}, {DType::kQInt4Block, "qint4_block"},
};
}  // namespace

const char* DTypeName(DType t) {
  for (const auto& e : kDTypeNames)
    if (e.type == t) return e.name;
  return "unknown";
}

bool ParseDType(std::string_view name, DType* out) {
  for (const auto& e : kDTypeNames) {
    if (name == e.name) {
      *out = e.type;
      return true;
    }
  }
  return false;
}

bool HasBatch(const Dims& dims) {
  for (int64_t d : dims)
    if (d < 0) return true;
  return false;
}

std::string DimsToString(const Dims& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    if (dims[i] == kBatchDim) {
      s += "B";
    } else if (dims[i] < 0) {
      s += std::to_string(-dims[i]) + "B";
    } else {
      s += std::to_string(dims[i]);
    }
  }
  return s + "]";
}

std::string Shape::ToString() const {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) {
    if (i) s += ", ";
    s += std::to_string(d[i]);
  }
  return s + "]";
}

Shape Resolve(const Dims& dims, int64_t batch) {
  Shape s;
  s.rank = static_cast<int>(dims.size());
  for (int i = 0; i < s.rank; ++i) s.d[i] = ResolveDim(dims[i], batch);
  return s;
}

}  // namespace edgeinfer
