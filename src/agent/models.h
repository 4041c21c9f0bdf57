// Models by name: what `-m` means for every command that takes it. A model is found, in order, as
//   1. a path to an existing file;
//   2. a file in the model folder (`gemma-4-E4B-it-Q4_K_M.gguf`, the `.gguf` may be left out);
//   3. a catalog short name (`e4b`, also `gemma4:e4b`) that `hearth pull` has downloaded;
//   4. a model in the local Ollama store (`gemma4:e4b`, `me/model:tag`): its manifest names the
//      GGUF blob, which is read in place, never copied.
// A catalog entry with a base (models.toml, agent/pull.h) is its base model plus its adapters.
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
  // A catalog entry with a base: its LoRA adapters and control vectors, `FILE[:SCALE]` each.
  std::vector<std::string> loras;
  std::vector<std::string> cvecs;
  // A catalog model whose entry names an MTP drafter that has been downloaded: its path.
  std::string draft;
};
// See the top of this file. Errors: kUsage when no name is given and no default is configured;
// kIo ("cannot open 'NAME' ...") when nothing matches, listing the available models.
ResolvedModel ResolveModel(const std::string& name);

// The catalog entries with a base that resolves to the file `model_path` (the same file, by
// identity): what `hearth serve` offers as models of their own next to the model it serves.
// Entries whose base cannot be resolved are left out.
struct AdaptedModel {
  std::string name;
  std::vector<std::string> loras;
  std::vector<std::string> cvecs;
};
std::vector<AdaptedModel> AdaptedModelsOf(const std::string& model_path);

// "a.gguf, b.gguf, gemma4:e4b (ollama)": what ResolveModel could find, for messages.
std::string AvailableModelNames();

}  // namespace hearth::agent
