// Dead letters: every rejected message is counted by reason and reported, rate-limited, as JSON
// on {prefix}/{device}/errors (QoS 0, best effort) and in the log.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "agent/config.h"
#include "agent/mqtt_link.h"
#include "agent/pipeline.h"

namespace edgeinfer::agent {

// At most `per_minute` dead letters a minute (a token bucket; see Burst). The number left out
// since the last one rides on the next ("suppressed_since_last") and in telemetry.
class ErrorPublisher final : public ErrorReporter {
 public:
  explicit ErrorPublisher(const AgentConfig& c);
  void SetSink(MqttLink* sink) { sink_ = sink; }
  void SetRate(int per_minute);

  void Reject(const std::string& pipeline, RejectReason reason, std::string_view topic,
              const std::string& detail) override;

  // {reason name: count, ..., "suppressed": n}
  nlohmann::json Counts() const;

 private:
  using Clock = std::chrono::steady_clock;
  double Burst() const;
  bool Allow(uint64_t* suppressed_before);

  const std::string device_, topic_;
  MqttLink* sink_ = nullptr;
  std::atomic<uint64_t> counts_[static_cast<int>(RejectReason::kCount)] = {};
  mutable std::mutex mu_;
  int per_minute_ = 60;
  double tokens_ = 10;
  Clock::time_point last_ = Clock::now();
  uint64_t suppressed_ = 0, suppressed_total_ = 0;
};

}  // namespace edgeinfer::agent
