// edgeinfer bench MODEL.eim [--batch 1,16] [--threads N] [--repeats N] [--data X.bin] [--json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "inference/model.h"
#include "inference/session.h"
#include "inference/tool/args.h"
#include "inference/tool/commands.h"
#include "inference/tool/data_file.h"
#include "inference/tool/proc_stats.h"

namespace edgeinfer::tool {

namespace {
constexpr char kHelp[] =
    "usage: edgeinfer bench MODEL.eim [--batch 1,16] [--threads N] [--repeats N] [--warmup N]\n"
    "                       [--data X.bin] [--json]\n"
    "\n"
    "Times Session::Run on the same inputs for each batch size: latency p50/p90/p99,\n"
    "throughput (inferences/s), peak RSS, private (anonymous) bytes, arena and weight bytes.\n"
    "  --threads N   OpenBLAS threads (default 1)\n"
    "  --repeats N   timed runs per batch size (default 200)\n"
    "  --warmup N    untimed runs first (default 20)\n"
    "  --data X.bin  inputs from this file (raw float32 samples, as `run` reads them), in turn;\n"
    "                default: standard normal values. Real inputs give the real speed: the\n"
    "                int8 kernels multiply non-negative activations faster than signed ones\n";

struct BatchFigures {
  int batch;
  double p50_ms, p90_ms, p99_ms, throughput;
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// `batch` inputs: the samples of `data` in turn (the model's real input distribution matters to
// the int8 kernels: non-negative activations take a faster path), else standard normal values.
std::vector<float> BenchInput(const Session& s, int batch, const std::vector<float>& data) {
  const size_t n = static_cast<size_t>(s.input_sample_elements(0));
  std::vector<float> input(n * batch);
  if (!data.empty()) {
    for (size_t i = 0; i < input.size(); ++i) input[i] = data[i % data.size()];
    return input;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.f, 1.f);
  for (float& x : input) x = dist(rng);
  return input;
}

Result<BatchFigures> TimeBatch(Session& s, int batch, int warmup, int repeats,
                               const std::vector<float>& data) {
  const std::vector<float> input = BenchInput(s, batch, data);
  const float* in = input.data();
  for (int i = 0; i < warmup; ++i) EI_RETURN_IF_ERROR(s.Run({&in, 1}, batch));
  std::vector<double> ms(repeats);
  double total = 0;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    EI_RETURN_IF_ERROR(s.Run({&in, 1}, batch));
    ms[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
    total += ms[i];
  }
  return BatchFigures{batch, Percentile(ms, 50), Percentile(ms, 90), Percentile(ms, 99),
                      batch * repeats / (total / 1000.0)};
}
}  // namespace

int Bench(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"--batch", "--threads", "--repeats", "--warmup", "--data"},
                          {"--help", "--json"});
  if (!args.ok()) return Fail(args.status().message() + "\n" + kHelp, 2);
  if (args->Has("--help")) return std::fputs(kHelp, stdout), 0;
  if (args->positionals().size() != 1) return Fail("bench takes one .eim file", 2);
  auto batches = args->GetIntList("--batch", {1, 16}, 1, 4096);
  auto threads = args->GetInt("--threads", 1, 1, 256);
  auto repeats = args->GetInt("--repeats", 200, 1, 1000000);
  auto warmup = args->GetInt("--warmup", 20, 0, 1000000);
  for (const Status& st : {batches.status(), threads.status(), repeats.status(), warmup.status()})
    if (!st.ok()) return Fail(st.message(), 2);

  const std::string& path = args->positionals()[0];
  auto model = Model::Load(path);
  if (!model.ok()) return Fail(path + ": " + model.status().ToString());
  if ((*model)->graph().inputs.size() != 1) return Fail("bench feeds models with one input");
  SessionOptions so;
  so.max_batch = *std::max_element(batches->begin(), batches->end());
  so.blas_threads = static_cast<int>(*threads);
  auto session = Session::Create(*model, so);
  if (!session.ok()) return Fail(session.status().ToString());
  std::vector<float> data;
  if (args->Has("--data")) {
    auto samples = ReadSamples(args->Get("--data", ""), (*session)->input_sample_elements(0));
    if (!samples.ok()) return Fail(samples.status().ToString());
    data = std::move(*samples);
  }
  ProcMemory after_load = ReadProcMemory();

  std::vector<BatchFigures> figures;
  for (int b : *batches) {
    int batch = std::min(b, (*session)->max_batch());
    if (!args->Has("--json"))
      std::fprintf(stderr, "batch %d: %ld runs ...\n", batch, *repeats);
    auto f = TimeBatch(**session, batch, static_cast<int>(*warmup), static_cast<int>(*repeats),
                       data);
    if (!f.ok()) return Fail(f.status().ToString());
    figures.push_back(*f);
  }
  ProcMemory mem = ReadProcMemory();

  nlohmann::json j = {{"model", (*model)->graph().info.name},
                      {"threads", *threads},
                      {"blas_core", BlasCoreName()},
                      {"results", nlohmann::json::array()},
                      {"peak_rss_bytes", mem.peak_rss_bytes},
                      {"private_bytes", mem.private_bytes},
                      {"private_bytes_after_load", after_load.private_bytes},
                      {"arena_bytes", (*session)->arena_bytes()},
                      {"weight_bytes", (*model)->weight_bytes()},
                      {"file_bytes", (*model)->file_bytes()}};
  for (const BatchFigures& f : figures)
    j["results"].push_back({{"batch", f.batch},
                            {"latency_ms", {{"p50", f.p50_ms}, {"p90", f.p90_ms},
                                            {"p99", f.p99_ms}}},
                            {"throughput_per_s", f.throughput}});
  if (args->Has("--json")) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model %s, %ld thread(s), OpenBLAS core %s\n", j["model"].get<std::string>().c_str(),
              *threads, BlasCoreName());
  std::printf("%6s %10s %10s %10s %14s\n", "batch", "p50_ms", "p90_ms", "p99_ms", "inferences/s");
  for (const BatchFigures& f : figures)
    std::printf("%6d %10.3f %10.3f %10.3f %14.1f\n", f.batch, f.p50_ms, f.p90_ms, f.p99_ms,
                f.throughput);
  std::printf("peak RSS %.1f MiB, private %.1f MiB, arena %.1f KiB, weights %.1f MiB\n",
              mem.peak_rss_bytes / 1048576.0, mem.private_bytes / 1048576.0,
              (*session)->arena_bytes() / 1024.0, (*model)->weight_bytes() / 1048576.0);
  return 0;
}

}  // namespace edgeinfer::tool
