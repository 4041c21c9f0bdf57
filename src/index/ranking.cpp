#include "index/ranking.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <unordered_map>

#include "index/tokenize.h"

namespace hearth::index {
namespace {

bool IsAlnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

bool LooksLikeCode(std::string_view text, size_t begin, size_t end) {
  std::string_view id = text.substr(begin, end - begin);
  bool lower = false, upper_after_lower = false, digit = false, alpha = false;
  for (size_t i = 0; i < id.size(); ++i) {
    unsigned char c = id[i];
    if (c == '_' && i > 0 && i + 1 < id.size()) {
      return true;
    }
    if (c >= 'a' && c <= 'z') {
      lower = alpha = true;
    }
    if (c >= 'A' && c <= 'Z') {
      alpha = true;
      if (lower) {
        upper_after_lower = true;
      }
    }
    if (c >= '0' && c <= '9') {
      digit = true;
    }
  }
  if (upper_after_lower || (digit && alpha)) {
    return true;
  }
  auto at = [&](size_t i) -> unsigned char { return i < text.size() ? text[i] : 0; };
  if (at(end) == '(') {
    return true;
  }
  if ((at(end) == '.' || at(end) == '/' || at(end) == ':') && IsAlnum(at(end + 1))) {
    return true;
  }
  if (at(end) == '-' && at(end + 1) == '>') {
    return true;
  }
  if (begin > 0 &&
      (text[begin - 1] == '.' || text[begin - 1] == '/' || text[begin - 1] == ':' ||
       text[begin - 1] == '>') &&
      begin > 1 && IsAlnum(text[begin - 2])) {
    return true;
  }
  return false;
}

std::vector<QueryTerm> AnalyzeQuery(std::string_view text, const RankParams& p) {
  std::vector<QueryTerm> terms;
  std::unordered_map<std::string, size_t> where;
  std::vector<std::string> toks;
  size_t i = 0;
  while (i < text.size()) {
    if (!IsAlnum(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && IsAlnum(static_cast<unsigned char>(text[j]))) {
      ++j;
    }
    const bool code = LooksLikeCode(text, i, j);
    toks.clear();
    CodeTokens(text.substr(i, j - i), toks);
    std::string whole(text.substr(i, j - i));
    for (char& c : whole) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    for (const auto& t : toks) {
      double w = 1.0;
      if (code) {
        w = t == whole ? p.code_weight : p.part_weight;
      }
      auto [it, fresh] = where.try_emplace(t, terms.size());
      if (fresh) {
        terms.push_back({t, w, 0, 0});
      }
      QueryTerm& q = terms[it->second];
      q.weight = std::max(q.weight, w);
      ++q.count;
    }
    i = j;
  }
  return terms;
}

std::vector<std::string> StemVariants(std::string_view word) {
  std::vector<std::string> out;
  if (word.size() < 4 ||
      !std::all_of(word.begin(), word.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
    return out;
  }
  // Longest first; the stem keeps at least 3 letters.
  static constexpr std::string_view kStrip[] = {"ations", "ation", "ings", "ions", "ing",
                                                "ion",    "ers",   "ies",  "ied",  "es",
                                                "ed",     "er",    "ly",   "s",    "e"};
  std::string stem(word);
  bool y_form = false, stripped = false;
  for (std::string_view suf : kStrip) {
    if (word.size() >= suf.size() + 3 && word.ends_with(suf) && !word.ends_with("ss")) {
      stem = std::string(word.substr(0, word.size() - suf.size()));
      y_form = suf == "ies" || suf == "ied";
      stripped = true;
      break;
    }
  }
  std::vector<std::string> bases{stem};
  if (y_form) {
    bases.push_back(stem + "y");
  }
  const size_t n = stem.size();
  if (stripped && n >= 4 && stem[n - 1] == stem[n - 2] &&
      std::string_view("aeiouy").find(stem[n - 1]) == std::string_view::npos) {
    bases.push_back(stem.substr(0, n - 1));  // "stopped" -> "stopp" -> "stop"
  }
  static constexpr std::string_view kAdd[] = {"", "s", "e", "es", "ed", "ing", "er", "ion", "ate"};
  for (const std::string& b : bases) {
    for (std::string_view suf : kAdd) {
      std::string v = b + std::string(suf);
      if (v.size() >= 3 && v != word && std::find(out.begin(), out.end(), v) == out.end()) {
        out.push_back(std::move(v));
      }
    }
  }
  return out;
}

void SelectTerms(std::vector<QueryTerm>& terms, int max_terms) {
  std::erase_if(terms, [](const QueryTerm& t) { return t.idf <= 0; });
  std::stable_sort(terms.begin(), terms.end(), [](const QueryTerm& a, const QueryTerm& b) {
    return a.weight * a.idf > b.weight * b.idf;
  });
  const size_t keep = static_cast<size_t>(std::clamp(max_terms, 1, 64));
  if (terms.size() > keep) {
    terms.resize(keep);
  }
}

std::vector<QueryTerm> FeedbackTerms(const std::vector<FeedbackChunk>& chunks,
                                     const std::vector<std::string>& exclude, size_t max) {
  std::unordered_map<std::string, double> weight;
  for (const FeedbackChunk& c : chunks) {
    if (c.tokens.empty() || c.weight <= 0) {
      continue;
    }
    const double share = c.weight / static_cast<double>(c.tokens.size());
    for (const std::string& t : c.tokens) {
      weight[t] += share;
    }
  }
  std::vector<QueryTerm> out;
  for (const auto& [token, w] : weight) {
    const bool digits =
        std::all_of(token.begin(), token.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (token.size() < 3 || digits ||
        std::find(exclude.begin(), exclude.end(), token) != exclude.end()) {
      continue;
    }
    out.push_back({token, w, 1, 0, 0});
  }
  std::sort(out.begin(), out.end(), [](const QueryTerm& a, const QueryTerm& b) {
    return a.weight != b.weight ? a.weight > b.weight : a.token < b.token;
  });
  if (out.size() > max) {
    out.resize(max);
  }
  return out;
}

bool ParseRankOverrides(std::string_view text, RankParams* params) {
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? "" : text.substr(comma + 1);
    if (item.empty()) {
      continue;
    }
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return false;
    }
    const std::string_view name = item.substr(0, eq), value = item.substr(eq + 1);
    double v = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || end != value.data() + value.size()) {
      return false;
    }
    RankParams& p = *params;
    const std::pair<std::string_view, double*> fields[] = {{"k1", &p.k1},
                                                           {"b", &p.b},
                                                           {"w_symbol", &p.w_symbol},
                                                           {"w_path", &p.w_path},
                                                           {"w_body", &p.w_body},
                                                           {"code_weight", &p.code_weight},
                                                           {"part_weight", &p.part_weight},
                                                           {"decay", &p.decay},
                                                           {"rrf_k", &p.rrf_k},
                                                           {"path_weight", &p.path_weight},
                                                           {"def_weight", &p.def_weight},
                                                           {"graph_weight", &p.graph_weight},
                                                           {"stem_weight", &p.stem_weight},
                                                           {"cover_weight", &p.cover_weight},
                                                           {"prf_weight", &p.prf_weight}};
    bool found = false;
    for (const auto& [n, field] : fields) {
      if (n == name) {
        *field = v;
        found = true;
      }
    }
    if (name == "max_terms") {
      p.max_terms = static_cast<int>(v);
      found = true;
    } else if (name == "depth") {
      p.depth = static_cast<int>(v);
      found = true;
    } else if (name == "graph_chunks") {
      p.graph_chunks = static_cast<int>(v);
      found = true;
    } else if (name == "prf_chunks") {
      p.prf_chunks = static_cast<int>(v);
      found = true;
    } else if (name == "prf_terms") {
      p.prf_terms = static_cast<int>(v);
      found = true;
    } else if (name == "prior_on_path") {
      p.prior_on_path = v != 0;
      found = true;
    }
    for (int r = 0; r < kFileRoles && !found; ++r) {
      std::string role = "role." + std::string(RoleName(static_cast<FileRole>(r)));
      std::replace(role.begin(), role.end(), ' ', '_');
      if (role == name) {
        p.role_weight[static_cast<size_t>(r)] = v;
        found = true;
      }
    }
    if (!found) {
      return false;
    }
  }
  return true;
}

}  // namespace hearth::index
