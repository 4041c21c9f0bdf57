// Flags users bring from llama.cpp and Ollama: each either works or is answered with one line
// that says what hearth does instead, never a parser error. main() spells llama.cpp's
// multi-letter short flags (-ngl, -cnv, -hf, -np, -ctk, -ctv) as the long forms below before
// parsing, since CLI11 reads "-ngl" as -n -g -l. Header-only because src/cli builds only main.cpp,
// commands.cpp and *_command.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <string_view>

#include "base/error.h"

namespace hearth::cli {

// llama.cpp's short spellings -> hearth's flags (in main(), before parsing).
inline std::string_view LlamaCppSpelling(std::string_view arg) {
  if (arg == "-ngl") return "--n-gpu-layers";
  if (arg == "-cnv") return "--conversation";
  if (arg == "-hf") return "--hf-repo";
  if (arg == "-np") return "--parallel";
  if (arg == "-ctk") return "--cache-type-k";
  if (arg == "-ctv") return "--cache-type-v";
  return {};
}

enum class Conversation { kIsOne, kIsNot };

// -ngl/--n-gpu-layers, --jinja, -cnv/--conversation and -hf/--hf-repo for a model command.
inline void AddLlamaCppFlags(CLI::App* cmd, Conversation conversation) {
  cmd->add_option_function<int>(
         "--n-gpu-layers,--gpu-layers",
         [](const int&) {
           std::cerr << "hearth: note: -ngl is ignored: hearth runs on the CPU (there is no GPU "
                        "backend yet)\n";
         },
         "Accepted from llama.cpp and ignored: hearth runs on the CPU")
      ->group("llama.cpp compatibility");
  cmd->add_flag_callback(
         "--jinja",
         [] {
           std::cerr << "hearth: note: --jinja is not needed: hearth always applies the Gemma 4 "
                        "chat template\n";
         },
         "Accepted from llama.cpp: the chat template is always applied")
      ->group("llama.cpp compatibility");
  cmd->add_flag_callback(
         "--conversation",
         [conversation] {
           if (conversation == Conversation::kIsNot) {
             ThrowUsage("-cnv: conversation mode is its own command in hearth",
                        "use `hearth chat --plain -m MODEL` (or `hearth chat` for the assistant)");
           }
         },
         "Accepted from llama.cpp (-cnv); `hearth chat` is the conversation")
      ->group("llama.cpp compatibility");
  cmd->add_option_function<std::string>(
         "--hf-repo",
         [](const std::string& repo) {
           ThrowUsage("-hf " + repo + ": only `hearth pull` downloads models",
                      "run `hearth pull https://huggingface.co/" + repo.substr(0, repo.find(':')) +
                          "/resolve/main/FILE.gguf` (or `hearth pull e4b`), then use -m NAME");
         },
         "From llama.cpp: download from Hugging Face (hearth says to use `hearth pull`)")
      ->group("llama.cpp compatibility");
}

}  // namespace hearth::cli
