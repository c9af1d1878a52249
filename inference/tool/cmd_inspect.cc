// edgeinfer inspect MODEL.eim [--json] [--batch 1,16]
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "inference/model.h"
#include "inference/quant/cpu_features.h"
#include "inference/quant/qgemm.h"
#include "inference/quant/weight_format.h"
#include "inference/session.h"
#include "inference/tool/args.h"
#include "inference/tool/commands.h"

namespace edgeinfer::tool {

namespace {
constexpr char kHelp[] =
    "usage: edgeinfer inspect MODEL.eim [--json] [--batch 1,16]\n"
    "\n"
    "Shows the model's metadata, inputs and outputs, every node with its attributes (Gemm and\n"
    "Conv with the precision their weight is stored at, its dtype, bytes and the kernel level\n"
    "that runs it), the weight bytes, and the arena plan (planned bytes against the sum of all\n"
    "intermediate tensors) for each maximum batch in --batch.\n";

nlohmann::json FloatJson(float f) {
  if (std::isfinite(f)) return f;
  return std::isnan(f) ? "nan" : (f > 0 ? "inf" : "-inf");
}

nlohmann::json AttrJson(const AttrValue& v) {
  if (auto* f = std::get_if<float>(&v)) return FloatJson(*f);
  if (auto* fs = std::get_if<std::vector<float>>(&v)) {
    nlohmann::json a = nlohmann::json::array();
    for (float f : *fs) a.push_back(FloatJson(f));
    return a;
  }
  return std::visit([](const auto& x) { return nlohmann::json(x); }, v);
}

nlohmann::json TensorJson(const Graph& g, int t) {
  const TensorDesc& d = g.tensors[t];
  return {{"name", d.name},
          {"dtype", DTypeName(d.dtype)},
          {"dims", d.dims},
          {"shape", DimsToString(d.dims)}};
}

// Layers with a constant weight (Gemm's B, Conv's W): the precision it is stored at, its dtype
// and bytes, and the kernel level that runs it ("blas" for float32). Static int8 layers (QGemm,
// QConv) show as "int8-static" with their activation scales (also in their attributes).
void AddWeightInfo(const Graph& g, const Node& n, nlohmann::json* node) {
  const bool is_static = n.op == "QGemm" || n.op == "QConv";
  if ((n.op != "Gemm" && n.op != "Conv" && !is_static) || n.inputs.size() < 2 || n.inputs[1] < 0)
    return;
  const TensorDesc& w = g.tensors[n.inputs[1]];
  if (!w.is_constant()) return;
  const char* precision = quant::WeightPrecisionName(w.dtype);
  (*node)["precision"] = is_static ? "int8-static" : precision ? precision : DTypeName(w.dtype);
  if (is_static) {
    (*node)["x_scale"] = n.attrs.GetFloat("x_scale");
    (*node)["x_dtype"] = DTypeName(g.tensors[n.inputs[0]].dtype);
    if (n.attrs.Has("y_scale")) (*node)["y_scale"] = n.attrs.GetFloat("y_scale");
  }
  (*node)["weight_dtype"] = DTypeName(w.dtype);
  (*node)["weight_bytes"] = w.bytes;
  quant::WeightFormat format;
  (*node)["kernel"] =
      quant::WeightFormatOf(w.dtype, &format)
          ? quant::CpuLevelName(quant::SelectQGemm(format, quant::BestCpuLevel()).level)
          : "float";
}

nlohmann::json Describe(const Model& m, const std::vector<int>& batches) {
  const Graph& g = m.graph();
  nlohmann::json j;
  j["model"] = {{"name", g.info.name},         {"version", g.info.version},
                {"producer", g.info.producer}, {"source_hash", g.info.source_hash},
                {"labels", g.info.labels},     {"path", m.path()}};
  if (!g.info.norm_mean.empty())
    j["model"]["preprocessing"] = {
        {"mean", g.info.norm_mean}, {"std", g.info.norm_std}, {"axis", g.info.norm_axis}};
  for (int i : g.inputs) j["inputs"].push_back(TensorJson(g, i));
  for (int o : g.outputs) j["outputs"].push_back(TensorJson(g, o));
  j["nodes"] = nlohmann::json::array();
  size_t constants = 0;
  for (const TensorDesc& t : g.tensors) constants += t.is_constant();
  for (const Node& n : g.nodes) {
    nlohmann::json node = {{"name", n.name}, {"op", n.op}};
    for (int t : n.inputs) node["inputs"].push_back(t >= 0 ? g.tensors[t].name : "");
    for (int t : n.outputs) node["outputs"].push_back(g.tensors[t].name);
    node["output_shape"] = DimsToString(g.tensors[n.outputs[0]].dims);
    node["output_dtype"] = DTypeName(g.tensors[n.outputs[0]].dtype);
    node["attrs"] = nlohmann::json::object();
    for (const auto& [k, v] : n.attrs.values()) node["attrs"][k] = AttrJson(v);
    AddWeightInfo(g, n, &node);
    j["nodes"].push_back(node);
  }
  j["tensors"] = g.tensors.size();
  j["constant_tensors"] = constants;
  j["weight_bytes"] = m.weight_bytes();
  j["file_bytes"] = m.file_bytes();
  j["arena"] = nlohmann::json::array();
  for (int b : batches) {
    SessionOptions so;
    so.max_batch = b;
    so.blas_threads = 0;
    auto s = Session::Create(std::shared_ptr<const Model>(&m, [](const Model*) {}), so);
    if (!s.ok()) continue;
    j["arena"].push_back({{"max_batch", (*s)->max_batch()},
                          {"arena_bytes", (*s)->arena_bytes()},
                          {"intermediate_bytes", (*s)->naive_arena_bytes()}});
  }
  return j;
}

void PrintText(const nlohmann::json& j) {
  const auto& m = j["model"];
  std::printf("model     %s %s\n", m["name"].get<std::string>().c_str(),
              m["version"].get<std::string>().c_str());
  std::printf("producer  %s\n", m["producer"].get<std::string>().c_str());
  std::printf("source    %s\n", m["source_hash"].get<std::string>().c_str());
  if (!m["labels"].empty()) std::printf("labels    %s\n", m["labels"].dump().c_str());
  if (m.contains("preprocessing")) std::printf("normalize %s\n", m["preprocessing"].dump().c_str());
  for (const auto& t : j["inputs"])
    std::printf("input     %s %s %s\n", t["name"].get<std::string>().c_str(),
                t["dtype"].get<std::string>().c_str(), t["shape"].get<std::string>().c_str());
  for (const auto& t : j["outputs"])
    std::printf("output    %s %s %s\n", t["name"].get<std::string>().c_str(),
                t["dtype"].get<std::string>().c_str(), t["shape"].get<std::string>().c_str());
  std::printf("\n%-4s %-28s %-18s %-18s %-32s %s\n", "#", "node", "op", "output",
              "precision (weight, bytes, kernel)", "attributes");
  int i = 0;
  for (const auto& n : j["nodes"]) {
    std::string weight;
    if (n.contains("precision"))
      weight = n["precision"].get<std::string>() + " (" + n["weight_dtype"].get<std::string>() +
               ", " + std::to_string(n["weight_bytes"].get<size_t>()) + ", " +
               n["kernel"].get<std::string>() + ")";
    nlohmann::json attrs = n["attrs"];
    attrs.erase("precision");  // shown in its own column
    std::string output = n["output_shape"].get<std::string>();
    if (n["output_dtype"] != "float32")
      output.append(" ").append(n["output_dtype"].get<std::string>());
    std::printf("%-4d %-28s %-18s %-18s %-32s %s\n", i++, n["name"].get<std::string>().c_str(),
                n["op"].get<std::string>().c_str(), output.c_str(), weight.c_str(),
                attrs.dump().c_str());
  }
  std::printf("\ntensors   %zu (%zu constant)\n", j["tensors"].get<size_t>(),
              j["constant_tensors"].get<size_t>());
  std::printf("weights   %zu bytes\n", j["weight_bytes"].get<size_t>());
  std::printf("file      %zu bytes\n", j["file_bytes"].get<size_t>());
  for (const auto& a : j["arena"])
    std::printf("arena     max batch %d: %zu bytes planned, %zu bytes of intermediates\n",
                a["max_batch"].get<int>(), a["arena_bytes"].get<size_t>(),
                a["intermediate_bytes"].get<size_t>());
}
}  // namespace

int Inspect(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"--batch"}, {"--help", "--json"});
  if (!args.ok()) return Fail(args.status().message() + "\n" + kHelp, 2);
  if (args->Has("--help")) return std::fputs(kHelp, stdout), 0;
  if (args->positionals().size() != 1) return Fail("inspect takes one .eim file", 2);
  auto batches = args->GetIntList("--batch", {1, 16}, 1, 4096);
  if (!batches.ok()) return Fail(batches.status().message(), 2);
  const std::string& path = args->positionals()[0];
  auto model = Model::Load(path);
  if (!model.ok()) return Fail(path + ": " + model.status().ToString());
  nlohmann::json j = Describe(**model, *batches);
  if (args->Has("--json")) {
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    PrintText(j);
  }
  return 0;
}

}  // namespace edgeinfer::tool
