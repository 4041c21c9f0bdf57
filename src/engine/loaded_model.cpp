#include "engine/loaded_model.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <thread>

#include "base/cpu_cores.h"
#include "base/error.h"
#include "gguf/gguf.h"

namespace hearth::engine {

int DefaultThreads() { return std::clamp(AvailablePhysicalCores(), 1, kMaxDefaultThreads); }

LoadedModel::LoadedModel(std::string path, std::unique_ptr<model::Model> model,
                         text::Tokenizer tokenizer, bool add_bos)
    : path_(std::move(path)),
      model_(std::move(model)),
      tokenizer_(std::move(tokenizer)),
      add_bos_(add_bos) {}

LoadedModel::~LoadedModel() = default;

std::unique_ptr<LoadedModel> LoadedModel::Open(const std::string& path,
                                               const AdapterRequest& adapters) {
  // One parse: the model keeps it, the tokenizer copies its vocabulary out of it. The model is
  // checked first, so a file that is not a Gemma 4 model says so before any tokenizer complaint.
  std::unique_ptr<model::Model> model = model::Model::FromFile(gguf::File::Open(path));
  text::Tokenizer tokenizer = text::Tokenizer::FromGguf(model->file());
  const bool add_bos = model->file().GetBool("tokenizer.ggml.add_bos_token").value_or(true);
  std::unique_ptr<LoadedModel> lm(
      new LoadedModel(path, std::move(model), std::move(tokenizer), add_bos));
  for (const model::AdapterSpec& s : adapters.loras) {
    lm->loras_.emplace_back(model::LoraAdapter::Load(s.path, *lm->model_), s.scale);
  }
  for (const model::AdapterSpec& s : adapters.cvecs) {
    lm->cvecs_.emplace_back(model::ControlVector::Load(s.path, *lm->model_), s.scale);
  }
  lm->adapters_ = model::AdapterSet::Make(*lm->model_, lm->loras_, lm->cvecs_);
  const std::string drafter = FindDrafter(path, lm->config());
  if (!drafter.empty()) {
    lm->AttachDrafter(drafter);
  }
  return lm;
}

std::string LoadedModel::FindDrafter(const std::string& model_path,
                                     const model::ModelConfig& config) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::path(model_path).parent_path();
  std::vector<std::string> candidates;
  for (const auto& e : fs::directory_iterator(dir.empty() ? fs::path(".") : dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".gguf") {
      continue;
    }
    if (name.find("assistant") == std::string::npos && name.find("-mtp") == std::string::npos) {
      continue;
    }
    candidates.push_back(e.path().string());
  }
  std::sort(candidates.begin(), candidates.end());  // the same choice on every run
  for (const std::string& c : candidates) {
    // Only metadata is read to choose; a file that does not parse or fit is passed over.
    try {
      const gguf::File f = gguf::File::Open(c);
      if (!model::Drafter::IsDrafterFile(f)) {
        continue;
      }
      if (f.GetInt("gemma4-assistant.embedding_length_out").value_or(0) != config.n_embd) {
        continue;
      }
      const gguf::TensorInfo* embd = f.FindTensor("token_embd.weight");
      if (!embd || embd->shape.size() != 2 || embd->shape[1] != config.n_vocab) {
        continue;
      }
      return c;
    } catch (const Error&) {
      continue;
    }
  }
  return {};
}

void LoadedModel::AttachDrafter(const std::string& path) {
  auto d = model::Drafter::Load(path);
  d->CheckTarget(config(), &file());
  drafter_ = std::move(d);
}

void LoadedModel::AttachDraftModel(const std::string& path) {
  auto m = model::Model::Load(path);
  const auto* a = m->file().GetStringArray("tokenizer.ggml.tokens");
  const auto* b = file().GetStringArray("tokenizer.ggml.tokens");
  if (m->config().n_vocab != config().n_vocab || !a || !b || *a != *b) {
    ThrowUsage("draft model '" + path + "' does not have the tokenizer of '" + path_ + "'",
               "a draft model must be a Gemma 4 with the same vocabulary (e.g. E2B for E4B)");
  }
  draft_model_ = std::move(m);
}

void LoadedModel::DisableSpeculation() {
  drafter_.reset();
  draft_model_.reset();
  lookup_ = 0;
}

SpeculationOptions LoadedModel::speculation() const {
  SpeculationOptions o;
  o.drafter = drafter_.get();
  o.draft_model = draft_model_.get();
  o.lookup = lookup_;
  o.max_draft = max_draft_;
  // Every command drafts only while it pays (DraftGovernor); --no-spec drops the sources.
  o.adaptive = true;
  return o;
}

std::shared_ptr<const model::AdapterSet> LoadedModel::AdaptersWithScales(
    const std::vector<float>& scales) const {
  if (scales.size() != loras_.size()) {
    ThrowInvalidInput(std::to_string(scales.size()) + " adapter scales given for " +
                          std::to_string(loras_.size()) + " loaded adapters",
                      "give one scale per adapter loaded with --lora");
  }
  model::AdapterSet::Loras loras = loras_;
  for (size_t i = 0; i < scales.size(); ++i) loras[i].second = scales[i];
  return model::AdapterSet::Make(*model_, std::move(loras), cvecs_);
}

model::ContextOptions LoadedModel::Context(ContextRequest request) const {
  const int max = config().n_ctx_train;
  const int n_ctx = request.n_ctx != 0 ? request.n_ctx : std::min(kDefaultContext, max);
  if (n_ctx < 1 || n_ctx > max) {
    ThrowUsage("-c " + std::to_string(n_ctx) + " is out of range",
               "this model supports contexts of 1 to " + std::to_string(max) + " tokens");
  }
  model::ContextOptions options;
  options.n_ctx = n_ctx;
  options.n_threads = request.n_threads > 0 ? request.n_threads : DefaultThreads();
  options.adapters = adapters_;
  options.cache_type_k = request.cache_type_k;
  options.cache_type_v = request.cache_type_v;
  return options;
}

}  // namespace hearth::engine
