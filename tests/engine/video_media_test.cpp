// Videos through the media plumbing (engine/media.h): each sampled frame is encoded exactly as the
// same picture given as an image file (the image path is verified against llama.cpp in
// tests/vision and tests/cli), and a video is laid out in a prompt the way the Hugging Face Gemma 4
// processor does: per frame "mm:ss " <|image> rows <image|>, frames separated by a space.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "../vision/test_video.h"
#include "base/error.h"
#include "engine/media.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace hearth::engine {
namespace {

using Json = nlohmann::ordered_json;
using hearth::testing::Rgb;

const Rgb kRed = {220, 20, 30}, kGreen = {20, 200, 40}, kBlue = {30, 40, 210};

std::string Mm(const std::string& rel) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/multimodal/" + rel;
}

// A 24-bit BMP (bottom-up rows padded to 4 bytes) of one colour: the picture of a frame as an
// image file, written by hand so it does not share code with the video path.
std::vector<uint8_t> SolidBmp(int w, int h, const Rgb& c) {
  const int row = (w * 3 + 3) / 4 * 4;
  const uint32_t size = 54 + static_cast<uint32_t>(row * h);
  std::vector<uint8_t> b(size, 0);
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  b[0] = 'B';
  b[1] = 'M';
  put32(2, size);
  put32(10, 54);
  put32(14, 40);
  put32(18, static_cast<uint32_t>(w));
  put32(22, static_cast<uint32_t>(h));
  b[26] = 1;
  b[28] = 24;
  put32(34, static_cast<uint32_t>(row * h));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &b[54 + static_cast<size_t>(y * row + x * 3)];
      p[0] = c[2];
      p[1] = c[1];
      p[2] = c[0];
    }
  }
  return b;
}

std::vector<uint8_t> TestVideo() {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("hearth-video-media-" + std::to_string(::getpid()) + ".mkv"))
                               .string();
  auto bytes = hearth::testing::WriteTestVideo(path, "matroska", AV_CODEC_ID_PNG, 32, 24, 10,
                                               {kRed, kGreen, kBlue});
  std::filesystem::remove(path);
  return bytes;
}

std::string Base64(const std::vector<uint8_t>& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(bytes[i]) << 16 | uint32_t(bytes[i + 1]) << 8 | bytes[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

TEST(VideoMedia, FramesAreTheRowsOfTheSamePicturesAsImages) {
  const auto model = model::Model::Load(Mm("models/tiny-mm.F32.gguf"));
  auto proj = Projector::Open(Mm("models/tiny-mm.mmproj.F32.gguf"), model->config(), 2);
  const std::vector<uint8_t> video = TestVideo();
  const MediaPtr v = proj->EncodeVideo(video, "test.mkv");  // 1 fps, 70 tokens
  ASSERT_EQ(v->kind, MediaKind::kVideo);
  ASSERT_EQ(v->frames.size(), 3u);
  EXPECT_EQ(v->frame_times, (std::vector<double>{0, 1, 2}));
  EXPECT_FALSE(v->clipped);
  const Rgb colours[] = {kRed, kGreen, kBlue};
  for (size_t i = 0; i < 3; ++i) {
    const MediaPtr img = proj->EncodeImage(SolidBmp(32, 24, colours[i]), "frame.bmp", 70);
    EXPECT_EQ(v->frames[i]->kind, MediaKind::kImage);
    EXPECT_EQ(v->frames[i]->non_causal, img->non_causal);
    EXPECT_EQ(v->frames[i]->chunks, img->chunks);
    ASSERT_EQ(v->frames[i]->rows.size(), img->rows.size()) << i;
    EXPECT_EQ(v->frames[i]->rows, img->rows) << "frame " << i;
  }
  // 2 fps: six frames, two of each colour; a budget of 140 per frame.
  const MediaPtr v2 = proj->EncodeVideo(video, "test.mkv", 2, 140);
  ASSERT_EQ(v2->frames.size(), 6u);
  EXPECT_EQ(v2->frame_times, (std::vector<double>{0, 0.5, 1, 1.5, 2, 2.5}));
  EXPECT_EQ(v2->frames[3]->rows, proj->EncodeImage(SolidBmp(32, 24, kGreen), "g.bmp", 140)->rows);
  // A data: URL part gives the cached item; a path part too (allowed on the command line).
  const MediaPtr u = proj->EncodePart(
      Json{{"type", "video_url"},
           {"video_url", {{"url", "data:video/x-matroska;base64," + Base64(video)}}}},
      {});
  EXPECT_EQ(u.get(), v.get());
  EXPECT_THROW(
      proj->EncodePart(
          Json{{"type", "video_url"}, {"video_url", {{"url", "https://example.com/v.mp4"}}}}, {}),
      Error);
  EXPECT_THROW(proj->EncodePart(Json{{"type", "video"}, {"path", "v.mkv"}}, {}), Error);
  EXPECT_THROW(proj->EncodeVideo(video, "v", 5), Error);
  EXPECT_THROW(proj->EncodeVideo(video, "v", 1, 100), Error);
}

TEST(VideoMedia, TimestampsAreMinutesAndSeconds) {
  EXPECT_EQ(VideoTimestamp(0), "00:00");
  EXPECT_EQ(VideoTimestamp(0.5), "00:00");
  EXPECT_EQ(VideoTimestamp(9.99), "00:09");
  EXPECT_EQ(VideoTimestamp(59), "00:59");
  EXPECT_EQ(VideoTimestamp(65.5), "01:05");
}

// tiny-mm has the control tokens (<|image> 4096, <image|> 4100). The expected list is built
// piece by piece from the layout rule: BOS, the text before the video with the first timestamp,
// then per frame <|image> rows <image|> and " mm:ss " before the next, then the text after.
TEST(VideoMedia, PromptLayoutPerFrame) {
  const auto model = model::Model::Load(Mm("models/tiny-mm.F32.gguf"));
  auto proj = Projector::Open(Mm("models/tiny-mm.mmproj.F32.gguf"), model->config(), 2);
  const MediaPtr v = proj->EncodeVideo(TestVideo(), "test.mkv", 1);
  const text::Tokenizer tok = text::Tokenizer::Load(Mm("models/tiny-mm.F32.gguf"));
  std::vector<MediaSpan> spans;
  const std::vector<MediaPtr> items = {v};
  const std::vector<int32_t> ids =
      EncodeWithMedia("<|turn>user\n<|video|>What happens?<turn|>\n", items, tok, &spans);
  std::vector<int32_t> want = {2};
  auto add = [&](const std::string& text) {
    const auto t = tok.Encode(text, false, true);
    want.insert(want.end(), t.begin(), t.end());
  };
  std::vector<int> want_pos;
  const char* stamps[] = {"<|turn>user\n00:00 ", " 00:01 ", " 00:02 "};
  for (size_t f = 0; f < 3; ++f) {
    add(stamps[f]);
    want.push_back(4096);
    want_pos.push_back(static_cast<int>(want.size()));
    want.insert(want.end(), static_cast<size_t>(v->frames[f]->n_rows()), kMediaRow);
    want.push_back(4100);
  }
  add("What happens?<turn|>\n");
  EXPECT_EQ(ids, want);
  ASSERT_EQ(spans.size(), 3u);
  for (size_t f = 0; f < 3; ++f) {
    EXPECT_EQ(spans[f].pos, want_pos[f]);
    EXPECT_EQ(spans[f].media.get(), v->frames[f].get());
  }
  // The timestamp text joins the text before it (one BPE piece, as in HF), so "\n00:00 " is not
  // split at the newline by construction; and a video part renders as <|video|>.
  EXPECT_EQ(MediaParts(Json::array({Json{{"role", "user"},
                                         {"content", Json::array({Json{{"type", "video"}}})}}}))
                .size(),
            1u);
  EXPECT_GE(PromptPositions(*v), 3 * (v->frames[0]->n_rows() + 2));
}

}  // namespace
}  // namespace hearth::engine
