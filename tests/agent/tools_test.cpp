// Each tool on a scratch repository, permissions, the run allowlist, timeouts and truncation.
#include "agent/tools.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "agent/config.h"
#include "agent_test_util.h"
#include "base/error.h"
#include "index/index.h"

namespace hearth::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Read;
using testing::TempRepo;
using testing::Write;

std::string Args(const json& j) { return j.dump(); }

class ToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Write(repo_.path() / "src/auth.py",
          "def validate_token(token):\n"
          "    if token.expired:\n"
          "        raise ValueError('expired')\n"
          "    return True\n");
    Write(repo_.path() / "src/main.py",
          "from auth import validate_token\n"
          "\n"
          "def main():\n"
          "    validate_token(load())\n");
    Write(repo_.path() / "README.md", "# demo\n");
  }
  ToolBox Make(PermissionMode mode, AgentConfig config = {}) {
    ToolOptions opt;
    opt.mode = mode;
    opt.journal = &journal_;
    opt.confirm = [this](const std::string& summary, const std::string& details) {
      asked_.push_back(summary);
      last_details_ = details;
      return answer_;
    };
    return ToolBox(ws_, std::move(config), opt);
  }

  TempRepo repo_;
  Workspace ws_ = Workspace::AtRoot(repo_.path());
  Journal journal_{ws_};
  std::vector<std::string> asked_;
  std::string last_details_;
  bool answer_ = true;
};

TEST_F(ToolsTest, DeclarationsFollowTheMode) {
  AgentConfig config;
  config.allowed_commands = {"true"};
  auto names = [](const ToolBox& t) {
    std::string s;
    for (const auto& n : t.Names()) s += n + " ";
    return s;
  };
  EXPECT_EQ(names(Make(PermissionMode::kReadOnly, config)),
            "read_file list_dir search_code find_symbol grep ");
  EXPECT_EQ(names(Make(PermissionMode::kAsk, config)),
            "read_file list_dir search_code find_symbol grep run edit_file write_file ");
  EXPECT_EQ(names(Make(PermissionMode::kAsk)),  // no allowed commands: no run tool
            "read_file list_dir search_code find_symbol grep edit_file write_file ");
  json d = Make(PermissionMode::kAuto).Declarations();
  EXPECT_EQ(d[0]["function"]["parameters"]["type"], "object");
  EXPECT_EQ(d[0]["function"]["parameters"]["required"], json::array({"path"}));
}

TEST_F(ToolsTest, ReadFileWholeAndRange) {
  ToolBox t = Make(PermissionMode::kReadOnly);
  ToolResult r = t.Call("read_file", Args({{"path", "src/auth.py"}}));
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(r.text, Read(repo_.path() / "src/auth.py"));
  r = t.Call("read_file", Args({{"path", "src/auth.py"}, {"start_line", 2}, {"end_line", 3}}));
  EXPECT_EQ(
      r.text,
      "[src/auth.py lines 2-3 of 4]\n    if token.expired:\n        raise ValueError('expired')\n");
  r = t.Call("read_file", Args({{"path", "src/auth.py"}, {"start_line", 9}}));
  EXPECT_FALSE(r.ok);
  r = t.Call("read_file", Args({{"path", "../etc/passwd"}}));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.text.find("leaves the workspace"), std::string::npos) << r.text;
  r = t.Call("read_file", Args({{"path", "missing.txt"}}));
  EXPECT_FALSE(r.ok);
  r = t.Call("read_file", "{not json");
  EXPECT_FALSE(r.ok);
  r = t.Call("read_file", Args(json::object()));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.text.find("missing argument 'path'"), std::string::npos);
  r = t.Call("no_such_tool", "{}");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.text.find("unknown tool"), std::string::npos);
}

TEST_F(ToolsTest, OutputIsBoundedWithANote) {
  std::string big;
  for (int i = 0; i < 5000; ++i) big += "line " + std::to_string(i) + "\n";
  Write(repo_.path() / "big.txt", big);
  ToolBox t = Make(PermissionMode::kReadOnly);
  ToolResult r = t.Call("read_file", Args({{"path", "big.txt"}}));
  EXPECT_TRUE(r.ok);
  EXPECT_LT(r.text.size(), 16500u);
  EXPECT_NE(r.text.find("read on with start_line="), std::string::npos);
}

TEST_F(ToolsTest, ListDir) {
  ToolBox t = Make(PermissionMode::kReadOnly);
  ToolResult r = t.Call("list_dir", "{}");
  EXPECT_EQ(r.text, "README.md\nsrc/\n");  // .git hidden
  r = t.Call("list_dir", Args({{"path", "src"}}));
  EXPECT_EQ(r.text, "auth.py\nmain.py\n");
  EXPECT_FALSE(t.Call("list_dir", Args({{"path", "README.md"}})).ok);
  EXPECT_FALSE(t.Call("list_dir", Args({{"path", "/"}})).ok);
}

TEST_F(ToolsTest, Grep) {
  ToolBox t = Make(PermissionMode::kReadOnly);
  ToolResult r = t.Call("grep", Args({{"pattern", "validate_\\w+\\("}}));
  EXPECT_EQ(r.text,
            "src/auth.py:1: def validate_token(token):\n"
            "src/main.py:4: validate_token(load())\n");
  r = t.Call("grep", Args({{"pattern", "demo"}, {"path_glob", "*.py"}}));
  EXPECT_NE(r.text.find("no matches in 2 files"), std::string::npos) << r.text;
  r = t.Call("grep", Args({{"pattern", "("}}));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.text.find("invalid regular expression"), std::string::npos);
}

TEST_F(ToolsTest, SearchCodeAndFindSymbolUseTheIndex) {
  ToolBox t = Make(PermissionMode::kReadOnly);
  // Without an index the tools fail with a message, not an exception.
  EXPECT_FALSE(t.Call("search_code", Args({{"query", "token"}})).ok);
  index::BuildOptions bo;
  bo.root = repo_.path();
  bo.threads = 1;
  index::BuildIndex(bo);
  ToolResult r = t.Call("search_code", Args({{"query", "validate expired token"}}));
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(r.text.rfind("src/auth.py\n", 0), 0u) << r.text;
  EXPECT_NE(r.text.find("lines 1-4"), std::string::npos) << r.text;
  r = t.Call("find_symbol", Args({{"name", "validate_token"}}));
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_NE(r.text.find("src/auth.py:1: definition"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("src/main.py:4: use"), std::string::npos) << r.text;
}

TEST_F(ToolsTest, EditFileExactUniqueMatch) {
  ToolBox t = Make(PermissionMode::kAuto);
  journal_.Begin("edit");
  ToolResult r = t.Call("edit_file", Args({{"path", "src/auth.py"},
                                           {"old_text", "raise ValueError('expired')"},
                                           {"new_text", "raise TokenExpired()"}}));
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(r.text, "edited src/auth.py at line 3");
  EXPECT_EQ(r.changed_files, std::vector<std::string>{"src/auth.py"});
  EXPECT_NE(Read(repo_.path() / "src/auth.py").find("raise TokenExpired()"), std::string::npos);
  journal_.Commit();
  ASSERT_TRUE(UndoLast(ws_).undone);
  EXPECT_NE(Read(repo_.path() / "src/auth.py").find("ValueError"), std::string::npos);

  r = t.Call("edit_file",
             Args({{"path", "src/main.py"}, {"old_text", "validate_token"}, {"new_text", "x"}}));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.text.find("occurs 2 times"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("lines 1, 4"), std::string::npos) << r.text;
}

TEST_F(ToolsTest, EditFileFailureShowsClosestRegion) {
  ToolBox t = Make(PermissionMode::kAuto);
  std::string before = Read(repo_.path() / "src/auth.py");
  // Wrong indentation and quote style: no exact match; lines 2-3 are the closest.
  ToolResult r = t.Call(
      "edit_file", Args({{"path", "src/auth.py"},
                         {"old_text", "  if token.expired:\n    raise ValueError(\"expired\")"},
                         {"new_text", "x"}}));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.text.find("was not found in src/auth.py"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("closest region, lines 2-3"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("2|     if token.expired:\n3|         raise ValueError('expired')"),
            std::string::npos)
      << r.text;
  EXPECT_EQ(Read(repo_.path() / "src/auth.py"), before);
}

TEST_F(ToolsTest, ClosestRegionPicksBestWindow) {
  std::string text = "alpha\nbeta\ngamma\ndelta\nepsilon\n";
  EXPECT_EQ(ClosestRegion(text, "gamma\ndelta"),
            "closest region, lines 3-4 (similarity 1.00):\n3| gamma\n4| delta\n");
  EXPECT_EQ(ClosestRegion(text, "delt"),
            "closest region, lines 4-4 (similarity 0.86):\n4| delta\n");
}

// Prompt lookup drafts only inside an open edit_file / write_file call (the local backend).
TEST(InsideFileWritingCall, OnlyWithinAnOpenEditOrWriteCall) {
  EXPECT_FALSE(InsideFileWritingCall(""));
  EXPECT_FALSE(InsideFileWritingCall("I will edit the file now."));
  EXPECT_FALSE(InsideFileWritingCall("<|tool_call>call:edit_fi"));  // name not complete yet
  EXPECT_TRUE(InsideFileWritingCall("ok <|tool_call>call:edit_file{"));
  EXPECT_TRUE(InsideFileWritingCall(
      "<|tool_call>call:write_file{path:<|\"|>a.c<|\"|>,content:<|\"|>int main"));
  EXPECT_FALSE(InsideFileWritingCall("<|tool_call>call:read_file{path:<|\"|>a.c"));
  EXPECT_FALSE(InsideFileWritingCall("<|tool_call>call:edit_file{path:1}<tool_call|>"));
  // Only the latest call counts.
  EXPECT_FALSE(InsideFileWritingCall(
      "<|tool_call>call:edit_file{x:1}<tool_call|><|tool_call>call:grep{pattern:"));
  EXPECT_TRUE(InsideFileWritingCall(
      "<|tool_call>call:grep{x:1}<tool_call|><|tool_call>call:write_file{path:"));
}

TEST_F(ToolsTest, WriteFileCreatesAndIsJournaled) {
  ToolBox t = Make(PermissionMode::kAuto);
  journal_.Begin("write");
  ToolResult r = t.Call("write_file", Args({{"path", "new/file.txt"}, {"content", "hello\n"}}));
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(Read(repo_.path() / "new/file.txt"), "hello\n");
  journal_.Commit();
  UndoLast(ws_);
  EXPECT_FALSE(fs::exists(repo_.path() / "new/file.txt"));
  EXPECT_FALSE(t.Call("write_file", Args({{"path", "../escape.txt"}, {"content", "x"}})).ok);
  EXPECT_FALSE(fs::exists(repo_.path().parent_path() / "escape.txt"));
}

TEST_F(ToolsTest, ReadOnlyRefusesWrites) {
  AgentConfig config;
  config.allowed_commands = {"touch made.txt"};
  ToolBox t = Make(PermissionMode::kReadOnly, config);
  std::string before = Read(repo_.path() / "src/auth.py");
  ToolResult r = t.Call(
      "edit_file", Args({{"path", "src/auth.py"}, {"old_text", "True"}, {"new_text", "False"}}));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.text.find("read-only"), std::string::npos);
  EXPECT_FALSE(t.Call("write_file", Args({{"path", "x.txt"}, {"content", "x"}})).ok);
  EXPECT_FALSE(t.Call("run", Args({{"command", "touch made.txt"}})).ok);
  EXPECT_EQ(Read(repo_.path() / "src/auth.py"), before);
  EXPECT_FALSE(fs::exists(repo_.path() / "x.txt"));
  EXPECT_FALSE(fs::exists(repo_.path() / "made.txt"));
  EXPECT_TRUE(asked_.empty());
}

TEST_F(ToolsTest, AskModeShowsDiffAndHonoursNo) {
  ToolBox t = Make(PermissionMode::kAsk);
  answer_ = false;
  std::string before = Read(repo_.path() / "src/auth.py");
  ToolResult r = t.Call(
      "edit_file",
      Args({{"path", "src/auth.py"}, {"old_text", "return True"}, {"new_text", "return False"}}));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.text.find("did not allow"), std::string::npos);
  ASSERT_EQ(asked_, std::vector<std::string>{"edit src/auth.py"});
  EXPECT_NE(last_details_.find("-    return True\n+    return False\n"), std::string::npos)
      << last_details_;
  EXPECT_EQ(Read(repo_.path() / "src/auth.py"), before);
  answer_ = true;
  EXPECT_TRUE(t.Call("edit_file", Args({{"path", "src/auth.py"},
                                        {"old_text", "return True"},
                                        {"new_text", "return False"}}))
                  .ok);
}

TEST(TerminalConfirmerTest, NonTtyStdinAnswersNo) {
  if (::isatty(STDIN_FILENO)) GTEST_SKIP() << "stdin is a terminal";
  EXPECT_FALSE(TerminalConfirmer()("edit x", "diff"));
}

TEST_F(ToolsTest, RunOnlyAllowedCommands) {
  AgentConfig config;
  config.allowed_commands = {"echo hello && touch made.txt", "exit 3"};
  ToolBox t = Make(PermissionMode::kAsk, config);
  ToolResult r = t.Call("run", Args({{"command", "rm -rf ."}}));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.text.find("not an allowed command"), std::string::npos);
  EXPECT_TRUE(asked_.empty());  // never even asked
  r = t.Call("run", Args({{"command", "echo hello && touch made.txt; rm README.md"}}));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(fs::exists(repo_.path() / "README.md"));

  r = t.Call("run", Args({{"command", " echo hello && touch made.txt "}}));
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(asked_, std::vector<std::string>{"run `echo hello && touch made.txt`"});
  EXPECT_EQ(r.text, "[exit code 0]\nhello\n[files changed by the command: added: made.txt]\n");
  EXPECT_EQ(r.changed_files, std::vector<std::string>{"made.txt"});
  r = t.Call("run", Args({{"command", "exit 3"}}));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.text.rfind("[exit code 3]", 0), 0u);
}

// A build command's outputs in git-ignored folders are not reported as changed files.
TEST_F(ToolsTest, RunIgnoresGitIgnoredOutputs) {
  Write(repo_.path() / ".gitignore", "out/\n");
  AgentConfig config;
  config.allowed_commands = {"mkdir -p out && touch out/app.o && touch built.txt"};
  ToolBox t = Make(PermissionMode::kAuto, config);
  ToolResult r =
      t.Call("run", Args({{"command", "mkdir -p out && touch out/app.o && touch built.txt"}}));
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_TRUE(fs::exists(repo_.path() / "out/app.o"));
  EXPECT_NE(r.text.find("[files changed by the command: added: built.txt]"), std::string::npos)
      << r.text;
  EXPECT_EQ(r.changed_files, std::vector<std::string>{"built.txt"});
}

TEST(RunCommandTest, TimeoutKillsTheProcessGroup) {
  TempRepo repo;
  auto start = std::chrono::steady_clock::now();
  CommandResult r =
      RunCommand("echo before; sleep 30 & sleep 30; echo after", repo.path(), 1, 1000);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_EQ(r.output, "before\n");
  EXPECT_LT(s, 5.0);
}

TEST(RunCommandTest, OutputTruncatedKeepingHeadAndTail) {
  TempRepo repo;
  CommandResult r = RunCommand("echo START; seq 1 100000; echo END", repo.path(), 30, 2000);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output.rfind("START\n1\n2\n", 0), 0u);
  EXPECT_TRUE(r.output.ends_with("99999\n100000\nEND\n"));
  EXPECT_NE(r.output.find("bytes of output left out here"), std::string::npos);
  EXPECT_LT(r.output.size(), 2200u);
}

TEST(ConfigTest, ReadsAllowedCommandsAndRejectsBadValues) {
  TempRepo repo;
  TempRepo user;  // the user's config directory, never the real one
  ASSERT_EQ(setenv("XDG_CONFIG_HOME", user.path().c_str(), 1), 0);
  Workspace ws = Workspace::AtRoot(repo.path());
  EXPECT_TRUE(LoadConfig(ws).allowed_commands.empty());
  Write(repo.path() / ".hearth/config.toml",
        "[run]\nallowed = [\"make test\", \"ctest --test-dir build\"]\ntimeout_seconds = 7\n"
        "[agent]\npermissions = \"read-only\"\n");
  // Untrusted (agent/config.h): the narrowing settings apply, the allowed commands do not.
  AgentConfig c = LoadConfig(ws);
  EXPECT_TRUE(c.allowed_commands.empty());
  EXPECT_EQ(c.ignored_repo_keys, std::vector<std::string>{"run.allowed"});
  EXPECT_EQ(c.run_timeout_seconds, 7);
  EXPECT_EQ(c.permissions, PermissionMode::kReadOnly);
  TrustRepoConfig(ws);
  c = LoadConfig(ws);
  EXPECT_EQ(c.allowed_commands, (std::vector<std::string>{"make test", "ctest --test-dir build"}));
  EXPECT_TRUE(c.ignored_repo_keys.empty());
  Write(repo.path() / ".hearth/config.toml", "[run]\nallowed = \"make test\"\n");
  try {
    LoadConfig(ws);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("run.allowed"), std::string::npos);
  }
  Write(repo.path() / ".hearth/config.toml", "[run\n");
  EXPECT_THROW(LoadConfig(ws), Error);
  unsetenv("XDG_CONFIG_HOME");
}

TEST(LineDiffTest, ShowsChangedLinesWithContext) {
  EXPECT_EQ(LineDiff("a\nb\nc\nd\ne\nf\n", "a\nb\nc\nD\ne\nf\n", "x.txt"),
            "--- a/x.txt\n+++ b/x.txt\n@@ -1,6 +1,6 @@\n a\n b\n c\n-d\n+D\n e\n f\n");
}

}  // namespace
}  // namespace hearth::agent
