// A read-only memory map of a whole file. Model weights stay mapped (never copied), so a loaded
// model costs page cache, not heap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hearth {

class MappedFile {
 public:
  // Maps `path` read-only. Throws Error(kIo) naming the file when it cannot be opened or mapped.
  static MappedFile Open(const std::string& path);
  // Wraps a copy of `bytes` (for tests and fuzzing: same interface, no file).
  static MappedFile FromBytes(std::span<const uint8_t> bytes, std::string name = "<memory>");

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

  // Says that [begin, begin + n) (inside the file) will not be read again: its whole pages leave
  // this process's resident set. They stay in the page cache and are read back if touched again.
  // A no-op for FromBytes copies, whose memory this must not discard.
  void DropPages(const void* begin, size_t n) const;

 private:
  void Release();

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool is_mmap_ = false;
  std::vector<uint8_t> owned_;  // used by FromBytes
  std::string path_;
};

}  // namespace hearth
