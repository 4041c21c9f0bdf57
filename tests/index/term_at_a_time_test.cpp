// The term-at-a-time evaluator alone, on synthetic postings: its top chunks and scores must be
// those of scoring every chunk with its true length and sorting (the reference below), while it
// reads the length of fewer chunks.
#include "index/term_at_a_time.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "index/ranking.h"

namespace hearth::index {
namespace {

// Every chunk scored with its true length, sorted by score (ties: lower row first).
std::vector<ScoredChunk> Reference(const std::vector<Posting>& postings, const TermScoring& s,
                                   int depth, const std::map<int64_t, int>& length,
                                   const std::function<bool(int64_t)>& allowed) {
  std::map<int64_t, std::vector<const Posting*>> by_row;
  for (const auto& p : postings) by_row[p.row].push_back(&p);
  std::vector<ScoredChunk> all;
  for (const auto& [row, ps] : by_row) {
    if (allowed && !allowed(row)) continue;
    const double norm = Bm25Norm(s.k1, s.b, length.at(row), s.avgdl);
    double score = 0;
    for (const Posting* p : ps) score += Bm25Term(s.weight[p->term], p->f, s.k1, norm);
    all.push_back({row, score});
  }
  std::sort(all.begin(), all.end(), [](const ScoredChunk& x, const ScoredChunk& y) {
    return x.score != y.score ? x.score > y.score : x.row < y.row;
  });
  if (all.size() > static_cast<size_t>(depth)) all.resize(depth);
  return all;
}

TEST(TopChunksByTerm, HandComputedScores) {
  // Two terms (weights 1 and 3), k1 1.2, b 0.75, average length 10.
  TermScoring s{1.2, 0.75, 10, {1.0, 3.0}};
  // Chunk 7: term 0 once, 10 tokens long: norm 1.2, score 1 x 1 x 2.2 / 2.2 = 1.
  // Chunk 9: term 1 once, 30 tokens long: norm 1.2 x (0.25 + 2.25) = 3, score 3 x 2.2 / 4 = 1.65.
  std::vector<Posting> postings = {{7, 0, 1, 1.0}, {9, 1, 1, 1.0}};
  std::map<int64_t, int> len = {{7, 10}, {9, 30}};
  auto length = [&](int64_t row) { return len.at(row); };
  const auto top = TopChunksByTerm(postings, s, 10, length, {}, nullptr);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].row, 9);
  EXPECT_DOUBLE_EQ(top[0].score, 1.65);
  EXPECT_EQ(top[1].row, 7);
  EXPECT_DOUBLE_EQ(top[1].score, 1.0);
  EXPECT_TRUE(TopChunksByTerm(postings, s, 0, length, {}, nullptr).empty());
  EXPECT_TRUE(TopChunksByTerm({}, s, 5, length, {}, nullptr).empty());
}

TEST(TopChunksByTerm, ReadsOnlyTheLengthsThatCanMatter) {
  // One chunk holds the heavy term; fifty hold only a light one. At depth 1, a light chunk's
  // bound (its score if it were as short as its one instance) is below the heavy chunk's exact
  // score, so none of their lengths is read.
  TermScoring s{1.2, 0.75, 20, {10.0, 0.1}};
  std::vector<Posting> postings = {{1, 0, 1, 1.0}};
  std::map<int64_t, int> len = {{1, 20}};
  for (int64_t r = 2; r < 52; ++r) {
    postings.push_back({r, 1, 1, 1.0});
    len[r] = 20;
  }
  int reads = 0;
  auto length = [&](int64_t row) {
    ++reads;
    return len.at(row);
  };
  int64_t scored = 0;
  const auto top = TopChunksByTerm(postings, s, 1, length, {}, &scored);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].row, 1);
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(scored, 1);
}

TEST(TopChunksByTerm, EqualsScoringEveryChunkOnRandomPostings) {
  std::mt19937 rng(20240601);
  for (int trial = 0; trial < 200; ++trial) {
    const int n_terms = 1 + static_cast<int>(rng() % 6);
    TermScoring s{1.2, 0.75, 5.0 + rng() % 20, {}};
    for (int t = 0; t < n_terms; ++t) s.weight.push_back(0.1 + (rng() % 100) / 10.0);
    std::vector<Posting> postings;
    std::map<int64_t, int> len, instances;
    const int n_rows = 1 + static_cast<int>(rng() % 60);
    for (int t = 0; t < n_terms; ++t) {
      for (int64_t r = 0; r < n_rows; ++r) {
        if (rng() % 3 != 0) continue;
        const int count = 1 + static_cast<int>(rng() % 4);
        postings.push_back({r * 3 + 1, t, count, count * (0.5 + (rng() % 4) / 2.0)});
        instances[r * 3 + 1] += count;
      }
    }
    for (const auto& [row, n] : instances) len[row] = n + static_cast<int>(rng() % 40);
    auto length = [&](int64_t row) { return len.at(row); };
    std::function<bool(int64_t)> odd = [](int64_t row) { return row % 2 == 1; };
    for (int depth : {1, 2, 3, 7, 1000}) {
      for (bool filter : {false, true}) {
        const auto allowed = filter ? odd : std::function<bool(int64_t)>();
        const auto want = Reference(postings, s, depth, len, allowed);
        const auto got = TopChunksByTerm(postings, s, depth, length, allowed, nullptr);
        ASSERT_EQ(want.size(), got.size()) << "trial " << trial << " depth " << depth;
        for (size_t i = 0; i < want.size(); ++i) {
          EXPECT_EQ(want[i].row, got[i].row) << "trial " << trial << " rank " << i;
          EXPECT_EQ(want[i].score, got[i].score) << "trial " << trial << " rank " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace hearth::index
