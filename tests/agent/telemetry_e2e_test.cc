// The agent's telemetry as a fleet monitor reads it: JSON on {prefix}/{device}/telemetry every
// interval_s (read with mosquitto_sub), and the same figures as Prometheus text on the loopback
// endpoint (read over a real TCP socket). Every wait is bounded.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/agent/mosquitto_fixture.h"

namespace edgeinfer::agent {
namespace {

using Json = nlohmann::json;
using testing_mqtt::Millis;
using testing_mqtt::MosquittoBroker;
using testing_mqtt::MosquittoSubscriber;
using testing_mqtt::WaitFor;

constexpr char kAgent[] = EDGEINFER_BINARY_DIR "/agent/edgeinfer-agent";
constexpr char kModel[] = EDGEINFER_SOURCE_DIR "/examples/vibration.onnx";

std::string InputMessage(int i) {
  std::string s = "{\"values\":[";
  for (int k = 0; k < 3 * 256; ++k) s += (k ? "," : "") + std::to_string((k * 7 + i) % 13 * 0.1);
  return s + "]}";
}

// GET `path` from 127.0.0.1:port; the whole response, or "" when nothing answers.
std::string HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) response.append(buf, n);
    }
  }
  ::close(fd);
  return response;
}

// A free loopback port (bound and released: a race with other processes, harmless here).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

TEST(AgentTelemetry, ReportsOnTheTopicAndOnThePrometheusEndpoint) {
  if (!MosquittoBroker::Available()) GTEST_SKIP() << "/usr/sbin/mosquitto is not installed";
  ASSERT_TRUE(testing_mqtt::HaveProgram(kAgent)) << kAgent << ": build edgeinfer-agent first";
  MosquittoBroker broker;
  ASSERT_TRUE(broker.Start()) << broker.error();
  std::string tmpl = std::filesystem::temp_directory_path().string() + "/edgeinfer-tele-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::filesystem::path dir = tmpl;
  const int port = FreePort();
  ASSERT_GT(port, 0);
  testing_mqtt::WriteFile(
      dir / "agent.toml",
      "[device]\nid = \"tele-1\"\nstate_dir = \"" + (dir / "state").string() +
          "\"\n[source]\nuri = \"" + broker.uri() + "\"\n[telemetry]\ninterval_s = 1\n" +
          "prometheus_port = " + std::to_string(port) + "\n[memory]\npoll_ms = 100\n" +
          "[[pipeline]]\nname = \"vib\"\nmodel = \"" + kModel +
          "\"\ntopics = [\"sensors/+/vibration\"]\n[pipeline.input]\nwindow = 0\n");
  MosquittoSubscriber telemetry(broker, "edgeinfer/tele-1/telemetry");
  ASSERT_TRUE(telemetry.WaitReady());
  const int err = ::open((dir / "agent.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  testing_mqtt::SpawnOptions o;
  o.stderr_fd = err;
  const pid_t pid = testing_mqtt::Spawn({kAgent, "--config", (dir / "agent.toml").string()}, o);
  ::close(err);
  ASSERT_GT(pid, 0);
  const auto log = [&] { return testing_mqtt::ReadFile(dir / "agent.log"); };

  // Inputs until a report counts them (the agent subscribes shortly after it starts).
  Json report;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < 5; ++i) broker.Publish("sensors/m1/vibration", InputMessage(i), 0);
        const auto messages = telemetry.Messages();
        if (messages.empty()) return false;
        const std::string& last = messages.back();
        report = Json::parse(last.substr(last.find(' ') + 1), nullptr, false);
        return report.is_object() && report["pipelines"]["vib"]["inferences"].get<int>() >= 5;
      },
      Millis(30000)))
      << log();

  // The list: version, boot id, uptime, CPU, RSS and private memory, arena and max
  // batch, MemAvailable, cgroup usage, PSI, watchdog level; per pipeline counts and latency
  // percentiles; outbox; links.
  EXPECT_FALSE(report["version"].get<std::string>().empty());
  EXPECT_FALSE(report["boot_id"].get<std::string>().empty());
  EXPECT_GT(report["uptime_s"].get<double>(), 0);
  EXPECT_GT(report["process"]["rss_bytes"].get<int64_t>(), 1 << 20);
  EXPECT_GT(report["process"]["private_bytes"].get<int64_t>(), 0);
  EXPECT_TRUE(report["process"].contains("cpu_percent"));
  EXPECT_GT(report["memory"]["mem_available"].get<int64_t>(), 0);
  EXPECT_GT(report["memory"]["limit_bytes"].get<int64_t>(), 0);
  EXPECT_TRUE(report["memory"].contains("psi"));
  EXPECT_EQ(report["watchdog"]["level"], "normal");
  const Json& vib = report["pipelines"]["vib"];
  EXPECT_GT(vib["arena_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(vib["max_batch"].get<int>(), vib["max_batch_ceiling"].get<int>());
  EXPECT_GE(vib["messages_in"].get<int>(), 5);
  EXPECT_GE(vib["batches"].get<int>(), 1);
  EXPECT_TRUE(vib["rejected"].contains("malformed"));
  EXPECT_TRUE(vib["latency_ms"].contains("p99")) << vib.dump();
  EXPECT_TRUE(vib["inference_ms"].contains("p50")) << vib.dump();
  EXPECT_TRUE(report["outbox"].contains("depth_rows"));
  EXPECT_TRUE(report["links"]["sink"]["connected"].get<bool>());
  EXPECT_TRUE(report.contains("report_cpu_us"));

  // The same figures in Prometheus text; other paths are 404.
  const std::string metrics = HttpGet(port, "/metrics");
  EXPECT_NE(metrics.find("200"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("# TYPE edgeinfer_pipeline_inferences gauge"), std::string::npos);
  EXPECT_NE(metrics.find("edgeinfer_pipeline_arena_bytes{pipeline=\"vib\"}"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("edgeinfer_link_connected{link=\"sink\"} 1"), std::string::npos);
  EXPECT_NE(HttpGet(port, "/nothing").find("404"), std::string::npos);

  ::kill(pid, SIGTERM);
  EXPECT_EQ(testing_mqtt::WaitExit(pid, Millis(30000)), 0) << log();
  // Off by default: the endpoint is gone with the agent, and nothing else listens there.
  EXPECT_EQ(HttpGet(port, "/metrics"), "");
  std::error_code ec;
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace edgeinfer::agent
