// The result message: one JSON object per model input, written by a small fixed writer
// (std::to_chars, no DOM) because it runs once per inference on the worker threads.
//
// Schema (fields in this order; optional ones are left out, never null):
//   id            string  "{device}:{boot_id}:{pipeline}:{sequence}": unique per result across
//                         boots (boot_id is fresh each start), so consumers de-duplicate on it
//   device, boot_id, pipeline   strings
//   sequence      integer per pipeline, from 1 each boot, in publish order
//   stream        string  the stream key (the topic, or the value at input.stream_key)
//   ts            the newest input's timestamp exactly as given (number or string); optional
//   received_at   integer unix ms when that newest input arrived
//   published_at  integer unix ms when this result was formed
//   latency_ms    number  arrival of the newest input -> result formed (steady clock)
//   model         {"name","version","precision"}
//   outputs       [numbers] the model's raw output 0 for this input (non-finite -> null)
//   extra_outputs [[numbers],...] outputs 1.. when the model has several; optional
//   class, score  the best class index and its score; label when the model names it;
//                 optional (see Postprocessor::classifies)
//   top_k         [{"index","label","score"}] best first, label when named; optional
//                 (postprocess.top_k > 0 and some class at or above the threshold)
// Scores are softmax probabilities when postprocess.softmax is on, raw outputs otherwise.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "agent/decoder.h"
#include "agent/postprocess.h"
#include "inference/graph.h"

namespace edgeinfer::agent {

// What stays the same for every result of a pipeline.
struct ResultIdentity {
  std::string device;
  std::string boot_id;
  std::string pipeline;
  std::string model_name;
  std::string model_version;
  std::string precision;
};

// What changes per result. Views: valid for the Write call.
struct ResultRecord {
  uint64_t sequence = 0;
  std::string_view stream;
  Timestamp ts;
  int64_t received_at_ms = 0;
  int64_t published_at_ms = 0;
  double latency_ms = 0;
  std::span<const std::span<const float>> outputs;  // one span per model output
  const PostResult* post = nullptr;                 // null or !has_class: no class fields
};

class ResultWriter {
 public:
  // `post` gives the labels; it must outlive the writer.
  ResultWriter(const ResultIdentity& identity, const Postprocessor* post);

  // Replaces *out with the message. Allocates only if *out lacks the capacity.
  void Write(const ResultRecord& r, std::string* out) const;

 private:
  void WriteClass(const PostResult& p, std::string* out) const;

  const Postprocessor* post_;
  // Escaped once here, copied per result: the constant parts of every message.
  std::string id_prefix_;  // {"id":"device:boot:pipeline:
  std::string identity_;   // ","device":...,"pipeline":...,"sequence":
  std::string model_;      // ,"model":{...},"outputs":
};

// How the model's weights are stored: "fp32", "fp16", "int8", "int4", or for mixed precision
// the ones used joined lowest first ("int4+fp32"). From the layers' `precision` attributes
// (quantized graphs), else from the weight tensors' element types.
std::string ModelPrecision(const Graph& graph);

// Appends `s` as a JSON string body (no quotes), escaping '"', '\\' and control characters.
void AppendJsonEscaped(std::string_view s, std::string* out);

}  // namespace edgeinfer::agent
