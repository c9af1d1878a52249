#include "inference/graph_json.h"

#include <cfloat>
#include <cmath>
#include <limits>
#include <string>

#include "inference/quant/weight_format.h"

namespace edgeinfer {

using json = nlohmann::json;

namespace {

// ---- Writing ----

json FloatToJson(float f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  return static_cast<double>(f);  // float -> double is exact; dump() round-trips doubles
}

json FloatsToJson(const std::vector<float>& v) {
  json a = json::array();
  for (float f : v) a.push_back(FloatToJson(f));
  return a;
}

json AttrToJson(const AttrValue& v) {
  struct Visitor {
    json operator()(int64_t i) const { return {{"type", "int"}, {"value", i}}; }
    json operator()(float f) const { return {{"type", "float"}, {"value", FloatToJson(f)}}; }
    json operator()(const std::string& s) const { return {{"type", "string"}, {"value", s}}; }
    json operator()(const std::vector<int64_t>& v) const {
      return {{"type", "ints"}, {"value", v}};
    }
    json operator()(const std::vector<float>& v) const {
      return {{"type", "floats"}, {"value", FloatsToJson(v)}};
    }
  };
  return std::visit(Visitor{}, v);
}

json TensorToJson(const TensorDesc& t, const BlobRef& blob) {
  json j = {{"name", t.name}, {"dtype", DTypeName(t.dtype)}, {"dims", t.dims}};
  if (t.is_constant())
    j["data"] = {{"offset", blob.offset}, {"size", blob.size}, {"crc32c", blob.crc32c}};
  return j;
}

json NodeToJson(const Node& n) {
  json attrs = json::object();
  for (const auto& [name, value] : n.attrs.values()) attrs[name] = AttrToJson(value);
  return {{"name", n.name},
          {"op", n.op},
          {"inputs", n.inputs},
          {"outputs", n.outputs},
          {"attrs", attrs}};
}

json InfoToJson(const ModelInfo& info) {
  return {{"name", info.name},
          {"version", info.version},
          {"producer", info.producer},
          {"source_hash", info.source_hash},
          {"labels", info.labels},
          {"preprocessing",
           {{"norm_mean", FloatsToJson(info.norm_mean)},
            {"norm_std", FloatsToJson(info.norm_std)},
            {"norm_axis", info.norm_axis}}}};
}

// ---- Reading: every access checks the type, so a hostile document cannot throw or crash ----

Status FieldError(const std::string& path, const std::string& what) {
  return Status::Corruption("graph section: " + path + ": " + what);
}

const json* Find(const json& obj, const char* key) {
  auto it = obj.find(key);  // end() for non-objects too
  return it == obj.end() ? nullptr : &*it;
}

Status Require(const json& obj, const char* key, const std::string& path, const json** out) {
  *out = Find(obj, key);
  return *out ? Status::Ok() : FieldError(path + "." + key, "missing");
}

Status ToInt(const json& v, const std::string& path, int64_t* out) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return FieldError(path, "integer out of range");
    *out = static_cast<int64_t>(u);
    return Status::Ok();
  }
  if (!v.is_number_integer()) return FieldError(path, "expected an integer");
  *out = v.get<int64_t>();
  return Status::Ok();
}

Status ToUint(const json& v, const std::string& path, uint64_t* out) {
  if (!v.is_number_unsigned()) return FieldError(path, "expected a non-negative integer");
  *out = v.get<uint64_t>();
  return Status::Ok();
}

Status ToFloat(const json& v, const std::string& path, float* out) {
  if (v.is_number()) {
    double d = v.get<double>();
    // Converting an out-of-range double to float is undefined behaviour.
    if (!(std::fabs(d) <= FLT_MAX)) return FieldError(path, "number out of float range");
    *out = static_cast<float>(d);
    return Status::Ok();
  }
  if (v == "inf" || v == "-inf" || v == "nan") {
    float inf = std::numeric_limits<float>::infinity();
    *out = v == "nan" ? std::numeric_limits<float>::quiet_NaN() : v == "inf" ? inf : -inf;
    return Status::Ok();
  }
  return FieldError(path, "expected a number");
}

Status ToString(const json& v, const std::string& path, std::string* out) {
  if (!v.is_string()) return FieldError(path, "expected a string");
  *out = v.get<std::string>();
  return Status::Ok();
}

template <class T>
Status ToArray(const json& v, const std::string& path, std::vector<T>* out,
               Status (*elem)(const json&, const std::string&, T*)) {
  if (!v.is_array()) return FieldError(path, "expected an array");
  out->assign(v.size(), T{});
  for (size_t i = 0; i < v.size(); ++i)
    EI_RETURN_IF_ERROR(elem(v[i], path + "[" + std::to_string(i) + "]", &(*out)[i]));
  return Status::Ok();
}

// Optional field: absent leaves *out unchanged.
template <class T, class F>
Status Optional(const json& obj, const char* key, const std::string& path, T* out, F convert) {
  const json* v = Find(obj, key);
  return v ? convert(*v, path + "." + key, out) : Status::Ok();
}

Status ToInts(const json& v, const std::string& path, std::vector<int64_t>* out) {
  return ToArray<int64_t>(v, path, out, ToInt);
}
Status ToFloats(const json& v, const std::string& path, std::vector<float>* out) {
  return ToArray<float>(v, path, out, ToFloat);
}
Status ToStrings(const json& v, const std::string& path, std::vector<std::string>* out) {
  return ToArray<std::string>(v, path, out, ToString);
}

// Tensor indices: [min, count), where min is -1 for a node's (optional) inputs, else 0.
Status ToIndices(const json& v, const std::string& path, int64_t min, size_t count,
                 std::vector<int>* out) {
  std::vector<int64_t> raw;
  EI_RETURN_IF_ERROR(ToInts(v, path, &raw));
  out->clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] < min || raw[i] >= static_cast<int64_t>(count))
      return FieldError(path + "[" + std::to_string(i) + "]",
                        "tensor index " + std::to_string(raw[i]) + " out of range (" +
                            std::to_string(count) + " tensors)");
    out->push_back(static_cast<int>(raw[i]));
  }
  return Status::Ok();
}

Status ParseInfo(const json& j, ModelInfo* info) {
  const json* v = Find(j, "info");
  if (!v) return Status::Ok();
  if (!v->is_object()) return FieldError("info", "expected an object");
  EI_RETURN_IF_ERROR(Optional(*v, "name", "info", &info->name, ToString));
  EI_RETURN_IF_ERROR(Optional(*v, "version", "info", &info->version, ToString));
  EI_RETURN_IF_ERROR(Optional(*v, "producer", "info", &info->producer, ToString));
  EI_RETURN_IF_ERROR(Optional(*v, "source_hash", "info", &info->source_hash, ToString));
  EI_RETURN_IF_ERROR(Optional(*v, "labels", "info", &info->labels, ToStrings));
  const json* pre = Find(*v, "preprocessing");
  if (!pre) return Status::Ok();
  const std::string path = "info.preprocessing";
  if (!pre->is_object()) return FieldError(path, "expected an object");
  EI_RETURN_IF_ERROR(Optional(*pre, "norm_mean", path, &info->norm_mean, ToFloats));
  EI_RETURN_IF_ERROR(Optional(*pre, "norm_std", path, &info->norm_std, ToFloats));
  int64_t axis = info->norm_axis;
  EI_RETURN_IF_ERROR(Optional(*pre, "norm_axis", path, &axis, ToInt));
  if (axis < -kMaxRank || axis > kMaxRank) return FieldError(path + ".norm_axis", "out of range");
  info->norm_axis = static_cast<int>(axis);
  return Status::Ok();
}

Status ParseBlobRef(const json& v, const std::string& path, BlobRef* blob) {
  if (!v.is_object()) return FieldError(path, "expected an object");
  const json* f;
  EI_RETURN_IF_ERROR(Require(v, "offset", path, &f));
  EI_RETURN_IF_ERROR(ToUint(*f, path + ".offset", &blob->offset));
  EI_RETURN_IF_ERROR(Require(v, "size", path, &f));
  EI_RETURN_IF_ERROR(ToUint(*f, path + ".size", &blob->size));
  EI_RETURN_IF_ERROR(Require(v, "crc32c", path, &f));
  uint64_t crc;
  EI_RETURN_IF_ERROR(ToUint(*f, path + ".crc32c", &crc));
  if (crc > 0xFFFFFFFFu) return FieldError(path + ".crc32c", "more than 32 bits");
  blob->crc32c = static_cast<uint32_t>(crc);
  return Status::Ok();
}

Status ParseTensor(const json& v, const std::string& path, TensorDesc* t,
                   std::optional<BlobRef>* blob) {
  if (!v.is_object()) return FieldError(path, "expected an object");
  const json* f;
  EI_RETURN_IF_ERROR(Require(v, "name", path, &f));
  EI_RETURN_IF_ERROR(ToString(*f, path + ".name", &t->name));
  std::string dtype;
  EI_RETURN_IF_ERROR(Require(v, "dtype", path, &f));
  EI_RETURN_IF_ERROR(ToString(*f, path + ".dtype", &dtype));
  if (!ParseDType(dtype, &t->dtype))
    return Status::Unsupported("tensor '" + t->name + "': unknown dtype '" + dtype + "'");
  EI_RETURN_IF_ERROR(Require(v, "dims", path, &f));
  if (f->is_array() && f->size() > static_cast<size_t>(kMaxRank))
    return Status::Corruption("tensor '" + t->name + "': rank " + std::to_string(f->size()) +
                              " exceeds the maximum of " + std::to_string(kMaxRank));
  EI_RETURN_IF_ERROR(ToInts(*f, path + ".dims", &t->dims));
  Status dims = CheckDims(t->dims);
  if (!dims.ok()) return Status::Corruption("tensor '" + t->name + "': " + dims.message());
  if (const json* data = Find(v, "data")) {
    blob->emplace();
    EI_RETURN_IF_ERROR(ParseBlobRef(*data, path + ".data", &**blob));
  }
  return Status::Ok();
}

Status ParseAttr(const json& v, const std::string& path, AttrValue* out) {
  if (!v.is_object()) return FieldError(path, "expected an object");
  const json *type, *value;
  EI_RETURN_IF_ERROR(Require(v, "type", path, &type));
  EI_RETURN_IF_ERROR(Require(v, "value", path, &value));
  const std::string vpath = path + ".value";
  auto convert = [&](auto fn, auto init) -> Status {
    EI_RETURN_IF_ERROR(fn(*value, vpath, &init));
    *out = std::move(init);
    return Status::Ok();
  };
  if (*type == "int") return convert(ToInt, int64_t{});
  if (*type == "float") return convert(ToFloat, float{});
  if (*type == "string") return convert(ToString, std::string{});
  if (*type == "ints") return convert(ToInts, std::vector<int64_t>{});
  if (*type == "floats") return convert(ToFloats, std::vector<float>{});
  return FieldError(path + ".type", "expected int, float, string, ints or floats");
}

Status ParseNode(const json& v, const std::string& path, size_t num_tensors, Node* n) {
  if (!v.is_object()) return FieldError(path, "expected an object");
  const json* f;
  EI_RETURN_IF_ERROR(Require(v, "name", path, &f));
  EI_RETURN_IF_ERROR(ToString(*f, path + ".name", &n->name));
  EI_RETURN_IF_ERROR(Require(v, "op", path, &f));
  EI_RETURN_IF_ERROR(ToString(*f, path + ".op", &n->op));
  EI_RETURN_IF_ERROR(Require(v, "inputs", path, &f));
  EI_RETURN_IF_ERROR(ToIndices(*f, path + ".inputs", -1, num_tensors, &n->inputs));
  EI_RETURN_IF_ERROR(Require(v, "outputs", path, &f));
  EI_RETURN_IF_ERROR(ToIndices(*f, path + ".outputs", 0, num_tensors, &n->outputs));
  const json* attrs = Find(v, "attrs");
  if (!attrs) return Status::Ok();
  if (!attrs->is_object()) return FieldError(path + ".attrs", "expected an object");
  for (const auto& [name, value] : attrs->items()) {
    AttrValue attr;
    EI_RETURN_IF_ERROR(ParseAttr(value, path + ".attrs." + name, &attr));
    n->attrs.Set(name, std::move(attr));
  }
  return Status::Ok();
}

}  // namespace

json GraphToJson(const Graph& g, const std::vector<BlobRef>& blobs) {
  json tensors = json::array();
  for (size_t i = 0; i < g.tensors.size(); ++i)
    tensors.push_back(TensorToJson(g.tensors[i], blobs.at(i)));
  json nodes = json::array();
  for (const Node& n : g.nodes) nodes.push_back(NodeToJson(n));
  return {{"info", InfoToJson(g.info)},
          {"tensors", tensors},
          {"nodes", nodes},
          {"inputs", g.inputs},
          {"outputs", g.outputs}};
}

Status GraphFromJson(const json& j, Graph* g, std::vector<std::optional<BlobRef>>* blobs) {
  if (!j.is_object()) return FieldError("(top level)", "expected an object");
  EI_RETURN_IF_ERROR(ParseInfo(j, &g->info));
  const json* f;
  EI_RETURN_IF_ERROR(Require(j, "tensors", "(top level)", &f));
  if (!f->is_array()) return FieldError("tensors", "expected an array");
  g->tensors.assign(f->size(), TensorDesc{});
  blobs->assign(f->size(), std::nullopt);
  for (size_t i = 0; i < f->size(); ++i) {
    std::string path = "tensors[" + std::to_string(i) + "]";
    EI_RETURN_IF_ERROR(ParseTensor((*f)[i], path, &g->tensors[i], &(*blobs)[i]));
  }
  const size_t num_tensors = g->tensors.size();
  EI_RETURN_IF_ERROR(Require(j, "nodes", "(top level)", &f));
  if (!f->is_array()) return FieldError("nodes", "expected an array");
  g->nodes.assign(f->size(), Node{});
  for (size_t i = 0; i < f->size(); ++i) {
    std::string path = "nodes[" + std::to_string(i) + "]";
    EI_RETURN_IF_ERROR(ParseNode((*f)[i], path, num_tensors, &g->nodes[i]));
  }
  EI_RETURN_IF_ERROR(Require(j, "inputs", "(top level)", &f));
  EI_RETURN_IF_ERROR(ToIndices(*f, "inputs", 0, num_tensors, &g->inputs));
  EI_RETURN_IF_ERROR(Require(j, "outputs", "(top level)", &f));
  return ToIndices(*f, "outputs", 0, num_tensors, &g->outputs);
}

Status CheckDims(const Dims& dims) {
  constexpr int64_t kMaxDim = int64_t{1} << 31;
  constexpr uint64_t kMaxElements = uint64_t{1} << 62;
  if (dims.size() > static_cast<size_t>(kMaxRank))
    return Status::InvalidArgument("rank " + std::to_string(dims.size()) +
                                   " exceeds the maximum of " + std::to_string(kMaxRank));
  uint64_t n = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] > kMaxDim || dims[i] < -kMaxDim)
      return Status::InvalidArgument("dim " + std::to_string(i) + " is " + std::to_string(dims[i]) +
                                     ", beyond +-2^31");
    uint64_t m = static_cast<uint64_t>(dims[i] < 0 ? -dims[i] : dims[i]);
    if (m != 0 && n > kMaxElements / m)
      return Status::InvalidArgument("dims " + DimsToString(dims) + " exceed 2^62 elements");
    n *= m;
  }
  return Status::Ok();
}

Result<uint64_t> ConstantBytes(DType dtype, const Dims& dims) {
  EI_RETURN_IF_ERROR(CheckDims(dims));
  if (HasBatch(dims))
    return Status::InvalidArgument("constant has batch dims " + DimsToString(dims));
  // Quantized weight blobs have no per-element size: their layout decides (weight_format.h).
  if (IsPackedWeight(dtype)) return quant::WeightBlobBytes(dtype, dims);
  uint64_t numel = 1;
  for (int64_t d : dims) numel *= static_cast<uint64_t>(d);  // bounded by CheckDims
  uint64_t elem = DTypeSize(dtype);
  if (elem == 0) return Status::Unsupported(std::string("dtype ") + DTypeName(dtype));
  uint64_t bytes;
  if (__builtin_mul_overflow(numel, elem, &bytes))
    return Status::InvalidArgument("dims " + DimsToString(dims) + " overflow the byte count");
  return bytes;
}

}  // namespace edgeinfer
