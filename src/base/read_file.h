// Reading a whole file that the user named (a media file on the command line) into memory, with
// a size cap checked before any byte is read, so that a huge file is refused, not slurped.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace hearth {

// The bytes of `path`, whole. Throws Error(kIo) when it cannot be read ("cannot read 'PATH':
// REASON"; a directory: "'PATH' is a directory, not WHAT") and Error(kInvalidInput)
// "'PATH' is N MiB; TOO_LARGE" when it is larger than `max_bytes`.
std::string ReadWholeFile(const std::string& path, std::string_view what,
                          std::uintmax_t max_bytes = std::numeric_limits<std::uintmax_t>::max(),
                          std::string_view too_large = {});

}  // namespace hearth
