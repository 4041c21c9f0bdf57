// Images on the command line: `hearth info` on a vision projector; `hearth embed-media --image`
// against llama.cpp's encoder output and `hearth logits --chat` with image parts against its token
// layout and logits (../shared/fixtures/multimodal/README.md §7.4: F32, F16 and Q8_0 projectors,
// every budget stored); `run --image`, `chat --plain` with /image; and the errors a user can
// cause: one line, exit 2 or 3.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "../model/ref_check.h"
#include "cli_test_util.h"
#include "gguf/gguf.h"

namespace {

using namespace hearth::cli_test;  // NOLINT(google-build-using-namespace): test helpers

using hearth::gguf::File;

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

using hearth::model::testing::Compare;
using hearth::model::testing::Diff;
using hearth::model::testing::ReadFloatFile;
using hearth::model::testing::RefTensor;

// A reference case: its projector/reference stem, text model, image file and budget (0: the
// default), and the precision class of the projector.
struct ImageCase {
  std::string stem;
  std::string text;
  std::string name;  // reference case name, e.g. "img-200x120.b140"
  std::string file;
  int tokens = 0;
  enum { kF32, kF16, kQ8 } type = kF32;
};

// README §7.4 items 3 and 5 through the binary. (The JPEG is left to vision_test, which feeds
// llama.cpp's own stb decode: libjpeg-turbo differs from it by a few levels.)
TEST(VisionCli, EmbedMediaImageMatchesTheReferenceEncoder) {
  const std::vector<ImageCase> cases = {
      {"tiny-e.mmproj.F32", Text("models/tiny-e.F32.gguf"), "img-64x64", "img-64x64.png"},
      {"tiny-e.mmproj.F32", Text("models/tiny-e.F32.gguf"), "img-200x120.b70", "img-200x120.png",
       70},
      {"tiny-e.mmproj.F32", Text("models/tiny-e.F32.gguf"), "img-200x120.b140", "img-200x120.png",
       140},
      {"tiny-dense.mmproj.F32", Text("models/tiny-dense.F32.gguf"), "img-37x91", "img-37x91.png"},
      {"tiny-mm.mmproj.F32", Mm("models/tiny-mm.F32.gguf"), "img-37x91", "img-37x91.png"},
      {"tiny-dense.mmproj.F16", Text("models/tiny-dense.F32.gguf"), "img-200x120",
       "img-200x120.png", 0, ImageCase::kF16},
  };
  for (const ImageCase& c : cases) {
    SCOPED_TRACE(c.stem + " " + c.name);
    const File ref = File::Open(Mm("refs/" + c.stem + ".ref.gguf"));
    const std::string out = ::testing::TempDir() + "vembd_" + std::to_string(::getpid()) + ".f32";
    const Result r =
        RunHearth("embed-media -m " + c.text + " --mmproj " + Mm("models/" + c.stem + ".gguf") +
                  " --image " + Mm("media/" + c.file) + " --out " + out + " -t 2" +
                  (c.tokens ? " --image-tokens " + std::to_string(c.tokens) : ""));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::vector<float> got = ReadFloatFile(out);
    std::remove(out.c_str());
    const Diff d = Compare(got, RefTensor<float>(ref, c.name + ".embd"));
    std::printf("%s %s: embd max-abs %.2e rel-RMS %.2e\n", c.stem.c_str(), c.name.c_str(),
                d.max_abs, d.rel_rms);
    EXPECT_LE(d.max_abs, c.type == ImageCase::kF16 ? 5e-3 : 4e-3);
    EXPECT_LE(d.rel_rms, 1e-3);
  }
}

std::string WriteImageChat(const std::string& image, int tokens) {
  static int n = 0;
  const std::string path = ::testing::TempDir() + "vision_chat_" + std::to_string(::getpid()) +
                           "_" + std::to_string(n++) + ".json";
  nlohmann::json part = {{"type", "image"}, {"path", image}};
  if (tokens) part["image_tokens"] = tokens;
  const nlohmann::json chat = {
      {"messages",
       {{{"role", "user"},
         {"content", {part, {{"type", "text"}, {"text", "Describe this image."}}}}}}},
      {"add_generation_prompt", true},
      {"enable_thinking", false}};
  std::ofstream(path) << chat.dump();
  return path;
}

// README §7.4 items 1, 4 and 5: the token layout (marker pieces, media positions) and the logits of
// every stored position of `logits --chat` with an image part.
TEST(VisionCli, LogitsChatMatchesTheReferenceLayoutAndLogits) {
  const std::vector<ImageCase> cases = {
      {"tiny-e.mmproj.F32", Text("models/tiny-e.F32.gguf"), "img-64x64", "img-64x64.png"},
      {"tiny-e.mmproj.F32", Text("models/tiny-e.F32.gguf"), "img-200x120.b140", "img-200x120.png",
       140},
      {"tiny-dense.mmproj.F32", Text("models/tiny-dense.F32.gguf"), "img-37x91", "img-37x91.png"},
      {"tiny-mm.mmproj.F32", Mm("models/tiny-mm.F32.gguf"), "img-37x91", "img-37x91.png"},
      {"tiny-dense.mmproj.F16", Text("models/tiny-dense.F32.gguf"), "img-37x91", "img-37x91.png", 0,
       ImageCase::kF16},
      {"tiny-e.mmproj.Q8_0", Text("models/tiny-e.F32.gguf"), "img-200x120", "img-200x120.png", 0,
       ImageCase::kQ8},
  };
  for (const ImageCase& c : cases) {
    SCOPED_TRACE(c.stem + " " + c.name);
    const File ref = File::Open(Mm("refs/" + c.stem + ".ref.gguf"));
    const std::string chat = WriteImageChat(Mm("media/" + c.file), c.tokens);
    const std::string out = ::testing::TempDir() + "vlogits_" + std::to_string(::getpid()) + ".f32";
    const Result r =
        RunHearth("logits -m " + c.text + " --mmproj " + Mm("models/" + c.stem + ".gguf") +
                  " --chat " + chat + " --out " + out + " -t 2");
    std::remove(chat.c_str());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json layout = nlohmann::json::parse(r.err.substr(0, r.err.find('\n')));
    const std::vector<int32_t> tokens = RefTensor<int32_t>(ref, c.name + ".tokens");
    EXPECT_EQ(layout["tokens"].get<std::vector<int32_t>>(), tokens);
    const nlohmann::json ref_case =
        nlohmann::json::parse(std::string(*ref.GetString("ref.case." + c.name)));
    ASSERT_EQ(layout["media"].size(), 1U);
    EXPECT_EQ(layout["media"][0]["non_causal"].get<bool>(),
              ref_case["chunks"][1]["non_causal"].get<bool>());
    const std::vector<float> logits = ReadFloatFile(out);
    std::remove(out.c_str());
    const int V = static_cast<int>(logits.size() / tokens.size());
    ASSERT_EQ(logits.size(), tokens.size() * static_cast<size_t>(V));
    const auto ids = RefTensor<int32_t>(ref, c.name + ".top_ids");
    const auto top = RefTensor<float>(ref, c.name + ".top_logits");
    const auto lse = RefTensor<float>(ref, c.name + ".lse");
    int last_media = 0;
    for (size_t p = 0; p < tokens.size(); ++p) {
      if (tokens[p] < 0) last_media = static_cast<int>(p);
    }
    double max_after = 0, kl = 0;
    int top1_same = 0, top1_n = 0, top1_bad = 0;
    for (size_t p = 0; p < tokens.size(); ++p) {
      hearth::model::testing::RefRow row;
      row.ids.assign(ids.begin() + static_cast<long>(p) * 20,
                     ids.begin() + static_cast<long>(p + 1) * 20);
      row.logits.assign(top.begin() + static_cast<long>(p) * 20,
                        top.begin() + static_cast<long>(p + 1) * 20);
      row.lse = lse[p];
      const auto st =
          hearth::model::testing::CompareRow(row, &logits[p * static_cast<size_t>(V)], V);
      kl += st.kl;
      // Top-1 where the reference has a margin (README §7.2 counts margins > 0.25).
      if (st.ref_margin > 0.25) {
        ++top1_n;
        top1_same += st.argmax_same ? 1 : 0;
      }
      if (static_cast<int>(p) > last_media) {
        max_after = std::max(max_after, st.max_abs);
        if (st.ref_margin > 0.5 && !st.argmax_same) ++top1_bad;
      }
    }
    kl /= static_cast<double>(tokens.size());
    std::printf("%s %s: after-media max-abs %.3f, mean KL %.2e, top-1 %d/%d\n", c.stem.c_str(),
                c.name.c_str(), max_after, kl, top1_same, top1_n);
    if (c.type == ImageCase::kQ8) {
      EXPECT_LE(kl, 0.05);
      EXPECT_GE(top1_same, 0.9 * top1_n);
    } else {
      EXPECT_LE(max_after, 0.6);
      EXPECT_LE(kl, 1e-3);
      EXPECT_EQ(top1_bad, 0);
    }
  }
}

// `hearth run --image` (repeatable, with --image-tokens): the rows go in front of the prompt
// between their markers. tiny-mm has the marker tokens: BOS, then per image <|image> + rows +
// <image|>, then the pieces of the prompt (README §4: img-37x91 is 84 rows at every budget,
// img-200x120 is 60 rows at budget 70).
TEST(VisionCli, RunWithImages) {
  const std::string base = "run -m " + Mm("models/tiny-mm.F32.gguf") + " --mmproj " +
                           Mm("models/tiny-mm.mmproj.F32.gguf") +
                           " -p 'Describe.' -n 2 --temp 0 --no-display-prompt";
  const Result one = RunHearth(base + " --image " + Mm("media/img-37x91.png"));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(one.err, m, std::regex("(\\d+) prompt tokens"))) << one.err;
  const int n_one = std::stoi(m[1]);
  EXPECT_GE(n_one, 1 + 84 + 2 + 1);
  const Result two = RunHearth(base + " --image " + Mm("media/img-37x91.png") + " --image " +
                               Mm("media/img-200x120.png") + " --image-tokens 70");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  ASSERT_TRUE(std::regex_search(two.err, m, std::regex("(\\d+) prompt tokens"))) << two.err;
  EXPECT_EQ(std::stoi(m[1]), n_one + 60 + 2);
}

// `hearth chat --plain` with /image PATH: the image goes with the next message.
TEST(VisionCli, PlainChatImageCommand) {
  const std::string input = ::testing::TempDir() + "vision_chat_in.txt";
  std::ofstream(input) << "/image " << Mm("media/img-37x91.png") << "\nWhat is this?\n";
  const std::string cmd_in = "sh -c \"" + std::string(HEARTH_BINARY) + " chat --plain -m " +
                             Mm("models/tiny-mm.F32.gguf") + " --mmproj " +
                             Mm("models/tiny-mm.mmproj.F32.gguf") + " -n 2 --temp 0 -v < " + input +
                             "\"";
  const std::string out = ::testing::TempDir() + "vision_chat_out.txt";
  const int status = std::system((cmd_in + " >" + out + " 2>" + out + ".err").c_str());
  const std::string o = Slurp(out), e = Slurp(out + ".err");
  EXPECT_EQ(WEXITSTATUS(status), 0) << e;
  EXPECT_NE(o.find("84 image positions"), std::string::npos) << o;
  // A file that is not an image ends a piped chat with exit 3.
  std::ofstream(input) << "/image " << Mm("media/chirp-1.5s.wav") << "\nhi\n";
  const int bad = std::system((cmd_in + " >/dev/null 2>&1").c_str());
  EXPECT_EQ(WEXITSTATUS(bad), 3);
  std::remove(input.c_str());
  std::remove(out.c_str());
  std::remove((out + ".err").c_str());
}

TEST(VisionCli, ErrorsAreOneLineWithTheRightExitCode) {
  const std::string text = Text("models/tiny-e.F32.gguf");
  const std::string proj = " --mmproj " + Mm("models/tiny-e.mmproj.F32.gguf");
  const std::string out = ::testing::TempDir() + "vision_err.f32";
  // Not an image; a truncated image; a budget that is not one of Gemma 4's.
  Result r = RunHearth("embed-media -m " + text + proj + " --image " + Mm("media/chirp-1.5s.wav") +
                       " --out " + out);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  const std::string cut = ::testing::TempDir() + "vision_cut.png";
  const std::string png = Slurp(Mm("media/img-64x64.png"));
  std::ofstream(cut, std::ios::binary) << png.substr(0, png.size() / 2);
  r = RunHearth("embed-media -m " + text + proj + " --image " + cut + " --out " + out);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("corrupt"), std::string::npos) << r.err;
  std::remove(cut.c_str());
  r = RunHearth("embed-media -m " + text + proj + " --image " + Mm("media/img-64x64.png") +
                " --image-tokens 100 --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // A projector made for another text model (width 32 against 256).
  r = RunHearth("embed-media -m " + text + " --mmproj " + Mm("models/tiny-mm.mmproj.F32.gguf") +
                " --image " + Mm("media/img-64x64.png") + " --out " + out);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  // An http(s) image URL is refused: hearth fetches nothing.
  const std::string chat = ::testing::TempDir() + "vision_url_chat.json";
  std::ofstream(chat) << R"({"messages":[{"role":"user","content":[{"type":"image_url",
      "image_url":{"url":"https://example.com/x.png"}},{"type":"text","text":"x"}]}]})";
  r = RunHearth("logits -m " + text + proj + " --chat " + chat + " --out " + out);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("no network"), std::string::npos) << r.err;
  std::remove(chat.c_str());
  std::remove(out.c_str());
}

// `bench --image` on a fixture projector and image: one result per budget, with the row counts
// llama.cpp gives for img-200x120 at align 12 (fixture README §5: 60, 135, 170, 170, 170).
TEST(VisionCli, BenchImageReportsRowsPerBudget) {
  const std::string args = "bench --image " + Mm("media/img-200x120.png") + " --mmproj " +
                           Mm("models/tiny-e.mmproj.F32.gguf") + " -r 1 -t 1 --json";
  Result r = RunHearth(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["budgets"].size(), 5U) << r.out;
  const int budgets[] = {70, 140, 280, 560, 1120};
  const int rows[] = {60, 135, 170, 170, 170};
  const char* canvases[] = {"120x72", "180x108", "204x120", "204x120", "204x120"};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(j["budgets"][i]["image_tokens"], budgets[i]);
    EXPECT_EQ(j["budgets"][i]["rows"], rows[i]);
    EXPECT_EQ(j["budgets"][i]["canvas"], canvases[i]);
    EXPECT_GT(j["budgets"][i]["encode_s"].get<double>(), 0.0);
  }
  r = RunHearth(args + " --image-tokens 140");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["budgets"].size(), 1U);
  EXPECT_EQ(j["budgets"][0]["rows"], 135);
  // img-160x120.jpg at 70 tokens: 108x84 = 63 rows (README §5), in the text table.
  r = RunHearth("bench --image " + Mm("media/img-160x120.jpg") + " --mmproj " +
                Mm("models/tiny-dense.mmproj.F16.gguf") + " -r 2 --image-tokens 70");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\n +70 +108x84 +63 )"))) << r.out;
  // Not a budget; no projector; a projector without a vision encoder.
  r = RunHearth("bench --image " + Mm("media/img-64x64.png") + " --mmproj " +
                Mm("models/tiny-e.mmproj.F32.gguf") + " --image-tokens 100");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = RunHearth("bench --image " + Mm("media/img-64x64.png"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

// `make-model --vision-mmproj`: the real E2B vision tower (multimodal spec §4: width 768, 16
// layers, 12 heads of 64, MLP 3072, patch 16, 10240-row position tables) projecting to E2B's text
// width 1536, with the metadata keys of the converter's files (the fixture projectors') and the
// converter's tensor types (§1.5); it loads as a vision encoder.
TEST(VisionCli, MakeModelWritesARealSizeVisionProjector) {
  const std::string proj =
      ::testing::TempDir() + "hearth_e2b_vision_" + std::to_string(::getpid()) + ".mmproj.gguf";
  Result r = RunHearth("make-model --like e2b --vision-mmproj " + proj + " --vision-type Q8_0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  {
    const File f = File::Open(proj);
    const File fixture = File::Open(Mm("models/tiny-e.mmproj.Q8_0.gguf"));
    for (const auto& [key, value] : fixture.metadata()) {
      if (key.find("audio") != std::string::npos) continue;
      EXPECT_NE(f.Find(key), nullptr) << key;
    }
    EXPECT_EQ(f.GetString("general.architecture"), "clip");
    EXPECT_EQ(f.GetString("general.type"), "mmproj");
    EXPECT_EQ(f.GetString("clip.vision.projector_type"), "gemma4v");
    EXPECT_EQ(f.GetBool("clip.has_vision_encoder"), true);
    EXPECT_EQ(f.GetInt("clip.vision.embedding_length"), 768);
    EXPECT_EQ(f.GetInt("clip.vision.block_count"), 16);
    EXPECT_EQ(f.GetInt("clip.vision.attention.head_count"), 12);
    EXPECT_EQ(f.GetInt("clip.vision.feed_forward_length"), 3072);
    EXPECT_EQ(f.GetInt("clip.vision.patch_size"), 16);
    EXPECT_EQ(f.GetInt("clip.vision.projection_dim"), 1536);
    EXPECT_EQ(f.Find("clip.vision.projector.scale_factor"), nullptr);  // absent: pooling 3
    EXPECT_EQ(f.Find("clip.use_gelu"), nullptr);                       // absent: GELU-quick
    auto shape = [&](const char* name) {
      const auto* t = f.FindTensor(name);
      return t != nullptr ? t->shape : std::vector<int64_t>{};
    };
    auto type = [&](const char* name) {
      const auto* t = f.FindTensor(name);
      return t != nullptr ? static_cast<int>(t->type_id) : -1;
    };
    EXPECT_EQ(shape("v.patch_embd.weight"), (std::vector<int64_t>{16, 16, 3, 768}));
    EXPECT_EQ(type("v.patch_embd.weight"), 0);  // F32 outside F16 files
    EXPECT_EQ(shape("v.position_embd.weight"), (std::vector<int64_t>{768, 10240, 2}));
    EXPECT_EQ(type("v.position_embd.weight"), 0);
    EXPECT_EQ(shape("v.blk.15.attn_q.weight"), (std::vector<int64_t>{768, 768}));
    EXPECT_EQ(type("v.blk.15.attn_q.weight"), 8);  // Q8_0
    EXPECT_EQ(shape("v.blk.15.attn_k_norm.weight"), (std::vector<int64_t>{64}));
    EXPECT_EQ(shape("v.blk.0.ffn_gate.weight"), (std::vector<int64_t>{768, 3072}));
    EXPECT_EQ(shape("v.blk.0.ffn_down.weight"), (std::vector<int64_t>{3072, 768}));
    EXPECT_EQ(shape("v.blk.0.out_scale.weight"), (std::vector<int64_t>{1}));
    EXPECT_EQ(f.FindTensor("v.blk.16.ln1.weight"), nullptr);
    EXPECT_EQ(f.FindTensor("v.std_bias"), nullptr);  // only the 26B/31B tower standardizes
    EXPECT_EQ(f.FindTensor("v.blk.0.attn_q.input_min"), nullptr);
    EXPECT_EQ(shape("mm.input_projection.weight"), (std::vector<int64_t>{768, 1536}));
  }
  r = RunHearth("info -m " + proj);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("gemma4v, 16 layers, width 768, 12 heads, patch 16, pool 3"),
            std::string::npos)
      << r.out;
  std::remove(proj.c_str());
  // The same file name for both projectors, an unknown variant: usage errors.
  EXPECT_EQ(RunHearth("make-model --like e2b --vision-mmproj " + proj + " --audio-mmproj " + proj)
                .exit_code,
            2);
  EXPECT_EQ(RunHearth("make-model --like e9b --vision-mmproj " + proj).exit_code, 2);
  EXPECT_EQ(
      RunHearth("make-model --like e2b --vision-mmproj " + proj + " --vision-type Q4_0").exit_code,
      2);
}

}  // namespace
