// The term-at-a-time evaluator of index::Search (internal), free of SQLite so that it can be
// tested alone: given every (chunk, query term) posting with the term's column-weighted
// frequency, it finds the `depth` chunks with the highest BM25 and scores them exactly, reading
// the true length of as few chunks as it can.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace hearth::index {

struct Posting {
  int64_t row = 0;  // the chunk
  int term = 0;     // index into TermScoring::weight
  int count = 0;    // the term's instances in the chunk: a lower bound of the chunk's length
  double f = 0;     // column-weighted frequency
};

struct TermScoring {
  double k1 = 1.2, b = 0.75, avgdl = 1;
  std::vector<double> weight;  // per term: IDF x query weight
};

struct ScoredChunk {
  int64_t row = 0;
  double score = 0;
};

// The best `depth` chunks, best first (ties: the lower row first), with their exact BM25 scores:
// the sum over the chunk's postings, in posting order, of Bm25Term(weight, f, k1,
// Bm25Norm(k1, b, length(row), avgdl)). Chunks for which `allowed` (may be empty: all) is false
// are left out. `length(row)` is called only for chunks whose score bound can still reach the top
// (a chunk is at least as long as its query-term instances and a shorter chunk scores higher);
// `scored` (may be null) counts those calls.
std::vector<ScoredChunk> TopChunksByTerm(const std::vector<Posting>& postings,
                                         const TermScoring& scoring, int depth,
                                         const std::function<int(int64_t)>& length,
                                         const std::function<bool(int64_t)>& allowed,
                                         int64_t* scored);

}  // namespace hearth::index
