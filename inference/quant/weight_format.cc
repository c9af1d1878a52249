#include "inference/quant/weight_format.h"

#include <string>

namespace edgeinfer::quant {

namespace {

// The weight dtypes of the quantized kernels: their format and precision name.
struct WeightDTypeInfo {
  DType dtype;
  WeightFormat format;
  const char* precision;
};
constexpr WeightDTypeInfo kWeightDTypes[] = {
    {DType::kQInt8Channel, WeightFormat::kInt8, "int8"},
    {DType::kQInt4Block, WeightFormat::kQ4, "int4"},
    {DType::kFloat16, WeightFormat::kFp16, "fp16"},
};

// Far beyond any real layer and small enough that every blob size below fits easily in uint64.
constexpr int64_t kMaxWeightDim = int64_t{1} << 31;

}  // namespace

bool WeightFormatOf(DType t, WeightFormat* out) {
  for (const auto& e : kWeightDTypes) {
    if (e.dtype == t) {
      *out = e.format;
      return true;
    }
  }
  return false;
}

DType WeightDType(WeightFormat f) {
  for (const auto& e : kWeightDTypes)
    if (e.format == f) return e.dtype;
  return DType::kFloat32;
}

const char* WeightPrecisionName(DType t) {
  if (t == DType::kFloat32) return "fp32";  // the BLAS kernels
  for (const auto& e : kWeightDTypes)
    if (e.dtype == t) return e.precision;
  return nullptr;
}

Status WeightMatrix(const Dims& dims, int64_t* n, int64_t* k) {
  if (dims.size() < 2)
    return Status::InvalidArgument("a weight needs rank >= 2 ([N, K...]), got " +
                                   DimsToString(dims));
  int64_t cols = 1;
  for (int64_t d : dims) {
    if (d <= 0 || d >= kMaxWeightDim)
      return Status::InvalidArgument("weight dims must be literal, positive and below 2^31, got " +
                                     DimsToString(dims));
  }
  for (size_t i = 1; i < dims.size(); ++i) {
    cols *= dims[i];
    if (cols >= kMaxWeightDim)
      return Status::InvalidArgument("weight " + DimsToString(dims) + " has K >= 2^31");
  }
  *n = dims[0];
  *k = cols;
  return Status::Ok();
}

Result<uint64_t> WeightBlobBytes(DType t, const Dims& dims) {
  WeightFormat f;
  if (!IsPackedWeight(t) || !WeightFormatOf(t, &f))
    return Status::InvalidArgument(std::string(DTypeName(t)) + " is not a packed weight dtype");
  int64_t n = 0, k = 0;
  EI_RETURN_IF_ERROR(WeightMatrix(dims, &n, &k));
  if (k > kMaxQuantK)
    return Status::InvalidArgument(std::string(DTypeName(t)) + " weight " + DimsToString(dims) +
                                   " has K = " + std::to_string(k) +
                                   ", above the quantized kernels' limit of " +
                                   std::to_string(kMaxQuantK));
  // N < 2^31 and K <= 2^17: at most about 2^49 bytes, no overflow.
  return static_cast<uint64_t>(WeightBytes(f, n, k));
}

}  // namespace edgeinfer::quant
