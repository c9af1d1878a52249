// Source messages -> every pipeline whose topic filters match; unknown topics are counted and
// reported as rejections.
#pragma once

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <string_view>
#include <vector>

#include "agent/mqtt_link.h"
#include "agent/pipeline.h"

namespace edgeinfer::agent {

// Runs on the source link's callback thread; the pipeline list is swapped under the exclusive
// lock (reload), so a message never reaches a pipeline that is being stopped.
class Router final : public MqttMessageHandler {
 public:
  explicit Router(ErrorReporter* errors) : errors_(errors) {}

  void SetPipelines(std::vector<std::shared_ptr<Pipeline>> pipelines);
  // After Close, messages are ignored (shutdown: intake stopped).
  void Close();
  uint64_t unknown_topics() const { return unknown_.load(std::memory_order_relaxed); }

  void OnMessage(std::string_view topic, std::string_view payload) override;

 private:
  ErrorReporter* errors_;
  std::shared_mutex mu_;
  std::vector<std::shared_ptr<Pipeline>> pipelines_;
  bool closed_ = false;
  std::atomic<uint64_t> unknown_{0};
};

}  // namespace edgeinfer::agent
