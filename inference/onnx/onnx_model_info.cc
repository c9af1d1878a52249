#include "inference/onnx/onnx_model_info.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace edgeinfer {

namespace {

using nlohmann::json;

Status Bad(const std::string& key, const std::string& why) {
  return Status::InvalidArgument("metadata '" + key + "': " + why);
}

Result<json> ParseJson(const std::string& key, const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(key, "not valid JSON");
  return j;
}

Status ReadLabels(const std::string& text, ModelInfo* info) {
  EI_ASSIGN_OR_RETURN(json j, ParseJson("labels", text));
  if (!j.is_array()) return Bad("labels", "expected a JSON array of strings");
  for (const json& v : j) {
    if (!v.is_string()) return Bad("labels", "expected a JSON array of strings");
    info->labels.push_back(v.get<std::string>());
  }
  return Status::Ok();
}

Result<std::vector<float>> Floats(const json& j, const char* field) {
  if (!j.contains(field) || !j[field].is_array())
    return Bad("preprocessing", std::string("'") + field + "' must be an array of numbers");
  std::vector<float> out;
  for (const json& v : j[field]) {
    if (!v.is_number())
      return Bad("preprocessing", std::string("'") + field + "' must be an array of numbers");
    out.push_back(v.get<float>());
  }
  return out;
}

Status ReadPreprocessing(const std::string& text, ModelInfo* info) {
  EI_ASSIGN_OR_RETURN(json j, ParseJson("preprocessing", text));
  if (!j.is_object()) return Bad("preprocessing", "expected a JSON object");
  EI_ASSIGN_OR_RETURN(info->norm_mean, Floats(j, "mean"));
  EI_ASSIGN_OR_RETURN(info->norm_std, Floats(j, "std"));
  if (info->norm_mean.size() != info->norm_std.size())
    return Bad("preprocessing", "'mean' and 'std' differ in length");
  for (float s : info->norm_std)
    if (!(s != 0.f)) return Bad("preprocessing", "'std' has a zero");
  if (j.contains("axis")) {
    if (!j["axis"].is_number_integer() || j["axis"].get<int64_t>() < 0 ||
        j["axis"].get<int64_t>() > 8)
      return Bad("preprocessing", "'axis' must be an integer in [0, 8]");
    info->norm_axis = j["axis"].get<int>();
  }
  return Status::Ok();
}

// Graph names exporters write by default say nothing about the model; the file name is better.
bool IsDefaultGraphName(const std::string& name) {
  return name.empty() || name == "torch_jit" || name == "torch-jit-export" ||
         name == "main_graph" || name == "tf2onnx";
}

std::string Producer(const onnx::ModelProto& m) {
  std::string p = m.producer_name();
  if (!m.producer_version().empty()) p += (p.empty() ? "" : " ") + m.producer_version();
  return p;
}

}  // namespace

std::string Fnv1a64Hex(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Result<ModelInfo> ReadOnnxModelInfo(const onnx::ModelProto& m, std::string_view source,
                                    const std::string& fallback_name) {
  ModelInfo info;
  info.name = IsDefaultGraphName(m.graph().name()) ? fallback_name : m.graph().name();
  info.producer = Producer(m);
  info.source_hash = Fnv1a64Hex(source);
  for (const auto& kv : m.metadata_props()) {
    if (kv.key() == "model_name" && !kv.value().empty()) info.name = kv.value();
    if (kv.key() == "model_version") info.version = kv.value();
    if (kv.key() == "labels") EI_RETURN_IF_ERROR(ReadLabels(kv.value(), &info));
    if (kv.key() == "preprocessing") EI_RETURN_IF_ERROR(ReadPreprocessing(kv.value(), &info));
  }
  return info;
}

}  // namespace edgeinfer
