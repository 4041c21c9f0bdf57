#include "agent/journal_key.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>

#include "agent/config.h"
#include "base/error.h"

namespace hearth::agent {
namespace fs = std::filesystem;

namespace {

constexpr size_t kKeyBytes = 32;

[[noreturn]] void BadKey(const fs::path& path, const std::string& why) {
  ThrowUsage("refusing the journal key " + path.string() + ": " + why,
             "remove it (hearth creates a new one; earlier change sets can then no longer be "
             "undone) or fix its owner and mode (chmod 600)");
}

// Reads the key through a descriptor that never followed a symlink, after checking what it is.
std::optional<std::string> ReadKey(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return std::nullopt;
    }
    if (errno == ELOOP) {
      BadKey(path, "it is a symbolic link");
    }
    ThrowIo("cannot open the journal key " + path.string() + ": " + ErrnoText(errno));
  }
  struct stat st;
  std::string key(kKeyBytes + 1, '\0');
  ssize_t n = -1;
  const bool stat_ok = ::fstat(fd, &st) == 0;
  if (stat_ok && S_ISREG(st.st_mode) && st.st_uid == ::geteuid() && (st.st_mode & 077) == 0) {
    n = ::read(fd, key.data(), key.size());
  }
  ::close(fd);
  if (!stat_ok) {
    ThrowIo("cannot stat the journal key " + path.string());
  }
  if (!S_ISREG(st.st_mode)) {
    BadKey(path, "it is not a regular file");
  }
  if (st.st_uid != ::geteuid()) {
    BadKey(path, "it is not owned by you");
  }
  if ((st.st_mode & 077) != 0) {
    BadKey(path, "group or others may read or write it");
  }
  if (n != static_cast<ssize_t>(kKeyBytes)) {
    BadKey(path, "it is not 32 bytes long");
  }
  key.resize(kKeyBytes);
  return key;
}

// Creates the key: random bytes into an exclusively created temp file (O_CREAT|O_EXCL|O_NOFOLLOW,
// 0600), made durable, then published with link(), which fails rather than replace an existing
// name: two processes racing both end up using the one key that won, and a crash never leaves a
// short key under the real name.
void CreateKey(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) {
    ThrowIo("cannot create " + path.parent_path().string() +
            " for the journal key: " + ec.message());
  }
  unsigned char key[kKeyBytes];
  if (::getrandom(key, sizeof key, 0) != static_cast<ssize_t>(sizeof key)) {
    ThrowIo("cannot get random bytes for the journal key: " + ErrnoText(errno));
  }
  uint64_t nonce = 0;  // the temp file's name must not reveal any byte of the key
  if (::getrandom(&nonce, sizeof nonce, 0) != static_cast<ssize_t>(sizeof nonce)) {
    ThrowIo("cannot get random bytes for the journal key: " + ErrnoText(errno));
  }
  const fs::path tmp = path.parent_path() / (".journal.key.tmp-" + std::to_string(::getpid()) +
                                             "-" + std::to_string(nonce));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    ThrowIo("cannot create the journal key " + tmp.string() + ": " + ErrnoText(errno));
  }
  const bool ok =
      ::write(fd, key, sizeof key) == static_cast<ssize_t>(sizeof key) && ::fsync(fd) == 0;
  const int write_errno = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    ThrowIo("cannot write the journal key " + tmp.string() + ": " + ErrnoText(write_errno));
  }
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && link_errno != EEXIST) {
    ThrowIo("cannot create the journal key " + path.string() + ": " + ErrnoText(link_errno));
  }
  int dfd = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace

fs::path JournalKeyPath() {
  const fs::path dir = UserConfigDir();  // the same directory as the user's config and trust
  return dir.empty() ? dir : dir / "journal.key";
}

std::optional<std::string> LoadJournalKey(bool create) {
  const fs::path path = JournalKeyPath();
  if (path.empty()) {
    ThrowUsage("no user config directory for the journal key",
               "set HOME or XDG_CONFIG_HOME (the key binds the edit journal to you)");
  }
  if (auto key = ReadKey(path)) {
    return key;
  }
  if (!create) {
    return std::nullopt;
  }
  CreateKey(path);
  return ReadKey(path);
}

std::string HmacSha256Hex(std::string_view key, std::string_view message) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), md,
           &len) == nullptr) {
    ThrowIo("HMAC-SHA256 is unavailable (OpenSSL)");
  }
  std::string out(2 * static_cast<size_t>(len), '0');
  for (size_t i = 0; i < len; ++i) {
    std::snprintf(&out[2 * i], 3, "%02x", md[i]);
  }
  return out;
}

}  // namespace hearth::agent
