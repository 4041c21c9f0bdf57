// The ranking signals of search, alone: query analysis, term selection and the BM25 term score.
#include "index/ranking.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace hearth::index {
namespace {

const QueryTerm* Find(const std::vector<QueryTerm>& terms, const std::string& token) {
  for (const auto& t : terms)
    if (t.token == token) return &t;
  return nullptr;
}

TEST(LooksLikeCode, IdentifierShapesAndCodeContext) {
  auto code = [](std::string_view text, std::string_view word) {
    const size_t at = text.find(word);
    return LooksLikeCode(text, at, at + word.size());
  };
  EXPECT_TRUE(code("fix ssl_read_ex here", "ssl_read_ex"));  // snake_case
  EXPECT_TRUE(code("in parseHeader now", "parseHeader"));    // camelCase
  EXPECT_TRUE(code("the utf8 path", "utf8"));                // letters and digits
  EXPECT_TRUE(code("call reset() first", "reset"));          // a call
  EXPECT_TRUE(code("see lib/socks.c", "lib"));               // a path's folder
  EXPECT_TRUE(code("see lib/socks.c", "socks"));             // after "/"
  EXPECT_TRUE(code("ptr->next is null", "ptr"));             // "->"
  EXPECT_FALSE(code("the server crashes", "server"));        // prose
  EXPECT_FALSE(code("it ends. Then", "ends"));               // sentence end, not a member
  EXPECT_FALSE(code("_private", "_private"));                // a lone leading underscore
}

TEST(AnalyzeQuery, ProseOneIdentifierTwoItsPartsHalf) {
  RankParams p;
  const auto terms = AnalyzeQuery("Crash in parseHeader when header is long", p);
  // In order of first appearance; "in", "when", "is" are stop words.
  ASSERT_EQ(terms.size(), 5u);
  EXPECT_EQ(terms[0].token, "crash");
  EXPECT_EQ(terms[1].token, "parseheader");
  EXPECT_EQ(terms[2].token, "parse");
  EXPECT_EQ(terms[3].token, "header");
  EXPECT_EQ(terms[4].token, "long");
  EXPECT_DOUBLE_EQ(terms[0].weight, 1.0);
  EXPECT_DOUBLE_EQ(terms[1].weight, 2.0);
  EXPECT_DOUBLE_EQ(terms[2].weight, 0.5);
  // "header" is a part of parseHeader (0.5) and a prose word (1): the higher weight, two counts.
  EXPECT_DOUBLE_EQ(terms[3].weight, 1.0);
  EXPECT_EQ(terms[3].count, 2);
}

TEST(AnalyzeQuery, WeightsFollowTheParams) {
  RankParams p;
  p.code_weight = 3;
  p.part_weight = 0.25;
  const auto terms = AnalyzeQuery("ssl_read_ex", p);
  ASSERT_NE(Find(terms, "ssl_read_ex"), nullptr);
  EXPECT_DOUBLE_EQ(Find(terms, "ssl_read_ex")->weight, 3.0);
  EXPECT_DOUBLE_EQ(Find(terms, "ssl")->weight, 0.25);
  EXPECT_DOUBLE_EQ(Find(terms, "read")->weight, 0.25);
  EXPECT_TRUE(AnalyzeQuery("", p).empty());
  EXPECT_TRUE(AnalyzeQuery("!!! ... ---", p).empty());
}

TEST(SelectTerms, DropsAbsentOrdersByWeightTimesIdfKeepsTheTop) {
  std::vector<QueryTerm> terms = {
      {"a", 1.0, 1, 2.0, 5},  // 2.0
      {"b", 2.0, 1, 0.0, 0},  // not in the corpus
      {"c", 0.5, 1, 6.0, 1},  // 3.0
      {"d", 2.0, 1, 1.0, 9},  // 2.0, after "a" (stable)
  };
  SelectTerms(terms, 64);
  ASSERT_EQ(terms.size(), 3u);
  EXPECT_EQ(terms[0].token, "c");
  EXPECT_EQ(terms[1].token, "a");
  EXPECT_EQ(terms[2].token, "d");
  SelectTerms(terms, 2);
  ASSERT_EQ(terms.size(), 2u);
  EXPECT_EQ(terms[1].token, "a");
  SelectTerms(terms, 0);  // clamped to at least one
  EXPECT_EQ(terms.size(), 1u);
}

// Relevance-model weights by hand: chunk A (weight 1, 5 tokens) gives each token 1/5 per
// occurrence, chunk B (weight 0.5, 4 tokens) 0.5/4 = 0.125: mutex 0.4 + 0.125, abc and zed 0.2
// (a tie, byte order), queue 0.125; "lock" is the query's, "io" too short, "404" digits only, and
// a chunk of weight 0 or without tokens adds nothing.
TEST(FeedbackTerms, WeighsTokensByChunkShareAndSkipsTheQuerys) {
  const std::vector<FeedbackChunk> chunks = {
      {1.0, {"lock", "mutex", "mutex", "zed", "abc"}},
      {0.5, {"mutex", "queue", "io", "404"}},
      {0.0, {"ignored"}},
      {1.0, {}},
  };
  const auto terms = FeedbackTerms(chunks, {"lock"}, 10);
  ASSERT_EQ(terms.size(), 4u);
  EXPECT_EQ(terms[0].token, "mutex");
  EXPECT_DOUBLE_EQ(terms[0].weight, 0.525);
  EXPECT_EQ(terms[1].token, "abc");
  EXPECT_DOUBLE_EQ(terms[1].weight, 0.2);
  EXPECT_EQ(terms[2].token, "zed");
  EXPECT_EQ(terms[3].token, "queue");
  EXPECT_DOUBLE_EQ(terms[3].weight, 0.125);
  for (const auto& t : terms) EXPECT_EQ(t.idf, 0);  // looked up by the caller
  const auto two = FeedbackTerms(chunks, {"lock"}, 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].token, "abc");
  EXPECT_TRUE(FeedbackTerms({}, {}, 10).empty());
}

TEST(StemVariants, SuffixRulesBothWays) {
  auto has = [](const std::vector<std::string>& v, const char* w) {
    return std::find(v.begin(), v.end(), w) != v.end();
  };
  const auto parsing = StemVariants("parsing");
  EXPECT_TRUE(has(parsing, "parse"));
  EXPECT_TRUE(has(parsing, "parser"));
  EXPECT_TRUE(has(parsing, "parsed"));
  EXPECT_FALSE(has(parsing, "parsing"));  // never the word itself
  const auto crashes = StemVariants("crashes");
  EXPECT_TRUE(has(crashes, "crash"));
  EXPECT_TRUE(has(crashes, "crashed"));
  EXPECT_TRUE(has(StemVariants("crash"), "crashes"));
  EXPECT_TRUE(has(StemVariants("stopped"), "stop"));
  EXPECT_TRUE(has(StemVariants("libraries"), "library"));
  EXPECT_TRUE(has(StemVariants("allocation"), "allocate"));
  EXPECT_TRUE(has(StemVariants("buffers"), "buffer"));
  EXPECT_FALSE(has(StemVariants("class"), "clas"));  // "ss" is not a plural
  EXPECT_TRUE(StemVariants("fix").empty());          // too short to strip safely
  EXPECT_TRUE(StemVariants("ssl_read").empty());     // code tokens are not stemmed
  EXPECT_TRUE(StemVariants("utf8").empty());
}

TEST(Bm25, HandComputedTermScore) {
  // k1 1.2, b 0.75, a chunk of 10 tokens in a corpus averaging 20: norm = 1.2 x (0.25 + 0.375).
  const double norm = Bm25Norm(1.2, 0.75, 10, 20);
  EXPECT_DOUBLE_EQ(norm, 0.75);
  // weight 2, frequency 3: 2 x 3 x 2.2 / (3 + 0.75) = 3.52.
  EXPECT_DOUBLE_EQ(Bm25Term(2.0, 3.0, 1.2, norm), 3.52);
  // Saturation: a huge frequency approaches weight x (k1 + 1).
  EXPECT_NEAR(Bm25Term(1.0, 1e9, 1.2, norm), 2.2, 1e-6);
}

}  // namespace
}  // namespace hearth::index
