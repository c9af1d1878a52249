// Test helpers for systemd's notify protocol: a NOTIFY_SOCKET datagram listener playing the part
// of systemd, and a scoped environment variable. Header-only, reusable by agent-level tests:
//
//   auto listener = NotifyListener::Create(NotifyListener::Kind::kPath);
//   ASSERT_TRUE(listener.ok()) << listener.status().ToString();
//   ScopedEnv env("NOTIFY_SOCKET", (*listener)->address());     // or pass it to a child's env
//   ... start the service ...
//   auto ready = (*listener)->WaitFor("READY", std::chrono::seconds(10));
//   ASSERT_TRUE(ready.has_value());
//   EXPECT_EQ(ready->sender_pid, child_pid);                     // what NotifyAccess=main checks
#pragma once

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace edgeinfer::systemd::testing {

// One datagram as systemd would see it.
struct NotifyMessage {
  std::string text;                           // raw, "READY=1\nSTATUS=..."
  std::map<std::string, std::string> fields;  // KEY -> value, per line
  pid_t sender_pid = 0;                       // from SCM_CREDENTIALS (0 if absent)
  std::chrono::steady_clock::time_point received;

  bool Has(const std::string& key) const { return fields.count(key) != 0; }
  std::string Get(const std::string& key) const {
    auto it = fields.find(key);
    return it == fields.end() ? std::string() : it->second;
  }
};

class NotifyListener {
 public:
  enum class Kind {
    kPath,      // a socket file in a fresh temporary directory
    kAbstract,  // Linux abstract namespace: NOTIFY_SOCKET="@name"
  };

  static Result<std::unique_ptr<NotifyListener>> Create(Kind kind) {
    std::unique_ptr<NotifyListener> l(new NotifyListener());
    l->fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (l->fd_ < 0) return Status::IOError("socket(AF_UNIX, SOCK_DGRAM)", errno);
    // Ask the kernel to attach the sender's pid to each datagram, as systemd does.
    int on = 1;
    if (::setsockopt(l->fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) {
      return Status::IOError("setsockopt(SO_PASSCRED)", errno);
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socklen_t len = 0;
    if (kind == Kind::kPath) {
      std::string dir = TempBase() + "/notify_XXXXXX";
      if (::mkdtemp(dir.data()) == nullptr) return Status::IOError("mkdtemp " + dir, errno);
      l->dir_ = dir;
      l->address_ = dir + "/notify.sock";
      if (l->address_.size() >= sizeof addr.sun_path) {
        return Status::InvalidArgument("socket path too long: " + l->address_);
      }
      std::memcpy(addr.sun_path, l->address_.c_str(), l->address_.size() + 1);
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + l->address_.size() + 1);
    } else {
      std::random_device rd;
      std::string name =
          "edgeinfer-test-notify-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
      l->address_ = "@" + name;
      // Abstract: sun_path[0] is NUL and the name is the following bytes, not NUL-terminated.
      std::memcpy(addr.sun_path + 1, name.data(), name.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    }
    if (::bind(l->fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      return Status::IOError("bind " + l->address_, errno);
    }
    return l;
  }

  ~NotifyListener() {
    if (fd_ >= 0) ::close(fd_);
    if (!dir_.empty()) {
      ::unlink((dir_ + "/notify.sock").c_str());
      ::rmdir(dir_.c_str());
    }
  }
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;

  // The value for NOTIFY_SOCKET.
  const std::string& address() const { return address_; }

  // The next datagram, or nothing after `timeout`.
  std::optional<NotifyMessage> Receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r <= 0) return std::nullopt;
    char buf[4096];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    iovec iov{buf, sizeof buf - 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    NotifyMessage m;
    m.received = std::chrono::steady_clock::now();
    m.text.assign(buf, static_cast<size_t>(n));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        m.sender_pid = cred.pid;
      }
    }
    size_t start = 0;
    while (start < m.text.size()) {
      size_t end = m.text.find('\n', start);
      if (end == std::string::npos) end = m.text.size();
      std::string line = m.text.substr(start, end - start);
      size_t eq = line.find('=');
      if (eq != std::string::npos) m.fields[line.substr(0, eq)] = line.substr(eq + 1);
      start = end + 1;
    }
    received_.push_back(m);
    return m;
  }

  // Receives until a datagram carries `key` (e.g. "READY"), or nothing after `timeout`.
  // Everything received on the way is kept in received().
  std::optional<NotifyMessage> WaitFor(const std::string& key, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (int i = 0; i < 100000; ++i) {  // bounded in count as well as in time
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      std::optional<NotifyMessage> m = Receive(left);
      if (!m) return std::nullopt;
      if (m->Has(key)) return m;
    }
    return std::nullopt;
  }

  // Receives for `duration` and returns what came (also appended to received()).
  std::vector<NotifyMessage> Collect(std::chrono::milliseconds duration) {
    std::vector<NotifyMessage> out;
    auto deadline = std::chrono::steady_clock::now() + duration;
    for (int i = 0; i < 100000; ++i) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      std::optional<NotifyMessage> m = Receive(left);
      if (m) out.push_back(*m);
    }
    return out;
  }

  const std::vector<NotifyMessage>& received() const { return received_; }

 private:
  NotifyListener() = default;

  static std::string TempBase() {
    const char* t = std::getenv("TMPDIR");
    return t != nullptr && t[0] != '\0' ? t : "/tmp";
  }

  int fd_ = -1;
  std::string dir_;
  std::string address_;
  std::vector<NotifyMessage> received_;
};

// Readable names for parameterized tests.
inline void PrintTo(NotifyListener::Kind kind, std::ostream* os) {
  *os << (kind == NotifyListener::Kind::kPath ? "path" : "abstract");
}

// Sets (or, with nullopt, unsets) an environment variable and restores it when destroyed.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace edgeinfer::systemd::testing
