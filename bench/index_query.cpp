// index_query: runs many `hearth search` queries in one process, for the retrieval benchmark
// (bench/retrieval/run_hearth.py --query-tool) and for search latency without process start.
//
//   index_query LIMIT < queries.tsv > results.tsv
//
// Each input line is "ROOT<TAB>QUERY" (tabs and newlines inside the query replaced by spaces).
// Each output line is "CPU_MS<TAB>WALL_MS<TAB>PATH1<TAB>PATH2..." in rank order: the same
// Search() call and options as `hearth search --limit LIMIT`, so the ranking is the CLI's.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <string>

#include "base/error.h"
#include "index/file_role.h"
#include "index/index.h"
#include "index/ranking.h"

namespace {
double CpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string DumpJson(const std::string& query, const std::vector<hearth::index::FileHit>& hits) {
  const auto named = hearth::index::RolesNamedBy(query);
  std::string out = "{\"named\": [";
  bool first = true;
  for (int r = 0; r < hearth::index::kFileRoles; ++r) {
    if (!named[static_cast<size_t>(r)]) {
      continue;
    }
    out += first ? "" : ", ";
    out += JsonString(hearth::index::RoleName(static_cast<hearth::index::FileRole>(r)));
    first = false;
  }
  out += "], \"files\": [";
  char num[64];
  for (size_t i = 0; i < hits.size(); ++i) {
    const auto& h = hits[i];
    std::string role = "source", path_score = "null", def_score = "null", graph_score = "null",
                cover_score = "null", prf_score = "null";
    for (const auto& s : h.file_signals) {
      if (s.signal.rfind("role:", 0) == 0) {
        role = s.signal.substr(5);
      }
      std::snprintf(num, sizeof num, "%.17g", s.raw);
      if (s.signal == "path") {
        path_score = num;
      } else if (s.signal == "def") {
        def_score = num;
      } else if (s.signal == "graph") {
        graph_score = num;
      } else if (s.signal == "cover") {
        cover_score = num;
      } else if (s.signal == "prf") {
        prf_score = num;
      }
    }
    out += i ? ", [" : "[";
    out += JsonString(h.path);
    out += ", ";
    out += JsonString(role);
    out += ", [";
    for (size_t c = 0; c < h.chunks.size(); ++c) {
      std::snprintf(num, sizeof num, "%s%.17g", c ? ", " : "", h.chunks[c].score);
      out += num;
    }
    out += "], ";
    out += path_score;
    out += ", ";
    out += def_score;
    out += ", ";
    out += graph_score;
    out += ", ";
    out += cover_score;
    out += ", ";
    out += prf_score;
    out += ']';
  }
  return out + "]}";
}

}  // namespace

int main(int argc, char** argv) {
  int limit = argc > 1 ? std::atoi(argv[1]) : 100;
  hearth::index::RankParams params;
  if (const char* r = std::getenv("HEARTH_RANK");
      r != nullptr && !hearth::index::ParseRankOverrides(r, &params)) {
    std::cerr << "index_query: bad HEARTH_RANK: " << r << "\n";
    return 2;
  }
  const bool dump = std::getenv("HEARTH_QUERY_DUMP") != nullptr;
  if (dump) {
    limit = 1 << 20;
    params.all_signals = true;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      continue;
    }
    hearth::index::SearchOptions opt;
    opt.query = line.substr(tab + 1);
    opt.limit = limit;
    // HEARTH_QUERY_EVAL=exhaustive|term: SearchOptions::evaluation (default: term at a time);
    // HEARTH_QUERY_STATS=1: statistics on stderr, one line per query;
    // HEARTH_QUERY_DEPTH=N: chunks ranked (SearchOptions::chunk_depth);
    // HEARTH_QUERY_LANG / HEARTH_QUERY_PATH: the --lang / --path filters.
    using Eval = hearth::index::SearchOptions::Evaluation;
    const char* eval = std::getenv("HEARTH_QUERY_EVAL");
    const std::string how = eval != nullptr ? eval : "";
    if (how == "exhaustive") {
      opt.evaluation = Eval::kExhaustive;
    }
    if (const char* d = std::getenv("HEARTH_QUERY_DEPTH")) {
      opt.chunk_depth = std::atoi(d);
    }
    if (const char* l = std::getenv("HEARTH_QUERY_LANG")) {
      opt.language = l;
    }
    if (const char* g = std::getenv("HEARTH_QUERY_PATH")) {
      opt.path_glob = g;
    }
    hearth::index::SearchOptions::Stats stats;
    if (std::getenv("HEARTH_QUERY_STATS") != nullptr) {
      opt.stats = &stats;
    }
    double c0 = CpuMs();
    auto w0 = std::chrono::steady_clock::now();
    std::string out;
    try {
      const auto hits = hearth::index::SearchWith(line.substr(0, tab), opt, params);
      if (dump) {
        out = '\t';  // GCC 12 -Wrestrict false positive on "\t" + std::string
        out += DumpJson(opt.query, hits);
      } else {
        for (const auto& hit : hits) {
          out += '\t' + hit.path;
        }
      }
    } catch (const hearth::Error& e) {
      std::cerr << "index_query: " << e.what() << "\n";
    }
    double wall =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count();
    std::printf("%.3f\t%.3f%s\n", CpuMs() - c0, wall, out.c_str());
    if (opt.stats != nullptr) {
      std::fprintf(stderr, "terms %d scored %d ms %.1f %.1f %.1f\n", stats.terms,
                   stats.chunks_scored, stats.terms_ms, stats.chunks_ms, stats.paths_ms);
    }
    std::fflush(stdout);
  }
  return 0;
}
