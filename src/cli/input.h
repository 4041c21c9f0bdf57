// Reading a command's input text: a file, or stdin when the name is "-" (as most Unix tools do).
// Header-only because src/cli builds only main.cpp, commands.cpp and *_command.cpp.
#pragma once

#include <cerrno>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "base/error.h"

namespace hearth::cli {

// The bytes of `path`, or of stdin for "-". Error(kIo) naming the file when it cannot be read.
inline std::string ReadInput(const std::string& path) {
  std::ostringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    if (std::cin.bad()) ThrowIo("cannot read stdin: " + ErrnoText(errno));
    return ss.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) ThrowIo("cannot read '" + path + "': " + ErrnoText(errno), "check the path");
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace hearth::cli
