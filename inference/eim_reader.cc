// Model::Load: mmap + validation of a .eim file, with the weights left in the mapping.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "inference/crc32c.h"
#include "inference/eim_format.h"
#include "inference/eim_reader_internal.h"
#include "inference/graph_json.h"
#include "inference/model.h"

namespace edgeinfer {

namespace internal {

namespace {

using eim::Header;

std::string Num(uint64_t v) { return std::to_string(v); }

Status CheckHeaderFits(size_t size) {
  if (size >= eim::kHeaderSize) return Status::Ok();
  return Status::Corruption("truncated: file is " + Num(size) + " bytes, shorter than the " +
                            Num(eim::kHeaderSize) + "-byte header");
}

Status CheckHeaderFields(const Header& h, size_t size) {
  if (std::memcmp(h.magic, eim::kMagic, sizeof(h.magic)) != 0)
    return Status::Corruption("not an .eim file (bad magic)");
  if (h.version != eim::kFormatVersion)
    return Status::Unsupported("unsupported .eim format version " + Num(h.version) +
                               " (this build reads version " + Num(eim::kFormatVersion) + ")");
  if (h.header_size != eim::kHeaderSize)
    return Status::Corruption("header size " + Num(h.header_size) + ", expected " +
                              Num(eim::kHeaderSize));
  if (Crc32c(&h, offsetof(Header, header_crc)) != h.header_crc)
    return Status::Corruption("header checksum mismatch");
  if (size < h.file_size)
    return Status::Corruption("truncated: file is " + Num(size) + " bytes, header says " +
                              Num(h.file_size));
  if (size > h.file_size)
    return Status::Corruption("file is " + Num(size) + " bytes, header says " + Num(h.file_size) +
                              " (trailing data)");
  return Status::Ok();
}

// [offset, offset + len) must not overflow, start before `min_offset` (the end of the previous
// section) or end after `limit` (the file size).
Status CheckSection(const char* name, uint64_t offset, uint64_t len, uint64_t min_offset,
                    uint64_t limit, uint64_t* end) {
  std::string what =
      std::string("header: ") + name + " section [" + Num(offset) + ", +" + Num(len) + ")";
  if (__builtin_add_overflow(offset, len, end)) return Status::Corruption(what + " overflows");
  if (offset < min_offset)
    return Status::Corruption(what + " overlaps the preceding section (ends at " + Num(min_offset) +
                              ")");
  if (*end > limit)
    return Status::Corruption(what + " runs past the end of the file (" + Num(limit) + " bytes)");
  return Status::Ok();
}

Status CheckSections(const Header& h) {
  uint64_t json_end, blobs_end;
  EI_RETURN_IF_ERROR(
      CheckSection("graph", h.json_offset, h.json_size, eim::kHeaderSize, h.file_size, &json_end));
  EI_RETURN_IF_ERROR(
      CheckSection("blobs", h.blobs_offset, h.blobs_size, json_end, h.file_size, &blobs_end));
  if (h.blobs_offset % eim::kBlobAlignment != 0)
    return Status::Corruption("header: blobs section offset " + Num(h.blobs_offset) +
                              " is not 64-byte aligned");
  if (h.json_size > eim::kMaxJsonBytes)
    return Status::Corruption("header: graph section of " + Num(h.json_size) +
                              " bytes exceeds the limit of " + Num(eim::kMaxJsonBytes));
  return Status::Ok();
}

Result<nlohmann::json> ParseJson(const char* p, size_t n) {
  try {
    return nlohmann::json::parse(p, p + n);
  } catch (const nlohmann::json::exception& e) {
    // The library reports bad input by throwing; turn it into a Status here, at the boundary.
    return Status::Corruption(std::string("graph section: ") + e.what());
  }
}

// Points constant tensors at their blobs after checking size, bounds, alignment and checksum.
Status BindBlobs(const Header& h, const char* base, bool verify_checksums,
                 const std::vector<std::optional<BlobRef>>& blobs, Graph* g) {
  for (size_t i = 0; i < blobs.size(); ++i) {
    if (!blobs[i]) continue;
    const BlobRef& b = *blobs[i];
    TensorDesc& t = g->tensors[i];
    const std::string context = "tensor '" + t.name + "'";
    Result<uint64_t> want = ConstantBytes(t.dtype, t.dims);
    if (!want.ok()) return Status::Corruption(context + ": " + want.status().message());
    if (b.size != *want)
      return Status::Corruption(context + ": blob is " + Num(b.size) + " bytes, " +
                                DTypeName(t.dtype) + " " + DimsToString(t.dims) + " needs " +
                                Num(*want));
    if (b.offset % eim::kBlobAlignment != 0)
      return Status::Corruption(context + ": blob offset " + Num(b.offset) +
                                " is not 64-byte aligned");
    uint64_t end;
    if (__builtin_add_overflow(b.offset, b.size, &end) || end > h.blobs_size)
      return Status::Corruption(context + ": blob [" + Num(b.offset) + ", +" + Num(b.size) +
                                ") is outside the blobs section (" + Num(h.blobs_size) + " bytes)");
    const char* data = base + h.blobs_offset + b.offset;
    if (verify_checksums && Crc32c(data, b.size) != b.crc32c)
      return Status::Corruption(context + ": checksum mismatch");
    t.data = data;
    t.bytes = b.size;
  }
  return Status::Ok();
}

// Maps the whole file read-only; the returned pointer's deleter unmaps it.
Result<std::shared_ptr<const void>> MapFile(const std::string& path, const LoadOptions& options,
                                            size_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("open '" + path + "'", errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::IOError("fstat '" + path + "'", err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument("'" + path + "' is not a regular file");
  }
  *size = static_cast<size_t>(st.st_size);
  Status fits = CheckHeaderFits(*size);  // also avoids mmap of an empty file
  if (!fits.ok() || static_cast<uint64_t>(st.st_size) > SIZE_MAX) {
    ::close(fd);
    return fits.ok() ? Status::ResourceExhausted("file too large to map") : fits;
  }
  void* addr = ::mmap(nullptr, *size, PROT_READ, MAP_SHARED, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file open
  if (addr == MAP_FAILED) return Status::IOError("mmap '" + path + "'", err);
  std::shared_ptr<const void> mapping(
      addr, [n = *size](const void* p) { ::munmap(const_cast<void*>(p), n); });
  ::madvise(addr, *size, MADV_WILLNEED);  // advice only: failure changes nothing
  if (options.mlock && ::mlock(addr, *size) != 0) {
    err = errno;
    return Status::ResourceExhausted(
        "mlock of " + Num(*size) + " bytes failed: " + std::strerror(err) +
        " (raise RLIMIT_MEMLOCK, e.g. LimitMEMLOCK= in the unit, or grant CAP_IPC_LOCK)");
  }
  return mapping;
}

}  // namespace

Result<Graph> ParseEim(const void* data, size_t size, bool verify_checksums) {
  EI_RETURN_IF_ERROR(CheckHeaderFits(size));
  const char* base = static_cast<const char*>(data);
  Header h;
  std::memcpy(&h, base, sizeof(h));
  EI_RETURN_IF_ERROR(CheckHeaderFields(h, size));
  EI_RETURN_IF_ERROR(CheckSections(h));
  const char* json_text = base + h.json_offset;
  if (Crc32c(json_text, h.json_size) != h.json_crc)
    return Status::Corruption("graph section checksum mismatch");
  EI_ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(json_text, h.json_size));
  Graph g;
  std::vector<std::optional<BlobRef>> blobs;
  EI_RETURN_IF_ERROR(GraphFromJson(j, &g, &blobs));
  EI_RETURN_IF_ERROR(BindBlobs(h, base, verify_checksums, blobs, &g));
  return g;
}

Result<LoadedEim> LoadEimNoOpValidation(const std::string& path, const LoadOptions& options) {
  LoadedEim loaded;
  EI_ASSIGN_OR_RETURN(std::shared_ptr<const void> mapping,
                      MapFile(path, options, &loaded.file_bytes));
  Result<Graph> g = ParseEim(mapping.get(), loaded.file_bytes, options.verify_checksums);
  if (!g.ok()) return g.status().WithContext("'" + path + "'");
  loaded.graph = std::move(g).value();
  loaded.graph.owned.push_back(std::move(mapping));
  return loaded;
}

}  // namespace internal

Result<std::shared_ptr<const Model>> Model::Load(const std::string& path,
                                                 const LoadOptions& options) {
  EI_ASSIGN_OR_RETURN(internal::LoadedEim loaded, internal::LoadEimNoOpValidation(path, options));
  EI_RETURN_IF_ERROR(
      ValidateGraph(&loaded.graph, /*check_stored_dims=*/true).WithContext("'" + path + "'"));
  std::shared_ptr<Model> model(new Model());
  model->graph_ = std::move(loaded.graph);
  model->file_bytes_ = loaded.file_bytes;
  model->path_ = path;
  return std::shared_ptr<const Model>(std::move(model));
}

Result<std::shared_ptr<const Model>> Model::FromGraph(Graph graph) {
  EI_RETURN_IF_ERROR(ValidateGraph(&graph, /*check_stored_dims=*/false));
  std::shared_ptr<Model> model(new Model());
  model->graph_ = std::move(graph);
  return std::shared_ptr<const Model>(std::move(model));
}

}  // namespace edgeinfer
