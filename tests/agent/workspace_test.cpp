// Workspace confinement, the edit journal and undo (including interrupted change sets), and
// snapshots.
#include "agent/workspace.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "agent_test_util.h"
#include "base/error.h"

namespace hearth::agent {
namespace {

namespace fs = std::filesystem;
using testing::Read;
using testing::TempRepo;
using testing::Write;

TEST(WorkspaceTest, FindsRootUpwardsAndResolvesInside) {
  TempRepo repo;
  Write(repo.path() / "src/deep/a.txt", "a");
  Workspace ws = Workspace::Open(repo.path() / "src/deep");
  EXPECT_EQ(ws.root(), repo.path());
  EXPECT_EQ(ws.Resolve("src/deep/a.txt"), repo.path() / "src/deep/a.txt");
  EXPECT_EQ(ws.Resolve("./src//deep/a.txt"), repo.path() / "src/deep/a.txt");
  EXPECT_EQ(ws.Resolve((repo.path() / "src/x.txt").string()), repo.path() / "src/x.txt");
  EXPECT_EQ(ws.Resolve("new/dir/file.c"), repo.path() / "new/dir/file.c");  // need not exist
  EXPECT_EQ(ws.Relative(repo.path() / "src/deep/a.txt"), "src/deep/a.txt");
}

TEST(WorkspaceTest, RejectsEscapes) {
  TempRepo repo;
  Write(repo.path() / "src/a.txt", "a");
  Workspace ws = Workspace::AtRoot(repo.path());
  for (const char* bad : {"../x", "src/../../x", "..", "/etc/passwd", "src/../..", ""}) {
    EXPECT_THROW(ws.Resolve(bad), Error) << bad;
  }
  // Even a `..` that stays inside is refused: the model has no reason to write one.
  EXPECT_THROW(ws.Resolve("src/../src/a.txt"), Error);
  // A sibling directory whose name starts with the root's name is outside.
  EXPECT_THROW(ws.Resolve(repo.path().string() + "-other/x"), Error);
  EXPECT_THROW(ws.Resolve(std::string("a\0b", 3)), Error);
}

TEST(WorkspaceTest, RejectsSymlinksLeadingOut) {
  TempRepo repo, outside;
  Write(outside.path() / "secret.txt", "secret");
  Write(repo.path() / "src/in.txt", "in");
  fs::create_symlink(outside.path(), repo.path() / "out_dir");
  fs::create_symlink(outside.path() / "secret.txt", repo.path() / "out_file");
  fs::create_symlink(repo.path() / "src/in.txt", repo.path() / "in_link");
  Workspace ws = Workspace::AtRoot(repo.path());
  EXPECT_THROW(ws.Resolve("out_dir/secret.txt"), Error);
  EXPECT_THROW(ws.Resolve("out_dir/new.txt", true), Error);
  EXPECT_THROW(ws.Resolve("out_file"), Error);
  EXPECT_THROW(ws.ReadFile("out_file"), Error);
  EXPECT_THROW(ws.WriteFile("out_file", "x", nullptr), Error);
  EXPECT_EQ(Read(outside.path() / "secret.txt"), "secret");
  // A link that stays inside resolves to its target.
  EXPECT_EQ(ws.Resolve("in_link"), repo.path() / "src/in.txt");
}

TEST(WorkspaceTest, NeverWritesGitOrHearth) {
  TempRepo repo;
  Workspace ws = Workspace::AtRoot(repo.path());
  EXPECT_THROW(ws.WriteFile(".git/config", "x", nullptr), Error);
  EXPECT_THROW(ws.WriteFile(".hearth/journal/000001/0001.json", "x", nullptr), Error);
  EXPECT_NO_THROW(ws.Resolve(".git/config"));  // reading is fine
}

TEST(JournalTest, UndoRestoresChangedAndRemovesCreatedFiles) {
  TempRepo repo;
  Write(repo.path() / "a.txt", "old a\n");
  Write(repo.path() / "b.txt", "old b\n");
  fs::permissions(repo.path() / "b.txt", fs::perms(0755));
  Workspace ws = Workspace::AtRoot(repo.path());
  Journal journal(ws);
  journal.Begin("first");
  ws.WriteFile("a.txt", "new a\n", &journal);
  ws.WriteFile("a.txt", "newer a\n", &journal);  // second write in the same set
  ws.WriteFile("b.txt", "new b\n", &journal);
  ws.WriteFile("dir/c.txt", "created\n", &journal);
  journal.Commit();
  EXPECT_EQ(journal.files().size(), 3u);
  EXPECT_EQ(Read(repo.path() / "a.txt"), "newer a\n");
  // Mode kept by the atomic write.
  EXPECT_EQ(fs::status(repo.path() / "b.txt").permissions() & fs::perms(0777), fs::perms(0755));

  UndoResult u = UndoLast(ws);
  ASSERT_TRUE(u.undone);
  EXPECT_TRUE(u.was_complete);
  EXPECT_EQ(u.title, "first");
  EXPECT_EQ(Read(repo.path() / "a.txt"), "old a\n");
  EXPECT_EQ(Read(repo.path() / "b.txt"), "old b\n");
  EXPECT_FALSE(fs::exists(repo.path() / "dir/c.txt"));
  EXPECT_EQ(u.removed, std::vector<std::string>{"dir/c.txt"});
  EXPECT_EQ(u.restored.size(), 2u);
  // Nothing left to undo.
  EXPECT_FALSE(UndoLast(ws).undone);
}

TEST(JournalTest, UndoesNewestSetFirst) {
  TempRepo repo;
  Write(repo.path() / "a.txt", "v1");
  Workspace ws = Workspace::AtRoot(repo.path());
  Journal journal(ws);
  journal.Begin("one");
  ws.WriteFile("a.txt", "v2", &journal);
  journal.Commit();
  journal.Begin("two");
  ws.WriteFile("a.txt", "v3", &journal);
  journal.Commit();
  journal.Begin("empty");  // a set with no writes creates nothing
  journal.Commit();
  EXPECT_EQ(UndoLast(ws).title, "two");
  EXPECT_EQ(Read(repo.path() / "a.txt"), "v2");
  EXPECT_EQ(UndoLast(ws).title, "one");
  EXPECT_EQ(Read(repo.path() / "a.txt"), "v1");
}

// A crash after the journal entry is durable but before the file is written: undo restores the
// (unchanged) content and deletes nothing that existed.
TEST(JournalTest, CrashBetweenJournalAndWrite) {
  TempRepo repo;
  Write(repo.path() / "a.txt", "original");
  Workspace ws = Workspace::AtRoot(repo.path());
  {
    Journal journal(ws);
    journal.Begin("crashed");
    journal.Record(repo.path() / "a.txt");
    journal.Record(repo.path() / "b.txt");  // about to be created
    // ... crash: no write, no Commit.
  }
  UndoResult u = UndoLast(ws);
  ASSERT_TRUE(u.undone);
  EXPECT_FALSE(u.was_complete);
  EXPECT_EQ(Read(repo.path() / "a.txt"), "original");
  EXPECT_FALSE(fs::exists(repo.path() / "b.txt"));
}

// A crash after the file was written but before the change set was marked complete.
TEST(JournalTest, CrashBetweenWriteAndCompletion) {
  TempRepo repo;
  Write(repo.path() / "a.txt", "original");
  Workspace ws = Workspace::AtRoot(repo.path());
  {
    Journal journal(ws);
    journal.Begin("crashed");
    ws.WriteFile("a.txt", "half-done", &journal);
    ws.WriteFile("new.txt", "new", &journal);
    // ... crash before Commit.
  }
  ASSERT_FALSE(fs::exists(repo.path() / ".hearth/journal/000001/complete"));
  UndoResult u = UndoLast(ws);
  ASSERT_TRUE(u.undone);
  EXPECT_FALSE(u.was_complete);
  EXPECT_EQ(Read(repo.path() / "a.txt"), "original");
  EXPECT_FALSE(fs::exists(repo.path() / "new.txt"));
}

// A crash while the entry itself was being written leaves at most a temp file or a .before
// without its .json: that entry never touched the file and is ignored.
TEST(JournalTest, TornEntryIsIgnored) {
  TempRepo repo;
  Write(repo.path() / "a.txt", "v1");
  Workspace ws = Workspace::AtRoot(repo.path());
  Journal journal(ws);
  journal.Begin("one");
  ws.WriteFile("a.txt", "v2", &journal);
  journal.Commit();
  Write(repo.path() / ".hearth/journal/000002/0001.before", "junk");
  Write(repo.path() / ".hearth/journal/000002/.0001.json.hearth-tmp-1", "{");
  UndoResult u = UndoLast(ws);
  EXPECT_EQ(u.change_set, "000001");
  EXPECT_EQ(Read(repo.path() / "a.txt"), "v1");
}

TEST(SnapshotTest, DetectsAddedRemovedModified) {
  TempRepo repo;
  Write(repo.path() / "keep.txt", "k");
  Write(repo.path() / "mod.txt", "m");
  Write(repo.path() / "gone.txt", "g");
  Workspace ws = Workspace::AtRoot(repo.path());
  Snapshot before = TakeSnapshot(ws);
  Write(repo.path() / "mod.txt", "modified, longer");
  fs::remove(repo.path() / "gone.txt");
  Write(repo.path() / "sub/new.txt", "n");
  Write(repo.path() / ".git/index", "ignored");
  SnapshotDiff d = Compare(before, TakeSnapshot(ws));
  EXPECT_EQ(d.modified, std::vector<std::string>{"mod.txt"});
  EXPECT_EQ(d.removed, std::vector<std::string>{"gone.txt"});
  EXPECT_EQ(d.added, std::vector<std::string>{"sub/new.txt"});
  EXPECT_EQ(d.Describe(), "modified: mod.txt; added: sub/new.txt; removed: gone.txt");
  Snapshot small = TakeSnapshot(ws, 1);
  EXPECT_TRUE(small.truncated);
}

// What a command writes into ignored places (build folders, objects) is not a source change: the
// snapshot honours .gitignore (nested, with '!' re-includes) and .hearthignore as the index does.
TEST(SnapshotTest, HonoursIgnoreFiles) {
  TempRepo repo;
  Write(repo.path() / ".gitignore", "build/\n*.o\n!keep.o\n");
  Write(repo.path() / "src/.gitignore", "gen_*.c\n");
  Write(repo.path() / ".hearthignore", "vendor/\n");
  Write(repo.path() / "src/a.c", "int a;\n");
  Workspace ws = Workspace::AtRoot(repo.path());
  Snapshot before = TakeSnapshot(ws);
  EXPECT_EQ(before.files.count("src/a.c"), 1u);
  Write(repo.path() / "build/CMakeCache.txt", "x");
  Write(repo.path() / "src/a.o", "obj");
  Write(repo.path() / "src/gen_table.c", "int t;\n");
  Write(repo.path() / "vendor/lib.c", "int v;\n");
  Write(repo.path() / "keep.o", "kept");
  Write(repo.path() / "gen_top.c", "int g;\n");  // src/.gitignore does not reach the root
  Write(repo.path() / "src/a.c", "int a = 2;\n");
  SnapshotDiff d = Compare(before, TakeSnapshot(ws));
  EXPECT_EQ(d.added, (std::vector<std::string>{"gen_top.c", "keep.o"}));
  EXPECT_EQ(d.modified, std::vector<std::string>{"src/a.c"});
  EXPECT_TRUE(d.removed.empty());
}

}  // namespace
}  // namespace hearth::agent
