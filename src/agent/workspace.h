// The assistant's view of the repository: a root directory every path is confined to, an edit
// journal that makes every write undoable, and cheap snapshots that detect what a command changed.
// Every read, listing and write goes through a directory file descriptor of the root and never
// follows a symbolic link (confined_fs.h), so neither a planted symlink nor a directory swapped
// for one between a check and a write can lead outside.
//
//   agent::Workspace ws = agent::Workspace::Open(".");      // nearest .git or .hearth upwards
//   agent::Journal journal(ws);
//   journal.Begin("ask: make it async");
//   ws.WriteFile("src/a.cc", text, &journal);                // before-content journaled first
//   journal.Commit();
//   agent::UndoLast(ws);                                     // restores the change set
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::agent {

class Journal;

class Workspace {
 public:
  // The workspace whose root is the nearest directory at or above `start` holding `.git` or
  // `.hearth`, or `start` itself when none does. Throws Error(kUsage) when `start` is no directory.
  static Workspace Open(const std::filesystem::path& start);
  // Exactly `root` (--root). Throws Error(kUsage) when it is no directory.
  static Workspace AtRoot(const std::filesystem::path& root);

  const std::filesystem::path& root() const { return root_; }  // canonical, absolute
  int root_fd() const;  // an O_PATH descriptor of the root, open as long as the Workspace

  // Maps a path the model gave (relative to the root, or absolute inside it) to an absolute path
  // inside the root. Rejects, with Error(kUsage) naming the path: empty paths, `..` components,
  // absolute paths outside the root, NUL bytes, and paths whose existing part resolves (through
  // symlinks) outside the root. `for_write` additionally refuses any `.git` component (at any
  // depth) and `.hearth/`. For showing and checking only: files are opened by the calls below.
  std::filesystem::path Resolve(std::string_view path, bool for_write = false) const;
  // The root-relative components of a path the model gave (lexical checks of Resolve; for_write:
  // no `.git` component at any depth, not `.hearth/`, not the root). Error(kUsage).
  std::vector<std::string> Parts(std::string_view path, bool for_write = false) const;
  // Root-relative form of an absolute path inside the root ("." for the root).
  std::string Relative(const std::filesystem::path& absolute) const;

  // A regular file's contents, opened beneath the root without following any symlink. Refuses
  // directories, FIFOs, devices and sockets (Error kUsage) and links. With `truncated`, at most
  // `max_bytes` are read and *truncated says whether there was more; without it a file longer
  // than `max_bytes` is an error (an edit must never work on a cut copy).
  static constexpr size_t kMaxFileBytes = 64u << 20;
  std::string ReadFile(std::string_view path, size_t max_bytes = kMaxFileBytes,
                       bool* truncated = nullptr) const;
  // Whether anything (a file, a directory, even a symlink) is at `path`.
  bool Exists(std::string_view path) const;
  // The entries of a directory (not "." and ".."), sorted by name; symlinks are listed as such,
  // never followed.
  struct DirEntry {
    std::string name;
    enum class Kind { kFile, kDir, kSymlink, kOther } kind = Kind::kOther;
  };
  std::vector<DirEntry> ListDir(std::string_view path) const;
  // Writes `content` atomically (a temp file with a random name created exclusively beside it,
  // fsync, renameat, fsync of the directory), creating parent directories. Refuses a symlink (or
  // a directory, FIFO, ...) at `path` instead of replacing it. When `journal` is given, the
  // file's previous state and the hash of `content` are journaled durably first, so the write can
  // always be undone.
  void WriteFile(std::string_view path, std::string_view content, Journal* journal) const;

 private:
  explicit Workspace(std::filesystem::path root);
  std::filesystem::path root_;
  std::shared_ptr<const int> root_fd_;  // closed when the last copy goes
};

// The edit journal under ROOT/.hearth/journal/ (written, read and listed through the same
// confined layer as the assistant's files, so a planted symlink there leads nowhere). A change
// set is a directory `NNNNNN/` holding one entry per file written (`EEEE.json`: the path,
// whether it existed, its permission bits, and the SHA-256 of every content the assistant wrote
// to it; `EEEE.before`: its previous bytes), each made durable before the file is touched, and a
// `complete` marker written when the set is closed. A set without the marker (a crash in the
// middle) is still undoable: restoring a file that was never written is harmless.
class Journal {
 public:
  explicit Journal(const Workspace& workspace);

  // Starts a new change set described by `title` (created lazily on the first Record).
  void Begin(std::string title);
  // Journals `absolute`'s current state (content or "did not exist") before it is written, with
  // `after_sha256`, the hash of what is about to be written (empty: unknown). The first record
  // per file and change set keeps the before state; later ones add their hash.
  void Record(const std::filesystem::path& absolute, std::string_view after_sha256 = {});
  // Marks the current change set complete (no-op when nothing was recorded).
  void Commit();
  // Files recorded in the current change set (root-relative).
  const std::vector<std::string>& files() const { return files_; }

 private:
  struct Entry {
    std::string name;  // "0001"
    std::string rel;
    bool existed = false;
    int mode = 0;
    std::vector<std::string> after;  // hashes of the contents written
  };
  void WriteEntry(const Entry& e);

  const Workspace& ws_;
  std::string title_;
  std::string set_;  // current change set ("000007"), empty until the first Record
  std::vector<std::string> files_;
  std::vector<Entry> entries_;
};

struct UndoOptions {
  // Also restore files changed since the assistant wrote them; the user's version of each is
  // first renamed to FILE.hearth-undo-saved (never overwriting an earlier saved copy).
  bool force = false;
};
struct UndoResult {
  bool undone = false;     // false: no change set to undo
  std::string change_set;  // its directory name
  std::string title;
  bool was_complete = true;           // false: it was interrupted (crash) before its end
  std::vector<std::string> restored;  // files given back their previous content
  std::vector<std::string> removed;   // files that did not exist before and were deleted
  std::vector<std::string> saved;     // with force: "FILE.hearth-undo-saved" copies made
};
// Restores the newest change set that has not been undone, newest entry first, then marks it
// undone. Works without git. Before touching anything it checks every file against the hashes
// the journal recorded: a file changed since the assistant wrote it (or a file it created that
// was edited since) is the user's work, so without `force` nothing is undone and Error(kIo)
// names those files. A malformed or planted entry (bad id, type, path, set-uid/set-gid/sticky
// mode, a symlink in the journal) is Error(kInvalidInput). Throws Error(kIo) when a file cannot
// be restored (the set stays undoable).
UndoResult UndoLast(const Workspace& workspace, const UndoOptions& options = {});

// A cheap picture of the workspace's files (relative path -> mtime, size) as the index walker
// sees them: .git, .hearth and everything .gitignore / .hearthignore exclude are skipped (build
// outputs are not source changes); at most `max_files` entries. Compared before and after a
// command to report what it changed.
struct FileStamp {
  int64_t mtime_ns = 0;
  uint64_t size = 0;
  bool operator==(const FileStamp&) const = default;
};
struct Snapshot {
  std::map<std::string, FileStamp> files;
  bool truncated = false;  // more than max_files: changes past the limit are not seen
};
Snapshot TakeSnapshot(const Workspace& workspace, size_t max_files = 50000);
struct SnapshotDiff {
  std::vector<std::string> added, removed, modified;
  bool empty() const { return added.empty() && removed.empty() && modified.empty(); }
  std::string Describe() const;  // "modified: a, b; added: c" or "no files changed"
};
SnapshotDiff Compare(const Snapshot& before, const Snapshot& after);

}  // namespace hearth::agent
