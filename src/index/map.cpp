// The repo map, after aider's: files are nodes, an edge runs from a file that references an
// identifier to each file that defines it; personalised PageRank ranks the files, each edge's
// share of its source's rank ranks the definitions, and the best definitions are rendered,
// grouped by file, until the token budget (characters / 4) is spent.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "base/display.h"
#include "index/index.h"
#include "index/store.h"

namespace hearth::index {
namespace fs = std::filesystem;

namespace {

bool LooksDescriptive(const std::string& ident) {
  // aider weights long snake_case / camelCase names up: they are rarely accidental collisions.
  if (ident.size() < 8) return false;
  bool has_lower = false, has_upper = false, has_underscore = false;
  for (char c : ident) {
    has_lower |= std::islower(static_cast<unsigned char>(c)) != 0;
    has_upper |= std::isupper(static_cast<unsigned char>(c)) != 0;
    has_underscore |= c == '_';
  }
  return has_underscore || (has_lower && has_upper);
}

struct DefTag {
  int line;
  std::string text;
};

}  // namespace

// Slightly over 150 lines: the graph's node tables are built, ranked (PageRank) and rendered in
// one scope because all three stages index the same local tables.
std::string RepoMap(const fs::path& root, const MapOptions& options) {
  Db db(DbPath(root), Db::Mode::kRead);
  std::vector<std::string> paths;
  std::unordered_map<int64_t, int> node_of;
  {
    Stmt q(db.get(), "SELECT id, path FROM files WHERE skip = '' ORDER BY path");
    while (q.Step()) {
      node_of[q.Int(0)] = static_cast<int>(paths.size());
      paths.push_back(q.Text(1));
    }
  }
  const int n = static_cast<int>(paths.size());
  if (n == 0) return "";

  // ident -> defining nodes, ident -> (referencing node -> count); (node, ident) -> def lines
  std::unordered_map<std::string, std::set<int>> defines;
  std::unordered_map<std::string, std::map<int, int>> references;
  std::map<std::pair<int, std::string>, std::vector<DefTag>> def_tags;
  {
    Stmt q(db.get(), "SELECT file_id, name, is_def, line, text FROM symbols");
    while (q.Step()) {
      auto it = node_of.find(q.Int(0));
      if (it == node_of.end()) continue;
      std::string name = q.Text(1);
      if (q.Int(2)) {
        defines[name].insert(it->second);
        def_tags[{it->second, name}].push_back({static_cast<int>(q.Int(3)), q.Text(4)});
      } else {
        ++references[name][it->second];
      }
    }
  }

  std::set<std::string> focus_idents;
  std::vector<double> personal(n, 0.0);
  bool personalised = false;
  for (const std::string& f : options.focus) {
    bool is_file = false;
    for (int i = 0; i < n; ++i) {
      if (paths[i] == f) {
        personal[i] += 1.0;
        is_file = personalised = true;
      }
    }
    if (!is_file) {
      focus_idents.insert(f);
      auto d = defines.find(f);
      if (d != defines.end()) {
        for (int node : d->second) {
          personal[node] += 1.0;
          personalised = true;
        }
      }
    }
  }
  if (!personalised) std::fill(personal.begin(), personal.end(), 1.0);
  double psum = 0;
  for (double v : personal) psum += v;
  for (double& v : personal) v /= psum;

  struct Edge {
    int from, to;
    double weight;
    const std::string* ident;
  };
  std::vector<Edge> edges;
  for (const auto& [ident, definers] : defines) {
    auto r = references.find(ident);
    if (r == references.end()) continue;
    double mul = 1.0;
    if (focus_idents.count(ident)) mul *= 10;
    if (LooksDescriptive(ident)) mul *= 10;
    if (!ident.empty() && ident[0] == '_') mul *= 0.1;
    if (definers.size() > 5) mul *= 0.1;  // defined everywhere: says little
    for (const auto& [from, count] : r->second) {
      for (int to : definers) {
        if (from == to) continue;
        edges.push_back({from, to, mul * std::sqrt(static_cast<double>(count)), &ident});
      }
    }
  }
  std::vector<double> out_weight(n, 0.0);
  for (const Edge& e : edges) out_weight[e.from] += e.weight;

  // Personalised PageRank by power iteration; dangling mass returns through `personal`.
  std::vector<double> rank = personal, next(n);
  constexpr double kDamping = 0.85;
  for (int iter = 0; iter < 40; ++iter) {
    double dangling = 0;
    for (int i = 0; i < n; ++i) {
      if (out_weight[i] == 0) dangling += rank[i];
    }
    for (int i = 0; i < n; ++i) next[i] = (1 - kDamping + kDamping * dangling) * personal[i];
    for (const Edge& e : edges) next[e.to] += kDamping * rank[e.from] * e.weight / out_weight[e.from];
    double delta = 0;
    for (int i = 0; i < n; ++i) delta += std::abs(next[i] - rank[i]);
    rank.swap(next);
    if (delta < 1e-9) break;
  }

  // Definition ranks: each edge passes on its share of the source's rank.
  std::map<std::pair<int, std::string>, double> def_rank;
  for (const Edge& e : edges) {
    def_rank[{e.to, *e.ident}] += rank[e.from] * e.weight / out_weight[e.from];
  }
  // Files no one references still show their definitions, ranked by the file's own rank.
  for (const auto& [key, tags] : def_tags) {
    def_rank.try_emplace(key, rank[key.first] * 1e-3);
  }
  std::vector<std::pair<double, std::pair<int, std::string>>> ranked;
  for (const auto& [key, r] : def_rank) ranked.push_back({r, key});
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });

  // Greedy fill: take definitions best first; render grouped by file in file-rank order.
  const size_t budget_chars = static_cast<size_t>(std::max(0, options.token_budget)) * 4;
  std::map<int, std::map<int, std::string>> chosen;  // node -> line -> text
  std::vector<int> file_order;
  size_t used = 0;
  for (const auto& [r, key] : ranked) {
    auto t = def_tags.find(key);
    if (t == def_tags.end()) continue;
    const int node = key.first;
    size_t cost = 0;
    if (!chosen.count(node)) cost += paths[node].size() + 2;
    std::vector<const DefTag*> add;
    for (const DefTag& d : t->second) {
      if (chosen[node].count(d.line)) continue;
      add.push_back(&d);
      cost += d.text.size() + 3;
    }
    if (add.empty()) continue;
    if (used + cost > budget_chars) {
      if (chosen[node].empty()) chosen.erase(node);
      continue;  // a smaller definition further down may still fit
    }
    if (std::find(file_order.begin(), file_order.end(), node) == file_order.end()) {
      file_order.push_back(node);
    }
    for (const DefTag* d : add) chosen[node][d->line] = d->text;
    used += cost;
  }
  std::stable_sort(file_order.begin(), file_order.end(),
                   [&](int a, int b) { return rank[a] > rank[b]; });
  std::string out;
  for (int node : file_order) {
    // Repository text: a file name or definition line holding a newline or a terminal escape
    // cannot fake lines of the map (which the model reads and `hearth map` prints).
    out += DisplaySafe(paths[node], kOneLine) + ":\n";
    int last = -1;
    for (const auto& [line, text] : chosen[node]) {
      if (last >= 0 && line > last + 1) out += "⋮\n";
      out += "│ " + DisplaySafe(text, kOneLine) + "\n";
      last = line;
    }
  }
  return out;
}

}  // namespace hearth::index
