// Walking a source tree the way git sees it: .gitignore files (nested), .git/info/exclude and the
// global excludes file through libgit2 when the tree is inside a git work tree, the same rules by
// our own matcher when it is not, plus .hearthignore files (gitignore syntax, any level). Symlinks
// are followed only when they resolve inside the root, and every directory is entered at most once
// (by device and inode), so loops and escapes are impossible.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::index {

// One ignore file's rules, gitignore syntax. `base` is the directory (relative to the walk root,
// "" for the root, no trailing '/') the file lives in.
class IgnoreRules {
 public:
  void Add(std::string_view text, const std::string& base);
  // Last matching rule wins: +1 ignored, -1 re-included by a '!' rule, 0 no rule matched.
  int Match(std::string_view rel_path, bool is_dir) const;
  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    std::string base, pattern;
    bool negate = false, dir_only = false, anchored = false;
  };
  std::vector<Rule> rules_;
};

// Glob match of gitignore patterns: '*' and '?' never match '/', '**' matches across directories,
// [a-z] / [!a-z] classes, '\' escapes.
bool GlobMatch(std::string_view pattern, std::string_view text);

struct WalkEntry {
  std::string rel_path;  // '/'-separated, relative to the root
  std::filesystem::path abs_path;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

struct WalkResult {
  std::vector<WalkEntry> files;             // sorted by rel_path
  std::map<std::string, size_t> skipped;    // reason -> count
};

struct WalkOptions {
  uint64_t max_file_size = 1 << 20;
};

WalkResult Walk(const std::filesystem::path& root, const WalkOptions& options);

}  // namespace hearth::index
