// The fusion step of index::Search (internal), free of SQLite so that it can be tested alone:
// ranked chunks become ranked files (a file scores its best chunk plus a decayed share of its
// next ones), and the files' lexical ranking is fused with the path ranking by weighted
// reciprocal rank fusion.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/file_role.h"
#include "index/index.h"

namespace hearth::index {

struct RankedChunk {
  int64_t id = 0, file_id = 0;
  std::string symbol, kind;
  int start = 0, end = 0;
  double score = 0;
};

struct PathMatch {
  int64_t file_id = 0;
  double score = 0;  // the path signal's own score, higher is better
};

// One more ranked file list fused by RRF beside the lexical and path lists (the definition and
// def/ref-graph signals of search.cpp): `matches` in any order, ranked here by score (higher is
// better, scaled by the role prior like the path list when prior_on_path).
struct FileList {
  std::string name;  // the signal's name in FileHit::file_signals
  double weight = 0;
  std::vector<PathMatch> matches;
};

struct FusionParams {
  double decay = 0.25;  // weight of a file's 2nd best chunk (the 3rd gets decay^2)
  double rrf_k = 10;    // RRF: a list's rank r contributes weight / (rrf_k + r)
  double path_weight = 0.5;
  int limit = 10;           // files returned
  int chunks_per_file = 3;  // chunks listed under each file
  // The role prior: factor exp(role_weight[role]) on a file's lexical score (and path score when
  // prior_on_path), except for the roles in `named` (the query asks about them).
  std::array<double, kFileRoles> role_weight{};
  std::array<bool, kFileRoles> named{};
  bool prior_on_path = false;
};

struct FusedFile {
  int64_t file_id = 0;
  FileHit hit;  // everything but path and language, which the caller looks up
};

// `chunks`: the lexical ranking, best first. `paths`: the path ranking, best first. `extra`: more
// lists (each signal is listed with its rank and contribution, like "path"). `roles`: each
// file's role (missing: source). Files are ordered by fused score (ties: the lower file id
// first); a file's chunks by score (ties: the earlier start line, then the lower chunk id).
// Signals: each chunk carries its chunk rank as "bm25"; each file its lexical rank ("bm25", raw =
// the decayed sum), its path rank ("path") with their RRF contributions, and "role:<name>" with
// raw = the prior's factor and contribution = its effect on the file's fused score (the fused
// score minus what it would be with no prior at all).
std::vector<FusedFile> FuseFiles(std::vector<RankedChunk> chunks,
                                 const std::vector<PathMatch>& paths,
                                 const std::unordered_map<int64_t, FileRole>& roles,
                                 const FusionParams& p, const std::vector<FileList>& extra = {});

}  // namespace hearth::index
