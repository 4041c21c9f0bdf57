// `hearth search QUERY`: ranked files and their best chunks from the codebase index.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "base/display.h"
#include "base/error.h"
#include "cli/commands.h"
#include "index/index.h"

namespace hearth::cli {
namespace {

struct SearchCmdOptions {
  std::vector<std::string> words;
  int limit = 10;
  bool json = false;
  bool explain = false;
  std::string lang, path_glob, root;
};

void RunSearch(const SearchCmdOptions& opt) {
  std::filesystem::path root = opt.root.empty() ? index::FindIndexRoot(std::filesystem::current_path())
                                                : std::filesystem::path(opt.root);
  index::SearchOptions so;
  for (const auto& w : opt.words) so.query += (so.query.empty() ? "" : " ") + w;
  so.limit = opt.limit;
  so.language = opt.lang;
  if (!opt.lang.empty()) {
    const auto known = index::KnownLanguages();
    if (!std::binary_search(known.begin(), known.end(), opt.lang)) {
      std::string names;
      for (const auto& l : known) names += (names.empty() ? "" : " ") + l;
      ThrowUsage("unknown language '" + opt.lang + "' for --lang", "one of: " + names);
    }
  }
  so.path_glob = opt.path_glob;
  std::vector<index::FileHit> hits = index::Search(root, so);
  if (opt.json) {
    // One entry per file (its best chunk), in rank order.
    nlohmann::json results = nlohmann::json::array();
    for (const auto& h : hits) {
      nlohmann::json r = {{"path", h.path}, {"score", h.score}, {"language", h.language}};
      if (!h.chunks.empty()) {
        r["start_line"] = h.chunks[0].start_line;
        r["end_line"] = h.chunks[0].end_line;
        r["symbol"] = h.chunks[0].symbol;
      } else {
        r["start_line"] = 1;
        r["end_line"] = 1;
        r["symbol"] = "";
      }
      if (opt.explain) {
        nlohmann::json chunks = nlohmann::json::array();
        for (const auto& c : h.chunks) {
          nlohmann::json sig = nlohmann::json::array();
          for (const auto& s : c.signals)
            sig.push_back({{"signal", s.signal}, {"rank", s.rank}, {"raw", s.raw},
                           {"contribution", s.contribution}});
          chunks.push_back({{"start_line", c.start_line}, {"end_line", c.end_line},
                            {"symbol", c.symbol}, {"score", c.score}, {"signals", sig}});
        }
        r["chunks"] = chunks;
        for (const auto& s : h.file_signals)
          r["file_signals"].push_back({{"signal", s.signal}, {"rank", s.rank}, {"raw", s.raw},
                                       {"contribution", s.contribution}});
      }
      results.push_back(r);
    }
    // File names and symbols come from the repository: bytes that are not UTF-8 become U+FFFD
    // (JSON must be UTF-8) instead of failing the dump.
    std::cout << nlohmann::json{{"results", results}}.dump(2, ' ', false,
                                                           nlohmann::json::error_handler_t::replace)
              << "\n";
    return;
  }
  if (hits.empty()) {
    std::cout << "no results\n";
    return;
  }
  std::ostringstream out;
  out << std::fixed << std::setprecision(4);
  for (const auto& h : hits) {
    // Repository text is escaped: a file name with a newline or ESC cannot fake lines.
    const std::string path = DisplaySafe(h.path, kOneLine);
    out << path << "  (" << h.score << ")\n";
    for (const auto& s : h.file_signals) {
      if (opt.explain)
        out << "    file " << s.signal << ": rank " << s.rank << ", raw " << s.raw << ", +"
            << s.contribution << "\n";
    }
    for (const auto& c : h.chunks) {
      out << "  " << path << ":" << c.start_line << "-" << c.end_line;
      if (!c.symbol.empty()) out << "  " << c.kind << " " << DisplaySafe(c.symbol, kOneLine);
      out << "\n";
      if (opt.explain) {
        for (const auto& s : c.signals)
          out << "      " << s.signal << ": rank " << s.rank << ", raw " << s.raw << ", +"
              << s.contribution << "\n";
      }
    }
  }
  std::cout << out.str();
}

}  // namespace

void RegisterSearchCommand(CLI::App& app);
HEARTH_COMMAND(search, RegisterSearchCommand);

void RegisterSearchCommand(CLI::App& app) {
  auto opt = std::make_shared<SearchCmdOptions>();
  CLI::App* cmd = app.add_subcommand(
      "search",
      "Search the codebase index (of the repository containing the current directory:\n"
      "the nearest .hearth/ upwards, unless --root says otherwise). Ranking fuses BM25 over\n"
      "chunk bodies, symbol-name and path matches (reciprocal rank fusion); results are\n"
      "grouped by file with their best chunks as path:line.");
  cmd->add_option("query", opt->words, "Words, identifiers or a whole issue text")->required();
  cmd->add_option("-n,--limit", opt->limit, "Files to show")->capture_default_str()
      ->check(CLI::Range(1, 10000));
  cmd->add_flag("--json", opt->json,
                "Print {\"results\":[{\"path\",\"start_line\",\"end_line\",\"symbol\",\"score\"}]}");
  cmd->add_option("--lang", opt->lang, "Only this language (c, cpp, python, go, ...)");
  cmd->add_option("--path", opt->path_glob, "Only paths matching this glob ('*' spans '/')");
  cmd->add_flag("--explain", opt->explain, "Show each signal's rank and contribution");
  cmd->add_option("--root", opt->root, "Repository root holding .hearth/index.db");
  cmd->callback([opt] { RunSearch(*opt); });
}

}  // namespace hearth::cli
