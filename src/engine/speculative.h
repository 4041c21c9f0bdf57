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
// Every accepted token is a token the target picks from its own logits with the caller's
// sampler, so the output is exactly what decoding without speculation produces (same seed, same
// tokens); the sources only change how many target passes it takes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

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
  bool enabled() const { return drafter || draft_model || lookup > 0; }
};

}  // namespace hearth::engine
