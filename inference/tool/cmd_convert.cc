// edgeinfer convert MODEL.onnx -o MODEL.eim [--precision fp32|fp16|int8|int8-static|int4]
//                   [--calibration X.bin ...] [--keep NODE=P ...]
#include <chrono>
#include <cstdio>

#include "inference/calibration.h"
#include "inference/eim_writer.h"
#include "inference/onnx/onnx_import.h"
#include "inference/precision_search.h"
#include "inference/quantize_graph.h"
#include "inference/tool/args.h"
#include "inference/tool/commands.h"
#include "inference/tool/data_file.h"

namespace edgeinfer::tool {

namespace {
constexpr char kHelp[] =
    "usage: edgeinfer convert MODEL.onnx -o MODEL.eim [--precision P] [--keep NODE=fp16|fp32]...\n"
    "                         [--calibration X.bin [--calibration-method M]\n"
    "                         [--calibration-samples N] [--calibration-percentile P]] "
    "[--no-check]\n"
    "\n"
    "Imports an ONNX model (opsets 11-17), folds constants and batch norms, fuses bias and\n"
    "activations, stores the weights of Gemm and Conv layers at the asked precision and writes\n"
    "an .eim file whose weights load with mmap and no copy. Prints the per-layer plan.\n"
    "\n"
    "  -o, --output FILE   the .eim file to write\n"
    "  --precision P       fp32 (default), fp16 (weights), int8 (per-channel weights, activations\n"
    "                      quantized per row at run time), int8-static (int8 weights, activation\n"
    "                      scales calibrated on --calibration data, int8 between adjacent int8\n"
    "                      layers), int4 (blocks of 32 with fp16 scales)\n"
    "                      auto: per layer, the fewest layers above int4 (int4 -> int8 -> fp16\n"
    "                      -> fp32, most sensitive first) that keep top-1 accuracy on\n"
    "                      --eval-data/--eval-labels within --max-accuracy-drop points of fp32\n"
    "  --calibration X.bin raw float32 model inputs (as `run` reads them) for int8-static; never\n"
    "                      the test set\n"
    "  --calibration-method minmax|percentile|entropy  how a tensor's range is chosen from what\n"
    "                      it held: the max |x|, a percentile of |x| (default), or the least KL\n"
    "                      divergence (TensorRT)\n"
    "  --calibration-samples N  use the first N samples (default 1000; 0: all)\n"
    "  --calibration-percentile P  for the percentile method (default 99.99)\n"
    "  --keep NODE=P       hold layer NODE at P (fp16 or fp32) whatever --precision says;\n"
    "                      repeatable\n"
    "  --no-check          skip ONNX's own checker and shape inference\n"
    "\n"
    "Layers that stay fp32 in a quantized plan: fewer than 1024 weights, depthwise convs, K above\n"
    "the integer kernels' limit; in an int8 plan, every Conv (int8 convs are no faster than fp32\n"
    "on CPUs without int8 dot-product instructions). In an int4 plan the logits layer is int8.\n"
    "In an int8-static plan convs are int8 unless K = C/group*kh*kw < 64 (fp32 is faster there);\n"
    "a layer's output stays int8 when only int8-static layers (through MaxPools) read it.\n";

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Status ParseKeep(const std::vector<std::string>& entries, QuantizeOptions* options) {
  for (const std::string& e : entries) {
    const size_t eq = e.rfind('=');
    Precision p;
    if (eq == std::string::npos || eq == 0 || !ParsePrecision(e.substr(eq + 1), &p) ||
        (p != Precision::kFp16 && p != Precision::kFp32))
      return Status::InvalidArgument("--keep '" + e + "': expected NODE=fp16 or NODE=fp32");
    options->keep[e.substr(0, eq)] = p;
  }
  return Status::Ok();
}

// The int8-static ranges: the FP32 graph run over the calibration samples.
Status CalibrateFor(const Graph& g, const Args& args, std::map<std::string, float>* thresholds) {
  const std::string path = args.Get("--calibration");
  if (path.empty())
    return Status::InvalidArgument("--precision int8-static needs --calibration X.bin");
  CalibrationOptions co;
  const std::string method = args.Get("--calibration-method", "percentile");
  if (!quant::ParseCalibrationMethod(method, &co.method))
    return Status::InvalidArgument("--calibration-method '" + method +
                                   "': expected minmax, percentile or entropy");
  EI_ASSIGN_OR_RETURN(const long samples, args.GetInt("--calibration-samples", 1000, 0, 1 << 30));
  co.max_samples = samples;
  EI_ASSIGN_OR_RETURN(co.percentile, args.GetDouble("--calibration-percentile", 99.99));
  if (!(co.percentile > 0 && co.percentile <= 100))
    return Status::InvalidArgument("--calibration-percentile must be in (0, 100]");
  if (g.inputs.size() != 1)
    return Status::InvalidArgument("calibration needs a model with one input");
  const int64_t sample = Resolve(g.tensors[g.inputs[0]].dims, 1).NumElements();
  auto data = ReadSamples(path, sample);
  if (!data.ok()) return data.status().WithContext("--calibration");
  const auto t0 = std::chrono::steady_clock::now();
  int64_t last_report = -1;
  co.progress = [&](int64_t done, int64_t total, int pass) {
    const int64_t tenth = done * 10 / total;
    if (tenth == last_report && done != total) return;
    last_report = done == total ? -1 : tenth;
    std::fprintf(stderr, "\rcalibrating (%s, pass %d/%d): %lld/%lld samples", method.c_str(), pass,
                 co.method == quant::CalibrationMethod::kMinMax ? 1 : 2,
                 static_cast<long long>(done), static_cast<long long>(total));
    if (done == total) std::fputc('\n', stderr);
  };
  auto t = Calibrate(g, *data, CalibrationTensors(g), co);
  if (!t.ok()) return t.status().WithContext(path);
  *thresholds = std::move(*t);
  std::fprintf(stderr, "calibrated %zu tensors in %.2f s\n", thresholds->size(), SecondsSince(t0));
  return Status::Ok();
}

// --precision auto: the measured per-layer plan, into options->keep.
Status SearchFor(const Graph& g, const Args& args, QuantizeOptions* options) {
  const std::string data = args.Get("--eval-data"), label_path = args.Get("--eval-labels");
  if (data.empty() || label_path.empty() || !args.Has("--max-accuracy-drop"))
    return Status::InvalidArgument(
        "--precision auto needs --max-accuracy-drop P, --eval-data X.bin and --eval-labels L.bin");
  PrecisionSearchOptions so;
  EI_ASSIGN_OR_RETURN(so.max_drop_points, args.GetDouble("--max-accuracy-drop", 0.5));
  if (!(so.max_drop_points >= 0 && so.max_drop_points <= 100))
    return Status::InvalidArgument("--max-accuracy-drop must be in [0, 100] points");
  if (g.inputs.size() != 1) return Status::InvalidArgument("auto needs a model with one input");
  const int64_t sample = Resolve(g.tensors[g.inputs[0]].dims, 1).NumElements();
  auto x = ReadSamples(data, sample);
  if (!x.ok()) return x.status().WithContext("--eval-data");
  auto labels = ReadBytes(label_path);
  if (!labels.ok()) return labels.status().WithContext("--eval-labels");
  so.log = [](const std::string& line) { std::fprintf(stderr, "auto: %s\n", line.c_str()); };
  const auto t0 = std::chrono::steady_clock::now();
  EI_ASSIGN_OR_RETURN(PrecisionSearchResult r, SearchPrecision(g, *x, *labels, *options, so));
  std::fprintf(stderr,
               "auto: chose a plan with top-1 %.2f%% (fp32 %.2f%%, drop %.2f points, budget %.2f)"
               " after %d evaluations in %.1f s\n",
               100 * r.accuracy, 100 * r.fp32_accuracy, 100 * (r.fp32_accuracy - r.accuracy),
               so.max_drop_points, r.evaluations, SecondsSince(t0));
  if (100 * (r.fp32_accuracy - r.accuracy) > so.max_drop_points)
    std::fprintf(stderr, "auto: warning: even the highest rung misses the budget\n");
  options->precision = Precision::kFp32;
  options->keep = r.plan;
  return Status::Ok();
}

// The plan quantizes Gemm and Conv only; the recurrent layers (LSTM, GRU, RNN) are listed too,
// so that the table says where their weights went: they stay fp32.
void AddRecurrentRows(const Graph& g, std::vector<LayerPlan>* plan) {
  for (const Node& n : g.nodes) {
    if (n.op != "LSTM" && n.op != "GRU" && n.op != "RNN") continue;
    LayerPlan l;
    l.node = n.name;
    l.op = n.op;
    l.weight_dtype = "float32";
    for (int t : n.inputs)
      if (t >= 0 && g.tensors[t].is_constant()) l.bytes_before += g.tensors[t].bytes;
    l.bytes_after = l.bytes_before;
    l.note = "recurrent: weights stay fp32";
    plan->push_back(l);
  }
}

void PrintPlan(const std::vector<LayerPlan>& plan) {
  if (plan.empty()) return;
  std::fprintf(stderr, "%-28s %-5s %-11s %-14s %12s %12s  %s\n", "layer", "op", "precision",
               "weight dtype", "bytes before", "bytes after", "note");
  uint64_t before = 0, after = 0;
  for (const LayerPlan& l : plan) {
    std::string note = l.note;
    if (l.precision == Precision::kInt8Static) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "x %s scale %.4g, y %s", l.int8_input ? "int8" : "float",
                    l.x_scale, l.y_scale > 0 ? "int8 scale " : "float");
      note = buf;
      if (l.y_scale > 0) note += std::to_string(l.y_scale);
      if (!l.note.empty()) note += "; " + l.note;
    }
    std::fprintf(stderr, "%-28s %-5s %-11s %-14s %12llu %12llu  %s\n", l.node.c_str(), l.op.c_str(),
                 PrecisionName(l.precision), l.weight_dtype.c_str(),
                 static_cast<unsigned long long>(l.bytes_before),
                 static_cast<unsigned long long>(l.bytes_after), note.c_str());
    before += l.bytes_before;
    after += l.bytes_after;
  }
  std::fprintf(stderr, "%-28s %-5s %-11s %-14s %12llu %12llu  %.1f%%\n", "total", "", "", "",
               static_cast<unsigned long long>(before), static_cast<unsigned long long>(after),
               before ? 100.0 * static_cast<double>(after) / static_cast<double>(before) : 100.0);
}
}  // namespace

int Convert(int argc, char** argv) {
  auto args =
      Args::Parse(argc, argv,
                  {"-o", "--output", "--precision", "--keep", "--calibration",
                   "--calibration-method", "--calibration-samples", "--calibration-percentile",
                   "--max-accuracy-drop", "--eval-data", "--eval-labels"},
                  {"--help", "--no-check"});
  if (!args.ok()) return Fail(args.status().message() + "\n" + kHelp, 2);
  if (args->Has("--help")) return std::fputs(kHelp, stdout), 0;
  if (args->positionals().size() != 1)
    return Fail("convert takes one ONNX file\n" + std::string(kHelp), 2);
  std::string out = args->Get("-o", args->Get("--output"));
  if (out.empty()) return Fail("convert needs -o MODEL.eim", 2);
  QuantizeOptions qopts;
  const std::string precision = args->Get("--precision", "fp32");
  const bool automatic = precision == "auto";
  if (!automatic && !ParsePrecision(precision, &qopts.precision))
    return Fail(
        "--precision '" + precision + "': expected fp32, fp16, int8, int8-static, int4 or auto", 2);
  if (args->Has("--calibration") && qopts.precision != Precision::kInt8Static)
    return Fail("--calibration is for --precision int8-static", 2);
  Status keep = ParseKeep(args->GetAll("--keep"), &qopts);
  if (!keep.ok()) return Fail(keep.message(), 2);

  const std::string& in = args->positionals()[0];
  auto t0 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "importing %s ...\n", in.c_str());
  OnnxImportOptions options;
  options.run_checker = !args->Has("--no-check");
  auto graph = ImportOnnxFile(in, options);
  if (!graph.ok()) return Fail(graph.status().ToString());  // the importer names the file
  std::fprintf(stderr, "imported %zu nodes, %zu tensors, %.1f KiB of weights in %.2f s\n",
               graph->nodes.size(), graph->tensors.size(), graph->WeightBytes() / 1024.0,
               SecondsSince(t0));
  if (automatic) {
    if (!qopts.keep.empty()) return Fail("--keep and --precision auto do not mix", 2);
    Status st = SearchFor(*graph, *args, &qopts);
    if (!st.ok()) return Fail(st.ToString(), 2);
  }
  std::map<std::string, float> thresholds;
  if (qopts.precision == Precision::kInt8Static) {
    Status st = CalibrateFor(*graph, *args, &thresholds);
    if (!st.ok()) return Fail(st.ToString(), 2);
    qopts.thresholds = &thresholds;
  }
  std::vector<LayerPlan> plan;
  auto quantized = QuantizeGraph(*graph, qopts, &plan);
  if (!quantized.ok()) return Fail(quantized.status().ToString(), 2);
  if (automatic)
    for (LayerPlan& l : plan)
      if (l.note == "--keep") l.note = "auto";
  AddRecurrentRows(*quantized, &plan);
  std::fprintf(stderr, "precision %s:\n", precision.c_str());
  PrintPlan(plan);
  Status st = WriteEim(*quantized, out);
  if (!st.ok()) return Fail(out + ": " + st.ToString());
  std::fprintf(stderr, "wrote %s (%.1f KiB of weights) in %.2f s\n", out.c_str(),
               quantized->WeightBytes() / 1024.0, SecondsSince(t0));
  return 0;
}

}  // namespace edgeinfer::tool
