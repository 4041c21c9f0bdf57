#include "index/fusion.h"

#include <algorithm>
#include <unordered_map>

namespace hearth::index {

std::vector<FusedFile> FuseFiles(std::vector<RankedChunk> chunks,
                                 const std::vector<PathMatch>& paths, const FusionParams& p) {
  // Lexical file score: best chunk plus a decayed share of the next ones.
  std::unordered_map<int64_t, std::vector<size_t>> by_file;
  for (size_t i = 0; i < chunks.size(); ++i) {
    by_file[chunks[i].file_id].push_back(i);
  }
  struct Scored {
    int64_t file_id;
    double lexical = 0, score = 0;
  };
  std::vector<Scored> files;
  for (auto& [fid, rows] : by_file) {
    std::sort(rows.begin(), rows.end(), [&](size_t a, size_t b) {
      const RankedChunk& x = chunks[a];
      const RankedChunk& y = chunks[b];
      if (x.score != y.score) {
        return x.score > y.score;
      }
      return x.start != y.start ? x.start < y.start : x.id < y.id;
    });
    double s = 0, decay = 1.0;
    for (size_t i = 0; i < rows.size() && i < 3; ++i) {
      s += decay * chunks[rows[i]].score;
      decay *= p.decay;
    }
    files.push_back({fid, s, 0});
  }
  std::unordered_map<int64_t, SignalScore> path_sig;
  for (size_t i = 0; i < paths.size(); ++i) {
    path_sig[paths[i].file_id] = {"path", static_cast<int>(i + 1), paths[i].score, 0};
    if (!by_file.count(paths[i].file_id)) {
      files.push_back({paths[i].file_id, 0, 0});
    }
  }
  std::sort(files.begin(), files.end(), [](const Scored& a, const Scored& b) {
    return a.lexical != b.lexical ? a.lexical > b.lexical : a.file_id < b.file_id;
  });
  std::unordered_map<int64_t, SignalScore> lex_sig;
  for (size_t i = 0; i < files.size(); ++i) {
    Scored& f = files[i];
    double lex_c = 0;
    if (f.lexical > 0) {
      lex_c = 1.0 / (p.rrf_k + static_cast<double>(i + 1));
      lex_sig[f.file_id] = {"bm25", static_cast<int>(i + 1), f.lexical, lex_c};
    }
    f.score = lex_c;
    if (auto ps = path_sig.find(f.file_id); ps != path_sig.end()) {
      ps->second.contribution = p.path_weight / (p.rrf_k + ps->second.rank);
      f.score += ps->second.contribution;
    }
  }
  std::sort(files.begin(), files.end(), [](const Scored& a, const Scored& b) {
    return a.score != b.score ? a.score > b.score : a.file_id < b.file_id;
  });
  if (files.size() > static_cast<size_t>(std::max(p.limit, 0))) {
    files.resize(std::max(p.limit, 0));
  }

  // Each chunk's rank in the lexical chunk list, as a signal.
  std::vector<FusedFile> out;
  out.reserve(files.size());
  for (const Scored& sf : files) {
    FusedFile f;
    f.file_id = sf.file_id;
    f.hit.score = sf.score;
    if (auto l = lex_sig.find(sf.file_id); l != lex_sig.end()) {
      f.hit.file_signals.push_back(l->second);
    }
    if (auto ps = path_sig.find(sf.file_id); ps != path_sig.end()) {
      f.hit.file_signals.push_back(ps->second);
    }
    if (auto rows = by_file.find(sf.file_id); rows != by_file.end()) {
      for (size_t i = 0; i < rows->second.size() && static_cast<int>(i) < p.chunks_per_file; ++i) {
        RankedChunk& r = chunks[rows->second[i]];
        const int rank = static_cast<int>(rows->second[i]) + 1;
        f.hit.chunks.push_back({std::move(r.symbol),
                                std::move(r.kind),
                                r.start,
                                r.end,
                                r.score,
                                {{"bm25", rank, r.score, r.score}}});
      }
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace hearth::index
