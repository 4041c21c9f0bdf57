// The fusion step alone: chunks to files (best chunk plus decayed next ones) and weighted
// reciprocal rank fusion with the path ranking, against hand-computed scores.
#include "index/fusion.h"

#include <gtest/gtest.h>

#include <cmath>

namespace hearth::index {
namespace {

TEST(FuseFiles, HandComputedRrfOfLexicalAndPathRankings) {
  // Chunk ranking (best first): file 10 has chunks scoring 5 and 2, file 20 one of 4, file 30
  // one of 1. Lexical file scores with decay 0.25: 10 -> 5 + 0.5 = 5.5, 20 -> 4, 30 -> 1.
  std::vector<RankedChunk> chunks = {{1, 10, "a", "function", 1, 9, 5.0},
                                     {2, 20, "b", "function", 1, 5, 4.0},
                                     {3, 10, "c", "function", 20, 30, 2.0},
                                     {4, 30, "d", "function", 3, 4, 1.0}};
  // Path ranking: file 30 first, then file 40 (no chunk).
  std::vector<PathMatch> paths = {{30, 7.0}, {40, 3.0}};
  FusionParams p;  // decay 0.25, k 10, path weight 0.5
  p.limit = 10;
  const auto files = FuseFiles(chunks, paths, {}, p);
  // 10: 1/11 = 0.0909; 20: 1/12 = 0.0833; 30: 1/13 + 0.5/11 = 0.1224; 40: 0.5/12 = 0.0417.
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0].file_id, 30);
  EXPECT_DOUBLE_EQ(files[0].hit.score, 1.0 / 13 + 0.5 / 11);
  EXPECT_EQ(files[1].file_id, 10);
  EXPECT_DOUBLE_EQ(files[1].hit.score, 1.0 / 11);
  EXPECT_EQ(files[2].file_id, 20);
  EXPECT_EQ(files[3].file_id, 40);
  EXPECT_DOUBLE_EQ(files[3].hit.score, 0.5 / 12);

  // Signals: file 30 has lexical rank 3 and path rank 1; file 40 only path rank 2; each its
  // role (source: no roles given), with no effect (no prior).
  ASSERT_EQ(files[0].hit.file_signals.size(), 3u);
  EXPECT_EQ(files[0].hit.file_signals[0].signal, "bm25");
  EXPECT_EQ(files[0].hit.file_signals[0].rank, 3);
  EXPECT_DOUBLE_EQ(files[0].hit.file_signals[0].raw, 1.0);
  EXPECT_EQ(files[0].hit.file_signals[1].signal, "path");
  EXPECT_EQ(files[0].hit.file_signals[1].rank, 1);
  EXPECT_DOUBLE_EQ(files[0].hit.file_signals[1].contribution, 0.5 / 11);
  EXPECT_EQ(files[0].hit.file_signals[2].signal, "role:source");
  EXPECT_DOUBLE_EQ(files[0].hit.file_signals[2].raw, 1.0);
  EXPECT_DOUBLE_EQ(files[0].hit.file_signals[2].contribution, 0.0);
  ASSERT_EQ(files[3].hit.file_signals.size(), 2u);
  EXPECT_EQ(files[3].hit.file_signals[0].signal, "path");
  EXPECT_TRUE(files[3].hit.chunks.empty());

  // File 10's chunks, best first, each with its rank in the chunk list.
  ASSERT_EQ(files[1].hit.chunks.size(), 2u);
  EXPECT_DOUBLE_EQ(files[1].hit.file_signals[0].raw, 5.5);
  EXPECT_EQ(files[1].hit.chunks[0].symbol, "a");
  EXPECT_EQ(files[1].hit.chunks[0].signals[0].rank, 1);
  EXPECT_EQ(files[1].hit.chunks[1].symbol, "c");
  EXPECT_EQ(files[1].hit.chunks[1].start_line, 20);
  EXPECT_EQ(files[1].hit.chunks[1].signals[0].rank, 3);
}

TEST(FuseFiles, LimitsFilesAndChunksAndOnlyTheTopThreeChunksCount) {
  // One file with four chunks 8, 4, 2, 1: 8 + 0.5 x 4 + 0.25 x 2 = 10.5 with decay 0.5.
  std::vector<RankedChunk> chunks = {{1, 5, "", "window", 1, 2, 8.0},
                                     {2, 5, "", "window", 3, 4, 4.0},
                                     {3, 5, "", "window", 5, 6, 2.0},
                                     {4, 5, "", "window", 7, 8, 1.0},
                                     {5, 6, "", "window", 1, 2, 0.5}};
  FusionParams p;
  p.decay = 0.5;
  p.limit = 1;
  p.chunks_per_file = 2;
  const auto files = FuseFiles(chunks, {}, {}, p);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].file_id, 5);
  EXPECT_DOUBLE_EQ(files[0].hit.file_signals[0].raw, 10.5);
  EXPECT_EQ(files[0].hit.chunks.size(), 2u);
  p.limit = 0;
  EXPECT_TRUE(FuseFiles(chunks, {}, {}, p).empty());
}

TEST(FuseFiles, RolePriorReordersUnlessTheQueryNamesTheRole) {
  // A test file (id 1) scores 10 lexically, the source file (id 2) 6; no path list.
  std::vector<RankedChunk> chunks = {{1, 1, "", "function", 1, 2, 10.0},
                                     {2, 2, "", "function", 1, 2, 6.0}};
  const std::unordered_map<int64_t, FileRole> roles = {{1, FileRole::kTest},
                                                       {2, FileRole::kSource}};
  FusionParams p;
  p.role_weight[static_cast<size_t>(FileRole::kTest)] = -1.0;  // factor e^-1: 10 -> 3.68 < 6
  auto files = FuseFiles(chunks, {}, roles, p);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].file_id, 2);
  EXPECT_DOUBLE_EQ(files[0].hit.score, 1.0 / 11);
  // The test file's role signal: its factor, and its effect: rank 1 (1/11) became rank 2 (1/12).
  const SignalScore& role = files[1].hit.file_signals.back();
  EXPECT_EQ(role.signal, "role:test");
  EXPECT_DOUBLE_EQ(role.raw, std::exp(-1.0));
  EXPECT_DOUBLE_EQ(role.contribution, 1.0 / 12 - 1.0 / 11);
  // The lexical raw score stays the unweighted one.
  EXPECT_DOUBLE_EQ(files[1].hit.file_signals[0].raw, 10.0);
  // A query that names tests: no prior on them.
  p.named[static_cast<size_t>(FileRole::kTest)] = true;
  files = FuseFiles(chunks, {}, roles, p);
  EXPECT_EQ(files[0].file_id, 1);
  EXPECT_DOUBLE_EQ(files[0].hit.file_signals.back().raw, 1.0);
}

TEST(FuseFiles, ExtraListsAreMoreRrfListsWithTheirOwnWeight) {
  // Lexical: file 1 (10) then file 2 (6). A "def" list, weight 1: file 2 (score 1) then file 3
  // (0.5); a "graph" list at weight 0 is listed but adds nothing. k = 10, no path list.
  std::vector<RankedChunk> chunks = {{1, 1, "", "function", 1, 2, 10.0},
                                     {2, 2, "", "function", 1, 2, 6.0}};
  std::vector<FileList> extra = {{"def", 1.0, {{3, 0.5}, {2, 1.0}}}, {"graph", 0.0, {{1, 2.0}}}};
  FusionParams p;
  p.rrf_k = 10;
  const auto files = FuseFiles(chunks, {}, {}, p, extra);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].file_id, 2);  // 1/12 + 1/11
  EXPECT_DOUBLE_EQ(files[0].hit.score, 1.0 / 12 + 1.0 / 11);
  EXPECT_EQ(files[1].file_id, 1);  // 1/11
  EXPECT_DOUBLE_EQ(files[1].hit.score, 1.0 / 11);
  EXPECT_EQ(files[2].file_id, 3);  // 1/12, from the def list alone
  EXPECT_DOUBLE_EQ(files[2].hit.score, 1.0 / 12);
  const SignalScore& def = files[0].hit.file_signals[1];
  EXPECT_EQ(def.signal, "def");
  EXPECT_EQ(def.rank, 1);
  EXPECT_DOUBLE_EQ(def.raw, 1.0);
  EXPECT_DOUBLE_EQ(def.contribution, 1.0 / 11);
  const SignalScore& graph = files[1].hit.file_signals[1];
  EXPECT_EQ(graph.signal, "graph");
  EXPECT_DOUBLE_EQ(graph.raw, 2.0);
  EXPECT_DOUBLE_EQ(graph.contribution, 0.0);
}

}  // namespace
}  // namespace hearth::index
