// Speculative decoding: the output with every draft source equals plain decoding token for token
// (greedy and sampled, every fixture structure, small batches so the sliding ring wraps and
// rollbacks cross it), and the MTP drafter's run follows llama.cpp's end-to-end reference
// (../shared/fixtures/mtp/README.md §7 "End to end": tokens and per-iteration acceptance).
#include "engine/speculative.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/session.h"
#include "gguf/gguf.h"
#include "model/drafter.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace hearth::engine {
namespace {

std::string Fixture(const std::string& rel) {
  return std::string(HEARTH_SHARED_DIR) + "/fixtures/" + rel;
}

template <typename T>
std::vector<T> RefTensor(const gguf::File& ref, const std::string& name) {
  const gguf::TensorInfo* t = ref.FindTensor(name);
  EXPECT_NE(t, nullptr) << name;
  if (!t) return {};
  std::vector<T> v(t->n_elements());
  std::memcpy(v.data(), t->data, v.size() * sizeof(T));
  return v;
}

struct Target {
  explicit Target(const std::string& name)
      : model(model::Model::Load(Fixture("models/" + name + ".gguf"))),
        tokenizer(text::Tokenizer::Load(Fixture("models/" + name + ".gguf"))) {}
  std::unique_ptr<model::Model> model;
  text::Tokenizer tokenizer;
};

model::ContextOptions Options(bool precise, int n_ubatch) {
  model::ContextOptions o;
  o.n_ctx = 512;
  o.n_ubatch = n_ubatch;
  o.n_threads = 1;
  o.precise = precise;
  return o;
}

GenerateOptions Greedy(int n) {
  GenerateOptions g;
  g.max_tokens = n;
  g.sampling.temperature = 0;
  g.stop_at_eog = false;
  return g;
}

GenerateResult Generate(const Target& t, model::ContextOptions o, const SpeculationOptions& spec,
                        const std::vector<int32_t>& prompt, const GenerateOptions& g) {
  Session s(*t.model, t.tokenizer, o);
  s.SetSpeculation(spec);
  return s.Generate(prompt, g);
}

const char* const kDrafters[] = {"tiny-e-mtp.F32", "tiny-e-mtp.Q8_0", "tiny-dense-mtp.F32",
                                 "tiny-dense-mtp.Q8_0"};

std::string TargetOf(const std::string& drafter) {
  return drafter.substr(0, drafter.find("-mtp")) + ".F32";
}

// Strict (README end to end 1): the engine's speculative output equals its own plain greedy
// output; against llama.cpp (2): equal to S.spec.tokens up to the first step whose target margin
// is below 0.05; trace (3, F32 drafters): the accepted count of every pass that llama.cpp ran
// the same way (same start, 4 drafts) while all its tokens were decisive.
TEST(Speculative, MtpDrafterMatchesPlainAndLlamaCpp) {
  for (const char* name : kDrafters) {
    const bool f32 = std::string(name).find("F32") != std::string::npos;
    Target t(TargetOf(name));
    auto drafter = model::Drafter::Load(Fixture("mtp/models/" + std::string(name) + ".gguf"));
    drafter->CheckTarget(t.model->config(), &t.model->file());
    const gguf::File ref =
        gguf::File::Open(Fixture("mtp/refs/" + std::string(name) + ".mtpref.gguf"));
    for (const char* seq : {"short", "medium", "long"}) {
      const std::vector<int32_t> tokens = RefTensor<int32_t>(ref, std::string(seq) + ".tokens");
      const std::vector<int32_t> spec_ref =
          RefTensor<int32_t>(ref, std::string(seq) + ".spec.tokens");
      const std::vector<float> margin = RefTensor<float>(ref, std::string(seq) + ".greedy.margin");
      const std::vector<int32_t> trace = RefTensor<int32_t>(ref, std::string(seq) + ".spec.trace");
      for (bool precise : {true, false}) {
        SCOPED_TRACE(std::string(name) + " " + seq + (precise ? " precise" : " fast"));
        SpeculationOptions spec;
        spec.drafter = drafter.get();
        spec.max_draft = 4;
        const GenerateResult plain = Generate(t, Options(precise, 512), {}, tokens, Greedy(32));
        const GenerateResult fast = Generate(t, Options(precise, 512), spec, tokens, Greedy(32));
        EXPECT_EQ(fast.tokens, plain.tokens);
        EXPECT_GT(fast.stats.accepted_tokens, 0);
        EXPECT_EQ(fast.stats.generated_tokens,
                  fast.stats.target_passes + fast.stats.accepted_tokens);
        size_t decisive = 0;
        while (decisive < margin.size() && margin[decisive] >= 0.05f) ++decisive;
        ASSERT_EQ(spec_ref.size(), 32u);
        for (size_t i = 0; i < decisive; ++i) EXPECT_EQ(fast.tokens[i], spec_ref[i]) << i;
        if (!f32 || !precise) continue;
        int emitted = 0;
        for (size_t it = 0; it * 8 < trace.size() && it < fast.stats.accepted_per_pass.size();
             ++it) {
          const int n_acc = trace[it * 8 + 3];
          if (32 - emitted - 1 < 4 || emitted + n_acc + 1 > static_cast<int>(decisive)) break;
          EXPECT_EQ(trace[it * 8 + 0], static_cast<int>(tokens.size()) - 1 + emitted);
          EXPECT_EQ(fast.stats.accepted_per_pass[it], n_acc) << "iteration " << it;
          emitted += n_acc + 1;
        }
      }
    }
  }
}

// The governor, fed made-up timings (a plain step takes 1 s): drafting starts at once; a window
// of kWindow passes slower than plain decoding pauses it for 16 plain steps, the next slow
// window for 32 and so on up to 256; a fast window brings the pause back to 16; a window that
// ends before any plain step was timed takes one plain step and is judged after it.
TEST(DraftGovernor, PausesDraftingWhileItDoesNotPay) {
  DraftGovernor g;
  EXPECT_TRUE(g.ShouldDraft());
  for (int i = 0; i < DraftGovernor::kWindow; ++i) g.OnSpeculativePass(2, 3.0);
  EXPECT_FALSE(g.ShouldDraft());  // not judged yet: one plain step to time first
  g.OnPlainStep(1.0);
  EXPECT_TRUE(g.ShouldDraft());
  g.OnSpeculativePass(2, 3.0);  // judged now: 10 tokens in 15 s against 1 token/s
  EXPECT_FALSE(g.ShouldDraft());
  EXPECT_EQ(g.pause(), DraftGovernor::kFirstPause);
  for (int i = 0; i < DraftGovernor::kFirstPause; ++i) {
    EXPECT_FALSE(g.ShouldDraft()) << i;
    g.OnPlainStep(1.0);
  }
  EXPECT_TRUE(g.ShouldDraft());
  int pause = DraftGovernor::kFirstPause;
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < DraftGovernor::kWindow; ++i) g.OnSpeculativePass(1, 2.0);
    pause = std::min(pause * 2, DraftGovernor::kMaxPause);
    EXPECT_EQ(g.pause(), pause) << round;
    while (g.pause() > 0) g.OnPlainStep(1.0);
  }
  EXPECT_EQ(g.pause(), 0);
  // 5 tokens in 2 s beats 1 token per 1 s: no pause, and the next slow window pauses for 16.
  for (int i = 0; i < DraftGovernor::kWindow; ++i) g.OnSpeculativePass(5, 2.0);
  EXPECT_TRUE(g.ShouldDraft());
  for (int i = 0; i < DraftGovernor::kWindow; ++i) g.OnSpeculativePass(1, 1.5);
  EXPECT_EQ(g.pause(), DraftGovernor::kFirstPause);
  // Exactly as fast as plain decoding counts as paying (no pause).
  while (g.pause() > 0) g.OnPlainStep(1.0);
  for (int i = 0; i < DraftGovernor::kWindow; ++i) g.OnSpeculativePass(2, 2.0);
  EXPECT_TRUE(g.ShouldDraft());
}

// The plain step time is a moving average: one slow step moves it a quarter of the way.
TEST(DraftGovernor, OneSlowStepMovesTheStepTimeALittle) {
  DraftGovernor g;
  g.OnPlainStep(1.0);
  EXPECT_DOUBLE_EQ(g.step_seconds(), 1.0);
  g.OnPlainStep(5.0);
  EXPECT_DOUBLE_EQ(g.step_seconds(), 2.0);
}

// The sliding ring wraps and rollbacks cross it: a verification pass is one forward step of
// k+1 <= n_ubatch tokens, so with n_ubatch = 5 the ring has only W + 4 cells; 61 + 80 positions
// pass several windows (W = 32 / 48). Every source, greedy. Every ctest run covers the KV-shared
// structure in fast mode; HEARTH_SPEC_FULL=1 (the slow-labelled run) every structure and mode.
TEST(Speculative, EverySourceEqualsPlainAcrossWindows) {
  const bool full = std::getenv("HEARTH_SPEC_FULL") != nullptr;
  const std::vector<std::string> targets =
      full
          ? std::vector<std::string>{"tiny-e.F32", "tiny-dense.F32", "tiny-moe.Q8_0", "tiny-e.Q4_0"}
          : std::vector<std::string>{"tiny-e.F32"};
  auto drafter_e = model::Drafter::Load(Fixture("mtp/models/tiny-e-mtp.F32.gguf"));
  auto drafter_d = model::Drafter::Load(Fixture("mtp/models/tiny-dense-mtp.F32.gguf"));
  auto other = model::Model::Load(Fixture("models/tiny-dense.Q8_0.gguf"));
  // A prompt that repeats itself, so that prompt lookup accepts long runs.
  std::vector<int32_t> prompt = {2};
  for (int r = 0; r < 3; ++r) {
    for (int i = 0; i < 20; ++i) prompt.push_back(100 + (i * 37) % 500);
  }
  for (const std::string& name : targets) {
    Target t(name);
    std::vector<std::pair<std::string, SpeculationOptions>> sources;
    SpeculationOptions s;
    s.lookup = 3;
    sources.emplace_back("lookup", s);
    s = {};
    s.draft_model = t.model.get();  // drafting for itself: every draft is right
    sources.emplace_back("self", s);
    s = {};
    s.draft_model = other.get();
    sources.emplace_back("other model", s);
    const std::string n(name);
    if (n.rfind("tiny-e.", 0) == 0 || n.rfind("tiny-dense.", 0) == 0) {
      s = {};
      s.drafter = n.rfind("tiny-e.", 0) == 0 ? drafter_e.get() : drafter_d.get();
      sources.emplace_back("mtp", s);
    }
    for (bool precise : {false, true}) {
      if (precise && !full) break;
      const GenerateResult plain = Generate(t, Options(precise, 5), {}, prompt, Greedy(80));
      for (auto& [label, spec] : sources) {
        SCOPED_TRACE(n + " " + label + (precise ? " precise" : " fast"));
        spec.max_draft = 4;
        const GenerateResult r = Generate(t, Options(precise, 5), spec, prompt, Greedy(80));
        EXPECT_EQ(r.tokens, plain.tokens);
        EXPECT_GT(r.stats.drafted_tokens, 0);
        if (label == "self") {
          EXPECT_GT(r.stats.accepted_tokens, r.stats.drafted_tokens / 2);
        }
        // Drafting only while it pays (what every command does) pauses and resumes drafting
        // by the clock; whatever it decides, the output stays plain decoding's.
        spec.adaptive = true;
        EXPECT_EQ(Generate(t, Options(precise, 5), spec, prompt, Greedy(80)).tokens, plain.tokens)
            << "adaptive";
        spec.adaptive = false;
      }
    }
  }
}

// Sampling with exact matching (greedy drafts, sample_drafts off; always for prompt lookup):
// every token is drawn from the target's own distribution with the caller's sampler, one draw per
// token as in plain decoding, so a seed gives the same tokens with or without speculation.
TEST(Speculative, SampledOutputIsPlainSampledOutput) {
  Target t("tiny-e.F32");
  std::vector<int32_t> prompt = {2, 1946, 3205, 3506, 17, 900, 1200, 1946, 3205, 3506};
  SpeculationOptions spec;
  spec.draft_model = t.model.get();
  spec.sample_drafts = false;
  for (uint64_t seed : {1u, 2u, 3u, 4u}) {
    GenerateOptions g = Greedy(40);
    g.sampling.temperature = 0.9f;
    g.sampling.repeat_penalty = 1.1f;
    g.sampling.seed = seed;
    const GenerateResult plain = Generate(t, Options(false, 64), {}, prompt, g);
    const GenerateResult r = Generate(t, Options(false, 64), spec, prompt, g);
    EXPECT_EQ(r.tokens, plain.tokens) << "seed " << seed;
    EXPECT_EQ(r.text, plain.text);
  }
}

// The exact distribution of the first two sampled tokens of plain decoding, P(t1, t2) =
// p(t1 | prompt) p(t2 | prompt, t1), from the target's logits and the sampler's chain (with the
// repetition penalty seeing the prompt and t1, as Generate's sampler does).
std::map<std::pair<int32_t, int32_t>, double> TwoTokenDistribution(
    const Target& t, const std::vector<int32_t>& prompt, const SamplingParams& params) {
  Session s(*t.model, t.tokenizer, Options(false, 64));
  Sampler sampler(params);
  for (int32_t tok : prompt) sampler.Accept(tok);
  std::vector<TokenProb> p1, p2;
  const std::span<const float> logits = s.Prefill(prompt);
  sampler.Distribution(logits, p1);
  std::map<std::pair<int32_t, int32_t>, double> joint;
  for (const TokenProb& a : p1) {
    std::vector<int32_t> longer = prompt;
    longer.push_back(a.id);
    Sampler next = sampler;
    next.Accept(a.id);
    next.Distribution(s.Prefill(longer), p2);
    for (const TokenProb& b : p2) joint[{a.id, b.id}] += static_cast<double>(a.p) * b.p;
  }
  return joint;
}

// Pearson's chi-square of `counts` (n samples) against `expect`, cells with fewer than 5
// expected pooled into one; `df` gets the degrees of freedom.
double ChiSquare(const std::map<std::pair<int32_t, int32_t>, int>& counts, int n,
                 const std::map<std::pair<int32_t, int32_t>, double>& expect, int* df) {
  double chi = 0, pooled_e = 0;
  int pooled_o = 0, cells = 0;
  for (const auto& [cell, prob] : expect) {
    const auto it = counts.find(cell);
    const int o = it == counts.end() ? 0 : it->second;
    const double e = prob * n;
    if (e < 5) {
      pooled_e += e;
      pooled_o += o;
      continue;
    }
    chi += (o - e) * (o - e) / e;
    ++cells;
  }
  int outside = 0;  // samples in cells the target gives probability 0: impossible
  for (const auto& [cell, o] : counts) {
    if (!expect.count(cell)) outside += o;
  }
  pooled_o += outside;
  if (pooled_e > 0) {
    chi += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
    ++cells;
  }
  *df = cells - 1;
  return outside > 0 ? INFINITY : chi;
}

// The 99.9 % point of the chi-square distribution (Wilson-Hilferty, z = 3.09): a correct
// sampler exceeds it for one seed set in a thousand; the seeds are fixed, so the test is
// deterministic. It fails for wrong rules: drafts always kept (the drafting model's own samples,
// checked below), or resampled from p instead of the residual (chi-square 517 at df 35, limit 67).
double ChiSquare999(int df) {
  const double k = df, a = 2.0 / (9.0 * k);
  return k * std::pow(1.0 - a + 3.09 * std::sqrt(a), 3.0);
}

// Speculative sampling (sample_drafts, the default): drafts drawn from the drafter's q and kept
// with probability min(1, p/q), resampled from norm(max(0, p - q)) otherwise. The first two
// tokens of 1000 fixed seeds must follow plain decoding's exact joint distribution; both tokens
// pass the rule (a pass drafts 2 tokens, then 1 after a rejection). Drafters: the Q4_0 version
// of the target as draft model, whose q overlaps p by about a third (both the keep and the
// resample branch run; keeping every draft, i.e. its own samples, fails the same test by far),
// and the MTP drafter, whose random-weight q hardly overlaps p (resampling nearly always).
TEST(Speculative, SpeculativeSamplingFollowsTheTargetDistribution) {
  Target t("tiny-e.F32");
  Target q4("tiny-e.Q4_0");
  auto drafter = model::Drafter::Load(Fixture("mtp/models/tiny-e-mtp.F32.gguf"));
  const std::vector<int32_t> prompt = {2, 1946, 701, 3506, 17, 2334, 1200};
  SamplingParams params;
  params.temperature = 1.5f;
  params.top_k = 6;
  params.top_p = 1.0f;
  params.min_p = 0.0f;
  params.repeat_penalty = 1.3f;
  const auto expect = TwoTokenDistribution(t, prompt, params);
  constexpr int kSeeds = 1000;
  auto sample = [&](const Target& model, const SpeculationOptions& spec, GenerateStats* total) {
    Session s(*model.model, model.tokenizer, Options(false, 64));
    s.SetSpeculation(spec);
    std::map<std::pair<int32_t, int32_t>, int> counts;
    for (int seed = 1; seed <= kSeeds; ++seed) {
      GenerateOptions g = Greedy(3);
      g.sampling = params;
      g.sampling.seed = static_cast<uint64_t>(seed);
      const GenerateResult r = s.Generate(prompt, g);
      EXPECT_EQ(r.tokens.size(), 3u);
      if (r.tokens.size() < 2) continue;
      ++counts[{r.tokens[0], r.tokens[1]}];
      total->drafted_tokens += r.stats.drafted_tokens;
      total->accepted_tokens += r.stats.accepted_tokens;
    }
    return counts;
  };
  int df = 0;
  GenerateStats unused;
  const double chi_q = ChiSquare(sample(q4, {}, &unused), kSeeds, expect, &df);
  EXPECT_GT(chi_q, 10 * ChiSquare999(df)) << "q is too close to p for the test to tell";
  SpeculationOptions by_q4;
  by_q4.draft_model = q4.model.get();
  SpeculationOptions mtp;
  mtp.drafter = drafter.get();
  for (const auto& [label, spec] :
       {std::pair{"q4_0 draft model", by_q4}, std::pair{"mtp drafter", mtp}}) {
    SCOPED_TRACE(label);
    GenerateStats total;
    const double chi = ChiSquare(sample(t, spec, &total), kSeeds, expect, &df);
    EXPECT_GT(df, 10);
    EXPECT_LT(chi, ChiSquare999(df)) << "df " << df;
    EXPECT_GE(total.drafted_tokens, 2 * kSeeds);
    EXPECT_LT(total.accepted_tokens, total.drafted_tokens);  // the resample branch ran
    if (spec.draft_model) {
      EXPECT_GT(total.accepted_tokens, total.drafted_tokens / 10);  // and the keep branch
    }
  }
}

// A model drafting for itself without penalties has q = p: speculative sampling keeps nearly
// every draft, where greedy drafts are kept only with probability p(argmax).
TEST(Speculative, SpeculativeSamplingAcceptsASelfDraftAlmostAlways) {
  Target t("tiny-e.F32");
  const std::vector<int32_t> prompt = {2, 1946, 3205, 3506, 17, 900, 1200};
  double rate[2] = {0, 0};
  for (bool sampled : {false, true}) {
    SpeculationOptions spec;
    spec.draft_model = t.model.get();
    spec.sample_drafts = sampled;
    Session s(*t.model, t.tokenizer, Options(true, 64));
    s.SetSpeculation(spec);
    int drafted = 0, accepted = 0;
    for (int seed = 1; seed <= 20; ++seed) {
      GenerateOptions g = Greedy(24);
      g.sampling.temperature = 1.0f;
      g.sampling.seed = static_cast<uint64_t>(seed);
      const GenerateResult r = s.Generate(prompt, g);
      drafted += r.stats.drafted_tokens;
      accepted += r.stats.accepted_tokens;
      EXPECT_EQ(r.stats.generated_tokens, r.stats.target_passes + r.stats.accepted_tokens);
    }
    ASSERT_GT(drafted, 0);
    rate[sampled] = static_cast<double>(accepted) / drafted;
  }
  EXPECT_GT(rate[1], 0.97);
  EXPECT_LT(rate[0], rate[1] - 0.1) << "greedy drafts " << rate[0];
}

// The cache holds what plain decoding leaves (prompt + all but the last token), so the next
// prompt reuses it the same way; a one-token prompt works (nothing to draft from at first).
TEST(Speculative, CacheStateAndEdgeCases) {
  Target t("tiny-e.F32");
  auto drafter = model::Drafter::Load(Fixture("mtp/models/tiny-e-mtp.F32.gguf"));
  SpeculationOptions spec;
  spec.drafter = drafter.get();
  Session s(*t.model, t.tokenizer, Options(false, 64));
  s.SetSpeculation(spec);
  const std::vector<int32_t> prompt = {2, 1946, 3205, 3506, 17};
  const GenerateResult r = s.Generate(prompt, Greedy(20));
  ASSERT_EQ(r.tokens.size(), 20u);
  std::vector<int32_t> expect(prompt);
  expect.insert(expect.end(), r.tokens.begin(), r.tokens.end() - 1);
  EXPECT_EQ(s.tokens(), expect);
  const GenerateResult one = s.Generate(std::vector<int32_t>{2}, Greedy(10));
  const GenerateResult one_plain =
      Generate(t, Options(false, 64), {}, std::vector<int32_t>{2}, Greedy(10));
  EXPECT_EQ(one.tokens, one_plain.tokens);
  GenerateOptions off = Greedy(10);
  off.speculate = false;
  const GenerateResult r2 = s.Generate(prompt, off);
  EXPECT_EQ(r2.stats.target_passes, 0);
  EXPECT_EQ(std::vector<int32_t>(r2.tokens.begin(), r2.tokens.end()),
            std::vector<int32_t>(r.tokens.begin(), r.tokens.begin() + 10));
}

}  // namespace
}  // namespace hearth::engine
