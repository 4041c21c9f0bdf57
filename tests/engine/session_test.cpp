// The generation loop on the tiny fixture models (random weights: these tests check mechanics,
// not meaning). References are independent of Session: the argmax chain computed directly with
// model::Context, llama.cpp's greedy continuation stored in fixtures/refs, and text decoded with
// the tokenizer.
#include "engine/session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace hearth::engine {
namespace {

std::string Fixture(const std::string& rel) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/" + rel;
}

std::vector<int32_t> RefInts(const gguf::File& ref, const std::string& name) {
  const gguf::TensorInfo* t = ref.FindTensor(name);
  EXPECT_NE(t, nullptr) << name;
  if (!t) return {};
  std::vector<int32_t> v(t->n_elements());
  std::memcpy(v.data(), t->data, v.size() * sizeof(int32_t));
  return v;
}

model::ContextOptions Options(int n_ctx, int n_ubatch = 256) {
  model::ContextOptions o;
  o.n_ctx = n_ctx;
  o.n_ubatch = n_ubatch;
  o.n_threads = 1;  // a busy machine makes waiting for pool workers the slow part
  return o;
}

SamplingParams Greedy() {
  SamplingParams p;
  p.temperature = 0;
  return p;
}

SamplingParams Hot(uint64_t seed) {
  SamplingParams p;
  p.temperature = 1.5f;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  p.seed = seed;
  return p;
}

// A model and its tokenizer, loaded once per test.
struct Loaded {
  explicit Loaded(const std::string& name)
      : model(model::Model::Load(Fixture("models/" + name + ".gguf"))),
        tokenizer(text::Tokenizer::Load(Fixture("models/" + name + ".gguf"))) {}
  std::unique_ptr<model::Model> model;
  text::Tokenizer tokenizer;
};

// Greedy decoding done by hand on a fresh Context: argmax (lowest id on ties) of the last
// logits, fed back one token at a time.
std::vector<int32_t> ArgmaxChain(const model::Model& m, const std::vector<int32_t>& prompt, int n) {
  model::Context ctx(m, Options(256));
  const int V = m.config().n_vocab;
  std::vector<float> logits(static_cast<size_t>(V));
  ctx.Decode(prompt, logits.data(), false);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t best =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(best);
    if (i + 1 < n) ctx.Decode(std::span<const int32_t>(&best, 1), logits.data(), false);
  }
  return out;
}

const std::vector<int32_t> kPrompt = {2, 1946, 3205, 3506, 17, 900, 1200};

TEST(Session, GreedyEqualsArgmaxChain) {
  for (const char* name : {"tiny-e.Q8_0", "tiny-moe.Q4_K_M", "tiny-dense.Q6_K"}) {
    SCOPED_TRACE(name);
    Loaded l(name);
    const std::vector<int32_t> expected = ArgmaxChain(*l.model, kPrompt, 20);
    Session session(*l.model, l.tokenizer, Options(256));
    GenerateOptions opt;
    opt.max_tokens = 20;
    opt.sampling = Greedy();
    opt.stop_at_eog = false;
    std::string streamed;
    opt.on_text = [&](std::string_view piece) {
      streamed += piece;
      return true;
    };
    const GenerateResult r = session.Generate(kPrompt, opt);
    EXPECT_EQ(r.tokens, expected);
    EXPECT_EQ(r.stats.stop_reason, StopReason::kMaxTokens);
    EXPECT_EQ(r.stats.generated_tokens, 20);
    EXPECT_EQ(r.stats.prompt_tokens, static_cast<int>(kPrompt.size()));
    EXPECT_EQ(r.stats.reused_tokens, 0);
    EXPECT_EQ(r.text, l.tokenizer.Decode(expected));
    EXPECT_EQ(streamed, r.text);
    // The cache holds the prompt and every generated token but the last (never fed back).
    EXPECT_EQ(session.tokens().size(), kPrompt.size() + 19);
  }
}

TEST(Session, GreedyMatchesLlamaCpp) {
  // refs/README §6b: llama.cpp's greedy continuation of each sequence on the F32 files.
  for (const char* stem : {"tiny-dense.F32", "tiny-e.F32"}) {
    SCOPED_TRACE(stem);
    Loaded l(stem);
    const gguf::File ref = gguf::File::Open(Fixture(std::string("refs/") + stem + ".ref.gguf"));
    const std::vector<int32_t> prompt = RefInts(ref, "short.tokens");
    const std::vector<int32_t> expected = RefInts(ref, "short.gen.tokens");
    Session session(*l.model, l.tokenizer, Options(512));
    GenerateOptions opt;
    opt.max_tokens = static_cast<int>(expected.size());
    opt.sampling = Greedy();
    opt.stop_at_eog = false;
    const GenerateResult r = session.Generate(prompt, opt);
    EXPECT_EQ(r.tokens, expected);
  }
}

TEST(Session, SameSeedSameOutput) {
  Loaded l("tiny-dense.Q8_0");
  auto run = [&](uint64_t seed) {
    Session session(*l.model, l.tokenizer, Options(64));
    GenerateOptions opt;
    opt.max_tokens = 16;
    opt.sampling = Hot(seed);
    opt.stop_at_eog = false;
    return session.Generate(kPrompt, opt).tokens;
  };
  const std::vector<int32_t> a = run(7), b = run(7), c = run(8);
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Session, PrefixReuseGivesSameLogits) {
  Loaded l("tiny-e.Q8_0");
  std::vector<int32_t> a(60), b;
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int32_t>(5 + (i * 53) % 4000);
  b.assign(a.begin(), a.begin() + 50);
  b.push_back(77);
  b.push_back(78);
  Session warm(*l.model, l.tokenizer, Options(128, 16));
  warm.Prefill(a);
  EXPECT_EQ(warm.n_reused(), 0);
  warm.Prefill(b);
  EXPECT_EQ(warm.n_reused(), 50);  // the tokens b shares with a
  const std::span<const float> again = warm.Prefill(b);
  EXPECT_EQ(warm.n_reused(), 51);  // all of b but its last token, whose logits are needed
  const std::vector<float> reused(again.begin(), again.end());
  Session cold(*l.model, l.tokenizer, Options(128, 16));
  const std::span<const float> fresh = cold.Prefill(b);
  ASSERT_EQ(fresh.size(), reused.size());
  float worst = 0;
  for (size_t i = 0; i < fresh.size(); ++i) worst = std::max(worst, std::abs(fresh[i] - reused[i]));
  EXPECT_LT(worst, 1e-4f);
}

TEST(Session, PrefixBeyondTheSlidingRingIsDecodedAgain) {
  // tiny-e has a sliding window of 32; with n_ubatch 16 its ring holds 47 positions. After 150
  // tokens, going back to position 10 needs cells the ring has overwritten: the session must
  // start over (reusing nothing) and still give a fresh context's logits.
  Loaded l("tiny-e.Q8_0");
  std::vector<int32_t> a(150), b;
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int32_t>(5 + (i * 31) % 4000);
  b.assign(a.begin(), a.begin() + 10);
  b.push_back(99);
  Session warm(*l.model, l.tokenizer, Options(256, 16));
  warm.Prefill(a);
  const std::span<const float> got = warm.Prefill(b);
  EXPECT_EQ(warm.n_reused(), 0);
  EXPECT_EQ(warm.tokens(), b);
  const std::vector<float> again(got.begin(), got.end());
  Session cold(*l.model, l.tokenizer, Options(256, 16));
  const std::span<const float> fresh = cold.Prefill(b);
  float worst = 0;
  for (size_t i = 0; i < fresh.size(); ++i) worst = std::max(worst, std::abs(fresh[i] - again[i]));
  EXPECT_LT(worst, 1e-4f);
  // Going back within the ring's reach keeps the prefix.
  warm.Prefill(a);
  std::vector<int32_t> c(a.begin(), a.begin() + 140);
  c.push_back(99);
  warm.Prefill(c);
  EXPECT_EQ(warm.n_reused(), 140);
}

TEST(Session, PrefixReuseAcrossGenerations) {
  // A chat-like second request: the first prompt, what was generated, and a new user part.
  Loaded l("tiny-moe.Q8_0");
  GenerateOptions opt;
  opt.max_tokens = 8;
  opt.sampling = Greedy();
  opt.stop_at_eog = false;
  Session warm(*l.model, l.tokenizer, Options(128));
  const GenerateResult first = warm.Generate(kPrompt, opt);
  std::vector<int32_t> second = kPrompt;
  second.insert(second.end(), first.tokens.begin(), first.tokens.end());
  for (int32_t t : {106, 10, 105, 2364, 107}) second.push_back(t);
  const GenerateResult r2 = warm.Generate(second, opt);
  // Everything the cache held: the prompt and the generated tokens but the last one.
  EXPECT_EQ(r2.stats.reused_tokens, static_cast<int>(kPrompt.size() + first.tokens.size() - 1));
  EXPECT_EQ(r2.stats.prompt_tokens, static_cast<int>(second.size()));
  Session cold(*l.model, l.tokenizer, Options(128));
  const GenerateResult r3 = cold.Generate(second, opt);
  EXPECT_EQ(r3.stats.reused_tokens, 0);
  EXPECT_EQ(r2.tokens, r3.tokens);
  EXPECT_EQ(r2.tokens, ArgmaxChain(*l.model, second, 8));
}

TEST(Session, StopStringsCutExactly) {
  Loaded l("tiny-dense.Q8_0");
  GenerateOptions opt;
  opt.max_tokens = 24;
  opt.sampling = Hot(11);
  opt.stop_at_eog = false;
  Session session(*l.model, l.tokenizer, Options(64));
  const GenerateResult full = session.Generate(kPrompt, opt);
  const std::string text = full.text;
  ASSERT_GT(text.size(), 12u) << text;
  // Stop strings taken from the generated text itself; the output ends right before the first
  // occurrence of any of them, and nothing of a stop string is ever streamed.
  for (size_t at : {text.size() / 3, text.size() / 2, text.size() - 3}) {
    const std::string stop = text.substr(at, 3);
    opt.stop = {"never-appears", stop};
    std::string streamed;
    opt.on_text = [&](std::string_view piece) {
      streamed += piece;
      return true;
    };
    const GenerateResult s = session.Generate(kPrompt, opt);
    EXPECT_EQ(s.stats.stop_reason, StopReason::kStopString) << stop;
    EXPECT_EQ(s.text, text.substr(0, text.find(stop))) << stop;
    EXPECT_EQ(streamed, s.text);
    EXPECT_LE(s.tokens.size(), full.tokens.size());
  }
}

TEST(Session, MaxTokensRespected) {
  Loaded l("tiny-e.Q4_0");
  Session session(*l.model, l.tokenizer, Options(64));
  for (int n : {1, 2, 5}) {
    GenerateOptions opt;
    opt.max_tokens = n;
    opt.sampling = Hot(3);
    opt.stop_at_eog = false;
    const GenerateResult r = session.Generate(kPrompt, opt);
    EXPECT_EQ(static_cast<int>(r.tokens.size()), n);
    EXPECT_EQ(r.stats.stop_reason, StopReason::kMaxTokens);
  }
}

TEST(Session, EndOfGenerationTokensStop) {
  Loaded l("tiny-e.Q8_0");
  Session session(*l.model, l.tokenizer, Options(64));
  // The model is random; a large logit bias makes each end token the certain choice.
  for (int32_t eog : {1, 106, 50}) {
    SCOPED_TRACE(eog);
    GenerateOptions opt;
    opt.max_tokens = 10;
    opt.sampling = Greedy();
    opt.sampling.logit_bias = {{eog, 1000.0f}};
    const GenerateResult r = session.Generate(kPrompt, opt);
    EXPECT_EQ(r.stats.stop_reason, StopReason::kEndOfGeneration);
    EXPECT_EQ(r.stats.eog_token, eog);
    EXPECT_TRUE(r.tokens.empty());
    EXPECT_EQ(r.text, "");
    EXPECT_EQ(r.stats.generated_tokens, 1);
    // Without stop_at_eog it is an ordinary (invisible) token.
    opt.stop_at_eog = false;
    const GenerateResult k = session.Generate(kPrompt, opt);
    EXPECT_EQ(k.stats.stop_reason, StopReason::kMaxTokens);
    EXPECT_EQ(k.tokens, std::vector<int32_t>(10, eog));
  }
  // A token outside the set does not stop.
  GenerateOptions opt;
  opt.max_tokens = 3;
  opt.sampling = Greedy();
  opt.sampling.logit_bias = {{107, 1000.0f}};
  EXPECT_EQ(session.Generate(kPrompt, opt).stats.stop_reason, StopReason::kMaxTokens);
}

TEST(Session, ContextOverflowIsAClearErrorBeforeAnyWork) {
  Loaded l("tiny-dense.Q4_0");
  Session session(*l.model, l.tokenizer, Options(16));
  GenerateOptions opt;
  opt.max_tokens = 10;  // 7 + 10 > 16
  opt.sampling = Greedy();
  try {
    session.Generate(kPrompt, opt);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kResource);
    EXPECT_NE(std::string(e.what()).find("16"), std::string::npos) << e.what();
    EXPECT_FALSE(e.hint().empty());
  }
  EXPECT_TRUE(session.tokens().empty());  // nothing was decoded
  opt.max_tokens = 9;                     // 7 + 9 = 16 fits
  EXPECT_EQ(session.Generate(kPrompt, opt).tokens.size(), 9u);
  // max_tokens <= 0: until the context is full.
  opt.max_tokens = 0;
  opt.stop_at_eog = false;
  const GenerateResult full = session.Generate(kPrompt, opt);
  EXPECT_EQ(full.stats.stop_reason, StopReason::kContextFull);
  EXPECT_EQ(full.tokens.size(), 16u - kPrompt.size() + 1);  // the last one is never fed back
  // An empty prompt and bad sampling parameters are usage errors.
  EXPECT_THROW(session.Generate({}, opt), Error);
  opt.sampling.top_p = 2;
  EXPECT_THROW(session.Generate(kPrompt, opt), Error);
}

TEST(Session, CancellationStopsPromptly) {
  Loaded l("tiny-e.Q8_0");
  Session session(*l.model, l.tokenizer, Options(512, 8));
  std::atomic<bool> cancel{false};
  GenerateOptions opt;
  opt.max_tokens = 400;
  opt.sampling = Hot(5);
  opt.stop_at_eog = false;
  opt.cancel = &cancel;
  int pieces = 0;
  opt.on_text = [&](std::string_view) {
    // Cancel (as a signal handler would) after a few pieces of text.
    if (++pieces == 3) cancel.store(true);
    return true;
  };
  const GenerateResult r = session.Generate(kPrompt, opt);
  EXPECT_EQ(r.stats.stop_reason, StopReason::kCancelled);
  EXPECT_LE(r.tokens.size(), 12u);
  // Set before the call: stops during prefill, before any token is sampled.
  std::vector<int32_t> longer(100, 300);
  longer[0] = 2;
  const GenerateResult p = session.Generate(longer, opt);
  EXPECT_EQ(p.stats.stop_reason, StopReason::kCancelled);
  EXPECT_TRUE(p.tokens.empty());
  EXPECT_LT(session.tokens().size(), longer.size());
  // The session stays usable.
  cancel.store(false);
  opt.on_text = nullptr;
  opt.max_tokens = 4;
  EXPECT_EQ(session.Generate(longer, opt).tokens.size(), 4u);
}

TEST(Session, CallbackCanStop) {
  Loaded l("tiny-dense.Q8_0");
  Session session(*l.model, l.tokenizer, Options(64));
  GenerateOptions opt;
  opt.max_tokens = 30;
  opt.sampling = Hot(9);
  opt.stop_at_eog = false;
  int calls = 0;
  opt.on_text = [&](std::string_view) { return ++calls < 2; };
  const GenerateResult r = session.Generate(kPrompt, opt);
  EXPECT_EQ(r.stats.stop_reason, StopReason::kCallback);
  EXPECT_EQ(calls, 2);
  EXPECT_LT(r.tokens.size(), 30u);
}

TEST(Session, StatsSummary) {
  GenerateStats s;
  s.prompt_tokens = 10;
  s.reused_tokens = 4;
  s.prompt_seconds = 0.5;
  s.generated_tokens = 8;
  s.generate_seconds = 2;
  s.stop_reason = StopReason::kEndOfGeneration;
  EXPECT_DOUBLE_EQ(s.prompt_tokens_per_second(), 12.0);
  EXPECT_DOUBLE_EQ(s.generate_tokens_per_second(), 4.0);
  EXPECT_EQ(s.Summary(),
            "10 prompt tokens (4 reused) at 12.0 t/s, 8 generated at 4.0 t/s, stop: eog");
}

}  // namespace
}  // namespace hearth::engine
