// Search: each signal ranks chunks (or files) on its own; reciprocal rank fusion combines them,
// so a new signal (vector similarity through an Embedder) is one more ranked list.
#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include "base/error.h"
#include "index/index.h"
#include "index/store.h"
#include "index/tokenize.h"

namespace hearth::index {
namespace fs = std::filesystem;

namespace {

constexpr double kRrfK = 60;
constexpr int kSignalDepth = 1000;  // chunks each signal ranks

struct SignalDef {
  const char* name;
  const char* column;  // FTS5 column filter
  double weight;
};

// Bodies carry most of the evidence; a symbol or path hit is rarer and more telling per term, so
// those lists are fused with their own weights (field weights) rather than mixed into one bm25.
constexpr SignalDef kChunkSignals[] = {
    {"bm25", "body", 1.0},
    {"symbol", "symbol", 0.5},
};
constexpr double kPathWeight = 0.5;

std::string MatchExpression(const std::vector<std::string>& tokens) {
  std::string q;
  for (const auto& t : tokens) {
    if (!q.empty()) q += " OR ";
    q += '"' + t + '"';  // tokens are [a-z0-9_]+: quoting is always safe
  }
  return q;
}

struct ChunkRow {
  int64_t file_id = 0;
  std::string symbol, kind;
  int start = 0, end = 0;
  std::vector<SignalScore> signals;
  double score = 0;
};

}  // namespace

std::vector<FileHit> Search(const fs::path& root, const SearchOptions& options) {
  Db db(DbPath(root), Db::Mode::kRead);
  std::vector<std::string> raw = CodeTokens(options.query);
  std::vector<std::string> tokens;
  std::set<std::string> uniq;
  for (auto& t : raw) {
    if (uniq.insert(t).second) tokens.push_back(t);
  }
  if (tokens.empty() || options.limit <= 0) return {};
  const std::string match = MatchExpression(tokens);

  std::unordered_map<int64_t, ChunkRow> chunks;
  for (const SignalDef& sig : kChunkSignals) {
    std::string sql =
        "SELECT c.id, c.file_id, c.symbol, c.kind, c.start_line, c.end_line, bm25(chunks_fts) "
        "FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
        "JOIN files f ON f.id = c.file_id "
        "WHERE chunks_fts MATCH ?1 AND (?2 = '' OR f.language = ?2) "
        "AND (?3 = '' OR f.path GLOB ?3) ORDER BY bm25(chunks_fts) LIMIT ?4";
    Stmt q(db.get(), sql);
    q.Bind(1, std::string(sig.column) + " : (" + match + ")")
        .Bind(2, options.language)
        .Bind(3, options.path_glob)
        .Bind(4, static_cast<int64_t>(kSignalDepth));
    int rank = 0;
    while (q.Step()) {
      ++rank;
      ChunkRow& row = chunks[q.Int(0)];
      if (row.signals.empty()) {
        row.file_id = q.Int(1);
        row.symbol = q.Text(2);
        row.kind = q.Text(3);
        row.start = static_cast<int>(q.Int(4));
        row.end = static_cast<int>(q.Int(5));
      }
      double contribution = sig.weight / (kRrfK + rank);
      row.signals.push_back({sig.name, rank, -q.Double(6), contribution});
      row.score += contribution;
    }
  }

  // Path signal, per file.
  std::unordered_map<int64_t, SignalScore> path_rank;
  {
    Stmt q(db.get(),
           "SELECT files_fts.rowid, bm25(files_fts) FROM files_fts "
           "JOIN files f ON f.id = files_fts.rowid "
           "WHERE files_fts MATCH ?1 AND f.skip = '' AND (?2 = '' OR f.language = ?2) "
           "AND (?3 = '' OR f.path GLOB ?3) ORDER BY bm25(files_fts) LIMIT ?4");
    q.Bind(1, match).Bind(2, options.language).Bind(3, options.path_glob)
        .Bind(4, static_cast<int64_t>(kSignalDepth));
    int rank = 0;
    while (q.Step()) {
      ++rank;
      path_rank[q.Int(0)] = {"path", rank, -q.Double(1), kPathWeight / (kRrfK + rank)};
    }
  }

  // Group chunks into files: a file scores its best chunk, plus a little for further matching
  // chunks (evidence spread over a file), plus its path signal.
  std::unordered_map<int64_t, std::vector<ChunkRow*>> by_file;
  for (auto& [id, row] : chunks) by_file[row.file_id].push_back(&row);
  for (auto& [fid, sig] : path_rank) by_file.try_emplace(fid);

  struct Scored {
    int64_t file_id;
    double score;
  };
  std::vector<Scored> files;
  for (auto& [fid, rows] : by_file) {
    std::sort(rows.begin(), rows.end(), [](const ChunkRow* a, const ChunkRow* b) {
      return a->score != b->score ? a->score > b->score : a->start < b->start;
    });
    double s = 0;
    double decay = 1.0;
    for (size_t i = 0; i < rows.size() && i < 3; ++i) {
      s += decay * rows[i]->score;
      decay *= 0.25;
    }
    auto p = path_rank.find(fid);
    if (p != path_rank.end()) s += p->second.contribution;
    files.push_back({fid, s});
  }
  std::sort(files.begin(), files.end(), [](const Scored& a, const Scored& b) {
    return a.score != b.score ? a.score > b.score : a.file_id < b.file_id;
  });
  if (files.size() > static_cast<size_t>(options.limit)) files.resize(options.limit);

  std::vector<FileHit> out;
  Stmt fq(db.get(), "SELECT path, language FROM files WHERE id = ?");
  for (const Scored& sf : files) {
    FileHit hit;
    fq.Bind(1, sf.file_id);
    if (fq.Step()) {
      hit.path = fq.Text(0);
      hit.language = fq.Text(1);
    }
    fq.Reset();
    hit.score = sf.score;
    auto p = path_rank.find(sf.file_id);
    if (p != path_rank.end()) hit.file_signals.push_back(p->second);
    const auto& rows = by_file[sf.file_id];
    for (size_t i = 0; i < rows.size() && static_cast<int>(i) < options.chunks_per_file; ++i) {
      const ChunkRow* r = rows[i];
      hit.chunks.push_back({r->symbol, r->kind, r->start, r->end, r->score, r->signals});
    }
    out.push_back(std::move(hit));
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
