// The flags that attach LoRA adapters and control vectors to a model, the same for every command
// that runs one (logits, run, chat, ask, bench, serve): `--lora FILE[:SCALE]` and
// `--control-vector FILE[:STRENGTH]`, both repeatable, as llama.cpp's `--lora-scaled` and
// `--control-vector-scaled`.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "engine/loaded_model.h"
#include "model/adapters.h"

namespace hearth::cli {

struct AdapterFlags {
  std::vector<std::string> loras;
  std::vector<std::string> cvecs;

  // The parsed specs. Throws Error(kUsage) for a malformed FILE:SCALE.
  engine::AdapterRequest Request() const {
    engine::AdapterRequest r;
    for (const auto& s : loras) r.loras.push_back(model::ParseAdapterSpec(s, "--lora"));
    for (const auto& s : cvecs) r.cvecs.push_back(model::ParseAdapterSpec(s, "--control-vector"));
    return r;
  }
};

inline void AddAdapterFlags(CLI::App* cmd, AdapterFlags* f) {
  cmd->add_option("--lora", f->loras,
                  "LoRA adapter GGUF (llama.cpp format) applied on top of the model, as "
                  "FILE or FILE:SCALE (default scale 1); repeatable")
      ->type_name("FILE[:SCALE]")
      ->allow_extra_args(false);
  cmd->add_option("--control-vector", f->cvecs,
                  "Control vector GGUF (direction.N per layer) added to the layer outputs, as "
                  "FILE or FILE:STRENGTH (default 1); repeatable")
      ->type_name("FILE[:STRENGTH]")
      ->allow_extra_args(false);
}

}  // namespace hearth::cli
