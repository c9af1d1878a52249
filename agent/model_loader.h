// A pipeline's model: an .eim is loaded (mmap). An .onnx is converted at the pipeline's
// precision and, when `write_cache`, written to state_dir/models/{stem}-{fnv64 of the file}-
// {precision}.eim and loaded from there, so the next start (and other processes) reuse it; a
// changed source file has a new hash and converts again. A cache that cannot be written falls
// back to the graph in memory (logged). Errors name the file and the pipeline.
#pragma once

#include <memory>
#include <string>

#include "agent/config.h"
#include "common/status.h"
#include "inference/model.h"

namespace edgeinfer::agent {

Result<std::shared_ptr<const Model>> LoadPipelineModel(const PipelineConfig& pipeline,
                                                       const std::string& state_dir,
                                                       bool write_cache);

// The whole file, for hashing and password files.
Result<std::string> ReadFileBytes(const std::string& path);

}  // namespace edgeinfer::agent
