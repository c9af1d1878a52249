// An optional HTTP/1.0 endpoint that serves the metrics in Prometheus text format.
//
// Bound to loopback only (127.0.0.1 by default): scrapers on the device or an SSH tunnel read
// it; nothing is exposed to the network. One small thread serves one client at a time with
// poll() timeouts everywhere, so a slow or silent client costs at most io_timeout_ms and never
// blocks the agent. GET /metrics -> 200 with the render callback's text; any other path -> 404;
// another method -> 405; a request head larger than max_request_bytes -> 431; a request not
// complete within io_timeout_ms -> 408. Every response closes the connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"

namespace edgeinfer {

struct PrometheusEndpointOptions {
  std::string bind_address = "127.0.0.1";  // an IPv4 address
  int port = 0;                            // 0 = any free port (see port())
  size_t max_request_bytes = 8192;
  int io_timeout_ms = 2000;
};

class PrometheusEndpoint {
 public:
  // Renders the body of GET /metrics; called on the endpoint's thread.
  using Render = std::function<std::string()>;

  // Binds, listens and starts the thread. IOError names the address when bind fails.
  static Result<std::unique_ptr<PrometheusEndpoint>> Start(PrometheusEndpointOptions options,
                                                           Render render);
  ~PrometheusEndpoint();  // Stop()
  PrometheusEndpoint(const PrometheusEndpoint&) = delete;
  PrometheusEndpoint& operator=(const PrometheusEndpoint&) = delete;

  int port() const { return port_; }
  // Closes the socket and joins the thread, also while a client is connected (within one poll
  // wake-up). Idempotent. Thread-safe.
  void Stop();

  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  uint64_t bad_requests() const { return bad_requests_.load(std::memory_order_relaxed); }

 private:
  PrometheusEndpoint(PrometheusEndpointOptions options, Render render, int listen_fd, int wake_fd,
                     int port);
  void Run();
  void Serve(int client_fd);
  // Waits for `events` on fd or the wake-up; false on stop, timeout or error.
  bool WaitFor(int fd, short events, int64_t deadline_ms);
  bool SendAll(int fd, const std::string& data, int64_t deadline_ms);

  const PrometheusEndpointOptions options_;
  const Render render_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() writes, poll() wakes
  int port_ = 0;
  std::mutex stop_mu_;  // Stop() from two threads joins once
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> bad_requests_{0};
  std::thread thread_;
};

}  // namespace edgeinfer
