// Speculative decoding: draft sources propose the next few tokens cheaply, the target verifies
// them all in one batched pass (Session::Generate), and the longest prefix that the target
// itself would have produced is kept. Three sources behind one interface:
//
//   - the Gemma 4 MTP drafter ("gemma4-assistant", model/drafter.h), which reads the target's
//     last hidden state and KV cache (../shared/spec/gemma4-mtp.md §5);
//   - prompt lookup: the tokens that followed the latest earlier occurrence of the last n
//     tokens (an edit repeats most of the file it rewrites);
//   - a smaller Gemma 4 with the same tokenizer as a draft model (its own KV cache).
//
// Acceptance. Greedy, and for sources that draft deterministically (lookup; any source when
// SpeculationOptions::sample_drafts is off or the output is constrained): the target picks each
// token from its own logits with the caller's sampler and a draft is kept while it equals that
// pick, so the output is exactly what decoding without speculation produces (same seed, same
// tokens). With temperature this already is speculative sampling for a one-hot draft
// distribution q: x is kept with probability p(x), and on rejection the pick is p without x.
// With temperature and a source that has a distribution of its own (the MTP drafter, a draft
// model), drafts are sampled from q and kept by speculative sampling's rule (Leviathan et al.
// 2023): x with probability min(1, p(x)/q(x)), otherwise the token is drawn from
// norm(max(0, p - q)), so every emitted token follows the target's distribution p exactly while
// a drafter close to p is accepted with probability 1 - TV(p, q) instead of p(argmax q).
// The output then follows the same distribution as plain decoding, not the same seed's tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/sampler.h"
#include "model/model.h"

namespace hearth::model {
class Drafter;
}

namespace hearth::engine {

struct DraftInput {
  std::span<const int32_t> cached;  // the tokens in the target's KV cache, positions 0..n-1
  int32_t last = 0;                 // the newest token, position n, not in the cache yet
  const float* hidden = nullptr;    // the target's hidden row n-1 (null when n == 0)
};

class DraftSource {
 public:
  virtual ~DraftSource() = default;
  virtual const char* name() const = 0;
  // Replaces `out` with at most `max` tokens proposed to follow `in.last`.
  virtual void Draft(const DraftInput& in, int max, std::vector<int32_t>& out) = 0;
  // Speculative sampling: draws each drafted token from the source's own distribution through
  // `sampler`'s chain and stores that distribution q in `q[i]` for `out[i]`. Sources without a
  // distribution of their own draft as Draft does and return false (q is one-hot then).
  virtual bool DraftSampled(const DraftInput& in, int max, Sampler& sampler,
                            std::vector<int32_t>& out, std::vector<std::vector<TokenProb>>& q) {
    (void)sampler;
    (void)q;
    Draft(in, max, out);
    return false;
  }
};

// The MTP drafter over the target context `target` (which it reads, never changes).
std::unique_ptr<DraftSource> MakeMtpSource(const model::Drafter& drafter, model::Context& target);
// Prompt lookup with n-grams of `ngram` tokens down to 1 (ngram >= 1).
std::unique_ptr<DraftSource> MakeLookupSource(int ngram);
// A draft model with its own context of `options` (n_ctx at least the target's).
std::unique_ptr<DraftSource> MakeDraftModelSource(const model::Model& draft,
                                                  model::ContextOptions options);

// Which source a Session drafts with (the first one given: drafter, draft model, lookup).
struct SpeculationOptions {
  const model::Drafter* drafter = nullptr;
  const model::Model* draft_model = nullptr;
  int lookup = 0;     // n-gram size of prompt lookup, 0 = off
  int max_draft = 0;  // tokens per target pass; 0 = the source's default (4, lookup 8)
  // With temperature, sample the drafts of the MTP drafter or a draft model and accept them by
  // speculative sampling's rule (see the top of this file); false keeps greedy drafts and exact
  // matching, whose output equals plain decoding's for the same seed.
  bool sample_drafts = true;
  // Draft only while it pays on this machine (DraftGovernor). The front ends turn it on; the
  // benchmarks and the tests that count drafts leave it off, since it depends on timing.
  bool adaptive = false;
  bool enabled() const { return drafter || draft_model || lookup > 0; }
};

// Whether drafting pays, decided as the generation goes: a verification pass over 1 + k tokens
// costs several decode steps on a CPU (docs/BENCHMARKS.md), so speculation is faster only when
// enough drafts are accepted. The governor compares the tokens per second of speculative passes
// (drafting and verification, tokens emitted) with those of plain steps, both measured on the
// spot, over windows of kWindow passes. A window that is slower than plain decoding pauses
// drafting for `pause` plain steps (16, doubling after each slow window up to 256, back to 16
// after a fast one), after which drafting is tried again: text that turns predictable (the
// unchanged stretch of a rewritten file) gets drafted again. Pausing never changes the output,
// only how fast it comes.
class DraftGovernor {
 public:
  static constexpr int kWindow = 4;
  static constexpr int kFirstPause = 16;
  static constexpr int kMaxPause = 256;

  // False while paused. Drafting starts at once; when a window ends before any plain step was
  // timed, one plain step is taken to time it and the window is judged after it.
  bool ShouldDraft() const { return pause_ == 0; }
  // A pass that verified no draft (one token).
  void OnPlainStep(double seconds);
  // A pass that verified drafts: `emitted` tokens (accepted drafts + 1) in `seconds`, drafting
  // included.
  void OnSpeculativePass(int emitted, double seconds);
  int pause() const { return pause_; }
  double step_seconds() const { return step_seconds_; }

 private:
  double step_seconds_ = 0;  // moving average of a plain step
  double window_tokens_ = 0, window_seconds_ = 0;
  int window_passes_ = 0;
  int pause_ = 0;
  int next_pause_ = kFirstPause;
};

}  // namespace hearth::engine
