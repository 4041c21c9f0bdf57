// Choosing the next token from the model's logits, as llama.cpp's default chain does:
// penalties → top-k → top-p → min-p → temperature → draw (or greedy argmax when temperature ≤ 0).
// Deterministic: the same seed and the same logits give the same tokens.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::engine {

struct SamplingParams {
  float temperature = 0.8f;        // ≤ 0: greedy (argmax), no randomness
  int top_k = 40;                  // ≤ 0: off
  float top_p = 0.95f;             // ≥ 1: off
  float min_p = 0.05f;             // ≤ 0: off
  float repeat_penalty = 1.0f;     // 1: off; applied to tokens in the last `penalty_last_n`
  float presence_penalty = 0.0f;   // subtracted once from every token seen in the window
  float frequency_penalty = 0.0f;  // subtracted per occurrence in the window
  int penalty_last_n = 64;
  uint64_t seed = 0xC0FFEE;
  // Added to a token's logit before anything else (OpenAI's logit_bias; -INFINITY bans a token).
  std::vector<std::pair<int32_t, float>> logit_bias;

  // Throws Error(kUsage) naming the parameter when a value is out of range.
  void Validate() const;
};

// Which tokens may be sampled next (constrained decoding, json_constraint.h). Sample asks only
// about the candidates it needs, in logit order, so a filter is cheap even over a 262k vocabulary.
class TokenFilter {
 public:
  virtual ~TokenFilter() = default;
  virtual bool Allowed(int token) = 0;
  // A cheap necessary test (e.g. the token's first byte): true means Allowed would say false.
  // Lets the sampler skip most of a large vocabulary without calling Allowed.
  virtual bool QuickReject(int /*token*/) { return false; }
};

// One token's probability in the distribution a Sampler draws from.
struct TokenProb {
  int32_t id;
  float p;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Picks a token id from `logits` (one score per vocabulary entry). Does not record it: call
  // Accept with the token actually fed back (which may differ, e.g. a forced end token).
  int Sample(std::span<const float> logits);
  // The same, drawing only among tokens `filter` allows: greedy takes the best allowed token;
  // sampling runs the chain, then draws among the survivors renormalised over the allowed ones
  // (rejected draws are removed and the draw repeated), and falls back to the best allowed
  // token of the whole vocabulary when no survivor is allowed. Returns -1 when no token at all
  // is allowed. `filter` may be null (= Sample(logits)).
  int Sample(std::span<const float> logits, TokenFilter* filter);
  // The distribution Sample(logits) draws from: the tokens left after penalties, top-k, top-p and
  // min-p, with their tempered probabilities (summing to 1, best first); one token with p = 1 when
  // greedy. Speculative sampling needs it as a whole (p and q of speculative.h). Draws nothing.
  void Distribution(std::span<const float> logits, std::vector<TokenProb>& out);
  // A draw among `dist` in proportion to the weights (which need not sum to 1; at least one
  // positive), and a uniform number in [0, 1), both from this sampler's seeded stream.
  int32_t Draw(std::span<const TokenProb> dist);
  double Uniform();
  // Records a generated or prompt token for the repetition penalties.
  void Accept(int token);
  // Forgets history and restarts the random stream from the seed.
  void Reset();

  const SamplingParams& params() const { return params_; }

 private:
  struct Candidate {
    int id;
    float logit;
    float p;
  };
  void ApplyPenalties(std::vector<Candidate>& candidates) const;
  // Fills candidates_ from `logits` with the bias and penalties applied.
  void Score(std::span<const float> logits);
  // top-k, top-p, min-p and temperature over candidates_: the survivors are candidates_[0, n),
  // best first, with their tempered probabilities; returns n.
  size_t Truncate();
  // The best allowed token of `all` (sorted lazily, in growing chunks), or -1.
  static int BestAllowed(std::vector<Candidate>& all, TokenFilter& filter);

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::deque<int> recent_;
  std::vector<Candidate> candidates_;  // reused between calls
};

// Watches streamed text for stop strings. Text that might be the start of a stop string is held
// back until it is known not to be, so a stop string is never partly shown to the user.
class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stops);

  // Adds `piece`; returns the text that is now safe to emit. Sets stopped() once a stop string
  // has appeared; the stop string and anything after it are never emitted.
  std::string Feed(std::string_view piece);
  // At the end of generation: whatever was held back (nothing if stopped).
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace hearth::engine
