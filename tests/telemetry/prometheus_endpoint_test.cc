#include "telemetry/prometheus_endpoint.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace edgeinfer {
namespace {

// A connected loopback client socket; closed on destruction.
class Client {
 public:
  explicit Client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { close(fd_); }
  bool connected() const { return connected_; }

  void Send(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

  // Everything until the server closes (or 5 s pass, or the connection is reset).
  std::string ReadAll() {
    std::string out;
    char buf[4096];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string Get(int port, const std::string& request) {
  Client c(port);
  EXPECT_TRUE(c.connected());
  c.Send(request);
  return c.ReadAll();
}

std::unique_ptr<PrometheusEndpoint> StartOrDie(PrometheusEndpointOptions o = {}) {
  auto ep = PrometheusEndpoint::Start(o, [] { return std::string("edgeinfer_up 1\n"); });
  EXPECT_TRUE(ep.ok()) << ep.status().ToString();
  return ep.ok() ? std::move(ep).value() : nullptr;
}

TEST(PrometheusEndpointTest, ServesMetrics) {
  auto ep = StartOrDie();
  ASSERT_TRUE(ep);
  EXPECT_GT(ep->port(), 0);
  std::string reply = Get(ep->port(), "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(reply.find("Content-Length: 15\r\n"), std::string::npos);
  EXPECT_EQ(reply.substr(reply.find("\r\n\r\n") + 4), "edgeinfer_up 1\n");
  // A second request on a fresh connection works too (one client at a time, in turn).
  EXPECT_EQ(Get(ep->port(), "GET /metrics?x=1 HTTP/1.1\n\n").rfind("HTTP/1.0 200", 0), 0u);
  EXPECT_EQ(ep->requests(), 2u);
  EXPECT_EQ(ep->bad_requests(), 0u);
}

TEST(PrometheusEndpointTest, OtherPathsAndMethods) {
  auto ep = StartOrDie();
  ASSERT_TRUE(ep);
  EXPECT_EQ(Get(ep->port(), "GET / HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 404 Not Found\r\n", 0), 0u);
  EXPECT_EQ(Get(ep->port(), "GET /metricsx HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 404", 0), 0u);
  EXPECT_EQ(Get(ep->port(), "POST /metrics HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 405", 0), 0u);
  std::string head = Get(ep->port(), "HEAD /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.0 200", 0), 0u);
  EXPECT_EQ(head.find("edgeinfer_up"), std::string::npos);
  EXPECT_EQ(ep->bad_requests(), 3u);
}

TEST(PrometheusEndpointTest, OversizeRequestIsRefused) {
  PrometheusEndpointOptions o;
  o.max_request_bytes = 1024;
  auto ep = StartOrDie(o);
  ASSERT_TRUE(ep);
  std::string request = "GET /metrics HTTP/1.0\r\nX-Junk: " + std::string(8000, 'a') + "\r\n\r\n";
  EXPECT_EQ(Get(ep->port(), request).rfind("HTTP/1.0 431", 0), 0u);
  // Still serving afterwards.
  EXPECT_EQ(Get(ep->port(), "GET /metrics HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 200", 0), 0u);
}

TEST(PrometheusEndpointTest, SlowClientTimesOutAndOthersAreServedAfter) {
  PrometheusEndpointOptions o;
  o.io_timeout_ms = 200;
  auto ep = StartOrDie(o);
  ASSERT_TRUE(ep);
  Client slow(ep->port());
  slow.Send("GET /met");
  EXPECT_EQ(slow.ReadAll().rfind("HTTP/1.0 408", 0), 0u);
  EXPECT_EQ(Get(ep->port(), "GET /metrics HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 200", 0), 0u);
}

TEST(PrometheusEndpointTest, StopWhileAClientIsConnected) {
  PrometheusEndpointOptions o;
  o.io_timeout_ms = 60000;  // without the wake-up, Stop would wait this long
  auto ep = StartOrDie(o);
  ASSERT_TRUE(ep);
  Client idle(ep->port());
  ASSERT_TRUE(idle.connected());
  idle.Send("GET /metr");  // the server is now inside Serve, waiting for the rest
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto start = std::chrono::steady_clock::now();
  ep->Stop();
  double waited_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(waited_s, 30.0);      // liveness bound, far below the 60 s I/O timeout
  EXPECT_EQ(idle.ReadAll(), "");  // closed without a reply
  Client late(ep->port());
  EXPECT_FALSE(late.connected());
  ep->Stop();  // idempotent
}

TEST(PrometheusEndpointTest, BindErrors) {
  auto first = StartOrDie();
  ASSERT_TRUE(first);
  PrometheusEndpointOptions o;
  o.port = first->port();
  auto second = PrometheusEndpoint::Start(o, [] { return std::string(); });
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(std::to_string(first->port())), std::string::npos);
  o.port = 0;
  o.bind_address = "localhost:x";
  EXPECT_EQ(PrometheusEndpoint::Start(o, [] { return std::string(); }).status().code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace edgeinfer
