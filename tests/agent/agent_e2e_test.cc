// The edgeinfer-agent binary end to end: a real Mosquitto (tests/agent/mosquitto_fixture.h), the
// agent as a child process with a config file for the example vibration model, sensor messages
// from mosquitto_pub and results read with mosquitto_sub. Every wait is bounded.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/agent/agent_process.h"
#include "tests/agent/mosquitto_fixture.h"

namespace edgeinfer::agent {
namespace {

using testing_agent::AgentProcess;
using testing_agent::kAgent;
using testing_agent::kModel;
using testing_mqtt::Millis;
using testing_mqtt::MosquittoBroker;
using testing_mqtt::MosquittoSubscriber;
using testing_mqtt::ReadFile;
using testing_mqtt::WaitFor;
using Json = nlohmann::json;

constexpr int kChannels = 3, kSteps = 256, kClasses = 4, kWindows = 256;

// examples/: normalized windows [256,3,256], PyTorch logits [256,4], the normalization.
struct Examples {
  std::vector<float> x, logits;
  float mean[kChannels], std[kChannels];

  static const Examples& Get() {
    static const Examples e = Load();
    return e;
  }
  float Raw(int window, int c, int t) const {
    return x[(static_cast<size_t>(window) * kChannels + c) * kSteps + t] * std[c] + mean[c];
  }
  int ModelClass(int window) const {
    const float* l = &logits[window * kClasses];
    return static_cast<int>(std::max_element(l, l + kClasses) - l);
  }
  // Top-1 minus top-2 logit: windows the model itself barely separates are not compared.
  float Margin(int window) const {
    std::vector<float> l(&logits[window * kClasses], &logits[window * kClasses] + kClasses);
    std::sort(l.rbegin(), l.rend());
    return l[0] - l[1];
  }

 private:
  static std::vector<float> Floats(const std::string& file, size_t n) {
    std::string bytes = ReadFile(EDGEINFER_SOURCE_DIR "/examples/" + file);
    std::vector<float> v(n);
    if (bytes.size() == n * sizeof(float)) std::memcpy(v.data(), bytes.data(), bytes.size());
    return v;
  }
  static Examples Load() {
    Examples e;
    e.x = Floats("vibration_test_x.bin", size_t{kWindows} * kChannels * kSteps);
    e.logits = Floats("vibration_test_logits.bin", size_t{kWindows} * kClasses);
    Json meta = Json::parse(ReadFile(EDGEINFER_SOURCE_DIR "/examples/vibration.meta.json"));
    for (int c = 0; c < kChannels; ++c) e.mean[c] = meta["mean"][c], e.std[c] = meta["std"][c];
    return e;
  }
};

// A sensor message carrying window `w` in raw g: axes interleaved per time step (x,y,z,x,...),
// the layout pipeline.cc takes with input.window = 256; or, with `model_layout`, the model's
// own [3, 256] channel-major layout (input.window = 0: one message is one input).
std::string WindowMessage(int w, const std::string& ts, bool model_layout = false) {
  const Examples& e = Examples::Get();
  std::string s = "{\"ts\":" + ts + ",\"values\":[";
  char buf[32];
  for (int i = 0; i < kChannels * kSteps; ++i) {
    const int c = model_layout ? i / kSteps : i % kChannels;
    const int t = model_layout ? i % kSteps : i / kChannels;
    std::snprintf(buf, sizeof(buf), "%s%.9g", i ? "," : "", e.Raw(w, c, t));
    s += buf;
  }
  return s + "]}";
}

std::vector<std::string> WindowMessages(int first_ts, int n, bool model_layout = false) {
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i)
    lines.push_back(
        WindowMessage((first_ts + i) % kWindows, std::to_string(first_ts + i), model_layout));
  return lines;
}

// One [[pipeline]] block.
std::string PipelineToml(const std::string& name, const std::string& topic, int window,
                         const std::string& extra = "") {
  return "[[pipeline]]\nname = \"" + name + "\"\nmodel = \"" + kModel + "\"\ntopics = [\"" + topic +
         "\"]\n" + extra +
         "[pipeline.input]\ntimestamp = \"/ts\"\nwindow = " + std::to_string(window) + "\n";
}

// The agent of these tests, with the config they share: quick source reconnects, telemetry every
// second, then the test's [[pipeline]] blocks.
class E2eAgent : public AgentProcess {
 public:
  E2eAgent(const std::string& device, const std::string& source_uri, const std::string& sink_uri,
           const std::string& pipelines, int errors_per_minute = 6000)
      : AgentProcess("e2e") {
    WriteConfig("errors_per_minute = " + std::to_string(errors_per_minute) + "\n[device]\nid = \"" +
                device + "\"\nstate_dir = \"" + state_dir().string() + "\"\n[source]\nuri = \"" +
                source_uri + "\"\nreconnect_min_ms = 50\nreconnect_max_ms = 500\n[sink]\nuri = \"" +
                sink_uri + "\"\n[telemetry]\ninterval_s = 1\n" + pipelines);
  }
};

// Results (and anything else) seen by a mosquitto_sub, parsed.
struct Seen {
  std::string topic;
  Json json;
};

// The JSON objects among the messages (not the readiness probes).
std::vector<Seen> Parse(MosquittoSubscriber& sub) {
  std::vector<Seen> out;
  for (const std::string& m : sub.Messages()) {
    const size_t sp = m.find(' ');
    Json j = Json::parse(m.substr(sp + 1), nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) out.push_back({m.substr(0, sp), j});
  }
  return out;
}

// True once `sub` receives what is published on `topic` (a topic its filter matches).
// MosquittoSubscriber::WaitReady watches for mosquitto_sub's SUBACK debug line, which stdio
// holds back on a pipe until a message flushes it; a message that comes through is proof.
bool Ready(const MosquittoBroker& broker, MosquittoSubscriber& sub, const std::string& topic) {
  return WaitFor([&] {
    broker.Publish(topic, "ready", 0);
    return sub.WaitForMessage(topic + " ready", Millis(200));
  });
}

// Results whose "ts" is a number (the probes' "ts" is a string), by ts.
std::map<int, std::vector<Json>> ResultsByTs(MosquittoSubscriber& sub) {
  std::map<int, std::vector<Json>> by_ts;
  for (const Seen& s : Parse(sub)) {
    if (s.json.contains("ts") && s.json["ts"].is_number_integer())
      by_ts[s.json["ts"].get<int>()].push_back(s.json);
  }
  return by_ts;
}

size_t CountProbes(MosquittoSubscriber& sub) {
  size_t n = 0;
  for (const Seen& s : Parse(sub)) n += s.json.contains("ts") && s.json["ts"].is_string();
  return n;
}

// Publishes a probe window (its result has "ts": "probe") until `want` probe results have come
// back: the agents are then subscribed on `topic`.
bool WaitUntilSubscribed(const MosquittoBroker& broker, const std::string& topic,
                         MosquittoSubscriber& results, size_t want = 1) {
  return WaitFor(
      [&] {
        if (CountProbes(results) >= want) return true;
        broker.Publish(topic, WindowMessage(0, "\"probe\""));
        return results.WaitForCount(results.Messages().size() + 1, Millis(300)) &&
               CountProbes(results) >= want;
      },
      Millis(20000));
}

class AgentE2E : public testing_agent::AgentTest {};

TEST_F(AgentE2E, CommandLineChecksConfigAndExplainsErrors) {
  E2eAgent agent("dev", broker_.uri(), broker_.uri(), PipelineToml("vib", "s/+/v", 256));
  const auto run = [](std::vector<std::string> args) {
    args.insert(args.begin(), kAgent);
    return testing_mqtt::Run(args);
  };
  EXPECT_EQ(run({"--version"}), 0);
  EXPECT_EQ(run({"--help"}), 0);
  EXPECT_EQ(run({}), 2);
  EXPECT_EQ(run({"--config"}), 2);
  EXPECT_EQ(run({"--config", agent.config_path(), "--check-config"}), 0);
  EXPECT_EQ(run({"--config", "/nonexistent.toml", "--check-config"}), 78);
  // An out-of-range value: refused with the key's path, before anything starts.
  agent.WriteConfig(agent.config() + "[pipeline.batch]\nmax_size = 0\n");
  ASSERT_TRUE(agent.Start());
  EXPECT_EQ(agent.Stop(0, Millis(10000)), 78);
  EXPECT_NE(agent.log().find("pipeline[0].batch.max_size: 0 is outside 1..1024"), std::string::npos)
      << agent.log();
}

// Both layouts, routed by wildcard to their pipelines; classes as the model gives them.
TEST_F(AgentE2E, ResultsMatchTheModelForEachPipelineLayout) {
  E2eAgent agent("dev", broker_.uri(), broker_.uri(),
                 PipelineToml("steps", "sensors/+/vibration", 256) +
                     PipelineToml("whole", "frames/+/vibration", 0));
  MosquittoSubscriber results(broker_, "edgeinfer/dev/results/#");
  ASSERT_TRUE(Ready(broker_, results, "edgeinfer/dev/results/ready"));
  ASSERT_TRUE(agent.Start());
  ASSERT_TRUE(WaitUntilSubscribed(broker_, "sensors/m1/vibration", results)) << agent.log();
  constexpr int kN = 64;
  ASSERT_TRUE(broker_.PublishLines("sensors/m1/vibration", WindowMessages(0, kN)));
  ASSERT_TRUE(broker_.PublishLines("frames/m2/vibration", WindowMessages(100, kN, true)));
  ASSERT_TRUE(WaitFor([&] { return ResultsByTs(results).size() >= 2 * kN; }, Millis(30000)))
      << agent.log();

  const Examples& e = Examples::Get();
  std::map<std::string, int> per_pipeline;
  std::set<std::string> ids;
  for (const auto& [ts, list] : ResultsByTs(results)) {
    ASSERT_EQ(list.size(), 1u) << "ts " << ts;
    const Json& r = list[0];
    const std::string pipeline = r["pipeline"];
    EXPECT_EQ(pipeline, ts < 100 ? "steps" : "whole") << r.dump();
    ++per_pipeline[pipeline];
    ids.insert(r["id"].get<std::string>());
    EXPECT_EQ(r["model"]["name"], "vibration");
    const int w = ts % kWindows;
    for (int k = 0; k < kClasses; ++k)
      EXPECT_NEAR(r["outputs"][k].get<double>(), e.logits[w * kClasses + k], 2e-3) << r.dump();
    if (e.Margin(w) > 0.05f) {
      EXPECT_EQ(r["class"].get<int>(), e.ModelClass(w)) << r.dump();
    }
  }
  EXPECT_EQ(per_pipeline["steps"], kN);
  EXPECT_EQ(per_pipeline["whole"], kN);
  EXPECT_EQ(ids.size(), 2u * kN);
  auto status = broker_.Retained("edgeinfer/dev/status");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(Json::parse(*status)["state"], "online");
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

TEST_F(AgentE2E, BadInputIsRejectedAndReportedWhileGoodInputFlows) {
  E2eAgent agent("dev", broker_.uri(), broker_.uri(),
                 PipelineToml("vib", "sensors/+/vibration", 256) + "max_payload_bytes = 40000\n");
  MosquittoSubscriber results(broker_, "edgeinfer/dev/results/#");
  MosquittoSubscriber errors(broker_, "edgeinfer/dev/errors");
  ASSERT_TRUE(Ready(broker_, results, "edgeinfer/dev/results/ready"));
  ASSERT_TRUE(Ready(broker_, errors, "edgeinfer/dev/errors"));
  ASSERT_TRUE(agent.Start());
  ASSERT_TRUE(WaitUntilSubscribed(broker_, "sensors/m1/vibration", results)) << agent.log();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"malformed", "{\"ts\":1,\"values\":[1,2,"},
      {"malformed", "not json at all"},
      {"malformed", "{\"ts\":1,\"values\":[\"a\",\"b\",\"c\"]}"},
      {"wrong_length", "{\"ts\":1,\"values\":[0.1,0.2,0.3,0.4]}"},
      {"non_finite", "{\"ts\":1,\"values\":[1e39,0,1]}"},
      {"oversized", "{\"ts\":1,\"values\":[" + std::string(50000, ' ') + "0,0,1]}"},
  };
  std::vector<std::string> lines;  // good and bad interleaved on one stream
  for (int i = 0; i < 12; ++i) {
    lines.push_back(WindowMessage(i, std::to_string(i)));
    lines.push_back(bad[i % bad.size()].second);
  }
  ASSERT_TRUE(broker_.PublishLines("sensors/m1/vibration", lines));
  ASSERT_TRUE(WaitFor([&] { return ResultsByTs(results).size() >= 12; })) << agent.log();
  ASSERT_TRUE(WaitFor([&] { return Parse(errors).size() >= 12; })) << agent.log();
  EXPECT_EQ(ResultsByTs(results).size(), 12u);
  std::map<std::string, int> reasons;
  for (const Seen& s : Parse(errors)) {
    ++reasons[s.json.value("reason", "?")];
    EXPECT_EQ(s.json.value("topic", ""), "sensors/m1/vibration");
    EXPECT_FALSE(s.json.value("detail", "").empty());
  }
  EXPECT_EQ(reasons["malformed"], 6);
  EXPECT_EQ(reasons["wrong_length"], 2);
  EXPECT_EQ(reasons["non_finite"], 2);
  EXPECT_EQ(reasons["oversized"], 2);
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

// 60 a minute: a burst of 30 bad messages gives the first 10 as dead letters; telemetry
// counts all 30 and the 20 left out.
TEST_F(AgentE2E, DeadLettersAreRateLimitedAndEveryRejectionCounted) {
  E2eAgent agent("dev", broker_.uri(), broker_.uri(),
                 PipelineToml("vib", "sensors/+/vibration", 256), /*errors_per_minute=*/60);
  MosquittoSubscriber errors(broker_, "edgeinfer/dev/errors");
  MosquittoSubscriber telemetry(broker_, "edgeinfer/dev/telemetry");
  ASSERT_TRUE(Ready(broker_, errors, "edgeinfer/dev/errors"));
  ASSERT_TRUE(Ready(broker_, telemetry, "edgeinfer/dev/telemetry"));
  ASSERT_TRUE(agent.Start());
  const auto malformed = [&] {
    int n = 0;
    for (const Seen& s : Parse(telemetry))
      n = s.json.value(Json::json_pointer("/rejected/malformed"), 0);
    return n;
  };
  // Until the agent is subscribed, these go nowhere; then 30 arrive together.
  ASSERT_TRUE(WaitFor(
      [&] {
        broker_.Publish("sensors/m1/vibration", "probe: not json");
        return errors.WaitForCount(2, Millis(500));
      },
      Millis(20000)))
      << agent.log();
  ASSERT_TRUE(telemetry.WaitForCount(telemetry.Messages().size() + 2, Millis(5000)));
  const int before = malformed();
  const size_t letters_before = Parse(errors).size();
  ASSERT_TRUE(broker_.PublishLines("sensors/m1/vibration", std::vector<std::string>(30, "{")));
  ASSERT_TRUE(WaitFor([&] { return malformed() >= before + 30; })) << agent.log();
  const size_t letters = Parse(errors).size() - letters_before;
  EXPECT_GE(letters, 1u);
  EXPECT_LE(letters, 12u) << "about a burst of 10 plus the refill while they arrived";
  // One report later, counts and the suppressed total are from after the burst.
  ASSERT_TRUE(telemetry.WaitForCount(telemetry.Messages().size() + 1, Millis(5000)));
  const Seen last = Parse(telemetry).back();
  EXPECT_EQ(last.json.value(Json::json_pointer("/rejected/suppressed"), -1),
            before + 30 - static_cast<int>(Parse(errors).size()));
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

// Inputs wait in the queue (a batch timeout of a minute); SIGTERM must still run every one of
// them and publish its result before the agent says offline.
TEST_F(AgentE2E, SigtermWithAFullQueuePublishesEveryAcceptedInput) {
  E2eAgent agent("dev", broker_.uri(), broker_.uri(),
                 PipelineToml("vib", "sensors/+/vibration", 0,
                              "[pipeline.batch]\nmax_size = 512\ntimeout_ms = 60000\n"
                              "queue_capacity = 1024\n"));
  MosquittoSubscriber results(broker_, "edgeinfer/dev/results/#");
  MosquittoSubscriber telemetry(broker_, "edgeinfer/dev/telemetry");
  ASSERT_TRUE(Ready(broker_, results, "edgeinfer/dev/results/ready"));
  ASSERT_TRUE(Ready(broker_, telemetry, "edgeinfer/dev/telemetry"));
  ASSERT_TRUE(agent.Start());
  ASSERT_TRUE(
      broker_.PublishLines("sensors/m1/vibration", {WindowMessage(0, "\"warm-up\"", true)}));
  constexpr int kN = 200;
  // The subscription may lag the first telemetry; publish once the agent counts the warm-up.
  const auto windows = [&] {  // inputs accepted, as the latest telemetry says
    int n = -1;
    for (const Seen& s : Parse(telemetry)) {
      n = s.json.value(Json::json_pointer("/pipelines/vib/windows"), -1);
    }
    return n;
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        if (windows() >= 1) return true;
        broker_.Publish("sensors/m1/vibration", WindowMessage(0, "\"warm-up\"", true));
        return telemetry.WaitForCount(telemetry.Messages().size() + 1, Millis(1500)) &&
               windows() >= 1;
      },
      Millis(20000)))
      << agent.log();
  // No warm-up is published any more: two reports later the count is final.
  ASSERT_TRUE(telemetry.WaitForCount(telemetry.Messages().size() + 2, Millis(5000)));
  const int warm_ups = windows();
  ASSERT_TRUE(broker_.PublishLines("sensors/m1/vibration", WindowMessages(0, kN, true)));
  ASSERT_TRUE(WaitFor([&] { return windows() >= warm_ups + kN; }, Millis(20000))) << agent.log();
  EXPECT_TRUE(ResultsByTs(results).empty()) << "the batch timeout should hold every input";

  EXPECT_EQ(agent.Stop(SIGTERM), 0) << agent.log();
  ASSERT_TRUE(WaitFor([&] { return ResultsByTs(results).size() >= kN; })) << agent.log();
  const auto by_ts = ResultsByTs(results);
  EXPECT_EQ(by_ts.size(), static_cast<size_t>(kN));
  for (const auto& [ts, list] : by_ts) EXPECT_EQ(list.size(), 1u) << "ts " << ts;
  auto status = broker_.Retained("edgeinfer/dev/status");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(Json::parse(*status)["state"], "offline");
  EXPECT_EQ(Json::parse(*status)["reason"], "shutdown");
}

TEST_F(AgentE2E, ReconnectsAfterTheSourceBrokerRestartsAndCarriesOn) {
  MosquittoBroker source;
  ASSERT_TRUE(source.Start()) << source.error();
  E2eAgent agent("dev", source.uri(), broker_.uri(),
                 PipelineToml("vib", "sensors/+/vibration", 256));
  MosquittoSubscriber results(broker_, "edgeinfer/dev/results/#");
  ASSERT_TRUE(Ready(broker_, results, "edgeinfer/dev/results/ready"));
  ASSERT_TRUE(agent.Start());
  ASSERT_TRUE(WaitUntilSubscribed(source, "sensors/m1/vibration", results)) << agent.log();
  ASSERT_TRUE(source.PublishLines("sensors/m1/vibration", WindowMessages(0, 20)));
  ASSERT_TRUE(WaitFor([&] { return ResultsByTs(results).size() >= 20; })) << agent.log();

  ASSERT_TRUE(source.Restart()) << source.error();  // no persistence: the session is gone
  ASSERT_TRUE(
      WaitUntilSubscribed(source, "sensors/m1/vibration", results, CountProbes(results) + 1))
      << agent.log();
  ASSERT_TRUE(source.PublishLines("sensors/m1/vibration", WindowMessages(1000, 20)));
  ASSERT_TRUE(WaitFor([&] { return ResultsByTs(results).size() >= 40; })) << agent.log();
  const auto by_ts = ResultsByTs(results);
  for (int ts : {0, 19, 1000, 1019}) EXPECT_EQ(by_ts.count(ts), 1u) << ts;
  EXPECT_EQ(by_ts.size(), 40u);
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

// SIGHUP: a post-processing change applies (the pipeline is rebuilt, its ids continue under
// "{boot}.r1"); a topic change is refused whole, and the agent carries on as it was.
TEST_F(AgentE2E, SighupAppliesWhatCanChangeAndRefusesTheRest) {
  E2eAgent agent("dev", broker_.uri(), broker_.uri(),
                 PipelineToml("vib", "sensors/+/vibration", 0));
  MosquittoSubscriber results(broker_, "edgeinfer/dev/results/#");
  ASSERT_TRUE(Ready(broker_, results, "edgeinfer/dev/results/ready"));
  ASSERT_TRUE(agent.Start());
  ASSERT_TRUE(WaitUntilSubscribed(broker_, "sensors/m1/vibration", results)) << agent.log();
  const auto result_for = [&](int ts) -> Json {
    if (!broker_.Publish("sensors/m1/vibration",
                         WindowMessage(ts % kWindows, std::to_string(ts), true)))
      return {};
    WaitFor([&] { return ResultsByTs(results).count(ts) > 0; });
    auto by_ts = ResultsByTs(results);
    return by_ts.count(ts) ? by_ts[ts][0] : Json();
  };
  const Json before = result_for(1);
  ASSERT_TRUE(before.is_object()) << agent.log();
  EXPECT_FALSE(before.contains("top_k"));

  agent.WriteConfig(agent.config() + "[pipeline.postprocess]\nsoftmax = true\ntop_k = 2\n");
  agent.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return agent.log().find("info: reloaded") != std::string::npos; }))
      << agent.log();
  const Json after = result_for(2);
  ASSERT_TRUE(after.is_object()) << agent.log();
  ASSERT_TRUE(after.contains("top_k")) << after.dump();
  EXPECT_EQ(after["top_k"].size(), 2u);
  EXPECT_EQ(after["boot_id"].get<std::string>(), before["boot_id"].get<std::string>() + ".r1");

  std::string moved = agent.config();
  moved.replace(moved.find("sensors/+/vibration"), 19, "machines/+/vibration");
  agent.WriteConfig(moved);
  agent.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return agent.log().find("pipeline[0].topics needs a restart") != std::string::npos;
  })) << agent.log();
  const Json still = result_for(3);
  ASSERT_TRUE(still.is_object()) << agent.log();
  EXPECT_TRUE(still.contains("top_k")) << "the refused reload left the running settings";
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

// The uplink broker goes away while results are produced: they wait in the outbox and all
// arrive after it is back (at least once; first deliveries in sequence order). The results
// subscriber keeps a persistent session on a broker with persistence, so nothing published
// while it reconnects is lost on the test's side.
TEST_F(AgentE2E, ResultsProducedDuringASinkOutageArriveAfterIt) {
  const std::filesystem::path sink_dir = testing_mqtt::MakeTempDir("sinkdb");
  ASSERT_FALSE(sink_dir.empty());
  testing_mqtt::BrokerOptions options;
  options.extra_config = {"persistence true", "persistence_location " + sink_dir.string() + "/"};
  MosquittoBroker sink(options);
  ASSERT_TRUE(sink.Start()) << sink.error();
  MosquittoSubscriber results(sink, "edgeinfer/dev/results/#", 1, {"-c", "-i", "e2e-results"});
  ASSERT_TRUE(Ready(sink, results, "edgeinfer/dev/results/ready"));
  E2eAgent agent("dev", broker_.uri(), sink.uri(), PipelineToml("vib", "sensors/+/vibration", 0));
  ASSERT_TRUE(agent.Start());
  ASSERT_TRUE(WaitUntilSubscribed(broker_, "sensors/m1/vibration", results)) << agent.log();
  ASSERT_TRUE(broker_.PublishLines("sensors/m1/vibration", WindowMessages(0, 20, true)));
  ASSERT_TRUE(WaitFor([&] { return ResultsByTs(results).size() >= 20; })) << agent.log();

  sink.Stop();
  ASSERT_TRUE(broker_.PublishLines("sensors/m1/vibration", WindowMessages(100, 30, true)));
  std::this_thread::sleep_for(Millis(1000));  // produced and stored while the uplink is down
  ASSERT_TRUE(sink.Start()) << sink.error();
  ASSERT_TRUE(WaitFor([&] { return ResultsByTs(results).size() >= 50; }, Millis(30000)))
      << agent.log();
  const auto by_ts = ResultsByTs(results);
  for (int ts = 100; ts < 130; ++ts) EXPECT_EQ(by_ts.count(ts), 1u) << ts;
  std::set<int64_t> seen;
  int64_t last_new = 0;
  for (const Seen& r : Parse(results)) {
    const int64_t seq = r.json.value("sequence", int64_t{-1});
    if (!seen.insert(seq).second) continue;  // a re-delivery (at least once)
    EXPECT_GT(seq, last_new) << "first deliveries out of order";
    last_new = seq;
  }
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
  std::error_code ec;
  std::filesystem::remove_all(sink_dir, ec);
}

// A source "broker" that delivers whatever the test hands it, subscribed or not: the agent's
// subscriptions are exactly its pipelines' filters, so a standard broker never sends it a topic
// no pipeline matches; a misbehaving broker or bridge can. Speaks just enough MQTT 3.1.1 for one
// client at a time (CONNACK, SUBACK, PINGRESP; QoS 0 PUBLISH out), on a loopback port.
class UnfilteredSource {
 public:
  UnfilteredSource() : port_(testing_mqtt::FreeLoopbackPort()) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_in a = testing_mqtt::LoopbackAddress(port_);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    listening_ = ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0 &&
                 ::listen(listen_fd_, 4) == 0;
    thread_ = std::thread([this] { Serve(); });
  }
  ~UnfilteredSource() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  bool listening() const { return listening_; }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  // The filters of the last SUBSCRIBE, once the client has sent one.
  std::vector<std::string> subscribed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return filters_;
  }
  // A QoS 0 PUBLISH to the connected client; false when none is connected.
  bool Publish(const std::string& topic, const std::string& payload) {
    std::string packet(1, '\x30');
    AppendLength(2 + topic.size() + payload.size(), &packet);
    packet += static_cast<char>(topic.size() >> 8);
    packet += static_cast<char>(topic.size() & 0xff);
    packet += topic + payload;
    std::lock_guard<std::mutex> lock(mu_);
    return client_fd_ >= 0 && WriteAll(client_fd_, packet);
  }

 private:
  static void AppendLength(size_t n, std::string* out) {
    do {
      char byte = static_cast<char>(n % 128);
      n /= 128;
      if (n > 0) byte = static_cast<char>(byte | 0x80);
      *out += byte;
    } while (n > 0);
  }
  static bool WriteAll(int fd, const std::string& bytes) {
    for (size_t done = 0; done < bytes.size();) {
      const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads exactly n bytes, waiting at most ~1 s per chunk; false on EOF, error or stop.
  bool ReadExactly(int fd, size_t n, std::string* out) {
    out->resize(n);
    for (size_t done = 0; done < n;) {
      pollfd p{fd, POLLIN, 0};
      int idle = 0;
      while (::poll(&p, 1, 20) <= 0)
        if (stop_ || ++idle > 50) return false;
      const ssize_t got = ::recv(fd, out->data() + done, n - done, 0);
      if (got <= 0) return false;
      done += static_cast<size_t>(got);
    }
    return true;
  }
  // One packet: its first byte and its body; false when the client is gone.
  bool ReadPacket(int fd, uint8_t* type, std::string* body) {
    std::string b;
    for (;;) {  // idle between packets: wait here (a keepalive is 30 s by default)
      pollfd p{fd, POLLIN, 0};
      if (stop_) return false;
      if (::poll(&p, 1, 20) > 0) break;
    }
    if (!ReadExactly(fd, 1, &b)) return false;
    *type = static_cast<uint8_t>(b[0]);
    size_t length = 0;
    for (int shift = 0; shift < 28; shift += 7) {
      if (!ReadExactly(fd, 1, &b)) return false;
      length |= static_cast<size_t>(b[0] & 0x7f) << shift;
      if (!(b[0] & 0x80)) return ReadExactly(fd, length, body);
    }
    return false;
  }
  void Answer(int fd, uint8_t type, const std::string& body) {
    std::string reply;
    switch (type >> 4) {
      case 1:  // CONNECT -> CONNACK, session not present, accepted
        reply = std::string("\x20\x02\x00\x00", 4);
        break;
      case 8: {  // SUBSCRIBE -> SUBACK granting QoS 0 to each filter
        std::vector<std::string> filters;
        for (size_t at = 2; at + 2 <= body.size();) {
          const size_t n =
              (static_cast<uint8_t>(body[at]) << 8) | static_cast<uint8_t>(body[at + 1]);
          filters.push_back(body.substr(at + 2, n));
          at += 2 + n + 1;  // the filter, then its options byte
        }
        reply = std::string(1, '\x90');
        AppendLength(2 + filters.size(), &reply);
        reply += body.substr(0, 2) + std::string(filters.size(), '\0');
        std::lock_guard<std::mutex> lock(mu_);
        filters_ = filters;
        break;
      }
      case 10:  // UNSUBSCRIBE -> UNSUBACK
        reply = std::string("\xb0\x02", 2) + body.substr(0, 2);
        break;
      case 12:  // PINGREQ -> PINGRESP
        reply = std::string("\xd0\x00", 2);
        break;
      default:  // DISCONNECT, PUBACK, PUBLISH from the client: nothing to say
        return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    WriteAll(fd, reply);
  }
  void Serve() {
    while (!stop_ && listening_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      {
        std::lock_guard<std::mutex> lock(mu_);
        client_fd_ = fd;
      }
      uint8_t type = 0;
      std::string body;
      while (ReadPacket(fd, &type, &body) && (type >> 4) != 14) Answer(fd, type, body);
      std::lock_guard<std::mutex> lock(mu_);
      client_fd_ = -1;
      ::close(fd);
    }
  }

  int port_;
  int listen_fd_ = -1;
  bool listening_ = false;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;  // client_fd_, filters_, and whole packets on the socket
  int client_fd_ = -1;
  std::vector<std::string> filters_;
  std::thread thread_;
};

// A message on a topic no pipeline matches is rejected as unknown_topic, reported on the errors
// topic with that topic and counted in telemetry, while the good messages around it all produce
// results.
TEST_F(AgentE2E, AMessageOnATopicNoPipelineMatchesIsRejectedWhileGoodOnesFlow) {
  UnfilteredSource source;
  ASSERT_TRUE(source.listening());
  E2eAgent agent("dev", source.uri(), broker_.uri(),
                 PipelineToml("vib", "sensors/+/vibration", 256));
  MosquittoSubscriber results(broker_, "edgeinfer/dev/results/#");
  MosquittoSubscriber errors(broker_, "edgeinfer/dev/errors");
  MosquittoSubscriber telemetry(broker_, "edgeinfer/dev/telemetry");
  ASSERT_TRUE(Ready(broker_, results, "edgeinfer/dev/results/ready"));
  ASSERT_TRUE(Ready(broker_, errors, "edgeinfer/dev/errors"));
  ASSERT_TRUE(Ready(broker_, telemetry, "edgeinfer/dev/telemetry"));
  ASSERT_TRUE(agent.Start());
  ASSERT_TRUE(WaitFor([&] { return !source.subscribed().empty(); }, Millis(20000))) << agent.log();
  EXPECT_EQ(source.subscribed(), std::vector<std::string>{"sensors/+/vibration"});
  // The sink may connect after the source: results published before then would be kept in the
  // outbox anyway, but the errors topic is fire-and-forget. Wait for the agent's birth message.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = broker_.Retained("edgeinfer/dev/status");
        return s && s->find("online") != std::string::npos;
      },
      Millis(20000)))
      << agent.log();

  const std::vector<std::string> unknown = {"sensors/m1/temperature", "other/m1/vibration",
                                            "sensors/m1/vibration/extra"};
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(source.Publish("sensors/m1/vibration", WindowMessage(i, std::to_string(i))));
    if (i < static_cast<int>(unknown.size())) {
      ASSERT_TRUE(source.Publish(unknown[i], WindowMessage(i, std::to_string(100 + i))));
    }
  }
  ASSERT_TRUE(WaitFor([&] { return ResultsByTs(results).size() >= 6; })) << agent.log();
  ASSERT_TRUE(WaitFor([&] { return Parse(errors).size() >= unknown.size(); })) << agent.log();
  const auto by_ts = ResultsByTs(results);
  EXPECT_EQ(by_ts.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(by_ts.count(i), 1u) << "ts " << i;
  std::set<std::string> reported;
  for (const Seen& s : Parse(errors)) {
    EXPECT_EQ(s.json.value("reason", ""), "unknown_topic") << s.json.dump();
    EXPECT_FALSE(s.json.value("detail", "").empty());
    reported.insert(s.json.value("topic", ""));
  }
  EXPECT_EQ(reported, std::set<std::string>(unknown.begin(), unknown.end()));
  // Counted: the next telemetry report says so.
  const auto counted = [&] {
    int n = -1;
    for (const Seen& s : Parse(telemetry)) n = s.json.value("unknown_topics", -1);
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return counted() >= static_cast<int>(unknown.size()); }))
      << agent.log();
  EXPECT_EQ(counted(), static_cast<int>(unknown.size()));
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

TEST_F(AgentE2E, TwoAgentsInASharedGroupSplitAStreamWithoutLossOrDuplicates) {
  const std::string pipeline = PipelineToml("vib", "$share/fleet/sensors/+/vibration", 0);
  E2eAgent a("dev-a", broker_.uri(), broker_.uri(), pipeline);
  E2eAgent b("dev-b", broker_.uri(), broker_.uri(), pipeline);
  MosquittoSubscriber results(broker_, "edgeinfer/+/results/#");
  ASSERT_TRUE(Ready(broker_, results, "edgeinfer/x/results/ready"));
  ASSERT_TRUE(a.Start() && b.Start());
  // Probes go round robin: once each agent has answered one, both are subscribed.
  const auto devices_answering = [&] {
    std::set<std::string> devices;
    for (const Seen& s : Parse(results))
      if (s.json.contains("ts") && s.json["ts"].is_string())
        devices.insert(s.json.value("device", ""));
    return devices.size();
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        if (devices_answering() == 2) return true;
        broker_.Publish("sensors/m1/vibration", WindowMessage(0, "\"probe\"", true));
        results.WaitForCount(results.Messages().size() + 1, Millis(300));
        return devices_answering() == 2;
      },
      Millis(20000)))
      << a.log() << b.log();

  constexpr int kN = 100;
  ASSERT_TRUE(broker_.PublishLines("sensors/m1/vibration", WindowMessages(0, kN, true)));
  ASSERT_TRUE(WaitFor([&] { return ResultsByTs(results).size() >= kN; }, Millis(30000)))
      << a.log() << b.log();
  std::this_thread::sleep_for(Millis(500));  // a duplicate would show up by now
  std::map<std::string, int> per_device;
  const auto by_ts = ResultsByTs(results);
  EXPECT_EQ(by_ts.size(), static_cast<size_t>(kN));
  for (const auto& [ts, list] : by_ts) {
    EXPECT_EQ(list.size(), 1u) << "ts " << ts << " delivered " << list.size() << " times";
    ++per_device[list[0].value("device", "")];
  }
  EXPECT_GT(per_device["dev-a"], 0);
  EXPECT_GT(per_device["dev-b"], 0);
  EXPECT_EQ(per_device["dev-a"] + per_device["dev-b"], kN);
  EXPECT_EQ(a.Stop(), 0) << a.log();
  EXPECT_EQ(b.Stop(), 0) << b.log();
}

}  // namespace
}  // namespace edgeinfer::agent
