// edgeinfer-simulate: N rotating machines publishing 3-axis vibration over MQTT.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "agent/app.h"
#include "agent/simulator.h"

namespace {

constexpr char kHelp[] =
    "usage: edgeinfer-simulate --uri tcp://127.0.0.1:PORT [options]\n"
    "\n"
    "Simulated rotating machines (shaft 15-50 Hz) with 3-axis accelerometers in g, sampled at\n"
    "1000 Hz, the physics of scripts/vibration_sim.py: normal, imbalance, misalignment and\n"
    "bearing faults appearing and being repaired over time. Each message is what a sensor\n"
    "gateway sends: {\"ts\": unix_ms, \"values\": [x,y,z, x,y,z, ...]} (K time steps).\n"
    "Prints a line per second of what it sent, and each condition change.\n"
    "\n"
    "  --uri URI                  broker (default tcp://127.0.0.1:1883)\n"
    "  --machines N               machines (default 4)\n"
    "  --rate HZ                  messages per second per machine (default: real time,\n"
    "                             1000 / K)\n"
    "  --duration S               seconds to run (default 10); Ctrl-C stops earlier\n"
    "  --fault-rate P             chance per machine per second that its condition changes\n"
    "                             (default 0.05)\n"
    "  --topic T                  topic template (default 'sensors/{machine}/vibration',\n"
    "                             {machine} = machine-1 .. machine-N)\n"
    "  --samples-per-message K    time steps per message (default 64)\n"
    "  --bad-rate P               chance of an extra malformed message (default 0)\n"
    "  --qos Q                    publish QoS (default 1)\n"
    "  --seed S                   random seed (default 1)\n"
    "  --client-id ID             MQTT client id (default edgeinfer-simulate-PID)\n"
    "  --help                     this text\n";

int Usage(const std::string& message) {
  std::fprintf(stderr, "edgeinfer-simulate: %s\n\n%s", message.c_str(), kHelp);
  return 2;
}

bool ParseDouble(const char* s, double* out) {
  char* end = nullptr;
  *out = std::strtod(s, &end);
  return end != s && *end == '\0';
}

// Applies `flag value`; false when the flag is unknown or the value is not a number.
bool Apply(edgeinfer::agent::SimulatorOptions* o, const std::string& flag, const char* value) {
  double v = 0;
  if (flag == "--uri") return o->uri = value, true;
  if (flag == "--topic") return o->topic = value, true;
  if (flag == "--client-id") return o->client_id = value, true;
  if (!ParseDouble(value, &v)) return false;
  if (flag == "--machines")
    o->machines = static_cast<int>(v);
  else if (flag == "--rate")
    o->rate_hz = v;
  else if (flag == "--duration")
    o->duration_s = v;
  else if (flag == "--fault-rate")
    o->fault_rate = v;
  else if (flag == "--samples-per-message")
    o->samples_per_message = static_cast<int>(v);
  else if (flag == "--bad-rate")
    o->bad_rate = v;
  else if (flag == "--qos")
    o->qos = static_cast<int>(v);
  else if (flag == "--seed")
    o->seed = static_cast<uint64_t>(v);
  else
    return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  edgeinfer::agent::SimulatorOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") return std::fputs(kHelp, stdout), 0;
    std::string value;
    size_t eq = flag.find('=');
    if (eq != std::string::npos)
      value = flag.substr(eq + 1), flag = flag.substr(0, eq);
    else if (i + 1 < argc)
      value = argv[++i];
    else
      return Usage(flag + " needs a value");
    if (!Apply(&options, flag, value.c_str()))
      return Usage("bad option or value: " + flag + " " + value);
  }
  if (auto st = edgeinfer::agent::ValidateSimulatorOptions(options); !st.ok())
    return Usage(st.message());
  const int stop_fd = edgeinfer::agent::InstallSignalPipe({SIGINT, SIGTERM});
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto st = edgeinfer::agent::RunSimulator(options, stdout, stop_fd);
  if (!st.ok()) {
    std::fprintf(stderr, "edgeinfer-simulate: %s\n", st.message().c_str());
    return 1;
  }
  return 0;
}
