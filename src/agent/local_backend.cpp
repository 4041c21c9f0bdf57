// The in-process backend: the Gemma 4 model run by hearth's own forward pass.
//
// Until the engine's Session (generation loop with prefix reuse) is available to build on, this
// drives model::Context and engine::Sampler directly. It keeps the tokens its KV cache holds and,
// when the next prompt starts with all of them (the next step of a tool loop), decodes only the
// new tokens.
#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "agent/backend.h"
#include "base/error.h"
#include "engine/sampler.h"
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
    ctx_ = std::make_unique<model::Context>(*model_, co);
  }

  std::string Describe() const override { return "local engine: " + path_; }
  int CountTokens(std::string_view text) const override {
    return static_cast<int>(tokenizer_.Encode(text, false, true).size());
  }
  bool exact_tokens() const override { return true; }
  int context_size() const override { return ctx_->n_ctx(); }

 protected:
  RawResult Generate(const std::string& prompt, int max_tokens,
                     const std::function<bool(std::string_view)>& on_piece,
                     const std::atomic<bool>* cancel) override {
    RawResult result;
    std::vector<int32_t> ids = tokenizer_.Encode(prompt, /*add_bos=*/false, /*parse_special=*/true);
    result.prompt_tokens = static_cast<int>(ids.size());
    if (ids.empty()) throw Error(ErrorClass::kInternal, "the rendered prompt is empty");
    const int n_ctx = ctx_->n_ctx();
    if (static_cast<int>(ids.size()) >= n_ctx) {
      throw Error(ErrorClass::kResource,
                  "the prompt takes " + std::to_string(ids.size()) + " tokens but the context holds " +
                      std::to_string(n_ctx),
                  "ask with less context (fewer --file) or a larger context");
    }
    // Reuse the cache when it holds a prefix of this prompt (and at least one token is new, for
    // the logits).
    size_t common = 0;
    while (common < cached_.size() && common < ids.size() && cached_[common] == ids[common]) {
      ++common;
    }
    if (common < cached_.size() || common == ids.size()) {
      ctx_->Reset();
      cached_.clear();
      common = 0;
    }
    result.reused_tokens = static_cast<int>(common);
    const int n_vocab = model_->config().n_vocab;
    logits_.resize(n_vocab);
    const int ubatch = ctx_->options().n_ubatch;
    for (size_t at = common; at < ids.size(); at += ubatch) {
      if (cancel && cancel->load()) {
        result.finish_reason = "cancelled";
        return result;
      }
      size_t n = std::min<size_t>(ubatch, ids.size() - at);
      ctx_->Decode(std::span<const int32_t>(ids.data() + at, n), logits_.data(), false);
      cached_.insert(cached_.end(), ids.begin() + at, ids.begin() + at + n);
    }
    engine::SamplingParams sp;
    sp.temperature = options_.temperature;
    sp.seed = options_.seed;
    engine::Sampler sampler(sp);
    text::StreamDecoder decoder(tokenizer_, /*render_special=*/true);
    const int budget = std::min(max_tokens > 0 ? max_tokens : n_ctx,
                                n_ctx - static_cast<int>(cached_.size()));
    result.finish_reason = "length";
    for (int i = 0; i < budget; ++i) {
      if (cancel && cancel->load()) {
        result.finish_reason = "cancelled";
        break;
      }
      int tok = sampler.Sample(logits_);
      sampler.Accept(tok);
      ++result.completion_tokens;
      if (tokenizer_.IsEndOfGeneration(tok)) {
        result.finish_reason = "stop";
        break;
      }
      std::string piece = decoder.Push(tok);
      if (!piece.empty() && !on_piece(piece)) {
        result.finish_reason = "cancelled";
        break;
      }
      if (static_cast<int>(cached_.size()) + 1 >= n_ctx) break;
      int32_t t = tok;
      ctx_->Decode(std::span<const int32_t>(&t, 1), logits_.data(), false);
      cached_.push_back(t);
    }
    std::string rest = decoder.Finish();
    if (!rest.empty()) on_piece(rest);
    return result;
  }

 private:
  std::string path_;
  std::unique_ptr<model::Model> model_;
  text::Tokenizer tokenizer_;
  LocalOptions options_;
  std::unique_ptr<model::Context> ctx_;
  std::vector<int32_t> cached_;  // the tokens the KV cache holds, in order
  std::vector<float> logits_;
};

}  // namespace

std::unique_ptr<Backend> MakeLocalBackend(const std::string& model_path,
                                          const LocalOptions& options) {
  return std::make_unique<LocalBackend>(model_path, options);
}

}  // namespace hearth::agent
