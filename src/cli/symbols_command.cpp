// `hearth symbols NAME`: where NAME is defined and used, from the index's tags.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "base/display.h"
#include "cli/commands.h"
#include "index/index.h"

namespace hearth::cli {
namespace {

struct SymbolsCmdOptions {
  std::string name, root;
  bool json = false;
};

void RunSymbols(const SymbolsCmdOptions& opt) {
  std::filesystem::path root = opt.root.empty() ? index::FindIndexRoot(std::filesystem::current_path())
                                                : std::filesystem::path(opt.root);
  auto uses = index::FindSymbol(root, opt.name);
  if (opt.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& u : uses)
      arr.push_back({{"path", u.path}, {"line", u.line}, {"kind", u.kind},
                     {"definition", u.definition}, {"text", u.text}});
    // Repository text that is not UTF-8 becomes U+FFFD instead of failing the dump.
    std::cout << nlohmann::json{{"symbol", opt.name}, {"uses", arr}}.dump(
                     2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
    return;
  }
  if (uses.empty()) {
    std::cout << "no symbol named " << DisplaySafe(opt.name, kOneLine) << " in the index\n";
    return;
  }
  bool header_def = false, header_ref = false;
  for (const auto& u : uses) {
    if (u.definition && !header_def) {
      std::cout << "definitions:\n";
      header_def = true;
    }
    if (!u.definition && !header_ref) {
      std::cout << "references:\n";
      header_ref = true;
    }
    // Repository text is escaped: a file name with a newline or ESC cannot fake lines.
    std::cout << "  " << DisplaySafe(u.path, kOneLine) << ":" << u.line << "  " << u.kind << "  "
              << DisplaySafe(u.text, kOneLine) << "\n";
  }
}

}  // namespace

void RegisterSymbolsCommand(CLI::App& app);
HEARTH_COMMAND(symbols, RegisterSymbolsCommand);

void RegisterSymbolsCommand(CLI::App& app) {
  auto opt = std::make_shared<SymbolsCmdOptions>();
  CLI::App* cmd = app.add_subcommand(
      "symbols", "List where NAME is defined and referenced (tree-sitter tags in the index)");
  cmd->add_option("name", opt->name, "Exact symbol name (case-sensitive)")->required();
  cmd->add_flag("--json", opt->json, "Print JSON");
  cmd->add_option("--root", opt->root, "Repository root holding .hearth/index.db");
  cmd->callback([opt] { RunSymbols(*opt); });
}

}  // namespace hearth::cli
