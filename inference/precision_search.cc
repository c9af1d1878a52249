#include "inference/precision_search.h"

#include <algorithm>
#include <cstdio>
#include <memory>

#include "inference/model.h"
#include "inference/session.h"

namespace edgeinfer {

namespace {

constexpr Precision kLadder[] = {Precision::kInt4, Precision::kInt8, Precision::kFp16,
                                 Precision::kFp32};

class Evaluator {
 public:
  Evaluator(const Graph& g, std::span<const float> x, std::span<const uint8_t> labels,
            const QuantizeOptions& base, int batch)
      : g_(g), x_(x), labels_(labels), base_(base), batch_(std::max(1, batch)) {
    base_.precision = Precision::kFp32;
    base_.keep.clear();
    base_.thresholds = nullptr;
  }

  int evaluations() const { return evaluations_; }

  // Top-1 accuracy with the layers of `plan` at their precision, every other layer fp32.
  Result<double> Accuracy(const std::map<std::string, Precision>& plan) {
    QuantizeOptions o = base_;
    o.keep = plan;
    std::vector<LayerPlan> unused;
    EI_ASSIGN_OR_RETURN(Graph q, QuantizeGraph(g_, o, &unused));
    EI_ASSIGN_OR_RETURN(std::shared_ptr<const Model> model, Model::FromGraph(std::move(q)));
    SessionOptions so;
    so.max_batch = batch_;
    EI_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Session::Create(model, so));
    const int64_t sample = s->input_sample_elements(0);
    const int64_t classes = s->output_sample_elements(0);
    const int64_t count = static_cast<int64_t>(labels_.size());
    int64_t correct = 0;
    for (int64_t first = 0; first < count; first += s->max_batch()) {
      const int n = static_cast<int>(std::min<int64_t>(s->max_batch(), count - first));
      const float* in = x_.data() + first * sample;
      EI_RETURN_IF_ERROR(s->Run({&in, 1}, n));
      const float* y = s->output(0).f32();
      for (int i = 0; i < n; ++i) {
        const float* row = y + i * classes;
        const int64_t top = std::max_element(row, row + classes) - row;
        if (labels_[first + i] >= classes)
          return Status::InvalidArgument("label " + std::to_string(labels_[first + i]) +
                                         " of sample " + std::to_string(first + i) +
                                         " is not below the model's " + std::to_string(classes) +
                                         " classes");
        correct += top == labels_[first + i];
      }
    }
    ++evaluations_;
    return static_cast<double>(correct) / static_cast<double>(count);
  }

 private:
  const Graph& g_;
  std::span<const float> x_;
  std::span<const uint8_t> labels_;
  QuantizeOptions base_;
  int batch_;
  int evaluations_ = 0;
};

std::string PlanText(const std::map<std::string, Precision>& plan) {
  std::string out;
  for (const auto& [node, p] : plan)
    out += (out.empty() ? "" : " ") + node + "=" + PrecisionName(p);
  return out;
}

std::string Points(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

int Rung(Precision p) {
  for (int i = 0; i < 4; ++i)
    if (kLadder[i] == p) return i;
  return 3;
}

}  // namespace

Result<PrecisionSearchResult> SearchPrecision(const Graph& graph, std::span<const float> x,
                                              std::span<const uint8_t> labels,
                                              const QuantizeOptions& base,
                                              const PrecisionSearchOptions& options) {
  if (graph.inputs.size() != 1)
    return Status::InvalidArgument("--precision auto needs a model with one input");
  const int64_t sample = Resolve(graph.tensors[graph.inputs[0]].dims, 1).NumElements();
  if (labels.empty()) return Status::InvalidArgument("no evaluation samples");
  if (x.size() != labels.size() * static_cast<size_t>(sample))
    return Status::InvalidArgument("evaluation data holds " + std::to_string(x.size()) +
                                   " floats, expected " + std::to_string(labels.size()) +
                                   " labels x " + std::to_string(sample) + " per sample");
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  // The candidates: what an int4 plan quantizes.
  QuantizeOptions int4 = base;
  int4.precision = Precision::kInt4;
  int4.keep.clear();
  int4.thresholds = nullptr;
  std::vector<LayerPlan> int4_plan;
  EI_RETURN_IF_ERROR(QuantizeGraph(graph, int4, &int4_plan).status());
  std::vector<std::string> candidates;
  for (const LayerPlan& l : int4_plan)
    if (l.precision != Precision::kFp32) candidates.push_back(l.node);

  Evaluator eval(graph, x, labels, base, options.batch);
  PrecisionSearchResult r;
  EI_ASSIGN_OR_RETURN(r.fp32_accuracy, eval.Accuracy({}));
  log("fp32 accuracy " + Points(100 * r.fp32_accuracy) + "%");
  auto drop = [&](double acc) { return 100.0 * (r.fp32_accuracy - acc); };
  for (const std::string& node : candidates) {
    EI_ASSIGN_OR_RETURN(const double acc, eval.Accuracy({{node, Precision::kInt4}}));
    r.sensitivity.push_back({node, drop(acc)});
    log("sensitivity " + node + " at int4: drop " + Points(drop(acc)) + " points");
  }
  std::stable_sort(r.sensitivity.begin(), r.sensitivity.end(),
                   [](const LayerSensitivity& a, const LayerSensitivity& b) {
                     return a.drop_points > b.drop_points;
                   });

  for (const std::string& node : candidates) r.plan[node] = Precision::kInt4;
  EI_ASSIGN_OR_RETURN(r.accuracy, eval.Accuracy(r.plan));
  log("plan " + PlanText(r.plan) + ": drop " + Points(drop(r.accuracy)) + " points");
  // Rung by rung, most sensitive first, until the drop fits the budget.
  for (int rung = 0; rung + 1 < 4 && drop(r.accuracy) > options.max_drop_points; ++rung) {
    for (const LayerSensitivity& s : r.sensitivity) {
      if (drop(r.accuracy) <= options.max_drop_points) break;
      if (Rung(r.plan[s.node]) != rung) continue;
      r.plan[s.node] = kLadder[rung + 1];
      EI_ASSIGN_OR_RETURN(r.accuracy, eval.Accuracy(r.plan));
      log("plan " + PlanText(r.plan) + ": drop " + Points(drop(r.accuracy)) + " points");
    }
  }
  r.evaluations = eval.evaluations();
  return r;
}

}  // namespace edgeinfer
