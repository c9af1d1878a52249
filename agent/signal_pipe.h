// Signals as bytes on a pipe: the handler only write()s the signal number, the main loop
// poll()s the read end and does the work outside the async-signal context. (Not a signalfd:
// that needs the signals blocked in every thread, and OpenBLAS starts its threads from a
// library constructor, before main can block anything.)
#pragma once

#include <initializer_list>

namespace edgeinfer::agent {

// Installs a handler for `signals` that writes each arrival's number (one byte) to a pipe, and
// returns the pipe's non-blocking read end (the same pipe on every call), or -1 with errno set.
int InstallSignalPipe(std::initializer_list<int> signals);

// The byte WakeSignalPipe writes: no signal has number 0.
constexpr unsigned char kWakeByte = 0;
// Wakes the reader of the signal pipe from another thread (writes kWakeByte); a no-op before
// InstallSignalPipe.
void WakeSignalPipe();

}  // namespace edgeinfer::agent
