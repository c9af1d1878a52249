// edgeinfer: convert, inspect, run, evaluate and benchmark models.
#include <cstdio>
#include <cstring>
#include <string>

#include "inference/tool/commands.h"

namespace {

constexpr char kUsage[] =
    "usage: edgeinfer COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  convert MODEL.onnx -o MODEL.eim [--precision fp32]   import an ONNX model\n"
    "  inspect MODEL.eim [--json]                           graph, tensors, weights, arena plan\n"
    "  run MODEL.eim --data X.bin [--out Y.bin]             run on raw float32 inputs\n"
    "  eval MODEL.eim --data X.bin --labels L.bin [--json]  top-1 accuracy\n"
    "  bench MODEL.eim [--batch 1,16] [--threads N] [--repeats N] [--json]\n"
    "\n"
    "Run 'edgeinfer COMMAND --help' for a command's options.\n"
    "Options: --help, --version\n";

struct Command {
  const char* name;
  int (*run)(int, char**);
};
constexpr Command kCommands[] = {
    {"convert", edgeinfer::tool::Convert}, {"inspect", edgeinfer::tool::Inspect},
    {"run", edgeinfer::tool::Run},         {"eval", edgeinfer::tool::Eval},
    {"bench", edgeinfer::tool::Bench},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "--version") {
    std::printf("edgeinfer %s\n", EDGEINFER_VERSION);
    return 0;
  }
  for (const Command& c : kCommands)
    if (cmd == c.name) return c.run(argc - 2, argv + 2);
  return edgeinfer::tool::Fail("unknown command '" + cmd + "' (see 'edgeinfer --help')", 2);
}
