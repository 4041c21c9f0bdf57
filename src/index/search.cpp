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
// ranks files by their path tokens, and with the lists of ranking.h's def, graph and cover
// signals (fusion.h). This file only reads the index and wires the steps together.
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
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
#include "index/tokenize.h"

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

// hearth_collect walks each term's doclist once and records every (chunk, term, weighted
// frequency) posting in `collector`.
void CollectPostings(Db& db, const Query& q, TermCollector& collector) {
  const RankParams& P = q.params;
  collector = TermCollector{};
  double postings = 0;  // every chunk holding a term: the terms' document frequencies
  for (const auto& t : q.terms) {
    postings += t.df;
  }
  collector.postings.reserve(static_cast<size_t>(std::min(postings, 1e7)));
  Stmt st(db.get(), "SELECT hearth_collect(chunks_fts, ?2, ?3, ?4, ?5, ?6" + TermWeights(q.terms) +
                        ") FROM chunks_fts WHERE chunks_fts MATCH ?1 LIMIT 1");
  st.Bind(1, q.match)
      .Bind(2, P.k1)
      .Bind(3, P.b)
      .Bind(4, P.w_symbol)
      .Bind(5, P.w_path)
      .Bind(6, P.w_body);
  st.Step();
}

// Term at a time (the default): hearth_collect walks each term's doclist once and records
// (chunk, term, weighted frequency), so the cost is the summed doclist lengths rather than
// rows x terms; TopChunksByTerm then reads the length of only the chunks that can still reach
// the top. The scores are hearth_rank's to the bit.
std::vector<RankedChunk> TermAtATimeTopChunks(Db& db, const Query& q, TermCollector& collector,
                                              int64_t* scored) {
  CollectPostings(db, q, collector);
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

// Stemming (RankParams::stem_weight): each selected prose term (weight 1: not written as code)
// also searches its other forms that the corpus holds, at stem_weight of its weight. The forms
// come from the same suffix rules for every word (StemVariants); the index is not stemmed, and
// code tokens are split into words the same way as prose, so "parsing" finds `parse_header`'s
// "parse" part.
void ExpandStems(Db& db, std::vector<QueryTerm>& terms, const RankParams& P) {
  if (P.stem_weight <= 0) {
    return;
  }
  std::unordered_set<std::string> have;
  for (const auto& t : terms) {
    have.insert(t.token);
  }
  std::vector<QueryTerm> forms;
  for (const auto& t : terms) {
    if (t.weight != 1.0) {
      continue;
    }
    for (std::string& v : StemVariants(t.token)) {
      if (have.insert(v).second) {
        forms.push_back({std::move(v), t.weight * P.stem_weight, t.count, 0, 0});
      }
    }
  }
  LookUpTermStats(db, forms);
  std::erase_if(forms, [](const QueryTerm& t) { return t.idf <= 0; });
  terms.insert(terms.end(), forms.begin(), forms.end());
}

// The files that define `name` (files passing the --lang / --path filters), or none when more
// than `max_files` do (a name defined everywhere says nothing).
std::vector<int64_t> DefiningFiles(Stmt& q, const SearchOptions& options, const std::string& name,
                                   int max_files) {
  q.Bind(1, name)
      .Bind(2, options.language)
      .Bind(3, options.path_glob)
      .Bind(4, static_cast<int64_t>(max_files) + 1);
  std::vector<int64_t> out;
  while (q.Step()) {
    out.push_back(q.Int(0));
  }
  q.Reset();
  if (static_cast<int>(out.size()) > max_files) {
    out.clear();
  }
  return out;
}

// For DefiningFiles: ?2 and ?3 are the --lang / --path filters.
constexpr const char* kDefiningFilesSql =
    "SELECT DISTINCT s.file_id FROM symbols s JOIN files f ON f.id = s.file_id "
    "WHERE s.name = ?1 AND s.is_def = 1 AND f.skip = '' AND (?2 = '' OR f.language = ?2) "
    "AND (?3 = '' OR f.path GLOB ?3) LIMIT ?4";

// Definitions above mentions: the files that define an identifier the query writes as code
// ("ssl_read_ex", "parseHeader(" ...); a name defined in n files gives each 1/n.
std::vector<PathMatch> DefinitionRanking(Db& db, const SearchOptions& options) {
  std::unordered_map<int64_t, double> score;
  std::unordered_set<std::string> seen;
  Stmt q(db.get(), kDefiningFilesSql);
  const std::string_view text = options.query;
  auto ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; };
  for (size_t i = 0; i < text.size() && seen.size() < 64;) {
    if (!ident(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && ident(text[j])) {
      ++j;
    }
    if (j - i >= 3 && LooksLikeCode(text, i, j)) {
      std::string name(text.substr(i, j - i));
      if (seen.insert(name).second) {
        const auto files = DefiningFiles(q, options, name, 8);
        for (int64_t f : files) {
          score[f] += 1.0 / static_cast<double>(files.size());
        }
      }
    }
    i = j;
  }
  std::vector<PathMatch> out;
  out.reserve(score.size());
  for (const auto& [f, s] : score) {
    out.push_back({f, s});
  }
  return out;
}

// The repo map's def/ref graph as a signal: the identifiers referenced inside the top chunks,
// each weighted by its chunk's score over the best chunk's, lead to the files that define them
// (other than the referencing files; 1/n for a name defined in n <= 5 files). A fix often goes
// into the function that the code matching the issue calls.
std::vector<PathMatch> GraphRanking(Db& db, std::vector<RankedChunk> ranked,
                                    const SearchOptions& options, const RankParams& P,
                                    const std::function<double(int64_t)>& code_prior) {
  struct Ref {
    double weight = 0;
    std::vector<int64_t> from;  // referencing files
  };
  std::unordered_map<std::string, Ref> refs;
  Stmt rq(db.get(),
          "SELECT DISTINCT name FROM symbols WHERE file_id = ?1 AND is_def = 0 "
          "AND line BETWEEN ?2 AND ?3");
  // The top chunks of code (source and header files), as the fusion weighs them: a Changelog
  // entry or a test that repeats the words does not lead to the code to change.
  for (RankedChunk& c : ranked) {
    c.score *= code_prior(c.file_id);
  }
  std::erase_if(ranked, [](const RankedChunk& c) { return c.score <= 0; });
  const size_t top = std::min(ranked.size(), static_cast<size_t>(std::max(P.graph_chunks, 0)));
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(top), ranked.end(),
                    [](const RankedChunk& a, const RankedChunk& b) {
                      return a.score != b.score ? a.score > b.score : a.id < b.id;
                    });
  for (size_t i = 0; i < top; ++i) {
    const RankedChunk& c = ranked[i];
    const double w = ranked[0].score > 0 ? c.score / ranked[0].score : 0;
    rq.Bind(1, c.file_id)
        .Bind(2, static_cast<int64_t>(c.start))
        .Bind(3, static_cast<int64_t>(c.end));
    while (rq.Step()) {
      Ref& r = refs[rq.Text(0)];
      r.weight += w;
      r.from.push_back(c.file_id);
    }
    rq.Reset();
  }
  // The heaviest names first, at most 256 of them (bounds the lookups).
  std::vector<std::pair<double, const std::string*>> names;
  for (const auto& [name, r] : refs) {
    if (name.size() >= 3) {
      names.push_back({r.weight, &name});
    }
  }
  std::sort(names.begin(), names.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : *a.second < *b.second;
  });
  if (names.size() > 256) {
    names.resize(256);
  }
  std::unordered_map<int64_t, double> score;
  Stmt q(db.get(), kDefiningFilesSql);
  for (const auto& [w, name] : names) {
    const auto files = DefiningFiles(q, options, *name, 5);

    const Ref& r = refs[*name];
    for (int64_t f : files) {
      if (std::find(r.from.begin(), r.from.end(), f) == r.from.end()) {
        score[f] += w / static_cast<double>(files.size());
      }
    }
  }
  std::vector<PathMatch> out;
  out.reserve(score.size());
  for (const auto& [f, s] : score) {
    out.push_back({f, s});
  }
  return out;
}

// Whole-file evidence (RankParams::cover_weight): the IDF x query weight of the distinct query
// terms found in the file's ranked chunks, over the query's total. A file whose chunks together
// hold most of the rare words is likelier than one chunk that repeats a few of them.
// Needs the postings of the term-at-a-time evaluation (none: an empty list).
std::vector<PathMatch> CoverRanking(const std::vector<RankedChunk>& ranked,
                                    const TermCollector& collector) {
  std::vector<PathMatch> out;
  const std::vector<double>& weight = collector.scoring.weight;
  double total = 0;
  for (double w : weight) {
    total += w;
  }
  if (collector.postings.empty() || total <= 0) {
    return out;
  }
  std::unordered_map<int64_t, int64_t> file_of;
  file_of.reserve(ranked.size());
  for (const RankedChunk& c : ranked) {
    file_of.emplace(c.id, c.file_id);
  }
  std::unordered_map<int64_t, std::vector<char>> seen;  // file -> terms found
  for (const Posting& p : collector.postings) {
    auto it = file_of.find(p.row);
    if (it == file_of.end() || p.term < 0 || static_cast<size_t>(p.term) >= weight.size()) {
      continue;
    }
    std::vector<char>& terms = seen[it->second];
    terms.resize(weight.size(), 0);
    terms[static_cast<size_t>(p.term)] = 1;
  }
  for (const auto& [file, terms] : seen) {
    double s = 0;
    for (size_t t = 0; t < terms.size(); ++t) {
      s += terms[t] ? weight[t] : 0;
    }
    out.push_back({file, s / total});
  }
  return out;
}

// Files scored by their ranked chunks as the lexical list scores them (fusion.h): the best chunk
// plus decay x the 2nd plus decay^2 x the 3rd.
std::vector<PathMatch> FileScores(const std::vector<RankedChunk>& chunks, double decay) {
  std::unordered_map<int64_t, std::vector<double>> by_file;
  for (const RankedChunk& c : chunks) {
    by_file[c.file_id].push_back(c.score);
  }
  std::vector<PathMatch> out;
  out.reserve(by_file.size());
  for (auto& [f, scores] : by_file) {
    std::sort(scores.begin(), scores.end(), std::greater<>());
    double s = 0, d = 1;
    for (size_t i = 0; i < scores.size() && i < 3; ++i) {
      s += d * scores[i];
      d *= decay;
    }
    out.push_back({f, s});
  }
  return out;
}

// Pseudo-relevance feedback (RankParams::prf_weight): the words of the best chunks of code
// (`code_prior` as for the graph list) that the query lacks, chosen by FeedbackTerms and
// SelectTerms, searched on their own; the files their chunks rank form the list. `collector`
// is reused (the caller is done with the first search's postings).
std::vector<PathMatch> FeedbackRanking(Db& db, std::vector<RankedChunk> ranked, const Query& q,
                                       const std::function<double(int64_t)>& code_prior,
                                       TermCollector& collector, int64_t* scored) {
  const RankParams& P = q.params;
  for (RankedChunk& c : ranked) {
    c.score *= code_prior(c.file_id);
  }
  std::erase_if(ranked, [](const RankedChunk& c) { return c.score <= 0; });
  const size_t top = std::min(ranked.size(), static_cast<size_t>(std::max(P.prf_chunks, 0)));
  if (top == 0 || P.prf_terms <= 0) {
    return {};
  }
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(top), ranked.end(),
                    [](const RankedChunk& a, const RankedChunk& b) {
                      return a.score != b.score ? a.score > b.score : a.id < b.id;
                    });
  std::vector<FeedbackChunk> feedback;
  Stmt cq(db.get(), "SELECT content FROM chunks WHERE id = ?1");
  for (size_t i = 0; i < top; ++i) {
    cq.Bind(1, ranked[i].id);
    if (cq.Step()) {
      feedback.push_back({ranked[i].score / ranked[0].score, CodeTokens(cq.Text(0))});
    }
    cq.Reset();
  }
  std::vector<std::string> have;
  for (const QueryTerm& t : q.terms) {
    have.push_back(t.token);
  }
  // A few times more candidates than terms kept: the IDF lookups are the cost.
  std::vector<QueryTerm> terms =
      FeedbackTerms(feedback, have, static_cast<size_t>(std::max(P.prf_terms, 0)) * 4);
  LookUpTermStats(db, terms);
  // A word of one chunk only says nothing beyond that chunk.
  std::erase_if(terms, [](const QueryTerm& t) { return t.df < 2; });
  if (terms.empty()) {
    return {};
  }
  SelectTerms(terms, P.prf_terms);
  Query fq{q.options, P, terms, "", q.depth};
  for (const auto& t : terms) {
    fq.match += (fq.match.empty() ? "\"" : " OR \"") + t.token + '"';
  }
  const std::vector<RankedChunk> chunks =
      q.options.evaluation == SearchOptions::Evaluation::kExhaustive
          ? ExhaustiveTopChunks(db, fq)
          : TermAtATimeTopChunks(db, fq, collector, scored);
  return FileScores(chunks, P.decay);
}

// Adds the role (file_role.h) of each file in `ids` that `roles` lacks, from its path and language.
template <typename Ids>
void AddRoles(Db& db, const Ids& ids, std::unordered_map<int64_t, FileRole>& roles) {
  Stmt q(db.get(), "SELECT path, language FROM files WHERE id = ?");
  for (const auto& x : ids) {
    const int64_t id = x.file_id;
    if (roles.count(id)) {
      continue;
    }
    q.Bind(1, id);
    roles[id] = q.Step() ? DetectRole(q.Text(0), q.Text(1), "") : FileRole::kSource;
    q.Reset();
  }
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
  ExpandStems(db, terms, P);
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
  std::unordered_map<int64_t, FileRole> roles;
  AddRoles(db, ranked, roles);
  AddRoles(db, paths, roles);
  std::vector<FileList> extra;
  if (P.def_weight > 0 || P.all_signals) {
    extra.push_back({"def", P.def_weight, DefinitionRanking(db, options)});
  }
  // The graph and feedback lists start from the top chunks of code (source and header files), as
  // the fusion weighs them: a Changelog entry or a test that repeats the words does not
  // lead to the code to change.
  auto prior = [&](int64_t file_id) {
    const FileRole role = roles[file_id];
    if (role != FileRole::kSource && role != FileRole::kHeader) {
      return 0.0;
    }
    const auto r = static_cast<size_t>(role);
    return fp.named[r] ? 1.0 : std::exp(fp.role_weight[r]);
  };
  if (P.graph_weight > 0 || P.all_signals) {
    extra.push_back({"graph", P.graph_weight, GraphRanking(db, ranked, options, P, prior)});
  }
  if (P.cover_weight > 0 || P.all_signals) {
    if (options.evaluation == SearchOptions::Evaluation::kExhaustive) {
      CollectPostings(db, q, collector);  // the same postings the default evaluation has
    }
    extra.push_back({"cover", P.cover_weight, CoverRanking(ranked, collector)});
  }
  if (P.prf_weight > 0 || P.all_signals) {
    extra.push_back(
        {"prf", P.prf_weight, FeedbackRanking(db, ranked, q, prior, collector, &scored)});
  }
  for (const FileList& l : extra) {
    AddRoles(db, l.matches, roles);
  }
  std::vector<FusedFile> fused = FuseFiles(std::move(ranked), paths, roles, fp, extra);
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
