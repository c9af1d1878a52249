#include "inference/calibration.h"

#include <cmath>
#include <memory>

#include "inference/model.h"
#include "inference/session.h"

namespace edgeinfer {

namespace {

// Feeds each observed tensor's values to its collector: AbsMax in pass 1, AbsHistogram in 2.
class Collector final : public NodeObserver {
 public:
  explicit Collector(size_t tensors) : max_(tensors) {}

  void Watch(int tensor, size_t slot) { slot_of_[tensor] = slot; }
  void StartHistograms() {
    hist_.clear();
    for (const quant::AbsMax& m : max_) hist_.emplace_back(m.max());
  }
  bool histograms() const { return !hist_.empty(); }

  void Add(size_t slot, const float* x, int64_t n) {
    if (histograms()) {
      hist_[slot].Add(x, n);
    } else {
      max_[slot].Add(x, n);
    }
  }

  void OnNode(const Node& node, std::span<const TensorView> outputs) override {
    for (size_t i = 0; i < outputs.size(); ++i) {
      const auto it = slot_of_.find(node.outputs[i]);
      if (it == slot_of_.end()) continue;
      Add(it->second, outputs[i].f32(), outputs[i].shape.NumElements());
    }
  }

  const quant::AbsMax& max(size_t slot) const { return max_[slot]; }
  const quant::AbsHistogram* hist(size_t slot) const {
    return histograms() ? &hist_[slot] : nullptr;
  }

 private:
  std::vector<quant::AbsMax> max_;
  std::vector<quant::AbsHistogram> hist_;
  std::map<int, size_t> slot_of_;
};

Status CheckSamples(std::span<const float> samples, int64_t sample_elements) {
  if (samples.empty()) return Status::InvalidArgument("calibration data is empty");
  if (samples.size() % static_cast<size_t>(sample_elements) != 0)
    return Status::InvalidArgument("calibration data holds " + std::to_string(samples.size()) +
                                   " floats, not a whole number of samples of " +
                                   std::to_string(sample_elements));
  for (size_t i = 0; i < samples.size(); ++i) {
    if (!std::isfinite(samples[i]))
      return Status::InvalidArgument("calibration sample " + std::to_string(i / sample_elements) +
                                     " holds " + (std::isnan(samples[i]) ? "NaN" : "an infinity") +
                                     " at element " + std::to_string(i % sample_elements));
  }
  return Status::Ok();
}

}  // namespace

Result<std::map<std::string, float>> Calibrate(const Graph& graph, std::span<const float> samples,
                                               const std::vector<std::string>& tensors,
                                               const CalibrationOptions& options) {
  if (graph.inputs.size() != 1)
    return Status::InvalidArgument("calibration needs a model with one input, this one has " +
                                   std::to_string(graph.inputs.size()));
  const int input = graph.inputs[0];
  const int64_t sample = Resolve(graph.tensors[input].dims, 1).NumElements();
  EI_RETURN_IF_ERROR(CheckSamples(samples, sample));
  int64_t count = static_cast<int64_t>(samples.size()) / sample;
  if (options.max_samples > 0) count = std::min(count, options.max_samples);

  Collector collector(tensors.size());
  std::vector<size_t> input_slots;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int t = graph.FindTensor(tensors[i]);
    if (t < 0) return Status::InvalidArgument("calibration: no tensor '" + tensors[i] + "'");
    if (graph.tensors[t].dtype != DType::kFloat32 || graph.tensors[t].is_constant())
      return Status::InvalidArgument("calibration: '" + tensors[i] +
                                     "' is not a float32 activation");
    if (t == input) {
      input_slots.push_back(i);
    } else {
      collector.Watch(t, i);
    }
  }
  EI_ASSIGN_OR_RETURN(std::shared_ptr<const Model> model, Model::FromGraph(graph));
  SessionOptions so;
  so.max_batch = std::max(1, options.batch);
  so.observer = &collector;
  EI_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model, so));
  const int batch = session->max_batch();

  const int passes = options.method == quant::CalibrationMethod::kMinMax ? 1 : 2;
  for (int pass = 1; pass <= passes; ++pass) {
    if (pass == 2) collector.StartHistograms();
    for (int64_t first = 0; first < count; first += batch) {
      const int n = static_cast<int>(std::min<int64_t>(batch, count - first));
      const float* x = samples.data() + first * sample;
      for (size_t slot : input_slots) collector.Add(slot, x, n * sample);
      EI_RETURN_IF_ERROR(session->Run({&x, 1}, n));
      if (options.progress) options.progress(first + n, count, pass);
    }
  }
  std::map<std::string, float> out;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const quant::AbsMax& m = collector.max(i);
    if (m.non_finite() > 0)
      return Status::InvalidArgument("calibration: tensor '" + tensors[i] + "' took " +
                                     std::to_string(m.non_finite()) +
                                     " NaN or infinite values on the calibration data");
    out[tensors[i]] =
        quant::Threshold(options.method, m.max(), collector.hist(i), options.percentile);
  }
  return out;
}

}  // namespace edgeinfer
