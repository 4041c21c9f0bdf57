// The ignore-rule matching behind index::Walk (declared in index.h, the module's public header):
// gitignore syntax for the trees libgit2 does not cover and for .hearthignore files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "index/index.h"  // WalkEntry, WalkOptions, Walk

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

}  // namespace hearth::index
