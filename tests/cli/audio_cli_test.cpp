// Audio on the command line: `hearth bench --audio`, and the errors a user can cause (a
// projector without an audio encoder, a file that is not audio): one line, exit 3.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_test_util.h"

namespace {

using namespace hearth::cli_test;  // NOLINT(google-build-using-namespace): test helpers

// The 30.5 s clip is two pieces, 750 + 13 rows (README §4 of the fixtures).
TEST(AudioCli, BenchAudioReportsEncodeTimePerSecond) {
  const Result r = RunHearth("bench --audio " + Mm("media/long-30.5s.wav") + " --mmproj " +
                             Mm("models/tiny-mm.mmproj.F32.gguf") + " -r 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["rows"], 763);
  EXPECT_DOUBLE_EQ(j["audio_s"].get<double>(), 30.5);
  EXPECT_GT(j["encode_s_per_audio_s"].get<double>(), 0.0);
}

TEST(AudioCli, ProjectorWithoutAudioNamesE2BAndE4B) {
  const Result r = RunHearth("bench --audio " + Mm("media/chirp-1.5s.wav") + " --mmproj " +
                             Mm("models/tiny-dense.mmproj.F32.gguf"));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("E2B or E4B"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // one line
}

TEST(AudioCli, CorruptAudioIsExitThree) {
  const std::string bad = ::testing::TempDir() + "not_audio.wav";
  if (FILE* f = std::fopen(bad.c_str(), "wb")) {
    std::fputs("RIFF\x10\0\0\0WAVEjunkjunkjunk", f);
    std::fclose(f);
  }
  const Result r =
      RunHearth("bench --audio " + bad + " --mmproj " + Mm("models/tiny-mm.mmproj.F32.gguf"));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("cannot decode audio"), std::string::npos) << r.err;
  std::remove(bad.c_str());
}

}  // namespace
