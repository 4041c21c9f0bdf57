#include "index/fusion.h"

#include <algorithm>
#include <cmath>

namespace hearth::index {
namespace {

struct Scored {
  int64_t file_id = 0;
  double lexical = 0;  // best chunk plus decayed next ones (0: no chunk ranked)
  double path = 0;     // the path signal's score
  bool has_path = false;
  double factor = 1;  // the role prior
  // The extra lists' scores (has_extra: the file is in that list).
  std::vector<double> extra;
  std::vector<char> has_extra;
  // Filled by Rank: ranks (0: not ranked), RRF contributions and their sum.
  int lex_rank = 0, path_rank = 0;
  double lex_c = 0, path_c = 0, score = 0;
  std::vector<int> extra_rank;
  std::vector<double> extra_c;
};

// Ranks the files that are in a list by `value` (ties: the lower file id first) and gives each
// its rank and RRF contribution weight / (k + rank).
template <typename Value, typename In, typename Out>
void RankList(std::vector<Scored>& files, const FusionParams& p, double weight, Value value, In in,
              Out out) {
  std::vector<size_t> order;
  for (size_t i = 0; i < files.size(); ++i) {
    if (in(files[i])) {
      order.push_back(i);
    }
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const double x = value(files[a]), y = value(files[b]);
    return x != y ? x > y : files[a].file_id < files[b].file_id;
  });
  for (size_t i = 0; i < order.size(); ++i) {
    const int rank = static_cast<int>(i + 1);
    out(files[order[i]], rank, weight / (p.rrf_k + rank));
  }
}

// Ranks the files in each list (lexical, path), with or without the role prior, and sums their
// weighted RRF contributions.
void Rank(std::vector<Scored>& files, const FusionParams& p, const std::vector<FileList>& extra,
          bool prior) {
  std::vector<size_t> order(files.size());
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  auto lex = [&](const Scored& f) { return prior ? f.lexical * f.factor : f.lexical; };
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const double x = lex(files[a]), y = lex(files[b]);
    return x != y ? x > y : files[a].file_id < files[b].file_id;
  });
  for (size_t i = 0; i < order.size(); ++i) {
    Scored& f = files[order[i]];
    f.lex_rank = f.lexical > 0 ? static_cast<int>(i + 1) : 0;
    f.lex_c = f.lexical > 0 ? 1.0 / (p.rrf_k + static_cast<double>(i + 1)) : 0;
  }
  auto path = [&](const Scored& f) {
    return prior && p.prior_on_path ? f.path * f.factor : f.path;
  };
  std::erase_if(order, [&](size_t i) { return !files[i].has_path; });
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const double x = path(files[a]), y = path(files[b]);
    return x != y ? x > y : files[a].file_id < files[b].file_id;
  });
  for (auto& f : files) {
    f.path_rank = 0;
    f.path_c = 0;
  }
  for (size_t i = 0; i < order.size(); ++i) {
    Scored& f = files[order[i]];
    f.path_rank = static_cast<int>(i + 1);
    f.path_c = p.path_weight / (p.rrf_k + f.path_rank);
  }
  for (auto& f : files) {
    f.extra_rank.assign(extra.size(), 0);
    f.extra_c.assign(extra.size(), 0);
  }
  for (size_t e = 0; e < extra.size(); ++e) {
    if (extra[e].weight <= 0) {
      continue;
    }
    RankList(
        files, p, extra[e].weight,
        [&](const Scored& f) {
          return prior && p.prior_on_path ? f.extra[e] * f.factor : f.extra[e];
        },
        [&](const Scored& f) { return f.has_extra[e] != 0; },
        [&](Scored& f, int rank, double c) {
          f.extra_rank[e] = rank;
          f.extra_c[e] = c;
        });
  }
  for (auto& f : files) {
    f.score = f.lex_c + f.path_c;
    for (double c : f.extra_c) {
      f.score += c;
    }
  }
}

}  // namespace

std::vector<FusedFile> FuseFiles(std::vector<RankedChunk> chunks,
                                 const std::vector<PathMatch>& paths,
                                 const std::unordered_map<int64_t, FileRole>& roles,
                                 const FusionParams& p, const std::vector<FileList>& extra) {
  // Lexical file score: best chunk plus a decayed share of the next ones.
  std::unordered_map<int64_t, std::vector<size_t>> by_file;
  for (size_t i = 0; i < chunks.size(); ++i) {
    by_file[chunks[i].file_id].push_back(i);
  }
  std::vector<Scored> files;
  std::unordered_map<int64_t, size_t> where;
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
    where[fid] = files.size();
    files.push_back({fid, s});
  }
  for (const PathMatch& m : paths) {
    auto [it, fresh] = where.try_emplace(m.file_id, files.size());
    if (fresh) {
      files.push_back({m.file_id});
    }
    files[it->second].path = m.score;
    files[it->second].has_path = true;
  }
  for (size_t e = 0; e < extra.size(); ++e) {
    for (const PathMatch& m : extra[e].matches) {
      auto [it, fresh] = where.try_emplace(m.file_id, files.size());
      if (fresh) {
        files.push_back({m.file_id});
      }
      Scored& f = files[it->second];
      f.extra.resize(extra.size(), 0);
      f.has_extra.resize(extra.size(), 0);
      f.extra[e] = m.score;
      f.has_extra[e] = 1;
    }
  }
  for (Scored& f : files) {
    f.extra.resize(extra.size(), 0);
    f.has_extra.resize(extra.size(), 0);
  }
  std::vector<FileRole> role_of(files.size(), FileRole::kSource);
  bool any_prior = false;
  for (size_t i = 0; i < files.size(); ++i) {
    if (auto r = roles.find(files[i].file_id); r != roles.end()) {
      role_of[i] = r->second;
    }
    const auto k = static_cast<size_t>(role_of[i]);
    if (!p.named[k] && p.role_weight[k] != 0) {
      files[i].factor = std::exp(p.role_weight[k]);
      any_prior = true;
    }
  }
  // The fused score without the prior, for the role signal's contribution.
  std::vector<double> plain(files.size());
  if (any_prior) {
    Rank(files, p, extra, false);
    for (size_t i = 0; i < files.size(); ++i) {
      plain[i] = files[i].score;
    }
  }
  Rank(files, p, extra, true);
  if (!any_prior) {
    for (size_t i = 0; i < files.size(); ++i) {
      plain[i] = files[i].score;
    }
  }
  std::vector<size_t> order(files.size());
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Scored& x = files[a];
    const Scored& y = files[b];
    return x.score != y.score ? x.score > y.score : x.file_id < y.file_id;
  });
  if (order.size() > static_cast<size_t>(std::max(p.limit, 0))) {
    order.resize(std::max(p.limit, 0));
  }

  std::vector<FusedFile> out;
  out.reserve(order.size());
  for (size_t i : order) {
    const Scored& sf = files[i];
    FusedFile f;
    f.file_id = sf.file_id;
    f.hit.score = sf.score;
    if (sf.lex_rank > 0) {
      f.hit.file_signals.push_back({"bm25", sf.lex_rank, sf.lexical, sf.lex_c});
    }
    if (sf.path_rank > 0) {
      f.hit.file_signals.push_back({"path", sf.path_rank, sf.path, sf.path_c});
    }
    for (size_t e = 0; e < extra.size(); ++e) {
      if (sf.has_extra[e] != 0) {
        f.hit.file_signals.push_back({extra[e].name, sf.extra_rank[e], sf.extra[e], sf.extra_c[e]});
      }
    }
    f.hit.file_signals.push_back(
        {"role:" + std::string(RoleName(role_of[i])), 0, sf.factor, sf.score - plain[i]});
    // Each chunk's rank in the lexical chunk list, as a signal.
    if (auto rows = by_file.find(sf.file_id); rows != by_file.end()) {
      for (size_t c = 0; c < rows->second.size() && static_cast<int>(c) < p.chunks_per_file; ++c) {
        RankedChunk& r = chunks[rows->second[c]];
        const int rank = static_cast<int>(rows->second[c]) + 1;
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
