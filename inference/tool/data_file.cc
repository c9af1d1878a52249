#include "inference/tool/data_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace edgeinfer::tool {

Result<std::vector<uint8_t>> ReadBytes(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::IOError("open '" + path + "'", errno);
  std::vector<uint8_t> data;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + n);
  bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) return Status::IOError("read '" + path + "'", EIO);
  return data;
}

Result<std::vector<float>> ReadSamples(const std::string& path, int64_t sample_elements) {
  EI_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadBytes(path));
  const size_t sample_bytes = static_cast<size_t>(sample_elements) * sizeof(float);
  if (bytes.empty() || bytes.size() % sample_bytes != 0)
    return Status::InvalidArgument("'" + path + "' holds " + std::to_string(bytes.size()) +
                                   " bytes, not a whole number of samples of " +
                                   std::to_string(sample_elements) + " float32 values");
  std::vector<float> data(bytes.size() / sizeof(float));
  std::memcpy(data.data(), bytes.data(), bytes.size());
  return data;
}

Status WriteFloats(const std::string& path, const std::vector<float>& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status::IOError("open '" + path + "'", errno);
  bool ok = std::fwrite(data.data(), sizeof(float), data.size(), f) == data.size();
  ok &= std::fclose(f) == 0;
  return ok ? Status::Ok() : Status::IOError("write '" + path + "'", errno ? errno : EIO);
}

}  // namespace edgeinfer::tool
