#include "telemetry/prometheus_endpoint.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace edgeinfer {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Response(const char* status, const std::string& content_type, const std::string& body) {
  return std::string("HTTP/1.0 ") + status + "\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

std::string Plain(const char* status, const char* text) {
  return Response(status, "text/plain; charset=utf-8", std::string(text) + "\n");
}

}  // namespace

Result<std::unique_ptr<PrometheusEndpoint>> PrometheusEndpoint::Start(
    PrometheusEndpointOptions options, Render render) {
  if (options.port < 0 || options.port > 65535) {
    return Status::InvalidArgument("prometheus endpoint: port out of range");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(options.port));
  if (inet_pton(AF_INET, options.bind_address.c_str(), &addr.sin_addr) != 1) {
    return Status::InvalidArgument("prometheus endpoint: bad IPv4 address '" +
                                   options.bind_address + "'");
  }
  const std::string where = options.bind_address + ":" + std::to_string(options.port);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError("prometheus endpoint: socket", errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 8) != 0) {
    int err = errno;
    close(fd);
    return Status::IOError("prometheus endpoint: bind " + where, err);
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) {
    int err = errno;
    close(fd);
    return Status::IOError("prometheus endpoint: eventfd", err);
  }
  std::unique_ptr<PrometheusEndpoint> ep(new PrometheusEndpoint(
      std::move(options), std::move(render), fd, wake, ntohs(addr.sin_port)));
  ep->thread_ = std::thread([p = ep.get()] { p->Run(); });
  return ep;
}

PrometheusEndpoint::PrometheusEndpoint(PrometheusEndpointOptions options, Render render,
                                       int listen_fd, int wake_fd, int port)
    : options_(std::move(options)),
      render_(std::move(render)),
      listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      port_(port) {}

PrometheusEndpoint::~PrometheusEndpoint() { Stop(); }

void PrometheusEndpoint::Stop() {
  std::lock_guard lock(stop_mu_);
  stopping_.store(true);
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

bool PrometheusEndpoint::WaitFor(int fd, short events, int64_t deadline_ms) {
  while (!stopping_.load()) {
    int64_t left = deadline_ms - NowMs();
    if (left <= 0) return false;
    pollfd fds[2] = {{fd, events, 0}, {wake_fd_, POLLIN, 0}};
    int n = poll(fds, 2, static_cast<int>(left));
    if (n < 0 && errno != EINTR) return false;
    if (n <= 0) continue;
    if (fds[1].revents != 0) return false;
    if (fds[0].revents & (events | POLLHUP | POLLERR)) return true;
  }
  return false;
}

void PrometheusEndpoint::Run() {
  while (!stopping_.load()) {
    // The deadline only bounds one wait; the loop re-checks stopping_.
    if (!WaitFor(listen_fd_, POLLIN, NowMs() + 1000)) continue;
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0) continue;
    Serve(client);
    close(client);
  }
}

bool PrometheusEndpoint::SendAll(int fd, const std::string& data, int64_t deadline_ms) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFor(fd, POLLOUT, deadline_ms)) return false;
    } else {
      return false;
    }
  }
  return true;
}

void PrometheusEndpoint::Serve(int fd) {
  const int64_t deadline = NowMs() + options_.io_timeout_ms;
  std::string head;
  char buf[1024];
  bool complete = false;
  while (!complete && head.size() <= options_.max_request_bytes) {
    if (!WaitFor(fd, POLLIN, deadline)) break;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
    // HTTP/1.0 clients may end the head with LF LF; accept both.
    complete = head.find("\r\n\r\n") != std::string::npos || head.find("\n\n") != std::string::npos;
  }
  if (stopping_.load()) return;
  requests_.fetch_add(1, std::memory_order_relaxed);
  std::string reply;
  if (head.size() > options_.max_request_bytes) {
    reply = Plain("431 Request Header Fields Too Large", "request too large");
  } else if (!complete) {
    if (head.empty()) return;  // connected and went away, or said nothing: no reply needed
    reply = Plain("408 Request Timeout", "incomplete request");
  } else {
    std::string line = head.substr(0, head.find_first_of("\r\n"));
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
    std::string method = line.substr(0, sp1);
    std::string target = sp1 == std::string::npos ? "" : line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (target.find('?') != std::string::npos) target.resize(target.find('?'));
    if (method != "GET" && method != "HEAD") {
      reply = Plain("405 Method Not Allowed", "only GET");
    } else if (target != "/metrics") {
      reply = Plain("404 Not Found", "not found; try /metrics");
    } else {
      reply = Response("200 OK", "text/plain; version=0.0.4; charset=utf-8", render_());
      if (method == "HEAD") reply.resize(reply.find("\r\n\r\n") + 4);
    }
  }
  if (reply.compare(9, 3, "200") != 0) bad_requests_.fetch_add(1, std::memory_order_relaxed);
  if (!SendAll(fd, reply, deadline + options_.io_timeout_ms)) return;
  shutdown(fd, SHUT_WR);
  // Read what the client still sends (briefly, boundedly) so that closing does not reset the
  // connection before it has read the reply.
  const int64_t drain_deadline = NowMs() + 200;
  for (int i = 0; i < 64 && WaitFor(fd, POLLIN, drain_deadline); ++i) {
    if (recv(fd, buf, sizeof buf, 0) <= 0) break;
  }
}

}  // namespace edgeinfer
