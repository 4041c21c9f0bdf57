// The confined file-system layer (src/agent/confined_fs.h) and the Workspace built on it, against
// a hostile repository: planted symlinks named like temp files, symlinked directories, a directory
// swapped for a symlink while writes run, nested .git directories, symlinks at the target, FIFOs,
// and a planted journal. Every test runs twice: with openat2 and with the O_NOFOLLOW walk that
// older kernels get (ForceWalkFallback).
#include "agent/confined_fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "agent/workspace.h"
#include "base/error.h"
#include "security/hostile_repo.h"

namespace hearth::agent {
namespace {

namespace fs = std::filesystem;
using security::testing::HostileRepo;

// Every file below `dir` (regular files and symlinks), as root-relative strings.
std::vector<std::string> Everything(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::end(it); it.increment(ec)) {
    out.push_back(it->path().lexically_relative(dir).string());
  }
  return out;
}

class ConfinedFsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { confined::ForceWalkFallback(GetParam()); }
  void TearDown() override { confined::ForceWalkFallback(false); }
  HostileRepo repo_;
};

INSTANTIATE_TEST_SUITE_P(BothWays, ConfinedFsTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return std::string(p.param ? "walk" : "openat2");
                         });

TEST_P(ConfinedFsTest, UsesTheWayAsked) {
  // The kernels hearth supports all have openat2 (Linux >= 5.6); the fallback is forced.
  EXPECT_EQ(confined::UsesOpenat2(), !GetParam());
}

// The repository ships symlinks named like the temp file the old code used
// (".NAME.hearth-tmp-PID") for a range of pids around ours, pointing at a git hook and at a file
// outside. A write must go to the file, through none of them.
TEST_P(ConfinedFsTest, PlantedTempNameSymlinksAreNotFollowed) {
  repo_.Write("src/app.py", "return 1\n");
  HostileRepo::WriteFile(repo_.outside() / "victim.txt", "precious\n");
  const int pid = static_cast<int>(::getpid());
  for (int p = std::max(1, pid - 200); p < pid + 200; ++p) {
    const std::string name = "src/.app.py.hearth-tmp-" + std::to_string(p);
    if (p % 2) {
      repo_.Symlink(name, repo_.outside() / "victim.txt");
    } else {
      repo_.Symlink(name, repo_.root() / ".git/hooks/pre-commit");
    }
  }
  Workspace ws = Workspace::AtRoot(repo_.root());
  ws.WriteFile("src/app.py", "return 2\n", nullptr);
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "src/app.py"), "return 2\n");
  EXPECT_FALSE(fs::is_symlink(repo_.root() / "src/app.py"));
  EXPECT_EQ(HostileRepo::ReadFile(repo_.outside() / "victim.txt"), "precious\n");
  EXPECT_FALSE(fs::exists(repo_.root() / ".git/hooks/pre-commit"));
  // No temp file is left behind either.
  for (const auto& e : fs::directory_iterator(repo_.root() / "src")) {
    if (!e.is_symlink()) {
      EXPECT_EQ(e.path().filename(), "app.py");
    }
  }
}

TEST_P(ConfinedFsTest, SymlinkedDirectoryLeadsNowhere) {
  HostileRepo::WriteFile(repo_.outside() / "secret.txt", "secret\n");
  repo_.Symlink("docs", repo_.outside());
  repo_.Symlink("inner", "src");  // even a link that stays inside is not followed
  repo_.Write("src/a.txt", "a\n");
  Workspace ws = Workspace::AtRoot(repo_.root());
  EXPECT_THROW(ws.WriteFile("docs/new.txt", "x", nullptr), Error);
  EXPECT_THROW(ws.WriteFile("docs/secret.txt", "x", nullptr), Error);
  EXPECT_THROW(ws.ReadFile("docs/secret.txt"), Error);
  EXPECT_THROW(ws.ListDir("docs"), Error);
  EXPECT_THROW(ws.ReadFile("inner/a.txt"), Error);
  EXPECT_THROW(ws.WriteFile("inner/b.txt", "x", nullptr), Error);
  EXPECT_EQ(Everything(repo_.outside()), std::vector<std::string>{"secret.txt"});
  EXPECT_EQ(HostileRepo::ReadFile(repo_.outside() / "secret.txt"), "secret\n");
  EXPECT_FALSE(fs::exists(repo_.root() / "src/b.txt"));
  // The error says why.
  try {
    ws.WriteFile("docs/new.txt", "x", nullptr);
  } catch (const Error& e) {
    EXPECT_NE(e.Describe().find("symbolic link"), std::string::npos) << e.Describe();
  }
}

// A process swaps a directory for a symlink to the outside in a loop (renameat2 RENAME_EXCHANGE:
// at every instant `d` is one or the other) while edits run: nothing may ever land outside.
TEST_P(ConfinedFsTest, DirectorySwappedForSymlinkDuringWrites) {
  repo_.Write("d/f.txt", "inside\n");
  repo_.Symlink("evil", repo_.outside());
  Workspace ws = Workspace::AtRoot(repo_.root());
  std::atomic<bool> stop{false};
  std::atomic<long> swaps{0};
  std::thread swapper([&] {
    const std::string d = (repo_.root() / "d").string(), evil = (repo_.root() / "evil").string();
    while (!stop.load()) {
      if (::renameat2(AT_FDCWD, d.c_str(), AT_FDCWD, evil.c_str(), RENAME_EXCHANGE) == 0) ++swaps;
    }
  });
  int written = 0, refused = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
    try {
      ws.WriteFile("d/f.txt", "edit " + std::to_string(i) + "\n", nullptr);
      ws.WriteFile("d/new" + std::to_string(i % 5) + ".txt", "new\n", nullptr);
      ++written;
    } catch (const Error&) {
      ++refused;
    }
  }
  stop = true;
  swapper.join();
  EXPECT_GT(swaps.load(), 100);
  EXPECT_GT(written + refused, 50);
  EXPECT_TRUE(Everything(repo_.outside()).empty()) << Everything(repo_.outside()).front();
}

TEST_P(ConfinedFsTest, NoGitComponentAtAnyDepth) {
  repo_.Write("vendor/lib/.git/hooks/.keep", "");
  Workspace ws = Workspace::AtRoot(repo_.root());
  for (const char* bad :
       {".git/hooks/pre-commit", "vendor/lib/.git/hooks/post-checkout", "vendor/lib/.git/config",
        "a/.GIT/config", "./.git/x", ".hearth/config.toml"}) {
    EXPECT_THROW(ws.WriteFile(bad, "#!/bin/sh\necho pwned\n", nullptr), Error) << bad;
  }
  EXPECT_FALSE(fs::exists(repo_.root() / "vendor/lib/.git/hooks/post-checkout"));
  EXPECT_FALSE(fs::exists(repo_.root() / "vendor/lib/.git/config"));
  EXPECT_FALSE(fs::exists(repo_.root() / ".git/hooks/pre-commit"));
  // A name that merely contains ".git" is an ordinary file.
  EXPECT_NO_THROW(ws.WriteFile("docs/.gitignore", "*.o\n", nullptr));
  EXPECT_NO_THROW(ws.WriteFile("my.git/notes", "n\n", nullptr));
}

TEST_P(ConfinedFsTest, SymlinkTargetIsRefusedNotReplaced) {
  repo_.Write("real.py", "real\n");
  repo_.Symlink("alias.py", "real.py");
  repo_.Symlink("hook", repo_.root() / ".git/hooks/pre-commit");
  Workspace ws = Workspace::AtRoot(repo_.root());
  try {
    ws.WriteFile("alias.py", "changed\n", nullptr);
    ADD_FAILURE() << "the write through a symlink was not refused";
  } catch (const Error& e) {
    EXPECT_NE(e.Describe().find("is a symbolic link; hearth does not replace a link with a file"),
              std::string::npos)
        << e.Describe();
  }
  EXPECT_THROW(ws.WriteFile("hook", "#!/bin/sh\n", nullptr), Error);
  EXPECT_TRUE(fs::is_symlink(repo_.root() / "alias.py"));
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "real.py"), "real\n");
  EXPECT_FALSE(fs::exists(repo_.root() / ".git/hooks/pre-commit"));
}

TEST_P(ConfinedFsTest, ReadRefusesFifoWithoutHanging) {
  ASSERT_EQ(::mkfifo((repo_.root() / "pipe").c_str(), 0644), 0);
  Workspace ws = Workspace::AtRoot(repo_.root());
  const auto start = std::chrono::steady_clock::now();
  try {
    ws.ReadFile("pipe");
    ADD_FAILURE() << "a FIFO was read";
  } catch (const Error& e) {
    EXPECT_NE(e.Describe().find("not a regular file"), std::string::npos) << e.Describe();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_THROW(ws.WriteFile("pipe", "x", nullptr), Error);
}

TEST_P(ConfinedFsTest, ReadIsCappedAndSaysSo) {
  repo_.Write("big.txt", std::string(3000, 'x'));
  Workspace ws = Workspace::AtRoot(repo_.root());
  bool truncated = false;
  EXPECT_EQ(ws.ReadFile("big.txt", 1000, &truncated).size(), 1000u);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(ws.ReadFile("big.txt", 3000, &truncated).size(), 3000u);
  EXPECT_FALSE(truncated);
  // Without a `truncated` to report to, a cut copy is an error (an edit must never work on one).
  EXPECT_THROW(ws.ReadFile("big.txt", 1000), Error);
}

// Undo goes through the same layer: a symlink planted in place of a restored file's directory
// (after the assistant's write) does not lead the restore outside.
TEST_P(ConfinedFsTest, UndoDoesNotFollowPlantedSymlinks) {
  repo_.Write("d/a.txt", "before\n");
  Workspace ws = Workspace::AtRoot(repo_.root());
  Journal journal(ws);
  journal.Begin("edit");
  ws.WriteFile("d/a.txt", "after\n", &journal);
  journal.Commit();
  fs::rename(repo_.root() / "d", repo_.root() / "d-moved");
  repo_.Symlink("d", repo_.outside());
  HostileRepo::WriteFile(repo_.outside() / "a.txt", "after\n");  // the hash the journal expects
  EXPECT_THROW(UndoLast(ws), Error);
  EXPECT_THROW(UndoLast(ws, {.force = true}), Error);
  EXPECT_EQ(HostileRepo::ReadFile(repo_.outside() / "a.txt"), "after\n");
  EXPECT_EQ(Everything(repo_.outside()), std::vector<std::string>{"a.txt"});
}

TEST(Utf8Test, InvalidBytesAreEscapedValidTextKept) {
  using confined::EscapeInvalidUtf8;
  EXPECT_EQ(EscapeInvalidUtf8("plain é 日本 😀"), "plain é 日本 😀");
  EXPECT_EQ(EscapeInvalidUtf8("caf\xe9!"), "caf\\xE9!");
  EXPECT_EQ(EscapeInvalidUtf8("\xff\xfe"), "\\xFF\\xFE");
  EXPECT_EQ(EscapeInvalidUtf8("\xc0\xaf"), "\\xC0\\xAF");                    // overlong '/'
  EXPECT_EQ(EscapeInvalidUtf8("\xed\xa0\x80"), "\\xED\\xA0\\x80");           // a UTF-16 surrogate
  EXPECT_EQ(EscapeInvalidUtf8("\xe6\x97"), "\\xE6\\x97");                    // cut in the middle
  EXPECT_EQ(EscapeInvalidUtf8("\xf4\x90\x80\x80"), "\\xF4\\x90\\x80\\x80");  // past U+10FFFF
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(confined::Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(confined::Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace hearth::agent
