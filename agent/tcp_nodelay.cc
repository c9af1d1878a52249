#include "agent/tcp_nodelay.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdlib>

namespace edgeinfer::agent {

namespace {

bool IsConnectedTcp(int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) return false;
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof(peer);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) return false;
  return peer.ss_family == AF_INET || peer.ss_family == AF_INET6;
}

bool HasNoDelay(int fd) {
  int on = 0;
  socklen_t len = sizeof(on);
  return ::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) == 0 && on != 0;
}

}  // namespace

int SetNoDelayOnConnectedTcpSockets() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  int changed = 0;
  const int dir_fd = ::dirfd(dir);
  while (const dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd <= 2 || fd == dir_fd) continue;
    if (!IsConnectedTcp(static_cast<int>(fd)) || HasNoDelay(static_cast<int>(fd))) continue;
    const int on = 1;
    if (::setsockopt(static_cast<int>(fd), IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == 0)
      ++changed;
  }
  ::closedir(dir);
  return changed;
}

}  // namespace edgeinfer::agent
