// How many CPUs and physical cores this process may use: the default thread count (`-t`) and the
// thread pool's choice between spinning and yielding while it waits.
//
// Why physical cores: the matrix kernels keep a core's vector units busy, so a second hardware
// thread on the same core (SMT) adds contention, not throughput, as llama.cpp also finds. Why the
// affinity mask and the cgroup quota: in a container limited to 2 CPUs of a 64-CPU host,
// std::thread::hardware_concurrency() still says 64, and 64 threads on 2 CPUs crawl.
#pragma once

#include <string>
#include <vector>

namespace hearth {

// The CPUs this process may run on (sched_getaffinity), ascending; 0 .. hardware_concurrency-1
// when the mask cannot be read.
std::vector<int> AllowedCpus();

// Physical cores among `cpus`: the distinct (physical_package_id, core_id) pairs read from
// <cpu_dir>/cpu<N>/topology/ (cpu_dir is /sys/devices/system/cpu on Linux; tests pass a fake
// tree). When any of them cannot be read or is not a number (no sysfs, a sandbox), every CPU
// counts as a core. At least 1.
int PhysicalCores(const std::string& cpu_dir, const std::vector<int>& cpus);

// The CPUs' worth of time a cgroup v2 "cpu.max" file allows ("200000 100000" -> 2, rounded up;
// "max 100000" -> 0, meaning no limit). 0 when the file is missing or malformed.
int CgroupCpuLimit(const std::string& cpu_max_path);
// The same from cgroup v1's cpu.cfs_quota_us ("-1": no limit) and cpu.cfs_period_us files.
int CgroupV1CpuLimit(const std::string& quota_path, const std::string& period_path);

// Logical CPUs this process can use at once: the affinity mask, capped by the cgroup quota (v2
// /sys/fs/cgroup/cpu.max, else v1 /sys/fs/cgroup/cpu/cpu.cfs_*_us).
int AvailableCpus();
// Physical cores this process can use at once: PhysicalCores over the affinity mask, capped by
// the cgroup quota. Read once and cached.
int AvailablePhysicalCores();

}  // namespace hearth
