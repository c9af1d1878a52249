// edgeinfer-agent: MQTT sensor streams in, batched inference, results out (see agent/app.h).
#include <signal.h>

#include <cstdio>
#include <string>

#include "agent/app.h"
#include "agent/config.h"

namespace {

constexpr char kHelp[] =
    "usage: edgeinfer-agent --config FILE [--check-config]\n"
    "       edgeinfer-agent --help | --version\n"
    "\n"
    "Subscribes to the sensor topics of each [[pipeline]] in FILE (TOML), runs the model on the\n"
    "windows they form, batched, and publishes the results on the uplink (through the SQLite\n"
    "outbox in device.state_dir). Every key is explained in edgeinfer-agent.example.toml.\n"
    "\n"
    "  --config FILE     the configuration file\n"
    "  --check-config    validate the file and its models (nothing is written or connected),\n"
    "                    print the effective configuration, exit\n"
    "  --help            this text\n"
    "  --version         the version\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop intake, finish queued inputs, deliver their results and\n"
    "disconnect (status: offline); SIGHUP re-reads FILE and applies what can change without a\n"
    "restart (see the example file).\n"
    "Exit status: 0 clean stop or valid config; 1 runtime failure; 2 usage; 78 invalid config.\n"
    "Logs go to stderr.\n";

constexpr int kExitUsage = 2;
constexpr int kExitConfig = 78;  // EX_CONFIG; systemd units can refuse to restart on it

int Usage(const std::string& message) {
  std::fprintf(stderr, "edgeinfer-agent: %s\n\n%s", message.c_str(), kHelp);
  return kExitUsage;
}

struct Args {
  std::string config;
  bool check = false;
};

// 0 to go on; otherwise the exit status (after printing help, version or a usage error).
int ParseArgs(int argc, char** argv, Args* args) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") return std::fputs(kHelp, stdout), -1;
    if (a == "--version") {
      std::printf("edgeinfer-agent %s\n", edgeinfer::agent::AgentVersion());
      return -1;
    }
    if (a == "--check-config") {
      args->check = true;
    } else if (a.starts_with("--config=")) {
      args->config = a.substr(9);
    } else if (a == "--config") {
      if (i + 1 >= argc) return Usage("--config needs a FILE");
      args->config = argv[++i];
    } else {
      return Usage("unknown argument '" + a + "'");
    }
  }
  if (args->config.empty()) return Usage("--config FILE is required");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (int code = ParseArgs(argc, argv, &args)) return code < 0 ? 0 : code;
  signal(SIGPIPE, SIG_IGN);  // a broken broker socket is an error return, not a death

  auto config = edgeinfer::agent::LoadConfigFile(args.config);
  if (!config.ok()) {
    std::fprintf(stderr, "edgeinfer-agent: invalid configuration: %s\n",
                 config.status().message().c_str());
    return kExitConfig;
  }
  if (args.check) {
    auto st = edgeinfer::agent::CheckConfig(*config);
    if (!st.ok()) {
      std::fprintf(stderr, "edgeinfer-agent: %s: %s\n", args.config.c_str(), st.message().c_str());
      return kExitConfig;
    }
    std::fputs(edgeinfer::agent::ConfigToToml(*config).c_str(), stdout);
    return 0;
  }
  auto app = edgeinfer::agent::App::Create(std::move(*config));
  if (!app.ok()) {
    std::fprintf(stderr, "edgeinfer-agent: cannot start: %s\n", app.status().ToString().c_str());
    return app.status().code() == edgeinfer::Status::Code::kInvalidArgument ? kExitConfig : 1;
  }
  return (*app)->Run();
}
