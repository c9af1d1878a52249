// The agent's telemetry as a fleet monitor reads it: JSON on {prefix}/{device}/telemetry every
// interval_s (read with mosquitto_sub), and the same figures as Prometheus text on the loopback
// endpoint (read over a real TCP socket). Every wait is bounded.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/agent/agent_process.h"
#include "tests/agent/mosquitto_fixture.h"

namespace edgeinfer::agent {
namespace {

using Json = nlohmann::json;
using testing_agent::AgentProcess;
using testing_agent::InputMessage;
using testing_agent::kModel;
using testing_mqtt::Millis;
using testing_mqtt::MosquittoSubscriber;
using testing_mqtt::WaitFor;

// GET `path` from 127.0.0.1:port; the whole response, or "" when nothing answers.
std::string HttpGet(int port, const std::string& path) {
  const int fd = testing_mqtt::ConnectLoopback(port);
  if (fd < 0) return "";
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string response;
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(request.size())) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) response.append(buf, n);
  }
  ::close(fd);
  return response;
}

class AgentTelemetry : public testing_agent::AgentTest {};

TEST_F(AgentTelemetry, ReportsOnTheTopicAndOnThePrometheusEndpoint) {
  AgentProcess agent("tele");
  ASSERT_FALSE(agent.dir().empty());
  const int port = testing_mqtt::FreeLoopbackPort();
  ASSERT_GT(port, 0);
  agent.WriteConfig("[device]\nid = \"tele-1\"\nstate_dir = \"" + agent.state_dir().string() +
                    "\"\n[source]\nuri = \"" + broker_.uri() + "\"\n[telemetry]\ninterval_s = 1\n" +
                    "prometheus_port = " + std::to_string(port) + "\n[memory]\npoll_ms = 100\n" +
                    "[[pipeline]]\nname = \"vib\"\nmodel = \"" + kModel +
                    "\"\ntopics = [\"sensors/+/vibration\"]\n[pipeline.input]\nwindow = 0\n");
  MosquittoSubscriber telemetry(broker_, "edgeinfer/tele-1/telemetry");
  ASSERT_TRUE(telemetry.WaitReady());
  ASSERT_TRUE(agent.Start());

  // Inputs until a report counts them (the agent subscribes shortly after it starts).
  Json report;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < 5; ++i) broker_.Publish("sensors/m1/vibration", InputMessage(i), 0);
        const auto messages = telemetry.Messages();
        if (messages.empty()) return false;
        const std::string& last = messages.back();
        report = Json::parse(last.substr(last.find(' ') + 1), nullptr, false);
        return report.is_object() && report["pipelines"]["vib"]["inferences"].get<int>() >= 5;
      },
      Millis(30000)))
      << agent.log();

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

  EXPECT_EQ(agent.Stop(), 0) << agent.log();
  // Off by default: the endpoint is gone with the agent, and nothing else listens there.
  EXPECT_EQ(HttpGet(port, "/metrics"), "");
}

}  // namespace
}  // namespace edgeinfer::agent
