#include "base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "base/error.h"

namespace hearth {

MappedFile MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    ThrowIo("cannot open '" + path + "': " + ErrnoText(err), "check the path and its permissions");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    ThrowIo("'" + path + "' is not a regular file", "pass a file, not a directory or device");
  }
  MappedFile file;
  file.path_ = path;
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ > 0) {
    void* p = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      ThrowIo("cannot map '" + path + "': " + ErrnoText(err), "is the file on a local disk?");
    }
    file.data_ = static_cast<const uint8_t*>(p);
    file.is_mmap_ = true;
  }
  ::close(fd);
  return file;
}

MappedFile MappedFile::FromBytes(std::span<const uint8_t> bytes, std::string name) {
  MappedFile file;
  file.owned_.assign(bytes.begin(), bytes.end());
  file.data_ = file.owned_.data();
  file.size_ = file.owned_.size();
  file.path_ = std::move(name);
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    Release();
    is_mmap_ = std::exchange(other.is_mmap_, false);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
    owned_ = std::move(other.owned_);
    data_ = is_mmap_ ? std::exchange(other.data_, nullptr) : owned_.data();
    other.data_ = nullptr;
  }
  return *this;
}

MappedFile::~MappedFile() { Release(); }

void MappedFile::DropPages(const void* begin, size_t n) const {
  const auto b = reinterpret_cast<uintptr_t>(begin);
  const auto base = reinterpret_cast<uintptr_t>(data_);
  if (!is_mmap_ || data_ == nullptr || b < base || b + n > base + size_ || n == 0) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (b + page - 1) / page * page;  // whole pages only: a neighbour's
  const uintptr_t last = (b + n) / page * page;          // bytes may share the edge pages
  if (first < last) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void MappedFile::Release() {
  if (is_mmap_ && data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  is_mmap_ = false;
}

}  // namespace hearth
