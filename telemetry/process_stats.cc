#include "telemetry/process_stats.h"

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>

namespace edgeinfer {
namespace {

double Seconds(const timeval& tv) { return tv.tv_sec + tv.tv_usec * 1e-6; }

int64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Sum of the "Private_Clean:" and "Private_Dirty:" lines (kB) of smaps_rollup, in bytes;
// -1 when the file is missing or holds neither line.
int64_t ReadSmapsPrivate(const std::string& path) {
  std::ifstream in(path);
  if (!in) return -1;
  std::string line;
  int64_t total_kb = 0;
  int found = 0;
  while (std::getline(in, line)) {
    bool clean = line.rfind("Private_Clean:", 0) == 0;
    bool dirty = line.rfind("Private_Dirty:", 0) == 0;
    if (!clean && !dirty) continue;
    long long kb = 0;
    if (std::sscanf(line.c_str() + line.find(':') + 1, "%lld", &kb) == 1 && kb >= 0) {
      total_kb += kb;
      ++found;
    }
  }
  return found > 0 ? total_kb * 1024 : -1;
}

}  // namespace

nlohmann::json ProcessStats::ToJson() const {
  return {{"cpu_user_s", cpu_user_s},
          {"cpu_system_s", cpu_system_s},
          {"rss_bytes", rss_bytes},
          {"private_bytes", private_bytes}};
}

Result<ProcessStats> ReadProcessStats(const std::string& proc_self) {
  ProcessStats s;
  s.steady_ns = MonotonicNs();
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    s.cpu_user_s = Seconds(ru.ru_utime);
    s.cpu_system_s = Seconds(ru.ru_stime);
  }
  const std::string statm = proc_self + "/statm";
  std::ifstream in(statm);
  if (!in) return Status::IOError("open '" + statm + "'", errno);
  long long size = 0, resident = 0, shared = 0;
  if (!(in >> size >> resident >> shared) || resident < 0 || shared < 0) {
    return Status::Corruption("'" + statm + "': expected three page counts");
  }
  const int64_t page = sysconf(_SC_PAGESIZE);
  s.rss_bytes = resident * page;
  int64_t priv = ReadSmapsPrivate(proc_self + "/smaps_rollup");
  s.private_from_smaps = priv >= 0;
  s.private_bytes = priv >= 0 ? priv : (resident > shared ? resident - shared : 0) * page;
  return s;
}

double CpuMeter::Update(const ProcessStats& now) {
  double percent = 0;
  if (has_previous_ && now.steady_ns > previous_ns_) {
    double wall_s = (now.steady_ns - previous_ns_) * 1e-9;
    percent = 100.0 * (now.cpu_total_s() - previous_cpu_s_) / wall_s;
    if (percent < 0) percent = 0;
  }
  has_previous_ = true;
  previous_cpu_s_ = now.cpu_total_s();
  previous_ns_ = now.steady_ns;
  return percent;
}

}  // namespace edgeinfer
