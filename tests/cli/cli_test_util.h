// What the CLI tests share: running the built `hearth` binary with its output captured, and the
// paths of the shared fixtures. Header-only: each test binary includes it once, and the paths
// come from the HEARTH_BINARY and HEARTH_SHARED_DIR definitions every test gets.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
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
inline std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Writes `text` to `path`, creating its folders.
inline void Write(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Runs the shell command line `command` with its stdout and stderr captured in STEM.out and
// STEM.err, which are removed once read.
inline Result RunCaptured(const std::string& command, const std::string& stem) {
  const std::string cmd = command + " >" + stem + ".out 2>" + stem + ".err";
  const int status = std::system(cmd.c_str());
  Result r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(stem + ".out"),
           Slurp(stem + ".err")};
  std::remove((stem + ".out").c_str());
  std::remove((stem + ".err").c_str());
  return r;
}

// Runs `hearth ARGS` (ARGS as a shell would split them) with stdin empty.
inline Result RunHearth(const std::string& args) {
  // ctest runs tests in parallel processes: give each call its own capture files.
  static int call = 0;
  const std::string stem = ::testing::TempDir() + "hearth_cli_" + std::to_string(::getpid()) + "_" +
                           std::to_string(call++);
  return RunCaptured(std::string(HEARTH_BINARY) + " " + args + " </dev/null", stem);
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
