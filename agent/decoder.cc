#include "agent/decoder.h"

#include <simdjson.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

namespace edgeinfer::agent {
namespace {

namespace dom = simdjson::dom;

// Per-thread decoding state, shared by every pipeline's Decoder on that thread (the source
// link has one callback thread), so a device with many pipelines holds one parser, not one
// per pipeline. Everything grows to the largest payload seen and is then reused.
struct ThreadState {
  dom::parser parser;
  std::vector<char> padded;  // payload copy + SIMDJSON_PADDING readable bytes
  std::vector<float> values;
  char ts_text[32];  // a numeric timestamp or stream key, formatted
  char key_text[32];
};

ThreadState& State() {
  thread_local ThreadState state;
  return state;
}

const char* TypeName(dom::element_type t) {
  switch (t) {
    case dom::element_type::ARRAY:
      return "an array";
    case dom::element_type::OBJECT:
      return "an object";
    case dom::element_type::STRING:
      return "a string";
    case dom::element_type::BOOL:
      return "a boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
    default:
      return "a number";
  }
}

bool IsNumber(dom::element_type t) {
  return t == dom::element_type::INT64 || t == dom::element_type::UINT64 ||
         t == dom::element_type::DOUBLE;
}

bool Fail(DecodeError* error, RejectReason reason, std::string detail) {
  error->reason = reason;
  error->detail = std::move(detail);
  return false;
}

// Formats a JSON number element into `buf` (integers exactly, doubles shortest round-trip).
std::string_view NumberText(dom::element e, char (&buf)[32]) {
  std::to_chars_result r{};
  if (e.type() == dom::element_type::INT64) {
    r = std::to_chars(buf, buf + sizeof buf, int64_t(e.get_int64().value_unsafe()));
  } else if (e.type() == dom::element_type::UINT64) {
    r = std::to_chars(buf, buf + sizeof buf, uint64_t(e.get_uint64().value_unsafe()));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, double(e.get_double().value_unsafe()));
  }
  return {buf, static_cast<size_t>(r.ptr - buf)};
}

// One JSON number as a float; refuses other types and values outside float range.
bool ToFloat(dom::element e, const std::string& ptr, size_t index, float* f, DecodeError* error) {
  double d = 0;
  if (e.get_double().get(d) != simdjson::SUCCESS)
    return Fail(
        error, RejectReason::kMalformed,
        "'" + ptr + "'[" + std::to_string(index) + "] is " + TypeName(e.type()) + ", not a number");
  *f = static_cast<float>(d);
  if (!std::isfinite(*f))
    return Fail(error, RejectReason::kNonFinite,
                "'" + ptr + "'[" + std::to_string(index) + "] = " + std::to_string(d) +
                    " is outside the float32 range");
  return true;
}

bool AppendNumber(dom::element e, const std::string& ptr, size_t index, std::vector<float>* out,
                  DecodeError* error) {
  float f = 0;
  if (!ToFloat(e, ptr, index, &f, error)) return false;
  out->push_back(f);
  return true;
}

// Appends the numbers of `v` (a number, or arrays of numbers nested up to kMaxDepth deep,
// flattened row-major) to `out`; `index` counts the numbers seen, for error messages.
constexpr int kMaxDepth = 8;
bool AppendFlat(dom::element v, const std::string& ptr, int depth, size_t* index,
                std::vector<float>* out, DecodeError* error) {
  if (IsNumber(v.type())) return AppendNumber(v, ptr, (*index)++, out, error);
  dom::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) {
    const std::string what = std::string(" is ") + TypeName(v.type()) + ", not ";
    return Fail(error, RejectReason::kMalformed,
                depth == 0 ? "'" + ptr + "'" + what + "an array of numbers"
                           : "'" + ptr + "'[" + std::to_string(*index) + "]" + what + "a number");
  }
  if (depth == kMaxDepth)
    return Fail(error, RejectReason::kMalformed,
                "'" + ptr + "': arrays nested deeper than " + std::to_string(kMaxDepth));
  for (dom::element e : arr)
    if (!AppendFlat(e, ptr, depth + 1, index, out, error)) return false;
  return true;
}

bool ElementAt(dom::element root, const std::string& ptr, dom::element* v, DecodeError* error) {
  if (root.at_pointer(ptr).get(*v) == simdjson::SUCCESS) return true;
  return Fail(error, RejectReason::kMalformed, "no value at '" + ptr + "'");
}

// One pointer: its numbers, nested arrays flattened. Several (one per channel): equally long
// flat arrays (or single numbers), interleaved per time step: x0, y0, z0, x1, y1, z1, ...
bool ReadValues(dom::element root, const std::vector<std::string>& ptrs, std::vector<float>* out,
                DecodeError* error) {
  out->clear();  // keeps its capacity: no allocation once warmed up
  dom::element v;
  if (ptrs.size() == 1) {
    size_t index = 0;
    return ElementAt(root, ptrs[0], &v, error) && AppendFlat(v, ptrs[0], 0, &index, out, error);
  }
  const size_t channels = ptrs.size();
  size_t steps = 0;
  for (size_t c = 0; c < channels; ++c) {
    if (!ElementAt(root, ptrs[c], &v, error)) return false;
    dom::array arr;
    const bool is_array = v.get_array().get(arr) == simdjson::SUCCESS;
    if (!is_array && !IsNumber(v.type()))
      return Fail(error, RejectReason::kMalformed,
                  "'" + ptrs[c] + "' is " + TypeName(v.type()) + ", not a number or an array");
    const size_t n = is_array ? arr.size() : 1;
    if (c == 0) {
      steps = n;
      out->resize(steps * channels);
    } else if (n != steps) {
      return Fail(error, RejectReason::kWrongLength,
                  "'" + ptrs[c] + "' has " + std::to_string(n) + " values, '" + ptrs[0] + "' has " +
                      std::to_string(steps) + ": channels must be equally long");
    }
    if (!is_array) {
      if (!ToFloat(v, ptrs[c], 0, &(*out)[c], error)) return false;
      continue;
    }
    size_t t = 0;
    for (dom::element e : arr) {
      if (!ToFloat(e, ptrs[c], t, &(*out)[t * channels + c], error)) return false;
      ++t;
    }
  }
  return true;
}

bool ReadTimestamp(dom::element root, const std::string& ptr, ThreadState& st, Timestamp* ts,
                   DecodeError* error) {
  *ts = Timestamp{};
  dom::element e;
  // A message without a timestamp still yields a result, just without `ts`.
  if (ptr.empty() || root.at_pointer(ptr).get(e) != simdjson::SUCCESS) return true;
  const dom::element_type t = e.type();
  if (t == dom::element_type::NULL_VALUE) return true;
  if (t == dom::element_type::STRING) {
    *ts = {Timestamp::Kind::kString, e.get_string().value_unsafe()};
    return true;
  }
  if (IsNumber(t)) {
    *ts = {Timestamp::Kind::kNumber, NumberText(e, st.ts_text)};
    return true;
  }
  return Fail(error, RejectReason::kMalformed,
              "timestamp '" + ptr + "' is " + TypeName(t) + ", not a number or string");
}

bool ReadStreamKey(dom::element root, const std::string& ptr, ThreadState& st,
                   std::string_view* key, DecodeError* error) {
  *key = {};
  if (ptr.empty()) return true;
  dom::element e;
  // Without its key a message cannot be placed in a window; guessing would mix streams.
  if (root.at_pointer(ptr).get(e) != simdjson::SUCCESS)
    return Fail(error, RejectReason::kMalformed, "no stream key at '" + ptr + "'");
  if (e.type() == dom::element_type::STRING) {
    *key = e.get_string().value_unsafe();
    return true;
  }
  if (IsNumber(e.type())) {
    *key = NumberText(e, st.key_text);
    return true;
  }
  return Fail(error, RejectReason::kMalformed,
              "stream key '" + ptr + "' is " + TypeName(e.type()) + ", not a string or number");
}

bool ValidPointer(const std::string& p) { return p.empty() || p[0] == '/'; }

}  // namespace

Result<Decoder> Decoder::Create(const InputConfig& config) {
  Decoder d;
  if (config.format != "json" && config.format != "f32le")
    return Status::InvalidArgument("input.format '" + config.format +
                                   "' is not \"json\" or \"f32le\"");
  if (config.values.empty()) return Status::InvalidArgument("input.values names no JSON pointer");
  std::vector<const std::string*> pointers = {&config.timestamp, &config.stream_key};
  for (const std::string& v : config.values) pointers.push_back(&v);
  for (const std::string* p : pointers)
    if (!ValidPointer(*p))
      return Status::InvalidArgument("JSON pointer '" + *p + "' must be empty or start with '/'");
  if (config.max_payload_bytes <= 0)
    return Status::InvalidArgument("input.max_payload_bytes must be positive");
  d.json_ = config.format == "json";
  d.values_ptrs_ = config.values;
  d.timestamp_ptr_ = config.timestamp;
  d.stream_key_ptr_ = config.stream_key;
  d.max_payload_bytes_ = static_cast<size_t>(config.max_payload_bytes);
  return d;
}

bool Decoder::Decode(std::string_view payload, DecodedMessage* out, DecodeError* error) const {
  // Checked before anything is copied, so an oversized payload costs nothing.
  if (payload.size() > max_payload_bytes_)
    return Fail(error, RejectReason::kOversized,
                std::to_string(payload.size()) + " bytes exceed input.max_payload_bytes " +
                    std::to_string(max_payload_bytes_));
  return json_ ? DecodeJson(payload, out, error) : DecodeF32le(payload, out, error);
}

bool Decoder::DecodeJson(std::string_view payload, DecodedMessage* out, DecodeError* error) const {
  ThreadState& st = State();
  // simdjson reads up to SIMDJSON_PADDING bytes past the end; the caller's buffer gives no
  // such promise, so copy into our reused padded buffer (a memcpy, far cheaper than parsing).
  const size_t need = payload.size() + simdjson::SIMDJSON_PADDING;
  if (st.padded.size() < need) st.padded.resize(need);
  std::memcpy(st.padded.data(), payload.data(), payload.size());
  std::memset(st.padded.data() + payload.size(), 0, simdjson::SIMDJSON_PADDING);
  dom::element root;
  const simdjson::error_code err =
      st.parser.parse(st.padded.data(), payload.size(), false).get(root);
  if (err != simdjson::SUCCESS)
    return Fail(error, RejectReason::kMalformed,
                std::string("malformed JSON: ") + simdjson::error_message(err));
  if (!ReadValues(root, values_ptrs_, &st.values, error)) return false;
  if (!ReadTimestamp(root, timestamp_ptr_, st, &out->timestamp, error)) return false;
  if (!ReadStreamKey(root, stream_key_ptr_, st, &out->stream_key, error)) return false;
  out->values = st.values;
  return true;
}

bool Decoder::DecodeF32le(std::string_view payload, DecodedMessage* out, DecodeError* error) const {
  if (payload.size() % sizeof(float) != 0)
    return Fail(
        error, RejectReason::kMalformed,
        "f32le payload of " + std::to_string(payload.size()) + " bytes is not a multiple of 4");
  ThreadState& st = State();
  const size_t n = payload.size() / sizeof(float);
  if (st.values.size() < n) st.values.resize(n);
  // memcpy, not a cast: the payload need not be 4-byte aligned.
  std::memcpy(st.values.data(), payload.data(), payload.size());
  if constexpr (std::endian::native == std::endian::big) {
    for (size_t i = 0; i < n; ++i)
      st.values[i] = std::bit_cast<float>(__builtin_bswap32(std::bit_cast<uint32_t>(st.values[i])));
  }
  for (size_t i = 0; i < n; ++i) {
    if (std::isfinite(st.values[i])) continue;
    return Fail(error, RejectReason::kNonFinite,
                "value " + std::to_string(i) + " is " + (std::isnan(st.values[i]) ? "NaN" : "Inf"));
  }
  out->values = {st.values.data(), n};
  out->timestamp = {};
  out->stream_key = {};
  return true;
}

}  // namespace edgeinfer::agent
