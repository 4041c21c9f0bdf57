#include "base/cpu_cores.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

namespace hearth {
namespace {

// The first line of `path` as a non-negative integer, or -1.
long ReadNumber(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return -1;
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ' || line.back() == '\r')) {
    line.pop_back();
  }
  if (line.empty() || line.size() > 9) return -1;
  long value = 0;
  for (const char c : line) {
    if (c < '0' || c > '9') return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

int CapByCgroup(int n) {
  int limit = CgroupCpuLimit("/sys/fs/cgroup/cpu.max");
  if (limit == 0) {
    limit = CgroupV1CpuLimit("/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                             "/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  }
  return std::max(1, limit > 0 ? std::min(n, limit) : n);
}

}  // namespace

std::vector<int> AllowedCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i) {
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
    }
  }
  if (cpus.empty()) {
    const int n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 0; i < n; ++i) cpus.push_back(i);
  }
  return cpus;
}

int PhysicalCores(const std::string& cpu_dir, const std::vector<int>& cpus) {
  std::set<std::pair<long, long>> cores;
  for (const int cpu : cpus) {
    const std::string topo = cpu_dir + "/cpu" + std::to_string(cpu) + "/topology/";
    const long package = ReadNumber(topo + "physical_package_id");
    const long core = ReadNumber(topo + "core_id");
    if (package < 0 || core < 0) return std::max(1, static_cast<int>(cpus.size()));
    cores.emplace(package, core);
  }
  return std::max(1, static_cast<int>(cores.size()));
}

int CgroupCpuLimit(const std::string& cpu_max_path) {
  std::ifstream in(cpu_max_path);
  std::string quota, period_text;
  if (!in || !(in >> quota >> period_text) || quota == "max") return 0;
  char* end = nullptr;
  errno = 0;
  const long long q = std::strtoll(quota.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || q <= 0) return 0;
  const long long p = std::strtoll(period_text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || p <= 0) return 0;
  const long long cpus = (q + p - 1) / p;
  return static_cast<int>(std::min<long long>(cpus, 1 << 20));
}

int CgroupV1CpuLimit(const std::string& quota_path, const std::string& period_path) {
  // "-1" (no quota) is not a number to ReadNumber, and neither is anything malformed: 0.
  const long quota = ReadNumber(quota_path);
  const long period = ReadNumber(period_path);
  if (quota <= 0 || period <= 0) return 0;
  return static_cast<int>((quota + period - 1) / period);
}

int AvailableCpus() { return CapByCgroup(static_cast<int>(AllowedCpus().size())); }

int AvailablePhysicalCores() {
  static const int cores = CapByCgroup(PhysicalCores("/sys/devices/system/cpu", AllowedCpus()));
  return cores;
}

}  // namespace hearth
