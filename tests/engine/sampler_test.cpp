// Sampling against hand-computed distributions and penalties.
#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/error.h"

namespace hearth::engine {
namespace {

SamplingParams Greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

// Frequencies of each token over `draws` samples from `logits`.
std::vector<double> Frequencies(SamplingParams params, const std::vector<float>& logits,
                                int draws) {
  Sampler sampler(params);
  std::vector<double> freq(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) freq[static_cast<size_t>(sampler.Sample(logits))] += 1.0 / draws;
  return freq;
}

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  Sampler s(Greedy());
  EXPECT_EQ(s.Sample(std::vector<float>{0.1f, 3.0f, -2.0f, 2.9f}), 1);
  EXPECT_EQ(s.Sample(std::vector<float>{1.0f, 5.0f, 5.0f}), 1);
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingParams p = Greedy();
  p.repeat_penalty = 4.0f;
  Sampler s(p);
  s.Accept(0);
  s.Accept(1);
  // [2, -1, 0.6] → [0.5, -4, 0.6]: token 2 wins.
  EXPECT_EQ(s.Sample(std::vector<float>{2.0f, -1.0f, 0.6f}), 2);
}

TEST(Sampler, FrequencyAndPresencePenaltiesCountOccurrences) {
  SamplingParams p = Greedy();
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.2f;
  Sampler s(p);
  s.Accept(0);
  s.Accept(0);
  // token 0: 2.0 - 2×0.5 - 0.2 = 0.8 < 0.9.
  EXPECT_EQ(s.Sample(std::vector<float>{2.0f, 0.9f}), 1);
  Sampler once(p);
  once.Accept(0);
  // token 0: 2.0 - 0.5 - 0.2 = 1.3 > 0.9.
  EXPECT_EQ(once.Sample(std::vector<float>{2.0f, 0.9f}), 0);
}

TEST(Sampler, PenaltyWindowForgetsOldTokens) {
  SamplingParams p = Greedy();
  p.repeat_penalty = 10.0f;
  p.penalty_last_n = 2;
  Sampler s(p);
  s.Accept(0);
  s.Accept(5);
  s.Accept(6);  // token 0 has left the window
  EXPECT_EQ(s.Sample(std::vector<float>{2.0f, 1.0f}), 0);
}

const std::vector<float> kHalfThreeTenthsFifth = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};

TEST(Sampler, TemperatureOneFollowsTheSoftmax) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  auto f = Frequencies(p, kHalfThreeTenthsFifth, 40000);
  EXPECT_NEAR(f[0], 0.5, 0.015);
  EXPECT_NEAR(f[1], 0.3, 0.015);
  EXPECT_NEAR(f[2], 0.2, 0.015);
}

TEST(Sampler, TemperatureTwoFlattens) {
  SamplingParams p;
  p.temperature = 2.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  // p_i ∝ sqrt(p_i): .7071, .5477, .4472 → .4140, .3207, .2619.
  auto f = Frequencies(p, kHalfThreeTenthsFifth, 40000);
  EXPECT_NEAR(f[0], 0.4140, 0.015);
  EXPECT_NEAR(f[1], 0.3207, 0.015);
  EXPECT_NEAR(f[2], 0.2619, 0.015);
}

// The distribution speculative sampling compares (hand-computed as above), best first, and
// draws from arbitrary weights.
TEST(Sampler, DistributionIsWhatSampleDrawsFrom) {
  SamplingParams p;
  p.temperature = 2.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  Sampler s(p);
  std::vector<TokenProb> d;
  s.Distribution(kHalfThreeTenthsFifth, d);
  // sqrt(.5), sqrt(.3), sqrt(.2) = .70711, .54772, .44721 over their sum 1.70204.
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].id, 0);
  EXPECT_NEAR(d[0].p, 0.41545, 1e-4);
  EXPECT_EQ(d[1].id, 1);
  EXPECT_NEAR(d[1].p, 0.32180, 1e-4);
  EXPECT_EQ(d[2].id, 2);
  EXPECT_NEAR(d[2].p, 0.26275, 1e-4);
  p.top_k = 2;  // the two best, renormalised: .70711 / (.70711 + .54772)
  Sampler k2(p);
  k2.Distribution(kHalfThreeTenthsFifth, d);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_NEAR(d[0].p, 0.5635, 1e-4);
  Sampler g(Greedy());
  g.Distribution(kHalfThreeTenthsFifth, d);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].id, 0);
  EXPECT_EQ(d[0].p, 1.0f);
  // Draw: weights need not sum to 1; a zero weight is never drawn.
  const std::vector<TokenProb> w = {{7, 3.0f}, {8, 0.0f}, {9, 1.0f}};
  int sevens = 0;
  for (int i = 0; i < 20000; ++i) {
    const int32_t id = s.Draw(w);
    ASSERT_NE(id, 8);
    sevens += id == 7;
  }
  EXPECT_NEAR(sevens / 20000.0, 0.75, 0.015);
  const double u = s.Uniform();
  EXPECT_GE(u, 0.0);
  EXPECT_LT(u, 1.0);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 0.6f;  // 0.5 < 0.6 ≤ 0.8: tokens 0 and 1 survive, renormalised to 5/8 and 3/8
  p.min_p = 0.0f;
  auto f = Frequencies(p, kHalfThreeTenthsFifth, 40000);
  EXPECT_NEAR(f[0], 0.625, 0.015);
  EXPECT_NEAR(f[1], 0.375, 0.015);
  EXPECT_EQ(f[2], 0.0);
}

TEST(Sampler, MinPDropsTokensBelowTheFraction) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.5f;  // floor 0.25: token 2 (0.2) goes
  auto f = Frequencies(p, kHalfThreeTenthsFifth, 20000);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_NEAR(f[0], 0.625, 0.02);
}

TEST(Sampler, TopKOneIsGreedy) {
  SamplingParams p;
  p.temperature = 1.5f;
  p.top_k = 1;
  auto f = Frequencies(p, kHalfThreeTenthsFifth, 1000);
  EXPECT_NEAR(f[0], 1.0, 1e-9);
}

TEST(Sampler, SameSeedSameTokensAndResetRestarts) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.seed = 42;
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i));
  Sampler a(p), b(p);
  std::vector<int> first;
  for (int i = 0; i < 100; ++i) {
    int ta = a.Sample(logits);
    EXPECT_EQ(ta, b.Sample(logits));
    first.push_back(ta);
  }
  a.Reset();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.Sample(logits), first[static_cast<size_t>(i)]);
  p.seed = 43;
  Sampler c(p);
  int differences = 0;
  for (int i = 0; i < 100; ++i) differences += c.Sample(logits) != first[static_cast<size_t>(i)];
  EXPECT_GT(differences, 20);
}

TEST(Sampler, RejectsNonsenseParameters) {
  SamplingParams p;
  p.top_p = 0.0f;
  EXPECT_THROW(Sampler{p}, Error);
  p = SamplingParams{};
  p.temperature = NAN;
  EXPECT_THROW(Sampler{p}, Error);
  p = SamplingParams{};
  p.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler{p}, Error);
}

TEST(Sampler, LogitBiasAddsBeforePenaltiesAndCanBan) {
  SamplingParams p = Greedy();
  p.logit_bias = {{2, 1.5f}, {1, -INFINITY}, {99, 10.0f}};  // an id past the vocabulary: ignored
  Sampler s(p);
  // [1, 3, 0.6] + bias → [1, -inf, 2.1]: token 2.
  EXPECT_EQ(s.Sample(std::vector<float>{1.0f, 3.0f, 0.6f}), 2);
  // Penalties see the biased logit: 2.1 / 4 = 0.525 < 1, so token 0 wins once 2 was seen.
  p.repeat_penalty = 4.0f;
  Sampler t(p);
  t.Accept(2);
  EXPECT_EQ(t.Sample(std::vector<float>{1.0f, 3.0f, 0.6f}), 0);
  // With temperature the banned token is never drawn.
  p.repeat_penalty = 1.0f;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  const std::vector<double> f = Frequencies(p, {1.0f, 3.0f, 0.6f}, 2000);
  EXPECT_EQ(f[1], 0.0);
  // softmax([1, 2.1]) = [0.250, 0.750]
  EXPECT_NEAR(f[2], 0.750, 0.04);
}

TEST(Sampler, RejectsBadLogitBias) {
  SamplingParams p;
  p.logit_bias = {{-1, 1.0f}};
  EXPECT_THROW(p.Validate(), Error);
  p.logit_bias = {{3, INFINITY}};
  EXPECT_THROW(p.Validate(), Error);
  p.logit_bias = {{3, NAN}};
  EXPECT_THROW(p.Validate(), Error);
  p.logit_bias = {{3, -INFINITY}};
  EXPECT_NO_THROW(p.Validate());
}

TEST(StopStringMatcher, HoldsBackPossiblePrefixesAndCutsAtTheStop) {
  StopStringMatcher m({"world!"});
  EXPECT_EQ(m.Feed("Hello wor"), "Hello ");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.Feed("ld! and more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.Feed("ignored"), "");
  EXPECT_EQ(m.Flush(), "");
}

TEST(StopStringMatcher, ReleasesFalseAlarms) {
  StopStringMatcher m({"</end>", "STOP"});
  EXPECT_EQ(m.Feed("a </e"), "a ");
  EXPECT_EQ(m.Feed("x> ST"), "</ex> ");
  EXPECT_EQ(m.Flush(), "ST");
  EXPECT_FALSE(m.stopped());
}

TEST(StopStringMatcher, StopSpanningManyPieces) {
  StopStringMatcher m({"abc"});
  std::string out;
  for (const char* piece : {"x", "a", "b", "c", "y"}) out += m.Feed(piece);
  EXPECT_EQ(out, "x");
  EXPECT_TRUE(m.stopped());
}

}  // namespace
}  // namespace hearth::engine
