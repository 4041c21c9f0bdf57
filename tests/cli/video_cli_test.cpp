// Videos on the command line: `hearth run --video` (--video-fps, --video-tokens), `logits --chat`
// with a {"type":"video","path":F} part (one image span per sampled frame, markers around each),
// `chat --plain` with /video, and the errors a user can cause (a truncated file or one that is not
// a video: exit 3, one line). The test video is written by FFmpeg's encoders: 3 s, 32×24, one
// colour per second.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "../vision/test_video.h"
#include "cli_test_util.h"

namespace {

using namespace hearth::cli_test;  // NOLINT(google-build-using-namespace): test helpers

const std::string& VideoFile() {
  static const std::string path = [] {
    const std::string p =
        ::testing::TempDir() + "hearth_video_cli_" + std::to_string(::getpid()) + ".mkv";
    hearth::testing::WriteTestVideo(p, "matroska", AV_CODEC_ID_PNG, 32, 24, 10,
                                    {{220, 20, 30}, {20, 200, 40}, {30, 40, 210}});
    return p;
  }();
  return path;
}

const std::string kModel =
    " -m " + Mm("models/tiny-mm.F32.gguf") + " --mmproj " + Mm("models/tiny-mm.mmproj.F32.gguf");

int PromptTokens(const Result& r) {
  std::smatch m;
  if (!std::regex_search(r.err, m, std::regex("(\\d+) prompt tokens"))) return -1;
  return std::stoi(m[1]);
}

TEST(VideoCli, RunWithAVideo) {
  const std::string base = "run" + kModel + " -p 'What happens?' -n 2 --temp 0 --no-display-prompt";
  const Result one = RunHearth(base + " --video " + VideoFile());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const Result two = RunHearth(base + " --video " + VideoFile() + " --video-fps 2");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const Result img = RunHearth(base + " --image " + Mm("media/img-37x91.png"));
  ASSERT_EQ(img.exit_code, 0) << img.err;
  // 3 frames at 1 fps, 6 at 2 fps; each frame has its rows, two markers and a timestamp.
  const int n1 = PromptTokens(one), n2 = PromptTokens(two);
  ASSERT_GT(n1, 0) << one.err;
  EXPECT_GT(n2, n1 + 3 * 2);
  const Result bad_fps = RunHearth(base + " --video " + VideoFile() + " --video-fps 5");
  EXPECT_EQ(bad_fps.exit_code, 2) << bad_fps.err;
}

TEST(VideoCli, LogitsChatLaysOutOneImageSpanPerFrame) {
  const std::string chat = ::testing::TempDir() + "video_chat.json";
  std::ofstream(chat) << nlohmann::json{{"messages",
                                         {{{"role", "user"},
                                           {"content",
                                            {{{"type", "video"}, {"path", VideoFile()}},
                                             {{"type", "text"}, {"text", "Colours?"}}}}}}}};
  const std::string out = ::testing::TempDir() + "video_logits.f32";
  const Result r = RunHearth("logits" + kModel + " --chat " + chat + " --out " + out + " -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json layout = nlohmann::json::parse(r.err.substr(0, r.err.find('\n')));
  const auto tokens = layout["tokens"].get<std::vector<int32_t>>();
  ASSERT_EQ(layout["media"].size(), 3u);
  for (const auto& m : layout["media"]) {
    const int pos = m["pos"].get<int>(), rows = m["rows"].get<int>();
    EXPECT_EQ(tokens[static_cast<size_t>(pos) - 1], 4096);     // <|image>
    EXPECT_EQ(tokens[static_cast<size_t>(pos + rows)], 4100);  // <image|>
    for (int i = 0; i < rows; ++i) EXPECT_EQ(tokens[static_cast<size_t>(pos + i)], -1);
  }
  EXPECT_EQ(std::count(tokens.begin(), tokens.end(), 4096), 3);
  const auto size = std::filesystem::file_size(out);
  EXPECT_EQ(size % (tokens.size() * sizeof(float)), 0u);
  std::remove(out.c_str());
  std::remove(chat.c_str());
}

TEST(VideoCli, PlainChatVideoCommand) {
  const std::string input = ::testing::TempDir() + "video_chat_in.txt";
  std::ofstream(input) << "/video " << VideoFile() << "\nWhat happens?\n";
  const std::string cmd = "sh -c \"" + std::string(HEARTH_BINARY) + " chat --plain" + kModel +
                          " -n 2 --temp 0 < " + input + "\"";
  const std::string out = ::testing::TempDir() + "video_chat_out.txt";
  const int status = std::system((cmd + " >" + out + " 2>/dev/null").c_str());
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::string o = Slurp(out);
  EXPECT_NE(o.find("3 frames"), std::string::npos) << o;
  std::remove(input.c_str());
  std::remove(out.c_str());
}

TEST(VideoCli, BadVideosExitThree) {
  const std::string base = "run" + kModel + " -p x -n 1 --video ";
  const std::string cut = ::testing::TempDir() + "video_cut.mkv";
  const std::string bytes = Slurp(VideoFile());
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, 64);
  Result r = RunHearth(base + cut);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_NE(r.err.find("not a readable video"), std::string::npos) << r.err;
  std::remove(cut.c_str());
  r = RunHearth(base + Mm("media/chirp-1.5s.wav"));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("not a readable video"), std::string::npos) << r.err;
  r = RunHearth(base + "/nonexistent/clip.mp4");
  EXPECT_NE(r.exit_code, 0);
}

}  // namespace
