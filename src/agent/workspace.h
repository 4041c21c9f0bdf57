// The assistant's view of the repository: a root directory every path is confined to, an edit
// journal that makes every write undoable, and cheap snapshots that detect what a command changed.
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

  // Maps a path the model gave (relative to the root, or absolute inside it) to an absolute path
  // inside the root. Rejects, with Error(kUsage) naming the path: empty paths, `..` components,
  // absolute paths outside the root, NUL bytes, and paths whose existing part resolves (through
  // symlinks) outside the root. `for_write` additionally refuses `.git/` and `.hearth/`.
  std::filesystem::path Resolve(std::string_view path, bool for_write = false) const;
  // Root-relative form of an absolute path inside the root ("." for the root).
  std::string Relative(const std::filesystem::path& absolute) const;

  // Whole file contents; Error(kIo) when unreadable, Error(kUsage) when outside the root.
  std::string ReadFile(std::string_view path) const;
  bool Exists(std::string_view path) const;
  // Writes `content` atomically (temp file, fsync, rename, fsync of the directory), creating
  // parent directories. When `journal` is given, the file's previous state is journaled durably
  // first, so the write can always be undone.
  void WriteFile(std::string_view path, std::string_view content, Journal* journal) const;

 private:
  explicit Workspace(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;
};

// Writes `content` to `path` durably: temp file in the same directory, fsync, rename, fsync of
// the directory. Throws Error(kIo).
void WriteFileDurably(const std::filesystem::path& path, std::string_view content);

// The edit journal under ROOT/.hearth/journal/. A change set is a directory
// `NNNNNN/` holding one entry per file written (`EEEE.json` with the path and whether it existed,
// `EEEE.before` with its previous bytes), each made durable before the file is touched, and a
// `complete` marker written when the set is closed. A set without the marker (a crash in the
// middle) is still undoable: restoring a file that was never written is harmless.
class Journal {
 public:
  explicit Journal(const Workspace& workspace);

  // Starts a new change set described by `title` (created lazily on the first Record).
  void Begin(std::string title);
  // Journals `absolute`'s current state (content or "did not exist") before it is written. The
  // first record per file and change set counts; later ones are no-ops.
  void Record(const std::filesystem::path& absolute);
  // Marks the current change set complete (no-op when nothing was recorded).
  void Commit();
  // Files recorded in the current change set (root-relative).
  const std::vector<std::string>& files() const { return files_; }

 private:
  const Workspace& ws_;
  std::string title_;
  std::filesystem::path dir_;  // current change set, empty until the first Record
  std::vector<std::string> files_;
  int entries_ = 0;
};

struct UndoResult {
  bool undone = false;     // false: no change set to undo
  std::string change_set;  // its directory name
  std::string title;
  bool was_complete = true;           // false: it was interrupted (crash) before its end
  std::vector<std::string> restored;  // files given back their previous content
  std::vector<std::string> removed;   // files that did not exist before and were deleted
};
// Restores the newest change set that has not been undone, newest entry first, then marks it
// undone. Works without git. Throws Error(kIo) when a file cannot be restored (the set stays
// undoable).
UndoResult UndoLast(const Workspace& workspace);

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
