#include "inference/graph.h"

#include <cstring>

namespace edgeinfer {

namespace {
template <class T>
const T* Find(const std::map<std::string, AttrValue>& m, const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? nullptr : std::get_if<T>(&it->second);
}
}  // namespace

int64_t Attrs::GetInt(const std::string& name, int64_t def) const {
  const int64_t* v = Find<int64_t>(values_, name);
  return v ? *v : def;
}

float Attrs::GetFloat(const std::string& name, float def) const {
  const float* v = Find<float>(values_, name);
  return v ? *v : def;
}

std::string Attrs::GetString(const std::string& name, const std::string& def) const {
  const std::string* v = Find<std::string>(values_, name);
  return v ? *v : def;
}

std::vector<int64_t> Attrs::GetInts(const std::string& name,
                                    const std::vector<int64_t>& def) const {
  const auto* v = Find<std::vector<int64_t>>(values_, name);
  return v ? *v : def;
}

std::vector<float> Attrs::GetFloats(const std::string& name, const std::vector<float>& def) const {
  const auto* v = Find<std::vector<float>>(values_, name);
  return v ? *v : def;
}

int Graph::AddConstant(const std::string& name, DType dtype, Dims dims, const void* data,
                       size_t bytes) {
  // 64-byte aligned storage so kernels may use aligned loads on importer-made weights too.
  void* mem = ::operator new(bytes ? bytes : 1, std::align_val_t(64));
  if (bytes) std::memcpy(mem, data, bytes);
  owned.emplace_back(mem, [](const void* p) {
    ::operator delete(const_cast<void*>(p), std::align_val_t(64));
  });
  TensorDesc t;
  t.name = name;
  t.dtype = dtype;
  t.dims = std::move(dims);
  t.data = mem;
  t.bytes = bytes;
  return AddTensor(std::move(t));
}

int Graph::FindTensor(const std::string& name) const {
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].name == name) return static_cast<int>(i);
  return -1;
}

size_t Graph::WeightBytes() const {
  size_t n = 0;
  for (const auto& t : tensors) n += t.bytes;
  return n;
}

}  // namespace edgeinfer
