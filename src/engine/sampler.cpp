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

namespace {

struct ByLogit {
  template <typename C>
  bool operator()(const C& a, const C& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

}  // namespace

int Sampler::BestAllowed(std::vector<Candidate>& all, TokenFilter& filter) {
  // The best allowed token is usually among the first few: sort only those.
  const size_t head = std::min<size_t>(all.size(), 64);
  std::partial_sort(all.begin(), all.begin() + static_cast<long>(head), all.end(), ByLogit());
  auto banned = [](const Candidate& x) { return x.logit == -INFINITY || std::isnan(x.logit); };
  for (size_t i = 0; i < head; ++i) {
    if (banned(all[i])) return -1;
    if (filter.Allowed(all[i].id)) return all[i].id;
  }
  // Otherwise one pass keeps what survives the cheap test, and only that is sorted and checked.
  auto kept =
      std::partition(all.begin() + static_cast<long>(head), all.end(),
                     [&](const Candidate& x) { return !banned(x) && !filter.QuickReject(x.id); });
  std::sort(all.begin() + static_cast<long>(head), kept, ByLogit());
  for (auto it = all.begin() + static_cast<long>(head); it != kept; ++it) {
    if (filter.Allowed(it->id)) return it->id;
  }
  return -1;
}

void Sampler::Score(std::span<const float> logits) {
  if (logits.empty()) ThrowUsage("cannot sample from an empty vocabulary");
  std::vector<Candidate>& c = candidates_;
  c.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) c[i] = {static_cast<int>(i), logits[i], 0.0f};
  for (const auto& [id, bias] : params_.logit_bias) {
    if (id >= 0 && static_cast<size_t>(id) < c.size()) c[static_cast<size_t>(id)].logit += bias;
  }
  ApplyPenalties(c);
}

size_t Sampler::Truncate() {
  std::vector<Candidate>& c = candidates_;
  const ByLogit by_logit;
  // top-k: keep the k best, sorted by logit. The survivors are c[0, n); the rest stays for the
  // constrained fallback.
  size_t keep = c.size();
  if (params_.top_k > 0) keep = std::min(keep, static_cast<size_t>(params_.top_k));
  std::partial_sort(c.begin(), c.begin() + static_cast<long>(keep), c.end(), by_logit);
  size_t n = keep;

  // Softmax over the survivors (before temperature, as llama.cpp's top-p/min-p see them).
  auto softmax = [&](float temperature) {
    const float max_logit = c.front().logit;
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      c[i].p = std::exp((c[i].logit - max_logit) / temperature);
      sum += c[i].p;
    }
    for (size_t i = 0; i < n; ++i) c[i].p = static_cast<float>(c[i].p / sum);
  };
  softmax(1.0f);

  // top-p: the smallest prefix whose probability mass reaches p.
  if (params_.top_p < 1.0f) {
    double mass = 0;
    size_t m = 0;
    while (m < n) {
      mass += c[m++].p;
      if (mass >= params_.top_p) break;
    }
    n = std::max<size_t>(m, 1);
  }
  // min-p: drop tokens less likely than min_p × the best one.
  if (params_.min_p > 0.0f) {
    const float floor = params_.min_p * c.front().p;
    size_t m = 1;
    while (m < n && c[m].p >= floor) ++m;
    n = m;
  }

  softmax(params_.temperature);
  return n;
}

void Sampler::Distribution(std::span<const float> logits, std::vector<TokenProb>& out) {
  Score(logits);
  out.clear();
  const std::vector<Candidate>& c = candidates_;
  if (params_.temperature <= 0.0f) {
    out.push_back({std::min_element(c.begin(), c.end(), ByLogit())->id, 1.0f});
    return;
  }
  const size_t n = Truncate();
  for (size_t i = 0; i < n; ++i) {
    if (c[i].p > 0.0f) out.push_back({c[i].id, c[i].p});  // a banned (-inf) token has p = 0
  }
  if (out.empty()) out.push_back({c.front().id, 1.0f});  // as Sample: everything banned
}

double Sampler::Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int32_t Sampler::Draw(std::span<const TokenProb> dist) {
  double total = 0;
  for (const TokenProb& t : dist) total += t.p;
  const double u = Uniform() * total;
  double acc = 0;
  int32_t last = -1;  // rounding can leave acc just below u: fall back to a possible token
  for (const TokenProb& t : dist) {
    if (t.p <= 0.0f) continue;
    acc += t.p;
    last = t.id;
    if (u < acc) return t.id;
  }
  return last;
}

int Sampler::Sample(std::span<const float> logits) { return Sample(logits, nullptr); }

int Sampler::Sample(std::span<const float> logits, TokenFilter* filter) {
  Score(logits);
  std::vector<Candidate>& c = candidates_;
  const ByLogit by_logit;
  if (params_.temperature <= 0.0f) {
    const int best = std::min_element(c.begin(), c.end(), by_logit)->id;
    // Usually the best token is allowed: one O(n) pass, no sorting.
    if (filter == nullptr || filter->Allowed(best)) return best;
    return BestAllowed(c, *filter);
  }
  const size_t n = Truncate();
  // Draw with 53 random bits: the same seed gives the same choice on every platform. `total` is
  // the mass still drawable (rejected tokens are removed from it, which renormalises).
  auto draw = [&](double total) {
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
    double acc = 0;
    int last = -1;  // rounding can leave acc just below u: fall back to a possible token
    size_t last_i = 0;
    for (size_t i = 0; i < n; ++i) {
      if (c[i].p <= 0.0f) continue;  // never draw a banned (-inf) or rejected token
      acc += c[i].p;
      last = c[i].id;
      last_i = i;
      if (u < acc) return std::pair<int, size_t>(c[i].id, i);
    }
    return std::pair<int, size_t>(last, last_i);
  };
  if (filter == nullptr) {
    const int id = draw(1.0).first;
    return id >= 0 ? id : c.front().id;
  }
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += c[i].p;
  // A few rejections are cheap; after that, test every survivor once and draw among the allowed.
  for (int tries = 0; tries < 32 && total > 0; ++tries) {
    const auto [id, i] = draw(total);
    if (id < 0) break;
    if (filter->Allowed(id)) return id;
    total -= c[i].p;
    c[i].p = 0.0f;
  }
  total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (c[i].p > 0.0f && !filter->Allowed(c[i].id)) c[i].p = 0.0f;
    total += c[i].p;
  }
  if (total > 0) {
    const int id = draw(total).first;
    if (id >= 0) return id;
  }
  return BestAllowed(c, *filter);
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
