// StreamWindows: per stream key, a ring of the last `window` time steps, cut into model inputs
// every `hop` steps.
//
// Layout. A time step is `channels` values. Messages carry k >= 1 whole time steps,
// interleaved as received (x,y,z,x,y,z,...). Window n covers steps [n*hop, n*hop + window) of
// its stream and is emitted when its last step arrives, as either
//   channel-major [channels, window] (a model input of sample shape [C, W]: the window is
//                                     transposed), or
//   time-major    [window, channels] (sample shape [W, C]: copied as received).
// hop < window overlaps windows; hop > window skips the steps between them.
//
// Bounds. At most `max_streams` streams; a new stream beyond that evicts the least recently
// appended-to one (its partial window is lost; the caller reports it). A stream's ring is
// allocated when the stream is created; an evicted stream's ring (and key storage) is reused
// by the stream that replaces it, so a flood of new keys allocates nothing past max_streams
// except the map node, which is recycled too.
//
// Thread safety: none (the pipeline serializes intake). Not copyable.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace edgeinfer::agent {

enum class WindowLayout { kChannelMajor, kTimeMajor };

class StreamWindows {
 public:
  // Requires channels >= 1, window >= 1, hop >= 1, max_streams >= 1 (checked by the caller).
  StreamWindows(int channels, int window, int hop, int max_streams, WindowLayout layout);
  StreamWindows(const StreamWindows&) = delete;
  StreamWindows& operator=(const StreamWindows&) = delete;

  struct AppendInfo {
    bool evicted = false;     // a stream was evicted to make room for `key`
    std::string evicted_key;  // its key (valid until the next Append)
    int evicted_steps = 0;    // steps it held towards its next window
    int windows = 0;          // windows emitted by this call
  };

  // Appends values.size() / channels steps (values.size() must be a positive multiple of
  // channels) to the stream `key`, calling emit(std::span<float> window) for each completed
  // window in order. The span is this object's scratch, valid only during the call; emit may
  // modify it (the pipeline normalizes in place). Returns `info` (reused: no allocation).
  template <class Emit>
  const AppendInfo& Append(std::string_view key, std::span<const float> values, Emit&& emit);

  size_t streams() const { return index_.size(); }
  uint64_t evictions() const { return evictions_; }
  int channels() const { return channels_; }
  int window() const { return window_; }
  size_t sample_floats() const { return static_cast<size_t>(channels_) * window_; }

 private:
  struct Stream {
    std::string key;
    std::vector<float> ring;   // window_ steps, time-major
    int pos = 0;               // next step to write
    int until_next = 0;        // steps still needed before the next window
    int received = 0;          // steps since the last window (for eviction reports)
    int prev = -1, next = -1;  // LRU list, most recent at head_
  };

  int Find(std::string_view key);  // the stream's slot, created (or recycled) when absent
  int Recycle(std::string_view key);
  void Touch(int slot);
  void Unlink(int slot);
  // Copies `steps` steps into the ring; returns steps consumed before a window completed.
  int Fill(Stream& s, const float* values, int steps);
  std::span<float> Gather(const Stream& s);

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  int channels_, window_, hop_, max_streams_;
  WindowLayout layout_;
  std::vector<Stream> slots_;
  std::unordered_map<std::string, int, Hash, std::equal_to<>> index_;
  int head_ = -1, tail_ = -1;  // most / least recently used
  uint64_t evictions_ = 0;
  std::vector<float> out_;  // one emitted window
  AppendInfo info_;
};

template <class Emit>
const StreamWindows::AppendInfo& StreamWindows::Append(std::string_view key,
                                                       std::span<const float> values, Emit&& emit) {
  info_.evicted = false;
  info_.windows = 0;
  Stream& s = slots_[Find(key)];
  int steps = static_cast<int>(values.size() / channels_);
  const float* p = values.data();
  while (steps > 0) {
    const int used = Fill(s, p, steps);
    p += static_cast<size_t>(used) * channels_;
    steps -= used;
    if (s.until_next > 0) break;
    s.until_next = hop_;
    s.received = 0;
    ++info_.windows;
    emit(Gather(s));
  }
  return info_;
}

}  // namespace edgeinfer::agent
