#include "base/read_file.h"

#include <filesystem>
#include <fstream>

#include "base/error.h"

namespace hearth {

namespace {

[[noreturn]] void ThrowTooLarge(const std::string& path, std::uintmax_t size,
                                std::string_view too_large) {
  ThrowInvalidInput("'" + path + "' is " + std::to_string(size >> 20) + " MiB; " +
                    std::string(too_large));
}

}  // namespace

std::string ReadWholeFile(const std::string& path, std::string_view what, std::uintmax_t max_bytes,
                          std::string_view too_large) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (ec) ThrowIo("cannot read '" + path + "': " + ec.message(), "check the path");
  if (std::filesystem::is_directory(status)) {
    ThrowIo("'" + path + "' is a directory, not " + std::string(what));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) ThrowIo("cannot read '" + path + "'", "check the path and its permissions");
  if (!std::filesystem::is_regular_file(status)) {
    // A pipe or a device (`--image <(convert ...)`): no size to check first, so read in pieces
    // and stop one byte past the cap.
    std::string bytes;
    char piece[1 << 16];
    while (in.read(piece, sizeof(piece)) || in.gcount() > 0) {
      bytes.append(piece, static_cast<size_t>(in.gcount()));
      if (bytes.size() > max_bytes) ThrowTooLarge(path, bytes.size(), too_large);
    }
    if (in.bad()) ThrowIo("cannot read '" + path + "'", "check the path and its permissions");
    return bytes;
  }
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) ThrowIo("cannot read '" + path + "': " + ec.message(), "check the path");
  if (size > max_bytes) ThrowTooLarge(path, size, too_large);
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    ThrowIo("cannot read '" + path + "'", "check the path and its permissions");
  }
  return bytes;
}

}  // namespace hearth
