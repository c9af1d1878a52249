#include "inference/eim_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "inference/crc32c.h"
#include "inference/eim_format.h"
#include "inference/graph_json.h"

namespace edgeinfer {

namespace {

// Checks every tensor as the reader will and assigns each constant its place in the blobs
// section. Returns the blobs section size.
Result<uint64_t> LayoutBlobs(const Graph& g, std::vector<BlobRef>* blobs) {
  blobs->assign(g.tensors.size(), BlobRef{});
  uint64_t end = 0;
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    const TensorDesc& t = g.tensors[i];
    std::string context = "tensor '" + t.name + "'";
    if (!t.is_constant()) {
      EI_RETURN_IF_ERROR(CheckDims(t.dims).WithContext(context));
      continue;
    }
    Result<uint64_t> want = ConstantBytes(t.dtype, t.dims);
    if (!want.ok()) return want.status().WithContext(context);
    if (*want != t.bytes)
      return Status::InvalidArgument(context + ": holds " + std::to_string(t.bytes) +
                                     " bytes, its dtype and dims need " + std::to_string(*want));
    BlobRef& b = (*blobs)[i];
    b.offset = eim::AlignUp(end, eim::kBlobAlignment);
    b.size = t.bytes;
    b.crc32c = Crc32c(t.data, t.bytes);
    end = b.offset + b.size;
  }
  return end;
}

// Closes the fd and removes the temporary file unless Release() was called.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!released_) ::unlink(path_.c_str());
  }
  Status Open() {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return fd_ >= 0 ? Status::Ok() : Status::IOError("create '" + path_ + "'", errno);
  }
  Status Write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Status::IOError("write '" + path_ + "'", errno);
      p += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }
  // Writes zeros from *pos up to `offset`.
  Status PadTo(uint64_t offset, uint64_t* pos) {
    static const char kZeros[eim::kBlobAlignment] = {};
    while (*pos < offset) {
      uint64_t n = std::min<uint64_t>(offset - *pos, sizeof(kZeros));
      EI_RETURN_IF_ERROR(Write(kZeros, n));
      *pos += n;
    }
    return Status::Ok();
  }
  // fsync + close, reporting errors (close can report a delayed write error on NFS).
  Status SyncAndClose() {
    int fd = fd_;
    fd_ = -1;
    if (::fsync(fd) != 0) {
      int err = errno;
      ::close(fd);
      return Status::IOError("fsync '" + path_ + "'", err);
    }
    return ::close(fd) == 0 ? Status::Ok() : Status::IOError("close '" + path_ + "'", errno);
  }
  void Release() { released_ = true; }

 private:
  std::string path_;
  int fd_ = -1;
  bool released_ = false;
};

// Makes the rename durable. Best effort: some file systems refuse fsync on directories.
void SyncParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

eim::Header MakeHeader(const std::string& json, uint64_t blobs_size) {
  eim::Header h{};
  std::memcpy(h.magic, eim::kMagic, sizeof(h.magic));
  h.version = eim::kFormatVersion;
  h.header_size = eim::kHeaderSize;
  h.json_offset = eim::kHeaderSize;
  h.json_size = json.size();
  h.blobs_offset = eim::AlignUp(h.json_offset + h.json_size, eim::kBlobAlignment);
  h.blobs_size = blobs_size;
  h.file_size = h.blobs_offset + h.blobs_size;
  h.json_crc = Crc32c(json.data(), json.size());
  h.header_crc = Crc32c(&h, offsetof(eim::Header, header_crc));
  return h;
}

}  // namespace

Status WriteEim(const Graph& g, const std::string& path) {
  std::vector<BlobRef> blobs;
  EI_ASSIGN_OR_RETURN(uint64_t blobs_size, LayoutBlobs(g, &blobs));
  std::string json;
  try {
    json = GraphToJson(g, blobs).dump();
  } catch (const nlohmann::json::exception& e) {  // the library's way to refuse bad UTF-8
    return Status::InvalidArgument(std::string("graph has a string that is not UTF-8: ") +
                                   e.what());
  }
  if (json.size() > eim::kMaxJsonBytes)
    return Status::InvalidArgument("graph section of " + std::to_string(json.size()) +
                                   " bytes exceeds the format's limit");
  const eim::Header h = MakeHeader(json, blobs_size);

  TempFile tmp(path + ".tmp");
  EI_RETURN_IF_ERROR(tmp.Open());
  EI_RETURN_IF_ERROR(tmp.Write(&h, sizeof(h)));
  EI_RETURN_IF_ERROR(tmp.Write(json.data(), json.size()));
  uint64_t pos = h.json_offset + h.json_size;
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    if (!g.tensors[i].is_constant()) continue;
    EI_RETURN_IF_ERROR(tmp.PadTo(h.blobs_offset + blobs[i].offset, &pos));
    EI_RETURN_IF_ERROR(tmp.Write(g.tensors[i].data, blobs[i].size));
    pos += blobs[i].size;
  }
  EI_RETURN_IF_ERROR(tmp.PadTo(h.file_size, &pos));  // a graph without constants
  EI_RETURN_IF_ERROR(tmp.SyncAndClose());
  if (::rename((path + ".tmp").c_str(), path.c_str()) != 0)
    return Status::IOError("rename to '" + path + "'", errno);
  tmp.Release();
  SyncParentDir(path);
  return Status::Ok();
}

}  // namespace edgeinfer
