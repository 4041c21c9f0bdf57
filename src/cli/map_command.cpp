// `hearth map`: a ranked map of the repository's key definitions, fitted to a token budget.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "index/index.h"

namespace hearth::cli {
namespace {

struct MapCmdOptions {
  int tokens = 1024;
  std::vector<std::string> focus;
  std::string root;
};

void RunMap(const MapCmdOptions& opt) {
  std::filesystem::path root = opt.root.empty() ? index::FindIndexRoot(std::filesystem::current_path())
                                                : std::filesystem::path(opt.root);
  index::MapOptions mo;
  mo.token_budget = opt.tokens;
  mo.focus = opt.focus;
  std::cout << index::RepoMap(root, mo);
}

}  // namespace

void RegisterMapCommand(CLI::App& app);
HEARTH_COMMAND(map, RegisterMapCommand);

void RegisterMapCommand(CLI::App& app) {
  auto opt = std::make_shared<MapCmdOptions>();
  CLI::App* cmd = app.add_subcommand(
      "map",
      "Print a repo map for a model's context, as aider does: files ranked by personalised\n"
      "PageRank over the graph of which file references which file's definitions, each with\n"
      "its key definition lines, until the token budget is spent. Tokens are estimated as\n"
      "characters / 4 (no model tokenizer is used).");
  cmd->add_option("--tokens", opt->tokens, "Token budget (estimated as characters / 4)")
      ->capture_default_str()->check(CLI::Range(0, 1000000));
  cmd->add_option("--focus", opt->focus,
                  "Files (paths relative to the root) or identifiers to personalise the ranking "
                  "towards; repeatable");
  cmd->add_option("--root", opt->root, "Repository root holding .hearth/index.db");
  cmd->callback([opt] { RunMap(*opt); });
}

}  // namespace hearth::cli
