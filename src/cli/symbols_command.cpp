// `hearth symbols NAME`: where NAME is defined and used, from the index's tags.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

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
    std::cout << nlohmann::json{{"symbol", opt.name}, {"uses", arr}}.dump(2) << "\n";
    return;
  }
  if (uses.empty()) {
    std::cout << "no symbol named " << opt.name << " in the index\n";
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
    std::cout << "  " << u.path << ":" << u.line << "  " << u.kind << "  " << u.text << "\n";
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
