// The index is never silently partial (docs/SECURITY.md): `hearth index --rebuild` builds
// into a new file beside the old index and renames it into place, so a kill -9 at any moment
// leaves the previous complete index, and the temporary file a killed build leaves is removed by
// the next build. A first build appears only when complete, and an interrupted incremental update
// (one transaction) leaves the previous index.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "security/hearth_cli.h"
#include "security/hostile_repo.h"

namespace hearth::security {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::CliResult;
using testing::HostileRepo;
using testing::RunHearth;

constexpr int kFiles = 700;  // search answers at most 1000 files

// A repository big enough that indexing takes a while: kFiles files, each defining one function
// that a search for "needle_function" finds, so a complete index answers with every file.
void FillRepo(const HostileRepo& repo, const std::string& tag) {
  for (int i = 0; i < kFiles; ++i) {
    std::string body;
    for (int k = 0; k < 50; ++k) {
      body += "def helper_" + tag + "_" + std::to_string(i) + "_" + std::to_string(k) +
              "(x):\n    return x * " + std::to_string(k) + "\n\n";
    }
    body += "def needle_function_" + std::to_string(i) + "():\n    return needle_value\n";
    body += std::string("# ") + (tag == "a" ? "zebrafish" : "quokka") + "\n";
    repo.Write("src/m" + std::to_string(i) + ".py", body);
  }
}

// How many files a search for `word` finds (-1: search failed).
int Found(const HostileRepo& repo, const fs::path& home, const std::string& word = "needle_value") {
  CliResult r = RunHearth(repo.root(), home, "search --json -n 10000 " + word);
  if (r.code != 0) return -1;
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded()) return -1;
  return static_cast<int>(j["results"].size());
}

// Runs `hearth index -q --threads 1 [--rebuild]` to completion; its wall time in milliseconds.
int TimedIndex(const HostileRepo& repo, const fs::path& home, bool rebuild) {
  const auto t0 = std::chrono::steady_clock::now();
  CliResult r = RunHearth(repo.root(), home,
                          std::string("index -q --threads 1") + (rebuild ? " --rebuild" : ""));
  EXPECT_EQ(r.code, 0) << r.out;
  return static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count());
}

// Starts `hearth index [--rebuild]` in the repository and SIGKILLs it after `ms` milliseconds.
void KillIndexAfter(const HostileRepo& repo, bool rebuild, int ms) {
  const std::string bin = testing::HearthBinary();
  const pid_t pid = fork();
  if (pid == 0) {
    if (::chdir(repo.root().c_str()) != 0) _exit(127);
    ::execl(bin.c_str(), "hearth", "index", "-q", "--threads", "1",
            rebuild ? "--rebuild" : static_cast<char*>(nullptr), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

std::vector<std::string> Leftovers(const HostileRepo& repo) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(repo.root() / ".hearth")) {
    const std::string name = e.path().filename().string();
    if (name.find(".new-") != std::string::npos) out.push_back(name);
  }
  return out;
}

TEST(IndexAtomicTest, KilledRebuildLeavesTheCompleteOldIndex) {
  HostileRepo repo;
  const fs::path home = repo.outside() / "home";
  FillRepo(repo, "a");
  const int full_ms = TimedIndex(repo, home, false);
  ASSERT_EQ(Found(repo, home), kFiles);
  bool left_temp = false;
  // Kills spread over the time a build takes here (a fast machine, a loaded one).
  for (int percent : {5, 30, 60, 90}) {
    KillIndexAfter(repo, true, full_ms * percent / 100);
    // Whatever moment the kill hit: the old index (or the new one, if it was done) whole.
    EXPECT_EQ(Found(repo, home), kFiles) << "killed at " << percent << "% of " << full_ms << " ms";
    left_temp = left_temp || !Leftovers(repo).empty();
  }
  EXPECT_TRUE(left_temp) << "no kill hit a build in progress; the test proves nothing";
  // The next build removes what the killed ones left.
  TimedIndex(repo, home, true);
  EXPECT_TRUE(Leftovers(repo).empty());
  EXPECT_EQ(Found(repo, home), kFiles);
}

TEST(IndexAtomicTest, KilledFirstBuildLeavesNoIndexToAnswerFrom) {
  HostileRepo repo;
  const fs::path home = repo.outside() / "home";
  FillRepo(repo, "a");
  const int full_ms = TimedIndex(repo, home, false);
  fs::remove_all(repo.root() / ".hearth");
  KillIndexAfter(repo, false, full_ms / 2);
  // Either no index (search says so) or a complete one; never some of the files.
  const int found = Found(repo, home);
  EXPECT_TRUE(found == -1 || found == kFiles) << found;
  TimedIndex(repo, home, false);
  EXPECT_EQ(Found(repo, home), kFiles);
  EXPECT_TRUE(Leftovers(repo).empty());
}

TEST(IndexAtomicTest, KilledIncrementalUpdateLeavesThePreviousIndex) {
  HostileRepo repo;
  const fs::path home = repo.outside() / "home";
  FillRepo(repo, "a");
  const int full_ms = TimedIndex(repo, home, false);
  ASSERT_EQ(Found(repo, home, "quokka"), 0);
  // Every file changes (to mention "quokka") and half of them go: an update killed midway must
  // leave the old index (no file mentions it) or the new one (every remaining one does).
  FillRepo(repo, "b");
  for (int i = 1; i < kFiles; i += 2) {
    fs::remove(repo.root() / ("src/m" + std::to_string(i) + ".py"));
  }
  // The same update, killed again and again at later moments (each run starts over from what
  // the one before left).
  for (int percent : {30, 50, 70, 90}) {
    KillIndexAfter(repo, false, full_ms * percent / 100);
    const int updated = Found(repo, home, "quokka");
    const int all = Found(repo, home);
    EXPECT_TRUE((updated == 0 && all == kFiles) || (updated == kFiles / 2 && all == kFiles / 2))
        << "killed at " << percent << "% of " << full_ms << " ms: " << updated << " files updated, "
        << all << " in the index";
  }
}

}  // namespace
}  // namespace hearth::security
