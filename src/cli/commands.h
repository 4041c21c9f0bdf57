// Command registration. Each command lives in its own src/cli/<name>_command.cpp (picked up by
// src/cli/CMakeLists.txt) and registers itself with HEARTH_COMMAND, so adding a command touches no
// shared file. A command exists only when it is implemented: no placeholders.
#pragma once

#include <CLI/CLI.hpp>

namespace hearth::cli {

using RegisterFn = void (*)(CLI::App& app);

// Adds `fn` to the list main() calls to build the command line. Returns true (for static init).
bool AddCommand(const char* name, RegisterFn fn);

// Thrown by a command that stopped early because of Ctrl-C, once it has cleaned up and said so:
// main() exits with 130 (128 + SIGINT), as a shell reports a process killed by Ctrl-C.
struct Interrupted {};
inline constexpr int kInterruptedExit = 130;
// Calls every registered function, in command-name order.
void RegisterAllCommands(CLI::App& app);

}  // namespace hearth::cli

// In a *_command.cpp file, at namespace scope:  HEARTH_COMMAND(info, RegisterInfoCommand);
#define HEARTH_COMMAND(name, fn) \
  static const bool hearth_command_registered_##name = ::hearth::cli::AddCommand(#name, fn)
