#include "base/read_file.h"

#include <filesystem>
#include <fstream>

#include "base/error.h"

namespace hearth {

std::string ReadWholeFile(const std::string& path, std::string_view what, std::uintmax_t max_bytes,
                          std::string_view too_large) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    ThrowIo("'" + path + "' is a directory, not " + std::string(what));
  }
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) ThrowIo("cannot read '" + path + "': " + ec.message(), "check the path");
  if (size > max_bytes) {
    ThrowInvalidInput("'" + path + "' is " + std::to_string(size >> 20) + " MiB; " +
                      std::string(too_large));
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    ThrowIo("cannot read '" + path + "'", "check the path and its permissions");
  }
  return bytes;
}

}  // namespace hearth
