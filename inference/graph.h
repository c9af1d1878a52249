// The model graph: edgeinfer's internal representation, shared by the ONNX importer, the .eim
// reader and writer, the optimizer passes and the session.
//
// Nodes use edgeinfer's internal op set (docs/ops.md), not raw ONNX: the importer lowers ONNX
// into it (folding constants, fusing bias, batch norm and activations). Nodes are stored in
// topological order. Tensors are referred to by index into Graph::tensors.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "inference/tensor.h"

namespace edgeinfer {

using AttrValue =
    std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>>;

// Node attributes by name. Getters return the default when the attribute is absent or has
// another type; validation (op infer functions) rejects wrong types with a message.
class Attrs {
 public:
  bool Has(const std::string& name) const { return values_.count(name) != 0; }
  int64_t GetInt(const std::string& name, int64_t def = 0) const;
  float GetFloat(const std::string& name, float def = 0.f) const;
  std::string GetString(const std::string& name, const std::string& def = "") const;
  std::vector<int64_t> GetInts(const std::string& name,
                               const std::vector<int64_t>& def = {}) const;
  std::vector<float> GetFloats(const std::string& name, const std::vector<float>& def = {}) const;

  void Set(const std::string& name, AttrValue v) { values_[name] = std::move(v); }
  void Erase(const std::string& name) { values_.erase(name); }
  const std::map<std::string, AttrValue>& values() const { return values_; }

 private:
  std::map<std::string, AttrValue> values_;
};

struct TensorDesc {
  std::string name;
  DType dtype = DType::kFloat32;
  Dims dims;  // symbolic (see tensor.h)
  // Constant tensors (weights) have data: a pointer into the mapped file or into
  // Graph::owned storage. Non-constant tensors have data == nullptr.
  const void* data = nullptr;
  size_t bytes = 0;

  bool is_constant() const { return data != nullptr; }
};

struct Node {
  std::string name;
  std::string op;            // internal op name, e.g. "Conv", "Gemm"
  std::vector<int> inputs;   // tensor indices; -1 marks an absent optional input
  std::vector<int> outputs;  // tensor indices
  Attrs attrs;
};

// Everything about a model that is not the graph: what it is and how to feed it.
struct ModelInfo {
  std::string name;
  std::string version;
  std::string producer;     // e.g. "pytorch 1.13.0 via edgeinfer-convert 0.1.0"
  std::string source_hash;  // hex digest of the source model file
  std::vector<std::string> labels;
  // Per-channel normalization the caller applies to raw values: (x - mean[c]) / std[c] along
  // `norm_axis` of the input (counting the batch axis). Empty means none.
  std::vector<float> norm_mean;
  std::vector<float> norm_std;
  int norm_axis = 1;
};

struct Graph {
  std::vector<TensorDesc> tensors;
  std::vector<Node> nodes;
  std::vector<int> inputs;
  std::vector<int> outputs;
  ModelInfo info;
  // Keeps constant data alive: buffers made by the importer, or the mapped file.
  std::vector<std::shared_ptr<const void>> owned;

  // Adds a tensor and returns its index.
  int AddTensor(TensorDesc t) {
    tensors.push_back(std::move(t));
    return static_cast<int>(tensors.size()) - 1;
  }
  // Adds a constant tensor that owns a copy of `data`; returns its index.
  int AddConstant(const std::string& name, DType dtype, Dims dims, const void* data,
                  size_t bytes);
  int FindTensor(const std::string& name) const;  // -1 when absent
  size_t WeightBytes() const;                     // sum of constant bytes
};

}  // namespace edgeinfer
