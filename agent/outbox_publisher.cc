#include "agent/outbox_publisher.h"

#include <algorithm>
#include <utility>

#include "agent/log.h"

namespace edgeinfer::agent {

OutboxOptions OutboxOptionsFor(const AgentConfig& config) {
  OutboxOptions o;
  o.state_dir = config.state_dir;
  o.max_bytes = config.outbox.max_bytes;
  o.max_age_ms = config.outbox.max_age_s * 1000;
  o.memory_fallback_bytes = config.outbox.memory_fallback_bytes;
  const std::string& sync = config.outbox.synchronous;
  o.synchronous = sync == "full"  ? SyncLevel::kFull
                  : sync == "off" ? SyncLevel::kOff
                                  : SyncLevel::kNormal;
  return o;
}

// PUBACKs wake the loop in groups of a quarter of the window (at most 64): one
// Ack and one Claim per group instead of per message, which is what lets the replay keep up
// with the broker. A group smaller than that waits at most the loop's 50 ms tick.
OutboxPublisher::OutboxPublisher(std::unique_ptr<Outbox> outbox, MqttLink* sink, int qos,
                                 size_t max_in_flight)
    : outbox_(std::move(outbox)),
      sink_(sink),
      qos_(qos),
      max_in_flight_(max_in_flight),
      ack_wake_(std::clamp<size_t>(max_in_flight / 4, 1, 64)) {}

OutboxPublisher::~OutboxPublisher() { Stop(); }

void OutboxPublisher::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void OutboxPublisher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

namespace {
constexpr size_t kAppendGroup = 32;
constexpr auto kAppendGroupWait = std::chrono::microseconds(1000);
}  // namespace

void OutboxPublisher::PublishResult(const std::string& pipeline, uint64_t sequence,
                                    const std::string& topic, std::string payload) {
  OutboxMessage m{pipeline, topic,    std::move(payload),
                  qos_,     UnixMs(), static_cast<int64_t>(sequence)};
  std::lock_guard<std::mutex> lock(mu_);
  pending_.push_back(std::move(m));
  ++handed_over_;
  if ((pending_.size() == 1 && !bursts_) || pending_.size() == kAppendGroup) cv_.notify_one();
}

// A batch's results are all here: store and send them now rather than after the group wait
// (which cost up to a millisecond of latency per result, and a timed wake-up per batch).
void OutboxPublisher::EndOfBurst() {
  std::lock_guard<std::mutex> lock(mu_);
  bursts_ = true;
  if (pending_.empty()) return;
  flush_ = true;
  cv_.notify_one();
}

void OutboxPublisher::OnDelivered(uint64_t tag, bool ok) {
  if (tag == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (ok) {
    acks_.push_back(static_cast<int64_t>(tag - 1));
    if (acks_.size() < ack_wake_) return;
  } else {
    release_ = true;
  }
  cv_.notify_one();
}

bool OutboxPublisher::Drain(std::chrono::steady_clock::duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    uint64_t handed_over = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      handed_over = handed_over_;
    }
    if (stored_.load() == handed_over && outbox_->Stats().depth_rows == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void OutboxPublisher::SetConnected(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  connected_ = on;
  release_ = true;  // whatever was in flight will not be acknowledged on this connection
  cv_.notify_one();
}

void OutboxPublisher::Loop() {
  std::vector<OutboxMessage> batch;
  std::vector<int64_t> acks;
  bool release = false, connected = false;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(50), [&] {
        return stop_ || !pending_.empty() || acks_.size() >= ack_wake_ || release_;
      });
      // Results come in bursts (a batch of inferences): give the rest of the burst up to a
      // millisecond to join (or until EndOfBurst says it is complete), so that one transaction
      // and one wake-up carry it.
      if (!pending_.empty() && pending_.size() < kAppendGroup)
        cv_.wait_for(lock, kAppendGroupWait,
                     [&] { return stop_ || flush_ || pending_.size() >= kAppendGroup; });
      if (stop_) return;
      flush_ = false;
      batch.swap(pending_);
      acks.swap(acks_);
      release = std::exchange(release_, false);
      connected = connected_;
    }
    Store(&batch);
    (void)outbox_->Ack(acks);  // also flushes batched deletes when due; errors are retried
    delivered_.fetch_add(acks.size(), std::memory_order_relaxed);
    acks.clear();
    if (release) outbox_->ReleaseInFlight();
    if (connected) Send();
  }
}

void OutboxPublisher::Store(std::vector<OutboxMessage>* batch) {
  if (batch->empty()) return;
  auto report = outbox_->Append(*batch);
  if (!report.ok())
    Log("error", "outbox: " + report.status().ToString());
  else if (report->dropped_rows > 0)
    Log("warning", "outbox full: dropped the " + std::to_string(report->dropped_rows) +
                       " oldest undelivered results");
  stored_.fetch_add(batch->size());  // stored, dropped for room, or refused: not pending
  batch->clear();
  // Memory mode is loud once each way; the database is retried inside the outbox.
  if (report.ok() && report->in_memory != in_memory_) {
    in_memory_ = report->in_memory;
    if (in_memory_)
      Log("error", "outbox: the database cannot be written (" + outbox_->Stats().last_error +
                       "); results are kept in memory, bounded, until it can");
    else
      Log("info", "outbox: the database is writable again; results are stored on disk");
  }
}

void OutboxPublisher::Send() {
  claimed_.clear();
  Status st = outbox_->Claim(max_in_flight_, &claimed_);
  if (!st.ok()) Log("error", "outbox: " + st.ToString());
  for (const ClaimedMessage& c : claimed_) {
    const OutboxMessage& m = c.message;
    if (sink_->Publish(m.topic, m.payload, m.qos, false, static_cast<uint64_t>(c.id) + 1)) continue;
    // Not connected (the link's handler says so next) or refused: try again shortly.
    outbox_->ReleaseInFlight();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return;
  }
}

}  // namespace edgeinfer::agent
