#include "inference/onnx/onnx_tensor.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace edgeinfer {

namespace {

using onnx::TensorProto;

struct TypeInfo {
  int32_t type;
  size_t bytes;
};
constexpr TypeInfo kTypes[] = {
    {TensorProto::FLOAT, 4},  {TensorProto::DOUBLE, 8}, {TensorProto::FLOAT16, 2},
    {TensorProto::INT64, 8},  {TensorProto::INT32, 4},  {TensorProto::INT16, 2},
    {TensorProto::INT8, 1},   {TensorProto::UINT8, 1},  {TensorProto::UINT16, 2},
    {TensorProto::UINT32, 4}, {TensorProto::UINT64, 8}, {TensorProto::BOOL, 1},
};

size_t ElemBytes(int32_t type) {
  for (const TypeInfo& t : kTypes)
    if (t.type == type) return t.bytes;
  return 0;
}

std::string Named(const TensorProto& t) { return "tensor '" + t.name() + "'"; }

float HalfToFloat(uint16_t h) {
  int exp = (h >> 10) & 0x1f;
  int mant = h & 0x3ff;
  float v = exp == 0    ? std::ldexp(static_cast<float>(mant), -24)
            : exp == 31 ? (mant ? std::numeric_limits<float>::quiet_NaN()
                                : std::numeric_limits<float>::infinity())
                        : std::ldexp(static_cast<float>(mant | 0x400), exp - 25);
  return (h & 0x8000) ? -v : v;
}

// Reads raw little-endian element i of `type` as T (the importer targets little-endian hosts).
template <class T>
T RawElement(const std::string& raw, int32_t type, size_t i) {
  const char* p = raw.data() + i * ElemBytes(type);
  auto load = [p](auto v) {
    std::memcpy(&v, p, sizeof(v));
    return v;
  };
  switch (type) {
    case TensorProto::FLOAT:
      return static_cast<T>(load(float{}));
    case TensorProto::DOUBLE:
      return static_cast<T>(load(double{}));
    case TensorProto::FLOAT16:
      return static_cast<T>(HalfToFloat(load(uint16_t{})));
    case TensorProto::INT64:
      return static_cast<T>(load(int64_t{}));
    case TensorProto::INT32:
      return static_cast<T>(load(int32_t{}));
    case TensorProto::INT16:
      return static_cast<T>(load(int16_t{}));
    case TensorProto::INT8:
      return static_cast<T>(load(int8_t{}));
    case TensorProto::UINT16:
      return static_cast<T>(load(uint16_t{}));
    case TensorProto::UINT32:
      return static_cast<T>(load(uint32_t{}));
    case TensorProto::UINT64:
      return static_cast<T>(load(uint64_t{}));
    default:
      return static_cast<T>(load(uint8_t{}));  // UINT8, BOOL
  }
}

// Element i from the typed repeated field ONNX uses for `type`.
template <class T>
T TypedElement(const TensorProto& t, size_t i) {
  switch (t.data_type()) {
    case TensorProto::FLOAT:
      return static_cast<T>(t.float_data(i));
    case TensorProto::DOUBLE:
      return static_cast<T>(t.double_data(i));
    case TensorProto::FLOAT16:
      return static_cast<T>(HalfToFloat(static_cast<uint16_t>(t.int32_data(i))));
    case TensorProto::INT64:
      return static_cast<T>(t.int64_data(i));
    case TensorProto::UINT32:
    case TensorProto::UINT64:
      return static_cast<T>(t.uint64_data(i));
    default:
      return static_cast<T>(t.int32_data(i));
  }
}

size_t TypedCount(const TensorProto& t) {
  switch (t.data_type()) {
    case TensorProto::FLOAT:
      return t.float_data_size();
    case TensorProto::DOUBLE:
      return t.double_data_size();
    case TensorProto::INT64:
      return t.int64_data_size();
    case TensorProto::UINT32:
    case TensorProto::UINT64:
      return t.uint64_data_size();
    default:
      return t.int32_data_size();
  }
}

template <class T>
Result<std::vector<T>> Decode(const TensorProto& t) {
  if (t.data_location() == TensorProto::EXTERNAL) {
    std::string where;
    for (const auto& kv : t.external_data())
      if (kv.key() == "location") where = " ('" + kv.value() + "')";
    return Status::Unsupported(Named(t) + " keeps its data in an external file" + where +
                               "; save the model with all tensors inside it");
  }
  if (t.has_segment()) return Status::Unsupported(Named(t) + " is segmented");
  EI_ASSIGN_OR_RETURN(Dims dims, OnnxTensorDims(t));
  size_t count = 1;
  for (int64_t d : dims) count *= static_cast<size_t>(d);
  const bool raw = t.has_raw_data();
  const size_t have = raw ? t.raw_data().size() / ElemBytes(t.data_type()) : TypedCount(t);
  if (have != count || (raw && t.raw_data().size() % ElemBytes(t.data_type()) != 0))
    return Status::InvalidArgument(Named(t) + " holds " + std::to_string(have) +
                                   " elements but its dims " + DimsToString(dims) + " need " +
                                   std::to_string(count));
  std::vector<T> out(count);
  for (size_t i = 0; i < count; ++i)
    out[i] = raw ? RawElement<T>(t.raw_data(), t.data_type(), i) : TypedElement<T>(t, i);
  return out;
}

}  // namespace

std::string OnnxTypeName(int32_t elem_type) {
  if (!TensorProto::DataType_IsValid(elem_type)) return "type " + std::to_string(elem_type);
  return TensorProto::DataType_Name(static_cast<TensorProto::DataType>(elem_type));
}

bool IsOnnxFloatType(int32_t t) {
  return t == TensorProto::FLOAT || t == TensorProto::DOUBLE || t == TensorProto::FLOAT16;
}

bool IsOnnxIntType(int32_t t) { return ElemBytes(t) != 0 && !IsOnnxFloatType(t); }

Result<Dims> OnnxTensorDims(const TensorProto& t) {
  Dims dims(t.dims().begin(), t.dims().end());
  int64_t count = 1;
  for (int64_t d : dims) {
    if (d < 0 || (d != 0 && count > std::numeric_limits<int64_t>::max() / d))
      return Status::InvalidArgument(Named(t) + " has an invalid dim " + std::to_string(d));
    count *= d;
  }
  return dims;
}

Result<std::vector<float>> OnnxTensorFloats(const TensorProto& t) {
  if (!IsOnnxFloatType(t.data_type()))
    return Status::Unsupported(Named(t) + " has type " + OnnxTypeName(t.data_type()) +
                               " where a float tensor is needed");
  return Decode<float>(t);
}

Result<std::vector<int64_t>> OnnxTensorInts(const TensorProto& t) {
  if (!IsOnnxIntType(t.data_type()))
    return Status::Unsupported(Named(t) + " has type " + OnnxTypeName(t.data_type()) +
                               " where an integer tensor is needed");
  return Decode<int64_t>(t);
}

}  // namespace edgeinfer
