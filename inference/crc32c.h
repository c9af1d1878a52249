// CRC32C (Castagnoli), the checksum of .eim headers, graph sections and tensor blobs.
//
// Crc32c() uses the SSE4.2 crc32 instruction when the CPU has it (checked once at run time) and
// a portable slicing-by-8 table otherwise; both give identical results. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgeinfer {

// CRC32C of `n` bytes at `data`. Pass a previous result as `crc` to extend it:
// Crc32c(b, nb, Crc32c(a, na)) == CRC32C of a followed by b.
uint32_t Crc32c(const void* data, size_t n, uint32_t crc = 0);

// The two implementations, exposed so tests can compare them.
uint32_t Crc32cPortable(const void* data, size_t n, uint32_t crc = 0);
bool Crc32cHardwareAvailable();
// Requires Crc32cHardwareAvailable().
uint32_t Crc32cHardware(const void* data, size_t n, uint32_t crc = 0);

}  // namespace edgeinfer
