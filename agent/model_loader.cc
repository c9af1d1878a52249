#include "agent/model_loader.h"

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/log.h"
#include "inference/eim_writer.h"
#include "inference/onnx/onnx_import.h"
#include "inference/quantize_graph.h"

namespace edgeinfer::agent {
namespace {

namespace fs = std::filesystem;

std::string Fnv1a64Hex(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Writes the converted graph beside the agent's state and maps it back (weights in the page
// cache, not the heap). Fails when the cache cannot be written.
Result<std::shared_ptr<const Model>> CacheConverted(const Graph& graph, const std::string& path) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec)
    return Status::IOError("create '" + fs::path(path).parent_path().string() + "'", ec.value());
  EI_RETURN_IF_ERROR(WriteEim(graph, path));
  return Model::Load(path);
}

}  // namespace

Result<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("open '" + path + "'", errno);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<std::shared_ptr<const Model>> LoadPipelineModel(const PipelineConfig& p,
                                                       const std::string& state_dir,
                                                       bool write_cache) {
  const std::string ctx = "pipeline '" + p.name + "': model '" + p.model + "'";
  if (!p.model.ends_with(".onnx")) {
    auto m = Model::Load(p.model);
    return m.ok() ? m : Result<std::shared_ptr<const Model>>(m.status().WithContext(ctx));
  }
  QuantizeOptions quantize;
  if (!ParsePrecision(p.precision, &quantize.precision))
    return Status::InvalidArgument(ctx + ": unknown precision '" + p.precision + "'");
  auto bytes = ReadFileBytes(p.model);
  if (!bytes.ok()) return bytes.status().WithContext("pipeline '" + p.name + "'");
  const std::string cache = state_dir + "/models/" + fs::path(p.model).stem().string() + "-" +
                            Fnv1a64Hex(*bytes) + "-" + p.precision + ".eim";
  if (write_cache && fs::exists(cache)) {
    auto m = Model::Load(cache);
    if (m.ok()) return m;
    Log("warning",
        "cached model '" + cache + "' unusable (" + m.status().ToString() + "); converting again");
  }
  auto imported = ImportOnnxBytes(*bytes);
  if (!imported.ok()) return imported.status().WithContext(ctx);
  std::vector<LayerPlan> plan;
  auto graph = QuantizeGraph(*imported, quantize, &plan);  // what `edgeinfer convert` does
  if (!graph.ok()) return graph.status().WithContext(ctx + " at " + p.precision);
  if (write_cache) {
    auto m = CacheConverted(*graph, cache);
    if (m.ok()) {
      Log("info", ctx + " converted to '" + cache + "'");
      return m;
    }
    Log("warning", ctx + ": cannot cache the conversion (" + m.status().ToString() +
                       "); using it from memory");
  }
  return Model::FromGraph(std::move(*graph));
}

}  // namespace edgeinfer::agent
