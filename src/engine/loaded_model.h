// A Gemma 4 GGUF opened once, with everything a command needs to run it: the bound weights, the
// tokenizer, whether prompts start with BOS, the chat template, and the one set of defaults
// (context size, threads) that `run`, `chat`, `ask`, `serve`, `bench` and `logits` share.
//
//   auto lm = engine::LoadedModel::Open("gemma-4-E2B-it-Q4_K_M.gguf");
//   engine::Session session(lm->model(), lm->tokenizer(), lm->Context({.n_ctx = 0}));
//
// The file is parsed once: the tokenizer copies what it needs from the same parse the weights are
// bound from. Later the optional attachments of a model (a multimodal projector, LoRA adapters,
// a draft model for speculative decoding) hang off this object, so every command gets them the
// same way.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/speculative.h"
#include "model/adapters.h"
#include "model/drafter.h"
#include "model/model.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace hearth::gguf {
class File;
}

namespace hearth::engine {

// The default context size when no -c is given, for every command (capped at the model's trained
// maximum). 8192 and not less because the assistant's prompt (system prompt, tool declarations,
// repository map, files, the conversation) needs it; the plain commands use the same value so
// that one model behaves the same under run, chat and serve.
inline constexpr int kDefaultContext = 8192;
// Worker threads when none are asked for: one per physical core, at most this many.
inline constexpr int kMaxDefaultThreads = 16;

// min(AvailablePhysicalCores(), kMaxDefaultThreads), at least 1: the physical cores this
// process may run on (base/cpu_cores.h: SMT siblings count once; the affinity mask and the
// cgroup quota of a container are honoured).
int DefaultThreads();

// What a command asks for; 0 means "the default".
struct ContextRequest {
  int n_ctx = 0;      // 0: min(kDefaultContext, the model's trained maximum)
  int n_threads = 0;  // 0: DefaultThreads()
  // The KV cache's storage (--cache-type); ignored by precise contexts.
  model::KvType cache_type_k = model::KvType::kF16;
  model::KvType cache_type_v = model::KvType::kF16;
};

// LoRA adapters (`--lora FILE[:SCALE]`) and control vectors (`--control-vector FILE[:STRENGTH]`)
// to attach to a model when it is opened.
struct AdapterRequest {
  std::vector<model::AdapterSpec> loras;
  std::vector<model::AdapterSpec> cvecs;
};

class LoadedModel {
 public:
  // Opens, validates and binds `path` (memory-mapped), then loads and validates `adapters`
  // against it. Throws Error naming the file and the key or tensor at fault.
  static std::unique_ptr<LoadedModel> Open(const std::string& path,
                                           const AdapterRequest& adapters = {});
  ~LoadedModel();
  LoadedModel(const LoadedModel&) = delete;
  LoadedModel& operator=(const LoadedModel&) = delete;

  const std::string& path() const { return path_; }
  const model::Model& model() const { return *model_; }
  const model::ModelConfig& config() const { return model_->config(); }
  const text::Tokenizer& tokenizer() const { return tokenizer_; }
  // The parsed file (metadata, tensor list), kept open by the model.
  const gguf::File& file() const { return model_->file(); }
  // tokenizer.ggml.add_bos_token (true for Gemma 4, and llama.cpp's default when it is missing).
  bool add_bos() const { return add_bos_; }
  // The chat template prompts are rendered with (hearth's own rendering of the official one).
  text::ChatTemplate chat_template() const { return chat_template_; }

  // Speculative decoding. Open() attaches an MTP drafter found next to the model: a file in the
  // same folder whose name contains "assistant" or "-mtp" and which is a gemma4-assistant GGUF
  // that fits this model (FindDrafter). These replace or add sources; Error(kUsage) when a file
  // does not fit this model (another vocabulary or hidden size, another tokenizer).
  void AttachDrafter(const std::string& path);
  void AttachDraftModel(const std::string& path);
  void SetLookup(int ngram) { lookup_ = ngram; }
  void SetMaxDraft(int k) { max_draft_ = k; }
  // Drops every source (--no-spec).
  void DisableSpeculation();
  const model::Drafter* drafter() const { return drafter_.get(); }
  const model::Model* draft_model() const { return draft_model_.get(); }
  // What Session::SetSpeculation takes; every command's sessions get it.
  SpeculationOptions speculation() const;
  // The drafter for `model_path` in its folder, or "" (see above).
  static std::string FindDrafter(const std::string& model_path, const model::ModelConfig& config);

  // The context options for `request` with the defaults filled in, and the adapters at the
  // scales they were opened with. Throws Error(kUsage) when the context size is outside 1 .. the
  // model's trained maximum ("-c N is out of range").
  model::ContextOptions Context(ContextRequest request) const;

  // The LoRA adapters loaded with the model, in command-line order (ids 0..n-1), with the scales
  // they were given, and the control vectors with their strengths.
  const model::AdapterSet::Loras& loras() const { return loras_; }
  const model::AdapterSet::Cvecs& cvecs() const { return cvecs_; }
  // The active set at the opening scales (null when none is active).
  const std::shared_ptr<const model::AdapterSet>& adapters() const { return adapters_; }
  // The set with other scales for the loaded adapters (`scales[i]` for lora i; the control
  // vectors unchanged). Throws Error(kInvalidInput) when the count differs.
  std::shared_ptr<const model::AdapterSet> AdaptersWithScales(
      const std::vector<float>& scales) const;

 private:
  LoadedModel(std::string path, std::unique_ptr<model::Model> model, text::Tokenizer tokenizer,
              bool add_bos);

  std::string path_;
  std::unique_ptr<model::Model> model_;
  text::Tokenizer tokenizer_;
  bool add_bos_ = true;
  text::ChatTemplate chat_template_ = text::ChatTemplate::kOfficial;
  model::AdapterSet::Loras loras_;
  model::AdapterSet::Cvecs cvecs_;
  std::shared_ptr<const model::AdapterSet> adapters_;
  std::unique_ptr<model::Drafter> drafter_;
  std::unique_ptr<model::Model> draft_model_;
  int lookup_ = 0;
  int max_draft_ = 0;
};

}  // namespace hearth::engine
