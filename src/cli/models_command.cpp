// `hearth models` (alias `list`): the models -m can name: files in the model folder (with their
// catalog short name), unfinished pulls, and the models of a local Ollama store. `hearth rm NAME`
// deletes a model from the model folder.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/models.h"
#include "agent/pull.h"
#include "base/display.h"
#include "base/error.h"
#include "cli/commands.h"
#include "cli/model_folder.h"

namespace hearth::cli {
namespace {

namespace fs = std::filesystem;

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

struct Row {
  std::string name, size, type, variant, where;
};

// Catalog short names by file name, so a pulled file is listed under the name to type.
std::map<std::string, std::string> ShortNames() {
  std::map<std::string, std::string> by_file;
  std::map<std::string, agent::CatalogEntry> catalog;
  try {
    catalog = agent::LoadCatalog(agent::CatalogConfigPath());
  } catch (const Error&) {
    for (auto& e : agent::BuiltinCatalog()) catalog[e.name] = e;
  }
  for (const auto& [name, e] : catalog) {
    if (!e.file.empty()) by_file[e.file] = name;
  }
  return by_file;
}

Row Describe(const agent::LocalModel& m, const std::string& name, const std::string& where) {
  Row r{name, HumanSize(m.bytes), m.type, m.variant, where};
  if (m.incomplete) {
    r.type = "incomplete download (run the same `hearth pull` again to resume)";
  } else if (!m.problem.empty()) {
    r.type = "not readable as GGUF: " + m.problem;
  } else if (m.architecture != "gemma4") {
    r.variant = m.architecture.empty() ? "(no architecture)" : m.architecture;
  }
  return r;
}

void RunModels(const std::string& dir_flag) {
  const std::string dir = dir_flag.empty() ? agent::DefaultModelDir() : dir_flag;
  const auto by_file = ShortNames();
  std::vector<Row> rows;
  for (const auto& m : agent::ListModels(dir)) {
    auto it = by_file.find(m.file);
    rows.push_back(Describe(m, it != by_file.end() && !m.incomplete ? it->second : m.file,
                            "model folder: " + m.path));
  }
  for (const auto& o : agent::ListOllamaModels(agent::OllamaModelsDir())) {
    rows.push_back(Describe(agent::DescribeModelFile(o.path), o.name, "ollama: " + o.path));
  }
  std::cout << "model folder: " << DisplaySafe(dir, kOneLine) << "\n";
  if (rows.empty()) {
    std::cout << "no models (get one with `hearth pull e4b`, or put a .gguf file here)\n";
    return;
  }
  Row head{"NAME", "SIZE", "TYPE", "VARIANT", "WHERE"};
  size_t w[4] = {0, 0, 0, 0};
  rows.insert(rows.begin(), head);
  for (const auto& r : rows) {
    w[0] = std::max(w[0], r.name.size());
    w[1] = std::max(w[1], r.size.size());
    w[2] = std::max(w[2], std::min<size_t>(r.type.size(), 8));
    w[3] = std::max(w[3], r.variant.size());
  }
  for (const auto& r : rows) {
    std::printf("%-*s  %*s  %-*s  %-*s  %s\n", static_cast<int>(w[0]),
                DisplaySafe(r.name, kOneLine).c_str(), static_cast<int>(w[1]), r.size.c_str(),
                static_cast<int>(w[2]), DisplaySafe(r.type, kOneLine).c_str(),
                static_cast<int>(w[3]), DisplaySafe(r.variant, kOneLine).c_str(),
                DisplaySafe(r.where, kOneLine).c_str());
  }
  std::fflush(stdout);
}

}  // namespace

// Deletes a model that hearth owns: a file (or an unfinished .part) in the model folder, named
// as `hearth models` shows it. Paths elsewhere and Ollama's store are not hearth's to delete.
std::string DeleteModel(const std::string& name, const std::string& dir) {
  std::string file;
  for (const auto& [f, short_name] : ShortNames()) {
    if (name == short_name || name == "gemma4:" + short_name) file = f;
  }
  if (file.empty()) file = name;
  const bool plain_name = file.find('/') == std::string::npos && file != "." && file != "..";
  std::error_code ec;
  for (const std::string& f : {file, file + ".gguf", file + ".part"}) {
    const fs::path p = fs::path(dir) / f;
    if (!plain_name || !fs::is_regular_file(fs::symlink_status(p, ec))) continue;
    if (!fs::remove(p, ec) || ec) {
      ThrowIo("cannot remove " + p.string() + ": " + ec.message(),
              "check the folder's permissions");
    }
    return p.string();
  }
  for (const auto& o : agent::ListOllamaModels(agent::OllamaModelsDir())) {
    if (o.name == name) {
      ThrowUsage("'" + name + "' is in Ollama's store, which hearth only reads",
                 "remove it with `ollama rm " + name + "`");
    }
  }
  ThrowUsage("no model '" + name + "' in the model folder " + dir,
             "`hearth models` lists the names; files elsewhere are yours to delete");
}

namespace {

void RunRm(const std::string& name, const std::string& dir_flag) {
  const std::string deleted =
      DeleteModel(name, dir_flag.empty() ? agent::DefaultModelDir() : dir_flag);
  std::cout << "deleted " << DisplaySafe(deleted, kOneLine) << "\n";
}

}  // namespace

void RegisterModelsCommand(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "models",
      "List the models -m can name (alias: list): name, size, quantization type, variant and\n"
      "where it lives. The model folder is --dir, else $HEARTH_MODELS, else\n"
      "~/.cache/hearth/models; unfinished `hearth pull` downloads show as incomplete. Models in\n"
      "a local Ollama store ($OLLAMA_MODELS, else ~/.ollama/models) are listed too.");
  cmd->alias("list");
  cmd->add_option("--dir", *dir, "Model folder");
  cmd->callback([dir] { RunModels(*dir); });
}
HEARTH_COMMAND(models, RegisterModelsCommand);

void RegisterRmCommand(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "rm", "Delete a model from the model folder (a name as `hearth models` shows it)");
  cmd->add_option("NAME", *name, "The model: a short name (e4b) or a file in the model folder")
      ->required();
  cmd->add_option("--dir", *dir, "Model folder");
  cmd->callback([dir, name] { RunRm(*name, *dir); });
}
HEARTH_COMMAND(rm, RegisterRmCommand);

}  // namespace hearth::cli
