// edgeinfer convert MODEL.onnx -o MODEL.eim [--precision fp32|fp16|int8|int4] [--keep NODE=P ...]
#include <chrono>
#include <cstdio>

#include "inference/eim_writer.h"
#include "inference/onnx/onnx_import.h"
#include "inference/quantize_graph.h"
#include "inference/tool/args.h"
#include "inference/tool/commands.h"

namespace edgeinfer::tool {

namespace {
constexpr char kHelp[] =
    "usage: edgeinfer convert MODEL.onnx -o MODEL.eim [--precision P] [--keep NODE=fp16|fp32]...\n"
    "                         [--no-check]\n"
    "\n"
    "Imports an ONNX model (opsets 11-17), folds constants and batch norms, fuses bias and\n"
    "activations, stores the weights of Gemm and Conv layers at the asked precision and writes\n"
    "an .eim file whose weights load with mmap and no copy. Prints the per-layer plan.\n"
    "\n"
    "  -o, --output FILE   the .eim file to write\n"
    "  --precision P       fp32 (default), fp16 (weights), int8 (per-channel weights, activations\n"
    "                      quantized per row at run time), int4 (blocks of 32 with fp16 scales)\n"
    "  --keep NODE=P       hold layer NODE at P (fp16 or fp32) whatever --precision says;\n"
    "                      repeatable\n"
    "  --no-check          skip ONNX's own checker and shape inference\n"
    "\n"
    "Layers that stay fp32 in a quantized plan: fewer than 1024 weights, depthwise convs, K above\n"
    "the integer kernels' limit; in an int8 plan, every Conv (int8 convs are no faster than fp32\n"
    "on CPUs without int8 dot-product instructions). In an int4 plan the logits layer is int8.\n";

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

void PrintPlan(const std::vector<LayerPlan>& plan) {
  if (plan.empty()) return;
  std::fprintf(stderr, "%-28s %-5s %-9s %-14s %12s %12s  %s\n", "layer", "op", "precision",
               "weight dtype", "bytes before", "bytes after", "note");
  uint64_t before = 0, after = 0;
  for (const LayerPlan& l : plan) {
    std::fprintf(stderr, "%-28s %-5s %-9s %-14s %12llu %12llu  %s\n", l.node.c_str(),
                 l.op.c_str(), PrecisionName(l.precision), l.weight_dtype.c_str(),
                 static_cast<unsigned long long>(l.bytes_before),
                 static_cast<unsigned long long>(l.bytes_after), l.note.c_str());
    before += l.bytes_before;
    after += l.bytes_after;
  }
  std::fprintf(stderr, "%-28s %-5s %-9s %-14s %12llu %12llu  %.1f%%\n", "total", "", "", "",
               static_cast<unsigned long long>(before), static_cast<unsigned long long>(after),
               before ? 100.0 * static_cast<double>(after) / static_cast<double>(before) : 100.0);
}
}  // namespace

int Convert(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"-o", "--output", "--precision", "--keep"},
                          {"--help", "--no-check"});
  if (!args.ok()) return Fail(args.status().message() + "\n" + kHelp, 2);
  if (args->Has("--help")) return std::fputs(kHelp, stdout), 0;
  if (args->positionals().size() != 1) return Fail("convert takes one ONNX file\n" + std::string(kHelp), 2);
  std::string out = args->Get("-o", args->Get("--output"));
  if (out.empty()) return Fail("convert needs -o MODEL.eim", 2);
  QuantizeOptions qopts;
  const std::string precision = args->Get("--precision", "fp32");
  if (!ParsePrecision(precision, &qopts.precision))
    return Fail("--precision '" + precision + "': expected fp32, fp16, int8 or int4", 2);
  Status keep = ParseKeep(args->GetAll("--keep"), &qopts);
  if (!keep.ok()) return Fail(keep.message(), 2);

  const std::string& in = args->positionals()[0];
  auto t0 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "importing %s ...\n", in.c_str());
  OnnxImportOptions options;
  options.run_checker = !args->Has("--no-check");
  auto graph = ImportOnnxFile(in, options);
  if (!graph.ok()) return Fail(in + ": " + graph.status().ToString());
  std::fprintf(stderr, "imported %zu nodes, %zu tensors, %.1f KiB of weights in %.2f s\n",
               graph->nodes.size(), graph->tensors.size(), graph->WeightBytes() / 1024.0,
               SecondsSince(t0));
  std::vector<LayerPlan> plan;
  auto quantized = QuantizeGraph(*graph, qopts, &plan);
  if (!quantized.ok()) return Fail(quantized.status().ToString(), 2);
  std::fprintf(stderr, "precision %s:\n", precision.c_str());
  PrintPlan(plan);
  Status st = WriteEim(*quantized, out);
  if (!st.ok()) return Fail(out + ": " + st.ToString());
  std::fprintf(stderr, "wrote %s (%.1f KiB of weights) in %.2f s\n", out.c_str(),
               quantized->WeightBytes() / 1024.0, SecondsSince(t0));
  return 0;
}

}  // namespace edgeinfer::tool
