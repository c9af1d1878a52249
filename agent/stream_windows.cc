#include "agent/stream_windows.h"

#include <algorithm>
#include <cstring>

namespace edgeinfer::agent {

StreamWindows::StreamWindows(int channels, int window, int hop, int max_streams,
                             WindowLayout layout)
    : channels_(channels),
      window_(window),
      hop_(hop),
      max_streams_(max_streams),
      layout_(layout),
      out_(static_cast<size_t>(channels) * window) {}

int StreamWindows::Find(std::string_view key) {
  auto it = index_.find(key);  // heterogeneous: no std::string made for the lookup
  if (it != index_.end()) {
    Touch(it->second);
    return it->second;
  }
  if (slots_.size() >= static_cast<size_t>(max_streams_)) return Recycle(key);
  // The only allocations of this class: a new stream's key, ring and map node.
  const int slot = static_cast<int>(slots_.size());
  Stream& s = slots_.emplace_back();
  s.key.assign(key);
  s.ring.assign(out_.size(), 0.f);
  s.until_next = window_;
  index_.emplace(s.key, slot);
  Touch(slot);
  return slot;
}

// Evicts the least recently used stream and gives its storage (ring, key string, map node)
// to `key`, so churn past max_streams allocates nothing.
int StreamWindows::Recycle(std::string_view key) {
  const int slot = tail_;
  Stream& s = slots_[slot];
  ++evictions_;
  info_.evicted = true;
  info_.evicted_key.assign(s.key);
  info_.evicted_steps = s.received;
  auto node = index_.extract(s.key);
  s.key.assign(key);
  node.key().assign(key);
  index_.insert(std::move(node));
  s.pos = 0;
  s.received = 0;
  s.until_next = window_;
  Touch(slot);
  return slot;
}

void StreamWindows::Unlink(int slot) {
  Stream& s = slots_[slot];
  if (s.prev >= 0) slots_[s.prev].next = s.next;
  if (s.next >= 0) slots_[s.next].prev = s.prev;
  if (head_ == slot) head_ = s.next;
  if (tail_ == slot) tail_ = s.prev;
  s.prev = s.next = -1;
}

void StreamWindows::Touch(int slot) {
  if (head_ == slot) return;
  Unlink(slot);
  Stream& s = slots_[slot];
  s.next = head_;
  if (head_ >= 0) slots_[head_].prev = slot;
  head_ = slot;
  if (tail_ < 0) tail_ = slot;
}

int StreamWindows::Fill(Stream& s, const float* values, int steps) {
  const int n = std::min(steps, s.until_next);
  const size_t c = static_cast<size_t>(channels_);
  // In chunks up to the ring's end; with hop > window a chunk may lap the ring, and only the
  // newest `window` steps survive, which is what the next window needs.
  for (int left = n; left > 0;) {
    const int chunk = std::min(left, window_ - s.pos);
    std::memcpy(&s.ring[s.pos * c], values, chunk * c * sizeof(float));
    values += chunk * c;
    s.pos = (s.pos + chunk) % window_;
    left -= chunk;
  }
  s.until_next -= n;
  s.received += n;
  return n;
}

// The ring is full whenever a window completes and its oldest step is at `pos`.
std::span<float> StreamWindows::Gather(const Stream& s) {
  const size_t c = static_cast<size_t>(channels_);
  const size_t w = static_cast<size_t>(window_);
  const size_t pos = static_cast<size_t>(s.pos);
  const float* ring = s.ring.data();
  if (layout_ == WindowLayout::kTimeMajor) {
    std::memcpy(out_.data(), ring + pos * c, (w - pos) * c * sizeof(float));
    std::memcpy(out_.data() + (w - pos) * c, ring, pos * c * sizeof(float));
    return out_;
  }
  // Channel-major: out[ch][t] = ring[(pos + t) % w][ch], in two runs to avoid the modulo.
  for (size_t ch = 0; ch < c; ++ch) {
    float* row = out_.data() + ch * w;
    const float* src = ring + pos * c + ch;
    for (size_t t = 0; t < w - pos; ++t) row[t] = src[t * c];
    src = ring + ch;
    for (size_t t = 0; t < pos; ++t) row[w - pos + t] = src[t * c];
  }
  return out_;
}

}  // namespace edgeinfer::agent
