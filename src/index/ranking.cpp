#include "index/ranking.h"

#include <algorithm>
#include <cctype>
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

}  // namespace hearth::index
