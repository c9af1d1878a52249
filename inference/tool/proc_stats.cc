#include "inference/tool/proc_stats.h"

#include <cstdio>
#include <cstring>

namespace edgeinfer::tool {

namespace {
// Scans a "Key:   123 kB" file for the keys given; values are returned in bytes.
void ReadKbFields(const char* path, const char* const* keys, int64_t* const* out, int n) {
  FILE* f = std::fopen(path, "r");
  if (!f) return;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    for (int i = 0; i < n; ++i) {
      size_t len = std::strlen(keys[i]);
      long long kb = 0;
      if (std::strncmp(line, keys[i], len) == 0 && std::sscanf(line + len, " %lld", &kb) == 1)
        *out[i] = kb * 1024;
    }
  }
  std::fclose(f);
}
}  // namespace

ProcMemory ReadProcMemory() {
  ProcMemory m;
  const char* status_keys[] = {"VmHWM:", "VmRSS:", "RssFile:"};
  int64_t* status_out[] = {&m.peak_rss_bytes, &m.rss_bytes, &m.file_rss_bytes};
  ReadKbFields("/proc/self/status", status_keys, status_out, 3);
  const char* smaps_keys[] = {"Anonymous:"};
  int64_t* smaps_out[] = {&m.private_bytes};
  ReadKbFields("/proc/self/smaps_rollup", smaps_keys, smaps_out, 1);
  return m;
}

}  // namespace edgeinfer::tool
