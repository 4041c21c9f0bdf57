#include "cli/commands.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace hearth::cli {
namespace {

std::vector<std::pair<std::string, RegisterFn>>& Registry() {
  static std::vector<std::pair<std::string, RegisterFn>> registry;
  return registry;
}

}  // namespace

bool AddCommand(const char* name, RegisterFn fn) {
  Registry().emplace_back(name, fn);
  return true;
}

void RegisterAllCommands(CLI::App& app) {
  auto commands = Registry();
  std::sort(commands.begin(), commands.end());
  for (const auto& [name, fn] : commands) fn(app);
}

}  // namespace hearth::cli
