// Tests of the .eim model file: CRC32C, writer, zero-copy reader, and refusal of truncated,
// corrupt and hostile files.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "inference/crc32c.h"
#include "inference/eim_format.h"
#include "inference/eim_reader_internal.h"
#include "inference/eim_writer.h"
#include "inference/model.h"
#include "inference/op.h"

namespace edgeinfer {
namespace {

using nlohmann::json;
using Bytes = std::vector<char>;

// ---- CRC32C ----

TEST(EimCrc32cTest, KnownVectors) {
  // RFC 3720 (iSCSI) test vectors and the usual check value.
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xFF), up(32), down(32);
  for (int i = 0; i < 32; ++i)
    up[i] = static_cast<uint8_t>(i), down[i] = static_cast<uint8_t>(31 - i);
  using Fn = uint32_t (*)(const void*, size_t, uint32_t);
  std::vector<Fn> fns = {&Crc32c, &Crc32cPortable};
  if (Crc32cHardwareAvailable()) fns.push_back(&Crc32cHardware);
  for (Fn f : fns) {
    EXPECT_EQ(f("123456789", 9, 0), 0xE3069283u);
    EXPECT_EQ(f("", 0, 0), 0u);
    EXPECT_EQ(f(zeros.data(), 32, 0), 0x8A9136AAu);
    EXPECT_EQ(f(ones.data(), 32, 0), 0x62A8AB43u);
    EXPECT_EQ(f(up.data(), 32, 0), 0x46DD794Eu);
    EXPECT_EQ(f(down.data(), 32, 0), 0x113FDB5Cu);
  }
}

TEST(EimCrc32cTest, HardwareMatchesPortableAndExtends) {
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(1100);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t start = 0; start < 9; ++start) {  // every alignment
    for (size_t n = 0; n + start <= buf.size(); n += 1 + n / 8) {
      uint32_t want = Crc32cPortable(buf.data() + start, n);
      if (Crc32cHardwareAvailable()) {
        ASSERT_EQ(Crc32cHardware(buf.data() + start, n), want) << start << "+" << n;
      }
      ASSERT_EQ(Crc32c(buf.data() + start, n), want);
      size_t half = n / 3;
      ASSERT_EQ(Crc32c(buf.data() + start + half, n - half, Crc32c(buf.data() + start, half)),
                want);
    }
  }
}

// ---- Helpers ----

class EimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::filesystem::temp_directory_path() / "eim_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

std::vector<float> Iota(size_t n, float start) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + static_cast<float>(i);
  return v;
}

int AddTensor(Graph* g, const std::string& name, Dims dims, DType dtype = DType::kFloat32) {
  TensorDesc t;
  t.name = name;
  t.dims = std::move(dims);
  t.dtype = dtype;
  return g->AddTensor(std::move(t));
}

// A graph that exercises the format, not the ops: every dtype size, batch markers, attributes of
// every type (non-finite floats too), an absent optional input, full ModelInfo.
Graph FormatGraph() {
  Graph g;
  int x = AddTensor(&g, "x", {kBatchDim, 3});
  auto w = Iota(12, 1.f);
  int fw = g.AddConstant("fc1.weight", DType::kFloat32, {4, 3}, w.data(), w.size() * 4);
  int8_t q[5] = {-128, -1, 0, 1, 127};
  int fq = g.AddConstant("q", DType::kInt8, {5}, q, sizeof(q));
  int64_t idx[2] = {std::numeric_limits<int64_t>::min(), 42};
  int fi = g.AddConstant("idx", DType::kInt64, {2}, idx, sizeof(idx));
  uint16_t h[3] = {0x3C00, 0xC000, 0x7BFF};
  int fh = g.AddConstant("half", DType::kFloat16, {1, 3}, h, sizeof(h));
  int fe = g.AddConstant("empty", DType::kFloat32, {0}, nullptr, 0);
  int y = AddTensor(&g, "y", {-16, 4});
  int z = AddTensor(&g, "z", {kBatchDim, 4, 1, 1, 1, 1, 1, 1});
  Node fc;
  fc.name = "fc1";
  fc.op = "Gemm";
  fc.inputs = {x, fw, -1};
  fc.outputs = {y};
  fc.attrs.Set("transB", int64_t{1});
  fc.attrs.Set("big", std::numeric_limits<int64_t>::min());
  fc.attrs.Set("alpha", 0.1f);
  fc.attrs.Set("activation", std::string("Relu \"quoted\" \u00e9"));
  fc.attrs.Set("precision", std::string("int8"));
  fc.attrs.Set("pads", std::vector<int64_t>{0, 1, -2});
  fc.attrs.Set("empty_ints", std::vector<int64_t>{});
  float inf = std::numeric_limits<float>::infinity();
  fc.attrs.Set("scales", std::vector<float>{1.5f, -inf, std::nanf(""), inf, 1e-45f, 3.4e38f});
  Node other;
  other.name = "mix";
  other.op = "Mix";
  other.inputs = {y, fq, fi, fh, fe};
  other.outputs = {z};
  g.nodes = {fc, other};
  g.inputs = {x};
  g.outputs = {z};
  g.info = {"kws",
            "1.2.3",
            "pytorch 1.13.0 via edgeinfer-convert 0.1.0",
            "ab12cd",
            {"yes", "no", "_unknown_"},
            {0.485f, 0.456f, 0.406f},
            {0.229f, 0.224f, 0.225f},
            -1};
  return g;
}

bool SameFloat(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

bool SameAttr(const AttrValue& a, const AttrValue& b) {
  if (a.index() != b.index()) return false;
  if (const auto* f = std::get_if<float>(&a)) return SameFloat(*f, std::get<float>(b));
  if (const auto* v = std::get_if<std::vector<float>>(&a)) {
    const auto& w = std::get<std::vector<float>>(b);
    if (v->size() != w.size()) return false;
    for (size_t i = 0; i < v->size(); ++i)
      if (!SameFloat((*v)[i], w[i])) return false;
    return true;
  }
  return a == b;
}

void ExpectSameGraph(const Graph& got, const Graph& want) {
  ASSERT_EQ(got.tensors.size(), want.tensors.size());
  for (size_t i = 0; i < want.tensors.size(); ++i) {
    const TensorDesc &a = got.tensors[i], &b = want.tensors[i];
    SCOPED_TRACE(b.name);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.dtype, b.dtype);
    EXPECT_EQ(a.dims, b.dims);
    EXPECT_EQ(a.is_constant(), b.is_constant());
    EXPECT_EQ(a.bytes, b.bytes);
    if (b.bytes) {
      EXPECT_EQ(std::memcmp(a.data, b.data, b.bytes), 0);
    }
  }
  ASSERT_EQ(got.nodes.size(), want.nodes.size());
  for (size_t i = 0; i < want.nodes.size(); ++i) {
    const Node &a = got.nodes[i], &b = want.nodes[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.op, b.op);
    EXPECT_EQ(a.inputs, b.inputs);
    EXPECT_EQ(a.outputs, b.outputs);
    ASSERT_EQ(a.attrs.values().size(), b.attrs.values().size());
    for (const auto& [name, value] : b.attrs.values()) {
      ASSERT_TRUE(a.attrs.Has(name)) << name;
      EXPECT_TRUE(SameAttr(a.attrs.values().at(name), value)) << name;
    }
  }
  EXPECT_EQ(got.inputs, want.inputs);
  EXPECT_EQ(got.outputs, want.outputs);
  EXPECT_EQ(got.info.name, want.info.name);
  EXPECT_EQ(got.info.version, want.info.version);
  EXPECT_EQ(got.info.producer, want.info.producer);
  EXPECT_EQ(got.info.source_hash, want.info.source_hash);
  EXPECT_EQ(got.info.labels, want.info.labels);
  EXPECT_EQ(got.info.norm_mean, want.info.norm_mean);
  EXPECT_EQ(got.info.norm_std, want.info.norm_std);
  EXPECT_EQ(got.info.norm_axis, want.info.norm_axis);
}

Bytes ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

void WriteFile(const std::string& path, const Bytes& b) {
  std::ofstream(path, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
}

eim::Header GetHeader(const Bytes& file) {
  eim::Header h;
  std::memcpy(&h, file.data(), sizeof(h));
  return h;
}

// Stores `h` with a correct header checksum, so the reader's later checks are what is tested.
void PutHeader(Bytes* file, eim::Header h) {
  h.header_crc = Crc32c(&h, offsetof(eim::Header, header_crc));
  std::memcpy(file->data(), &h, sizeof(h));
}

// Rebuilds `file` with another graph section (checksums fixed), keeping its blobs.
Bytes WithJson(const Bytes& file, const std::string& text) {
  eim::Header h = GetHeader(file);
  Bytes blobs(file.begin() + static_cast<ptrdiff_t>(h.blobs_offset), file.end());
  h.json_size = text.size();
  h.json_crc = Crc32c(text.data(), text.size());
  h.blobs_offset = eim::AlignUp(h.json_offset + h.json_size, 64);
  h.file_size = h.blobs_offset + h.blobs_size;
  Bytes out(h.file_size, 0);
  std::memcpy(out.data() + h.json_offset, text.data(), text.size());
  std::memcpy(out.data() + h.blobs_offset, blobs.data(), blobs.size());
  PutHeader(&out, h);
  return out;
}

json GetJson(const Bytes& file) {
  eim::Header h = GetHeader(file);
  return json::parse(file.begin() + static_cast<ptrdiff_t>(h.json_offset),
                     file.begin() + static_cast<ptrdiff_t>(h.json_offset + h.json_size));
}

Result<Graph> Parse(const Bytes& file, bool verify = true) {
  return internal::ParseEim(file.data(), file.size(), verify);
}

#define EXPECT_ERROR(result, substring)                                                            \
  do {                                                                                             \
    const auto& r_ = (result);                                                                     \
    ASSERT_FALSE(r_.ok()) << "expected an error containing: " << (substring);                      \
    EXPECT_NE(r_.status().message().find(substring), std::string::npos) << r_.status().ToString(); \
  } while (0)

// ---- Writer and round trip ----

TEST_F(EimTest, RoundTripPreservesEverything) {
  Graph g = FormatGraph();
  ASSERT_TRUE(WriteEim(g, Path("m.eim")).ok());
  auto loaded = internal::LoadEimNoOpValidation(Path("m.eim"), {});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ExpectSameGraph(loaded->graph, g);
  EXPECT_EQ(loaded->file_bytes, std::filesystem::file_size(Path("m.eim")));
}

TEST_F(EimTest, HeaderAndLayoutAreAsDocumented) {
  Graph g = FormatGraph();
  ASSERT_TRUE(WriteEim(g, Path("m.eim")).ok());
  Bytes file = ReadFile(Path("m.eim"));
  eim::Header h = GetHeader(file);
  EXPECT_EQ(std::memcmp(file.data(), "EDGEINFM", 8), 0);
  EXPECT_EQ(h.version, 1u);
  EXPECT_EQ(h.header_size, 64u);
  EXPECT_EQ(h.json_offset, 64u);
  EXPECT_EQ(h.blobs_offset % 64, 0u);
  EXPECT_GE(h.blobs_offset, h.json_offset + h.json_size);
  EXPECT_EQ(h.file_size, file.size());
  EXPECT_EQ(h.blobs_offset + h.blobs_size, h.file_size);
  // Blob offsets are relative to the blobs section and 64-aligned; gaps are zeros.
  json j = GetJson(file);
  const json& w = j["tensors"][1]["data"];
  EXPECT_EQ(w["offset"], 0);
  EXPECT_EQ(w["size"], 48);
  EXPECT_EQ(j["tensors"][2]["data"]["offset"], 64);
  for (uint64_t i = h.blobs_offset + 48; i < h.blobs_offset + 64; ++i) EXPECT_EQ(file[i], 0);
  EXPECT_EQ(j["nodes"][0]["attrs"]["alpha"]["type"], "float");
  EXPECT_EQ(j["nodes"][0]["attrs"]["scales"]["value"][1], "-inf");
}

TEST_F(EimTest, WeightsAreZeroCopyAnd64ByteAligned) {
  ASSERT_TRUE(WriteEim(FormatGraph(), Path("m.eim")).ok());
  auto loaded = internal::LoadEimNoOpValidation(Path("m.eim"), {});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Graph& g = loaded->graph;
  ASSERT_FALSE(g.owned.empty());
  auto base = reinterpret_cast<uintptr_t>(g.owned.back().get());
  int constants = 0;
  for (const TensorDesc& t : g.tensors) {
    if (!t.is_constant()) continue;
    ++constants;
    auto p = reinterpret_cast<uintptr_t>(t.data);
    EXPECT_GE(p, base) << t.name;
    EXPECT_LE(p + t.bytes, base + loaded->file_bytes) << t.name;
    EXPECT_EQ(p % 64, 0u) << t.name;
  }
  EXPECT_EQ(constants, 5);
  // The weights' address is a mapping of the file itself, not a heap copy.
  auto p = reinterpret_cast<uintptr_t>(g.tensors[g.FindTensor("fc1.weight")].data);
  std::ifstream maps("/proc/self/maps");
  std::string line, mapped_file;
  while (std::getline(maps, line)) {
    std::istringstream s(line);
    uintptr_t lo, hi;
    char dash;
    std::string perms, offset, dev, inode, path;
    s >> std::hex >> lo >> dash >> hi >> perms >> offset >> dev >> inode >> path;
    if (p >= lo && p < hi) mapped_file = path;
  }
  EXPECT_EQ(mapped_file, std::filesystem::canonical(Path("m.eim")).string());
}

TEST_F(EimTest, WriterLeavesNoTempFileAndReplacesAtomically) {
  Graph g = FormatGraph();
  WriteFile(Path("m.eim"), Bytes(10, 'x'));
  ASSERT_TRUE(WriteEim(g, Path("m.eim")).ok());
  EXPECT_FALSE(std::filesystem::exists(Path("m.eim.tmp")));
  EXPECT_TRUE(Parse(ReadFile(Path("m.eim"))).ok());
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir_))
    names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"m.eim"});
}

TEST_F(EimTest, WriterFailureRemovesTempFile) {
  Status s = WriteEim(FormatGraph(), Path("no/such/dir/m.eim"));
  EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
  // Renaming onto a directory fails after the temp file was written; it must not remain.
  std::filesystem::create_directories(Path("d/sub"));
  s = WriteEim(FormatGraph(), Path("d"));
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(std::filesystem::exists(Path("d.tmp")));
}

TEST_F(EimTest, WriterRefusesInconsistentConstants) {
  Graph g = FormatGraph();
  g.tensors[1].bytes = 40;  // fc1.weight is [4, 3] float32: 48 bytes
  Status s = WriteEim(g, Path("m.eim"));
  EXPECT_NE(s.message().find("tensor 'fc1.weight': holds 40 bytes"), std::string::npos)
      << s.ToString();
  g = FormatGraph();
  g.tensors[0].dims = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_FALSE(WriteEim(g, Path("m.eim")).ok());
  g = FormatGraph();
  g.tensors[0].name = "bad\xff";
  EXPECT_EQ(WriteEim(g, Path("m.eim")).code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(Path("m.eim")));
}

TEST_F(EimTest, GraphWithoutConstantsRoundTrips) {
  Graph g;
  int x = AddTensor(&g, "x", {kBatchDim, 2});
  int y = AddTensor(&g, "y", {kBatchDim, 2});
  g.nodes.push_back(Node{"r", "Relu", {x}, {y}, {}});
  g.inputs = {x};
  g.outputs = {y};
  ASSERT_TRUE(WriteEim(g, Path("m.eim")).ok());
  Bytes file = ReadFile(Path("m.eim"));
  EXPECT_EQ(GetHeader(file).blobs_size, 0u);
  auto r = Parse(file);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectSameGraph(*r, g);
}

// ---- Model::Load and FromGraph (op validation by ValidateGraph) ----

// y = Relu(x + bias): ops from the op table, so the whole load path runs.
Graph AddReluGraph() {
  Graph g;
  int x = AddTensor(&g, "x", {kBatchDim, 4});
  float bias[4] = {1, -2, 3, -4};
  int b = g.AddConstant("bias", DType::kFloat32, {4}, bias, sizeof(bias));
  int s = AddTensor(&g, "sum", {kBatchDim, 4});
  int y = AddTensor(&g, "y", {kBatchDim, 4});
  g.nodes.push_back(Node{"add", "Add", {x, b}, {s}, {}});
  g.nodes.push_back(Node{"relu", "Relu", {s}, {y}, {}});
  g.inputs = {x};
  g.outputs = {y};
  g.info.labels = {"a", "b", "c", "d"};
  return g;
}

bool HaveOps() { return FindOp("Add") && FindOp("Relu"); }

TEST_F(EimTest, ModelLoadValidatesOpsAndKeepsTheMapping) {
  if (!HaveOps()) GTEST_SKIP() << "Add/Relu not in the op table yet";
  ASSERT_TRUE(WriteEim(AddReluGraph(), Path("m.eim")).ok());
  auto model = Model::Load(Path("m.eim"));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->path(), Path("m.eim"));
  EXPECT_EQ((*model)->file_bytes(), std::filesystem::file_size(Path("m.eim")));
  EXPECT_EQ((*model)->weight_bytes(), 16u);
  // The mapping outlives the file name: unlink it and the weights stay readable.
  std::filesystem::remove(Path("m.eim"));
  const float* bias = static_cast<const float*>((*model)->graph().tensors[1].data);
  EXPECT_EQ(bias[3], -4.f);
  EXPECT_EQ((*model)->graph().info.labels.size(), 4u);
}

TEST_F(EimTest, ModelLoadRefusesUnknownOpAndWrongStoredDims) {
  if (!HaveOps()) GTEST_SKIP() << "Add/Relu not in the op table yet";
  Graph g = AddReluGraph();
  g.nodes[1].op = "Frobnicate";
  ASSERT_TRUE(WriteEim(g, Path("m.eim")).ok());
  EXPECT_ERROR(Model::Load(Path("m.eim")), "unknown op 'Frobnicate'");
  g = AddReluGraph();
  g.tensors[3].dims = {kBatchDim, 5};
  ASSERT_TRUE(WriteEim(g, Path("m.eim")).ok());
  EXPECT_ERROR(Model::Load(Path("m.eim")), "tensor 'y'");
}

TEST_F(EimTest, FromGraphValidates) {
  if (!HaveOps()) GTEST_SKIP() << "Add/Relu not in the op table yet";
  auto model = Model::FromGraph(AddReluGraph());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->file_bytes(), 0u);
  EXPECT_EQ((*model)->weight_bytes(), 16u);
  Graph g = AddReluGraph();
  g.nodes[0].op = "Nope";
  EXPECT_ERROR(Model::FromGraph(std::move(g)), "unknown op 'Nope'");
}

// Drops CAP_IPC_LOCK from the effective set, so RLIMIT_MEMLOCK applies even to root.
bool DropIpcLockCapability() {
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
  return ::syscall(SYS_capset, &header, data) == 0;
}

// Runs in a death-test child: loads with mlock but without the capability and with a zero
// RLIMIT_MEMLOCK, prints the error and exits 0 when it is the expected one.
[[noreturn]] void MlockWithoutPermission(const std::string& path) {
  rlimit zero = {0, 0};
  if (!DropIpcLockCapability() || ::setrlimit(RLIMIT_MEMLOCK, &zero) != 0) _exit(2);
  LoadOptions options;
  options.mlock = true;
  auto r = internal::LoadEimNoOpValidation(path, options);
  if (r.ok()) _exit(3);
  std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
  _exit(r.status().code() == Status::Code::kResourceExhausted ? 0 : 4);
}

TEST_F(EimTest, MlockPinsOrFailsNamingTheLimit) {
  ASSERT_TRUE(WriteEim(FormatGraph(), Path("m.eim")).ok());
  LoadOptions options;
  options.mlock = true;
  auto r = internal::LoadEimNoOpValidation(Path("m.eim"), options);
  EXPECT_TRUE(r.ok()) << r.status().ToString();  // 2 KB: within the default limit
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer replaces mlock with a no-op";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // OpenBLAS may have started threads
  EXPECT_EXIT(MlockWithoutPermission(Path("m.eim")), ::testing::ExitedWithCode(0),
              "resource exhausted: mlock of [0-9]+ bytes failed.*RLIMIT_MEMLOCK");
}

TEST_F(EimTest, RefusesMissingEmptyAndNonRegularFiles) {
  auto r = internal::LoadEimNoOpValidation(Path("absent.eim"), {});
  EXPECT_ERROR(r, "absent.eim");
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  WriteFile(Path("empty.eim"), {});
  EXPECT_ERROR(internal::LoadEimNoOpValidation(Path("empty.eim"), {}), "truncated");
  EXPECT_ERROR(internal::LoadEimNoOpValidation(dir_, {}), "not a regular file");
}

// ---- Truncated, corrupt and hostile files ----

class EimCorruptionTest : public EimTest {
 protected:
  void SetUp() override {
    EimTest::SetUp();
    ASSERT_TRUE(WriteEim(FormatGraph(), Path("m.eim")).ok());
    file_ = ReadFile(Path("m.eim"));
    ASSERT_TRUE(Parse(file_).ok());
  }
  Bytes file_;
};

TEST_F(EimCorruptionTest, TruncationAnywhereIsReported) {
  std::vector<size_t> cuts;
  for (size_t n = 0; n <= 64; ++n) cuts.push_back(n);
  for (size_t k = 1; k < 16; ++k) cuts.push_back(file_.size() * k / 16);
  cuts.push_back(file_.size() - 1);
  for (size_t n : cuts) {
    SCOPED_TRACE(n);
    Bytes cut(file_.begin(), file_.begin() + static_cast<ptrdiff_t>(n));
    EXPECT_ERROR(Parse(cut), "truncated");
    WriteFile(Path("cut.eim"), cut);  // through mmap too
    EXPECT_ERROR(internal::LoadEimNoOpValidation(Path("cut.eim"), {}), "truncated");
  }
}

TEST_F(EimCorruptionTest, FlippedBlobByteNamesTheTensor) {
  eim::Header h = GetHeader(file_);
  file_[h.blobs_offset + 5] ^= 0x10;  // inside fc1.weight
  EXPECT_ERROR(Parse(file_), "tensor 'fc1.weight': checksum mismatch");
  EXPECT_TRUE(Parse(file_, /*verify=*/false).ok());  // verify_checksums off: the cheap load
  WriteFile(Path("bad.eim"), file_);
  EXPECT_ERROR(internal::LoadEimNoOpValidation(Path("bad.eim"), {}),
               "tensor 'fc1.weight': checksum mismatch");
}

TEST_F(EimCorruptionTest, FlippedJsonByteIsAChecksumError) {
  file_[GetHeader(file_).json_offset + 10] ^= 0x01;
  EXPECT_ERROR(Parse(file_), "graph section checksum mismatch");
}

TEST_F(EimCorruptionTest, WrongMagicVersionAndHeaderChecksum) {
  Bytes bad = file_;
  bad[0] = 'X';
  EXPECT_ERROR(Parse(bad), "not an .eim file");
  eim::Header h = GetHeader(file_);
  h.version = 999;
  bad = file_;
  PutHeader(&bad, h);
  auto r = Parse(bad);
  EXPECT_ERROR(r, "version 999 (this build reads version 1)");
  EXPECT_EQ(r.status().code(), Status::Code::kUnsupported);
  bad = file_;
  bad[40] ^= 0x01;  // blobs_size, crc not fixed
  EXPECT_ERROR(Parse(bad), "header checksum mismatch");
  h = GetHeader(file_);
  h.header_size = 128;
  bad = file_;
  PutHeader(&bad, h);
  EXPECT_ERROR(Parse(bad), "header size 128");
  bad = file_;
  bad.push_back(0);
  EXPECT_ERROR(Parse(bad), "trailing data");
}

TEST_F(EimCorruptionTest, HostileHeaderOffsets) {
  const eim::Header good = GetHeader(file_);
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  struct Case {
    const char* what;
    std::function<void(eim::Header*)> edit;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"json size overflows", [&](eim::Header* h) { h->json_size = kMax - 10; }, "overflows"},
      {"json offset huge", [&](eim::Header* h) { h->json_offset = kMax / 2; }, "past the end"},
      {"json over header", [&](eim::Header* h) { h->json_offset = 8; }, "overlaps"},
      {"json past file", [&](eim::Header* h) { h->json_size = h->file_size; }, "past the end"},
      {"blobs over json", [&](eim::Header* h) { h->blobs_offset = 64; }, "overlaps"},
      {"blobs overflow", [&](eim::Header* h) { h->blobs_size = kMax; }, "overflows"},
      {"blobs past file", [&](eim::Header* h) { h->blobs_size += 64; }, "past the end"},
      {"blobs misaligned",
       [&](eim::Header* h) {
         h->blobs_offset += 8;
         h->blobs_size -= 8;
       },
       "not 64-byte aligned"},
      {"file size huge", [&](eim::Header* h) { h->file_size = kMax; }, "truncated"},
      {"json huge in huge file",
       [&](eim::Header* h) {
         h->file_size = kMax;
         h->json_size = uint64_t{1} << 40;
       },
       "truncated"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    eim::Header h = good;
    c.edit(&h);
    Bytes bad = file_;
    PutHeader(&bad, h);
    EXPECT_ERROR(Parse(bad), c.error);
  }
}

TEST_F(EimCorruptionTest, OversizedGraphSectionIsRefused) {
  // A real section over the limit, consistent otherwise: refused before parsing.
  std::string text = GetJson(file_).dump();
  text.append(eim::kMaxJsonBytes - text.size() + 1, ' ');
  EXPECT_ERROR(Parse(WithJson(file_, text)), "exceeds the limit");
}

TEST_F(EimCorruptionTest, HostileGraphSections) {
  struct Case {
    const char* what;
    std::function<void(json*)> edit;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"not an object", [](json* j) { *j = json::array(); }, "expected an object"},
      {"no tensors", [](json* j) { j->erase("tensors"); }, "tensors: missing"},
      {"tensors not array", [](json* j) { (*j)["tensors"] = 3; }, "tensors: expected an array"},
      {"no dtype", [](json* j) { (*j)["tensors"][1].erase("dtype"); }, "tensors[1].dtype: missing"},
      {"dtype ill-typed", [](json* j) { (*j)["tensors"][1]["dtype"] = 1; },
       "tensors[1].dtype: expected a string"},
      {"unknown dtype", [](json* j) { (*j)["tensors"][1]["dtype"] = "bfloat7"; },
       "tensor 'fc1.weight': unknown dtype 'bfloat7'"},
      {"dims 2^62", [](json* j) { (*j)["tensors"][0]["dims"][1] = int64_t{1} << 62; },
       "tensor 'x': dim 1 is 4611686018427387904"},
      {"dims -2^63",
       [](json* j) { (*j)["tensors"][0]["dims"][1] = std::numeric_limits<int64_t>::min(); },
       "tensor 'x': dim 1"},
      {"dims 2^64-1", [](json* j) { (*j)["tensors"][0]["dims"][1] = ~uint64_t{0}; },
       "tensors[0].dims[1]: integer out of range"},
      {"dims product",
       [](json* j) {
         (*j)["tensors"][0]["dims"] = {1 << 30, 1 << 30, 1 << 30};
       },
       "exceed 2^62 elements"},
      {"dims float", [](json* j) { (*j)["tensors"][0]["dims"][1] = 3.5; },
       "tensors[0].dims[1]: expected an integer"},
      {"rank 9",
       [](json* j) {
         (*j)["tensors"][0]["dims"] = json::array({1, 1, 1, 1, 1, 1, 1, 1, 1});
       },
       "rank 9 exceeds the maximum of 8"},
      {"node input index", [](json* j) { (*j)["nodes"][1]["inputs"][0] = 99; },
       "nodes[1].inputs[0]: tensor index 99 out of range"},
      {"node output -1", [](json* j) { (*j)["nodes"][0]["outputs"][0] = -1; },
       "nodes[0].outputs[0]: tensor index -1 out of range"},
      {"graph output index", [](json* j) { (*j)["outputs"] = {1000000000000}; },
       "outputs[0]: tensor index 1000000000000 out of range"},
      {"op missing", [](json* j) { (*j)["nodes"][0].erase("op"); }, "nodes[0].op: missing"},
      {"attr type", [](json* j) { (*j)["nodes"][0]["attrs"]["alpha"]["type"] = "complex"; },
       "nodes[0].attrs.alpha.type"},
      {"attr value", [](json* j) { (*j)["nodes"][0]["attrs"]["pads"]["value"] = "x"; },
       "nodes[0].attrs.pads.value: expected an array"},
      {"float out of range", [](json* j) { (*j)["nodes"][0]["attrs"]["alpha"]["value"] = 1e300; },
       "out of float range"},
      {"labels", [](json* j) { (*j)["info"]["labels"][1] = false; },
       "info.labels[1]: expected a string"},
      {"norm_axis", [](json* j) { (*j)["info"]["preprocessing"]["norm_axis"] = 1 << 30; },
       "info.preprocessing.norm_axis"},
      {"blob misaligned", [](json* j) { (*j)["tensors"][1]["data"]["offset"] = 8; },
       "tensor 'fc1.weight': blob offset 8 is not 64-byte aligned"},
      {"blob outside", [](json* j) { (*j)["tensors"][1]["data"]["offset"] = 1 << 20; },
       "tensor 'fc1.weight': blob [1048576, +48) is outside the blobs section"},
      {"blob offset overflow",
       [](json* j) { (*j)["tensors"][1]["data"]["offset"] = ~uint64_t{0} - 63; },
       "outside the blobs section"},
      {"blob size", [](json* j) { (*j)["tensors"][1]["data"]["size"] = 44; },
       "tensor 'fc1.weight': blob is 44 bytes, float32 [4, 3] needs 48"},
      {"blob negative size", [](json* j) { (*j)["tensors"][1]["data"]["size"] = -48; },
       "tensors[1].data.size: expected a non-negative integer"},
      {"crc 33 bits", [](json* j) { (*j)["tensors"][1]["data"]["crc32c"] = uint64_t{1} << 32; },
       "tensors[1].data.crc32c"},
      {"constant with batch",
       [](json* j) {
         (*j)["tensors"][1]["dims"] = {-1, 3};
       },
       "tensor 'fc1.weight': constant has batch dims"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    json j = GetJson(file_);
    c.edit(&j);
    EXPECT_ERROR(Parse(WithJson(file_, j.dump())), c.error);
  }
  EXPECT_ERROR(Parse(WithJson(file_, "{\"tensors\": [")),
               "graph section: [json.exception.parse_error");
  EXPECT_ERROR(Parse(WithJson(file_, "")), "parse_error");
}

// ---- Fuzzing: random damage never crashes, and a load is either ok or a named error ----

void ExpectOkOrError(const Result<Graph>& r) {
  if (!r.ok()) {
    EXPECT_FALSE(r.status().message().empty());
  }
}

TEST_F(EimCorruptionTest, FuzzFlipsAndTruncations) {
  std::mt19937 rng(1234);
  int errors = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    Bytes bad = file_;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
    if (rng() % 4 == 0) bad.resize(rng() % bad.size());
    Bytes exact(bad);  // exact-size heap buffer: a read past its end is a sanitizer error
    auto r = Parse(exact);
    ExpectOkOrError(r);
    errors += !r.ok();
  }
  EXPECT_GT(errors, 1900);  // nearly every damage is caught by a checksum or a size check
}

TEST_F(EimCorruptionTest, FuzzGraphSectionBehindValidChecksums) {
  // Damage the JSON and fix the checksums, so the parser and field checks see hostile input.
  std::mt19937 rng(99);
  const std::string text = GetJson(file_).dump();
  const std::string alphabet = "{}[]\":,-0123456789eE.+ a\\nul";
  for (int iter = 0; iter < 2000; ++iter) {
    std::string bad = text;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits; ++k) {
      size_t pos = rng() % bad.size();
      switch (rng() % 3) {
        case 0:
          bad[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          bad.erase(pos, 1 + rng() % 8);
          break;
        default:
          bad.insert(pos, 1, alphabet[rng() % alphabet.size()]);
      }
    }
    ExpectOkOrError(Parse(WithJson(file_, bad)));
  }
}

}  // namespace
}  // namespace edgeinfer
