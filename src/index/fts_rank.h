// hearth's FTS5 auxiliary functions (internal), through which index::Search reads chunks_fts:
//   hearth_rank(chunks_fts, k1, b, column weights..., term weights...) scores the current row
//     with BM25 whose term frequency is column-weighted and whose terms carry weights (FTS5's
//     own bm25() has column weights but no per-phrase weights). The exhaustive evaluation.
//   hearth_collect(chunks_fts, k1, b, column weights..., term weights...) is evaluated on the
//     first row only (LIMIT 1) and walks each query phrase's whole doclist, recording one
//     Posting per (chunk, term) in a TermCollector: the input of TopChunksByTerm.
// Both parse their arguments the same way and use ranking.h's BM25, so they agree to the bit.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <vector>

#include "index/term_at_a_time.h"

namespace hearth::index {

struct TermCollector {
  TermScoring scoring;  // the arguments and the corpus's average chunk length
  std::vector<Posting> postings;
  int term = 0;  // the phrase being walked
  bool done = false;
};

// Registers both functions on `db`. `scored` (may be null) counts the rows hearth_rank scores;
// `collector` receives hearth_collect's postings. Both must outlive the connection's use of them.
// Throws hearth::Error when SQLite lacks FTS5.
void RegisterFtsFunctions(sqlite3* db, int64_t* scored, TermCollector* collector);

// A chunk's length in tokens from its chunks_fts_docsize blob: the sum of the per-column token
// counts, stored as SQLite varints (as xColumnSize(-1) reports it).
int DocsizeLength(const unsigned char* blob, int bytes);

}  // namespace hearth::index
