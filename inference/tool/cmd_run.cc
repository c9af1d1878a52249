// edgeinfer run MODEL.eim --data X.bin [--out Y.bin]
// edgeinfer eval MODEL.eim --data X.bin --labels L.bin [--json]
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "inference/tool/batch_runner.h"
#include "inference/tool/commands.h"
#include "inference/tool/data_file.h"

namespace edgeinfer::tool {

namespace {
constexpr char kRunHelp[] =
    "usage: edgeinfer run MODEL.eim --data X.bin [--out Y.bin] [--batch N] [--threads N]\n"
    "                     [--profile TRACE.json]\n"
    "\n"
    "X.bin holds N model inputs as raw little-endian float32 (already preprocessed). With --out,\n"
    "Y.bin gets each sample's outputs as raw float32 (all outputs of sample 0, then sample 1...);\n"
    "without it, one line per sample: index, top class, its label and score.\n"
    "--profile writes a Chrome trace (open in Perfetto) and prints time per op.\n";

constexpr char kEvalHelp[] =
    "usage: edgeinfer eval MODEL.eim --data X.bin --labels L.bin [--json] [--batch N]\n"
    "                      [--threads N] [--profile TRACE.json]\n"
    "\n"
    "Top-1 accuracy of output 0 against L.bin (one uint8 class label per sample).\n"
    "--json prints {\"accuracy\":...,\"samples\":...}.\n";

const std::set<std::string> kValueFlags = {"--data", "--out", "--labels", "--batch", "--threads",
                                           "--profile"};

int ArgMax(const float* v, int64_t n) {
  int best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (v[i] > v[best]) best = static_cast<int>(i);
  return best;
}

struct Loaded {
  Runner runner;
  std::vector<float> data;
};

Result<Loaded> LoadModelAndData(const Args& args) {
  if (args.positionals().size() != 1) return Status::InvalidArgument("give one .eim file");
  if (!args.Has("--data")) return Status::InvalidArgument("--data X.bin is required");
  const std::string& path = args.positionals()[0];
  auto runner = Runner::Open(path, args, 16);
  if (!runner.ok()) return runner.status().WithContext(path);
  auto data = ReadSamples(args.Get("--data"), runner->session->input_sample_elements(0));
  if (!data.ok()) return data.status();
  return Loaded{std::move(runner).value(), std::move(data).value()};
}

void PrintTopClass(const Session& s, int64_t first, int count) {
  const Graph& g = s.model().graph();
  const int64_t classes = s.output_sample_elements(0);
  for (int i = 0; i < count; ++i) {
    const float* v = s.output(0).f32() + i * classes;
    int top = ArgMax(v, classes);
    const char* label = top < static_cast<int>(g.info.labels.size())
                            ? g.info.labels[top].c_str() : "";
    std::printf("%lld\t%d\t%s\t%g\n", static_cast<long long>(first + i), top, label, v[top]);
  }
}
}  // namespace

int Run(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, kValueFlags, {"--help"});
  if (!args.ok()) return Fail(args.status().message() + "\n" + kRunHelp, 2);
  if (args->Has("--help")) return std::fputs(kRunHelp, stdout), 0;
  auto loaded = LoadModelAndData(*args);
  if (!loaded.ok()) return Fail(loaded.status().ToString());
  Runner& r = loaded->runner;
  const bool to_file = args->Has("--out");
  std::vector<float> out;
  Status st = r.RunSamples(loaded->data, [&](int64_t first, int count) {
    if (!to_file) return PrintTopClass(*r.session, first, count);
    for (int i = 0; i < count; ++i) {
      for (int o = 0; o < r.session->num_outputs(); ++o) {
        const int64_t n = r.session->output_sample_elements(o);
        const float* v = r.session->output(o).f32() + i * n;
        out.insert(out.end(), v, v + n);
      }
    }
  });
  if (!st.ok()) return Fail(st.ToString());
  if (to_file) {
    st = WriteFloats(args->Get("--out"), out);
    if (!st.ok()) return Fail(st.ToString());
  }
  st = r.FinishProfile();
  return st.ok() ? 0 : Fail(st.ToString());
}

int Eval(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, kValueFlags, {"--help", "--json"});
  if (!args.ok()) return Fail(args.status().message() + "\n" + kEvalHelp, 2);
  if (args->Has("--help")) return std::fputs(kEvalHelp, stdout), 0;
  if (!args->Has("--labels")) return Fail("--labels L.bin is required", 2);
  auto loaded = LoadModelAndData(*args);
  if (!loaded.ok()) return Fail(loaded.status().ToString());
  auto labels = ReadBytes(args->Get("--labels"));
  if (!labels.ok()) return Fail(labels.status().ToString());
  Runner& r = loaded->runner;
  const int64_t samples =
      static_cast<int64_t>(loaded->data.size()) / r.session->input_sample_elements(0);
  if (static_cast<int64_t>(labels->size()) != samples)
    return Fail("--labels holds " + std::to_string(labels->size()) + " labels for " +
                std::to_string(samples) + " samples");
  const int64_t classes = r.session->output_sample_elements(0);
  int64_t correct = 0;
  Status st = r.RunSamples(loaded->data, [&](int64_t first, int count) {
    for (int i = 0; i < count; ++i)
      correct += ArgMax(r.session->output(0).f32() + i * classes, classes) == (*labels)[first + i];
  });
  if (!st.ok()) return Fail(st.ToString());
  double accuracy = samples ? static_cast<double>(correct) / samples : 0.0;
  if (args->Has("--json")) {
    std::printf("%s\n", nlohmann::json{{"accuracy", accuracy}, {"samples", samples},
                                       {"correct", correct}}.dump().c_str());
  } else {
    std::printf("accuracy %.4f (%lld of %lld)\n", accuracy, static_cast<long long>(correct),
                static_cast<long long>(samples));
  }
  st = r.FinishProfile();
  return st.ok() ? 0 : Fail(st.ToString());
}

}  // namespace edgeinfer::tool
