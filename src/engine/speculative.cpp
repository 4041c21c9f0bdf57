// The draft sources of speculative decoding (speculative.h).
#include "engine/speculative.h"

#include <algorithm>
#include <vector>

#include "model/drafter.h"

namespace hearth::engine {
namespace {

int ArgMax(const float* v, int n) {
  return static_cast<int>(std::max_element(v, v + n) - v);  // the lowest id wins ties
}

// The argmax of `logits`, or (with a sampler) a draw from its distribution, which is kept in
// (*q)[step].
int32_t Choose(std::span<const float> logits, Sampler* sampler,
               std::vector<std::vector<TokenProb>>* q, int step) {
  if (sampler == nullptr) {
    return ArgMax(logits.data(), static_cast<int>(logits.size()));
  }
  if (static_cast<int>(q->size()) <= step) {
    q->resize(static_cast<size_t>(step) + 1);
  }
  std::vector<TokenProb>& dist = (*q)[static_cast<size_t>(step)];
  sampler->Distribution(logits, dist);
  return sampler->Draw(dist);
}

// gemma4-mtp.md §5: step 0 from (last, position n, the target's hidden row n-1), each later step
// from (the previous draft, the same position, the drafter's own h'); greedy drafts.
class MtpSource : public DraftSource {
 public:
  MtpSource(const model::Drafter& drafter, model::Context& target)
      : ctx_(drafter, target),
        n_vocab_(drafter.config().n_vocab),
        logits_(static_cast<size_t>(n_vocab_)),
        h_(static_cast<size_t>(drafter.config().n_embd_backbone)),
        h_next_(h_.size()) {}
  const char* name() const override { return "mtp"; }
  void Draft(const DraftInput& in, int max, std::vector<int32_t>& out) override {
    Run(in, max, nullptr, out, nullptr);
  }
  bool DraftSampled(const DraftInput& in, int max, Sampler& sampler, std::vector<int32_t>& out,
                    std::vector<std::vector<TokenProb>>& q) override {
    Run(in, max, &sampler, out, &q);
    return true;
  }

 private:
  // Greedy drafts, or sampled ones with their distributions when `sampler` is given.
  void Run(const DraftInput& in, int max, Sampler* sampler, std::vector<int32_t>& out,
           std::vector<std::vector<TokenProb>>* q) {
    out.clear();
    if (in.hidden == nullptr || in.cached.empty()) {
      return;  // position 0 has no h
    }
    const int pos = static_cast<int>(in.cached.size());
    std::copy(in.hidden, in.hidden + h_.size(), h_.begin());
    int32_t token = in.last;
    for (int s = 0; s < max; ++s) {
      ctx_.Step(token, pos, h_.data(), logits_.data(), h_next_.data());
      token = Choose(logits_, sampler, q, s);
      out.push_back(token);
      h_.swap(h_next_);
    }
  }

  model::DrafterContext ctx_;
  int n_vocab_;
  std::vector<float> logits_, h_, h_next_;
};

// The continuation of the latest earlier occurrence of the longest suffix of n..1 tokens.
class LookupSource : public DraftSource {
 public:
  explicit LookupSource(int ngram) : ngram_(std::max(1, ngram)) {}
  const char* name() const override { return "lookup"; }
  void Draft(const DraftInput& in, int max, std::vector<int32_t>& out) override {
    out.clear();
    text_.assign(in.cached.begin(), in.cached.end());
    text_.push_back(in.last);
    const int len = static_cast<int>(text_.size());
    for (int n = std::min(ngram_, len - 1); n >= 1; --n) {
      const int32_t* suffix = &text_[len - n];
      // Latest match first: recent text is the likeliest to repeat next.
      for (int start = len - n - 1; start >= 0; --start) {
        if (!std::equal(suffix, suffix + n, &text_[start])) {
          continue;
        }
        for (int j = start + n; j < len && static_cast<int>(out.size()) < max; ++j) {
          out.push_back(text_[j]);
        }
        return;
      }
    }
  }

 private:
  int ngram_;
  std::vector<int32_t> text_;
};

// A smaller model with its own cache, kept in step with the target's tokens (prefix reuse) and
// run greedily for the draft.
class DraftModelSource : public DraftSource {
 public:
  DraftModelSource(const model::Model& draft, model::ContextOptions options)
      : ctx_(draft, options), logits_(static_cast<size_t>(draft.config().n_vocab)) {}
  const char* name() const override { return "draft-model"; }
  void Draft(const DraftInput& in, int max, std::vector<int32_t>& out) override {
    Run(in, max, nullptr, out, nullptr);
  }
  bool DraftSampled(const DraftInput& in, int max, Sampler& sampler, std::vector<int32_t>& out,
                    std::vector<std::vector<TokenProb>>& q) override {
    Run(in, max, &sampler, out, &q);
    return true;
  }

 private:
  void Run(const DraftInput& in, int max, Sampler* sampler, std::vector<int32_t>& out,
           std::vector<std::vector<TokenProb>>* q) {
    out.clear();
    want_.assign(in.cached.begin(), in.cached.end());
    want_.push_back(in.last);
    const int n = static_cast<int>(want_.size());
    if (n + max > ctx_.n_ctx()) {
      max = ctx_.n_ctx() - n;
    }
    if (max <= 0) {
      return;
    }
    // Reuse what the draft cache already holds, leaving at least the last token to decode.
    size_t keep = 0;
    const size_t limit = std::min(have_.size(), want_.size() - 1);
    while (keep < limit && have_[keep] == want_[keep]) {
      ++keep;
    }
    if (!ctx_.Truncate(static_cast<int>(keep))) {
      ctx_.Reset();
      keep = 0;
    }
    have_.assign(want_.begin(), want_.begin() + static_cast<std::ptrdiff_t>(keep));
    ctx_.Decode(std::span<const int32_t>(want_).subspan(keep), logits_.data(), false);
    have_ = want_;
    for (int s = 0; s < max; ++s) {
      const int32_t token = Choose(logits_, sampler, q, s);
      out.push_back(token);
      if (s + 1 == max) {
        break;
      }
      ctx_.Decode(std::span<const int32_t>(&token, 1), logits_.data(), false);
      have_.push_back(token);
    }
  }

  model::Context ctx_;
  std::vector<float> logits_;
  std::vector<int32_t> have_, want_;
};

}  // namespace

std::unique_ptr<DraftSource> MakeMtpSource(const model::Drafter& drafter, model::Context& target) {
  return std::make_unique<MtpSource>(drafter, target);
}

std::unique_ptr<DraftSource> MakeLookupSource(int ngram) {
  return std::make_unique<LookupSource>(ngram);
}

std::unique_ptr<DraftSource> MakeDraftModelSource(const model::Model& draft,
                                                  model::ContextOptions options) {
  return std::make_unique<DraftModelSource>(draft, options);
}

void DraftGovernor::OnPlainStep(double seconds) {
  // A moving average: one slow step (a page fault, another process) moves it only a little.
  step_seconds_ = step_seconds_ > 0 ? 0.75 * step_seconds_ + 0.25 * seconds : seconds;
  if (pause_ > 0) --pause_;
}

void DraftGovernor::OnSpeculativePass(int emitted, double seconds) {
  window_tokens_ += emitted;
  window_seconds_ += seconds;
  if (++window_passes_ < kWindow) return;
  if (step_seconds_ <= 0) {
    pause_ = 1;  // one plain step to compare with; this window is judged after it
    return;
  }
  // Slower than plain decoding: window_tokens / window_seconds < 1 / step.
  if (window_tokens_ * step_seconds_ < window_seconds_) {
    pause_ = next_pause_;
    next_pause_ = std::min(next_pause_ * 2, kMaxPause);
  } else {
    next_pause_ = kFirstPause;
  }
  window_tokens_ = window_seconds_ = 0;
  window_passes_ = 0;
}

}  // namespace hearth::engine
