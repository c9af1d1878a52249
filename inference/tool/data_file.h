// Raw data files of the tool: little-endian float32 inputs/outputs and uint8 labels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace edgeinfer::tool {

// Reads a whole float32 file; its size must be a multiple of `sample_elements` floats.
Result<std::vector<float>> ReadSamples(const std::string& path, int64_t sample_elements);
Result<std::vector<uint8_t>> ReadBytes(const std::string& path);
Status WriteFloats(const std::string& path, const std::vector<float>& data);

}  // namespace edgeinfer::tool
