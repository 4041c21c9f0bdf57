// The in-process backend: the Gemma 4 model run by hearth's own engine. The engine Session keeps
// the tokens its KV cache holds and reuses the longest common prefix of the next prompt, so the
// system prompt, tools and repo map are decoded once per session and each tool round only costs
// what it adds.
#include <algorithm>

#include "agent/backend.h"
#include "agent/prefix_cache.h"
#include "agent/tools.h"
#include "base/error.h"
#include "engine/loaded_model.h"
#include "engine/media.h"
#include "engine/session.h"
#include "model/adapters.h"

namespace hearth::agent {
namespace {

class LocalBackend : public GemmaBackend {
 public:
  LocalBackend(const std::string& path, const LocalOptions& options)
      : path_(path), lm_(engine::LoadedModel::Open(path, options.adapters)), options_(options) {
    session_ =
        std::make_unique<engine::Session>(lm_->model(), lm_->tokenizer(),
                                          lm_->Context({.n_ctx = options.n_ctx,
                                                        .n_threads = options.n_threads,
                                                        .cache_type_k = options.cache_type_k,
                                                        .cache_type_v = options.cache_type_v}));
    // Speculative decoding (LocalOptions): a source named by the options, else the drafter when
    // one sits next to the model, else prompt lookup only inside edit and write tool calls
    // (they repeat most of the file they rewrite; elsewhere lookup rarely pays for the wider
    // verification pass).
    if (options.no_spec) {
      lm_->DisableSpeculation();
    } else {
      if (!options.draft_path.empty()) lm_->AttachDrafter(options.draft_path);
      if (!options.draft_model_path.empty()) lm_->AttachDraftModel(options.draft_model_path);
      if (options.lookup > 0) {
        lm_->SetLookup(options.lookup);
      } else if (!lm_->drafter() && !lm_->draft_model()) {
        lm_->SetLookup(3);
        lookup_in_writes_only_ = true;
      }
    }
    session_->SetSpeculation(lm_->speculation());
    if (options.prefix_cache != nullptr) {
      // What else shapes the KV values: the cache types (--cache-type; never precise mode),
      // the adapters and their scales, and this engine's layout of the snapshot.
      prefix_store_ = OpenPrefixCache(
          *options.prefix_cache, path,
          PrefixCacheSettings(options.cache_type_k, options.cache_type_v, lm_->adapters().get()),
          options.warn);
      session_->SetPrefixStore(prefix_store_.get());
    }
    // A projector given or next to the model is opened now (it is mapped, not read), so that
    // the assistant knows whether it may offer view_image; a broken one is reported when media
    // is used.
    if (!options.mmproj.empty() || !engine::FindProjector(path_).empty()) {
      try {
        OpenProjector();
      } catch (const Error& e) {
        if (options.warn) options.warn("no images or audio: " + e.Describe());
      }
    }
  }

  std::string Describe() const override { return "local engine: " + path_; }
  int CountTokens(std::string_view text) const override {
    return static_cast<int>(lm_->tokenizer().Encode(text, false, true).size());
  }
  bool exact_tokens() const override { return true; }
  int context_size() const override { return session_->n_ctx(); }
  bool takes_images() const override { return projector_ && projector_->has_vision(); }

 protected:
  // Media parts from the command line name files (allow_paths); the projector keeps what it
  // encoded, so the same image in the next step or question is not encoded again.
  std::vector<engine::MediaPtr> EncodeMedia(const nlohmann::ordered_json& messages) override {
    if (engine::MediaParts(messages).empty()) return {};
    if (!projector_) OpenProjector();
    return projector_->EncodeParts(messages, {.allow_paths = true});
  }

  engine::ChatReply Turn(const engine::TurnRequest& turn, const ChatRequest& request,
                         const engine::TurnReader::DeltaFn& on_delta) override {
    const engine::PreparedTurn prepared = engine::PrepareTurn(turn, &lm_->tokenizer());
    const int n_ctx = session_->n_ctx();
    const int room = n_ctx - static_cast<int>(prepared.tokens.size());
    if (room < 1) {
      throw Error(ErrorClass::kResource,
                  "the conversation takes " + std::to_string(prepared.tokens.size()) +
                      " tokens but the context holds " + std::to_string(n_ctx),
                  "ask with less context (fewer --file, fewer steps) or a larger -c");
    }
    engine::GenerateOptions go;
    go.max_tokens = std::min(request.max_tokens > 0 ? request.max_tokens : room, room);
    go.sampling.temperature = options_.temperature;
    go.sampling.seed = options_.seed;
    go.cancel = request.cancel;
    if (lookup_in_writes_only_) go.draft_when = InsideFileWritingCall;
    return engine::RunTurn(*session_, prepared, go, on_delta);
  }

 private:
  void OpenProjector() {
    std::string path = options_.mmproj;
    if (path.empty()) path = engine::FindProjector(path_);
    if (path.empty()) {
      ThrowUsage("images and audio need the model's projector file and none was found next to '" +
                     path_ + "'",
                 "give --mmproj mmproj-….gguf (images: any Gemma 4 model; audio: E2B or E4B)");
    }
    const int threads = options_.n_threads > 0 ? options_.n_threads : engine::DefaultThreads();
    projector_ = engine::Projector::Open(path, lm_->config(), threads);
  }

  std::string path_;
  std::unique_ptr<engine::LoadedModel> lm_;
  LocalOptions options_;
  std::unique_ptr<engine::Projector> projector_;       // opened for the first media part
  std::unique_ptr<engine::PrefixStore> prefix_store_;  // before the session that uses it
  std::unique_ptr<engine::Session> session_;
  bool lookup_in_writes_only_ = false;
};

}  // namespace

std::unique_ptr<Backend> MakeLocalBackend(const std::string& model_path,
                                          const LocalOptions& options) {
  return std::make_unique<LocalBackend>(model_path, options);
}

}  // namespace hearth::agent
