#include "agent/error_publisher.h"

#include <algorithm>
#include <utility>

#include "agent/log.h"

namespace edgeinfer::agent {

using Json = nlohmann::json;

ErrorPublisher::ErrorPublisher(const AgentConfig& c)
    : device_(c.device_id), topic_(c.topic_prefix + "/" + c.device_id + "/errors") {
  SetRate(c.errors_per_minute);
}

void ErrorPublisher::SetRate(int per_minute) {
  std::lock_guard<std::mutex> lock(mu_);
  per_minute_ = per_minute;
  tokens_ = std::min<double>(tokens_, Burst());
}

void ErrorPublisher::Reject(const std::string& pipeline, RejectReason reason,
                            std::string_view topic, const std::string& detail) {
  counts_[static_cast<int>(reason)].fetch_add(1, std::memory_order_relaxed);
  uint64_t suppressed = 0;
  if (!Allow(&suppressed)) return;
  Json j = {{"ts", UnixMs()},       {"device", device_},
            {"pipeline", pipeline}, {"reason", RejectReasonName(reason)},
            {"topic", topic},       {"detail", detail}};
  if (suppressed) j["suppressed_since_last"] = suppressed;
  // Topics and details may carry bytes from the sender: never let them break the JSON.
  const std::string payload = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  Log("warning", "rejected: " + payload);
  if (sink_) sink_->Publish(topic_, payload, 0, false, 0);
}

Json ErrorPublisher::Counts() const {
  Json j = Json::object();
  for (int r = 0; r < static_cast<int>(RejectReason::kCount); ++r)
    j[RejectReasonName(static_cast<RejectReason>(r))] = counts_[r].load();
  std::lock_guard<std::mutex> lock(mu_);
  j["suppressed"] = suppressed_total_;
  return j;
}

// Ten seconds' worth, at least 10 (at most the minute's): a burst of bad input shows up whole
// in the dead letters and then settles to the rate.
double ErrorPublisher::Burst() const {
  return std::min<double>(per_minute_, std::max(10.0, per_minute_ / 6.0));
}

bool ErrorPublisher::Allow(uint64_t* suppressed_before) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  tokens_ = std::min<double>(
      Burst(), tokens_ + std::chrono::duration<double>(now - last_).count() * per_minute_ / 60);
  last_ = now;
  if (tokens_ < 1) {
    ++suppressed_, ++suppressed_total_;
    return false;
  }
  tokens_ -= 1;
  *suppressed_before = std::exchange(suppressed_, 0);
  return true;
}

}  // namespace edgeinfer::agent
