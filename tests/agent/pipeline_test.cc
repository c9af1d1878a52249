// Pipeline end to end without MQTT: fake publisher and error reporter, the example vibration
// model, raw sensor values sent as messages, results compared with a direct Session run.
#include "agent/pipeline.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/postprocess.h"
#include "agent/result_json.h"
#include "inference/onnx/onnx_import.h"
#include "inference/session.h"

namespace edgeinfer::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kExamples = fs::path(EDGEINFER_SOURCE_DIR) / "examples";
constexpr int kC = 3, kW = 256, kSample = kC * kW;
const char kTopic[] = "sensors/m1/vibration";

struct Published {
  std::string pipeline, topic;
  uint64_t sequence;
  json body;
};

class FakePublisher : public ResultPublisher {
 public:
  void PublishResult(const std::string& pipeline, uint64_t sequence, const std::string& topic,
                     std::string payload) override {
    std::lock_guard<std::mutex> lock(mu_);
    got_.push_back({pipeline, topic, sequence, json::parse(payload)});
  }
  void EndOfBurst() override {
    std::lock_guard<std::mutex> lock(mu_);
    burst_ends_.push_back(got_.size());
  }
  std::vector<Published> got() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }
  // How many results had been published at each EndOfBurst call.
  std::vector<size_t> burst_ends() {
    std::lock_guard<std::mutex> lock(mu_);
    return burst_ends_;
  }

 private:
  std::mutex mu_;
  std::vector<Published> got_;
  std::vector<size_t> burst_ends_;
};

struct Rejection {
  RejectReason reason;
  std::string topic, detail;
};

class FakeErrors : public ErrorReporter {
 public:
  void Reject(const std::string&, RejectReason reason, std::string_view topic,
              const std::string& detail) override {
    std::lock_guard<std::mutex> lock(mu_);
    got_.push_back({reason, std::string(topic), detail});
  }
  std::vector<Rejection> got() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }
  int Count(RejectReason r) {
    int n = 0;
    for (const Rejection& e : got()) n += e.reason == r;
    return n;
  }

 private:
  std::mutex mu_;
  std::vector<Rejection> got_;
};

std::vector<float> ReadFloats(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

int ArgMax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

// The vibration model, its normalized test windows and the normalization to undo.
class PipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto g = ImportOnnxFile((kExamples / "vibration.onnx").string());
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    auto m = Model::FromGraph(std::move(g).value());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    model_ = new std::shared_ptr<const Model>(*m);
    x_ = new std::vector<float>(ReadFloats(kExamples / "vibration_test_x.bin"));
    ASSERT_EQ(x_->size(), 256u * kSample);
    std::ifstream meta(kExamples / "vibration.meta.json");
    const json j = json::parse(meta);
    mean_ = j["mean"].get<std::vector<float>>();
    std_ = j["std"].get<std::vector<float>>();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete x_;
  }

  static PipelineConfig Config() {
    PipelineConfig c;
    c.name = "vib";
    c.topics = {"sensors/+/vibration"};
    c.input.window = kW;
    c.input.timestamp = "/ts";
    c.batch.max_size = 8;
    c.batch.timeout_ms = 2;
    return c;
  }

  std::unique_ptr<Pipeline> Make(const PipelineConfig& c) {
    AgentConfig agent;
    agent.device_id = "dev1";
    auto p = Pipeline::Create(c, agent, *model_, "boot7", &publisher_, &errors_);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(p).value() : nullptr;
  }

  // Raw sensor value of window n, channel c, step t: the normalization undone.
  static float Raw(const std::vector<float>& norm, int n, int c, int t) {
    return norm[(static_cast<size_t>(n) * kC + c) * kW + t] * std_[c] + mean_[c];
  }

  // Logits of a direct Session run over `n` normalized windows.
  static std::vector<float> Reference(const float* windows, int n) {
    auto s = Session::Create(*model_, SessionOptions{.max_batch = n});
    EXPECT_TRUE(s.ok());
    EXPECT_TRUE((*s)->Run({&windows, 1}, n).ok());
    const float* out = (*s)->output(0).f32();
    return std::vector<float>(out, out + 4 * n);
  }

  // {"ts":ts,"values":[x,y,z,...]} for steps [t0, t1) of window n (interleaved channels).
  static std::string JsonSteps(const std::vector<float>& norm, int n, int t0, int t1, int ts) {
    std::string s = "{\"ts\":" + std::to_string(ts) + ",\"values\":[";
    char buf[32];
    for (int t = t0; t < t1; ++t) {
      for (int c = 0; c < kC; ++c) {
        if (t > t0 || c > 0) s += ',';
        s.append(buf, std::to_chars(buf, buf + 32, Raw(norm, n, c, t)).ptr);
      }
    }
    return s + "]}";
  }

  // Checks results (in sequence order) against reference logits of their windows.
  void ExpectMatches(const std::vector<Published>& got, const std::vector<float>& logits) {
    ASSERT_EQ(got.size() * 4, logits.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const json& r = got[i].body;
      ASSERT_EQ(got[i].sequence, i + 1);
      const int want = ArgMax(&logits[4 * i], 4);
      EXPECT_EQ(r["class"], want) << "result " << i;
      EXPECT_EQ(r["label"], labels_[want]);
      for (int k = 0; k < 4; ++k) EXPECT_NEAR(r["outputs"][k], logits[4 * i + k], 2e-3);
    }
  }

  static inline std::shared_ptr<const Model>* model_ = nullptr;
  static inline std::vector<float>* x_ = nullptr;
  static inline std::vector<float> mean_, std_;
  const std::vector<std::string> labels_ = {"normal", "imbalance", "misalignment", "bearing_fault"};
  FakePublisher publisher_;
  FakeErrors errors_;
};

TEST_F(PipelineTest, RawJsonWindowsClassifyLikeADirectSession) {
  ASSERT_EQ((*model_)->graph().info.norm_mean, mean_);  // the metadata the pipeline applies
  auto p = Make(Config());
  ASSERT_TRUE(p);
  constexpr int kWindows = 32, kSteps = 32;  // 8 messages of 32 time steps per window
  for (int n = 0; n < kWindows; ++n)
    for (int t = 0; t < kW; t += kSteps)
      p->OnMessage(kTopic, JsonSteps(*x_, n, t, t + kSteps, n * 1000 + t));
  p->Stop();
  const auto got = publisher_.got();
  ExpectMatches(got, Reference(x_->data(), kWindows));
  EXPECT_TRUE(errors_.got().empty());
  const json& r = got[5].body;
  EXPECT_EQ(r["id"], "dev1:boot7:vib:6");
  EXPECT_EQ(r["device"], "dev1");
  EXPECT_EQ(r["boot_id"], "boot7");
  EXPECT_EQ(r["pipeline"], "vib");
  EXPECT_EQ(r["stream"], kTopic);
  EXPECT_EQ(r["ts"], 5 * 1000 + kW - kSteps);  // the newest message of the window
  EXPECT_EQ(r["model"], (json{{"name", "vibration"}, {"version", "1.0.0"}, {"precision", "fp32"}}));
  EXPECT_GE(r["published_at"].get<int64_t>(), r["received_at"].get<int64_t>());
  EXPECT_GE(r["latency_ms"].get<double>(), 0.0);
  EXPECT_EQ(got[5].topic, "edgeinfer/dev1/results/vib");
  const PipelineStats s = p->stats();
  EXPECT_EQ(s.messages_in, kWindows * kW / kSteps);
  EXPECT_EQ(s.windows, kWindows);
  EXPECT_EQ(s.results_published, kWindows);
  EXPECT_EQ(s.streams, 1u);
}

TEST_F(PipelineTest, SingleSampleMessagesWithOverlappingWindows) {
  PipelineConfig c = Config();
  c.input.hop = 64;
  auto p = Make(c);
  ASSERT_TRUE(p);
  // A continuous signal: window 0 then window 1, one (x, y, z) sample per message.
  for (int n = 0; n < 2; ++n)
    for (int t = 0; t < kW; ++t) p->OnMessage(kTopic, JsonSteps(*x_, n, t, t + 1, n * kW + t));
  p->Stop();
  // Windows start at 0, 64, 128, 192, 256: cut them from the normalized signal.
  std::vector<float> windows;
  for (int start = 0; start <= kW; start += 64)
    for (int ch = 0; ch < kC; ++ch)
      for (int t = start; t < start + kW; ++t)
        windows.push_back((*x_)[(static_cast<size_t>(t / kW) * kC + ch) * kW + t % kW]);
  const auto got = publisher_.got();
  ExpectMatches(got, Reference(windows.data(), 5));
  EXPECT_EQ(got.back().body["ts"], 2 * kW - 1);
}

TEST_F(PipelineTest, F32leMessagesAreWholeInputs) {
  PipelineConfig c = Config();
  c.input.format = "f32le";
  c.input.window = 0;
  auto p = Make(c);
  ASSERT_TRUE(p);
  constexpr int kWindows = 16;
  for (int n = 0; n < kWindows; ++n) {
    std::vector<float> raw(kSample);  // the model's layout: channel-major [3, 256]
    for (int ch = 0; ch < kC; ++ch)
      for (int t = 0; t < kW; ++t) raw[ch * kW + t] = Raw(*x_, n, ch, t);
    p->OnMessage(kTopic, std::string_view(reinterpret_cast<const char*>(raw.data()), kSample * 4));
  }
  p->Stop();
  const auto got = publisher_.got();
  ExpectMatches(got, Reference(x_->data(), kWindows));
  EXPECT_FALSE(got[0].body.contains("ts"));
}

TEST_F(PipelineTest, BadInputIsRejectedCountedAndGoodInputKeepsFlowing) {
  PipelineConfig c = Config();
  c.input.max_payload_bytes = 64 << 10;
  auto p = Make(c);
  ASSERT_TRUE(p);
  const std::vector<std::pair<std::string, RejectReason>> bad = {
      {"not json", RejectReason::kMalformed},
      {R"({"values":[1,2,3)", RejectReason::kMalformed},
      {R"({"vals":[1,2,3]})", RejectReason::kMalformed},
      {R"({"values":[1,"x",3]})", RejectReason::kMalformed},
      {R"({"values":[1,2]})", RejectReason::kWrongLength},
      {R"({"values":[]})", RejectReason::kWrongLength},
      {R"({"values":[1,1e39,3]})", RejectReason::kNonFinite},
      {"{\"values\":[" + std::string(70000, ' ') + "1,2,3]}", RejectReason::kOversized},
  };
  for (int t = 0; t < kW; t += 32) {  // a bad message between every two good ones
    p->OnMessage(kTopic, JsonSteps(*x_, 0, t, t + 32, t));
    const auto& [payload, reason] = bad[t / 32];
    p->OnMessage(kTopic, payload);
  }
  p->Stop();
  ExpectMatches(publisher_.got(), Reference(x_->data(), 1));
  const auto errs = errors_.got();
  ASSERT_EQ(errs.size(), bad.size());
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(errs[i].reason, bad[i].second) << i << ": " << errs[i].detail;
    EXPECT_EQ(errs[i].topic, kTopic);
    EXPECT_FALSE(errs[i].detail.empty());
  }
  const PipelineStats s = p->stats();
  EXPECT_EQ(s.rejected[static_cast<int>(RejectReason::kMalformed)], 4u);
  EXPECT_EQ(s.rejected[static_cast<int>(RejectReason::kWrongLength)], 2u);
  EXPECT_EQ(s.rejected[static_cast<int>(RejectReason::kNonFinite)], 1u);
  EXPECT_EQ(s.rejected[static_cast<int>(RejectReason::kOversized)], 1u);
  EXPECT_EQ(s.messages_in, 16u);
}

TEST_F(PipelineTest, F32leBadInputIsRejected) {
  PipelineConfig c = Config();
  c.input.format = "f32le";
  c.input.window = 0;
  auto p = Make(c);
  ASSERT_TRUE(p);
  std::vector<float> v(kSample, 0.5f);
  const auto bytes = [](const std::vector<float>& f) {
    return std::string(reinterpret_cast<const char*>(f.data()), f.size() * 4);
  };
  p->OnMessage(kTopic, bytes(v));
  v[100] = std::numeric_limits<float>::quiet_NaN();
  p->OnMessage(kTopic, bytes(v));
  p->OnMessage(kTopic, bytes(std::vector<float>(kSample - 1, 0.f)));
  p->OnMessage(kTopic, "abc");
  p->Stop();
  EXPECT_EQ(publisher_.got().size(), 1u);
  EXPECT_EQ(errors_.Count(RejectReason::kNonFinite), 1);
  EXPECT_EQ(errors_.Count(RejectReason::kWrongLength), 1);
  EXPECT_EQ(errors_.Count(RejectReason::kMalformed), 1);
}

TEST_F(PipelineTest, StreamKeyFromPayloadAndLruEviction) {
  PipelineConfig c = Config();
  c.input.stream_key = "/id";
  c.max_streams = 2;
  auto p = Make(c);
  ASSERT_TRUE(p);
  const std::string step = R"(,"values":[0,0,1]})";
  for (const char* id : {"a", "b", "c", "d", "e"})
    p->OnMessage(kTopic, std::string(R"({"id":")") + id + "\"" + step);
  p->OnMessage(kTopic, R"({"values":[0,0,1]})");  // no key: refused, not mixed into a stream
  EXPECT_EQ(p->stats().streams, 2u);
  EXPECT_EQ(errors_.Count(RejectReason::kStreamEvicted), 3);
  EXPECT_EQ(errors_.Count(RejectReason::kMalformed), 1);
  EXPECT_NE(errors_.got()[0].detail.find("'a'"), std::string::npos);
  // A keyed stream still completes its window and reports its key as the stream.
  for (int t = 1; t < kW; ++t) p->OnMessage(kTopic, R"({"id":"e")" + step);
  p->Stop();
  const auto got = publisher_.got();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body["stream"], "e");
}

TEST_F(PipelineTest, StopDrainsEveryAcceptedInput) {
  PipelineConfig c = Config();
  c.input.window = 0;
  c.input.values = {""};  // the whole payload is the array
  c.batch.max_size = 16;
  c.batch.timeout_ms = 60000;  // nothing leaves on time: only Stop flushes the tail
  auto p = Make(c);
  ASSERT_TRUE(p);
  std::string payload = "[";
  for (int i = 0; i < kSample; ++i) payload += i ? ",0.5" : "0.5";
  payload += "]";
  constexpr int kMessages = 40;
  for (int i = 0; i < kMessages; ++i) p->OnMessage(kTopic, payload);
  p->Stop();
  p->OnMessage(kTopic, payload);  // after Stop: ignored, no result, no crash
  const auto got = publisher_.got();
  ASSERT_EQ(got.size(), static_cast<size_t>(kMessages));
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].sequence, i + 1);
  EXPECT_EQ(p->stats().inferences, static_cast<uint64_t>(kMessages));
  EXPECT_EQ(p->StuckSeconds(), 0.0);
}

// The outbox stores a batch's results as soon as the batch's last one is there: with nothing
// queued behind the batch, EndOfBurst comes right after that result, never inside a batch.
TEST_F(PipelineTest, EndOfBurstFollowsTheLastResultOfEachBatch) {
  PipelineConfig c = Config();
  c.input.window = 0;
  c.input.values = {""};
  c.batch.max_size = 16;
  c.batch.timeout_ms = 60000;  // batches leave full, and the tail only at Stop
  auto p = Make(c);
  ASSERT_TRUE(p);
  std::string payload = "[";
  for (int i = 0; i < kSample; ++i) payload += i ? ",0.25" : "0.25";
  payload += "]";
  // One batch at a time: the next is sent once the previous one's results are all out.
  for (size_t sent = 0; sent < 32;) {
    for (int i = 0; i < 16; ++i, ++sent) p->OnMessage(kTopic, payload);
    for (int i = 0; i < 5000 && publisher_.got().size() < sent; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (int i = 0; i < 8; ++i) p->OnMessage(kTopic, payload);
  p->Stop();
  EXPECT_EQ(publisher_.got().size(), 40u);
  EXPECT_EQ(p->stats().batches, 3u);
  EXPECT_EQ(publisher_.burst_ends(), (std::vector<size_t>{16, 32, 40}));
}

TEST_F(PipelineTest, ShedInputsAreReportedAsQueueOverflow) {
  PipelineConfig c = Config();
  c.input.window = 0;
  c.input.values = {""};
  c.batch.max_size = 16;
  c.batch.timeout_ms = 60000;
  auto p = Make(c);
  ASSERT_TRUE(p);
  std::string payload = "[";
  for (int i = 0; i < kSample; ++i) payload += i ? ",1" : "1";
  payload += "]";
  for (int i = 0; i < 5; ++i) p->OnMessage(kTopic, payload);
  EXPECT_EQ(p->ShedOldest(2), 2u);
  p->Stop();
  EXPECT_EQ(publisher_.got().size(), 3u);
  EXPECT_EQ(errors_.Count(RejectReason::kQueueOverflow), 2);
  EXPECT_EQ(p->stats().rejected[static_cast<int>(RejectReason::kQueueOverflow)], 2u);
}

TEST_F(PipelineTest, SeveralWorkersPublishInSequenceOrder) {
  PipelineConfig c = Config();
  c.input.window = 0;
  c.input.format = "f32le";
  c.batch.workers = 2;
  c.batch.max_size = 4;
  c.batch.timeout_ms = 0;
  auto p = Make(c);
  ASSERT_TRUE(p);
  std::vector<float> raw(kSample, 0.f);
  const std::string_view bytes(reinterpret_cast<const char*>(raw.data()), kSample * 4);
  for (int i = 0; i < 200; ++i) p->OnMessage(kTopic, bytes);
  p->Stop();
  const auto got = publisher_.got();
  ASSERT_EQ(got.size(), 200u);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i].sequence, i + 1);
}

TEST_F(PipelineTest, CreateRefusesAWindowThatDoesNotFitTheModel) {
  AgentConfig agent;
  PipelineConfig c = Config();
  c.input.window = 100;
  auto p = Pipeline::Create(c, agent, *model_, "b", &publisher_, &errors_);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("input.window 100"), std::string::npos);
  c.input.window = 256;
  c.input.format = "xml";
  EXPECT_FALSE(Pipeline::Create(c, agent, *model_, "b", &publisher_, &errors_).ok());
}

TEST_F(PipelineTest, MatchesItsTopicFilters) {
  PipelineConfig c = Config();
  c.topics = {"$share/g1/sensors/+/vibration", "lab/#"};
  auto p = Make(c);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->Matches("sensors/m9/vibration"));
  EXPECT_TRUE(p->Matches("lab/a/b"));
  EXPECT_FALSE(p->Matches("sensors/m9/temperature"));
}

// ---- Result messages and post-processing ----

TEST(ResultTest, SoftmaxTopKAndThreshold) {
  const std::vector<std::string> labels = {"a", "b", "c", "d"};
  PostprocessConfig pc;
  pc.softmax = true;
  pc.top_k = 3;
  pc.threshold = 0.1;
  Postprocessor post(pc, &labels);
  PostResult r;
  const std::vector<float> logits = {1.f, 3.f, 2.f, -5.f};
  post.Run(logits, &r);
  ASSERT_TRUE(r.has_class);
  EXPECT_EQ(r.best, 1);
  // softmax(1,3,2,-5) = 0.0900, 0.6651, 0.2447, 0.0002: 'a' and 'd' fall under 0.1.
  ASSERT_EQ(r.top.size(), 2u);
  EXPECT_EQ(r.top[0].index, 1);
  EXPECT_EQ(r.top[1].index, 2);
  EXPECT_NEAR(r.top[0].score, 0.66509, 1e-4);
  EXPECT_NEAR(r.best_score, 0.66509, 1e-4);
  EXPECT_EQ(post.Label(2), "c");
  EXPECT_EQ(post.Label(9), "");
}

TEST(ResultTest, NoLabelsNoPostprocessingMeansNoClass) {
  PostprocessConfig pc;
  const std::vector<std::string> none;
  Postprocessor post(pc, &none);
  EXPECT_FALSE(post.classifies());
  PostResult r;
  post.Run(std::vector<float>{1, 2}, &r);
  EXPECT_FALSE(r.has_class);
}

TEST(ResultTest, SchemaEscapingAndExtraOutputs) {
  const std::vector<std::string> labels = {"ok", "bad"};
  PostprocessConfig pc;
  pc.top_k = 2;
  Postprocessor post(pc, &labels);
  ResultWriter w({"dev\"1", "boot", "p", "m", "2.0", "int8"}, &post);
  const std::vector<float> out0 = {0.25f, std::numeric_limits<float>::quiet_NaN()};
  const std::vector<float> out1 = {7.f};
  const std::span<const float> outs[] = {out0, out1};
  PostResult pr;
  post.Run(out0, &pr);
  ResultRecord r;
  r.sequence = 42;
  r.stream = "line\nbreak";
  r.ts = {Timestamp::Kind::kString, "2024-01-01T00:00:00Z"};
  r.received_at_ms = 1000;
  r.published_at_ms = 1005;
  r.latency_ms = 4.5;
  r.outputs = outs;
  r.post = &pr;
  std::string msg;
  w.Write(r, &msg);
  const json j = json::parse(msg);
  EXPECT_EQ(j["id"], "dev\"1:boot:p:42");
  EXPECT_EQ(j["device"], "dev\"1");
  EXPECT_EQ(j["sequence"], 42);
  EXPECT_EQ(j["stream"], "line\nbreak");
  EXPECT_EQ(j["ts"], "2024-01-01T00:00:00Z");
  EXPECT_EQ(j["received_at"], 1000);
  EXPECT_EQ(j["published_at"], 1005);
  EXPECT_DOUBLE_EQ(j["latency_ms"], 4.5);
  EXPECT_EQ(j["model"]["precision"], "int8");
  EXPECT_EQ(j["outputs"], json::parse("[0.25,null]"));  // JSON has no NaN
  EXPECT_EQ(j["extra_outputs"], json::parse("[[7]]"));
  EXPECT_EQ(j["class"], 0);
  EXPECT_EQ(j["label"], "ok");
  EXPECT_EQ(j["top_k"], json::parse(R"([{"index":0,"label":"ok","score":0.25}])"));
  // A numeric timestamp is written back as the number it was.
  r.ts = {Timestamp::Kind::kNumber, "1700000000.125"};
  r.post = nullptr;
  w.Write(r, &msg);
  const json k = json::parse(msg);
  EXPECT_EQ(k["ts"], 1700000000.125);
  EXPECT_FALSE(k.contains("class"));
  EXPECT_FALSE(k.contains("top_k"));
}

TEST(ResultTest, ModelPrecisionFromWeightTypes) {
  Graph g;
  const float w[4] = {};
  g.AddConstant("w", DType::kFloat32, {2, 2}, w, sizeof w);
  EXPECT_EQ(ModelPrecision(g), "fp32");
  const int8_t q[4] = {};
  g.AddConstant("q", DType::kInt8, {2, 2}, q, sizeof q);
  EXPECT_EQ(ModelPrecision(g), "int8+fp32");
  Node gemm{"fc", "Gemm", {}, {}, {}};
  gemm.attrs.Set("precision", std::string("int4"));
  g.nodes.push_back(gemm);
  EXPECT_EQ(ModelPrecision(g), "int4");  // the layers' own word wins over the tensor types
}

// ---- Topic filters ----

TEST(TopicTest, ExactAndSingleLevelWildcard) {
  EXPECT_TRUE(TopicMatches("a/b/c", "a/b/c"));
  EXPECT_FALSE(TopicMatches("a/b/c", "a/b"));
  EXPECT_FALSE(TopicMatches("a/b", "a/b/c"));
  EXPECT_TRUE(TopicMatches("sensors/+/vibration", "sensors/m1/vibration"));
  EXPECT_FALSE(TopicMatches("sensors/+/vibration", "sensors/m1/x/vibration"));
  EXPECT_TRUE(TopicMatches("+/+", "/finance"));  // empty levels count
  EXPECT_FALSE(TopicMatches("+", "/finance"));
  EXPECT_TRUE(TopicMatches("a/+", "a/"));
  EXPECT_FALSE(TopicMatches("a/+", "a"));
}

TEST(TopicTest, MultiLevelWildcard) {
  EXPECT_TRUE(TopicMatches("#", "a/b/c"));
  EXPECT_TRUE(TopicMatches("sport/#", "sport"));  // the parent level too
  EXPECT_TRUE(TopicMatches("sport/#", "sport/tennis/player1"));
  EXPECT_FALSE(TopicMatches("sport/#", "sports"));
  EXPECT_TRUE(TopicMatches("+/tennis/#", "sport/tennis"));
  EXPECT_FALSE(TopicMatches("sport/#/x", "sport/a/x"));  // '#' must be last
}

TEST(TopicTest, SharedSubscriptionsAndDollarTopics) {
  EXPECT_TRUE(TopicMatches("$share/group/sensors/#", "sensors/a"));
  EXPECT_TRUE(TopicMatches("$share/g/a/+", "a/b"));
  EXPECT_FALSE(TopicMatches("$share/g/a/+", "b/b"));
  EXPECT_FALSE(TopicMatches("$share/g", "g"));
  EXPECT_FALSE(TopicMatches("#", "$SYS/broker/load"));
  EXPECT_FALSE(TopicMatches("+/broker/load", "$SYS/broker/load"));
  EXPECT_TRUE(TopicMatches("$SYS/#", "$SYS/broker/load"));
  EXPECT_FALSE(TopicMatches("", "a"));
}

}  // namespace
}  // namespace edgeinfer::agent
