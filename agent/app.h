// The edgeinfer agent process: configuration -> models -> MQTT links -> pipelines -> results.
//
//   source link --OnMessage--> Router --> every matching Pipeline (unknown topics: counted,
//                                          reported on {prefix}/{device}/errors)
//   Pipeline --PublishResult--> ResultPublisher: SQLite outbox (state_dir/outbox.db), then the
//                               sink link at QoS 1; a row is deleted when its PUBACK arrives;
//                               undelivered rows are replayed after a reconnect or a restart,
//                               with a bounded window of publishes in flight
//   Pipeline/Router --Reject--> ErrorReporter: counted; rate-limited JSON dead letters
//   sink link: retained birth {"state":"online",...} on {prefix}/{device}/status, retained will
//              {"state":"offline",...}; telemetry every telemetry.interval_s
//
// Lifecycle (App::Run): SIGTERM/SIGINT stop intake (the source link disconnects), drain every
// pipeline (each accepted input produces its result), deliver the outbox (bounded wait), then
// publish the retained offline status and disconnect. SIGHUP re-reads the config file; see
// App::Reload for what applies without a restart. Signals go through a self-pipe: the handler
// only write()s the signal number; the main loop reads it and does the work. (Not a signalfd:
// that needs the signals blocked in every thread, and OpenBLAS starts its threads from a
// library constructor, before main can block anything.)
#pragma once

#include <memory>
#include <string>

#include "agent/config.h"
#include "agent/model_loader.h"
#include "agent/signal_pipe.h"
#include "common/status.h"
#include "inference/model.h"

namespace edgeinfer::agent {

// The agent's version (the project version).
const char* AgentVersion();

// What --check-config does besides parsing: every model loads (nothing written) and fits its
// pipeline (window, shapes), and password files are readable. Lists every problem.
Status CheckConfig(const AgentConfig& config);

class App {
 public:
  // Loads the models and creates the links and pipelines; connects nothing yet. Installs the
  // signal pipe for SIGINT, SIGTERM and SIGHUP.
  static Result<std::unique_ptr<App>> Create(AgentConfig config);
  ~App();

  // Connects and runs until SIGTERM or SIGINT, then shuts down as described above. Returns
  // the process exit status (0 after a clean shutdown).
  int Run();

 private:
  App();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeinfer::agent
