#include "engine/session.h"

#include <algorithm>
#include <bitset>
#include <chrono>
#include <cstdio>
#include <optional>

#include "base/error.h"
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

struct Session::TokenTable {
  enum Kind : uint8_t { kText, kForbidden, kEog, kGemmaQuote };
  std::string bytes;              // every token's text, back to back
  std::vector<uint32_t> offsets;  // token i: bytes[offsets[i], offsets[i + 1])
  std::vector<uint8_t> kind;
  // First byte, second byte << 8, and bit 16 when there is a second byte: what the sampler's
  // quick test reads for every candidate, kept small so the pass over 262k tokens stays in cache.
  std::vector<uint32_t> lead;

  explicit TokenTable(const text::Tokenizer& tok) {
    const int32_t n = tok.size();
    offsets.reserve(static_cast<size_t>(n) + 1);
    kind.reserve(static_cast<size_t>(n));
    for (int32_t id = 0; id < n; ++id) {
      offsets.push_back(static_cast<uint32_t>(bytes.size()));
      const text::TokenType type = tok.Type(id);
      uint8_t k = kText;
      if (tok.IsEndOfGeneration(id)) {
        k = kEog;
      } else if (type == text::TokenType::kNormal || type == text::TokenType::kByte) {
        const std::string_view piece = tok.Piece(id);
        if (piece.empty()) k = kForbidden;  // no progress: could repeat forever
        bytes.append(piece);
      } else if (type == text::TokenType::kUserDefined && tok.Piece(id) == "<|\"|>") {
        k = kGemmaQuote;  // the string marker of Gemma's tool-call notation
        bytes.append(tok.Piece(id));
      } else {
        k = kForbidden;  // control and other special tokens never appear in constrained output
      }
      kind.push_back(k);
    }
    offsets.push_back(static_cast<uint32_t>(bytes.size()));
    lead.resize(static_cast<size_t>(n));
    for (int32_t id = 0; id < n; ++id) {
      const std::string_view t = Text(id);
      uint32_t v = 0;
      if (!t.empty()) v = static_cast<uint8_t>(t[0]);
      if (t.size() > 1) v |= (static_cast<uint32_t>(static_cast<uint8_t>(t[1])) << 8) | (1u << 16);
      lead[static_cast<size_t>(id)] = v;
    }
  }
  std::string_view Text(int id) const {
    const size_t i = static_cast<size_t>(id);
    return std::string_view(bytes).substr(offsets[i], offsets[i + 1] - offsets[i]);
  }
};

const char* StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kMaxTokens:
      return "length";
    case StopReason::kEndOfGeneration:
      return "eog";
    case StopReason::kStopString:
      return "stop";
    case StopReason::kCallback:
      return "callback";
    case StopReason::kCancelled:
      return "cancelled";
    case StopReason::kContextFull:
      return "context";
  }
  return "?";
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

  // Constrained decoding: the acceptor follows the output; the filter tries a token's text on a
  // scratch copy of it.
  std::optional<JsonAcceptor> acceptor;
  if (options.constraint) {
    if (!token_table_) token_table_ = std::make_shared<const TokenTable>(tokenizer_);
    acceptor.emplace(options.constraint);
  }
  class Filter final : public TokenFilter {
   public:
    Filter(const TokenTable& table, const JsonAcceptor& acceptor, JsonDialect dialect,
           int64_t* checks)
        : table_(table),
          acceptor_(acceptor),
          scratch_(acceptor),
          dialect_(dialect),
          checks_(checks) {}
    bool Allowed(int id) override {
      if (id < 0 || static_cast<size_t>(id) >= table_.kind.size()) return false;
      ++*checks_;
      switch (table_.kind[static_cast<size_t>(id)]) {
        case TokenTable::kEog:
          return acceptor_.complete();
        case TokenTable::kForbidden:
          return false;
        case TokenTable::kGemmaQuote:
          if (dialect_ != JsonDialect::kGemmaToolArgs) return false;
          break;
        default:
          break;
      }
      scratch_ = acceptor_;
      if (!scratch_.Push(table_.Text(id))) return false;
      // Only tokens after which the value can still be finished in the tokens left (each token
      // adds at least one byte): near the limit this steers to a close.
      return budget < 0 || scratch_.MinBytesToComplete() <= budget;
    }
    bool QuickReject(int id) override {
      if (id < 0 || static_cast<size_t>(id) >= table_.kind.size()) return true;
      const uint8_t kind = table_.kind[static_cast<size_t>(id)];
      if (kind == TokenTable::kForbidden) return true;
      if (kind == TokenTable::kEog) return !acceptor_.complete();
      if (!first_ready_) {
        // Which bytes may come next: 256 one-byte tries, then one lookup per token.
        for (int b = 0; b < 256; ++b) {
          scratch_ = acceptor_;
          first_ok_[static_cast<size_t>(b)] = scratch_.Push(static_cast<uint8_t>(b));
        }
        first_ready_ = true;
        rows_ready_.reset();
      }
      const uint32_t lead = table_.lead[static_cast<size_t>(id)];
      const auto b0 = static_cast<uint8_t>(lead);
      if (!first_ok_[b0]) return true;
      if ((lead >> 16) == 0) return false;
      if (!rows_ready_[b0]) {
        // And which byte pairs starting with b0 (computed for the first bytes that occur).
        JsonAcceptor after_b0 = acceptor_;
        after_b0.Push(b0);
        for (int b = 0; b < 256; ++b) {
          scratch_ = after_b0;
          pair_ok_[b0 * 256u + static_cast<unsigned>(b)] = scratch_.Push(static_cast<uint8_t>(b));
        }
        rows_ready_[b0] = true;
      }
      return !pair_ok_[b0 * 256u + ((lead >> 8) & 0xFF)];
    }
    // Call after the acceptor moved on.
    void NewStep() { first_ready_ = false; }
    int budget = -1;  // >= 0: tokens left after this one

   private:
    const TokenTable& table_;
    const JsonAcceptor& acceptor_;
    JsonAcceptor scratch_;
    JsonDialect dialect_;
    int64_t* checks_;
    std::bitset<256> first_ok_;
    std::bitset<256> rows_ready_;
    std::bitset<65536> pair_ok_;
    bool first_ready_ = false;
  };
  std::optional<Filter> filter;
  if (acceptor) {
    filter.emplace(*token_table_, *acceptor, options.constraint->dialect(),
                   &stats.constraint_checks);
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
    if (filter) {
      // Keep the value finishable within the tokens left, so that a limited reply still parses.
      const int left = std::min(max_tokens - static_cast<int>(result.tokens.size()),
                                ctx_.n_ctx() - static_cast<int>(tokens_.size()));
      filter->budget = left - 1;
      filter->NewStep();
      token = sampler.Sample(logits, &*filter);
      if (token < 0 && filter->budget >= 0) {
        filter->budget = -1;  // too few tokens for any complete value: at least stay valid
        token = sampler.Sample(logits, &*filter);
      }
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
    if (acceptor && !acceptor->Push(token_table_->Text(token))) {
      throw Error(ErrorClass::kInternal, "constrained decoding sampled a token it does not accept");
    }
    emit(matcher.Feed(decoder.Push(token)));
    if (matcher.stopped()) {
      reason = StopReason::kStopString;
      break;
    }
    if (caller_stopped) {
      reason = StopReason::kCallback;
      break;
    }
    if (acceptor && acceptor->complete() && !acceptor->can_continue()) {
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
