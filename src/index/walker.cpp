#include "index/walker.h"

#include <dirent.h>
#include <git2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "base/error.h"

namespace hearth::index {
namespace fs = std::filesystem;

// ---------------------------------------------------------------- glob and ignore rules

namespace {

bool MatchClass(std::string_view p, size_t& pi, char c) {
  // p[pi] == '['; on return pi is past the closing ']'.
  size_t i = pi + 1;
  bool negate = false;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
    negate = true;
    ++i;
  }
  bool matched = false;
  bool first = true;
  while (i < p.size() && (p[i] != ']' || first)) {
    first = false;
    char lo = p[i];
    if (lo == '\\' && i + 1 < p.size()) lo = p[++i];
    char hi = lo;
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      hi = p[i + 2];
      i += 2;
    }
    if (c >= lo && c <= hi) matched = true;
    ++i;
  }
  if (i >= p.size()) {  // no closing ']': treat '[' as a literal
    pi += 1;
    return c == '[';
  }
  pi = i + 1;
  return matched != negate;
}

bool GlobFrom(std::string_view p, size_t pi, std::string_view t, size_t ti, int depth) {
  if (depth > 64) return false;  // pathological patterns
  while (pi < p.size()) {
    char pc = p[pi];
    if (pc == '*') {
      bool double_star = pi + 1 < p.size() && p[pi + 1] == '*';
      if (double_star) {
        size_t after = pi;
        while (after < p.size() && p[after] == '*') ++after;
        bool at_segment_start = pi == 0 || p[pi - 1] == '/';
        if (at_segment_start && after == p.size()) return true;  // "x/**": everything below
        if (at_segment_start && p[after] == '/') {
          // "**/": zero or more whole directories.
          std::string_view rest = p;
          size_t rest_pi = after + 1;
          if (GlobFrom(rest, rest_pi, t, ti, depth + 1)) return true;
          for (size_t k = ti; k < t.size(); ++k) {
            if (t[k] == '/' && GlobFrom(rest, rest_pi, t, k + 1, depth + 1)) return true;
          }
          return false;
        }
        // "a**b": like '*' but crossing '/'.
        for (size_t k = ti; k <= t.size(); ++k) {
          if (GlobFrom(p, after, t, k, depth + 1)) return true;
        }
        return false;
      }
      for (size_t k = ti; k <= t.size(); ++k) {
        if (GlobFrom(p, pi + 1, t, k, depth + 1)) return true;
        if (k < t.size() && t[k] == '/') break;
      }
      return false;
    }
    if (ti >= t.size()) return false;
    if (pc == '?') {
      if (t[ti] == '/') return false;
      ++pi;
      ++ti;
    } else if (pc == '[') {
      if (t[ti] == '/' || !MatchClass(p, pi, t[ti])) return false;
      ++ti;
    } else {
      if (pc == '\\' && pi + 1 < p.size()) pc = p[++pi];
      if (pc != t[ti]) return false;
      ++pi;
      ++ti;
    }
  }
  return ti == t.size();
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  return GlobFrom(pattern, 0, text, 0, 0);
}

void IgnoreRules::Add(std::string_view text, const std::string& base) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string line(text.substr(pos, nl - pos));
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // Trailing spaces are dropped unless escaped with a backslash.
    while (!line.empty() && line.back() == ' ' &&
           !(line.size() >= 2 && line[line.size() - 2] == '\\'))
      line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    Rule r;
    r.base = base;
    if (line[0] == '!') {
      r.negate = true;
      line.erase(0, 1);
    } else if (line.size() >= 2 && line[0] == '\\' && (line[1] == '!' || line[1] == '#')) {
      line.erase(0, 1);
    }
    if (!line.empty() && line.back() == '/') {
      r.dir_only = true;
      while (!line.empty() && line.back() == '/') line.pop_back();
    }
    if (line.empty()) continue;
    r.anchored = line.find('/') != std::string::npos;
    if (line[0] == '/') line.erase(0, 1);
    if (line.empty()) continue;
    r.pattern = std::move(line);
    rules_.push_back(std::move(r));
  }
}

int IgnoreRules::Match(std::string_view rel_path, bool is_dir) const {
  int verdict = 0;
  for (const Rule& r : rules_) {
    if (r.dir_only && !is_dir) continue;
    std::string_view sub = rel_path;
    if (!r.base.empty()) {
      if (sub.size() <= r.base.size() || sub.substr(0, r.base.size()) != r.base ||
          sub[r.base.size()] != '/')
        continue;
      sub.remove_prefix(r.base.size() + 1);
    }
    bool m;
    if (r.anchored) {
      m = GlobMatch(r.pattern, sub);
    } else {
      size_t slash = sub.rfind('/');
      m = GlobMatch(r.pattern, slash == std::string_view::npos ? sub : sub.substr(slash + 1));
    }
    if (m) verdict = r.negate ? -1 : 1;
  }
  return verdict;
}

// ---------------------------------------------------------------- walking

namespace {

std::string ReadSmallFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct GitRepo {
  git_repository* repo = nullptr;
  std::string prefix;  // root relative to the work tree, "" or "sub/dir/"
  ~GitRepo() {
    if (repo) git_repository_free(repo);
  }
};

void InitLibgit2() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

class Walker {
 public:
  Walker(const fs::path& root, const WalkOptions& opt) : opt_(opt) {
    std::error_code ec;
    root_ = fs::canonical(root, ec);
    if (ec || !fs::is_directory(root_, ec)) {
      ThrowIo("cannot index " + root.string() + ": not a readable directory",
              "pass the path of a source tree");
    }
    InitLibgit2();
    git_repository* repo = nullptr;
    if (git_repository_open_ext(&repo, root_.c_str(), 0, nullptr) == 0) {
      git_.repo = repo;
      const char* wd = git_repository_workdir(repo);
      if (wd == nullptr) {  // bare repository: no work tree rules apply
        git_repository_free(repo);
        git_.repo = nullptr;
      } else {
        std::error_code ec2;
        fs::path workdir = fs::canonical(wd, ec2);
        fs::path rel = ec2 ? fs::path() : root_.lexically_relative(workdir);
        std::string r = rel.generic_string();
        if (r.empty() || r == ".") {
          git_.prefix.clear();
        } else if (r.rfind("..", 0) == 0) {  // should not happen; fall back to own rules
          git_repository_free(repo);
          git_.repo = nullptr;
        } else {
          git_.prefix = r + "/";
          // The root itself is ignored by the enclosing repository (a scratch tree under an
          // ignored build/ folder): git's rules say nothing useful about it, so use our own.
          int ignored = 0;
          if (git_ignore_path_is_ignored(&ignored, repo, git_.prefix.c_str()) == 0 && ignored) {
            git_repository_free(repo);
            git_.repo = nullptr;
            git_.prefix.clear();
          }
        }
      }
    }
  }

  WalkResult Run() {
    std::vector<const IgnoreRules*> chain;
    struct stat st;
    if (stat(root_.c_str(), &st) == 0) visited_.insert({st.st_dev, st.st_ino});
    Visit(root_, "", chain, 0);
    std::sort(result_.files.begin(), result_.files.end(),
              [](const WalkEntry& a, const WalkEntry& b) { return a.rel_path < b.rel_path; });
    return std::move(result_);
  }

 private:
  bool Ignored(const std::string& rel, bool is_dir, const std::vector<const IgnoreRules*>& chain) {
    int verdict = 0;
    for (const IgnoreRules* r : chain) {
      int v = r->Match(rel, is_dir);
      if (v != 0) verdict = v;
    }
    if (verdict > 0) return true;
    if (verdict < 0) return false;  // re-included by a .hearthignore '!' rule
    if (git_.repo) {
      int ignored = 0;
      std::string p = git_.prefix + rel + (is_dir ? "/" : "");
      if (git_ignore_path_is_ignored(&ignored, git_.repo, p.c_str()) == 0 && ignored) return true;
    }
    return false;
  }

  bool InsideRoot(const fs::path& p) const {
    auto r = root_.native();
    auto s = p.native();
    return s == r || (s.size() > r.size() && s.compare(0, r.size(), r) == 0 && s[r.size()] == '/');
  }

  void Visit(const fs::path& dir, const std::string& rel_dir,
             std::vector<const IgnoreRules*>& chain, int depth) {
    if (depth > 200) {
      ++result_.skipped["too_deep"];
      return;
    }
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) {
      ++result_.skipped[errno == EACCES ? "permission_denied" : "unreadable"];
      return;
    }
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      names.push_back(std::move(n));
    }
    closedir(d);
    std::sort(names.begin(), names.end());

    // This directory's own rules. Without a git repository .gitignore is honoured by our matcher;
    // with one, libgit2 applies it (and info/exclude and the global excludes file).
    auto rules = std::make_unique<IgnoreRules>();
    bool has_rules = false;
    auto load = [&](const char* name) {
      if (!std::binary_search(names.begin(), names.end(), std::string(name))) return;
      std::string text = ReadSmallFile(dir / name);
      rules->Add(text, rel_dir);
      has_rules = true;
    };
    if (!git_.repo) load(".gitignore");
    load(".hearthignore");
    if (has_rules) chain.push_back(rules.get());

    for (const std::string& name : names) {
      if (name == ".git" || name == ".hearth" || name == ".hg" || name == ".svn") continue;
      std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
      fs::path abs = dir / name;
      struct stat lst;
      if (lstat(abs.c_str(), &lst) != 0) {
        ++result_.skipped[errno == EACCES ? "permission_denied" : "unreadable"];
        continue;
      }
      struct stat st = lst;
      if (S_ISLNK(lst.st_mode)) {
        if (!opt_.follow_symlinks) {
          ++result_.skipped["symlink"];
          continue;
        }
        if (stat(abs.c_str(), &st) != 0) {
          ++result_.skipped["broken_symlink"];
          continue;
        }
        char buf[PATH_MAX];
        if (realpath(abs.c_str(), buf) == nullptr || !InsideRoot(fs::path(buf))) {
          ++result_.skipped["symlink_outside_root"];
          continue;
        }
      }
      bool is_dir = S_ISDIR(st.st_mode);
      if (!is_dir && !S_ISREG(st.st_mode)) {
        ++result_.skipped["special_file"];
        continue;
      }
      if (Ignored(rel, is_dir, chain)) {
        ++result_.skipped["ignored"];
        continue;
      }
      if (is_dir) {
        if (!visited_.insert({st.st_dev, st.st_ino}).second) {
          ++result_.skipped[S_ISLNK(lst.st_mode) ? "symlink_loop" : "already_visited"];
          continue;
        }
        Visit(abs, rel, chain, depth + 1);
        continue;
      }
      if (static_cast<uint64_t>(st.st_size) > opt_.max_file_size) {
        ++result_.skipped["too_large"];
        continue;
      }
      WalkEntry e;
      e.rel_path = rel;
      e.abs_path = abs;
      e.size = static_cast<uint64_t>(st.st_size);
      e.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      result_.files.push_back(std::move(e));
    }
    if (has_rules) chain.pop_back();
  }

  fs::path root_;
  WalkOptions opt_;
  GitRepo git_;
  std::set<std::pair<dev_t, ino_t>> visited_;
  WalkResult result_;
};

}  // namespace

WalkResult Walk(const fs::path& root, const WalkOptions& options) {
  Walker w(root, options);
  return w.Run();
}

}  // namespace hearth::index
