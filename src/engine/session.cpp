#include "engine/session.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>

#include "base/error.h"
#include "model/adapters.h"
#include "text/tokenizer.h"

namespace hearth::engine {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

bool Cancelled(const std::atomic<bool>* cancel) {
  return cancel != nullptr && cancel->load(std::memory_order_relaxed);
}

}  // namespace

const char* StopReasonName(StopReason reason) {
  // In the enum's order.
  static constexpr const char* kNames[] = {"length",   "eog",       "stop",
                                           "callback", "cancelled", "context"};
  return kNames[static_cast<int>(reason)];
}

double GenerateStats::prompt_tokens_per_second() const {
  const int decoded = prompt_tokens - reused_tokens;
  return prompt_seconds > 0 ? decoded / prompt_seconds : 0.0;
}

double GenerateStats::generate_tokens_per_second() const {
  return generate_seconds > 0 ? generated_tokens / generate_seconds : 0.0;
}

std::string GenerateStats::Summary() const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "%d prompt tokens (%d reused) at %.1f t/s, %d generated at %.1f t/s, stop: %s",
                prompt_tokens, reused_tokens, prompt_tokens_per_second(), generated_tokens,
                generate_tokens_per_second(), StopReasonName(stop_reason));
  return buf;
}

Session::Session(const model::Model& model, const text::Tokenizer& tokenizer,
                 model::ContextOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      ctx_(model, options),
      logits_(static_cast<size_t>(model.config().n_vocab)) {}

void Session::SetAdapters(std::shared_ptr<const model::AdapterSet> adapters) {
  if (model::AdapterKey(adapters.get()) != model::AdapterKey(ctx_.adapters())) Reset();
  ctx_.SetAdapters(std::move(adapters));
}

void Session::Reset() {
  ctx_.Reset();
  tokens_.clear();
  n_reused_ = 0;
}

std::span<const float> Session::Prefill(std::span<const int32_t> tokens,
                                        const std::atomic<bool>* cancel) {
  if (tokens.empty()) ThrowUsage("empty prompt", "give at least one token");
  if (static_cast<int64_t>(tokens.size()) > ctx_.n_ctx()) {
    throw Error(ErrorClass::kResource,
                "the prompt has " + std::to_string(tokens.size()) +
                    " tokens but the context holds " + std::to_string(ctx_.n_ctx()),
                "use a larger context size or a shorter prompt");
  }
  // Longest common prefix, leaving at least the last token to decode (its logits are needed).
  size_t keep = 0;
  const size_t limit = std::min(tokens_.size(), tokens.size() - 1);
  while (keep < limit && tokens_[keep] == tokens[keep]) ++keep;
  if (!ctx_.Truncate(static_cast<int>(keep))) {
    // A sliding layer's ring has already overwritten what position `keep` needs: start over.
    ctx_.Reset();
    keep = 0;
  }
  tokens_.resize(keep);
  n_reused_ = static_cast<int>(keep);
  // Decode in n_ubatch pieces so that a cancel request is seen between them.
  const size_t step = static_cast<size_t>(std::max(1, ctx_.options().n_ubatch));
  for (size_t pos = keep; pos < tokens.size(); pos += step) {
    if (Cancelled(cancel)) return {};
    const auto piece = tokens.subspan(pos, std::min(step, tokens.size() - pos));
    ctx_.Decode(piece, logits_.data(), false);
    tokens_.insert(tokens_.end(), piece.begin(), piece.end());
  }
  return logits_;
}

std::span<const float> Session::Feed(int32_t token) {
  ctx_.Decode(std::span<const int32_t>(&token, 1), logits_.data(), false);
  tokens_.push_back(token);
  return logits_;
}

GenerateResult Session::Generate(std::span<const int32_t> prompt, const GenerateOptions& options) {
  if (prompt.empty()) ThrowUsage("empty prompt", "give at least one token");
  options.sampling.Validate();
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  const int64_t wanted = n_prompt + std::max(options.max_tokens, 0);
  if (wanted > ctx_.n_ctx() || (options.max_tokens <= 0 && n_prompt >= ctx_.n_ctx())) {
    throw Error(
        ErrorClass::kResource,
        "the prompt (" + std::to_string(n_prompt) + " tokens)" +
            (options.max_tokens > 0 ? " plus " + std::to_string(options.max_tokens) + " new tokens"
                                    : std::string()) +
            " does not fit in the context of " + std::to_string(ctx_.n_ctx()) + " tokens",
        "use a larger context size (-c) or fewer new tokens (-n), or shorten the prompt");
  }

  GenerateResult result;
  GenerateStats& stats = result.stats;
  stats.prompt_tokens = static_cast<int>(n_prompt);

  const auto t0 = Clock::now();
  std::span<const float> logits = Prefill(prompt, options.cancel);
  stats.reused_tokens = n_reused_;
  const auto t1 = Clock::now();
  stats.prompt_seconds = Seconds(t0, t1);
  if (logits.empty()) {
    stats.stop_reason = StopReason::kCancelled;
    return result;
  }

  Sampler sampler(options.sampling);
  // The repetition penalties see the end of the prompt too, as llama.cpp's CLI does.
  const int64_t window = options.sampling.penalty_last_n;
  for (int64_t i = std::max<int64_t>(0, n_prompt - window); i < n_prompt; ++i) {
    sampler.Accept(prompt[static_cast<size_t>(i)]);
  }
  text::StreamDecoder decoder(tokenizer_);
  StopStringMatcher matcher(options.stop);

  // Constrained decoding: every sampled token keeps the output a prefix of an accepted value.
  std::optional<ConstrainedDecoder> constrained;
  if (options.constraint) {
    if (!vocabulary_) vocabulary_ = std::make_shared<const ConstraintVocabulary>(tokenizer_);
    constrained.emplace(options.constraint, *vocabulary_, &stats.constraint_checks);
  }
  bool caller_stopped = false;
  auto emit = [&](const std::string& piece) {
    if (piece.empty() || caller_stopped) return;
    result.text += piece;
    if (options.on_text && !options.on_text(piece)) caller_stopped = true;
  };

  const int max_tokens = options.max_tokens > 0 ? options.max_tokens : ctx_.n_ctx();
  StopReason reason = StopReason::kMaxTokens;
  while (true) {
    if (Cancelled(options.cancel)) {
      reason = StopReason::kCancelled;
      break;
    }
    int32_t token;
    if (constrained) {
      // Keep the value finishable within the tokens left, so that a limited reply still parses.
      const int left = std::min(max_tokens - static_cast<int>(result.tokens.size()),
                                ctx_.n_ctx() - static_cast<int>(tokens_.size()));
      token = constrained->Sample(sampler, logits, left);
    } else {
      token = sampler.Sample(logits);
    }
    if (token < 0) {
      throw Error(ErrorClass::kInvalidInput,
                  "no token of the vocabulary can continue the constrained (JSON) output",
                  "check the schema, or leave out response_format/format");
    }
    sampler.Accept(token);
    ++stats.generated_tokens;
    if (options.stop_at_eog && tokenizer_.IsEndOfGeneration(token)) {
      stats.eog_token = token;
      reason = StopReason::kEndOfGeneration;
      break;
    }
    result.tokens.push_back(token);
    if (constrained) constrained->Accept(token);
    emit(matcher.Feed(decoder.Push(token)));
    if (matcher.stopped()) {
      reason = StopReason::kStopString;
      break;
    }
    if (caller_stopped) {
      reason = StopReason::kCallback;
      break;
    }
    if (constrained && constrained->done()) {
      reason = StopReason::kEndOfGeneration;  // the value is whole: nothing may follow it
      break;
    }
    if (static_cast<int>(result.tokens.size()) >= max_tokens) {
      reason = options.max_tokens > 0 ? StopReason::kMaxTokens : StopReason::kContextFull;
      break;
    }
    if (static_cast<int>(tokens_.size()) >= ctx_.n_ctx()) {
      // Only reachable with max_tokens <= 0: the check above keeps explicit limits inside.
      reason = StopReason::kContextFull;
      break;
    }
    if (Cancelled(options.cancel)) {
      reason = StopReason::kCancelled;  // set while the token was handled: no step for nothing
      break;
    }
    // The sampled token goes into the cache only when another one is wanted after it, so the
    // cache never holds a token the caller did not see.
    logits = Feed(token);
  }
  // Text held back for a possible stop string or an unfinished UTF-8 sequence is final now.
  if (!matcher.stopped() && !caller_stopped) emit(matcher.Feed(decoder.Finish()) + matcher.Flush());
  stats.stop_reason = reason;
  stats.generate_seconds = Seconds(t1, Clock::now());
  return result;
}

}  // namespace hearth::engine
