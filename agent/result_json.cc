#include "agent/result_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>

namespace edgeinfer::agent {
namespace {

template <class T>
void AppendNumber(T v, std::string* out) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

// Shortest text that reads back as the same float; JSON has no NaN/Inf, so those are null.
void AppendFloat(float v, std::string* out) {
  if (std::isfinite(v))
    AppendNumber(v, out);
  else
    out->append("null");
}

void AppendFixed(double v, int decimals, std::string* out) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  if (r.ec == std::errc() && std::isfinite(v))
    out->append(buf, r.ptr);
  else
    out->append("null");
}

void AppendString(std::string_view s, std::string* out) {
  out->push_back('"');
  AppendJsonEscaped(s, out);
  out->push_back('"');
}

void AppendArray(std::span<const float> v, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out->push_back(',');
    AppendFloat(v[i], out);
  }
  out->push_back(']');
}

std::string Quoted(std::string_view s) {
  std::string out;
  AppendString(s, &out);
  return out;
}

}  // namespace

void AppendJsonEscaped(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  size_t run = 0;  // start of the pending run of plain characters, appended in one go
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else {
      const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out->append(esc, 6);
    }
  }
  out->append(s.data() + run, s.size() - run);
}

ResultWriter::ResultWriter(const ResultIdentity& id, const Postprocessor* post) : post_(post) {
  id_prefix_ = "{\"id\":\"";
  AppendJsonEscaped(id.device + ":" + id.boot_id + ":" + id.pipeline + ":", &id_prefix_);
  identity_ = "\",\"device\":" + Quoted(id.device) + ",\"boot_id\":" + Quoted(id.boot_id) +
              ",\"pipeline\":" + Quoted(id.pipeline) + ",\"sequence\":";
  model_ = ",\"model\":{\"name\":" + Quoted(id.model_name) +
           ",\"version\":" + Quoted(id.model_version) + ",\"precision\":" + Quoted(id.precision) +
           "},\"outputs\":";
}

void ResultWriter::Write(const ResultRecord& r, std::string* out) const {
  out->clear();
  out->append(id_prefix_);
  AppendNumber(r.sequence, out);
  out->append(identity_);
  AppendNumber(r.sequence, out);
  out->append(",\"stream\":");
  AppendString(r.stream, out);
  if (r.ts.kind == Timestamp::Kind::kNumber) {
    out->append(",\"ts\":").append(r.ts.text);
  } else if (r.ts.kind == Timestamp::Kind::kString) {
    out->append(",\"ts\":");
    AppendString(r.ts.text, out);
  }
  out->append(",\"received_at\":");
  AppendNumber(r.received_at_ms, out);
  out->append(",\"published_at\":");
  AppendNumber(r.published_at_ms, out);
  out->append(",\"latency_ms\":");
  AppendFixed(r.latency_ms, 3, out);
  out->append(model_);
  AppendArray(r.outputs.empty() ? std::span<const float>() : r.outputs[0], out);
  if (r.outputs.size() > 1) {
    out->append(",\"extra_outputs\":[");
    for (size_t o = 1; o < r.outputs.size(); ++o) {
      if (o > 1) out->push_back(',');
      AppendArray(r.outputs[o], out);
    }
    out->push_back(']');
  }
  if (r.post && r.post->has_class) WriteClass(*r.post, out);
  out->push_back('}');
}

void ResultWriter::WriteClass(const PostResult& p, std::string* out) const {
  out->append(",\"class\":");
  AppendNumber(p.best, out);
  if (std::string_view label = post_->Label(p.best); !label.empty()) {
    out->append(",\"label\":");
    AppendString(label, out);
  }
  out->append(",\"score\":");
  AppendFloat(p.best_score, out);
  if (p.top.empty()) return;
  out->append(",\"top_k\":[");
  for (size_t i = 0; i < p.top.size(); ++i) {
    out->append(i ? ",{\"index\":" : "{\"index\":");
    AppendNumber(p.top[i].index, out);
    if (std::string_view label = post_->Label(p.top[i].index); !label.empty()) {
      out->append(",\"label\":");
      AppendString(label, out);
    }
    out->append(",\"score\":");
    AppendFloat(p.top[i].score, out);
    out->push_back('}');
  }
  out->push_back(']');
}

namespace {

// Weight storage precisions, lowest first; the order of a mixed model's name.
constexpr const char* kPrecisions[] = {"int4", "int8", "fp16", "fp32"};

int PrecisionOfDType(DType t) {
  switch (t) {
    case DType::kQInt4Block:
      return 0;
    case DType::kQInt8Channel:
    case DType::kInt8:
    case DType::kUInt8:
      return 1;
    case DType::kFloat16:
      return 2;
    case DType::kFloat32:
      return 3;
    default:
      return -1;  // integer shapes and indices are not weights
  }
}

}  // namespace

std::string ModelPrecision(const Graph& graph) {
  bool used[std::size(kPrecisions)] = {};
  // Quantized graphs name each Gemm/Conv layer's precision; otherwise the weights' types say.
  for (const Node& n : graph.nodes) {
    const std::string p = n.attrs.GetString("precision");
    for (size_t i = 0; i < std::size(kPrecisions); ++i) used[i] |= p == kPrecisions[i];
  }
  if (std::find(std::begin(used), std::end(used), true) == std::end(used)) {
    for (const TensorDesc& t : graph.tensors) {
      const int i = PrecisionOfDType(t.dtype);
      if (t.is_constant() && t.dims.size() >= 2 && i >= 0) used[i] = true;  // not biases
    }
  }
  std::string out;
  for (size_t i = 0; i < std::size(kPrecisions); ++i) {
    if (!used[i]) continue;
    if (!out.empty()) out += '+';
    out += kPrecisions[i];
  }
  return out.empty() ? "fp32" : out;
}

}  // namespace edgeinfer::agent
