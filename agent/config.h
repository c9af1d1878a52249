// The agent's configuration: the TOML file (toml++), validated into plain structs.
//
// The contract with fleet tools is the key names (agent/edgeinfer-agent.example.toml documents
// every key). Unknown keys and out-of-range values are errors that name the key
// ("pipeline[0].batch.max_size: 0 is outside 1..1024").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace edgeinfer::agent {

struct TlsConfig {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool verify = true;
};

struct LinkConfig {
  std::string uri = "tcp://127.0.0.1:1883";
  std::string client_id;  // default: "edgeinfer-{device}-{source|sink}"
  int mqtt_version = 4;   // 4 = MQTT 3.1.1, 5 = MQTT 5
  int keepalive_s = 30;
  std::string username;
  std::string password_file;  // the password is read from this file, never from the config
  std::optional<TlsConfig> tls;
  int reconnect_min_ms = 500;
  int reconnect_max_ms = 30000;
  int qos = 1;  // subscriptions (source) or publications (sink)
};

struct InputConfig {
  std::string format = "json";  // "json" | "f32le"
  // JSON pointers: one to an array (nested arrays flatten row-major) or a number; several
  // (one per channel, e.g. "/x", "/y", "/z") to equally long arrays or numbers, interleaved.
  std::vector<std::string> values = {"/values"};
  std::string timestamp;   // JSON pointer, optional
  std::string stream_key;  // JSON pointer; empty: the topic is the stream key
  int window = 0;          // samples per model input; 0: one message is one input
  int hop = 0;             // samples between windows; 0: = window
  int max_payload_bytes = 1 << 20;
};

struct BatchConfig {
  int max_size = 16;
  int timeout_ms = 10;
  int workers = 1;
  int queue_capacity = 1024;  // inputs; the oldest are dropped (counted) past it
};

struct PostprocessConfig {
  bool softmax = false;
  int top_k = 0;           // 0: none
  double threshold = 0.0;  // top-k entries below it are left out
};

struct PipelineConfig {
  std::string name;
  std::string model;                // .eim, or .onnx (converted at load, cached in the state dir)
  std::string precision = "fp32";   // for .onnx models
  std::vector<std::string> topics;  // filters; wildcards and $share/GROUP/ allowed
  InputConfig input;
  BatchConfig batch;
  PostprocessConfig postprocess;
  std::string result_topic = "{prefix}/{device}/results/{pipeline}";
  int max_streams = 1024;  // streams with open windows; least recently used evicted
};

struct TelemetryConfig {
  int interval_s = 10;      // 0: no telemetry messages
  int prometheus_port = 0;  // Prometheus text on 127.0.0.1:PORT/metrics; 0: off
};

// The memory watchdog (telemetry/memory_watchdog.h): fractions of the tightest memory limit
// (cgroup v2/v1, else the machine's memory).
struct MemoryConfig {
  bool watchdog = true;
  double step_down = 0.70;  // halve every pipeline's maximum batch, re-plan, trim caches
  double critical = 0.85;   // batch 1, shed the oldest queued inputs
  double recover = 0.60;    // below it for recover_hold_s: one step back up
  int recover_hold_s = 30;
  double psi_full_step_down = 10.0;  // PSI full avg10 percent that steps down early; 0: off
  int poll_ms = 1000;
};

// The result outbox (state_dir/outbox.db); see docs/outbox.md. Applied at start only.
struct OutboxConfig {
  int64_t max_bytes = int64_t{64} << 20;  // stored bytes; past it the oldest results are dropped
  int64_t max_age_s = 0;                  // older results are dropped; 0: no age bound
  std::string synchronous = "normal";     // "off" | "normal" | "full" (SQLite PRAGMA)
  int64_t memory_fallback_bytes = int64_t{8} << 20;  // while the database cannot be written
  int max_in_flight = 256;  // results published and awaiting PUBACK at once
  bool operator==(const OutboxConfig&) const = default;
};

struct AgentConfig {
  std::string device_id;  // default: /etc/machine-id, else the hostname
  std::string topic_prefix = "edgeinfer";
  std::string state_dir = "/var/lib/edgeinfer";
  LinkConfig source;
  LinkConfig sink;  // the same as source when [sink] is absent
  bool sink_configured = false;
  std::vector<PipelineConfig> pipelines;
  TelemetryConfig telemetry;
  MemoryConfig memory;
  OutboxConfig outbox;
  int errors_per_minute = 60;  // rate limit of the errors topic
  std::string config_path;     // where it was read from (relative model paths resolve here)
};

// Parses and validates TOML text. `base_dir` resolves relative paths.
Result<AgentConfig> ParseConfig(const std::string& toml_text, const std::string& base_dir);
Result<AgentConfig> LoadConfigFile(const std::string& path);
// The effective configuration as TOML (for --check-config and config/reported).
std::string ConfigToToml(const AgentConfig& config);

// "{prefix}/{device}/results/{pipeline}" with the placeholders filled in.
std::string ExpandTopic(const std::string& pattern, const AgentConfig& config,
                        const std::string& pipeline);

}  // namespace edgeinfer::agent
