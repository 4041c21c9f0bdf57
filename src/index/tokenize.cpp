#include "index/tokenize.h"

#include <algorithm>
#include <iterator>

namespace hearth::index {
namespace {

bool IsIdentStart(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool IsUpper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
bool IsLower(unsigned char c) { return c >= 'a' && c <= 'z'; }
char Lower(char c) { return IsUpper(static_cast<unsigned char>(c)) ? static_cast<char>(c + 32) : c; }

// English words too common in code comments and issue texts to tell files apart. Sorted.
constexpr std::string_view kStopWords[] = {
    "a",     "about", "after", "again", "all",   "also",  "am",    "an",    "and",   "any",
    "are",   "as",    "at",    "be",    "been",  "before", "being", "both",  "but",   "by",
    "can",   "could", "did",   "do",    "does",  "doing", "down",  "during", "each", "few",
    "for",   "from",  "further", "had", "has",   "have",  "having", "he",   "her",   "here",
    "hers",  "him",   "his",   "how",   "i",     "if",    "in",    "into",  "is",    "it",
    "its",   "itself", "just", "me",    "more",  "most",  "my",    "no",    "nor",   "not",
    "now",   "of",    "off",   "on",    "once",  "only",  "or",    "other", "our",   "ours",
    "out",   "over",  "own",   "same",  "she",   "should", "so",   "some",  "such",  "than",
    "that",  "the",   "their", "them",  "then",  "there", "these", "they",  "this",  "those",
    "through", "to",  "too",   "under", "until", "up",    "us",    "very",  "was",   "we",
    "were",  "what",  "when",  "where", "which", "while", "who",   "whom",  "why",   "will",
    "with",  "would", "you",   "your",  "yours", "cannot", "into", "onto",  "via",   "upon",
    "within"};

bool Emit(std::string_view raw, std::vector<std::string>& out) {
  if (raw.size() < 2 || raw.size() > 64) return false;
  std::string t(raw);
  for (char& c : t) c = Lower(c);
  if (IsStopWord(t)) return false;
  out.push_back(std::move(t));
  return true;
}

// Splits one identifier into its parts: '_' separates; a lower->upper step, an upper followed by
// upper+lower ("HTTPHeader" -> "HTTP", "Header") and a digit->letter step start a new part.
// Letters followed by digits stay together ("mp4", "utf8", "http2").
void SplitIdentifier(std::string_view id, std::vector<std::string_view>& parts) {
  size_t start = 0;
  auto flush = [&](size_t end) {
    if (end > start) parts.push_back(id.substr(start, end - start));
  };
  for (size_t i = 0; i < id.size(); ++i) {
    unsigned char c = id[i];
    if (c == '_') {
      flush(i);
      start = i + 1;
      continue;
    }
    if (i == start) continue;
    unsigned char p = id[i - 1];
    bool boundary = (IsUpper(c) && (IsLower(p) || IsDigit(p))) ||
                    (IsUpper(c) && IsUpper(p) && i + 1 < id.size() &&
                     IsLower(static_cast<unsigned char>(id[i + 1]))) ||
                    (IsLower(c) && IsDigit(p));
    if (boundary) {
      flush(i);
      start = i;
    }
  }
  flush(id.size());
}

}  // namespace

bool IsStopWord(std::string_view token) {
  // kStopWords is small; a linear scan over a sorted-ish list is cheaper than a hash here only
  // for short tokens, so check the length first.
  if (token.size() > 7) return false;
  return std::find(std::begin(kStopWords), std::end(kStopWords), token) != std::end(kStopWords);
}

void CodeTokens(std::string_view text, std::vector<std::string>& out) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    unsigned char c = text[i];
    if (IsIdentStart(c)) {
      size_t j = i + 1;
      while (j < n && (IsIdentStart(static_cast<unsigned char>(text[j])) ||
                       IsDigit(static_cast<unsigned char>(text[j]))))
        ++j;
      std::string_view id = text.substr(i, j - i);
      parts.clear();
      SplitIdentifier(id, parts);
      if (parts.size() == 1 && parts[0].size() == id.size()) {
        Emit(id, out);
      } else {
        Emit(id, out);
        for (std::string_view p : parts) Emit(p, out);
      }
      i = j;
    } else if (IsDigit(c)) {
      size_t j = i + 1;
      while (j < n && (IsDigit(static_cast<unsigned char>(text[j])) ||
                       IsIdentStart(static_cast<unsigned char>(text[j]))))
        ++j;
      // Numbers (error codes, CVE ids) matter; hex blobs and long literals do not.
      std::string_view num = text.substr(i, j - i);
      if (num.size() <= 10) Emit(num, out);
      i = j;
    } else {
      ++i;
    }
  }
}

std::vector<std::string> CodeTokens(std::string_view text) {
  std::vector<std::string> out;
  CodeTokens(text, out);
  return out;
}

std::string TokenText(std::string_view text) {
  std::vector<std::string> tokens;
  CodeTokens(text, tokens);
  std::string out;
  size_t total = 0;
  for (const auto& t : tokens) total += t.size() + 1;
  out.reserve(total);
  for (const auto& t : tokens) {
    if (!out.empty()) out.push_back(' ');
    out += t;
  }
  return out;
}

}  // namespace hearth::index
