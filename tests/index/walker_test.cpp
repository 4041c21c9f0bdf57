#include "index/walker.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "test_util.h"

namespace hearth::index {
namespace {

using testing::TempDir;
using testing::WriteFile;
namespace fs = std::filesystem;

std::vector<std::string> Paths(const WalkResult& r) {
  std::vector<std::string> out;
  for (const auto& f : r.files) out.push_back(f.rel_path);
  return out;
}

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(GlobMatch, GitignoreSemantics) {
  EXPECT_TRUE(GlobMatch("*.log", "a.log"));
  EXPECT_FALSE(GlobMatch("*.log", "dir/a.log"));  // '*' does not cross '/'
  EXPECT_TRUE(GlobMatch("**/foo", "foo"));
  EXPECT_TRUE(GlobMatch("**/foo", "a/b/foo"));
  EXPECT_TRUE(GlobMatch("a/**/b", "a/b"));
  EXPECT_TRUE(GlobMatch("a/**/b", "a/x/y/b"));
  EXPECT_FALSE(GlobMatch("a/**/b", "ab"));
  EXPECT_TRUE(GlobMatch("abc/**", "abc/x/y"));
  EXPECT_TRUE(GlobMatch("file[0-9].txt", "file7.txt"));
  EXPECT_FALSE(GlobMatch("file[!0-9].txt", "file7.txt"));
  EXPECT_TRUE(GlobMatch("?.c", "x.c"));
  EXPECT_FALSE(GlobMatch("?.c", "/.c"));
  EXPECT_TRUE(GlobMatch("\\*literal", "*literal"));
  EXPECT_FALSE(GlobMatch("\\*literal", "xliteral"));
}

TEST(IgnoreRules, LastMatchWinsNegationAnchoringDirOnly) {
  IgnoreRules r;
  r.Add("# comment\n*.log\n!keep.log\n/top.txt\nbuild/\ndocs/*.md\n", "");
  EXPECT_EQ(r.Match("a.log", false), 1);
  EXPECT_EQ(r.Match("sub/a.log", false), 1);
  EXPECT_EQ(r.Match("sub/keep.log", false), -1);
  EXPECT_EQ(r.Match("top.txt", false), 1);
  EXPECT_EQ(r.Match("sub/top.txt", false), 0);  // anchored to the file's folder
  EXPECT_EQ(r.Match("build", true), 1);
  EXPECT_EQ(r.Match("build", false), 0);  // dir-only rule, a file named build
  EXPECT_EQ(r.Match("docs/a.md", false), 1);
  EXPECT_EQ(r.Match("docs/x/a.md", false), 0);
  IgnoreRules nested;
  nested.Add("*.tmp\n", "sub");
  EXPECT_EQ(nested.Match("sub/x.tmp", false), 1);
  EXPECT_EQ(nested.Match("sub/deeper/x.tmp", false), 1);
  EXPECT_EQ(nested.Match("x.tmp", false), 0);
  EXPECT_EQ(nested.Match("subway/x.tmp", false), 0);
}

TEST(Walk, NestedGitignoreAndHearthignoreWithoutGit) {
  TempDir t;
  const fs::path root = t.path() / "tree";
  WriteFile(root / ".gitignore", "*.log\nout/\n");
  WriteFile(root / "a.c", "int a;\n");
  WriteFile(root / "x.log", "log\n");
  WriteFile(root / "out/gen.c", "int g;\n");
  WriteFile(root / "sub/.gitignore", "!keep.log\nlocal.c\n");
  WriteFile(root / "sub/keep.log", "keep\n");
  WriteFile(root / "sub/local.c", "int l;\n");
  WriteFile(root / "sub/b.c", "int b;\n");
  WriteFile(root / "local.c", "int top;\n");  // sub's rule does not reach up
  WriteFile(root / ".hearthignore", "secret/\n");
  WriteFile(root / "secret/key.c", "int k;\n");
  WalkResult r = Walk(root, {});
  auto p = Paths(r);
  EXPECT_TRUE(Has(p, "a.c"));
  EXPECT_TRUE(Has(p, "local.c"));
  EXPECT_TRUE(Has(p, "sub/b.c"));
  EXPECT_TRUE(Has(p, "sub/keep.log"));
  EXPECT_FALSE(Has(p, "x.log"));
  EXPECT_FALSE(Has(p, "out/gen.c"));
  EXPECT_FALSE(Has(p, "sub/local.c"));
  EXPECT_FALSE(Has(p, "secret/key.c"));
  EXPECT_TRUE(std::is_sorted(p.begin(), p.end()));
  EXPECT_EQ(r.skipped["ignored"], 4u);
}

TEST(Walk, GitRepositoryRulesThroughLibgit2) {
  TempDir t;
  const fs::path root = t.path() / "repo";
  fs::create_directories(root);
  std::string cmd = "git init -q " + root.string() + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  WriteFile(root / ".gitignore", "*.o\n");
  WriteFile(root / "lib/.gitignore", "generated/\n");
  WriteFile(root / ".git/info/exclude", "private.c\n");
  WriteFile(root / "main.c", "int main;\n");
  WriteFile(root / "main.o", "obj\n");
  WriteFile(root / "private.c", "int p;\n");
  WriteFile(root / "lib/util.c", "int u;\n");
  WriteFile(root / "lib/generated/g.c", "int g;\n");
  WriteFile(root / "lib/.hearthignore", "util_test.c\n");
  WriteFile(root / "lib/util_test.c", "int t;\n");
  auto p = Paths(Walk(root, {}));
  EXPECT_TRUE(Has(p, "main.c"));
  EXPECT_TRUE(Has(p, "lib/util.c"));
  EXPECT_FALSE(Has(p, "main.o"));
  EXPECT_FALSE(Has(p, "private.c"));
  EXPECT_FALSE(Has(p, "lib/generated/g.c"));
  EXPECT_FALSE(Has(p, "lib/util_test.c"));
  for (const auto& s : p) EXPECT_EQ(s.rfind(".git/", 0), std::string::npos) << s;

  // Walking a subfolder of the repository still applies the repository's rules.
  auto sub = Paths(Walk(root / "lib", {}));
  EXPECT_TRUE(Has(sub, "util.c"));
  EXPECT_FALSE(Has(sub, "generated/g.c"));
}

TEST(Walk, RootIgnoredByEnclosingRepositoryUsesItsOwnRules) {
  TempDir t;
  const fs::path repo = t.path() / "repo";
  fs::create_directories(repo);
  std::string cmd = "git init -q " + repo.string() + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  WriteFile(repo / ".gitignore", "/scratch/\n");
  WriteFile(repo / "scratch/tree/a.c", "int a;\n");
  WriteFile(repo / "scratch/tree/.gitignore", "b.c\n");
  WriteFile(repo / "scratch/tree/b.c", "int b;\n");
  auto p = Paths(Walk(repo / "scratch/tree", {}));
  EXPECT_TRUE(Has(p, "a.c"));
  EXPECT_FALSE(Has(p, "b.c"));
}

TEST(Walk, SymlinkLoopAndEscapeAreNotFollowed) {
  TempDir t;
  const fs::path root = t.path() / "tree";
  WriteFile(root / "d/a.c", "int a;\n");
  WriteFile(t.path() / "outside/secret.c", "int s;\n");
  fs::create_directory_symlink(root, root / "d/loop");           // points back up
  fs::create_directory_symlink(t.path() / "outside", root / "out");  // leaves the root
  fs::create_symlink(root / "d/a.c", root / "alias.c");             // inside: followed
  fs::create_symlink(root / "missing.c", root / "broken.c");
  WalkResult r = Walk(root, {});
  auto p = Paths(r);
  EXPECT_TRUE(Has(p, "d/a.c"));
  EXPECT_TRUE(Has(p, "alias.c"));
  EXPECT_EQ(std::count_if(p.begin(), p.end(),
                          [](const std::string& s) { return s.find("loop") != std::string::npos; }),
            0);
  EXPECT_FALSE(Has(p, "out/secret.c"));
  EXPECT_EQ(r.skipped["symlink_loop"], 1u);
  EXPECT_EQ(r.skipped["symlink_outside_root"], 1u);
  EXPECT_EQ(r.skipped["broken_symlink"], 1u);
}

TEST(Walk, SizeLimit) {
  TempDir t;
  WriteFile(t.path() / "small.c", std::string(100, 'x'));
  WriteFile(t.path() / "big.c", std::string(5000, 'x'));
  WalkOptions opt;
  opt.max_file_size = 1000;
  WalkResult r = Walk(t.path(), opt);
  auto p = Paths(r);
  EXPECT_TRUE(Has(p, "small.c"));
  EXPECT_FALSE(Has(p, "big.c"));
  EXPECT_EQ(r.skipped["too_large"], 1u);
}

TEST(Walk, PermissionDeniedDirectoryIsCountedNotFatal) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads through chmod 000";
  TempDir t;
  WriteFile(t.path() / "ok.c", "int ok;\n");
  WriteFile(t.path() / "locked/x.c", "int x;\n");
  chmod((t.path() / "locked").c_str(), 0);
  WalkResult r = Walk(t.path(), {});
  chmod((t.path() / "locked").c_str(), 0755);
  EXPECT_TRUE(Has(Paths(r), "ok.c"));
  EXPECT_EQ(r.skipped["permission_denied"], 1u);
}

TEST(Walk, MissingRootIsAnError) {
  EXPECT_ANY_THROW(Walk("/nonexistent/hearth/tree", {}));
}

}  // namespace
}  // namespace hearth::index
