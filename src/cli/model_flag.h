// The -m flag of every command that opens a model: a path or a name, resolved by
// agent::ResolveModel (agent/models.h); without -m, the configured default model.
// Header-only because src/cli builds only main.cpp, commands.cpp and *_command.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "agent/models.h"
#include "cli/adapter_flags.h"

namespace hearth::cli {

inline CLI::Option* AddModelFlag(CLI::App* cmd, std::string& target, const std::string& what) {
  return cmd->add_option("-m,--model", target,
                         what +
                             ": a path, a file in the model folder, a short name (e4b, "
                             "gemma4:e4b) or an Ollama model; default: [agent] model in the "
                             "user config (see `hearth models`)");
}

// The file `flag` names (the default model when empty). Errors list the available models.
inline std::string ModelPath(const std::string& flag) { return agent::ResolveModel(flag).path; }

// The same, for commands that run the model: a catalog entry with a base (models.toml) also
// puts its adapters in front of the --lora / --control-vector ones, and a catalog model's
// downloaded MTP drafter becomes `*draft` unless --draft named one.
inline std::string ModelPath(const std::string& flag, AdapterFlags* adapters,
                             std::string* draft = nullptr) {
  agent::ResolvedModel r = agent::ResolveModel(flag);
  adapters->loras.insert(adapters->loras.begin(), r.loras.begin(), r.loras.end());
  adapters->cvecs.insert(adapters->cvecs.begin(), r.cvecs.begin(), r.cvecs.end());
  if (draft != nullptr && draft->empty()) *draft = r.draft;
  return r.path;
}

}  // namespace hearth::cli
