// End to end: the real binary, pointed at a hostile repository, driven by a scripted backend that
// returns attacker-chosen tool calls. Each test failed on the code before the confined file layer
// (a write through a planted link, a hang, exit 5, undo destroying the user's edit). Set
// HEARTH_SECURITY_BINARY to run them against another build of hearth.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/agent_test_util.h"
#include "agent/scripted_server.h"
#include "security/hostile_repo.h"

namespace hearth::security {
namespace {

namespace fs = std::filesystem;
using agent::testing::ScriptedServer;
using agent::testing::ShellResult;
using nlohmann::json;
using testing::HostileRepo;

std::string Binary() {
  const char* b = std::getenv("HEARTH_SECURITY_BINARY");
  return b != nullptr && *b != '\0' ? b : HEARTH_BINARY;
}

// hearth in `dir`, stdin from /dev/null, killed after `limit_s` (exit 124: it hung).
ShellResult Hearth(const fs::path& dir, const std::string& args, int limit_s = 60) {
  return agent::testing::RunShell("cd '" + dir.string() + "' && timeout -s KILL " +
                                  std::to_string(limit_s) + " '" + Binary() + "' " + args +
                                  " </dev/null 2>&1; echo \"[exit $?]\"");
}

int ExitCode(const ShellResult& r) {
  size_t at = r.out.rfind("[exit ");
  return at == std::string::npos ? -1 : std::atoi(r.out.c_str() + at + 6);
}

// One model reply holding the given tool calls.
std::string Calls(const std::vector<std::pair<std::string, json>>& calls) {
  json list = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "c%zu",
                  i);  // not "c" + to_string: a GCC 12 -Wrestrict false alarm
    list.push_back(
        {{"id", id},
         {"type", "function"},
         {"function", {{"name", calls[i].first}, {"arguments", calls[i].second.dump()}}}});
  }
  return json({{"choices",
                {{{"message", {{"role", "assistant"}, {"content", ""}, {"tool_calls", list}}},
                  {"finish_reason", "tool_calls"}}}}})
      .dump();
}

std::string Answer(const std::string& text) {
  return json({{"choices",
                {{{"message", {{"role", "assistant"}, {"content", text}}},
                  {"finish_reason", "stop"}}}}})
      .dump();
}

// Runs one `hearth ask --permissions auto` whose model makes `calls`, then answers "done".
// Returns the result and the tool results the model was sent (the second request).
struct Asked {
  ShellResult r;
  int code = -1;
  std::string tool_results;
};
Asked AskWith(const HostileRepo& repo, const std::vector<std::pair<std::string, json>>& calls,
              int limit_s = 60) {
  ScriptedServer server({Calls(calls), Answer("done")}, "/v1/chat/completions");
  Asked a;
  a.r = Hearth(repo.root(),
               "ask --no-index --permissions auto --backend " + server.url() + " 'do it'", limit_s);
  a.code = ExitCode(a.r);
  auto reqs = server.requests();
  if (reqs.size() >= 2) {
    for (const auto& m : reqs[1]["messages"]) {
      if (m.value("role", "") == "tool") a.tool_results += m.value("content", "") + "\n";
    }
  }
  return a;
}

std::vector<std::string> Everything(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::end(it); it.increment(ec)) {
    out.push_back(it->path().lexically_relative(dir).string());
  }
  return out;
}

json Edit(const std::string& path) {
  return {{"path", path}, {"old_text", "return 1"}, {"new_text", "return 2"}};
}

// The repository commits ".app.py.hearth-tmp-PID" symlinks for the pids hearth may get; the old
// edit opened its temp file by that name with O_CREAT|O_TRUNC and wrote through the link (into a
// git hook: code execution on the next commit; or into any file outside).
TEST(FsCliTest, PlantedTempNameSymlinksCannotRedirectAnEdit) {
  HostileRepo repo;
  repo.Write("src/app.py", "def f():\n    return 1\n");
  HostileRepo::WriteFile(repo.outside() / "victim.txt", "precious\n");
  const int pid = static_cast<int>(::getpid());
  for (int p = pid; p < pid + 600; ++p) {
    const fs::path target =
        p % 2 ? repo.outside() / "victim.txt" : repo.root() / ".git/hooks/pre-commit";
    repo.Symlink("src/.app.py.hearth-tmp-" + std::to_string(p), target);
  }
  Asked a = AskWith(repo, {{"edit_file", Edit("src/app.py")}});
  EXPECT_EQ(a.code, 0) << a.r.out;
  EXPECT_EQ(HostileRepo::ReadFile(repo.outside() / "victim.txt"), "precious\n");
  EXPECT_FALSE(fs::exists(repo.root() / ".git/hooks/pre-commit"));
  EXPECT_FALSE(fs::is_symlink(repo.root() / "src/app.py"));
  EXPECT_EQ(HostileRepo::ReadFile(repo.root() / "src/app.py"), "def f():\n    return 2\n");
}

TEST(FsCliTest, NestedRepositoryGitDirectoryIsNeverWritten) {
  HostileRepo repo;
  repo.Write("vendor/lib/.git/HEAD", "ref: refs/heads/main\n");
  Asked a = AskWith(
      repo, {{"write_file",
              {{"path", "vendor/lib/.git/hooks/post-checkout"},
               {"content", "#!/bin/sh\ntouch /tmp/pwned\n"}}},
             {"write_file",
              {{"path", "vendor/lib/.git/config"}, {"content", "[core]\n\tfsmonitor = evil\n"}}}});
  EXPECT_EQ(a.code, 0) << a.r.out;
  EXPECT_FALSE(fs::exists(repo.root() / "vendor/lib/.git/hooks/post-checkout"));
  EXPECT_FALSE(fs::exists(repo.root() / "vendor/lib/.git/config"));
  EXPECT_NE(a.tool_results.find(".git directory"), std::string::npos) << a.tool_results;
}

TEST(FsCliTest, SymlinkAtTheTargetIsRefusedNotReplaced) {
  HostileRepo repo;
  repo.Write("real.py", "def f():\n    return 1\n");
  repo.Symlink("alias.py", "real.py");
  Asked a = AskWith(repo, {{"edit_file", Edit("alias.py")},
                           {"write_file", {{"path", "alias.py"}, {"content", "x"}}}});
  EXPECT_EQ(a.code, 0) << a.r.out;
  EXPECT_TRUE(fs::is_symlink(repo.root() / "alias.py"));
  EXPECT_EQ(HostileRepo::ReadFile(repo.root() / "real.py"), "def f():\n    return 1\n");
  EXPECT_NE(a.tool_results.find("symbolic link"), std::string::npos) << a.tool_results;
}

// A directory swapped for a symlink to the outside (atomically, in a loop) while the model's
// writes run: not one byte may land outside.
TEST(FsCliTest, DirectorySwapRaceCannotLeadWritesOut) {
  HostileRepo repo;
  repo.Write("d/keep.txt", "k\n");
  repo.Symlink("evil", repo.outside());
  std::vector<std::pair<std::string, json>> calls;
  for (int i = 0; i < 300; ++i) {
    calls.push_back(
        {"write_file", {{"path", "d/f" + std::to_string(i % 20) + ".txt"}, {"content", "w\n"}}});
  }
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    const std::string d = (repo.root() / "d").string(), evil = (repo.root() / "evil").string();
    while (!stop.load()) {
      ::renameat2(AT_FDCWD, d.c_str(), AT_FDCWD, evil.c_str(), RENAME_EXCHANGE);
    }
  });
  Asked a = AskWith(repo, calls, 120);
  stop = true;
  swapper.join();
  EXPECT_EQ(a.code, 0) << a.r.out.substr(0, 2000);
  auto out = Everything(repo.outside());
  EXPECT_TRUE(out.empty()) << out.size() << " files outside, e.g. " << out.front();
}

TEST(FsCliTest, UndoRefusesToDestroyTheUsersEditsAndForceSavesThem) {
  HostileRepo repo;
  repo.Write("src/app.py", "def f():\n    return 1\n");
  Asked a = AskWith(repo, {{"edit_file", Edit("src/app.py")},
                           {"write_file", {{"path", "src/new.py"}, {"content", "x = 1\n"}}}});
  ASSERT_EQ(a.code, 0) << a.r.out;
  repo.Write("src/app.py", "def f():\n    return 2  # and the user's fix\n");
  repo.Write("src/new.py", "x = 1  # the user kept working here\n");
  ShellResult r = Hearth(repo.root(), "undo");
  EXPECT_EQ(ExitCode(r), 4) << r.out;
  EXPECT_NE(r.out.find("changed after the assistant wrote it"), std::string::npos) << r.out;
  EXPECT_EQ(HostileRepo::ReadFile(repo.root() / "src/app.py"),
            "def f():\n    return 2  # and the user's fix\n");
  EXPECT_EQ(HostileRepo::ReadFile(repo.root() / "src/new.py"),
            "x = 1  # the user kept working here\n");
  r = Hearth(repo.root(), "undo --force");
  EXPECT_EQ(ExitCode(r), 0) << r.out;
  EXPECT_EQ(HostileRepo::ReadFile(repo.root() / "src/app.py"), "def f():\n    return 1\n");
  EXPECT_FALSE(fs::exists(repo.root() / "src/new.py"));
  EXPECT_EQ(HostileRepo::ReadFile(repo.root() / "src/app.py.hearth-undo-saved"),
            "def f():\n    return 2  # and the user's fix\n");
  EXPECT_EQ(HostileRepo::ReadFile(repo.root() / "src/new.py.hearth-undo-saved"),
            "x = 1  # the user kept working here\n");
  EXPECT_NE(r.out.find("saved your version as src/app.py.hearth-undo-saved"), std::string::npos)
      << r.out;
}

// A repository that ships its own .hearth/journal: malformed or dangerous entries are a clear
// error, exit 3 (before: exit 5 "internal error", or a set-uid chmod applied).
TEST(FsCliTest, PlantedJournalEntryIsExit3) {
  for (const std::string entry : {"{\"path\":\"run.sh\",\"existed\":true,\"mode\":2541}",
                                  "{\"path\":\"run.sh\",\"existed\":true,\"mode\":\"rwx\"}",
                                  "{\"path\":[\"run.sh\"],\"existed\":true}"}) {
    HostileRepo repo;
    repo.Write("run.sh", "echo hi\n");
    repo.Write(".hearth/journal/000001/0001.json", entry);
    repo.Write(".hearth/journal/000001/0001.before", "#!/bin/sh\necho owned\n");
    ShellResult r = Hearth(repo.root(), "undo");
    EXPECT_EQ(ExitCode(r), 3) << entry << "\n" << r.out;
    EXPECT_NE(r.out.find("hearth: error: the edit journal is corrupt or was planted"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(HostileRepo::ReadFile(repo.root() / "run.sh"), "echo hi\n");
    struct stat st;
    ASSERT_EQ(::stat((repo.root() / "run.sh").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07000, 0u);
  }
}

TEST(FsCliTest, NonUtf8NamesAndContentsAreNotFatal) {
  HostileRepo repo;
  repo.Write("caf\xe9.txt", "first line\nsecond \xff line\n");
  repo.Write("ok.txt", "na\xefve\n");
  Asked a = AskWith(repo, {{"list_dir", json::object()},
                           {"grep", {{"pattern", "line"}}},
                           {"read_file", {{"path", "ok.txt"}}}});
  EXPECT_EQ(a.code, 0) << a.r.out;
  EXPECT_NE(a.tool_results.find("caf\\xE9.txt\n"), std::string::npos) << a.tool_results;
  EXPECT_NE(a.tool_results.find("caf\\xE9.txt:2: second \\xFF line"), std::string::npos)
      << a.tool_results;
  EXPECT_NE(a.tool_results.find("na\\xEFve"), std::string::npos) << a.tool_results;
}

TEST(FsCliTest, ReadFileOfAFifoDoesNotHang) {
  HostileRepo repo;
  ASSERT_EQ(::mkfifo((repo.root() / "notes.txt").c_str(), 0644), 0);
  Asked a = AskWith(repo, {{"read_file", {{"path", "notes.txt"}}}}, 30);
  EXPECT_EQ(a.code, 0) << a.r.out;
  EXPECT_NE(a.tool_results.find("not a regular file"), std::string::npos) << a.tool_results;
}

TEST(FsCliTest, CatastrophicGrepPatternIsBounded) {
  HostileRepo repo;
  std::string text;
  for (int i = 0; i < 50; ++i) text += std::string(36, 'a') + "!\n";
  repo.Write("src/data.txt", text);
  const auto start = std::chrono::steady_clock::now();
  Asked a = AskWith(repo, {{"grep", {{"pattern", "^(a+)+$"}}}}, 30);
  EXPECT_EQ(a.code, 0) << a.r.out;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_NE(a.tool_results.find("no matches in 1 files"), std::string::npos) << a.tool_results;
}

// The old grep skipped lines longer than 2000 characters without a word and answered "no
// matches"; now every line is searched, and an early stop is reported as one.
TEST(FsCliTest, GrepDoesNotClaimNoMatchesForTextItSkipped) {
  HostileRepo repo;
  repo.Write("dist/app.min.js", std::string(4000, ';') + "const apiKeyCheck=1;\n");
  Asked a = AskWith(repo, {{"grep", {{"pattern", "apiKeyCheck"}}}});
  EXPECT_EQ(a.code, 0) << a.r.out;
  EXPECT_NE(a.tool_results.find("dist/app.min.js:1:"), std::string::npos)
      << a.tool_results.substr(0, 300);
}

}  // namespace
}  // namespace hearth::security
