// Media in prompts (engine/media.h) against llama.cpp's multimodal references
// (../shared/fixtures/multimodal/README.md §6, checks of §7.4): the token layout of a prompt
// holding media (marker pieces, media positions, chunks), and the text model fed with the
// reference's own encoder output — so these check the plumbing alone: rows in place of token
// embeddings, no sqrt(n_embd) scaling, token 0's per-layer embedding, the non-causal rule for
// images in sliding layers, one chunk per 30 s audio piece — against llama.cpp's logits.
// Also: Session prefix reuse through media, ChatSession with media, malformed layouts.
#include "engine/media.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../model/ref_check.h"
#include "base/error.h"
#include "engine/chat.h"
#include "engine/session.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace hearth::engine {
namespace {

using Json = nlohmann::ordered_json;

std::string Shared(const std::string& rel) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/" + rel;
}

class Ref {
 public:
  explicit Ref(const std::string& file)
      : file_(gguf::File::Open(Shared("multimodal/refs/" + file))) {}
  bool Has(const std::string& name) const { return file_.FindTensor(name) != nullptr; }
  std::vector<float> Floats(const std::string& name) const {
    return model::testing::RefTensor<float>(file_, name);
  }
  std::vector<int32_t> Ints(const std::string& name) const {
    return model::testing::RefTensor<int32_t>(file_, name);
  }
  Json Case(const std::string& name) const {
    return Json::parse(std::string(*file_.GetString("ref.case." + name)));
  }

 private:
  gguf::File file_;
};

struct Loaded {
  explicit Loaded(const std::string& path)
      : model(model::Model::Load(path)), tokenizer(text::Tokenizer::Load(path)) {}
  std::unique_ptr<model::Model> model;
  text::Tokenizer tokenizer;
};

// The reference's own encoder output as a media item (its chunks from the case's chunk list).
MediaPtr RefItem(const Ref& ref, const std::string& name, MediaKind kind, int n_embd,
                 uint64_t hash) {
  auto item = std::make_shared<MediaEmbedding>();
  item->kind = kind;
  item->n_embd = n_embd;
  item->hash = hash;
  const Json c = ref.Case(name);
  int k = 0;
  for (const Json& chunk : c["chunks"]) {
    if (chunk["type"] == "text") continue;
    item->non_causal = chunk["non_causal"].get<bool>();
    const std::string t =
        ref.Has(name + ".embd") ? name + ".embd" : name + ".embd.c" + std::to_string(k);
    const std::vector<float> rows = ref.Floats(t);
    item->rows.insert(item->rows.end(), rows.begin(), rows.end());
    item->chunks.push_back(chunk["n_tokens"].get<int>());
    ++k;
  }
  return item;
}

// The README's prompt: one user turn [media, question], generation prompt, thinking off.
TurnRequest Request(MediaKind kind, MediaPtr item) {
  TurnRequest r;
  const char* question =
      kind == MediaKind::kImage ? "Describe this image." : "Transcribe this audio.";
  r.messages =
      Json::array({Json{{"role", "user"},
                        {"content", Json::array({Json{{"type", MediaKindName(kind)}},
                                                 Json{{"type", "text"}, {"text", question}}})}}});
  r.media = {std::move(item)};
  return r;
}

struct MmCase {
  std::string ref_file;  // in multimodal/refs
  std::string text;      // the text model
  std::string case_name;
  MediaKind kind;
};

std::vector<MmCase> MmCases() {
  return {
      {"tiny-mm.mmproj.F32.audio.ref.gguf", "multimodal/models/tiny-mm.F32.gguf", "chirp-1.5s",
       MediaKind::kAudio},
      {"tiny-mm.mmproj.F32.audio.ref.gguf", "multimodal/models/tiny-mm.F32.gguf", "long-30.5s",
       MediaKind::kAudio},
      {"tiny-e.mmproj.F32.audio.ref.gguf", "models/tiny-e.F32.gguf", "chirp-1.5s",
       MediaKind::kAudio},
      {"tiny-e.mmproj.F32.audio.ref.gguf", "models/tiny-e.F32.gguf", "tones-4s", MediaKind::kAudio},
      // Images through the same plumbing (non-causal in the sliding layers at these widths).
      {"tiny-e.mmproj.F32.ref.gguf", "models/tiny-e.F32.gguf", "img-64x64", MediaKind::kImage},
      {"tiny-mm.mmproj.F32.ref.gguf", "multimodal/models/tiny-mm.F32.gguf", "img-37x91",
       MediaKind::kImage},
      {"tiny-dense.mmproj.F32.ref.gguf", "models/tiny-dense.F32.gguf", "img-200x120",
       MediaKind::kImage},
  };
}

// README §7.4 items 1 and 4, with the reference embeddings.
TEST(MediaPrompt, LayoutAndLogitsMatchLlamaCpp) {
  for (const MmCase& s : MmCases()) {
    SCOPED_TRACE(s.ref_file + " " + s.case_name);
    const Ref ref(s.ref_file);
    const Loaded lm(Shared(s.text));
    const model::ModelConfig& c = lm.model->config();
    const MediaPtr item = RefItem(ref, s.case_name, s.kind, c.n_embd, 1);
    const PreparedTurn turn = PrepareTurn(Request(s.kind, item), &lm.tokenizer);

    // 1. Tokens, marker pieces, media positions and their count.
    EXPECT_EQ(turn.tokens, ref.Ints(s.case_name + ".tokens"));
    ASSERT_EQ(turn.media.size(), 1u);
    const std::vector<int32_t> chunks = ref.Ints(s.case_name + ".chunks");  // [n][4]
    ASSERT_GE(chunks.size(), 8u);
    EXPECT_EQ(turn.media[0].pos, chunks[4 + 1]);  // the first media chunk's pos0

    // 4. Logits at every position, in fast mode with the default F16 cache (what users run).
    for (bool precise : {false, true}) {
      model::ContextOptions o;
      o.n_ctx = static_cast<int>(turn.tokens.size());
      o.n_ubatch = 512;
      o.n_threads = 2;
      o.precise = precise;
      model::Context ctx(*lm.model, o);
      const size_t V = static_cast<size_t>(c.n_vocab);
      std::vector<float> logits(turn.tokens.size() * V);
      DecodePromptLogits(ctx, turn.tokens, turn.media, logits.data());

      // Stored rows: every position, or (long clip) the text positions listed in top_pos.
      std::vector<int32_t> rows_pos;
      if (ref.Has(s.case_name + ".top_pos")) {
        rows_pos = ref.Ints(s.case_name + ".top_pos");
      } else {
        for (size_t p = 0; p < turn.tokens.size(); ++p) rows_pos.push_back(static_cast<int>(p));
      }
      const std::vector<int32_t> top_ids = ref.Ints(s.case_name + ".top_ids");
      const std::vector<float> top_logits = ref.Floats(s.case_name + ".top_logits");
      const std::vector<float> lse = ref.Floats(s.case_name + ".lse");
      const int after = turn.media[0].pos + item->n_rows();
      double max_after = 0, kl_sum = 0;
      int top1_bad = 0;
      for (size_t r = 0; r < rows_pos.size(); ++r) {
        const int p = rows_pos[r];
        model::testing::RefRow row;
        row.ids.assign(top_ids.begin() + r * 20, top_ids.begin() + (r + 1) * 20);
        row.logits.assign(top_logits.begin() + r * 20, top_logits.begin() + (r + 1) * 20);
        row.lse = lse[static_cast<size_t>(p)];
        const auto st = model::testing::CompareRow(row, &logits[p * V], c.n_vocab);
        kl_sum += st.kl;
        if (p >= after) {
          max_after = std::max(max_after, st.max_abs);
          if (st.ref_margin > 0.5 && !st.argmax_same) ++top1_bad;
        }
      }
      const double mean_kl = kl_sum / static_cast<double>(rows_pos.size());
      std::printf("%s %s %s: after-media max-abs %.4f, mean KL %.2e\n", s.ref_file.c_str(),
                  s.case_name.c_str(), precise ? "precise" : "fast", max_after, mean_kl);
      EXPECT_LE(max_after, 0.6);
      EXPECT_LE(mean_kl, 1e-3);
      EXPECT_EQ(top1_bad, 0);
    }
  }
}

// What a real bug looks like (README §7.5): an image decoded causally moves the logits after it
// by 9–12; the check above would catch it. Here the same with the rule switched off by hand.
TEST(MediaPrompt, ImageDecodedCausallyIsFarOff) {
  const Ref ref("tiny-e.mmproj.F32.ref.gguf");
  const Loaded lm(Shared("models/tiny-e.F32.gguf"));
  const int V = lm.model->config().n_vocab;
  auto item = std::const_pointer_cast<MediaEmbedding>(
      RefItem(ref, "img-64x64", MediaKind::kImage, lm.model->config().n_embd, 1));
  ASSERT_TRUE(item->non_causal);
  auto run = [&](bool non_causal) {
    item->non_causal = non_causal;
    const PreparedTurn turn = PrepareTurn(Request(MediaKind::kImage, item), &lm.tokenizer);
    model::Context ctx(*lm.model, {.n_ctx = 256, .n_ubatch = 256, .n_threads = 2});
    std::vector<float> logits(turn.tokens.size() * V);
    DecodePromptLogits(ctx, turn.tokens, turn.media, logits.data());
    return std::vector<float>(logits.end() - V, logits.end());
  };
  const std::vector<float> good = run(true), bad = run(false);
  double d = 0;
  for (int i = 0; i < V; ++i) d = std::max(d, std::abs(double{good[i]} - bad[i]));
  EXPECT_GT(d, 1.0);
}

// A non-causal span must be one forward step: longer than n_ubatch is refused, not cut.
TEST(MediaPrompt, NonCausalSpanLongerThanAStepIsRefused) {
  const Loaded lm(Shared("models/tiny-e.F32.gguf"));
  const int H = lm.model->config().n_embd;
  model::Context ctx(*lm.model, {.n_ctx = 256, .n_ubatch = 16, .n_threads = 1});
  std::vector<float> rows(static_cast<size_t>(20) * H, 0.1f);
  try {
    ctx.DecodeEmbeddings(rows, nullptr, false, /*non_causal=*/true);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kUsage);
  }
  // Causal rows are split into steps like tokens.
  ctx.DecodeEmbeddings(rows, nullptr, false, false);
  EXPECT_EQ(ctx.n_past(), 20);
  std::vector<float> ragged(static_cast<size_t>(H) + 1, 0.0f);
  EXPECT_THROW(ctx.DecodeEmbeddings(ragged, nullptr, false), Error);
}

// The placeholders and the items must agree; a text part that spells a placeholder is refused.
TEST(MediaPrompt, PlaceholdersAndItemsMustAgree) {
  const Loaded lm(Shared("multimodal/models/tiny-mm.F32.gguf"));
  auto item = std::make_shared<MediaEmbedding>();
  item->kind = MediaKind::kAudio;
  item->n_embd = lm.model->config().n_embd;
  item->rows.assign(static_cast<size_t>(3) * item->n_embd, 0.5f);
  item->chunks = {3};
  TurnRequest r = Request(MediaKind::kAudio, item);
  r.media.clear();
  EXPECT_THROW(PrepareTurn(r, &lm.tokenizer), Error);  // a media part without its item
  r = Request(MediaKind::kAudio, item);
  r.messages[0]["content"][1]["text"] = "say <|audio|> twice";
  EXPECT_THROW(PrepareTurn(r, &lm.tokenizer), Error);
  r = Request(MediaKind::kImage, item);  // an image part given an audio item
  EXPECT_THROW(PrepareTurn(r, &lm.tokenizer), Error);
  // Media rows are kMediaRow and never reach the model as token ids.
  r = Request(MediaKind::kAudio, item);
  const PreparedTurn turn = PrepareTurn(r, &lm.tokenizer);
  EXPECT_EQ(std::count(turn.tokens.begin(), turn.tokens.end(), kMediaRow), 3);
  model::Context ctx(*lm.model, {.n_ctx = 64, .n_ubatch = 64, .n_threads = 1});
  EXPECT_THROW(ctx.Decode(turn.tokens, nullptr, false), Error);
}

// Session: a prompt holding media reuses its cached prefix through the same item, not through
// another item with the same length, and its last logits equal a fresh decode's.
TEST(MediaSession, PrefixReuseFollowsTheContentHash) {
  const Ref ref("tiny-mm.mmproj.F32.audio.ref.gguf");
  const Loaded lm(Shared("multimodal/models/tiny-mm.F32.gguf"));
  const int H = lm.model->config().n_embd, V = lm.model->config().n_vocab;
  const MediaPtr a = RefItem(ref, "chirp-1.5s", MediaKind::kAudio, H, 1);
  auto b = std::make_shared<MediaEmbedding>(*a);
  b->hash = 2;
  for (float& x : b->rows) x = -x;

  const PreparedTurn ta = PrepareTurn(Request(MediaKind::kAudio, a), &lm.tokenizer);
  const PreparedTurn tb = PrepareTurn(Request(MediaKind::kAudio, b), &lm.tokenizer);
  ASSERT_EQ(ta.tokens, tb.tokens);  // same layout, other rows

  // n_ubatch large enough that the sliding ring still holds what a cut at the media needs.
  Session session(*lm.model, lm.tokenizer, {.n_ctx = 256, .n_ubatch = 128, .n_threads = 1});
  auto copy = [](std::span<const float> v) { return std::vector<float>(v.begin(), v.end()); };
  const std::vector<float> first = copy(session.Prefill(ta.tokens, ta.media));
  EXPECT_EQ(session.n_reused(), 0);
  session.Prefill(ta.tokens, ta.media);
  EXPECT_EQ(session.n_reused(), static_cast<int>(ta.tokens.size()) - 1);
  const std::vector<float> other = copy(session.Prefill(tb.tokens, tb.media));
  EXPECT_EQ(session.n_reused(), tb.media[0].pos);  // another item: only the text before it
  session.Prefill(ta.tokens, ta.media);
  EXPECT_EQ(session.n_reused(), ta.media[0].pos);

  model::Context fresh(*lm.model, {.n_ctx = 256, .n_ubatch = 256, .n_threads = 1});
  std::vector<float> all(ta.tokens.size() * V);
  DecodePromptLogits(fresh, ta.tokens, ta.media, all.data());
  double d = 0, moved = 0;
  for (int i = 0; i < V; ++i) {
    d = std::max(d, std::abs(double{first[i]} - all[all.size() - V + i]));
    moved = std::max(moved, std::abs(double{first[i]} - other[i]));
  }
  EXPECT_LT(d, 1e-3);
  EXPECT_GT(moved, 1e-2);  // the rows matter

  // Generation over a media prompt (speculation is off for it), and the repetition penalty's
  // window over the prompt skips the media rows.
  GenerateOptions g;
  g.max_tokens = 4;
  g.sampling.temperature = 0;
  g.sampling.repeat_penalty = 1.1f;
  g.stop_at_eog = false;
  const GenerateResult r = session.Generate(ta.tokens, ta.media, g);
  EXPECT_EQ(r.tokens.size(), 4u);
  EXPECT_EQ(session.media().size(), 1u);

  // Spans that do not account for the media rows are refused.
  EXPECT_THROW(session.Prefill(ta.tokens, {}), Error);
}

// ChatSession keeps the items with their messages across turns.
TEST(MediaSession, ChatSessionCarriesMedia) {
  const Loaded lm(Shared("multimodal/models/tiny-mm.F32.gguf"));
  const int H = lm.model->config().n_embd;
  auto item = std::make_shared<MediaEmbedding>();
  item->kind = MediaKind::kAudio;
  item->n_embd = H;
  item->rows.assign(static_cast<size_t>(5) * H, 0.25f);
  item->chunks = {5};
  item->hash = 7;
  Session session(*lm.model, lm.tokenizer, {.n_ctx = 512, .n_ubatch = 64, .n_threads = 1});
  ChatSession chat(session);
  chat.AddUser("What is said?", {item});
  EXPECT_NE(chat.RenderPrompt().find("<|audio|>What is said?"), std::string::npos);
  GenerateOptions g;
  g.max_tokens = 3;
  g.sampling.temperature = 0;
  chat.Respond(g, {});
  chat.AddUser("And then?");
  chat.Respond(g, {});
  EXPECT_EQ(session.media().size(), 1u);
  EXPECT_GT(session.n_reused(), 5 + 8);  // the first turn, media included, was reused
  chat.PopMessage();
  chat.PopMessage();
  chat.PopMessage();
  chat.PopMessage();  // the media message: its item goes with it
  EXPECT_EQ(chat.messages().size(), 0u);
  chat.AddUser("Text only now.");
  EXPECT_EQ(chat.RenderPrompt().find("<|audio|>"), std::string::npos);
  chat.Respond(g, {});  // the items left with their message: no media spans
}

// The projector encodes content parts (the encoder itself is checked in tests/audio), keeps
// them by content hash, and refuses what a front end must not accept.
TEST(MediaProjector, EncodesPartsAndCachesThem) {
  const Loaded lm(Shared("multimodal/models/tiny-mm.F32.gguf"));
  auto proj =
      Projector::Open(Shared("multimodal/models/tiny-mm.mmproj.F32.gguf"), lm.model->config(), 2);
  EXPECT_TRUE(proj->has_audio());
  const std::string wav = Shared("multimodal/media/chirp-1.5s.wav");
  const Json part = {{"type", "audio"}, {"path", wav}};
  const MediaPtr a = proj->EncodePart(part, {.allow_paths = true});
  EXPECT_EQ(a->kind, MediaKind::kAudio);
  EXPECT_FALSE(a->non_causal);
  EXPECT_EQ(a->chunks, std::vector<int>{38});
  const std::vector<float> want =
      Ref("tiny-mm.mmproj.F32.audio.ref.gguf").Floats("chirp-1.5s.embd");
  ASSERT_EQ(a->rows.size(), want.size());
  double d = 0;
  for (size_t i = 0; i < want.size(); ++i) d = std::max(d, std::abs(double{a->rows[i]} - want[i]));
  EXPECT_LE(d, 1e-2);
  EXPECT_EQ(proj->EncodePart(part, {.allow_paths = true}), a);  // the cache, not a new encode
  EXPECT_EQ(proj->cached(), 1u);

  auto code = [&](const Json& p, bool paths) {
    try {
      proj->EncodePart(p, {.allow_paths = paths});
    } catch (const Error& e) {
      return e.error_class();
    }
    return ErrorClass::kInternal;
  };
  EXPECT_EQ(code(part, false), ErrorClass::kUsage);  // no paths from the server
  EXPECT_EQ(code(Json{{"type", "audio"}}, true), ErrorClass::kInvalidInput);
  EXPECT_EQ(code(Json{{"type", "audio"}, {"path", wav + ".missing"}}, true), ErrorClass::kIo);
  EXPECT_EQ(code(Json{{"type", "input_audio"}, {"input_audio", {{"data", "not base64!"}}}}, false),
            ErrorClass::kInvalidInput);
  EXPECT_EQ(code(Json{{"type", "input_audio"}, {"input_audio", {{"data", "AAAAAAAA"}}}}, false),
            ErrorClass::kInvalidInput);  // base64, but not audio
  EXPECT_EQ(code(Json{{"type", "input_audio"}}, false), ErrorClass::kInvalidInput);
  // Image parts: a path that is not an image, no path, a budget that is not Gemma 4's, an
  // http(s) URL (never fetched), a data: URL that is not base64, one whose bytes are no image.
  EXPECT_EQ(code(Json{{"type", "image"}, {"path", wav}}, true), ErrorClass::kInvalidInput);
  EXPECT_EQ(code(Json{{"type", "image"}}, true), ErrorClass::kInvalidInput);
  EXPECT_EQ(code(Json{{"type", "image"}, {"path", wav}}, false), ErrorClass::kUsage);
  const std::string png = Shared("multimodal/media/img-64x64.png");
  EXPECT_EQ(code(Json{{"type", "image"}, {"path", png}, {"image_tokens", 100}}, true),
            ErrorClass::kInvalidInput);
  EXPECT_EQ(
      code(Json{{"type", "image_url"}, {"image_url", {{"url", "https://x.test/a.png"}}}}, false),
      ErrorClass::kInvalidInput);
  EXPECT_EQ(
      code(Json{{"type", "image_url"}, {"image_url", {{"url", "data:image/png,abc"}}}}, false),
      ErrorClass::kInvalidInput);
  EXPECT_EQ(
      code(Json{{"type", "image_url"}, {"image_url", "data:image/png;base64,AAAAAAAA"}}, false),
      ErrorClass::kInvalidInput);
}

TEST(MediaProjector, RefusesProjectorsThatDoNotFit) {
  const Loaded e(Shared("models/tiny-e.F32.gguf"));
  // Vision only (like 26B/31B): no audio, and the error names the models that have it.
  try {
    auto p = Projector::Open(Shared("multimodal/models/tiny-dense.mmproj.F32.gguf"),
                             e.model->config(), 1);
    p->EncodeAudio(std::vector<uint8_t>(16, 0), "x.wav");
    FAIL() << "no error";
  } catch (const Error& err) {
    EXPECT_EQ(err.error_class(), ErrorClass::kInvalidInput);
    EXPECT_NE((std::string(err.what()) + err.hint()).find("E2B"), std::string::npos);
  }
  // Made for another text width (tiny-mm is 32 wide, tiny-e 256).
  EXPECT_THROW(
      Projector::Open(Shared("multimodal/models/tiny-mm.mmproj.F32.gguf"), e.model->config(), 1),
      Error);
  // Not a projector at all.
  EXPECT_THROW(Projector::Open(Shared("models/tiny-e.F32.gguf"), e.model->config(), 1), Error);
}

TEST(MediaParts, KindsAndOrder) {
  const Json messages = Json::parse(R"([
    {"role":"system","content":[{"type":"text","text":"s"}]},
    {"role":"user","content":[{"type":"audio","path":"a.wav"},{"type":"text","text":"x"},
                              {"type":"image_url","image_url":{"url":"data:"}}]},
    {"role":"tool","content":"r"},
    {"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA"}}]}])");
  const auto parts = MediaParts(messages);
  ASSERT_EQ(parts.size(), 3u);
  MediaKind k;
  EXPECT_TRUE(IsMediaPart(*parts[0], &k));
  EXPECT_EQ(k, MediaKind::kAudio);
  EXPECT_TRUE(IsMediaPart(*parts[1], &k));
  EXPECT_EQ(k, MediaKind::kImage);
  EXPECT_TRUE(IsMediaPart(*parts[2], &k));
  EXPECT_EQ(k, MediaKind::kAudio);
  EXPECT_FALSE(IsMediaPart(Json{{"type", "text"}}));
  EXPECT_FALSE(IsMediaPart(Json(3)));
}

}  // namespace
}  // namespace hearth::engine
