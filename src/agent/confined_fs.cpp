#include "agent/confined_fs.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/display.h"
#include "base/error.h"

namespace hearth::agent::confined {

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

namespace {

// -1: not decided yet, 0: the walk, 1: openat2.
std::atomic<int> g_openat2{-1};

std::string Shown(std::string_view s) {
  return std::string(s.substr(0, std::min<size_t>(s.size(), 200)));
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out.empty() ? "." : out;
}

int Openat2(int root_fd, const std::vector<std::string>& parts, int flags, mode_t mode) {
#ifdef SYS_openat2
  open_how how{};
  how.flags = static_cast<uint64_t>(flags);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const std::string path = Join(parts);
  for (int tries = 0;; ++tries) {
    const int64_t fd = ::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    // EAGAIN: a concurrent rename raced the lookup; retried a bounded number of times so that a
    // process renaming in a loop cannot keep hearth spinning.
    if ((errno == EINTR || errno == EAGAIN) && tries < 64) continue;
    return -errno;
  }
#else
  (void)root_fd, (void)parts, (void)flags, (void)mode;
  return -ENOSYS;
#endif
}

// One component at a time: every directory on the way is opened O_NOFOLLOW|O_DIRECTORY relative
// to the one before, so a symlink anywhere fails the open instead of being followed.
int WalkOpen(int root_fd, const std::vector<std::string>& parts, int flags, mode_t mode) {
  if (parts.empty()) {
    int fd = ::openat(root_fd, ".", flags, mode);
    return fd >= 0 ? fd : -errno;
  }
  Fd cur;
  int at = root_fd;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    int fd = ::openat(at, parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      struct stat st;
      if (err == ENOTDIR && ::fstatat(at, parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode)) {
        err = ELOOP;
      }
      return -err;
    }
    cur = Fd(fd);
    at = fd;
  }
  int fd = ::openat(at, parts.back().c_str(), flags, mode);
  return fd >= 0 ? fd : -errno;
}

[[noreturn]] void ThrowOpenError(int err, std::string_view shown) {
  const std::string s = Shown(shown);
  switch (err) {
    case ELOOP:
      ThrowUsage("'" + s + "' is or passes through a symbolic link, which the assistant never " +
                     "follows",
                 "use the path of the link's target inside the repository");
    case EXDEV:
      ThrowUsage("'" + s + "' leaves the workspace", "use a path inside the repository");
    case ENOENT:
      ThrowIo("'" + s + "' does not exist", "check the path with list_dir");
    case ENOTDIR:
      ThrowIo("a parent of '" + s + "' is not a directory", "check the path with list_dir");
    default:
      ThrowIo("cannot open '" + s + "': " + ErrnoText(err));
  }
}

bool WriteAll(int fd, std::string_view content) {
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string RandomHex() {
  unsigned char b[8];
  if (::getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b)) {
    // Not cryptographic, only unpredictable enough; the O_EXCL create is what makes it safe.
    uint64_t x = static_cast<uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull ^
                 static_cast<uint64_t>(reinterpret_cast<uintptr_t>(&b));
    std::memcpy(b, &x, sizeof b);
  }
  char out[17];
  for (size_t i = 0; i < 8; ++i) std::snprintf(out + 2 * i, 3, "%02x", b[i]);
  return out;
}

}  // namespace

bool UsesOpenat2() {
  int v = g_openat2.load();
  if (v < 0) {
    const char* env = std::getenv("HEARTH_FS_NO_OPENAT2");
    v = (env != nullptr && std::strcmp(env, "1") == 0) ? 0 : 1;
    g_openat2.store(v);
  }
  return v == 1;
}

void ForceWalkFallback(bool on) { g_openat2.store(on ? 0 : 1); }

std::vector<std::string> Split(std::string_view rel, std::string_view shown) {
  auto reject = [&](const std::string& why) {
    ThrowUsage("path '" + Shown(shown) + "' " + why, "use a path relative to the repository root");
  };
  if (rel.find('\0') != std::string_view::npos) reject("contains a NUL byte");
  if (!rel.empty() && rel.front() == '/') reject("is absolute");
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t slash = rel.find('/', start);
    if (slash == std::string_view::npos) slash = rel.size();
    std::string_view part = rel.substr(start, slash - start);
    if (part == "..") reject("leaves the workspace (contains '..')");
    if (!part.empty() && part != ".") parts.emplace_back(part);
    start = slash + 1;
  }
  return parts;
}

void CheckWritable(const std::vector<std::string>& parts, std::string_view shown, bool internal) {
  auto reject = [&](const std::string& why) {
    ThrowUsage("path '" + Shown(shown) + "' " + why, "write files of the project, not git's");
  };
  if (parts.empty()) reject("is the workspace root itself");
  for (const auto& p : parts) {
    if (strcasecmp(p.c_str(), ".git") == 0) {
      reject(
          "is inside a .git directory, which the assistant never writes (at any depth: a "
          "nested repository's hooks run code too)");
    }
  }
  if (!internal && parts.front() == ".hearth") {
    reject("is inside .hearth, which the assistant never writes");
  }
}

int TryOpen(int root_fd, const std::vector<std::string>& parts, int flags, mode_t mode) {
  flags |= O_NOFOLLOW | O_CLOEXEC;
  int fd = -ENOSYS;
  if (UsesOpenat2()) {
    fd = Openat2(root_fd, parts, flags, mode);
    if (fd == -ENOSYS) g_openat2.store(0);  // an old kernel: walk from now on
  }
  if (fd == -ENOSYS) fd = WalkOpen(root_fd, parts, flags, mode);
  if (fd == -ENOTDIR) {
    // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: report a link as a link. (Only the
    // message depends on this lookup, which may follow links; nothing is opened through it.)
    std::string prefix;
    for (const auto& p : parts) {
      prefix += (prefix.empty() ? "" : "/") + p;
      struct stat st;
      if (::fstatat(root_fd, prefix.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) break;
      if (S_ISLNK(st.st_mode)) return -ELOOP;
    }
  }
  if (fd >= 0 && (flags & O_PATH)) {
    // O_PATH|O_NOFOLLOW opens a trailing symlink itself instead of failing: refuse it here.
    struct stat st;
    if (::fstat(fd, &st) != 0 || S_ISLNK(st.st_mode)) {
      ::close(fd);
      return -ELOOP;
    }
  }
  return fd;
}

Fd Open(int root_fd, const std::vector<std::string>& parts, int flags, std::string_view shown) {
  int fd = TryOpen(root_fd, parts, flags);
  if (fd < 0) ThrowOpenError(-fd, shown);
  return Fd(fd);
}

Fd OpenParent(int root_fd, const std::vector<std::string>& parts, bool create,
              std::string_view shown) {
  std::vector<std::string> dir(parts.begin(), parts.end() - (parts.empty() ? 0 : 1));
  const int flags = O_RDONLY | O_DIRECTORY;
  int fd = TryOpen(root_fd, dir, flags);
  if (fd >= 0) return Fd(fd);
  if (fd != -ENOENT || !create) ThrowOpenError(-fd, shown);
  // Create what is missing one directory at a time, each opened O_NOFOLLOW from its parent.
  Fd cur(::openat(root_fd, ".", flags | O_CLOEXEC));
  if (!cur.valid()) ThrowOpenError(errno, shown);
  for (const auto& name : dir) {
    if (::mkdirat(cur.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
      ThrowIo("cannot create directory '" + name + "' for '" + Shown(shown) +
              "': " + ErrnoText(errno));
    }
    int next = ::openat(cur.get(), name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      int err = errno;
      struct stat st;
      if (::fstatat(cur.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode)) {
        err = ELOOP;
      }
      ThrowOpenError(err, shown);
    }
    cur = Fd(next);
  }
  return cur;
}

std::optional<struct stat> StatAt(int dir_fd, const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
  return st;
}

std::string ReadFile(int root_fd, const std::vector<std::string>& parts, size_t max_bytes,
                     bool* truncated, std::string_view shown) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  Fd fd = Open(root_fd, parts, O_RDONLY | O_NONBLOCK, shown);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) ThrowIo("cannot stat '" + Shown(shown) + "'");
  if (S_ISDIR(st.st_mode)) {
    ThrowUsage("'" + Shown(shown) + "' is a directory", "use list_dir for directories");
  }
  if (!S_ISREG(st.st_mode)) {
    ThrowUsage("'" + Shown(shown) + "' is not a regular file (a FIFO, device or socket)",
               "the assistant reads only regular files");
  }
  std::string out;
  out.reserve(std::min<uint64_t>(static_cast<uint64_t>(st.st_size), max_bytes));
  char buf[65536];
  bool more = false;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowIo("cannot read '" + Shown(shown) + "': " + ErrnoText(errno));
    }
    if (n == 0) break;
    size_t take = std::min(static_cast<size_t>(n), max_bytes - out.size());
    out.append(buf, take);
    if (take < static_cast<size_t>(n)) {
      more = true;
      break;
    }
  }
  if (truncated) *truncated = more;
  return out;
}

void ReplaceFile(int dir_fd, const std::string& name, std::string_view content,
                 std::optional<mode_t> mode, std::string_view shown) {
  mode_t m = 0644;
  if (auto st = StatAt(dir_fd, name)) {
    if (S_ISLNK(st->st_mode)) {
      ThrowUsage("'" + Shown(shown) + "' is a symbolic link; hearth does not replace a link " +
                     "with a file",
                 "edit the file it points to by its own path, or remove the link yourself");
    }
    if (S_ISDIR(st->st_mode)) ThrowUsage("'" + Shown(shown) + "' is a directory", "give a file");
    if (!S_ISREG(st->st_mode)) {
      ThrowUsage("'" + Shown(shown) + "' is not a regular file (a FIFO, device or socket)",
                 "the assistant writes only regular files");
    }
    m = st->st_mode & 0777;
  }
  if (mode) m = *mode & 0777;
  // A fresh random name created exclusively: nothing planted in the directory (a symlink named
  // like the temp file) can be opened, truncated or followed in its place.
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 32 && fd < 0; ++attempt) {
    // Formatted, not concatenated: GCC 12 warns falsely (-Wrestrict) on "." + std::string at -O3.
    char buf[300];
    std::snprintf(buf, sizeof buf, ".%.200s.hearth-tmp-%s", name.c_str(), RandomHex().c_str());
    tmp = buf;
    fd = ::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      ThrowIo("cannot create a temp file beside '" + Shown(shown) + "': " + ErrnoText(errno));
    }
  }
  if (fd < 0) ThrowIo("cannot create a temp file beside '" + Shown(shown) + "'");
  Fd file(fd);
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    ThrowIo("cannot " + what + " '" + Shown(shown) + "': " + ErrnoText(err));
  };
  if (!WriteAll(file.get(), content)) fail("write");
  if (::fchmod(file.get(), m) != 0) fail("set the permissions of");
  if (::fsync(file.get()) != 0) fail("sync");
  if (::close(file.release()) != 0) fail("close");
  if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) fail("replace");
  if (::fsync(dir_fd) != 0) ThrowIo("cannot sync the directory of '" + Shown(shown) + "'");
}

std::string RenameAside(int dir_fd, const std::string& name, const std::string& suffix) {
  for (int n = 1; n < 1000; ++n) {
    std::string aside = name + suffix;
    if (n > 1) aside.append(".").append(std::to_string(n));
    if (::renameat2(dir_fd, name.c_str(), dir_fd, aside.c_str(), RENAME_NOREPLACE) == 0) {
      ::fsync(dir_fd);
      return aside;
    }
    if (errno != EEXIST) ThrowIo("cannot rename '" + name + "' aside: " + ErrnoText(errno));
  }
  ThrowIo("cannot rename '" + name + "' aside: too many saved copies",
          "remove old " + name + suffix + " files");
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    ThrowIo("SHA-256 is unavailable (OpenSSL)");
  }
  std::string out(2 * static_cast<size_t>(len), '0');
  for (size_t i = 0; i < len; ++i) std::snprintf(&out[2 * i], 3, "%02x", md[i]);
  return out;
}

std::string EscapeInvalidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    // The one UTF-8 validity rule (base/display.h): overlong forms, surrogates and code points
    // past U+10FFFF are invalid too.
    if (const size_t len = Utf8SequenceLength(s, i); len > 0) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02X", static_cast<unsigned char>(s[i]));
      out += esc;
      ++i;
    }
  }
  return out;
}

}  // namespace hearth::agent::confined
