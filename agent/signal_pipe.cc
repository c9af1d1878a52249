#include "agent/signal_pipe.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace edgeinfer::agent {
namespace {

int g_signal_pipe[2] = {-1, -1};

void OnSignal(int signo) {  // async-signal context: write(2) only
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(signo);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &b, 1);
  errno = saved;
}

}  // namespace

int InstallSignalPipe(std::initializer_list<int> signals) {
  if (g_signal_pipe[0] < 0 && pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int s : signals) {
    if (sigaction(s, &sa, nullptr) != 0) return -1;
  }
  return g_signal_pipe[0];
}

void WakeSignalPipe() {
  if (g_signal_pipe[1] < 0) return;
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &kWakeByte, 1);
}

}  // namespace edgeinfer::agent
