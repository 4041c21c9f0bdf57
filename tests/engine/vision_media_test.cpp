// Images through the media plumbing (engine/media.h): the projector opens the vision encoder,
// encodes image parts from a path or an OpenAI data: URL to the same rows, keeps them by content
// hash and budget, maps `detail` to a budget, and lays an image out in a prompt with the
// non-causal rule of spec §2.4. (The encoder against llama.cpp: tests/vision; prompts and logits
// against llama.cpp: tests/cli/vision_cli_test.cpp.)
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/media.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace hearth::engine {
namespace {

using Json = nlohmann::ordered_json;

std::string Mm(const std::string& rel) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/multimodal/" + rel;
}

std::string Base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 |
                       uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

TEST(VisionMedia, PathAndDataUrlGiveTheSameCachedRows) {
  const auto model = model::Model::Load(Mm("models/tiny-mm.F32.gguf"));
  auto proj = Projector::Open(Mm("models/tiny-mm.mmproj.F32.gguf"), model->config(), 2);
  EXPECT_TRUE(proj->has_vision());
  EXPECT_TRUE(proj->has_audio());
  EXPECT_NE(proj->Describe().find("vision: gemma4v, 1 layers, width 32"), std::string::npos)
      << proj->Describe();
  const std::string file = Mm("media/img-200x120.png");
  const MediaPtr a =
      proj->EncodePart(Json{{"type", "image"}, {"path", file}}, {.allow_paths = true});
  EXPECT_EQ(a->kind, MediaKind::kImage);
  EXPECT_TRUE(a->non_causal);   // text width 32: not E2B/E4B (spec §2.4)
  EXPECT_EQ(a->n_rows(), 170);  // README §4: 204×120 canvas at the default budget
  EXPECT_EQ(a->chunks, std::vector<int>{170});
  std::ifstream in(file, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const std::string url = "data:image/png;base64," + Base64(bytes);
  const MediaPtr b = proj->EncodePart(
      Json{{"type", "image_url"}, {"image_url", {{"url", url}, {"detail", "high"}}}}, {});
  EXPECT_EQ(b.get(), a.get());  // the same bytes and budget: the cached item
  EXPECT_EQ(proj->cached(), 1u);
  const MediaPtr low = proj->EncodePart(
      Json{{"type", "image_url"}, {"image_url", {{"url", url}, {"detail", "low"}}}}, {});
  EXPECT_EQ(low->n_rows(), 60);  // budget 70: 120×72
  const MediaPtr b140 = proj->EncodePart(
      Json{{"type", "image"}, {"path", file}, {"image_tokens", 140}}, {.allow_paths = true});
  EXPECT_EQ(b140->n_rows(), 135);
  EXPECT_EQ(proj->cached(), 3u);
}

// tiny-mm has the control tokens: BOS <|turn>user\n … <|image> 84 rows <image|> … (README §3).
TEST(VisionMedia, PromptLayoutHasTheMarkerTokens) {
  const auto model = model::Model::Load(Mm("models/tiny-mm.F32.gguf"));
  auto proj = Projector::Open(Mm("models/tiny-mm.mmproj.F32.gguf"), model->config(), 1);
  const MediaPtr img = proj->EncodePart(
      Json{{"type", "image"}, {"path", Mm("media/img-37x91.png")}}, {.allow_paths = true});
  const text::Tokenizer tok = text::Tokenizer::Load(Mm("models/tiny-mm.F32.gguf"));
  std::vector<MediaSpan> spans;
  const std::vector<MediaPtr> items = {img};
  const std::vector<int32_t> ids =
      EncodeWithMedia("<|turn>user\n<|image|>Hi<turn|>\n", items, tok, &spans);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[static_cast<size_t>(spans[0].pos) - 1], 4096);   // <|image>
  EXPECT_EQ(ids[static_cast<size_t>(spans[0].pos) + 84], 4100);  // <image|>
  for (int i = 0; i < 84; ++i) EXPECT_EQ(ids[static_cast<size_t>(spans[0].pos + i)], kMediaRow);
}

}  // namespace
}  // namespace hearth::engine
