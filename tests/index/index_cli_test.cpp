// The index commands as a user meets them: hearth index / search / symbols / map.
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <string>

#include "test_util.h"

namespace hearth::index {
namespace {

using testing::TempDir;
using testing::WriteFile;
namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out;
};

// Runs the hearth binary in `dir` with `args` (already shell-quoted), stdout+stderr captured.
Result Hearth(const fs::path& dir, const std::string& args) {
  std::string cmd = "cd '" + dir.string() + "' && '" + HEARTH_BINARY + "' " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

void MakeRepo(const fs::path& root) {
  WriteFile(root / "src/parser.c",
            "/* Parses configuration files. */\n"
            "int parse_config_file(const char *path) {\n"
            "  FILE *f = fopen(path, \"r\");\n"
            "  if (!f) return -1;\n"
            "  read_sections(f);\n"
            "  fclose(f);\n"
            "  return 0;\n"
            "}\n");
  WriteFile(root / "src/main.c",
            "int main(int argc, char **argv) {\n"
            "  if (argc < 2) return 2;\n"
            "  int rc = parse_config_file(argv[1]);\n"
            "  print_status(rc);\n"
            "  cleanup();\n"
            "  return rc;\n"
            "}\n");
  WriteFile(root / "tools/report.py",
            "def write_report(rows):\n"
            "    total = 0\n"
            "    for r in rows:\n"
            "        total += r\n"
            "    print(total)\n"
            "    return total\n");
}

TEST(IndexCli, IndexSearchSymbolsMap) {
  TempDir t;
  MakeRepo(t.path());
  Result r = Hearth(t.path(), "index");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("indexed 3 files"), std::string::npos) << r.out;

  r = Hearth(t.path() / "src", "search --json 'config file parsing'");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_FALSE(j["results"].empty());
  EXPECT_EQ(j["results"][0]["path"], "src/parser.c");
  EXPECT_EQ(j["results"][0]["start_line"], 1);
  EXPECT_EQ(j["results"][0]["end_line"], 8);
  EXPECT_EQ(j["results"][0]["symbol"], "parse_config_file");
  EXPECT_TRUE(j["results"][0]["score"].is_number());

  r = Hearth(t.path(), "search parse_config_file --limit 1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("src/parser.c:1-8"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("src/main.c"), std::string::npos) << r.out;  // --limit 1

  r = Hearth(t.path(), "search --explain report --lang python");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("tools/report.py"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bm25: rank 1"), std::string::npos) << r.out;

  r = Hearth("/", "search --root '" + t.path().string() + "' --path 'src/*' --json main");
  ASSERT_EQ(r.code, 0) << r.out;
  j = nlohmann::json::parse(r.out);
  for (const auto& x : j["results"]) EXPECT_EQ(x["path"].get<std::string>().rfind("src/", 0), 0u);

  r = Hearth(t.path(), "symbols parse_config_file");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("definitions:\n  src/parser.c:2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("references:\n  src/main.c:3"), std::string::npos) << r.out;

  r = Hearth(t.path(), "map --tokens 200");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("src/parser.c:\n", 0), 0u) << r.out;
  EXPECT_LE(r.out.size(), 800u);

  r = Hearth(t.path(), "index --json-progress");
  ASSERT_EQ(r.code, 0) << r.out;
  std::string text = r.out.substr(0, r.out.find_last_not_of('\n') + 1);
  auto last = nlohmann::json::parse(text.substr(text.rfind('\n') + 1));
  EXPECT_EQ(last["event"], "done");
  EXPECT_EQ(last["files_unchanged"], 3);
}

TEST(IndexCli, ErrorsAndHelp) {
  TempDir t;
  MakeRepo(t.path());
  Result r = Hearth(t.path(), "search anything");
  EXPECT_EQ(r.code, 2) << r.out;  // no index yet: usage error with a hint
  EXPECT_NE(r.out.find("run `hearth index`"), std::string::npos) << r.out;

  WriteFile(t.path() / ".hearth/index.db", "this is not a database at all, not even close....");
  r = Hearth(t.path(), "index");
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("--rebuild"), std::string::npos) << r.out;
  r = Hearth(t.path(), "index --rebuild -q");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "");

  r = Hearth(t.path(), "index /nonexistent/tree");
  EXPECT_EQ(r.code, 4) << r.out;

  for (const char* cmd : {"index", "search", "symbols", "map"}) {
    r = Hearth(t.path(), std::string(cmd) + " --help");
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << r.out;
  }
  r = Hearth(t.path(), "map --help");
  EXPECT_NE(r.out.find("characters / 4"), std::string::npos) << r.out;
  r = Hearth(t.path(), "search");
  EXPECT_EQ(r.code, 2) << r.out;
}

}  // namespace
}  // namespace hearth::index
