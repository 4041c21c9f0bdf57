// `hearth info -m MODEL.gguf`: what a model file contains, without loading weights.
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "gguf/gguf.h"

namespace hearth::cli {
namespace {

struct InfoOptions {
  std::string model_path;
  bool show_metadata = false;
  bool show_tensors = false;
};

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream out;
  out << std::fixed << std::setprecision(u == 0 ? 0 : 1) << v << ' ' << units[u];
  return out.str();
}

void RunInfo(const InfoOptions& opt) {
  gguf::File file = gguf::File::Open(opt.model_path);
  std::cout << "file:          " << file.path() << "\n";
  std::cout << "format:        GGUF v" << file.version() << ", " << HumanBytes(file.size_bytes())
            << ", " << file.metadata().size() << " metadata keys, " << file.tensors().size()
            << " tensors\n";
  auto arch = file.GetString("general.architecture");
  std::cout << "architecture:  " << (arch ? std::string(*arch) : "(not set)") << "\n";
  if (auto name = file.GetString("general.name")) std::cout << "name:          " << *name << "\n";
  if (auto tok = file.GetString("tokenizer.ggml.model")) {
    const auto* tokens = file.GetStringArray("tokenizer.ggml.tokens");
    std::cout << "tokenizer:     " << *tok << ", " << (tokens ? tokens->size() : 0)
              << " tokens\n";
  }
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  uint64_t weight_bytes = 0;
  for (const auto& t : file.tensors()) {
    auto& [count, bytes] = by_type[gguf::TensorTypeName(t.type_id)];
    ++count;
    bytes += t.n_bytes;
    weight_bytes += t.n_bytes;
  }
  if (!by_type.empty()) {
    std::cout << "weights:       " << HumanBytes(weight_bytes) << " (";
    bool first = true;
    for (const auto& [type, cb] : by_type) {
      std::cout << (first ? "" : ", ") << type << " x" << cb.first;
      first = false;
    }
    std::cout << ")\n";
  }
  if (opt.show_metadata) {
    std::cout << "\nmetadata:\n";
    for (const auto& [key, value] : file.metadata()) {
      std::cout << "  " << key << " = " << value.Describe() << "\n";
    }
  }
  if (opt.show_tensors) {
    std::cout << "\ntensors:\n";
    for (const auto& t : file.tensors()) {
      std::cout << "  " << std::left << std::setw(40) << t.name << " " << std::setw(7)
                << gguf::TensorTypeName(t.type_id) << " [";
      for (size_t i = 0; i < t.shape.size(); ++i) std::cout << (i ? ", " : "") << t.shape[i];
      std::cout << "] " << HumanBytes(t.n_bytes) << "\n";
    }
  }
}

}  // namespace

void RegisterInfoCommand(CLI::App& app);
HEARTH_COMMAND(info, RegisterInfoCommand);

void RegisterInfoCommand(CLI::App& app) {
  auto opt = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand("info", "Describe a GGUF model file (no weights are loaded)");
  cmd->add_option("-m,--model", opt->model_path, "Path to a .gguf file")->required();
  cmd->add_flag("--metadata", opt->show_metadata, "List every metadata key and value");
  cmd->add_flag("--tensors", opt->show_tensors, "List every tensor with its type and shape");
  cmd->callback([opt] { RunInfo(*opt); });
}

}  // namespace hearth::cli
