// edgeinfer convert MODEL.onnx -o MODEL.eim [--precision fp32]
#include <chrono>
#include <cstdio>

#include "inference/eim_writer.h"
#include "inference/onnx/onnx_import.h"
#include "inference/tool/args.h"
#include "inference/tool/commands.h"

namespace edgeinfer::tool {

namespace {
constexpr char kHelp[] =
    "usage: edgeinfer convert MODEL.onnx -o MODEL.eim [--precision fp32] [--no-check]\n"
    "\n"
    "Imports an ONNX model (opsets 11-17), folds constants and batch norms, fuses bias and\n"
    "activations, and writes an .eim file whose weights load with mmap and no copy.\n"
    "\n"
    "  -o, --output FILE   the .eim file to write\n"
    "  --precision P       fp32 (default)\n"
    "  --no-check          skip ONNX's own checker and shape inference\n";

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int Convert(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"-o", "--output", "--precision"}, {"--help", "--no-check"});
  if (!args.ok()) return Fail(args.status().message() + "\n" + kHelp, 2);
  if (args->Has("--help")) return std::fputs(kHelp, stdout), 0;
  if (args->positionals().size() != 1) return Fail("convert takes one ONNX file\n" + std::string(kHelp), 2);
  std::string out = args->Get("-o", args->Get("--output"));
  if (out.empty()) return Fail("convert needs -o MODEL.eim", 2);
  std::string precision = args->Get("--precision", "fp32");
  if (precision != "fp32")
    return Fail("--precision '" + precision + "' is not supported by this build (fp32)", 2);

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
  Status st = WriteEim(*graph, out);
  if (!st.ok()) return Fail(out + ": " + st.ToString());
  std::fprintf(stderr, "wrote %s in %.2f s\n", out.c_str(), SecondsSince(t0));
  return 0;
}

}  // namespace edgeinfer::tool
