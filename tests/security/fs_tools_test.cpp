// The assistant's file tools and undo against hostile files: non-UTF-8 names and contents, FIFOs,
// huge files, catastrophic regular expressions, Ctrl-C during grep, the user's edits after an ask,
// and planted or corrupt journal entries.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "agent/tools.h"
#include "agent/workspace.h"
#include "base/error.h"
#include "security/hostile_repo.h"

namespace hearth::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using security::testing::HostileRepo;

class FsToolsTest : public ::testing::Test {
 protected:
  ToolBox Make() {
    ToolOptions opt;
    opt.mode = PermissionMode::kAuto;
    opt.journal = &journal_;
    return ToolBox(ws_, {}, opt);
  }
  // The result must be valid UTF-8: nlohmann's dump throws type_error.316 otherwise (what made
  // hearth exit 5 before).
  static void ExpectValidJson(const ToolResult& r) {
    EXPECT_NO_THROW((void)json({{"content", r.text}}).dump()) << r.text;
  }
  HostileRepo repo_;
  Workspace ws_ = Workspace::AtRoot(repo_.root());
  Journal journal_{ws_};
};

TEST_F(FsToolsTest, NonUtf8NamesAndContentsAreEscaped) {
  repo_.Write("caf\xe9.txt", "na\xefve line\nsecond \xff line\n");
  ToolBox t = Make();
  ToolResult r = t.Call("read_file", json({{"path", "caf\xc3\xa9.txt"}}).dump());
  ExpectValidJson(r);  // (that name is the UTF-8 spelling, which is another file: an error)
  r = t.Call("list_dir", "{}");
  ASSERT_TRUE(r.ok) << r.text;
  ExpectValidJson(r);
  EXPECT_NE(r.text.find("caf\\xE9.txt"), std::string::npos) << r.text;
  r = t.Call("grep", json({{"pattern", "line"}}).dump());
  ASSERT_TRUE(r.ok) << r.text;
  ExpectValidJson(r);
  EXPECT_NE(r.text.find("caf\\xE9.txt:1: na\\xEFve line"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("caf\\xE9.txt:2: second \\xFF line"), std::string::npos) << r.text;
  // The model can read such a file by its name as found on disk (bytes in a JSON string are
  // UTF-8, so only names that are valid UTF-8 can be asked for; the content is escaped).
  repo_.Write("ok.txt", "bad \xc0 byte\n");
  r = t.Call("read_file", json({{"path", "ok.txt"}}).dump());
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(r.text, "bad \\xC0 byte\n");
}

TEST_F(FsToolsTest, ReadFileRefusesFifoAndDevicesAndCapsSize) {
  ASSERT_EQ(::mkfifo((repo_.root() / "pipe").c_str(), 0644), 0);
  ToolBox t = Make();
  const auto start = std::chrono::steady_clock::now();
  ToolResult r = t.Call("read_file", json({{"path", "pipe"}}).dump());
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.text.find("not a regular file"), std::string::npos) << r.text;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // A file bigger than the cap: the first lines are shown, with a note that there is more.
  std::string big;
  for (int i = 0; big.size() <= ToolBox::kReadFileMaxBytes; ++i) {
    big += "line " + std::to_string(i) + "\n";
  }
  repo_.Write("big.txt", big);
  r = t.Call("read_file", json({{"path", "big.txt"}, {"start_line", 1}, {"end_line", 2}}).dump());
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_NE(r.text.find("line 0\nline 1\n"), std::string::npos) << r.text;
  // The last lines within the cap end with the truncation note.
  const int last =
      static_cast<int>(std::count(big.begin(), big.begin() + ToolBox::kReadFileMaxBytes, '\n'));
  r = t.Call("read_file", json({{"path", "big.txt"}, {"start_line", last - 1}}).dump());
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_NE(r.text.find("only the first 4 MiB of the file were read"), std::string::npos) << r.text;
}

// (a+)+$ against "aaaa...ab" backtracks exponentially in std::regex; RE2 is linear.
TEST_F(FsToolsTest, CatastrophicRegexIsBounded) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += std::string(40, 'a') + "b\n";
  repo_.Write("src/evil.txt", text);
  ToolBox t = Make();
  const auto start = std::chrono::steady_clock::now();
  ToolResult r = t.Call("grep", json({{"pattern", "(a+)+$"}}).dump());
  EXPECT_TRUE(r.ok) << r.text;
  EXPECT_NE(r.text.find("no matches in 1 files"), std::string::npos) << r.text;
  r = t.Call("grep", json({{"pattern", "(a|aa)*c"}}).dump());
  EXPECT_TRUE(r.ok) << r.text;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(FsToolsTest, GrepReportsEarlyStopsInsteadOfNoMatches) {
  // A match on a line longer than the old per-line limit (2000 characters) is found, not
  // silently skipped.
  repo_.Write("min.js", std::string(5000, 'x') + "needle" + std::string(100, 'y') + "\n");
  ToolBox t = Make();
  ToolResult r = t.Call("grep", json({{"pattern", "needle"}}).dump());
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_NE(r.text.find("min.js:1: "), std::string::npos) << r.text.substr(0, 200);
  // Ctrl-C (the agent's cancel flag) stops it, and it says so.
  std::atomic<bool> cancel{true};
  t.set_cancel(&cancel);
  r = t.Call("grep", json({{"pattern", "needle"}}).dump());
  EXPECT_EQ(r.text.find("no matches in"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("search stopped early: interrupted (Ctrl-C)"), std::string::npos) << r.text;
  t.set_cancel(nullptr);
  // The match limit is reported as an early stop too.
  std::string many;
  for (size_t i = 0; i < ToolBox::kGrepMaxMatches + 50; ++i) many += "hit\n";
  repo_.Write("many.txt", many);
  r = t.Call("grep", json({{"pattern", "^hit$"}}).dump());
  EXPECT_NE(r.text.find("search stopped early: match limit of 200 reached"), std::string::npos)
      << r.text.substr(r.text.size() - 300);
  // Files the walker does not enter are not searched: .gitignore'd ones (the index's walker).
  repo_.Write(".gitignore", "build/\n");
  repo_.Write("build/out.txt", "needle\n");
  r = t.Call("grep", json({{"pattern", "needle"}}).dump());
  EXPECT_EQ(r.text.find("build/out.txt"), std::string::npos) << r.text.substr(0, 300);
}

TEST_F(FsToolsTest, GrepAndListDirDoNotFollowSymlinksOut) {
  HostileRepo::WriteFile(repo_.outside() / "secret.txt", "token=hunter2\n");
  repo_.Symlink("out", repo_.outside());
  repo_.Symlink("leak.txt", repo_.outside() / "secret.txt");
  ToolBox t = Make();
  ToolResult r = t.Call("grep", json({{"pattern", "hunter2"}}).dump());
  EXPECT_EQ(r.text.find("hunter2"), std::string::npos) << r.text;
  r = t.Call("list_dir", json({{"path", "out"}}).dump());
  EXPECT_FALSE(r.ok) << r.text;
  r = t.Call("read_file", json({{"path", "leak.txt"}}).dump());
  EXPECT_FALSE(r.ok) << r.text;
  EXPECT_EQ(r.text.find("hunter2"), std::string::npos) << r.text;
  r = t.Call("list_dir", "{}");
  EXPECT_NE(r.text.find("leak.txt (symlink, not followed)"), std::string::npos) << r.text;
}

// ---------------------------------------------------------------- undo

TEST_F(FsToolsTest, UndoRefusesWhenTheUserEditedAndForceSavesTheirVersion) {
  repo_.Write("a.txt", "original\n");
  journal_.Begin("ask");
  ws_.WriteFile("a.txt", "assistant\n", &journal_);
  ws_.WriteFile("new.txt", "created by the assistant\n", &journal_);
  journal_.Commit();
  repo_.Write("a.txt", "the user's work\n");
  repo_.Write("new.txt", "the user's work on a new file\n");
  try {
    UndoLast(ws_);
    ADD_FAILURE() << "undo overwrote the user's edits";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kIo);
    EXPECT_NE(e.Describe().find("a.txt"), std::string::npos) << e.Describe();
    EXPECT_NE(e.Describe().find("new.txt"), std::string::npos) << e.Describe();
    EXPECT_NE(e.Describe().find("--force"), std::string::npos) << e.Describe();
  }
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt"), "the user's work\n");
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "new.txt"), "the user's work on a new file\n");

  UndoResult u = UndoLast(ws_, {.force = true});
  ASSERT_TRUE(u.undone);
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt"), "original\n");
  EXPECT_FALSE(fs::exists(repo_.root() / "new.txt"));
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt.hearth-undo-saved"), "the user's work\n");
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "new.txt.hearth-undo-saved"),
            "the user's work on a new file\n");
  EXPECT_EQ(u.saved.size(), 2u);
}

TEST_F(FsToolsTest, UndoOfUntouchedFilesNeedsNoForce) {
  repo_.Write("a.txt", "v1\n");
  journal_.Begin("ask");
  ws_.WriteFile("a.txt", "v2\n", &journal_);
  ws_.WriteFile("a.txt", "v3\n", &journal_);  // the last of several writes in one set
  journal_.Commit();
  UndoResult u = UndoLast(ws_);
  ASSERT_TRUE(u.undone);
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt"), "v1\n");
  EXPECT_FALSE(fs::exists(repo_.root() / "a.txt.hearth-undo-saved"));
}

// Planted or corrupt entries: a clear error of class kInvalidInput (exit 3), nothing touched.
TEST_F(FsToolsTest, PlantedJournalEntriesAreRefused) {
  repo_.Write("a.txt", "keep\n");
  const std::string good_hash(64, 'a');
  const std::vector<std::pair<std::string, std::string>> planted = {
      {"{\"path\":\"a.txt\",\"existed\":true,\"mode\":2541}", "set-uid"},  // 04755
      {"{\"path\":\"a.txt\",\"existed\":true,\"mode\":1023}", "set-uid"},  // 01777: sticky
      {"{\"path\":\"a.txt\",\"existed\":true,\"mode\":\"rwx\"}", "mode"},
      {"{\"path\":\"a.txt\",\"existed\":\"yes\"}", "existed"},
      {"{\"path\":7,\"existed\":false}", "path"},
      {"{\"path\":\"../outside/x\",\"existed\":false}", "may not write"},
      {"{\"path\":\"vendor/.git/hooks/pre-commit\",\"existed\":false}", "may not write"},
      {"{\"path\":\"/etc/passwd\",\"existed\":false}", "may not write"},
      {"{\"path\":\"a.txt\",\"existed\":false,\"after\":[\"zz\"]}", "hash"},
      {"[1,2]", "object"},
      {"{\"path\":", "JSON"},
  };
  for (const auto& [entry, why] : planted) {
    fs::remove_all(repo_.root() / ".hearth");
    repo_.Write(".hearth/journal/000001/0001.json", entry);
    repo_.Write(".hearth/journal/000001/0001.before", "#!/bin/sh\n");
    try {
      UndoLast(ws_);
      ADD_FAILURE() << "accepted: " << entry;
    } catch (const Error& e) {
      EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput) << entry << ": " << e.Describe();
      EXPECT_NE(e.Describe().find(why), std::string::npos) << entry << ": " << e.Describe();
    }
    EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt"), "keep\n") << entry;
    EXPECT_EQ((fs::status(repo_.root() / "a.txt").permissions() & fs::perms::set_uid),
              fs::perms::none);
  }
  // A .before that is a symlink to a file outside: its content must not be copied in.
  fs::remove_all(repo_.root() / ".hearth");
  HostileRepo::WriteFile(repo_.outside() / "id_rsa", "PRIVATE KEY\n");
  repo_.Write(".hearth/journal/000001/0001.json", "{\"path\":\"a.txt\",\"existed\":true}");
  repo_.Symlink(".hearth/journal/000001/0001.before", repo_.outside() / "id_rsa");
  EXPECT_THROW(UndoLast(ws_, {.force = true}), Error);
  EXPECT_EQ(HostileRepo::ReadFile(repo_.root() / "a.txt"), "keep\n");
  // A change set that is a symlink to a directory elsewhere.
  fs::remove_all(repo_.root() / ".hearth");
  HostileRepo::WriteFile(repo_.outside() / "set/0001.json",
                         "{\"path\":\"a.txt\",\"existed\":false}");
  repo_.Symlink(".hearth/journal/000001", repo_.outside() / "set");
  try {
    UndoLast(ws_, {.force = true});
    ADD_FAILURE() << "a symlinked change set was used";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kInvalidInput) << e.Describe();
  }
  EXPECT_TRUE(fs::exists(repo_.root() / "a.txt"));
}

}  // namespace
}  // namespace hearth::agent
