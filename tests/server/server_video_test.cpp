// `hearth serve` with video (issue 16 item 3) over the real engine: `video_url` content parts with
// a data: URL (hearth's extension of the OpenAI format) are sampled into frames; a corrupt video,
// an http(s) URL or a path is a 400. The tiny fixture model and projector: mechanics, not words.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>

#include "../vision/test_video.h"
#include "server_test_util.h"

namespace hearth::server::testing {
namespace {

using nlohmann::json;

std::string Mm(const std::string& rel) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/multimodal/" + rel;
}

std::string Base64(const std::vector<uint8_t>& bytes) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = uint32_t{bytes[i]} << 16;
    if (i + 1 < bytes.size()) v |= uint32_t{bytes[i + 1]} << 8;
    if (i + 2 < bytes.size()) v |= bytes[i + 2];
    out += a[(v >> 18) & 63];
    out += a[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? a[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? a[v & 63] : '=';
  }
  return out;
}

json VideoChat(const std::string& url, double fps = 0) {
  json part = {{"type", "video_url"}, {"video_url", {{"url", url}}}};
  if (fps > 0) part["video_fps"] = fps;
  return json{{"messages",
               {{{"role", "user"}, {"content", {part, {{"type", "text"}, {"text", "What?"}}}}}}},
              {"max_tokens", 2},
              {"temperature", 0}};
}

TEST(ServerVideo, VideoUrlPartsAreSampledIntoFrames) {
  std::signal(SIGPIPE, SIG_IGN);
  TestServer server;
  EngineOptions eo;
  eo.model_path = Mm("models/tiny-mm.F32.gguf");
  eo.mmproj = Mm("models/tiny-mm.mmproj.F32.gguf");
  eo.n_slots = 1;
  eo.n_ctx = 2048;
  eo.n_threads = 2;
  server.server().SetGenerator(MakeEngineGenerator(eo));
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("hearth-server-video-" + std::to_string(::getpid()) + ".mkv"))
                               .string();
  const auto bytes = hearth::testing::WriteTestVideo(path, "matroska", AV_CODEC_ID_PNG, 32, 24, 10,
                                                     {{220, 20, 30}, {20, 200, 40}, {30, 40, 210}});
  std::filesystem::remove(path);
  const std::string url = "data:video/x-matroska;base64," + Base64(bytes);
  auto post = [&](const json& body) {
    auto r = server.Client().Post("/v1/chat/completions", body.dump(), "application/json");
    EXPECT_TRUE(r);
    return r ? std::make_pair(r->status, r->body) : std::make_pair(0, std::string());
  };
  json text = VideoChat(url);
  text["messages"][0]["content"].erase(0);
  const auto [s0, b0] = post(text);
  ASSERT_EQ(s0, 200) << b0;
  const auto [s1, b1] = post(VideoChat(url));
  ASSERT_EQ(s1, 200) << b1;
  const auto [s2, b2] = post(VideoChat(url, 2));
  ASSERT_EQ(s2, 200) << b2;
  const int p0 = json::parse(b0)["usage"]["prompt_tokens"];
  const int p1 = json::parse(b1)["usage"]["prompt_tokens"];
  const int p2 = json::parse(b2)["usage"]["prompt_tokens"];
  // 3 frames at 1 fps, 6 at 2 fps: each its rows, two markers and a timestamp.
  EXPECT_GE(p1 - p0, 3 * 4);
  EXPECT_NEAR(p2 - p0, 2 * (p1 - p0), 12);

  const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + 64);
  EXPECT_EQ(post(VideoChat("data:video/x-matroska;base64," + Base64(cut))).first, 400);
  EXPECT_EQ(post(VideoChat("https://example.com/clip.mp4")).first, 400);
  EXPECT_EQ(post(VideoChat(url, 9)).first, 400);
}

}  // namespace
}  // namespace hearth::server::testing
