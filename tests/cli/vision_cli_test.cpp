// Images on the command line: `hearth info` on a vision projector, and the errors a user can
// cause with one: one line, exit 3.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace {

struct Result {
  int exit_code;
  std::string out;
  std::string err;
};

Result RunHearth(const std::string& args) {
  static int call = 0;
  const std::string stem = ::testing::TempDir() + "hearth_vision_cli_" +
                           std::to_string(::getpid()) + "_" + std::to_string(call++);
  const std::string out_file = stem + ".out";
  const std::string err_file = stem + ".err";
  const std::string cmd =
      std::string(HEARTH_BINARY) + " " + args + " >" + out_file + " 2>" + err_file + " </dev/null";
  const int status = std::system(cmd.c_str());
  auto slurp = [](const std::string& path) {
    std::string text;
    if (FILE* f = std::fopen(path.c_str(), "rb")) {
      std::array<char, 4096> buf{};
      size_t n = 0;
      while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) text.append(buf.data(), n);
      std::fclose(f);
    }
    return text;
  };
  Result result{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out_file), slurp(err_file)};
  std::remove(out_file.c_str());
  std::remove(err_file.c_str());
  return result;
}

std::string Mm(const std::string& rel) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/multimodal/" + rel;
}

// A projector with both encoders (like E2B/E4B) and a vision-only one (like 26B/31B); the numbers
// are the fixtures' structures (README §2).
TEST(VisionCli, InfoDescribesProjectors) {
  const Result both = RunHearth("info -m " + Mm("models/tiny-e.mmproj.Q8_0.gguf"));
  ASSERT_EQ(both.exit_code, 0) << both.err;
  EXPECT_NE(both.out.find("vision:        gemma4v, 2 layers, width 64, 2 heads, patch 4, pool 3, "
                          "Q8_0, 256-wide rows"),
            std::string::npos)
      << both.out;
  EXPECT_NE(both.out.find("audio:         gemma4a, 2 blocks, width 32"), std::string::npos)
      << both.out;
  const Result dense = RunHearth("info -m " + Mm("models/tiny-dense.mmproj.F16.gguf"));
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  EXPECT_NE(dense.out.find("vision:        gemma4v, 2 layers, width 64, 4 heads"),
            std::string::npos)
      << dense.out;
  EXPECT_EQ(dense.out.find("audio:"), std::string::npos) << dense.out;
}

}  // namespace
