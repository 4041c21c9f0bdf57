// The core counter against fake sysfs trees shaped like real machines' (the numbers are what
// /sys/devices/system/cpu holds on such machines, written by hand).
#include "base/cpu_cores.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace hearth {
namespace {

namespace fs = std::filesystem;

class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        fs::temp_directory_path() /
        ("hearth_cpu_cores_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& rel, const std::string& text) {
    const fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  void Cpu(int cpu, const std::string& package, const std::string& core) {
    const std::string dir = "cpu" + std::to_string(cpu) + "/topology/";
    Write(dir + "physical_package_id", package);
    Write(dir + "core_id", core);
  }
  std::string Dir() const { return root_.string(); }

  fs::path root_;
};

TEST_F(FakeSysfs, SmtSiblingsCountOnce) {
  // A 4-core, 8-thread laptop: Linux numbers the second hardware thread of core k as CPU k+4.
  for (int cpu = 0; cpu < 8; ++cpu) Cpu(cpu, "0\n", std::to_string(cpu % 4) + "\n");
  EXPECT_EQ(PhysicalCores(Dir(), {0, 1, 2, 3, 4, 5, 6, 7}), 4);
  // An affinity mask of two siblings is one core; of CPUs on different cores, two.
  EXPECT_EQ(PhysicalCores(Dir(), {1, 5}), 1);
  EXPECT_EQ(PhysicalCores(Dir(), {1, 2}), 2);
  EXPECT_EQ(PhysicalCores(Dir(), {0, 1, 4}), 2);
}

TEST_F(FakeSysfs, SameCoreIdOnTwoPackagesIsTwoCores) {
  // Two sockets of 2 cores without SMT: core ids restart at 0 on each package.
  Cpu(0, "0", "0");
  Cpu(1, "0", "1");
  Cpu(2, "1", "0");
  Cpu(3, "1", "1");
  EXPECT_EQ(PhysicalCores(Dir(), {0, 1, 2, 3}), 4);
  EXPECT_EQ(PhysicalCores(Dir(), {0, 2}), 2);
}

TEST_F(FakeSysfs, NoSmtMachineCountsEveryCpu) {
  // This dev VM: 2 CPUs, one thread per core.
  Cpu(0, "0\n", "0\n");
  Cpu(1, "0\n", "1\n");
  EXPECT_EQ(PhysicalCores(Dir(), {0, 1}), 2);
  EXPECT_EQ(PhysicalCores(Dir(), {1}), 1);
}

TEST_F(FakeSysfs, UnreadableTopologyFallsBackToCpuCount) {
  Cpu(0, "0", "0");
  Cpu(1, "0", "0");
  // cpu2 has no topology directory (a sandbox hiding sysfs): every CPU counts.
  EXPECT_EQ(PhysicalCores(Dir(), {0, 1, 2}), 3);
  EXPECT_EQ(PhysicalCores(Dir(), {0, 1}), 1);
  // Malformed files: not a number, negative, empty, absurdly long.
  for (const std::string bad : {"zero", "-1", "", "12345678901234", "1 2"}) {
    Cpu(3, "0", bad);
    EXPECT_EQ(PhysicalCores(Dir(), {0, 1, 3}), 3) << "core_id '" << bad << "'";
  }
  // No sysfs at all, and no CPUs: still at least one.
  EXPECT_EQ(PhysicalCores(Dir() + "/missing", {0, 1, 2, 3}), 4);
  EXPECT_EQ(PhysicalCores(Dir(), {}), 1);
}

TEST_F(FakeSysfs, CgroupQuota) {
  Write("cpu.max", "200000 100000\n");
  EXPECT_EQ(CgroupCpuLimit(Dir() + "/cpu.max"), 2);
  Write("cpu.max", "150000 100000\n");  // 1.5 CPUs: two threads still help
  EXPECT_EQ(CgroupCpuLimit(Dir() + "/cpu.max"), 2);
  Write("cpu.max", "50000 100000\n");
  EXPECT_EQ(CgroupCpuLimit(Dir() + "/cpu.max"), 1);
  Write("cpu.max", "max 100000\n");
  EXPECT_EQ(CgroupCpuLimit(Dir() + "/cpu.max"), 0);
  for (const std::string bad : {"", "abc 100000", "100000", "100000 0", "-5 100000", "1x 10"}) {
    Write("cpu.max", bad);
    EXPECT_EQ(CgroupCpuLimit(Dir() + "/cpu.max"), 0) << "'" << bad << "'";
  }
  EXPECT_EQ(CgroupCpuLimit(Dir() + "/missing"), 0);
}

TEST_F(FakeSysfs, CgroupV1Quota) {
  const std::string quota = Dir() + "/cpu.cfs_quota_us", period = Dir() + "/cpu.cfs_period_us";
  Write("cpu.cfs_period_us", "100000\n");
  Write("cpu.cfs_quota_us", "200000\n");
  EXPECT_EQ(CgroupV1CpuLimit(quota, period), 2);
  Write("cpu.cfs_quota_us", "250000\n");  // 2.5 CPUs
  EXPECT_EQ(CgroupV1CpuLimit(quota, period), 3);
  Write("cpu.cfs_quota_us", "-1\n");  // no limit
  EXPECT_EQ(CgroupV1CpuLimit(quota, period), 0);
  for (const std::string bad : {"", "x", "0", "1e5"}) {
    Write("cpu.cfs_quota_us", bad);
    EXPECT_EQ(CgroupV1CpuLimit(quota, period), 0) << "'" << bad << "'";
  }
  Write("cpu.cfs_quota_us", "200000");
  Write("cpu.cfs_period_us", "0");
  EXPECT_EQ(CgroupV1CpuLimit(quota, period), 0);
  EXPECT_EQ(CgroupV1CpuLimit(Dir() + "/missing", period), 0);
}

TEST(CpuCores, ThisMachine) {
  const std::vector<int> allowed = AllowedCpus();
  ASSERT_FALSE(allowed.empty());
  EXPECT_LE(allowed.size(), std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_GE(AvailableCpus(), 1);
  EXPECT_LE(AvailableCpus(), static_cast<int>(allowed.size()));
  EXPECT_GE(AvailablePhysicalCores(), 1);
  EXPECT_LE(AvailablePhysicalCores(), AvailableCpus());
}

}  // namespace
}  // namespace hearth
