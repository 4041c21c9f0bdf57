// The in-process backend: the Gemma 4 model run by hearth's own engine. The engine Session keeps
// the tokens its KV cache holds and reuses the longest common prefix of the next prompt, so the
// system prompt, tools and repo map are decoded once per session and each tool round only costs
// what it adds.
#include <algorithm>
#include <thread>
#include <vector>

#include "agent/backend.h"
#include "base/error.h"
#include "engine/session.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace hearth::agent {
namespace {

class LocalBackend : public GemmaBackend {
 public:
  LocalBackend(const std::string& path, const LocalOptions& options)
      : path_(path),
        model_(model::Model::Load(path)),
        tokenizer_(text::Tokenizer::Load(path)),
        options_(options) {
    model::ContextOptions co;
    co.n_ctx = options.n_ctx > 0 ? options.n_ctx : std::min(8192, model_->config().n_ctx_train);
    co.n_ctx = std::min(co.n_ctx, model_->config().n_ctx_train);
    co.n_threads = options.n_threads > 0
                       ? options.n_threads
                       : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    session_ = std::make_unique<engine::Session>(*model_, tokenizer_, co);
  }

  std::string Describe() const override { return "local engine: " + path_; }
  int CountTokens(std::string_view text) const override {
    return static_cast<int>(tokenizer_.Encode(text, false, true).size());
  }
  bool exact_tokens() const override { return true; }
  int context_size() const override { return session_->n_ctx(); }

 protected:
  RawResult Generate(const std::string& prompt, int max_tokens,
                     const std::function<bool(std::string_view)>& on_piece,
                     const std::atomic<bool>* cancel) override {
    std::vector<int32_t> ids = tokenizer_.Encode(prompt, /*add_bos=*/false, /*parse_special=*/true);
    const int n_ctx = session_->n_ctx();
    const int room = n_ctx - static_cast<int>(ids.size());
    if (room < 1) {
      throw Error(ErrorClass::kResource,
                  "the conversation takes " + std::to_string(ids.size()) +
                      " tokens but the context holds " + std::to_string(n_ctx),
                  "ask with less context (fewer --file, fewer steps) or a larger -c");
    }
    engine::GenerateOptions go;
    go.max_tokens = std::min(max_tokens > 0 ? max_tokens : room, room);
    go.sampling.temperature = options_.temperature;
    go.sampling.seed = options_.seed;
    go.stop_at_eog = true;
    go.on_text = [&](std::string_view piece) { return on_piece(piece); };
    go.cancel = cancel;
    engine::GenerateResult g = session_->Generate(ids, go);
    RawResult result;
    result.prompt_tokens = g.stats.prompt_tokens;
    result.reused_tokens = g.stats.reused_tokens;
    result.completion_tokens = g.stats.generated_tokens;
    result.prompt_seconds = g.stats.prompt_seconds;
    result.generate_seconds = g.stats.generate_seconds;
    switch (g.stats.stop_reason) {
      case engine::StopReason::kEndOfGeneration:
      case engine::StopReason::kStopString:
        result.finish_reason = "stop";
        break;
      case engine::StopReason::kCallback:
      case engine::StopReason::kCancelled:
        result.finish_reason = "cancelled";
        break;
      case engine::StopReason::kMaxTokens:
      case engine::StopReason::kContextFull:
        result.finish_reason = "length";
        break;
    }
    return result;
  }

 private:
  std::string path_;
  std::unique_ptr<model::Model> model_;
  text::Tokenizer tokenizer_;
  LocalOptions options_;
  std::unique_ptr<engine::Session> session_;
};

}  // namespace

std::unique_ptr<Backend> MakeLocalBackend(const std::string& model_path,
                                          const LocalOptions& options) {
  return std::make_unique<LocalBackend>(model_path, options);
}

}  // namespace hearth::agent
