// Simulated rotating machines publishing accelerometer messages (see simulator.h).
#include "agent/simulator.h"

#include <mqtt/async_client.h>
#include <poll.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <deque>
#include <memory>
#include <numbers>

#include "agent/log.h"

namespace edgeinfer::agent {
namespace {

constexpr double kPi = std::numbers::pi;
using Clock = std::chrono::steady_clock;

void AppendFloat(std::string* out, float v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed, 5);
  out->append(buf, r.ptr);
}

}  // namespace

const char* ConditionName(MachineCondition c) {
  static const char* kNames[] = {"normal", "imbalance", "misalignment", "bearing_fault"};
  return kNames[static_cast<int>(c)];
}

// --- physics (scripts/vibration_sim.py, sample by sample) ---------------------------------------

SimulatedMachine::SimulatedMachine(uint64_t seed, double sample_rate_hz)
    : rng_(seed), fs_(sample_rate_hz) {
  DrawMachine();
  DrawFault();
}

void SimulatedMachine::DrawMachine() {
  f_r_ = U(15.0, 50.0);
  // The script drifts speed by up to 2 % within a window; here a slow wander of up to 2 %.
  drift_depth_ = U(0.0, 0.02);
  drift_period_ = U(20.0, 60.0);
  drift_phase_ = U(0, 2 * kPi);
  theta_ = U(0, 2 * kPi);
  ratio_ = U(0.6, 1.3);
  quad_ = kPi / 2 + U(-0.4, 0.4);
  phase2_ = U(0, 2 * kPi);
  f_line_ = 2 * (U(0, 1) < 0.5 ? 50.0 : 60.0);
  double noise = U(0.01, 0.05);
  double tilt = U(0, 8) * kPi / 180, az = U(0, 2 * kPi);
  gravity_[0] = std::sin(tilt) * std::cos(az);
  gravity_[1] = std::sin(tilt) * std::sin(az);
  gravity_[2] = std::cos(tilt);
  for (int c = 0; c < 3; ++c) {
    a_line_[c] = U(0.0, 0.02);
    p_line_[c] = U(0, 2 * kPi);
    noise_[c] = noise * U(0.8, 1.2);
  }
}

void SimulatedMachine::DrawFault() {
  const bool imbalance = condition_ == MachineCondition::kImbalance;
  const bool misaligned = condition_ == MachineCondition::kMisalignment;
  a1_ = imbalance ? U(0.04, 0.30) : misaligned ? U(0.01, 0.10) : U(0.005, 0.05);
  a2_ = misaligned ? U(0.03, 0.20) : a1_ * U(0.02, 0.25);
  ax_ = misaligned ? U(0.5, 1.5) : U(0.05, 0.35);
  ax_phase_ = misaligned ? kPi + U(-0.6, 0.6) : U(-kPi / 4, kPi / 4);
  strikes_.clear();
  strength_ = 0;
  if (condition_ != MachineCondition::kBearingFault) return;
  bpfo_k_ = U(3.5, 5.5);
  f_n_ = U(150.0, 450.0);
  decay_ = U(0.03, 0.10) * 2 * kPi * f_n_;
  mod_depth_ = U(0.2, 0.9);
  strength_ = U(0.03, 0.35);
  gains_[0] = U(0.6, 1.0), gains_[1] = U(0.6, 1.0), gains_[2] = U(0.1, 0.4);
  for (double& g : gains_) g *= U(0, 1) < 0.5 ? -1.0 : 1.0;
  next_strike_nominal_ = t_ + U(0, 1) / (bpfo_k_ * ShaftHz());
}

void SimulatedMachine::SetCondition(MachineCondition c) {
  condition_ = c;
  DrawFault();
}

double SimulatedMachine::ShaftHz() const {
  return f_r_ * (1 + drift_depth_ * std::sin(2 * kPi * t_ / drift_period_ + drift_phase_));
}

// Outer-race strikes at BPFO (with 1.5 % slip), amplitude modulated by the load zone at 1x,
// each ringing the resonance down; sum of the live ones at t_.
double SimulatedMachine::BearingImpulse() {
  const double period = 1.0 / (bpfo_k_ * ShaftHz());
  while (next_strike_nominal_ <= t_ + 2 * period) {
    double tk = next_strike_nominal_ + Normal() * 0.015 * period;
    double angle = theta_ + 2 * kPi * ShaftHz() * (tk - t_);
    double amp = (1 + mod_depth_ * std::cos(angle)) * U(0.8, 1.2);
    strikes_.push_back({tk, amp});
    next_strike_nominal_ += period;
  }
  double sum = 0;
  size_t live = 0;
  for (const Strike& s : strikes_) {
    double tau = t_ - s.t;
    if (decay_ * tau > 12) continue;  // rung down (e^-12): drop it
    strikes_[live++] = s;
    if (tau >= 0) sum += s.amp * std::exp(-decay_ * tau) * std::sin(2 * kPi * f_n_ * tau);
  }
  strikes_.resize(live);
  return sum;
}

void SimulatedMachine::Step(float xyz[3]) {
  const double th = theta_;
  double x = a1_ * std::cos(th) + a2_ * std::cos(2 * th + phase2_);
  double y = ratio_ * (a1_ * std::cos(th - quad_) + a2_ * std::cos(2 * th + phase2_ - quad_));
  double z = ax_ * (std::max(a1_, 0.02) * std::cos(th + ax_phase_) +
                    a2_ * std::cos(2 * th + phase2_ + ax_phase_));
  double v[3] = {x, y, z};
  double imp = strength_ > 0 ? strength_ * BearingImpulse() : 0;
  for (int c = 0; c < 3; ++c) {
    v[c] += gains_[c] * imp;
    v[c] += a_line_[c] * std::sin(2 * kPi * f_line_ * t_ + p_line_[c]);
    v[c] += noise_[c] * Normal() + gravity_[c];
    xyz[c] = static_cast<float>(v[c]);
  }
  theta_ = std::fmod(theta_ + 2 * kPi * ShaftHz() / fs_, 2 * kPi);
  t_ += 1.0 / fs_;
}

void SimulatedMachine::Generate(int steps, std::vector<float>* out) {
  size_t at = out->size();
  out->resize(at + 3 * static_cast<size_t>(steps));
  for (int i = 0; i < steps; ++i) Step(out->data() + at + 3 * i);
}

// --- messages ---------------------------------------------------------------------------------

std::string SensorMessage(int64_t ts_ms, const std::vector<float>& values) {
  std::string s = "{\"ts\":" + std::to_string(ts_ms) + ",\"values\":[";
  s.reserve(s.size() + values.size() * 9 + 2);
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) s += ',';
    AppendFloat(&s, values[i]);
  }
  return s + "]}";
}

std::string BadSensorMessage(int kind, int64_t ts_ms, const std::vector<float>& values) {
  const std::string ts = std::to_string(ts_ms);
  switch (kind % 5) {
    case 0: {  // cut off in transit
      std::string good = SensorMessage(ts_ms, values);
      return good.substr(0, good.size() / 2);
    }
    case 1:
      return "{\"ts\":" + ts + ",\"values\":[\"0.1\",\"0.2\",\"0.3\"]}";
    case 2: {  // a time step short of one axis
      std::vector<float> v(values.begin(), values.end() - (values.empty() ? 0 : 1));
      return SensorMessage(ts_ms, v);
    }
    case 3:
      return "{\"ts\":" + ts + ",\"values\":[1e39,0.0,1.0]}";  // beyond float: Inf
    default:
      return "{\"ts\":" + ts + ",\"value\":0.5}";  // wrong field name
  }
}

Status ValidateSimulatorOptions(const SimulatorOptions& o) {
  auto bad = [](const std::string& m) { return Status::InvalidArgument(m); };
  if (o.machines < 1 || o.machines > 100000) return bad("--machines: outside 1..100000");
  if (!(o.rate_hz >= 0 && o.rate_hz <= 1e6)) return bad("--rate: outside 0..1000000");
  if (!(o.duration_s > 0 && o.duration_s <= 1e7)) return bad("--duration: must be above 0");
  if (!(o.fault_rate >= 0 && o.fault_rate <= 1)) return bad("--fault-rate: outside 0..1");
  if (!(o.bad_rate >= 0 && o.bad_rate <= 1)) return bad("--bad-rate: outside 0..1");
  if (o.samples_per_message < 1 || o.samples_per_message > 100000)
    return bad("--samples-per-message: outside 1..100000");
  if (o.qos < 0 || o.qos > 2) return bad("--qos: outside 0..2");
  if (o.topic.empty()) return bad("--topic: empty");
  return Status::Ok();
}

// --- the MQTT side and the loop ----------------------------------------------------------------

namespace {

// A Paho async client with a bounded window of unfinished publishes, so a slow broker slows
// the simulator down instead of growing memory.
class Publisher {
 public:
  Status Connect(const SimulatorOptions& o) {
    std::string id =
        o.client_id.empty() ? "edgeinfer-simulate-" + std::to_string(getpid()) : o.client_id;
    try {
      client_ = std::make_unique<mqtt::async_client>(o.uri, id);
      auto opts = mqtt::connect_options_builder()
                      .clean_session(true)
                      .keep_alive_interval(std::chrono::seconds(20))
                      .automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(5))
                      .connect_timeout(std::chrono::seconds(5))
                      .finalize();
      client_->connect(opts)->wait_for(std::chrono::seconds(6));
    } catch (const mqtt::exception& e) {
      return Status::IOError("connect to " + o.uri + ": " + e.what(), ECONNREFUSED);
    }
    if (!client_->is_connected()) return Status::IOError("connect to " + o.uri, ETIMEDOUT);
    return Status::Ok();
  }

  bool Publish(const std::string& topic, const std::string& payload, int qos) {
    while (!window_.empty() && (window_.size() >= kWindow || window_.front()->is_complete())) {
      Settle(std::chrono::seconds(5));
    }
    try {
      window_.push_back(client_->publish(topic, payload.data(), payload.size(), qos, false));
      return true;
    } catch (const mqtt::exception&) {
      return false;  // disconnected: Paho reconnects; this message is lost, as a sensor's is
    }
  }

  void Finish() {
    while (!window_.empty()) Settle(std::chrono::seconds(2));
    try {
      if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(3));
    } catch (const mqtt::exception&) {
    }
  }

  uint64_t failed() const { return failed_; }

 private:
  static constexpr size_t kWindow = 512;
  void Settle(std::chrono::seconds timeout) {
    try {
      if (!window_.front()->wait_for(timeout)) ++failed_;
    } catch (const mqtt::exception&) {
      ++failed_;
    }
    window_.pop_front();
  }

  std::unique_ptr<mqtt::async_client> client_;
  std::deque<mqtt::delivery_token_ptr> window_;
  uint64_t failed_ = 0;
};

// Sleeps until `deadline`; true if `stop_fd` became readable first.
bool WaitForStop(int stop_fd, Clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{stop_fd, POLLIN, 0};
    int n = poll(&pfd, stop_fd >= 0 ? 1 : 0, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR || Clock::now() >= deadline) return false;
  }
}

struct Counters {
  uint64_t messages = 0, samples = 0, bad = 0, failed = 0;
};

class Simulation {
 public:
  Simulation(const SimulatorOptions& o, std::FILE* log, int stop_fd)
      : o_(o), log_(log), stop_fd_(stop_fd), rng_(o.seed) {
    for (int i = 0; i < o.machines; ++i) {
      machines_.emplace_back(o.seed * 1000003 + i, o.sample_rate_hz);
      names_.push_back("machine-" + std::to_string(i + 1));
      std::string topic = o.topic;
      size_t at = topic.find("{machine}");
      if (at != std::string::npos) topic.replace(at, 9, names_.back());
      topics_.push_back(topic);
    }
  }

  Status Run() {
    EI_RETURN_IF_ERROR(publisher_.Connect(o_));
    const double rate = o_.rate_hz > 0 ? o_.rate_hz : o_.sample_rate_hz / o_.samples_per_message;
    std::fprintf(log_, "sim: %d machines -> %s on %s, %.3g msg/s each, %d samples/msg, %.0f s\n",
                 o_.machines, o_.topic.c_str(), o_.uri.c_str(), rate, o_.samples_per_message,
                 o_.duration_s);
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(o_.duration_s));
    const auto period =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
    auto next = start;
    auto next_report = start + std::chrono::seconds(1);
    bool interrupted = false;
    while (!(interrupted = WaitForStop(stop_fd_, std::min(next, end))) && Clock::now() < end) {
      for (int i = 0; i < o_.machines; ++i) SendOne(i);
      next += period;
      if (next < Clock::now() - std::chrono::seconds(1)) next = Clock::now();  // fell behind
      if (Clock::now() >= next_report) {
        ChangeConditions();
        Report(std::chrono::duration<double>(Clock::now() - start).count());
        next_report += std::chrono::seconds(1);
      }
    }
    publisher_.Finish();
    total_.failed += publisher_.failed();
    std::fprintf(log_, "sim: %s: sent %llu messages (%llu samples), %llu malformed, %llu failed\n",
                 interrupted ? "interrupted" : "done", (unsigned long long)total_.messages,
                 (unsigned long long)total_.samples, (unsigned long long)total_.bad,
                 (unsigned long long)total_.failed);
    std::fflush(log_);
    return Status::Ok();
  }

 private:
  void SendOne(int i) {
    values_.clear();
    machines_[i].Generate(o_.samples_per_message, &values_);
    const int64_t ts = UnixMs();
    Count(publisher_.Publish(topics_[i], SensorMessage(ts, values_), o_.qos));
    second_.samples += o_.samples_per_message;
    total_.samples += o_.samples_per_message;
    if (o_.bad_rate > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < o_.bad_rate) {
      ++second_.bad, ++total_.bad;
      Count(publisher_.Publish(topics_[i], BadSensorMessage(bad_kind_++, ts, values_), o_.qos));
    }
  }

  void Count(bool ok) {
    ++second_.messages, ++total_.messages;
    if (!ok) ++second_.failed, ++total_.failed;
  }

  // Once a second each machine may develop a fault (or, if faulty, be repaired).
  void ChangeConditions() {
    std::uniform_real_distribution<double> u(0, 1);
    for (int i = 0; i < o_.machines; ++i) {
      if (u(rng_) >= o_.fault_rate) continue;
      MachineCondition from = machines_[i].condition();
      MachineCondition to = MachineCondition::kNormal;
      if (from == MachineCondition::kNormal)
        to = static_cast<MachineCondition>(1 + std::uniform_int_distribution<int>(0, 2)(rng_));
      machines_[i].SetCondition(to);
      std::fprintf(log_, "sim: %s: %s -> %s\n", names_[i].c_str(), ConditionName(from),
                   ConditionName(to));
    }
  }

  void Report(double elapsed_s) {
    std::string conditions;
    for (int i = 0; i < o_.machines && i < 8; ++i) {
      conditions += " " + names_[i] + "=" + ConditionName(machines_[i].condition());
    }
    if (o_.machines > 8) conditions += " ...";
    std::fprintf(
        log_, "sim: %5.1fs sent %llu msgs (%llu samples), %llu malformed, %llu failed |%s\n",
        elapsed_s, (unsigned long long)second_.messages, (unsigned long long)second_.samples,
        (unsigned long long)second_.bad, (unsigned long long)second_.failed, conditions.c_str());
    std::fflush(log_);
    second_ = {};
  }

  const SimulatorOptions& o_;
  std::FILE* log_;
  int stop_fd_;
  std::mt19937_64 rng_;
  std::vector<SimulatedMachine> machines_;
  std::vector<std::string> names_, topics_;
  std::vector<float> values_;
  Publisher publisher_;
  Counters second_, total_;
  int bad_kind_ = 0;
};

}  // namespace

Status RunSimulator(const SimulatorOptions& options, std::FILE* log, int stop_fd) {
  EI_RETURN_IF_ERROR(ValidateSimulatorOptions(options));
  Simulation sim(options, log, stop_fd);
  return sim.Run();
}

}  // namespace edgeinfer::agent
