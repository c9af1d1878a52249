// agent/config.cc: parsing, defaults, validation messages that name the key, printing.
#include "agent/config.h"

#include <gtest/gtest.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace edgeinfer::agent {
namespace {

// Whether `text` contains `sub`, with the text in the failure message.
testing::AssertionResult Contains(const std::string& text, const std::string& sub) {
  if (text.find(sub) != std::string::npos) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "'" << sub << "' is not in: " << text;
}

constexpr char kMinimal[] = R"(
[device]
id = "gw-1"
[[pipeline]]
name = "vibration"
model = "vibration.eim"
topics = ["sensors/+/vibration"]
)";

// kMinimal with `extra` appended to the pipeline (or anything after it).
std::string WithPipelineExtra(const std::string& extra) { return std::string(kMinimal) + extra; }

std::string ParseError(const std::string& text) {
  auto c = ParseConfig(text, "/etc/edgeinfer");
  EXPECT_FALSE(c.ok()) << text;
  return c.ok() ? "" : c.status().message();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ConfigTest, MinimalGetsDefaults) {
  auto c = ParseConfig(kMinimal, "/etc/edgeinfer");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->device_id, "gw-1");
  EXPECT_EQ(c->topic_prefix, "edgeinfer");
  EXPECT_EQ(c->state_dir, "/var/lib/edgeinfer");
  EXPECT_EQ(c->source.uri, "tcp://127.0.0.1:1883");
  EXPECT_EQ(c->source.client_id, "edgeinfer-gw-1-source");
  EXPECT_EQ(c->sink.client_id, "edgeinfer-gw-1-sink");
  EXPECT_FALSE(c->sink_configured);
  ASSERT_EQ(c->pipelines.size(), 1u);
  const PipelineConfig& p = c->pipelines[0];
  EXPECT_EQ(p.model, "/etc/edgeinfer/vibration.eim");
  EXPECT_EQ(p.input.format, "json");
  EXPECT_EQ(p.input.values, std::vector<std::string>{"/values"});
  EXPECT_EQ(p.batch.max_size, 16);
  EXPECT_EQ(p.batch.timeout_ms, 10);
  EXPECT_EQ(p.result_topic, "{prefix}/{device}/results/{pipeline}");
  EXPECT_EQ(c->telemetry.interval_s, 10);
  EXPECT_EQ(c->errors_per_minute, 60);
}

TEST(ConfigTest, IssueContractParses) {
  auto c = ParseConfig(R"(
[device]
id = "gw-0001"
topic_prefix = "edgeinfer"
state_dir = "/var/lib/edgeinfer"
[source]
uri = "tcp://127.0.0.1:1883"
[sink]
uri = "tcp://10.0.0.1:1883"
[[pipeline]]
name = "vibration"
model = "vibration.eim"
topics = ["sensors/+/vibration"]
[pipeline.input]
format = "json"
values = "/values"
timestamp = "/ts"
window = 256
hop = 256
[pipeline.batch]
max_size = 16
timeout_ms = 10
)",
                       "/cfg");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->sink_configured);
  EXPECT_EQ(c->sink.uri, "tcp://10.0.0.1:1883");
  EXPECT_EQ(c->pipelines[0].input.window, 256);
  EXPECT_EQ(c->pipelines[0].input.timestamp, "/ts");
}

TEST(ConfigTest, SinkDefaultsToSourceWithItsOwnClientId) {
  auto c = ParseConfig(std::string(R"(
[source]
uri = "ssl://broker:8883"
username = "u"
password_file = "secret"
keepalive_s = 7
)") + kMinimal,
                       "/etc/edgeinfer");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sink.uri, "ssl://broker:8883");
  EXPECT_EQ(c->sink.username, "u");
  EXPECT_EQ(c->sink.password_file, "/etc/edgeinfer/secret");
  EXPECT_EQ(c->sink.keepalive_s, 7);
  EXPECT_NE(c->sink.client_id, c->source.client_id);
}

TEST(ConfigTest, DeviceIdDefaultsToMachineIdElseHostname) {
  auto c = ParseConfig(R"(
[[pipeline]]
name = "p"
model = "/m.eim"
topics = ["a"]
)",
                       "/");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::string machine_id = ReadFile("/etc/machine-id");
  while (!machine_id.empty() && isspace(machine_id.back())) machine_id.pop_back();
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  EXPECT_EQ(c->device_id, machine_id.empty() ? std::string(host) : machine_id);
  EXPECT_FALSE(c->device_id.empty());
}

TEST(ConfigTest, OutOfRangeNamesTheKeyPath) {
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("[pipeline.batch]\nmax_size = 0\n")),
                       "pipeline[0].batch.max_size: 0 is outside 1..1024"));
  EXPECT_TRUE(Contains(ParseError(std::string("[source]\nqos = 3\n") + kMinimal),
                       "source.qos: 3 is outside 0..2"));
  EXPECT_TRUE(Contains(ParseError(std::string("[source]\nmqtt_version = 3\n") + kMinimal),
                       "source.mqtt_version: 3 is outside 4..5"));
  EXPECT_TRUE(
      Contains(ParseError(WithPipelineExtra("[pipeline.batch]\ntimeout_ms = 99999999999\n")),
               "pipeline[0].batch.timeout_ms: 99999999999 is outside 0..60000"));
}

TEST(ConfigTest, UnknownKeysNamed) {
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("[pipeline.batch]\nmax_sise = 4\n")),
                       "pipeline[0].batch.max_sise: unknown key"));
  EXPECT_TRUE(Contains(ParseError(std::string("colour = 1\n") + kMinimal), "colour: unknown key"));
  EXPECT_TRUE(Contains(ParseError(std::string(kMinimal) + "[sinc]\nuri = \"tcp://x:1\"\n"),
                       "sinc: unknown key"));
  EXPECT_TRUE(Contains(ParseError(std::string("[source.tls]\nca = \"x\"\n") + kMinimal),
                       "source.tls.ca: unknown key"));
}

TEST(ConfigTest, WrongTypesNamed) {
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("[pipeline.batch]\nmax_size = \"16\"\n")),
                       "pipeline[0].batch.max_size: expected an integer, got a string"));
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("[pipeline.postprocess]\nsoftmax = 1\n")),
                       "pipeline[0].postprocess.softmax: expected a boolean, got an integer"));
  EXPECT_TRUE(Contains(
      ParseError("device = 3\n[[pipeline]]\nname=\"p\"\nmodel=\"m.eim\"\ntopics=[\"a\"]\n"),
      "device: expected a table, got an integer"));
  auto topics = R"(
[[pipeline]]
name = "p"
model = "m.eim"
topics = ["a", 7]
)";
  EXPECT_TRUE(Contains(ParseError(topics), "pipeline[0].topics[1]: expected a string"));
}

TEST(ConfigTest, AllProblemsReportedAtOnce) {
  std::string m = ParseError(WithPipelineExtra("[pipeline.batch]\nmax_size = 0\nworkers = 0\n"));
  EXPECT_TRUE(Contains(m, "max_size"));
  EXPECT_TRUE(Contains(m, "workers"));
}

TEST(ConfigTest, TomlSyntaxErrorHasLine) {
  EXPECT_TRUE(Contains(ParseError("[device\nid = 1\n"), "line 1"));
}

TEST(ConfigTest, PipelineChecks) {
  EXPECT_TRUE(Contains(ParseError("[device]\nid = \"x\"\n"), "at least one [[pipeline]]"));
  EXPECT_TRUE(
      Contains(ParseError("[[pipeline]]\nname = \"p\"\nmodel = \"m.bin\"\ntopics = [\"a\"]\n"),
               "pipeline[0].model: 'm.bin' is neither .eim nor .onnx"));
  EXPECT_TRUE(Contains(ParseError("[[pipeline]]\nname = \"p\"\nmodel = \"m.eim\"\ntopics = []\n"),
                       "pipeline[0].topics: at least one"));
  EXPECT_TRUE(
      Contains(ParseError("[[pipeline]]\nname = \"a/b\"\nmodel = \"m.eim\"\ntopics = [\"t\"]\n"),
               "pipeline[0].name"));
  std::string two = std::string(kMinimal) +
                    "[[pipeline]]\nname = \"vibration\"\nmodel = "
                    "\"m.eim\"\ntopics = [\"x\"]\n";
  EXPECT_TRUE(Contains(ParseError(two), "pipeline[1].name: 'vibration' is already"));
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("precision = \"int8\"\n")),
                       "pipeline[0].precision: only for .onnx"));
}

TEST(ConfigTest, TopicFilters) {
  auto with_topic = [](const std::string& t) {
    return "[[pipeline]]\nname = \"p\"\nmodel = \"m.eim\"\ntopics = [\"" + t + "\"]\n";
  };
  for (const char* ok : {"a/+/b", "#", "a/#", "$share/g/a/+/c", "+"}) {
    EXPECT_TRUE(ParseConfig(with_topic(ok), "/").ok()) << ok;
  }
  EXPECT_TRUE(Contains(ParseError(with_topic("a/#/b")), "# must be the last level"));
  EXPECT_TRUE(Contains(ParseError(with_topic("a/b+")), "must fill a whole topic level"));
  EXPECT_TRUE(Contains(ParseError(with_topic("$share/g")), "$share/GROUP/FILTER"));
  EXPECT_TRUE(Contains(ParseError(with_topic("$share//a")), "$share/GROUP/FILTER"));
}

TEST(ConfigTest, InputChecks) {
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("[pipeline.input]\nformat = \"csv\"\n")),
                       "pipeline[0].input.format: 'csv'"));
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("[pipeline.input]\nvalues = \"values\"\n")),
                       "pipeline[0].input.values: 'values' is not a JSON pointer"));
  EXPECT_TRUE(
      Contains(ParseError(WithPipelineExtra("[pipeline.input]\nvalues = [\"/x\", \"y\"]\n")),
               "pipeline[0].input.values: 'y' is not a JSON pointer"));
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("[pipeline.input]\nvalues = []\n")),
                       "pipeline[0].input.values: needs at least one JSON pointer"));
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("[pipeline.input]\nvalues = [\"/x\", 3]\n")),
                       "pipeline[0].input.values[1]: expected a string"));
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("[pipeline.input]\nvalues = 3\n")),
                       "pipeline[0].input.values: expected"));
  auto channels =
      ParseConfig(WithPipelineExtra("[pipeline.input]\nvalues = [\"/x\", \"/y\"]\n"), "/");
  ASSERT_TRUE(channels.ok()) << channels.status().ToString();
  EXPECT_EQ(channels->pipelines[0].input.values, (std::vector<std::string>{"/x", "/y"}));
  const std::string text = ConfigToToml(*channels);
  auto again = ParseConfig(text, "/");  // the effective config reads back the same
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << text;
  EXPECT_EQ(again->pipelines[0].input.values, (std::vector<std::string>{"/x", "/y"})) << text;
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("[pipeline.input]\nwindow = 8\nhop = 9\n")),
                       "pipeline[0].input.hop: 9 is outside 0..8"));
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("[pipeline.input]\nhop = 9\n")),
                       "pipeline[0].input.hop: needs a window"));
  EXPECT_TRUE(
      Contains(ParseError(WithPipelineExtra("[pipeline.input]\nformat = \"f32le\"\nts = 1\n")),
               "pipeline[0].input.ts: unknown key"));
  EXPECT_TRUE(Contains(
      ParseError(WithPipelineExtra("[pipeline.input]\nformat = \"f32le\"\ntimestamp = \"/t\"\n")),
      "pipeline[0].input.timestamp: only for format = \"json\""));
}

TEST(ConfigTest, CrossKeyChecks) {
  EXPECT_TRUE(Contains(
      ParseError(WithPipelineExtra("[pipeline.batch]\nmax_size = 32\nqueue_capacity = 8\n")),
      "pipeline[0].batch.queue_capacity: 8 is below max_size (32)"));
  EXPECT_TRUE(Contains(
      ParseError(std::string("[source]\nreconnect_min_ms = 900\nreconnect_max_ms = 800\n") +
                 kMinimal),
      "source.reconnect_max_ms: 800 is below reconnect_min_ms (900)"));
  EXPECT_TRUE(Contains(ParseError(std::string("[source.tls]\nca_file = \"ca.pem\"\n") + kMinimal),
                       "source.tls: given but uri 'tcp://127.0.0.1:1883' is not ssl://"));
  EXPECT_TRUE(Contains(ParseError(std::string("[source]\nuri = \"127.0.0.1:1883\"\n") + kMinimal),
                       "source.uri: '127.0.0.1:1883' is not an MQTT URI"));
  EXPECT_TRUE(Contains(
      ParseError(std::string("[sink]\nclient_id = \"edgeinfer-gw-1-source\"\n") + kMinimal),
      "sink.client_id"));
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("result_topic = \"r/{pipe}\"\n")),
                       "pipeline[0].result_topic: 'r/{pipe}': placeholders are"));
  EXPECT_TRUE(Contains(ParseError(WithPipelineExtra("[pipeline.postprocess]\nthreshold = 0.5\n")),
                       "pipeline[0].postprocess.threshold: applies to top_k"));
}

TEST(ConfigTest, DeviceIdMustBeATopicLevel) {
  EXPECT_TRUE(
      Contains(ParseError("[device]\nid = \"a/b\"\n[[pipeline]]\nname=\"p\"\nmodel=\"m.eim\"\n"
                          "topics=[\"a\"]\n"),
               "device.id: 'a/b'"));
}

TEST(ConfigTest, ExpandTopic) {
  auto c = ParseConfig(kMinimal, "/");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(ExpandTopic("{prefix}/{device}/results/{pipeline}", *c, "vib"),
            "edgeinfer/gw-1/results/vib");
  EXPECT_EQ(ExpandTopic("x/{device}/{unknown}", *c, "p"), "x/gw-1/{unknown}");
}

TEST(ConfigTest, EffectiveTomlRoundTrips) {
  auto c = ParseConfig(WithPipelineExtra(R"(
[pipeline.input]
timestamp = "/ts"
window = 256
hop = 128
[pipeline.postprocess]
softmax = true
top_k = 2
threshold = 0.25
)"),
                       "/etc/edgeinfer");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::string text = ConfigToToml(*c);
  auto again = ParseConfig(text, "/elsewhere");
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << text;
  EXPECT_EQ(ConfigToToml(*again), text);
  EXPECT_EQ(again->pipelines[0].model, "/etc/edgeinfer/vibration.eim");
  EXPECT_EQ(again->pipelines[0].input.hop, 128);
  EXPECT_DOUBLE_EQ(again->pipelines[0].postprocess.threshold, 0.25);
}

TEST(ConfigTest, LoadFileResolvesRelativeToTheFile) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("config_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "conf");
  std::string path = (dir / "conf" / "agent.toml").string();
  std::ofstream(path) << kMinimal << "\n";
  auto c = LoadConfigFile(path);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->pipelines[0].model, (dir / "conf" / "vibration.eim").string());
  EXPECT_EQ(c->config_path, path);
  std::ofstream(path) << "[device\n";
  auto bad = LoadConfigFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(bad.status().message(), path + ":1:"));
  EXPECT_EQ(LoadConfigFile((dir / "missing.toml").string()).status().code(),
            Status::Code::kNotFound);
  std::filesystem::remove_all(dir);
}

// The shipped example parses, and documents every key the agent knows.
TEST(ConfigTest, ExampleFileDocumentsEveryKey) {
  std::string path = EDGEINFER_SOURCE_DIR "/agent/edgeinfer-agent.example.toml";
  auto c = LoadConfigFile(path);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::string example = ReadFile(path);
  AgentConfig full = *c;
  full.source.tls.emplace();
  full.pipelines[0].postprocess.top_k = 1;  // prints threshold
  toml::table printed = toml::parse(ConfigToToml(full));
  std::vector<std::string> keys;
  printed.for_each([&](const toml::key& k, auto&&) { keys.push_back(std::string(k.str())); });
  auto collect = [&](const toml::table& t, auto&& self) -> void {
    for (const auto& [k, v] : t) {
      keys.push_back(std::string(k.str()));
      if (v.is_table()) self(*v.as_table(), self);
      if (v.is_array_of_tables()) self(*v.as_array()->get(0)->as_table(), self);
    }
  };
  collect(printed, collect);
  for (const auto& key : keys) {
    bool plain = example.find("\n" + key + " = ") != std::string::npos;
    bool commented = example.find("# " + key + " = ") != std::string::npos;
    bool table = example.find("[" + key) != std::string::npos ||
                 example.find("." + key + "]") != std::string::npos;
    EXPECT_TRUE(plain || commented || table) << "the example does not explain '" << key << "'";
  }
}

}  // namespace
}  // namespace edgeinfer::agent
