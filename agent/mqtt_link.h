// One MQTT connection (Paho MQTT C++ async client): the *source* link (sensor subscriptions) or
// the *sink* link (the uplink: results, telemetry, status, remote config).
//
// Designed around the Debian Paho 1.2.0 pitfalls: no start_consuming() queue (unbounded, and it
// deadlocks with several consumers) — messages arrive through a callback on Paho's thread; no
// waiting on a token inside a callback; Paho's own offline buffer is off — a publish while
// disconnected fails at once and the caller (the outbox) keeps the message.
//
// Thread-safety: all methods may be called from any thread. Handlers run on Paho's callback
// thread and must not block.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "common/status.h"

namespace edgeinfer::agent {

struct MqttMessageHandler {
  virtual ~MqttMessageHandler() = default;
  virtual void OnMessage(std::string_view topic, std::string_view payload) = 0;
};

struct MqttDeliveryHandler {
  virtual ~MqttDeliveryHandler() = default;
  // The publish tagged `tag` completed: PUBACK received (QoS 1) / sent (QoS 0), or failed.
  virtual void OnDelivered(uint64_t tag, bool ok) = 0;
};

struct MqttConnectionHandler {
  virtual ~MqttConnectionHandler() = default;
  virtual void OnConnected() = 0;     // after every (re)connect, subscriptions renewed
  virtual void OnDisconnected() = 0;  // connection lost; in-flight publishes will not complete
};

struct LastWill {
  std::string topic;
  std::string payload;
  int qos = 1;
  bool retained = true;
};

struct LinkStats {
  bool connected = false;
  uint64_t connects = 0;
  uint64_t reconnects = 0;
  uint64_t messages_in = 0;
  uint64_t published = 0;
  uint64_t publish_failures = 0;
};

class MqttLink {
 public:
  // `role` is "source" or "sink" (for logs and the default client id).
  static Result<std::unique_ptr<MqttLink>> Create(const LinkConfig& config,
                                                  const std::string& client_id,
                                                  const std::string& role);
  ~MqttLink();

  void SetMessageHandler(MqttMessageHandler* h);
  void SetDeliveryHandler(MqttDeliveryHandler* h);
  void SetConnectionHandler(MqttConnectionHandler* h);
  void SetLastWill(const LastWill& will);                // before Start
  // A retained message published after every connect (the birth message).
  void SetBirthMessage(const std::string& topic, const std::string& payload);
  // Remembered and renewed after every reconnect.
  void AddSubscription(const std::string& filter, int qos);

  // Starts connecting in the background (automatic reconnect with backoff); returns at once.
  Status Start();
  // Publishes now; false (and no delivery callback) when not connected or Paho refuses.
  bool Publish(std::string_view topic, std::string_view payload, int qos, bool retained,
               uint64_t tag);
  // Publishes `offline_payload` retained on the will topic (if set), disconnects cleanly
  // within `timeout_ms` and stops reconnecting.
  void Stop(const std::string& offline_payload, int timeout_ms);

  bool connected() const;
  LinkStats stats() const;

 private:
  MqttLink() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeinfer::agent
