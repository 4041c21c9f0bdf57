#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <utility>

#include "base/error.h"

namespace hearth::engine {

void SamplingParams::Validate() const {
  auto bad = [](const std::string& what) {
    ThrowUsage("invalid sampling parameter: " + what, "see 'hearth run --help' for valid ranges");
  };
  if (!std::isfinite(temperature)) bad("temperature must be a finite number");
  if (!(top_p > 0.0f) || top_p > 1.0f) bad("top-p must be in (0, 1]");
  if (min_p < 0.0f || min_p > 1.0f) bad("min-p must be in [0, 1]");
  if (!(repeat_penalty > 0.0f)) bad("repeat penalty must be > 0");
  if (penalty_last_n < 0) bad("penalty window must be ≥ 0");
  if (!std::isfinite(presence_penalty) || !std::isfinite(frequency_penalty)) {
    bad("presence/frequency penalties must be finite");
  }
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0) bad("logit bias for a negative token id");
    if (std::isnan(bias) || bias == INFINITY) bad("logit bias must be a number or -infinity");
  }
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  params_.Validate();
}

void Sampler::Reset() {
  recent_.clear();
  rng_.seed(params_.seed);
}

void Sampler::Accept(int token) {
  if (params_.penalty_last_n == 0) return;
  recent_.push_back(token);
  while (static_cast<int>(recent_.size()) > params_.penalty_last_n) recent_.pop_front();
}

void Sampler::ApplyPenalties(std::vector<Candidate>& candidates) const {
  if (recent_.empty() || (params_.repeat_penalty == 1.0f && params_.presence_penalty == 0.0f &&
                          params_.frequency_penalty == 0.0f)) {
    return;
  }
  std::unordered_map<int, int> counts;
  for (int t : recent_) ++counts[t];
  for (const auto& [token, count] : counts) {
    if (token < 0 || token >= static_cast<int>(candidates.size())) continue;
    float& logit = candidates[static_cast<size_t>(token)].logit;
    // As llama.cpp: shrink positive logits, grow negative ones, so the penalty always lowers
    // the token's probability.
    logit = logit <= 0 ? logit * params_.repeat_penalty : logit / params_.repeat_penalty;
    logit -= static_cast<float>(count) * params_.frequency_penalty +
             (count > 0 ? 1.0f : 0.0f) * params_.presence_penalty;
  }
}

int Sampler::Sample(std::span<const float> logits) {
  if (logits.empty()) ThrowUsage("cannot sample from an empty vocabulary");
  std::vector<Candidate>& c = candidates_;
  c.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) c[i] = {static_cast<int>(i), logits[i], 0.0f};
  for (const auto& [id, bias] : params_.logit_bias) {
    if (id >= 0 && static_cast<size_t>(id) < c.size()) c[static_cast<size_t>(id)].logit += bias;
  }
  ApplyPenalties(c);

  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  if (params_.temperature <= 0.0f) {
    return std::min_element(c.begin(), c.end(), by_logit)->id;
  }

  // top-k: keep the k best, sorted by logit.
  size_t keep = c.size();
  if (params_.top_k > 0) keep = std::min(keep, static_cast<size_t>(params_.top_k));
  std::partial_sort(c.begin(), c.begin() + static_cast<long>(keep), c.end(), by_logit);
  c.resize(keep);

  // Softmax over the survivors (before temperature, as llama.cpp's top-p/min-p see them).
  auto softmax = [&](float temperature) {
    const float max_logit = c.front().logit;
    double sum = 0;
    for (Candidate& x : c) {
      x.p = std::exp((x.logit - max_logit) / temperature);
      sum += x.p;
    }
    for (Candidate& x : c) x.p = static_cast<float>(x.p / sum);
  };
  softmax(1.0f);

  // top-p: the smallest prefix whose probability mass reaches p.
  if (params_.top_p < 1.0f) {
    double mass = 0;
    size_t n = 0;
    while (n < c.size()) {
      mass += c[n++].p;
      if (mass >= params_.top_p) break;
    }
    c.resize(std::max<size_t>(n, 1));
  }
  // min-p: drop tokens less likely than min_p × the best one.
  if (params_.min_p > 0.0f) {
    const float floor = params_.min_p * c.front().p;
    size_t n = 1;
    while (n < c.size() && c[n].p >= floor) ++n;
    c.resize(n);
  }

  softmax(params_.temperature);
  // Draw with 53 random bits: the same seed gives the same choice on every platform.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  double acc = 0;
  int last = c.front().id;  // rounding can leave acc just below u: fall back to a possible token
  for (const Candidate& x : c) {
    if (x.p <= 0.0f) continue;  // never draw a banned (-inf) token
    acc += x.p;
    last = x.id;
    if (u < acc) return x.id;
  }
  return last;
}

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

std::string StopStringMatcher::Feed(std::string_view piece) {
  if (stopped_) return {};
  pending_.append(piece);
  size_t first_stop = std::string::npos;
  for (const std::string& s : stops_) first_stop = std::min(first_stop, pending_.find(s));
  if (first_stop != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, first_stop);
    pending_.clear();
    return out;
  }
  // Hold back the longest suffix of pending_ that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    for (size_t n = std::min(s.size() - 1, pending_.size()); n > hold; --n) {
      if (pending_.compare(pending_.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopStringMatcher::Flush() {
  if (stopped_) return {};
  return std::exchange(pending_, {});
}

}  // namespace hearth::engine
