#include "agent/workspace.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "base/error.h"
#include "index/walker.h"

namespace hearth::agent {
namespace fs = std::filesystem;

namespace {

// True when `p` is `root` or below it (both normalised absolute paths).
bool IsUnder(const fs::path& p, const fs::path& root) {
  auto [ri, pi] = std::mismatch(root.begin(), root.end(), p.begin(), p.end());
  if (ri == root.end()) return true;
  // A trailing empty component ("/a/b/") on root still counts as the same directory.
  return std::next(ri) == root.end() && ri->empty();
}

fs::path CanonicalDir(const fs::path& dir) {
  std::error_code ec;
  fs::path c = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(c, ec)) {
    ThrowUsage("workspace root '" + dir.string() + "' is not a directory",
               "run hearth inside a repository or pass --root DIR");
  }
  return c;
}

void FsyncPath(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) ThrowIo("cannot open '" + p.string() + "' to sync it: " + ErrnoText(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) ThrowIo("cannot sync '" + p.string() + "': " + ErrnoText(err));
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) ThrowIo("cannot read '" + p.string() + "': " + ErrnoText(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string SetName(int n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06d", n);
  return buf;
}

std::string EntryName(int n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d", n);
  return buf;
}

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

fs::path JournalDir(const Workspace& ws) { return ws.root() / ".hearth" / "journal"; }

// Change-set directories, oldest first.
std::vector<std::pair<int, fs::path>> ListSets(const fs::path& dir) {
  std::vector<std::pair<int, fs::path>> sets;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return sets;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (AllDigits(name) && name.size() <= 9 && e.is_directory(ec)) {
      sets.emplace_back(std::stoi(name), e.path());
    }
  }
  std::sort(sets.begin(), sets.end());
  return sets;
}

}  // namespace

// ---------------------------------------------------------------- Workspace

Workspace Workspace::Open(const fs::path& start) {
  fs::path dir = CanonicalDir(start.empty() ? fs::path(".") : start);
  for (fs::path d = dir;; d = d.parent_path()) {
    std::error_code ec;
    if (fs::exists(d / ".git", ec) || fs::is_directory(d / ".hearth", ec)) return Workspace(d);
    if (d == d.parent_path()) break;
  }
  return Workspace(dir);
}

Workspace Workspace::AtRoot(const fs::path& root) { return Workspace(CanonicalDir(root)); }

fs::path Workspace::Resolve(std::string_view path, bool for_write) const {
  const std::string shown(path.substr(0, std::min<size_t>(path.size(), 200)));
  auto reject = [&](const std::string& why) -> fs::path {
    ThrowUsage("path '" + shown + "' " + why,
               "use a path relative to the workspace root " + root_.string());
  };
  if (path.empty()) return reject("is empty");
  if (path.find('\0') != std::string_view::npos) return reject("contains a NUL byte");
  fs::path p{std::string(path)};
  fs::path rel;
  if (p.is_absolute()) {
    fs::path norm = p.lexically_normal();
    if (!IsUnder(norm, root_)) return reject("is outside the workspace");
    rel = norm.lexically_relative(root_);
  } else {
    rel = p;
  }
  for (const auto& part : rel) {
    if (part == "..") return reject("leaves the workspace (contains '..')");
  }
  fs::path abs = (root_ / rel).lexically_normal();
  if (!abs.empty() && !abs.has_filename()) abs = abs.parent_path();  // "dir/" -> "dir"
  if (!IsUnder(abs, root_)) return reject("is outside the workspace");
  std::error_code ec;
  // Resolves every symlink of the part that exists: a link leading out is caught here.
  fs::path real = fs::weakly_canonical(abs, ec);
  if (ec) return reject("cannot be resolved: " + ec.message());
  if (!IsUnder(real, root_)) return reject("resolves (through a symlink) outside the workspace");
  if (for_write) {
    fs::path r = real.lexically_relative(root_);
    if (!r.empty() && (*r.begin() == ".git" || *r.begin() == ".hearth")) {
      return reject("is inside .git or .hearth, which the assistant never writes");
    }
    if (real == root_) return reject("is the workspace root itself");
  }
  return real;
}

std::string Workspace::Relative(const fs::path& absolute) const {
  fs::path r = absolute.lexically_relative(root_);
  return r.empty() ? std::string(".") : r.string();
}

std::string Workspace::ReadFile(std::string_view path) const {
  fs::path p = Resolve(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    ThrowUsage("'" + std::string(path) + "' is a directory", "use list_dir for directories");
  }
  if (!fs::exists(p, ec)) {
    ThrowIo("'" + std::string(path) + "' does not exist", "check the path with list_dir");
  }
  return ReadAll(p);
}

bool Workspace::Exists(std::string_view path) const {
  std::error_code ec;
  return fs::exists(Resolve(path), ec);
}

void WriteFileDurably(const fs::path& path, std::string_view content) {
  fs::path dir = path.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) ThrowIo("cannot create directory '" + dir.string() + "': " + ec.message());
  // Keep the file's permission bits (an executable script stays executable).
  mode_t mode = 0644;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) mode = st.st_mode & 07777;
  fs::path tmp =
      dir / ("." + path.filename().string() + ".hearth-tmp-" + std::to_string(::getpid()));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) ThrowIo("cannot create '" + tmp.string() + "': " + ErrnoText(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      ThrowIo("cannot write '" + tmp.string() + "': " + ErrnoText(err));
    }
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    ThrowIo("cannot sync '" + tmp.string() + "': " + ErrnoText(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    ThrowIo("cannot replace '" + path.string() + "': " + ErrnoText(err));
  }
  FsyncPath(dir, true);
}

void Workspace::WriteFile(std::string_view path, std::string_view content, Journal* journal) const {
  fs::path p = Resolve(path, /*for_write=*/true);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    ThrowUsage("'" + std::string(path) + "' is a directory", "give a file path");
  }
  if (journal) journal->Record(p);
  WriteFileDurably(p, content);
}

// ---------------------------------------------------------------- Journal

Journal::Journal(const Workspace& workspace) : ws_(workspace) {}

void Journal::Begin(std::string title) {
  title_ = std::move(title);
  dir_.clear();
  files_.clear();
  entries_ = 0;
}

void Journal::Record(const fs::path& absolute) {
  std::string rel = ws_.Relative(absolute);
  if (std::find(files_.begin(), files_.end(), rel) != files_.end()) return;
  std::error_code ec;
  if (dir_.empty()) {
    fs::path jdir = JournalDir(ws_);
    fs::create_directories(jdir, ec);
    if (ec) ThrowIo("cannot create the edit journal '" + jdir.string() + "': " + ec.message());
    auto sets = ListSets(jdir);
    int next = sets.empty() ? 1 : sets.back().first + 1;
    for (;; ++next) {
      fs::path d = jdir / SetName(next);
      if (::mkdir(d.c_str(), 0755) == 0) {
        dir_ = d;
        break;
      }
      if (errno != EEXIST) ThrowIo("cannot create '" + d.string() + "': " + ErrnoText(errno));
    }
    nlohmann::json meta = {{"title", title_}, {"created", static_cast<int64_t>(::time(nullptr))}};
    WriteFileDurably(dir_ / "meta.json", meta.dump());
    FsyncPath(jdir, true);
  }
  const std::string name = EntryName(++entries_);
  nlohmann::json entry = {{"path", rel}};
  struct stat st;
  if (::lstat(absolute.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    // The before-bytes first, then the entry that points at them: an entry file never exists
    // without its content.
    WriteFileDurably(dir_ / (name + ".before"), ReadAll(absolute));
    entry["existed"] = true;
    entry["mode"] = static_cast<int>(st.st_mode & 07777);
  } else {
    entry["existed"] = false;
  }
  WriteFileDurably(dir_ / (name + ".json"), entry.dump());
  files_.push_back(rel);
}

void Journal::Commit() {
  if (dir_.empty()) return;
  WriteFileDurably(dir_ / "complete", "");
  dir_.clear();
  entries_ = 0;
}

// ---------------------------------------------------------------- undo

UndoResult UndoLast(const Workspace& ws) {
  UndoResult result;
  auto sets = ListSets(JournalDir(ws));
  std::error_code ec;
  for (auto it = sets.rbegin(); it != sets.rend(); ++it) {
    const fs::path& dir = it->second;
    if (fs::exists(dir / "undone", ec)) continue;
    std::vector<fs::path> entries;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::string n = e.path().filename().string();
      if (n.size() == 9 && n.ends_with(".json") && AllDigits(n.substr(0, 4))) {
        entries.push_back(e.path());
      }
    }
    if (entries.empty()) continue;  // interrupted before its first entry: nothing was written
    std::sort(entries.rbegin(), entries.rend());
    result.change_set = dir.filename().string();
    result.was_complete = fs::exists(dir / "complete", ec);
    try {
      result.title = nlohmann::json::parse(ReadAll(dir / "meta.json")).value("title", "");
    } catch (const std::exception&) {
      // meta.json is informational; a set interrupted while writing it is still undone.
    }
    for (const fs::path& entry_path : entries) {
      nlohmann::json entry;
      try {
        entry = nlohmann::json::parse(ReadAll(entry_path));
      } catch (const nlohmann::json::exception& e) {
        ThrowInvalidInput("journal entry '" + entry_path.string() + "' is corrupt: " + e.what(),
                          "restore the file by hand or delete that change set");
      }
      const std::string rel = entry.value("path", "");
      fs::path target = ws.Resolve(rel, /*for_write=*/true);
      if (entry.value("existed", false)) {
        fs::path before = entry_path;
        before.replace_extension(".before");
        std::string content = ReadAll(before);
        WriteFileDurably(target, content);
        if (entry.contains("mode")) {
          ::chmod(target.c_str(), static_cast<mode_t>(entry["mode"].get<int>()));
        }
        result.restored.push_back(rel);
      } else {
        if (fs::exists(target, ec)) {
          if (!fs::remove(target, ec) || ec) {
            ThrowIo("cannot remove '" + target.string() + "': " + ec.message());
          }
          FsyncPath(target.parent_path(), true);
          result.removed.push_back(rel);
        }
      }
    }
    WriteFileDurably(dir / "undone", "");
    result.undone = true;
    // The same file may be listed twice if it was restored by two entries; report it once.
    auto dedupe = [](std::vector<std::string>& v) {
      std::set<std::string> seen;
      v.erase(
          std::remove_if(v.begin(), v.end(), [&](const auto& s) { return !seen.insert(s).second; }),
          v.end());
    };
    dedupe(result.restored);
    dedupe(result.removed);
    return result;
  }
  return result;
}

// ---------------------------------------------------------------- snapshots

Snapshot TakeSnapshot(const Workspace& ws, size_t max_files) {
  // The index walker's view of the tree: .gitignore (nested), .git/info/exclude, the global
  // excludes and .hearthignore are honoured, so build outputs a command writes are not reported
  // as changed source files; .git and .hearth are never entered.
  index::WalkOptions wo;
  wo.max_file_size = std::numeric_limits<uint64_t>::max();  // big files change too
  index::WalkResult walk = index::Walk(ws.root(), wo);
  Snapshot snap;
  for (const auto& e : walk.files) {
    if (snap.files.size() >= max_files) {
      snap.truncated = true;
      break;
    }
    snap.files[e.rel_path] = {e.mtime_ns, e.size};
  }
  return snap;
}

SnapshotDiff Compare(const Snapshot& before, const Snapshot& after) {
  SnapshotDiff d;
  for (const auto& [path, stamp] : after.files) {
    auto it = before.files.find(path);
    if (it == before.files.end()) {
      d.added.push_back(path);
    } else if (!(it->second == stamp)) {
      d.modified.push_back(path);
    }
  }
  for (const auto& [path, stamp] : before.files) {
    if (!after.files.count(path)) d.removed.push_back(path);
  }
  return d;
}

std::string SnapshotDiff::Describe() const {
  if (empty()) return "no files changed";
  std::string out;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    if (!out.empty()) out += "; ";
    out += what;
    out += ": ";
    for (size_t i = 0; i < v.size() && i < 20; ++i) out += (i ? ", " : "") + v[i];
    if (v.size() > 20) out += ", ... (" + std::to_string(v.size() - 20) + " more)";
  };
  list("modified", modified);
  list("added", added);
  list("removed", removed);
  return out;
}

}  // namespace hearth::agent
