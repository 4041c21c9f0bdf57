// Models by name: what `-m` means for every command that takes it. A model is found, in order, as
//   1. a path to an existing file;
//   2. a file in the model folder (`gemma-4-E4B-it-Q4_K_M.gguf`, the `.gguf` may be left out);
//   3. a catalog short name (`e4b`, also `gemma4:e4b`) that `hearth pull` has downloaded;
//   4. a model in the local Ollama store (`gemma4:e4b`, `me/model:tag`): its manifest names the
//      GGUF blob, which is read in place, never copied.
// With no name at all, the default model ([agent] model in the user's config) is used. When
// nothing matches, the error lists what is available and how to get a model.
//
//   const std::string path = agent::ResolveModel(flag_m).path;
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hearth::agent {

// $OLLAMA_MODELS, else ~/.ollama/models.
std::string OllamaModelsDir();

struct OllamaModel {
  std::string name;  // as `ollama list` shows it: "gemma4:e4b", "me/model:tag", "host/ns/m:tag"
  std::string path;  // the model blob (a GGUF file)
  uint64_t bytes = 0;
};
// The models in an Ollama store whose manifest names a model blob that exists, sorted by name;
// empty when `dir` is missing. Manifests that are malformed or name a digest that is not 64 hex
// digits are skipped (a manifest never leads outside dir/blobs).
std::vector<OllamaModel> ListOllamaModels(const std::string& dir);

// [agent] model in the user's config (agent/config.h), or empty.
std::string DefaultModelName();

struct ResolvedModel {
  std::string path;
  std::string source;  // "path", "model folder", "catalog", "ollama", and ", default" if unnamed
};
// See the top of this file. Errors: kUsage when no name is given and no default is configured;
// kIo ("cannot open 'NAME' ...") when nothing matches, listing the available models.
ResolvedModel ResolveModel(const std::string& name);

// "a.gguf, b.gguf, gemma4:e4b (ollama)": what ResolveModel could find, for messages.
std::string AvailableModelNames();

}  // namespace hearth::agent
