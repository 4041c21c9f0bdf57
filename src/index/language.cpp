// Language detection by extension and `#!` line.
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "index/chunker.h"
#include "index/index.h"

namespace hearth::index {
namespace {

constexpr std::pair<std::string_view, std::string_view> kExtensions[] = {
    {"c", "c"},           {"h", "c"},           {"cc", "cpp"},         {"cpp", "cpp"},
    {"cxx", "cpp"},       {"c++", "cpp"},       {"hh", "cpp"},         {"hpp", "cpp"},
    {"hxx", "cpp"},       {"h++", "cpp"},       {"ipp", "cpp"},        {"inl", "cpp"},
    {"tcc", "cpp"},       {"cu", "cpp"},        {"py", "python"},      {"pyi", "python"},
    {"pyw", "python"},    {"js", "javascript"}, {"mjs", "javascript"}, {"cjs", "javascript"},
    {"jsx", "javascript"}, {"ts", "typescript"}, {"mts", "typescript"}, {"cts", "typescript"},
    {"tsx", "tsx"},       {"go", "go"},         {"rs", "rust"},        {"java", "java"},
    {"rb", "ruby"},       {"rake", "ruby"},     {"gemspec", "ruby"},   {"php", "php"},
    {"phtml", "php"},           {"cs", "c_sharp"},     {"sh", "bash"},
    {"bash", "bash"},     {"zsh", "bash"},      {"ksh", "bash"},       {"kt", "kotlin"},
    {"kts", "kotlin"},    {"scala", "scala"},   {"sc", "scala"},       {"pl", "perl"},
    {"pm", "perl"},       {"t", "perl"},        {"lua", "lua"},        {"m", "objc"},
    {"mm", "objc"},       {"swift", "swift"},   {"md", "markdown"},    {"rst", "rst"},
    {"txt", "text"},      {"json", "json"},     {"yaml", "yaml"},      {"yml", "yaml"},
    {"toml", "toml"},     {"xml", "xml"},       {"html", "html"},      {"htm", "html"},
    {"css", "css"},       {"scss", "css"},      {"sql", "sql"},        {"cmake", "cmake"},
    {"mk", "make"},       {"proto", "proto"},   {"S", "asm"},          {"s", "asm"},
    {"asm", "asm"},       {"el", "lisp"},       {"vim", "vim"},        {"erb", "ruby"},
};

constexpr std::pair<std::string_view, std::string_view> kInterpreters[] = {
    {"python", "python"}, {"bash", "bash"}, {"sh", "bash"},   {"dash", "bash"}, {"zsh", "bash"},
    {"ksh", "bash"},      {"node", "javascript"}, {"ruby", "ruby"}, {"perl", "perl"},
    {"php", "php"},       {"lua", "lua"}, {"tclsh", "tcl"},
};

// Qt Linguist translation files share TypeScript's .ts extension but are XML. Parsing them with
// the TypeScript grammar is pure error recovery: on freecad (985 such files, 133 MB) that was
// most of the indexing CPU time. No TypeScript source starts with an XML declaration or tag.
bool LooksLikeXml(std::string_view head) {
  if (head.substr(0, 3) == "\xEF\xBB\xBF") head.remove_prefix(3);  // UTF-8 byte order mark
  size_t start = head.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return false;
  head.remove_prefix(start);
  return head.substr(0, 5) == "<?xml" || head.substr(0, 9) == "<!DOCTYPE" ||
         head.substr(0, 4) == "<TS " || head.substr(0, 4) == "<TS>";
}

bool LooksLikeCpp(std::string_view head) {
  for (std::string_view marker : {"class ", "namespace ", "template<", "template <", "public:",
                                  "private:", "std::", "#include <string>", "#include <vector>"}) {
    if (head.find(marker) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> KnownLanguages() {
  std::vector<std::string> out = {"make", "cmake", "ruby", "xml"};
  for (const auto& [e, lang] : kExtensions) out.emplace_back(lang);
  for (const auto& [i, lang] : kInterpreters) out.emplace_back(lang);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string DetectLanguage(std::string_view path, std::string_view head) {
  size_t slash = path.rfind('/');
  std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (base == "Makefile" || base == "GNUmakefile" || base == "makefile") return "make";
  if (base == "CMakeLists.txt") return "cmake";
  if (base == "Rakefile" || base == "Gemfile") return "ruby";
  size_t dot = base.rfind('.');
  if (dot != std::string_view::npos && dot > 0) {
    std::string_view ext = base.substr(dot + 1);
    for (const auto& [e, lang] : kExtensions) {
      if (e == ext) {
        // .h is shared by C and C++; headers with C++ constructs get the C++ grammar.
        if (lang == "c" && ext == "h" && LooksLikeCpp(head)) return "cpp";
        if (lang == "typescript" && ext == "ts" && LooksLikeXml(head)) return "xml";
        return std::string(lang);
      }
    }
    return "";
  }
  if (head.size() > 2 && head[0] == '#' && head[1] == '!') {
    std::string_view line = head.substr(2, head.find('\n') - 2);
    // "#!/usr/bin/env python3 -u" or "#!/bin/sh": the interpreter is the last path part of the
    // first word, or the word after env.
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string_view::npos) return "";
    line.remove_prefix(start);
    std::string_view word = line.substr(0, line.find_first_of(" \t"));
    std::string_view prog = word.substr(word.rfind('/') + 1);
    if (prog == "env") {
      std::string_view rest = line.substr(std::min(line.size(), word.size()));
      size_t s = rest.find_first_not_of(" \t");
      if (s == std::string_view::npos) return "";
      rest.remove_prefix(s);
      if (!rest.empty() && rest[0] == '-') {  // env -S ...
        size_t sp = rest.find_first_of(" \t");
        if (sp == std::string_view::npos) return "";
        rest.remove_prefix(sp);
        s = rest.find_first_not_of(" \t");
        if (s == std::string_view::npos) return "";
        rest.remove_prefix(s);
      }
      prog = rest.substr(0, rest.find_first_of(" \t"));
    }
    // python3.11 -> python
    std::string p(prog);
    while (!p.empty() && (std::isdigit(static_cast<unsigned char>(p.back())) || p.back() == '.'))
      p.pop_back();
    for (const auto& [interp, lang] : kInterpreters) {
      if (interp == p) return std::string(lang);
    }
  }
  return "";
}

}  // namespace hearth::index
