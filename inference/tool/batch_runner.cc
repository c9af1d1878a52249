#include "inference/tool/batch_runner.h"

#include <cstdio>

namespace edgeinfer::tool {

Result<Runner> Runner::Open(const std::string& path, const Args& args, int default_batch) {
  Runner r;
  auto batch = args.GetInt("--batch", default_batch, 1, 4096);
  if (!batch.ok()) return batch.status();
  auto threads = args.GetInt("--threads", 1, 1, 256);
  if (!threads.ok()) return threads.status();
  EI_ASSIGN_OR_RETURN(r.model, Model::Load(path));
  if (r.model->graph().inputs.size() != 1)
    return Status::Unsupported("this command feeds models with one input; '" + path + "' has " +
                               std::to_string(r.model->graph().inputs.size()));
  SessionOptions so;
  so.max_batch = static_cast<int>(*batch);
  so.blas_threads = static_cast<int>(*threads);
  r.profile_path = args.Get("--profile");
  if (!r.profile_path.empty()) {
    r.profiler = std::make_unique<Profiler>();
    so.profiler = r.profiler.get();
  }
  EI_ASSIGN_OR_RETURN(r.session, Session::Create(r.model, so));
  return r;
}

Status Runner::RunSamples(const std::vector<float>& data,
                          const std::function<void(int64_t, int)>& on_batch) {
  const int64_t sample = session->input_sample_elements(0);
  const int64_t n = static_cast<int64_t>(data.size()) / sample;
  for (int64_t first = 0; first < n; first += session->max_batch()) {
    int count = static_cast<int>(std::min<int64_t>(session->max_batch(), n - first));
    const float* in = data.data() + first * sample;
    EI_RETURN_IF_ERROR(session->Run({&in, 1}, count));
    on_batch(first, count);
  }
  return Status::Ok();
}

Status Runner::FinishProfile() {
  if (!profiler) return Status::Ok();
  EI_RETURN_IF_ERROR(profiler->WriteChromeTrace(profile_path));
  std::fprintf(stderr, "%s", profiler->SummaryTable().c_str());
  std::fprintf(stderr, "trace written to %s (open in https://ui.perfetto.dev)\n",
               profile_path.c_str());
  return Status::Ok();
}

}  // namespace edgeinfer::tool
