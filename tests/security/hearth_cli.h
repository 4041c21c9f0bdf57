// Running the real hearth binary for the security tests: in a directory, with HOME and
// XDG_CONFIG_HOME pointed at scratch folders (never the user's real config), stdin from /dev/null
// unless given, stdout and stderr captured together. HEARTH_UNDER_TEST overrides the binary, to
// check that a test fails on an older build.
#pragma once

#include <filesystem>
#include <string>

#include "agent/agent_test_util.h"

namespace hearth::security::testing {

inline std::string HearthBinary() {
  const char* b = std::getenv("HEARTH_UNDER_TEST");
  return b && *b ? b : HEARTH_BINARY;
}

struct CliResult {
  int code = -1;  // -1: killed by a signal (a crash)
  std::string out;
};

// `home`: the HOME (and XDG_CONFIG_HOME = home/.config) the command sees.
inline CliResult RunHearth(const std::filesystem::path& dir, const std::filesystem::path& home,
                           const std::string& args, const std::string& stdin_file = "/dev/null") {
  const std::string cmd = "cd '" + dir.string() + "' && HOME='" + home.string() +
                          "' XDG_CONFIG_HOME='" + (home / ".config").string() + "' '" +
                          HearthBinary() + "' " + args + " <'" + stdin_file + "' 2>&1";
  agent::testing::ShellResult r = agent::testing::RunShell(cmd);
  return {r.code, r.out};
}

}  // namespace hearth::security::testing
