// The committed example models, end to end as a user runs them: ONNX -> .eim file -> mmap load
// -> session -> outputs compared with the PyTorch logits exported at training time.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include "inference/eim_writer.h"
#include "inference/model.h"
#include "inference/onnx/onnx_import.h"
#include "inference/session.h"

namespace edgeinfer {
namespace {

template <class T>
std::vector<T> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<T> out(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

struct Example {
  const char* model;
  const char* data;
  int classes;
  size_t arena_batch1;   // pinned planned arena bytes: a memory regression fails here
  size_t arena_batch16;
};

class ExampleModelTest : public ::testing::TestWithParam<Example> {};

std::shared_ptr<const Model> ConvertAndLoad(const std::string& name) {
  const std::string dir = std::string(EDGEINFER_SOURCE_DIR) + "/examples/";
  auto graph = ImportOnnxFile(dir + name + ".onnx");
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  if (!graph.ok()) return nullptr;
  // ctest runs tests as parallel processes: each writes its own file.
  const std::string eim = ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".eim";
  EXPECT_TRUE(WriteEim(*graph, eim).ok());
  auto model = Model::Load(eim);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? *model : nullptr;
}

TEST_P(ExampleModelTest, MatchesPyTorchLogitsAtEveryBatchSize) {
  const Example& ex = GetParam();
  auto model = ConvertAndLoad(ex.model);
  ASSERT_TRUE(model);
  const std::string dir = std::string(EDGEINFER_SOURCE_DIR) + "/examples/";
  auto x = ReadFile<float>(dir + ex.data + "_test_x.bin");
  auto want = ReadFile<float>(dir + ex.data + "_test_logits.bin");
  const int samples = static_cast<int>(want.size() / ex.classes);
  ASSERT_GT(samples, 0);

  for (int max_batch : {1, 7, 16}) {
    auto s = Session::Create(model, SessionOptions{.max_batch = max_batch});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    const int64_t sample = (*s)->input_sample_elements(0);
    ASSERT_EQ(static_cast<int64_t>(x.size()), sample * samples);
    double worst = 0;
    for (int first = 0; first < samples; first += max_batch) {
      int n = std::min(max_batch, samples - first);
      const float* in = x.data() + first * sample;
      ASSERT_TRUE((*s)->Run({&in, 1}, n).ok());
      for (int i = 0; i < n; ++i) {
        const float* got = (*s)->output(0).f32() + i * ex.classes;
        const float* ref = want.data() + (first + i) * ex.classes;
        float scale = 0;
        for (int c = 0; c < ex.classes; ++c) scale = std::max(scale, std::abs(ref[c]));
        for (int c = 0; c < ex.classes; ++c)
          worst = std::max(worst, std::abs(got[c] - ref[c]) / static_cast<double>(scale));
      }
    }
    // Relative to each sample's largest logit.
    EXPECT_LE(worst, 1e-4) << ex.model << " at max batch " << max_batch;
  }
}

TEST_P(ExampleModelTest, ArenaPlanIsPinned) {
  const Example& ex = GetParam();
  auto model = ConvertAndLoad(ex.model);
  ASSERT_TRUE(model);
  auto s1 = Session::Create(model, SessionOptions{.max_batch = 1});
  auto s16 = Session::Create(model, SessionOptions{.max_batch = 16});
  ASSERT_TRUE(s1.ok() && s16.ok());
  EXPECT_EQ((*s1)->arena_bytes(), ex.arena_batch1);
  EXPECT_EQ((*s16)->arena_bytes(), ex.arena_batch16);
  EXPECT_LT((*s16)->arena_bytes(), (*s16)->naive_arena_bytes());
  // Weights are not copied: a session's own memory is the arena, far below the weights.
  EXPECT_GT(model->weight_bytes(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Examples, ExampleModelTest,
                         ::testing::Values(Example{"vibration", "vibration", 4, 114688, 786432},
                                           Example{"fashion_mlp", "fashion", 10, 11264, 180224}),
                         [](const auto& info) { return std::string(info.param.model); });

}  // namespace
}  // namespace edgeinfer
