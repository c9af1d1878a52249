#include "agent/router.h"

#include <mutex>

namespace edgeinfer::agent {

void Router::SetPipelines(std::vector<std::shared_ptr<Pipeline>> pipelines) {
  std::unique_lock lock(mu_);
  pipelines_ = std::move(pipelines);
}

void Router::Close() {
  std::unique_lock lock(mu_);
  closed_ = true;
}

void Router::OnMessage(std::string_view topic, std::string_view payload) {
  std::shared_lock lock(mu_);
  if (closed_) return;
  bool matched = false;
  for (const auto& p : pipelines_) {
    if (!p->Matches(topic)) continue;
    p->OnMessage(topic, payload);
    matched = true;
  }
  if (matched) return;
  unknown_.fetch_add(1, std::memory_order_relaxed);
  errors_->Reject("", RejectReason::kUnknownTopic, topic, "no pipeline's topics match it");
}

}  // namespace edgeinfer::agent
