// The .eim model file layout (DESIGN.md, "Model file"): constants and the fixed header.
//
//   [0, 64)                     Header (below), little-endian.
//   [json_offset, +json_size)   UTF-8 JSON graph section (inference/graph_json.h); the writer
//                               puts it at 64.
//   [blobs_offset, +blobs_size) Tensor blobs. blobs_offset is a multiple of 64; each blob's
//                               offset in the JSON is RELATIVE to blobs_offset and is a multiple
//                               of 64, so every blob is 64-byte aligned in the file and in the
//                               (page-aligned) mapping. Gaps are zero padding.
//   file_size is the file's length; the writer makes it blobs_offset + blobs_size.
//
// Sections never overlap and stay inside the file: 64 <= json_offset, json end <= blobs_offset,
// blobs end <= file_size (checked with overflow-safe arithmetic). Blobs hold tensor bytes
// exactly as the kernels read them, so loading is mmap + validation, no copy. Blobs may share
// bytes (the reader only bounds-checks each one); the writer never does that.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace edgeinfer::eim {

inline constexpr char kMagic[8] = {'E', 'D', 'G', 'E', 'I', 'N', 'F', 'M'};
inline constexpr uint32_t kFormatVersion = 1;  // the only version this build reads and writes
inline constexpr uint64_t kHeaderSize = 64;
inline constexpr uint64_t kBlobAlignment = 64;
// Refuse larger graph sections: the parsed JSON costs several times its text in memory, and a
// real graph (even 100k nodes) is a few MB.
inline constexpr uint64_t kMaxJsonBytes = 64ull << 20;

struct Header {
  char magic[8];         // kMagic
  uint32_t version;      // kFormatVersion
  uint32_t header_size;  // kHeaderSize
  uint64_t json_offset;  // absolute
  uint64_t json_size;
  uint64_t blobs_offset;  // absolute, multiple of kBlobAlignment
  uint64_t blobs_size;
  uint64_t file_size;
  uint32_t json_crc;    // CRC32C of the JSON section
  uint32_t header_crc;  // CRC32C of bytes [0, offsetof(Header, header_crc))
};

// The header is read and written with memcpy, so its layout is the format.
static_assert(std::endian::native == std::endian::little,
              "the .eim format and its weights are little-endian");
static_assert(std::is_trivially_copyable_v<Header> && std::is_standard_layout_v<Header>);
static_assert(sizeof(Header) == kHeaderSize);
static_assert(offsetof(Header, version) == 8);
static_assert(offsetof(Header, header_size) == 12);
static_assert(offsetof(Header, json_offset) == 16);
static_assert(offsetof(Header, json_size) == 24);
static_assert(offsetof(Header, blobs_offset) == 32);
static_assert(offsetof(Header, blobs_size) == 40);
static_assert(offsetof(Header, file_size) == 48);
static_assert(offsetof(Header, json_crc) == 56);
static_assert(offsetof(Header, header_crc) == 60);

inline constexpr uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace edgeinfer::eim
