// Writes a Graph as a .eim model file (layout: inference/eim_format.h).
#pragma once

#include <string>

#include "common/status.h"
#include "inference/graph.h"

namespace edgeinfer {

// Writes `g` to `path`: constant tensors' bytes go out exactly as they are in memory (the layout
// the kernels read), each 64-byte aligned with its CRC32C in the graph section. The file is
// written to `path + ".tmp"`, fsynced and renamed over `path` (then the directory is fsynced), so
// a crash leaves either the old file or the complete new one, never a half file; on failure the
// temporary file is removed. Refuses constants whose byte count does not match their dims and
// dtype, and dims the reader would refuse. Does not validate ops (ValidateGraph does).
Status WriteEim(const Graph& g, const std::string& path);

}  // namespace edgeinfer
