// Element types, symbolic dimensions and concrete shapes.
//
// A model's tensors have *symbolic* dims (Dims): a value >= 0 is a literal size, a value < 0
// means (-value) x batch, so -1 is "the batch" and -16 is "16 x batch" (a reshape that folds the
// batch into another axis). A session turns them into *concrete* shapes (Shape) for the batch it
// runs; Shape is a fixed-size value so kernels and the executor never allocate for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgeinfer {

enum class DType : uint8_t {
  kFloat32 = 1,
  kFloat16 = 2,
  kInt8 = 3,
  kUInt8 = 4,
  kInt32 = 5,
  kInt64 = 6,
  // Quantized weight blobs, in the layout the kernels read (inference/quant/quant_types.h). Their
  // dims are the logical float weight's ([N, K...]: output channels first); the blob's bytes come
  // from quant::WeightBlobBytes (inference/quant/weight_format.h), not from an element size.
  // Constants only: never an activation, input or output.
  kQInt8Channel = 7,  // "qint8_channel": int8 per output channel, symmetric, + scales + row sums
  kQInt4Block = 8,    // "qint4_block": 4-bit blocks of 32 along K with fp16 scales, rows by 8
};

// True for the quantized weight blob dtypes (kQInt8Channel, kQInt4Block).
bool IsPackedWeight(DType t);
// Bytes per element; 0 for the packed weight dtypes, which have no per-element size.
size_t DTypeSize(DType t);
const char* DTypeName(DType t);
// Parses "float32", "float16", "int8", ... Returns false for an unknown name.
bool ParseDType(std::string_view name, DType* out);

using Dims = std::vector<int64_t>;
constexpr int64_t kBatchDim = -1;

inline int64_t ResolveDim(int64_t d, int64_t batch) { return d < 0 ? -d * batch : d; }
bool HasBatch(const Dims& dims);
std::string DimsToString(const Dims& dims);  // "[B, 3, 256]", "[16B, 16]"

constexpr int kMaxRank = 8;

struct Shape {
  int rank = 0;
  int64_t d[kMaxRank] = {};

  int64_t operator[](int i) const { return d[i]; }
  int64_t& operator[](int i) { return d[i]; }
  int64_t NumElements() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= d[i];
    return n;
  }
  // Product of dims [from, to).
  int64_t Product(int from, int to) const {
    int64_t n = 1;
    for (int i = from; i < to; ++i) n *= d[i];
    return n;
  }
  bool operator==(const Shape& o) const {
    if (rank != o.rank) return false;
    for (int i = 0; i < rank; ++i)
      if (d[i] != o.d[i]) return false;
    return true;
  }
  std::string ToString() const;
};

// Concrete shape of `dims` at `batch`. Requires dims.size() <= kMaxRank (validated at load).
Shape Resolve(const Dims& dims, int64_t batch);

// A view of tensor memory handed to kernels. Kernels read `in` views and write `out` views.
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kFloat32;
  Shape shape;

  float* f32() const { return static_cast<float*>(data); }
  size_t bytes() const { return static_cast<size_t>(shape.NumElements()) * DTypeSize(dtype); }
};

}  // namespace edgeinfer
