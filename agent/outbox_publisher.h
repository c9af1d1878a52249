// Results: the SQLite outbox, then the sink link at QoS 1.
//
// Every result goes into the outbox first; one thread moves rows to the sink with at most
// `max_in_flight` awaiting PUBACK, and acks (deletes) them as PUBACKs arrive. A lost connection
// or failed publish returns every in-flight row to pending: after the reconnect the oldest
// undelivered row of each pipeline goes first (at least once, in order per pipeline).
// Publish tags are outbox ids + 1 (tag 0: publishes that are not results).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/config.h"
#include "agent/mqtt_link.h"
#include "agent/pipeline.h"
#include "storage/outbox.h"

namespace edgeinfer::agent {

// The outbox settings of the agent's configuration ([outbox], device.state_dir).
OutboxOptions OutboxOptionsFor(const AgentConfig& config);

class OutboxPublisher final : public ResultPublisher,
                              public MqttDeliveryHandler,
                              public MqttConnectionHandler {
 public:
  OutboxPublisher(std::unique_ptr<Outbox> outbox, MqttLink* sink, int qos,
                  size_t max_in_flight = 256);
  ~OutboxPublisher() override;

  void Start();
  void Stop();

  void PublishResult(const std::string& pipeline, uint64_t sequence, const std::string& topic,
                     std::string payload) override;
  void EndOfBurst() override;
  void OnDelivered(uint64_t tag, bool ok) override;
  void OnConnected() override { SetConnected(true); }
  void OnDisconnected() override { SetConnected(false); }

  // Waits until every result handed over so far is acknowledged by the broker.
  bool Drain(std::chrono::steady_clock::duration timeout);
  OutboxStats stats() const { return outbox_->Stats(); }
  // SQLite's page cache back to the heap (memory watchdog); the outbox serialises it.
  int64_t ReleaseMemory() { return outbox_->ReleaseMemory(); }
  uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }

 private:
  void SetConnected(bool on);
  void Loop();
  void Store(std::vector<OutboxMessage>* batch);
  void Send();

  std::unique_ptr<Outbox> outbox_;
  MqttLink* sink_;
  const int qos_;
  const size_t max_in_flight_;
  const size_t ack_wake_;  // PUBACKs that wake the loop together
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<OutboxMessage> pending_;
  std::vector<int64_t> acks_;
  uint64_t handed_over_ = 0;         // results received by PublishResult
  std::atomic<uint64_t> stored_{0};  // of them, through Append
  bool connected_ = false, release_ = false, stop_ = false;
  bool flush_ = false;   // EndOfBurst: store what is pending without waiting for more
  bool bursts_ = false;  // the producer calls EndOfBurst (so a first result need not wake)
  std::vector<ClaimedMessage> claimed_;  // the loop thread's
  bool in_memory_ = false;               // the loop thread's: the last Append went to memory
  std::atomic<uint64_t> delivered_{0};
  std::thread thread_;
};

}  // namespace edgeinfer::agent
