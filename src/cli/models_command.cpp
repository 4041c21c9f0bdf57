// `hearth models`: what is in the model folder, complete files and unfinished pulls.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "agent/pull.h"
#include "cli/commands.h"

namespace hearth::cli {
namespace {

std::string HumanSize(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

void RunModels(const std::string& dir_flag) {
  const std::string dir = dir_flag.empty() ? agent::DefaultModelDir() : dir_flag;
  const auto models = agent::ListModels(dir);
  std::cout << "model folder: " << dir << "\n";
  if (models.empty()) {
    std::cout << "no models (get one with `hearth pull e2b`, or put a .gguf file here)\n";
    return;
  }
  size_t width = 4;
  for (const auto& m : models) width = std::max(width, m.file.size());
  for (const auto& m : models) {
    std::string what;
    if (m.incomplete) {
      what = "incomplete download (run the same `hearth pull` again to resume)";
    } else if (!m.problem.empty()) {
      what = "not readable as GGUF: " + m.problem;
    } else {
      what = (m.architecture.empty() ? "(no architecture)" : m.architecture);
      if (!m.type.empty()) what += " " + m.type;
    }
    std::printf("%-*s  %10s  %s\n", static_cast<int>(width), m.file.c_str(),
                HumanSize(m.bytes).c_str(), what.c_str());
  }
  std::fflush(stdout);
}

}  // namespace

void RegisterModelsCommand(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "models",
      "List the models in the model folder (--dir, else $HEARTH_MODELS, else\n"
      "~/.cache/hearth/models): file name, size, GGUF architecture and main tensor type, and\n"
      "unfinished `hearth pull` downloads (.part files) marked incomplete.");
  cmd->add_option("--dir", *dir, "Model folder");
  cmd->callback([dir] { RunModels(*dir); });
}
HEARTH_COMMAND(models, RegisterModelsCommand);

}  // namespace hearth::cli
