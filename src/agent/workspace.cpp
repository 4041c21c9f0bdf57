#include "agent/workspace.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/confined_fs.h"
#include "agent/journal_key.h"
#include "base/error.h"
#include "index/index.h"

namespace hearth::agent {
namespace fs = std::filesystem;
namespace cf = confined;

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

bool IsHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

const std::vector<std::string> kJournal = {".hearth", "journal"};

std::vector<std::string> JournalPath(const std::string& set = {}, const std::string& file = {}) {
  std::vector<std::string> p = kJournal;
  if (!set.empty()) p.push_back(set);
  if (!file.empty()) p.push_back(file);
  return p;
}

std::string Shown(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : "/") + p;
  return s;
}

[[noreturn]] void Corrupt(const std::string& what, const std::string& why, const std::string& set) {
  ThrowInvalidInput("the edit journal is corrupt or was planted: " + what + " " + why,
                    set.empty() ? "remove .hearth/journal if you did not create it"
                                : "restore the files by hand, then remove .hearth/journal/" + set);
}

// Names in a directory opened through the confined layer.
std::vector<std::string> ReadDirNames(cf::Fd dir) {
  std::vector<std::string> names;
  DIR* d = ::fdopendir(dir.get());
  if (d == nullptr) ThrowIo("cannot list a directory: " + ErrnoText(errno));
  dir.release();  // owned by `d` now
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// Change-set names, oldest first. Anything in the journal that is not a plain directory with a
// numeric name is ignored (temp files) or, when it poses as a change set, refused.
std::vector<std::string> ListSets(const Workspace& ws) {
  int fd = cf::TryOpen(ws.root_fd(), kJournal, O_RDONLY | O_DIRECTORY);
  if (fd == -ENOENT) return {};
  if (fd < 0) {
    if (fd == -ELOOP || fd == -ENOTDIR) Corrupt(".hearth/journal", "is a symbolic link", "");
    ThrowIo("cannot open .hearth/journal: " + ErrnoText(-fd));
  }
  cf::Fd dir(fd);
  const int dfd = dir.get();
  std::vector<std::string> sets;
  std::vector<std::string> names = ReadDirNames(cf::Fd(::dup(dfd)));
  for (const auto& name : names) {
    if (!AllDigits(name) || name.size() > 9) continue;
    auto st = cf::StatAt(dfd, name);
    if (!st) continue;
    if (!S_ISDIR(st->st_mode)) {
      Corrupt(".hearth/journal/" + name, "is not a directory (a symbolic link?)", name);
    }
    sets.push_back(name);
  }
  std::sort(sets.begin(), sets.end(),
            [](const std::string& a, const std::string& b) { return std::stol(a) < std::stol(b); });
  return sets;
}

void WriteJournalFile(const Workspace& ws, const std::string& set, const std::string& file,
                      std::string_view content) {
  auto parts = JournalPath(set, file);
  cf::Fd dir = cf::OpenParent(ws.root_fd(), parts, /*create=*/true, Shown(parts));
  cf::ReplaceFile(dir.get(), file, content, 0644, Shown(parts));
}

std::string ReadJournalFile(const Workspace& ws, const std::string& set, const std::string& file) {
  auto parts = JournalPath(set, file);
  try {
    return cf::ReadFile(ws.root_fd(), parts, Workspace::kMaxFileBytes, nullptr, Shown(parts));
  } catch (const Error& e) {
    Corrupt(Shown(parts), "cannot be read: " + e.Describe(), set);
  }
}

// The message a journal MAC is computed over: a tag and length-prefixed fields, so that no two
// different field lists give the same bytes.
std::string MacMessage(std::string_view tag, const std::vector<std::string_view>& fields) {
  std::string m = "hearth-journal-v1\n";
  m += tag;
  for (std::string_view f : fields) {
    m += '\n';
    m += std::to_string(f.size());
    m += ':';
    m += f;
  }
  return m;
}

// An entry's MAC: the change set, the workspace it belongs to, the entry's name and every field
// undo acts on (the before bytes through their hash).
std::string EntryMac(const std::string& key, const Workspace& ws, const std::string& set,
                     const std::string& entry, const std::string& rel, bool existed, int mode,
                     const std::string& before_sha256, const std::vector<std::string>& after) {
  std::string hashes;
  for (const auto& h : after) hashes += h + ",";
  const std::string mode_text = existed ? std::to_string(mode) : "-";
  return HmacSha256Hex(
      key, MacMessage("entry", {ws.root().string(), set, entry, rel, existed ? "existed" : "new",
                                mode_text, existed ? before_sha256 : "-", hashes}));
}

// The `complete` marker's MAC: the set's entries, in order.
std::string CompleteMac(const std::string& key, const Workspace& ws, const std::string& set,
                        const std::vector<std::string>& entries) {
  const std::string root = ws.root().string();
  std::vector<std::string_view> fields = {root, set};
  for (const auto& e : entries) fields.push_back(e);
  return HmacSha256Hex(key, MacMessage("complete", fields));
}

// Constant-time comparison of two MACs (hex).
bool SameMac(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

[[noreturn]] void NotOurs(const std::string& set, const std::string& why) {
  ThrowInvalidInput("change set " + set +
                        " was not written by hearth for this user (a planted or copied journal): " +
                        why + "; nothing was changed",
                    "if it is a journal of a hearth before journal MACs, or not yours, remove "
                    ".hearth/journal/" +
                        set + " (undo cannot trust it)");
}

}  // namespace

// ---------------------------------------------------------------- Workspace

Workspace::Workspace(fs::path root) : root_(std::move(root)) {
  int fd = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    ThrowIo("cannot open the workspace root '" + root_.string() + "': " + ErrnoText(errno));
  }
  root_fd_ = std::shared_ptr<const int>(new int(fd), [](const int* p) {
    ::close(*p);
    delete p;
  });
}

int Workspace::root_fd() const { return *root_fd_; }

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

std::vector<std::string> Workspace::Parts(std::string_view path, bool for_write) const {
  const std::string shown(path.substr(0, std::min<size_t>(path.size(), 200)));
  auto reject = [&](const std::string& why) {
    ThrowUsage("path '" + shown + "' " + why,
               "use a path relative to the workspace root " + root_.string());
  };
  if (path.empty()) reject("is empty");
  if (path.find('\0') != std::string_view::npos) reject("contains a NUL byte");
  std::string rel(path);
  if (!rel.empty() && rel.front() == '/') {
    for (const auto& part : fs::path(rel)) {
      if (part == "..") reject("leaves the workspace (contains '..')");
    }
    fs::path norm = fs::path(rel).lexically_normal();
    if (!IsUnder(norm, root_)) reject("is outside the workspace");
    rel = norm.lexically_relative(root_).generic_string();
  }
  std::vector<std::string> parts = cf::Split(rel, shown);
  if (for_write) cf::CheckWritable(parts, shown, /*internal=*/false);
  return parts;
}

fs::path Workspace::Resolve(std::string_view path, bool for_write) const {
  std::vector<std::string> parts = Parts(path, for_write);
  fs::path abs = root_;
  for (const auto& p : parts) abs /= p;
  std::error_code ec;
  // Resolves every symlink of the part that exists: a link leading out is caught here.
  fs::path real = fs::weakly_canonical(abs, ec);
  const std::string shown(path.substr(0, std::min<size_t>(path.size(), 200)));
  if (ec) ThrowUsage("path '" + shown + "' cannot be resolved: " + ec.message());
  if (!IsUnder(real, root_)) {
    ThrowUsage("path '" + shown + "' resolves (through a symlink) outside the workspace",
               "use a path relative to the workspace root " + root_.string());
  }
  if (for_write) Parts(Relative(real), true);  // a link into .git is refused too
  return real;
}

std::string Workspace::Relative(const fs::path& absolute) const {
  fs::path r = absolute.lexically_relative(root_);
  return r.empty() ? std::string(".") : r.string();
}

std::string Workspace::ReadFile(std::string_view path, size_t max_bytes, bool* truncated) const {
  std::vector<std::string> parts = Parts(path);
  bool more = false;
  std::string text = cf::ReadFile(root_fd(), parts, max_bytes, &more, path);
  if (truncated) {
    *truncated = more;
  } else if (more) {
    ThrowUsage("'" + std::string(path.substr(0, 200)) + "' is larger than " +
                   std::to_string(max_bytes >> 20) + " MiB",
               "hearth edits and journals files up to that size");
  }
  return text;
}

bool Workspace::Exists(std::string_view path) const {
  int fd = cf::TryOpen(root_fd(), Parts(path), O_PATH);
  if (fd >= 0) ::close(fd);
  return fd >= 0 || fd == -ELOOP;  // ELOOP: a symlink is there
}

std::vector<Workspace::DirEntry> Workspace::ListDir(std::string_view path) const {
  std::vector<std::string> parts = Parts(path);
  cf::Fd dir = cf::Open(root_fd(), parts, O_RDONLY | O_DIRECTORY, path);
  const int dfd = dir.get();
  std::vector<DirEntry> out;
  for (auto& name : ReadDirNames(cf::Fd(::dup(dfd)))) {
    DirEntry e;
    if (auto st = cf::StatAt(dfd, name)) {
      e.kind = S_ISREG(st->st_mode)   ? DirEntry::Kind::kFile
               : S_ISDIR(st->st_mode) ? DirEntry::Kind::kDir
               : S_ISLNK(st->st_mode) ? DirEntry::Kind::kSymlink
                                      : DirEntry::Kind::kOther;
    }
    e.name = std::move(name);
    out.push_back(std::move(e));
  }
  return out;
}

void Workspace::WriteFile(std::string_view path, std::string_view content, Journal* journal) const {
  std::vector<std::string> parts = Parts(path, /*for_write=*/true);
  const std::string shown(path);
  // The directory first (created as needed, no symlink followed), then what is in it: the
  // checks and the write use the same directory descriptor, so nothing can be swapped between.
  cf::Fd dir = cf::OpenParent(root_fd(), parts, /*create=*/true, shown);
  if (auto st = cf::StatAt(dir.get(), parts.back())) {
    if (S_ISLNK(st->st_mode)) {
      ThrowUsage("'" + shown + "' is a symbolic link; hearth does not replace a link with a file",
                 "edit the file it points to by its own path, or remove the link yourself");
    }
    if (S_ISDIR(st->st_mode)) ThrowUsage("'" + shown + "' is a directory", "give a file path");
  }
  if (journal) {
    fs::path abs = root_;
    for (const auto& p : parts) abs /= p;
    journal->Record(abs, cf::Sha256Hex(content));
  }
  cf::ReplaceFile(dir.get(), parts.back(), content, std::nullopt, shown);
}

// ---------------------------------------------------------------- Journal

Journal::Journal(const Workspace& workspace) : ws_(workspace) {}

void Journal::Begin(std::string title) {
  title_ = std::move(title);
  set_.clear();
  files_.clear();
  entries_.clear();
}

void Journal::WriteEntry(const Entry& e) {
  nlohmann::json entry = {{"path", e.rel}, {"existed", e.existed}};
  if (e.existed) entry["mode"] = e.mode;
  if (e.existed) entry["before_sha256"] = e.before_sha256;
  entry["after"] = e.after;
  entry["mac"] =
      EntryMac(key_, ws_, set_, e.name, e.rel, e.existed, e.mode, e.before_sha256, e.after);
  WriteJournalFile(ws_, set_, e.name + ".json", entry.dump());
}

void Journal::Record(const fs::path& absolute, std::string_view after_sha256) {
  std::string rel = ws_.Relative(absolute);
  for (Entry& e : entries_) {
    if (e.rel != rel) continue;
    if (!after_sha256.empty() &&
        std::find(e.after.begin(), e.after.end(), after_sha256) == e.after.end()) {
      e.after.emplace_back(after_sha256);
      WriteEntry(e);
    }
    return;
  }
  std::vector<std::string> parts = ws_.Parts(rel, /*for_write=*/true);
  if (set_.empty()) {
    // The key before anything is written: an edit that cannot be journaled is not made.
    if (key_.empty()) key_ = LoadJournalKey(/*create=*/true).value_or(std::string());
    if (key_.empty()) ThrowIo("cannot load the journal key " + JournalKeyPath().string());
    cf::Fd jdir =
        cf::OpenParent(ws_.root_fd(), JournalPath("x"), /*create=*/true, ".hearth/journal");
    index::IgnoreHearthDir(ws_.root());
    auto sets = ListSets(ws_);
    int64_t next = sets.empty() ? 1 : std::stoll(sets.back()) + 1;
    for (;; ++next) {
      std::string name = SetName(static_cast<int>(next));
      if (::mkdirat(jdir.get(), name.c_str(), 0755) == 0) {
        set_ = name;
        break;
      }
      if (errno != EEXIST)
        ThrowIo("cannot create .hearth/journal/" + name + ": " + ErrnoText(errno));
    }
    nlohmann::json meta = {{"title", title_}, {"created", static_cast<int64_t>(::time(nullptr))}};
    WriteJournalFile(ws_, set_, "meta.json", meta.dump());
    ::fsync(jdir.get());
  }
  Entry e;
  e.name = EntryName(static_cast<int>(entries_.size()) + 1);
  e.rel = rel;
  if (!after_sha256.empty()) e.after.emplace_back(after_sha256);
  int fd = cf::TryOpen(ws_.root_fd(), parts, O_RDONLY | O_NONBLOCK);
  if (fd == -ELOOP) cf::Open(ws_.root_fd(), parts, O_RDONLY, rel);  // throws: a symlink
  if (fd >= 0) {
    cf::Fd file(fd);
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      // The before-bytes first, then the entry that points at them: an entry file never exists
      // without its content.
      const std::string before = ws_.ReadFile(rel);
      WriteJournalFile(ws_, set_, e.name + ".before", before);
      e.before_sha256 = cf::Sha256Hex(before);
      e.existed = true;
      e.mode = static_cast<int>(st.st_mode & 0777);
    }
  }
  WriteEntry(e);
  entries_.push_back(e);
  files_.push_back(rel);
}
void Journal::Commit() {
  if (set_.empty()) return;
  std::vector<std::string> names;
  for (const Entry& e : entries_) names.push_back(e.name + ".json");
  nlohmann::json complete = {{"entries", names}, {"mac", CompleteMac(key_, ws_, set_, names)}};
  WriteJournalFile(ws_, set_, "complete", complete.dump());
  set_.clear();
  entries_.clear();
}

// ---------------------------------------------------------------- undo

namespace {

// One journal entry, validated: whatever a repository ships in .hearth/journal is input.
struct UndoEntry {
  std::string file;  // "0003.json"
  std::string rel;
  std::vector<std::string> parts;
  bool existed = false;
  mode_t mode = 0644;
  std::string before_sha256;
  std::vector<std::string> after;
  std::string mac;
  // What is there now.
  enum class Now { kAbsent, kWritten, kBefore, kChanged } now = Now::kAbsent;
};

UndoEntry ParseEntry(const Workspace& ws, const std::string& set, const std::string& file) {
  const std::string where = ".hearth/journal/" + set + "/" + file;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ReadJournalFile(ws, set, file));
  } catch (const nlohmann::json::exception& e) {
    Corrupt(where, std::string("is not valid JSON: ") + e.what(), set);
  }
  auto bad = [&](const std::string& why) { Corrupt(where, why, set); };
  if (!j.is_object()) bad("is not a JSON object");
  UndoEntry e;
  e.file = file;
  if (!j.contains("path") || !j["path"].is_string()) bad("has no string \"path\"");
  e.rel = j["path"].get<std::string>();
  if (!e.rel.empty() && e.rel.front() == '/')
    bad("names an absolute path the assistant may not write");
  try {
    e.parts = ws.Parts(e.rel, /*for_write=*/true);
  } catch (const Error& err) {
    bad("names a path the assistant may not write: " + err.Describe());
  }
  if (!j.contains("existed") || !j["existed"].is_boolean()) bad("has no boolean \"existed\"");
  e.existed = j["existed"].get<bool>();
  if (j.contains("mode")) {
    if (!j["mode"].is_number_integer()) bad("has a \"mode\" that is not an integer");
    const int64_t m = j["mode"].get<int64_t>();
    if (m < 0 || m > 07777) bad("has an impossible mode " + std::to_string(m));
    if (m & 07000) bad("asks for set-uid, set-gid or sticky permission bits");
    e.mode = static_cast<mode_t>(m);
  }
  if (j.contains("after")) {
    if (!j["after"].is_array()) bad("has an \"after\" that is not an array");
    for (const auto& h : j["after"]) {
      if (!h.is_string() || !IsHex64(h.get<std::string>())) bad("has a malformed hash");
      e.after.push_back(h.get<std::string>());
    }
  }
  if (j.contains("before_sha256")) {
    if (!j["before_sha256"].is_string() || !IsHex64(j["before_sha256"].get<std::string>())) {
      bad("has a malformed \"before_sha256\"");
    }
    e.before_sha256 = j["before_sha256"].get<std::string>();
  }
  if (j.contains("mac") && j["mac"].is_string()) e.mac = j["mac"].get<std::string>();
  return e;
}

// Checks, before anything is touched, that the user's own hearth wrote this entry for this
// workspace and that its `.before` bytes are the ones it saved.
void VerifyEntry(const Workspace& ws, const std::string& key, const std::string& set,
                 const UndoEntry& e) {
  if (e.mac.empty()) NotOurs(set, e.file + " has no MAC");
  const std::string entry = e.file.substr(0, e.file.size() - 5);
  const std::string want = EntryMac(key, ws, set, entry, e.rel, e.existed, static_cast<int>(e.mode),
                                    e.before_sha256, e.after);
  if (!SameMac(e.mac, want)) NotOurs(set, e.file + " does not verify under your journal key");
  if (e.existed && cf::Sha256Hex(ReadJournalFile(ws, set, entry + ".before")) != e.before_sha256) {
    NotOurs(set, entry + ".before is not the content hearth saved");
  }
}

// The `complete` marker: absent (a crash before the end) or a MAC over exactly these entries.
bool VerifyComplete(const Workspace& ws, const std::string& key, const std::string& set,
                    const std::vector<std::string>& names) {
  auto parts = JournalPath(set, "complete");
  int fd = cf::TryOpen(ws.root_fd(), parts, O_PATH);
  if (fd == -ENOENT) return false;
  if (fd >= 0) ::close(fd);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ReadJournalFile(ws, set, "complete"));
  } catch (const nlohmann::json::exception&) {
    NotOurs(set, "its complete marker carries no MAC");
  }
  if (!j.is_object() || !j.contains("mac") || !j["mac"].is_string() ||
      !SameMac(j["mac"].get<std::string>(), CompleteMac(key, ws, set, names))) {
    NotOurs(set, "its complete marker does not verify (entries added or removed?)");
  }
  return true;
}

// Compares the file as it is now with what the assistant wrote (and with what was there before).
void Classify(const Workspace& ws, UndoEntry& e) {
  int fd = cf::TryOpen(ws.root_fd(), e.parts, O_RDONLY | O_NONBLOCK);
  if (fd == -ENOENT || fd == -ENOTDIR) {
    e.now = UndoEntry::Now::kAbsent;  // gone: restoring it loses nothing
    return;
  }
  if (fd < 0) {
    e.now = UndoEntry::Now::kChanged;  // a symlink or something unreadable: not what we wrote
    return;
  }
  cf::Fd file(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    e.now = UndoEntry::Now::kChanged;
    return;
  }
  bool more = false;
  std::string now = cf::ReadFile(ws.root_fd(), e.parts, Workspace::kMaxFileBytes, &more, e.rel);
  const std::string h = more ? std::string() : cf::Sha256Hex(now);
  if (!h.empty() && std::find(e.after.begin(), e.after.end(), h) != e.after.end()) {
    e.now = UndoEntry::Now::kWritten;
  } else if (e.existed && !more) {
    e.now = h == e.before_sha256 ? UndoEntry::Now::kBefore : UndoEntry::Now::kChanged;
  } else {
    e.now = UndoEntry::Now::kChanged;
  }
}

void RestoreEntry(const Workspace& ws, const std::string& set, const UndoEntry& e, bool force,
                  UndoResult& result) {
  cf::Fd dir;
  if (e.existed || e.now != UndoEntry::Now::kAbsent) {
    dir = cf::OpenParent(ws.root_fd(), e.parts, /*create=*/e.existed, e.rel);
  }
  const std::string& leaf = e.parts.back();
  if (e.now == UndoEntry::Now::kChanged && force) {
    std::string aside = cf::RenameAside(dir.get(), leaf, ".hearth-undo-saved");
    std::string rel_dir = e.rel.substr(0, e.rel.size() - leaf.size());
    result.saved.push_back(rel_dir + aside);
  }
  if (e.existed) {
    std::string stem = e.file.substr(0, e.file.size() - 5);
    if (e.now != UndoEntry::Now::kBefore) {
      const std::string before = ReadJournalFile(ws, set, stem + ".before");
      // Verified before anything was touched; checked again for what is written now.
      if (cf::Sha256Hex(before) != e.before_sha256) NotOurs(set, stem + ".before changed");
      cf::ReplaceFile(dir.get(), leaf, before, e.mode, e.rel);
    }
    result.restored.push_back(e.rel);
  } else if (e.now == UndoEntry::Now::kWritten) {
    if (::unlinkat(dir.get(), leaf.c_str(), 0) != 0) {
      ThrowIo("cannot remove '" + e.rel + "': " + ErrnoText(errno));
    }
    ::fsync(dir.get());
    result.removed.push_back(e.rel);
  } else if (e.now == UndoEntry::Now::kChanged) {
    result.removed.push_back(e.rel);  // renamed aside above
  }
}

}  // namespace

UndoResult UndoLast(const Workspace& ws, const UndoOptions& options) {
  UndoResult result;
  auto sets = ListSets(ws);
  for (auto it = sets.rbegin(); it != sets.rend(); ++it) {
    const std::string& set = *it;
    cf::Fd dir =
        cf::Open(ws.root_fd(), JournalPath(set), O_RDONLY | O_DIRECTORY, ".hearth/journal/" + set);
    if (cf::StatAt(dir.get(), "undone")) continue;
    std::vector<UndoEntry> entries;
    for (const auto& n : ReadDirNames(std::move(dir))) {
      if (n.size() == 9 && n.ends_with(".json") && AllDigits(n.substr(0, 4))) {
        entries.push_back(ParseEntry(ws, set, n));
      }
    }
    if (entries.empty()) continue;  // interrupted before its first entry: nothing was written
    // Only the user's own journal is acted on. No key: this user never journaled anything.
    const std::optional<std::string> key = LoadJournalKey(/*create=*/false);
    if (!key) NotOurs(set, "you have no journal key (" + JournalKeyPath().string() + ")");
    std::vector<std::string> names;
    for (const UndoEntry& e : entries) names.push_back(e.file);  // sorted by ReadDirNames
    for (const UndoEntry& e : entries) VerifyEntry(ws, *key, set, e);
    const bool complete = VerifyComplete(ws, *key, set, names);
    std::sort(entries.begin(), entries.end(),
              [](const UndoEntry& a, const UndoEntry& b) { return a.file > b.file; });
    result.change_set = set;
    result.was_complete = complete;
    try {
      result.title =
          nlohmann::json::parse(ReadJournalFile(ws, set, "meta.json")).value("title", "");
    } catch (const std::exception&) {
      // meta.json is informational; a set interrupted while writing it is still undone.
    }
    // Every file is checked before any is touched: undo either goes through or changes nothing.
    std::string changed;
    for (UndoEntry& e : entries) {
      Classify(ws, e);
      if (e.now == UndoEntry::Now::kChanged) changed += (changed.empty() ? "" : ", ") + e.rel;
    }
    if (!changed.empty() && !options.force) {
      ThrowIo("not undoing change set " + set + ": " + changed +
                  " changed after the assistant wrote it (undo would destroy that work)",
              "keep your version, or run `hearth undo --force` to save it as "
              "FILE.hearth-undo-saved and restore the state before the assistant's change");
    }
    for (const UndoEntry& e : entries) RestoreEntry(ws, set, e, options.force, result);
    WriteJournalFile(ws, set, "undone", "");
    result.undone = true;
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
