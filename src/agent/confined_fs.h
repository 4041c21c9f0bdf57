// The one way the assistant touches files (internal to src/agent; workspace.h is the public face).
// Every path is resolved relative to a directory file descriptor of the workspace root and never
// through a symbolic link: with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) where the kernel
// has it (Linux >= 5.6), otherwise by an openat(O_NOFOLLOW) walk one component at a time. So a
// symlink planted in the repository, or a directory swapped for a symlink between a check and a
// write, can never lead a read or a write out of the root: there is no check-then-use window.
// Files are replaced through an exclusively created temp file with a random name in the same
// directory (O_CREAT|O_EXCL|O_NOFOLLOW) and renameat; a symlink at the target is refused, never
// replaced.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::agent::confined {

// An owned file descriptor (closed on destruction).
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_ = -1;
};

// Whether openat2 is used (false after it answered ENOSYS, or when forced off by the test hook
// ForceWalkFallback or by the environment variable HEARTH_FS_NO_OPENAT2=1). Both ways give the
// same answers; the tests run both.
bool UsesOpenat2();
void ForceWalkFallback(bool on);

// The components of a root-relative path ("a/b/c" -> {"a","b","c"}; "." and empty components
// dropped). Throws Error(kUsage) naming `shown` for an empty path, a NUL byte, or a ".." component.
std::vector<std::string> Split(std::string_view rel, std::string_view shown);

// What may be written: never a path with a ".git" component at any depth (any letter case: a
// nested repository's hooks are code too), never the root itself, and never inside ".hearth/"
// unless `internal` (hearth's own journal). Throws Error(kUsage) naming `shown`.
void CheckWritable(const std::vector<std::string>& parts, std::string_view shown, bool internal);

// Opens `parts` beneath `root_fd` with `flags` (O_NOFOLLOW and O_CLOEXEC are added); no symlink
// is followed at any component. Returns the descriptor, or -errno: ELOOP or ENOTDIR (in the
// fallback) when a component is a symlink, ENOENT, EACCES, ...
int TryOpen(int root_fd, const std::vector<std::string>& parts, int flags, mode_t mode = 0);

// TryOpen, throwing Error(kIo) (kUsage for a symlink) with a message naming `shown`.
Fd Open(int root_fd, const std::vector<std::string>& parts, int flags, std::string_view shown);

// The directory holding the last component of `parts`, opened O_RDONLY|O_DIRECTORY; missing
// directories are created (mkdirat, 0755) when `create`. Throws like Open.
Fd OpenParent(int root_fd, const std::vector<std::string>& parts, bool create,
              std::string_view shown);

// What is at `name` in `dir_fd`, without following a symlink; nullopt when nothing is.
std::optional<struct stat> StatAt(int dir_fd, const std::string& name);

// Reads a regular file opened beneath the root: refuses directories, FIFOs, devices and sockets
// (the open is O_NONBLOCK, so a FIFO cannot hang it) and symlinks. At most `max_bytes` are read;
// `truncated` (when given) says whether there was more. Throws Error(kIo)/kUsage naming `shown`.
std::string ReadFile(int root_fd, const std::vector<std::string>& parts, size_t max_bytes,
                     bool* truncated, std::string_view shown);

// Replaces (or creates) `name` in `dir_fd` with `content` atomically and durably: a temp file
// with a random name created exclusively beside it, written, chmod'ed to `mode` (default: the
// old file's permission bits, 0644 for a new file; set-uid/set-gid/sticky never carried over),
// fsync'ed, renamed over `name` with renameat, then the directory fsync'ed. Refuses (Error kUsage)
// when `name` is a symlink, a directory or another non-regular file.
void ReplaceFile(int dir_fd, const std::string& name, std::string_view content,
                 std::optional<mode_t> mode, std::string_view shown);

// Renames `name` in `dir_fd` to `name + suffix` (or `name + suffix + ".N"` when that exists),
// never replacing anything; returns the name used. Throws Error(kIo).
std::string RenameAside(int dir_fd, const std::string& name, const std::string& suffix);

// Hex SHA-256 of `bytes` (what the journal records of each write).
std::string Sha256Hex(std::string_view bytes);

// Invalid UTF-8 bytes of `text` replaced by the four characters "\xNN" (so that tool results
// are always valid UTF-8 JSON); valid text is returned unchanged.
std::string EscapeInvalidUtf8(std::string_view text);

}  // namespace hearth::agent::confined
