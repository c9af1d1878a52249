// This process's memory, as /proc reports it, for the tool's figures.
#pragma once

#include <cstdint>

namespace edgeinfer::tool {

struct ProcMemory {
  int64_t peak_rss_bytes = 0;   // VmHWM
  int64_t rss_bytes = 0;        // VmRSS
  int64_t private_bytes = 0;    // anonymous memory (heap, arena): what is not file-backed
  int64_t file_rss_bytes = 0;   // RssFile: mapped files resident, e.g. the model's weights
};

// Fields it cannot read stay 0.
ProcMemory ReadProcMemory();

}  // namespace edgeinfer::tool
