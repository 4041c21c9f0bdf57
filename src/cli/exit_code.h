// Thrown by a command that went on after an error it already reported (a chat whose message did
// not fit): main() exits with `code` and prints nothing more.
#pragma once

namespace hearth::cli {

struct ExitCode {
  int code;
};

}  // namespace hearth::cli
