// The .eim reader's file-level half, exposed for tests: everything Model::Load checks except
// op validation (ValidateGraph). Not part of the public API.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"
#include "inference/graph.h"
#include "inference/model.h"

namespace edgeinfer::internal {

// Validates the .eim image [data, data + size): header, section bounds, checksums (tensor blobs
// only when `verify_checksums`), the graph section and every blob's bounds, alignment and size.
// Returns its graph with each constant's data pointing into the image (no copy); the caller
// keeps the image alive. Never reads outside the image. Errors name the problem.
Result<Graph> ParseEim(const void* data, size_t size, bool verify_checksums);

struct LoadedEim {
  Graph graph;  // graph.owned holds the mapping
  size_t file_bytes = 0;
};

// Maps `path` read-only (MAP_SHARED, WILLNEED, mlock if asked) and runs ParseEim on it.
Result<LoadedEim> LoadEimNoOpValidation(const std::string& path, const LoadOptions& options);

}  // namespace edgeinfer::internal
