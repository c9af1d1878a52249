// Decoder: one sensor payload -> float values (+ optional timestamp and stream key).
//
// Formats (InputConfig::format):
//   "json"  - the `values` JSON pointer names an array of numbers or a single number ("" is the
//             whole document); nested arrays ([[x, y, z], ...]) flatten row-major. Several
//             `values` pointers (one per channel: "/x", "/y", "/z") name equally long arrays
//             or single numbers, interleaved per time step (x0, y0, z0, x1, ...). The
//             optional `timestamp` pointer names a number or a string; the optional
//             `stream_key` pointer names a string or a number. The whole payload
//             is validated (simdjson DOM), so trailing garbage or a truncated document is
//             refused, not half-read.
//   "f32le" - raw little-endian float32; the byte count must be a multiple of 4. No timestamp
//             or stream key (the topic is the stream).
//
// Memory: the simdjson parser, the padded copy of the payload and the float buffer are
// per thread (thread_local), shared by every Decoder used on that thread, and grow only to
// the largest payload seen (bounded by max_payload_bytes). A steady stream of messages
// allocates nothing. Every view in a DecodedMessage points into that per-thread state and is
// valid until the next Decode on the same thread.
//
// Thread safety: a Decoder is immutable after Create; Decode may be called from any number
// of threads at once (each uses its own per-thread state).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "agent/pipeline.h"
#include "common/status.h"

namespace edgeinfer::agent {

// A timestamp as the input gave it: a JSON number (kept as its value, written back as a
// number) or a string (written back as the same string).
struct Timestamp {
  enum class Kind { kNone, kNumber, kString };
  Kind kind = Kind::kNone;
  std::string_view text;  // number: its decimal text; string: its unescaped contents
};

struct DecodedMessage {
  std::span<float> values;      // mutable so callers can normalize in place
  Timestamp timestamp;          // kNone when not configured or absent from the message
  std::string_view stream_key;  // empty when not configured (use the topic)
};

// Why Decode refused a payload: the pipeline's reason code plus a message that names the
// problem ("'/values'[3] is a string, not a number").
struct DecodeError {
  RejectReason reason = RejectReason::kMalformed;
  std::string detail;
};

class Decoder {
 public:
  // Fails on an unknown format or a JSON pointer that does not start with '/'.
  static Result<Decoder> Create(const InputConfig& config);

  // Returns true and fills `out`, or false and fills `error`. Never throws.
  bool Decode(std::string_view payload, DecodedMessage* out, DecodeError* error) const;

  bool is_json() const { return json_; }

 private:
  Decoder() = default;
  bool DecodeJson(std::string_view payload, DecodedMessage* out, DecodeError* error) const;
  bool DecodeF32le(std::string_view payload, DecodedMessage* out, DecodeError* error) const;

  bool json_ = true;
  std::vector<std::string> values_ptrs_;
  std::string timestamp_ptr_;
  std::string stream_key_ptr_;
  size_t max_payload_bytes_ = 0;
};

}  // namespace edgeinfer::agent
