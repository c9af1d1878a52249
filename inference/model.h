// A loaded model: the validated graph plus the memory that backs its weights.
//
// Model::Load maps a .eim file read-only and validates it; the weights stay in the page cache,
// file-backed and shared between processes, never copied. A Model is immutable after load and
// safe to share between threads and sessions.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "inference/graph.h"

namespace edgeinfer {

struct LoadOptions {
  bool verify_checksums = true;  // CRC32C of every tensor blob at load
  bool mlock = false;            // pin the weights in RAM (needs CAP_IPC_LOCK or RLIMIT_MEMLOCK)
};

class Model {
 public:
  // Maps and validates `path`. Truncated, corrupt, wrong-version or hostile files are refused
  // with a Status naming the problem; nothing in the file can crash the loader.
  static Result<std::shared_ptr<const Model>> Load(const std::string& path,
                                                   const LoadOptions& options = {});
  // Wraps an in-memory graph (from the importer); validates it the same way.
  static Result<std::shared_ptr<const Model>> FromGraph(Graph graph);

  const Graph& graph() const { return graph_; }
  size_t file_bytes() const { return file_bytes_; }  // 0 for an in-memory graph
  size_t weight_bytes() const { return graph_.WeightBytes(); }
  const std::string& path() const { return path_; }

 private:
  Model() = default;
  Graph graph_;
  size_t file_bytes_ = 0;
  std::string path_;
};

// Checks a graph's structure (indices, topological order, ranks, constant sizes) and runs every
// op's infer, filling in each non-constant tensor's dtype and dims. Returns the first problem.
// `check_stored_dims`: when true (a loaded file), inferred dims must equal the stored ones.
Status ValidateGraph(Graph* graph, bool check_stored_dims);

}  // namespace edgeinfer
