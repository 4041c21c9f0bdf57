// `hearth ask --video` (and the assistant chat's /video): the local engine samples the frames into
// the prompt; a remote OpenAI-compatible backend gets the file inline as a video_url data: URL
// (what `hearth serve` takes); Ollama's chat API takes no video and is refused before sending.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "../vision/test_video.h"
#include "agent_test_util.h"
#include "scripted_server.h"

namespace hearth::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ScriptedServer;
using testing::TempRepo;
using Result = testing::ShellResult;

Result Hearth(const fs::path& dir, const std::string& args, const std::string& input = "") {
  const fs::path in = dir / ".hearth-test-input";
  testing::Write(in, input);
  Result r = testing::RunShell("cd '" + dir.string() + "' && '" + HEARTH_BINARY + "' " + args +
                               " <'" + in.string() + "' 2>&1");
  fs::remove(in);
  return r;
}

// What `ask -v` says of model step 1: its prompt tokens, or -1.
int StepOnePrompt(const std::string& out) {
  const size_t at = out.find("hearth: step 1: ");
  int prompt = -1;
  if (at != std::string::npos) std::sscanf(out.c_str() + at + 16, "%d prompt tokens", &prompt);
  return prompt;
}

std::string WriteVideo(const fs::path& dir) {
  const std::string path = (dir / "clip.mkv").string();
  hearth::testing::WriteTestVideo(path, "matroska", AV_CODEC_ID_PNG, 32, 24, 10,
                                  {{220, 20, 30}, {20, 200, 40}, {30, 40, 210}});
  return path;
}

// 3 frames at 1 fps, 6 at 2 fps: the prompt grows by about twice as much at 2 fps (each frame is
// its rows, two markers and a timestamp of a few tokens).
TEST(AgentVideoTest, LocalEngineSamplesTheFrames) {
  TempRepo repo;
  const std::string video = WriteVideo(repo.path());
  const std::string mm = std::string(HEARTH_SHARED_DIR) + "/fixtures/multimodal/";
  const std::string base = "ask -m '" + mm + "models/tiny-mm.F32.gguf' --mmproj '" + mm +
                           "models/tiny-mm.mmproj.F32.gguf' --no-index --no-prefix-cache -n 4 " +
                           "--max-steps 1 -t 1 --permissions read-only -v";
  const Result plain = Hearth(repo.path(), base + " 'what happens?'");
  const Result one = Hearth(repo.path(), base + " --video '" + video + "' 'what happens?'");
  const Result two =
      Hearth(repo.path(), base + " --video '" + video + "' --video-fps 2 'what happens?'");
  ASSERT_EQ(plain.code, 0) << plain.out;
  ASSERT_EQ(one.code, 0) << one.out;
  ASSERT_EQ(two.code, 0) << two.out;
  const int d1 = StepOnePrompt(one.out) - StepOnePrompt(plain.out);
  const int d2 = StepOnePrompt(two.out) - StepOnePrompt(plain.out);
  EXPECT_GE(d1, 3 * (1 + 2 + 1)) << one.out;
  EXPECT_NEAR(d2, 2 * d1, 12) << two.out;
  // The assistant chat's /video attaches to the next message the same way.
  const std::string chat = "chat" + base.substr(3);
  const Result c = Hearth(repo.path(), chat, "/video " + video + "\nwhat happens?\n");
  ASSERT_EQ(c.code, 0) << c.out;
  EXPECT_EQ(StepOnePrompt(c.out), StepOnePrompt(one.out)) << c.out;
  // A file that is not a video: the input error's exit code.
  testing::Write(repo.path() / "notes.mp4", "not a video\n");
  const Result bad = Hearth(repo.path(), base + " --video notes.mp4 'what happens?'");
  EXPECT_EQ(bad.code, 3) << bad.out;
}

TEST(AgentVideoTest, RemoteBackendsGetTheVideoInlineOrRefuseIt) {
  TempRepo repo;
  const std::string video = WriteVideo(repo.path());
  const std::string bytes = testing::Read(video);
  {
    ScriptedServer server({json({{"choices",
                                  {{{"message", {{"role", "assistant"}, {"content", "colours"}}},
                                    {"finish_reason", "stop"}}}}})
                               .dump()},
                          "/v1/chat/completions");
    const Result r = Hearth(repo.path(), "ask --no-index --backend " + server.url() + " --video '" +
                                             video + "' --video-fps 2 'what happens?'");
    ASSERT_EQ(r.code, 0) << r.out;
    ASSERT_EQ(server.requests().size(), 1u);
    const json user = server.requests()[0]["messages"][1];
    ASSERT_TRUE(user["content"].is_array()) << user.dump().substr(0, 300);
    const json& part = user["content"][0];
    EXPECT_EQ(part["type"], "video_url") << part.dump().substr(0, 200);
    const std::string url = part["video_url"]["url"];
    ASSERT_TRUE(url.starts_with("data:video/")) << url.substr(0, 40);
    EXPECT_EQ(part["video_fps"], 2.0);
    // The base64 payload has the file's length (4 characters per 3 bytes, padded).
    const std::string b64 = url.substr(url.find(',') + 1);
    EXPECT_EQ(b64.size(), (bytes.size() + 2) / 3 * 4);
  }
  {
    ScriptedServer server({R"({"message":{"role":"assistant","content":"x"},"done":true})"},
                          "/api/chat");
    const Result r = Hearth(repo.path(), "ask --no-index --backend " + server.url() +
                                             "/api/chat --video '" + video + "' 'what happens?'");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("takes no video"), std::string::npos) << r.out;
    EXPECT_EQ(server.requests().size(), 0u);
  }
}

}  // namespace
}  // namespace hearth::agent
