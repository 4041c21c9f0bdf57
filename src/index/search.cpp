// Search: each signal ranks files on its own; reciprocal rank fusion combines them, so a new
// signal (vector similarity through an Embedder) is one more ranked list.
//
// The lexical signal is one field-weighted BM25 over chunks (symbol, path and body columns of
// chunks_fts), computed by our own FTS5 functions (fts_rank.h) so that query terms carry weights:
// an issue text mixes English with identifiers, and the identifiers ("ssl_read_ex",
// "parseHeader", "lib/socks.c") say far more about where the code is than the prose around them
// (ranking.h). Only the most informative terms (by weight x IDF) are searched, which bounds the
// work on long queries. The top chunks are found term at a time (term_at_a_time.h); a file scores
// its best chunk plus a decayed share of its next ones, and is fused with the path signal, which
// ranks files by their path tokens (fusion.h). This file only reads the index and wires the
// steps together.
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "base/error.h"
#include "index/file_role.h"
#include "index/fts_rank.h"
#include "index/fusion.h"
#include "index/index.h"
#include "index/ranking.h"
#include "index/store.h"
#include "index/term_at_a_time.h"

namespace hearth::index {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Document frequencies and IDF (Lucene's, as BM25 uses) of each term, from the FTS index itself
// (a temp fts5vocab table: the db is opened read-only).
void LookUpTermStats(Db& db, std::vector<QueryTerm>& terms) {
  double n_rows = 0;
  Stmt c(db.get(), "SELECT count(*) FROM chunks");
  if (c.Step()) {
    n_rows = static_cast<double>(c.Int(0));
  }
  Stmt df(db.get(), "SELECT doc FROM temp.hearth_vocab WHERE term = ?");
  for (auto& t : terms) {
    df.Bind(1, t.token);
    const double d = df.Step() ? static_cast<double>(df.Int(0)) : 0;
    df.Reset();
    t.idf = d > 0 ? std::log(1.0 + (n_rows - d + 0.5) / (d + 0.5)) : 0;
    t.df = d;
  }
}

std::string TermWeights(const std::vector<QueryTerm>& terms) {
  std::string weights;
  for (const auto& t : terms) {
    weights += ',';
    weights += std::to_string(t.weight * t.idf);
  }
  return weights;
}

struct Query {
  const SearchOptions& options;
  const RankParams& params;
  const std::vector<QueryTerm>& terms;
  std::string match;  // the FTS5 expression: any of the terms
  int depth = 0;      // chunks ranked
  bool filtered() const { return !options.language.empty() || !options.path_glob.empty(); }
};

// Exhaustive evaluation (the reference for the term-at-a-time one): FTS5 merges all the terms'
// doclists and hearth_rank scores every chunk holding any term, rows x terms work.
std::vector<RankedChunk> ExhaustiveTopChunks(Db& db, const Query& q) {
  const RankParams& P = q.params;
  // With filters, rank all candidate chunks, then filter (a LIMIT before the filter could leave
  // nothing).
  const bool filtered = q.filtered();
  std::string sql =
      "SELECT c.id, c.file_id, c.symbol, c.kind, c.start_line, c.end_line, r.score FROM "
      "(SELECT rowid AS id, hearth_rank(chunks_fts, ?5, ?6, ?7, ?8, ?9" +
      TermWeights(q.terms) + ") AS score FROM chunks_fts WHERE chunks_fts MATCH ?1" +
      (filtered ? ") r " : " ORDER BY score DESC LIMIT ?4) r ") +
      "JOIN chunks c ON c.id = r.id JOIN files f ON f.id = c.file_id "
      "WHERE (?2 = '' OR f.language = ?2) AND (?3 = '' OR f.path GLOB ?3) "
      "ORDER BY r.score DESC" +
      (filtered ? " LIMIT ?4" : "");
  Stmt st(db.get(), sql);
  st.Bind(1, q.match)
      .Bind(2, q.options.language)
      .Bind(3, q.options.path_glob)
      .Bind(4, static_cast<int64_t>(q.depth))
      .Bind(5, P.k1)
      .Bind(6, P.b)
      .Bind(7, P.w_symbol)
      .Bind(8, P.w_path)
      .Bind(9, P.w_body);
  std::vector<RankedChunk> out;
  while (st.Step()) {
    out.push_back({st.Int(0), st.Int(1), st.Text(2), st.Text(3), static_cast<int>(st.Int(4)),
                   static_cast<int>(st.Int(5)), st.Double(6)});
  }
  return out;
}

// With --lang / --path, the chunks of the files that pass, read up front from the chunks_file
// index (a lookup per candidate cost more when the filter is selective).
std::unordered_set<int64_t> AllowedChunks(Db& db, const SearchOptions& options) {
  std::unordered_set<int64_t> allowed;
  Stmt q(db.get(),
         "SELECT c.id FROM files f JOIN chunks c ON c.file_id = f.id "
         "WHERE (?1 = '' OR f.language = ?1) AND (?2 = '' OR f.path GLOB ?2)");
  q.Bind(1, options.language).Bind(2, options.path_glob);
  while (q.Step()) {
    allowed.insert(q.Int(0));
  }
  return allowed;
}

// Term at a time (the default): hearth_collect walks each term's doclist once and records
// (chunk, term, weighted frequency), so the cost is the summed doclist lengths rather than
// rows x terms; TopChunksByTerm then reads the length of only the chunks that can still reach
// the top. The scores are hearth_rank's to the bit.
std::vector<RankedChunk> TermAtATimeTopChunks(Db& db, const Query& q, TermCollector& collector,
                                              int64_t* scored) {
  const RankParams& P = q.params;
  collector = TermCollector{};
  double postings = 0;  // every chunk holding a term: the terms' document frequencies
  for (const auto& t : q.terms) {
    postings += t.df;
  }
  collector.postings.reserve(static_cast<size_t>(std::min(postings, 1e7)));
  {
    Stmt st(db.get(), "SELECT hearth_collect(chunks_fts, ?2, ?3, ?4, ?5, ?6" +
                          TermWeights(q.terms) +
                          ") FROM chunks_fts WHERE chunks_fts MATCH ?1 LIMIT 1");
    st.Bind(1, q.match)
        .Bind(2, P.k1)
        .Bind(3, P.b)
        .Bind(4, P.w_symbol)
        .Bind(5, P.w_path)
        .Bind(6, P.w_body);
    st.Step();
  }
  Stmt size_q(db.get(), "SELECT sz FROM chunks_fts_docsize WHERE id = ?1");
  auto length = [&](int64_t row) {
    size_q.Bind(1, row);
    int dl = 0;
    if (size_q.Step()) {
      dl = DocsizeLength(static_cast<const unsigned char*>(sqlite3_column_blob(size_q.get(), 0)),
                         sqlite3_column_bytes(size_q.get(), 0));
    }
    size_q.Reset();
    return dl;
  };
  std::function<bool(int64_t)> allowed;
  std::unordered_set<int64_t> allowed_rows;
  if (q.filtered()) {
    allowed_rows = AllowedChunks(db, q.options);
    allowed = [&](int64_t row) { return allowed_rows.count(row) > 0; };
  }
  const std::vector<ScoredChunk> top =
      TopChunksByTerm(collector.postings, collector.scoring, q.depth, length, allowed, scored);

  Stmt meta_q(db.get(),
              "SELECT c.file_id, c.symbol, c.kind, c.start_line, c.end_line FROM chunks c "
              "JOIN files f ON f.id = c.file_id WHERE c.id = ?1 "
              "AND (?2 = '' OR f.language = ?2) AND (?3 = '' OR f.path GLOB ?3)");
  std::vector<RankedChunk> out;
  out.reserve(top.size());
  for (const ScoredChunk& c : top) {
    meta_q.Bind(1, c.row).Bind(2, q.options.language).Bind(3, q.options.path_glob);
    if (meta_q.Step()) {
      out.push_back({c.row, meta_q.Int(0), meta_q.Text(1), meta_q.Text(2),
                     static_cast<int>(meta_q.Int(3)), static_cast<int>(meta_q.Int(4)), c.score});
    }
    meta_q.Reset();
  }
  return out;
}

// The path signal: files ranked by FTS5's bm25 over their path tokens.
std::vector<PathMatch> PathRanking(Db& db, const Query& q) {
  std::vector<PathMatch> out;
  if (q.params.path_weight <= 0) {
    return out;
  }
  Stmt st(db.get(),
          "SELECT files_fts.rowid, bm25(files_fts) FROM files_fts "
          "JOIN files f ON f.id = files_fts.rowid "
          "WHERE files_fts MATCH ?1 AND f.skip = '' AND (?2 = '' OR f.language = ?2) "
          "AND (?3 = '' OR f.path GLOB ?3) ORDER BY bm25(files_fts) LIMIT ?4");
  st.Bind(1, q.match)
      .Bind(2, q.options.language)
      .Bind(3, q.options.path_glob)
      .Bind(4, static_cast<int64_t>(q.params.depth));
  while (st.Step()) {
    out.push_back({st.Int(0), -st.Double(1)});
  }
  return out;
}

// The role (file_role.h) of every candidate file, from its path and language.
std::unordered_map<int64_t, FileRole> CandidateRoles(Db& db, const std::vector<RankedChunk>& ranked,
                                                     const std::vector<PathMatch>& paths) {
  std::unordered_map<int64_t, FileRole> roles;
  Stmt q(db.get(), "SELECT path, language FROM files WHERE id = ?");
  auto add = [&](int64_t id) {
    if (roles.count(id)) return;
    q.Bind(1, id);
    roles[id] = q.Step() ? DetectRole(q.Text(0), q.Text(1), "") : FileRole::kSource;
    q.Reset();
  };
  for (const RankedChunk& c : ranked) add(c.file_id);
  for (const PathMatch& m : paths) add(m.file_id);
  return roles;
}

}  // namespace

std::vector<FileHit> Search(const fs::path& root, const SearchOptions& options) {
  return SearchWith(root, options, RankParams{});
}

std::vector<FileHit> SearchWith(const fs::path& root, const SearchOptions& options,
                                const RankParams& P) {
  Db db(DbPath(root), Db::Mode::kRead);
  std::vector<QueryTerm> terms = AnalyzeQuery(options.query, P);
  if (terms.empty() || options.limit <= 0) {
    return {};
  }
  int64_t scored = 0;
  TermCollector collector;
  RegisterFtsFunctions(db.get(), &scored, &collector);

  auto t_terms = Clock::now();
  db.Exec(
      "CREATE VIRTUAL TABLE IF NOT EXISTS temp.hearth_vocab "
      "USING fts5vocab(main, 'chunks_fts', 'row')");
  // One read transaction for the whole search: every statement sees the same snapshot while
  // `hearth index` runs beside it, and SQLite takes its file locks and checks the WAL once
  // instead of once per statement (thousands of chunk-length lookups: that cost a third of the
  // CPU time). Closing the connection ends it.
  db.Exec("BEGIN");
  LookUpTermStats(db, terms);
  SelectTerms(terms, P.max_terms);
  if (terms.empty()) {
    return {};
  }
  Query q{options, P, terms, "", options.chunk_depth > 0 ? options.chunk_depth : P.depth};
  for (const auto& t : terms) {
    if (!q.match.empty()) {
      q.match += " OR ";
    }
    q.match += '"' + t.token + '"';  // tokens are [a-z0-9_]+: quoting is always safe
  }
  const double terms_ms = MsSince(t_terms);

  auto t_chunks = Clock::now();
  std::vector<RankedChunk> ranked = options.evaluation == SearchOptions::Evaluation::kExhaustive
                                        ? ExhaustiveTopChunks(db, q)
                                        : TermAtATimeTopChunks(db, q, collector, &scored);
  if (options.stats != nullptr) {
    options.stats->terms = static_cast<int>(terms.size());
    options.stats->chunks_scored = static_cast<int>(scored);
    options.stats->terms_ms = terms_ms;
    options.stats->chunks_ms = MsSince(t_chunks);
  }

  auto t_paths = Clock::now();
  const std::vector<PathMatch> paths = PathRanking(db, q);
  if (options.stats != nullptr) {
    options.stats->paths_ms = MsSince(t_paths);
  }

  FusionParams fp{P.decay, P.rrf_k, P.path_weight, options.limit, options.chunks_per_file};
  fp.role_weight = P.role_weight;
  fp.named = RolesNamedBy(options.query);
  fp.prior_on_path = P.prior_on_path;
  const auto roles = CandidateRoles(db, ranked, paths);
  std::vector<FusedFile> fused = FuseFiles(std::move(ranked), paths, roles, fp);
  std::vector<FileHit> out;
  Stmt fq(db.get(), "SELECT path, language FROM files WHERE id = ?");
  for (FusedFile& f : fused) {
    fq.Bind(1, f.file_id);
    if (fq.Step()) {
      f.hit.path = fq.Text(0);
      f.hit.language = fq.Text(1);
    }
    fq.Reset();
    out.push_back(std::move(f.hit));
  }
  return out;
}

std::vector<SymbolUse> FindSymbol(const fs::path& root, const std::string& name) {
  Db db(DbPath(root), Db::Mode::kRead);
  Stmt q(db.get(),
         "SELECT f.path, s.kind, s.is_def, s.line, s.text FROM symbols s "
         "JOIN files f ON f.id = s.file_id WHERE s.name = ? "
         "ORDER BY s.is_def DESC, f.path, s.line");
  q.Bind(1, name);
  std::vector<SymbolUse> out;
  while (q.Step()) {
    out.push_back({q.Text(0), q.Text(1), q.Int(2) != 0, static_cast<int>(q.Int(3)), q.Text(4)});
  }
  return out;
}

}  // namespace hearth::index
