#include <cstdio>

#include "inference/tool/commands.h"

namespace edgeinfer::tool {

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "edgeinfer: error: %s\n", message.c_str());
  return code;
}

}  // namespace edgeinfer::tool
