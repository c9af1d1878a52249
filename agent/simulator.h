// edgeinfer-simulate: rotating machines with 3-axis accelerometers, publishing over MQTT the way
// real sensors do, for demos, tests and benchmarks of the agent.
//
// The physics is scripts/vibration_sim.py's (the data the example vibration model was trained
// on), run as a continuous signal per machine instead of independent windows: shaft speed
// 15-50 Hz with a slow drift, elliptical 1x orbit, 2x and axial components, motor line
// vibration, sensor noise and gravity through a tilted mount; misalignment's strong 2x and
// phase-shifted axial; bearing outer-race strikes at BPFO ringing a structural resonance. Every
// random range is the training script's, so the model sees the distribution it learned.
#pragma once

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "common/status.h"

namespace edgeinfer::agent {

// The example model's classes, in label order.
enum class MachineCondition { kNormal, kImbalance, kMisalignment, kBearingFault };
const char* ConditionName(MachineCondition c);

// One machine's sensor: a continuous signal sampled at `sample_rate_hz`. Not thread-safe.
class SimulatedMachine {
 public:
  explicit SimulatedMachine(uint64_t seed, double sample_rate_hz = 1000.0);

  // Changes the machine's condition and draws the new fault's parameters; the shaft, mount and
  // noise stay (it is the same machine).
  void SetCondition(MachineCondition c);
  MachineCondition condition() const { return condition_; }
  // Appends `steps` time steps in g, axes interleaved: x, y, z, x, y, z, ...
  void Generate(int steps, std::vector<float>* out);

 private:
  struct Strike {
    double t;
    double amp;
  };
  double U(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }
  double Normal() { return normal_(rng_); }
  void DrawMachine();
  void DrawFault();
  double ShaftHz() const;
  double BearingImpulse();
  void Step(float xyz[3]);

  std::mt19937_64 rng_;
  std::normal_distribution<double> normal_{0.0, 1.0};
  double fs_;
  double t_ = 0;      // seconds since start
  double theta_ = 0;  // shaft angle, rad
  MachineCondition condition_ = MachineCondition::kNormal;
  // The machine: shaft speed and its slow drift, orbit shape, motor, noise, mount.
  double f_r_ = 0, drift_depth_ = 0, drift_period_ = 0, drift_phase_ = 0;
  double ratio_ = 0, quad_ = 0, phase2_ = 0;
  double f_line_ = 0, a_line_[3] = {}, p_line_[3] = {}, noise_[3] = {}, gravity_[3] = {};
  // The condition: 1x, 2x and axial levels; bearing defect and resonance.
  double a1_ = 0, a2_ = 0, ax_ = 0, ax_phase_ = 0;
  double bpfo_k_ = 0, f_n_ = 0, decay_ = 0, mod_depth_ = 0, strength_ = 0, gains_[3] = {};
  double next_strike_nominal_ = 0;
  std::vector<Strike> strikes_;
};

struct SimulatorOptions {
  std::string uri = "tcp://127.0.0.1:1883";
  std::string client_id;  // default: "edgeinfer-simulate-{pid}"
  int machines = 4;
  double rate_hz = 0;  // messages per second per machine; 0: real time (sample rate / K)
  double duration_s = 10;
  double fault_rate = 0.05;  // per machine per second: chance its condition changes
  std::string topic = "sensors/{machine}/vibration";  // {machine}: machine-1 .. machine-N
  int samples_per_message = 64;
  double bad_rate = 0;  // chance that a malformed message goes out beside a good one
  int qos = 1;
  uint64_t seed = 1;
  double sample_rate_hz = 1000.0;
};

// Checks ranges; the message names the option.
Status ValidateSimulatorOptions(const SimulatorOptions& o);

// {"ts":ts_ms,"values":[...]} with 5 decimals (what a sensor gateway sends, in g).
std::string SensorMessage(int64_t ts_ms, const std::vector<float>& values);
// One of several kinds of broken message (truncated JSON, strings, a length that is not a
// whole number of time steps, a number out of float range, missing values); `kind` chooses.
std::string BadSensorMessage(int kind, int64_t ts_ms, const std::vector<float>& values);

// Connects, publishes until `duration_s` has passed or `stop_fd` becomes readable (e.g. the
// signal pipe; -1: none), and prints a line per second to `log`. Fails when the broker cannot
// be reached at the start.
Status RunSimulator(const SimulatorOptions& options, std::FILE* log, int stop_fd = -1);

}  // namespace edgeinfer::agent
