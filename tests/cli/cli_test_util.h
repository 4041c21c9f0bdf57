// What the CLI tests share: running the built `hearth` binary with its output captured, and the
// paths of the shared fixtures. Header-only: each test binary includes it once, and the paths
// come from the HEARTH_BINARY and HEARTH_SHARED_DIR definitions every test gets.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

namespace hearth::cli_test {

struct Result {
  int exit_code;
  std::string out;  // stdout and stderr, captured apart
  std::string err;
};

// The whole of a file; empty when it cannot be read.
inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `hearth ARGS` (ARGS as a shell would split them) with stdin empty.
inline Result RunHearth(const std::string& args) {
  // ctest runs tests in parallel processes: give each call its own capture files.
  static int call = 0;
  const std::string stem = ::testing::TempDir() + "hearth_cli_" + std::to_string(::getpid()) + "_" +
                           std::to_string(call++);
  const std::string cmd =
      std::string(HEARTH_BINARY) + " " + args + " >" + stem + ".out 2>" + stem + ".err </dev/null";
  const int status = std::system(cmd.c_str());
  Result r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(stem + ".out"),
           Slurp(stem + ".err")};
  std::remove((stem + ".out").c_str());
  std::remove((stem + ".err").c_str());
  return r;
}

// A file of the multimodal fixtures (../shared/fixtures/multimodal/REL).
inline std::string Mm(const std::string& rel) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/multimodal/" + rel;
}
// A file of the fixtures (../shared/fixtures/REL).
inline std::string Text(const std::string& rel) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/" + rel;
}

}  // namespace hearth::cli_test
