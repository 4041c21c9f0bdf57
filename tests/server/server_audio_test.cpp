// `hearth serve` with audio (issue 17 item 4) over the real engine: OpenAI `input_audio` content
// parts in chat completions, and POST /v1/audio/transcriptions (multipart, Whisper API), on the
// tiny fixture model with its projector (random weights: mechanics, layout, formats and errors
// are checked, not the words).
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <iterator>
#include <regex>

#include "server_test_util.h"

namespace hearth::server::testing {
namespace {

using nlohmann::json;

std::string Mm(const std::string& rel) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/multimodal/" + rel;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string Base64(const std::string& bytes) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 2]);
    out += a[(v >> 18) & 63];
    out += a[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? a[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? a[v & 63] : '=';
  }
  return out;
}

class ServerAudio : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::signal(SIGPIPE, SIG_IGN);
    server_ = new TestServer();
    EngineOptions eo;
    eo.model_path = Mm("models/tiny-mm.F32.gguf");
    eo.mmproj = Mm("models/tiny-mm.mmproj.F32.gguf");
    eo.n_slots = 1;
    eo.n_ctx = 1024;
    eo.n_threads = 2;
    server_->server().SetGenerator(MakeEngineGenerator(eo));
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static TestServer* server_;
};
TestServer* ServerAudio::server_ = nullptr;

json AudioChat(const std::string& data) {
  return json{{"messages",
               {{{"role", "user"},
                 {"content",
                  {{{"type", "input_audio"}, {"input_audio", {{"data", data}, {"format", "wav"}}}},
                   {{"type", "text"}, {"text", "Transcribe this audio."}}}}}}},
              {"max_tokens", 3},
              {"temperature", 0}};
}

// The README's prompt through the API: 92 positions, as llama.cpp's layout of chirp-1.5s on
// tiny-mm (refs/tiny-mm.mmproj.F32.audio.ref.gguf, n_pos); the same clip again reuses the cache
// through the media rows.
TEST_F(ServerAudio, InputAudioPartsTakeTheReferenceLayout) {
  const json body = AudioChat(Base64(Slurp(Mm("media/chirp-1.5s.wav"))));
  auto r = server_->Client().Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 92);
  r = server_->Client().Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["usage"]["prompt_tokens_details"]["cached_tokens"], 91);
}

// /api/show and /v1/models say what the projector adds: tiny-mm's has both encoders
// (fixtures/multimodal/models/tiny-mm.mmproj.json: "vision" and "audio").
TEST_F(ServerAudio, ModelListsReportVisionAndAudio) {
  auto show = server_->Client().Post("/api/show", R"({"model":"tiny-mm"})", "application/json");
  ASSERT_TRUE(show);
  ASSERT_EQ(show->status, 200) << show->body;
  EXPECT_EQ(json::parse(show->body)["capabilities"],
            json::array({"completion", "tools", "thinking", "vision", "audio"}));
  auto models = server_->Client().Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(json::parse(models->body)["data"][0]["meta"]["capabilities"],
            json::array({"completion", "tools", "thinking", "vision", "audio"}));
}

TEST_F(ServerAudio, BadAudioPartsAre400) {
  auto post = [](const json& body) {
    auto r = server_->Client().Post("/v1/chat/completions", body.dump(), "application/json");
    EXPECT_TRUE(r);
    return r ? r->status : 0;
  };
  EXPECT_EQ(post(AudioChat("%%% not base64")), 400);
  EXPECT_EQ(post(AudioChat(Base64("RIFF....WAVE but not really"))), 400);
  EXPECT_EQ(post(AudioChat("")), 400);
  json path_part = AudioChat("x");
  path_part["messages"][0]["content"][0] = {{"type", "audio"}, {"path", "/etc/passwd"}};
  EXPECT_EQ(post(path_part), 400);  // never a path on the server's machine
}

httplib::Result Transcribe(TestServer& server, const std::string& file, const std::string& format) {
  httplib::MultipartFormDataItems items = {
      {"file", Slurp(file), "clip.wav", "audio/wav"},
      {"model", "whisper-1", "", ""},
  };
  if (!format.empty()) items.push_back({"response_format", format, "", ""});
  auto c = server.Client();
  c.set_read_timeout(300, 0);
  return c.Post("/v1/audio/transcriptions", items);
}

// The Whisper API's four formats; the 30.5 s clip is at least two segments covering it in order.
TEST_F(ServerAudio, TranscriptionsInEveryFormat) {
  auto r = Transcribe(*server_, Mm("media/long-30.5s.wav"), "verbose_json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json v = json::parse(r->body);
  EXPECT_EQ(v["task"], "transcribe");
  EXPECT_DOUBLE_EQ(v["duration"].get<double>(), 30.5);
  ASSERT_GE(v["segments"].size(), 2u);
  double at = 0;
  for (const json& seg : v["segments"]) {
    EXPECT_DOUBLE_EQ(seg["start"].get<double>(), at);
    EXPECT_LE(seg["end"].get<double>() - at, 30.0);
    at = seg["end"].get<double>();
  }
  EXPECT_DOUBLE_EQ(at, 30.5);
  EXPECT_TRUE(v["text"].is_string());

  r = Transcribe(*server_, Mm("media/chirp-1.5s.wav"), "");  // json by default
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_TRUE(j["text"].is_string());
  EXPECT_EQ(j.size(), 1u);

  r = Transcribe(*server_, Mm("media/chirp-1.5s.wav"), "srt");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(r->body.starts_with("1\n00:00:00,000 --> 00:00:01,500\n")) << r->body;

  r = Transcribe(*server_, Mm("media/chirp-1.5s.wav"), "text");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body.back(), '\n');
}

TEST_F(ServerAudio, TranscriptionErrorsAre400) {
  auto r = Transcribe(*server_, Mm("media/chirp-1.5s.wav"), "vtt");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  r = Transcribe(*server_, Mm("media/img-64x64.png"), "json");  // not audio
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("\"param\":\"file\""), std::string::npos) << r->body;
  // Not multipart, or without a file.
  r = server_->Client().Post("/v1/audio/transcriptions", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  httplib::MultipartFormDataItems no_file = {{"model", "whisper-1", "", ""}};
  r = server_->Client().Post("/v1/audio/transcriptions", no_file);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}

// A model served without a projector refuses audio parts with a 400 that says why.
TEST(ServerNoProjector, AudioPartsNeedAProjector) {
  std::signal(SIGPIPE, SIG_IGN);
  TestServer server;
  EngineOptions eo;
  eo.model_path = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";
  eo.n_ctx = 256;
  eo.n_threads = 1;
  server.server().SetGenerator(MakeEngineGenerator(eo));
  auto r = server.Client().Post("/v1/chat/completions",
                                AudioChat(Base64(Slurp(Mm("media/chirp-1.5s.wav")))).dump(),
                                "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("E2B or E4B"), std::string::npos) << r->body;
}

}  // namespace
}  // namespace hearth::server::testing
