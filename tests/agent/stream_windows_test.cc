#include "agent/stream_windows.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "agent/normalize.h"

namespace edgeinfer::agent {
namespace {

using Windows = std::vector<std::vector<float>>;

// Appends and collects every emitted window.
Windows Push(StreamWindows& w, std::string_view key, const std::vector<float>& values) {
  Windows out;
  w.Append(key, values, [&](std::span<float> s) { out.emplace_back(s.begin(), s.end()); });
  return out;
}

// Steps [from, to) of a 1-channel stream whose step t has value t.
std::vector<float> Ramp(int from, int to) {
  std::vector<float> v(to - from);
  std::iota(v.begin(), v.end(), static_cast<float>(from));
  return v;
}

TEST(WindowTest, EmitsOnceFullThenEveryHop) {
  StreamWindows w(1, 4, 2, 8, WindowLayout::kChannelMajor);
  EXPECT_TRUE(Push(w, "s", Ramp(0, 3)).empty());
  EXPECT_EQ(Push(w, "s", Ramp(3, 4)), (Windows{{0, 1, 2, 3}}));
  EXPECT_TRUE(Push(w, "s", Ramp(4, 5)).empty());
  EXPECT_EQ(Push(w, "s", Ramp(5, 6)), (Windows{{2, 3, 4, 5}}));
  // One message spanning several hops emits each window in order.
  EXPECT_EQ(Push(w, "s", Ramp(6, 11)), (Windows{{4, 5, 6, 7}, {6, 7, 8, 9}}));
  EXPECT_EQ(Push(w, "s", Ramp(11, 12)), (Windows{{8, 9, 10, 11}}));
}

TEST(WindowTest, HopEqualToWindowTilesAndLargerHopSkips) {
  StreamWindows tiles(1, 3, 3, 8, WindowLayout::kChannelMajor);
  EXPECT_EQ(Push(tiles, "s", Ramp(0, 7)), (Windows{{0, 1, 2}, {3, 4, 5}}));
  StreamWindows gaps(1, 2, 5, 8, WindowLayout::kChannelMajor);
  EXPECT_EQ(Push(gaps, "s", Ramp(0, 13)), (Windows{{0, 1}, {5, 6}, {10, 11}}));
}

TEST(WindowTest, InterleavedChannelsAreTransposedToChannelMajor) {
  StreamWindows w(3, 4, 4, 8, WindowLayout::kChannelMajor);
  // Steps t = 0..3 of (x, y, z) = (t, 10 + t, 20 + t), in two messages.
  EXPECT_TRUE(Push(w, "s", {0, 10, 20, 1, 11, 21}).empty());
  EXPECT_EQ(Push(w, "s", {2, 12, 22, 3, 13, 23}),
            (Windows{{0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23}}));
}

TEST(WindowTest, TimeMajorKeepsTheReceivedOrderAcrossTheRingWrap) {
  StreamWindows w(2, 3, 1, 8, WindowLayout::kTimeMajor);
  EXPECT_EQ(Push(w, "s", {0, 0, 1, 1, 2, 2, 3, 3}),
            (Windows{{0, 0, 1, 1, 2, 2}, {1, 1, 2, 2, 3, 3}}));
}

TEST(WindowTest, StreamsAreIndependent) {
  StreamWindows w(1, 2, 2, 8, WindowLayout::kChannelMajor);
  EXPECT_TRUE(Push(w, "a", {1}).empty());
  EXPECT_TRUE(Push(w, "b", {100}).empty());
  EXPECT_EQ(Push(w, "a", {2}), (Windows{{1, 2}}));
  EXPECT_EQ(Push(w, "b", {200}), (Windows{{100, 200}}));
  EXPECT_EQ(w.streams(), 2u);
}

TEST(WindowTest, LeastRecentlyUsedStreamIsEvictedAtTheBound) {
  StreamWindows w(1, 3, 3, 2, WindowLayout::kChannelMajor);
  const auto noop = [](std::span<float>) {};
  const std::vector<float> one = {3};
  Push(w, "a", {1});
  Push(w, "b", {2, 2});
  Push(w, "a", {1});  // a is now the most recent; b the least
  {
    const auto& info = w.Append("c", one, noop);
    ASSERT_TRUE(info.evicted);
    EXPECT_EQ(info.evicted_key, "b");
    EXPECT_EQ(info.evicted_steps, 2);
  }
  EXPECT_FALSE(w.Append("c", one, noop).evicted);
  EXPECT_EQ(w.evictions(), 1u);
  EXPECT_EQ(w.streams(), 2u);
  // a kept its two steps and completes with one more; that makes c the least recent.
  EXPECT_EQ(Push(w, "a", {1}), (Windows{{1, 1, 1}}));
  {
    const auto& info = w.Append("b", std::vector<float>{5}, noop);
    ASSERT_TRUE(info.evicted);  // b comes back as a new, empty stream and evicts c
    EXPECT_EQ(info.evicted_key, "c");
    EXPECT_EQ(info.evicted_steps, 2);
  }
  EXPECT_EQ(Push(w, "b", {6, 7}), (Windows{{5, 6, 7}}));
  EXPECT_EQ(w.streams(), 2u);
}

TEST(WindowTest, FloodOfKeysStaysBounded) {
  StreamWindows w(1, 4, 4, 16, WindowLayout::kChannelMajor);
  for (int i = 0; i < 10000; ++i) Push(w, "key-" + std::to_string(i), {1});
  EXPECT_EQ(w.streams(), 16u);
  EXPECT_EQ(w.evictions(), 10000u - 16u);
}

TEST(WindowNormalizeTest, AppliesMeanAndStdAlongTheAxis) {
  ModelInfo info;
  info.norm_mean = {1, 10};
  info.norm_std = {2, 5};
  info.norm_axis = 1;
  auto n = Normalizer::Create(info, {kBatchDim, 2, 3});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  std::vector<float> x = {1, 3, 5, 10, 15, 20};
  n->Apply(x);
  EXPECT_EQ(x, (std::vector<float>{0, 1, 2, 0, 1, 2}));
}

TEST(WindowNormalizeTest, LastAxisAndScalarBroadcast) {
  ModelInfo info;
  info.norm_mean = {1, 2};
  info.norm_std = {1, 2};
  info.norm_axis = -1;
  auto n = Normalizer::Create(info, {kBatchDim, 2, 2});
  ASSERT_TRUE(n.ok());
  std::vector<float> x = {1, 4, 2, 6};
  n->Apply(x);
  EXPECT_EQ(x, (std::vector<float>{0, 1, 1, 2}));
  ModelInfo scalar;
  scalar.norm_mean = {0.5f};
  scalar.norm_std = {0.5f};
  auto s = Normalizer::Create(scalar, {kBatchDim, 3});
  ASSERT_TRUE(s.ok());
  std::vector<float> y = {0.5f, 1, 0};
  s->Apply(y);
  EXPECT_EQ(y, (std::vector<float>{0, 1, -1}));
}

TEST(WindowNormalizeTest, NoMetadataIsANoOpAndBadMetadataIsRefused) {
  auto none = Normalizer::Create(ModelInfo{}, {kBatchDim, 3});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->enabled());
  std::vector<float> x = {1, 2, 3};
  none->Apply(x);
  EXPECT_EQ(x, (std::vector<float>{1, 2, 3}));
  ModelInfo bad;
  bad.norm_mean = {0, 0};
  bad.norm_std = {1, 1};
  EXPECT_FALSE(Normalizer::Create(bad, {kBatchDim, 3, 4}).ok());  // axis 1 has 3
  bad.norm_axis = 5;
  EXPECT_FALSE(Normalizer::Create(bad, {kBatchDim, 2}).ok());
  bad.norm_axis = 1;
  bad.norm_std = {1, 0};
  EXPECT_FALSE(Normalizer::Create(bad, {kBatchDim, 2}).ok());
  bad.norm_std = {1};
  EXPECT_FALSE(Normalizer::Create(bad, {kBatchDim, 2}).ok());
}

}  // namespace
}  // namespace edgeinfer::agent
