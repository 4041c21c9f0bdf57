// A generation session: one model Context (its KV cache), the tokenizer, and the loop that turns
// a prompt into streamed text.
//
//   engine::Session session(*model, tokenizer, {.n_ctx = 4096});
//   engine::GenerateOptions opt;
//   opt.max_tokens = 128;
//   opt.on_text = [](std::string_view piece) { std::cout << piece; return true; };
//   engine::GenerateResult r = session.Generate(tokenizer.Encode(prompt, true), opt);
//
// The session remembers which tokens its KV cache holds. A new prompt that starts with some of
// them (the next chat turn, the same system prompt and tools) reuses that prefix and only decodes
// the rest, so turn 2 costs what it adds, not the whole conversation.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/json_constraint.h"
#include "engine/media.h"
#include "engine/prefix_store.h"
#include "engine/sampler.h"
#include "engine/speculative.h"
#include "model/model.h"

namespace hearth::text {
class Tokenizer;
}

namespace hearth::engine {

enum class StopReason {
  kMaxTokens,        // generated max_tokens tokens
  kEndOfGeneration,  // sampled <eos>, <turn|> or <|tool_response>
  kStopString,       // a stop string appeared in the text
  kCallback,         // on_text returned false
  kCancelled,        // the cancel flag was set
  kContextFull,      // no room left in the context (only when max_tokens <= 0)
};
// "length", "eog", "stop", "callback", "cancelled", "context" (stable: the server reports them).
const char* StopReasonName(StopReason reason);

struct GenerateOptions {
  // New tokens at most. <= 0: until the context is full. The prompt plus max_tokens must fit in
  // the context, or Generate throws before doing any work.
  int max_tokens = 256;
  SamplingParams sampling;
  // Stop strings: generation ends when one appears; it and anything after it are never emitted.
  std::vector<std::string> stop;
  // Stop on the tokenizer's end-of-generation set (<eos>, <turn|>, <|tool_response>).
  bool stop_at_eog = true;
  // Receives the text as soon as it is final: whole UTF-8 sequences, never a part of a stop
  // string. Return false to stop (StopReason::kCallback). May be empty.
  std::function<bool(std::string_view)> on_text;
  // Checked between forward steps (prefill chunks and every generated token); set it from a
  // signal handler or another thread to stop promptly. Not reset by Generate. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Constrained decoding: when set, every sampled token keeps the output a prefix of a value the
  // constraint accepts; special tokens are never sampled, end-of-generation only after a
  // complete value, and generation stops (kEndOfGeneration, eog_token -1) as soon as the value
  // cannot be extended. Tokens are also kept such that the value can still be finished in the
  // tokens left (JsonAcceptor::MinBytesToComplete), so a value cut by max_tokens is closed in
  // time rather than left unfinished (only when max_tokens is below the shortest value is it).
  std::shared_ptr<const JsonConstraint> constraint;
  // Draft with the session's draft source (Session::SetSpeculation) when it has one. The output
  // is the same either way (with temperature and sampled drafts: follows the same distribution,
  // speculative.h); false decodes one token per target pass.
  bool speculate = true;
  // When set, a target pass drafts only while this returns true for the output text so far
  // (e.g. prompt lookup only inside a tool call that rewrites a file); other passes decode one
  // token. Null: every pass drafts.
  std::function<bool(std::string_view text)> draft_when;
};

struct GenerateStats {
  int prompt_tokens = 0;     // tokens of the prompt
  int reused_tokens = 0;     // of those, already in the KV cache (not decoded again)
  int generated_tokens = 0;  // sampled tokens (an end-of-generation token counts)
  double prompt_seconds = 0;
  double generate_seconds = 0;  // from the first sampled token to the end
  StopReason stop_reason = StopReason::kMaxTokens;
  int32_t eog_token = -1;         // the end-of-generation token that stopped it, if any
  int64_t constraint_checks = 0;  // tokens tested against the constraint (0 when unconstrained)
  // Speculative decoding (0 without): tokens proposed by the draft source, of those the ones the
  // target agreed with (emitted without a pass of their own), and target passes after prefill.
  int drafted_tokens = 0;
  int accepted_tokens = 0;
  int target_passes = 0;
  std::vector<int> accepted_per_pass;  // drafts accepted in each target pass, in order
  double draft_seconds = 0;            // of generate_seconds, spent drafting

  // Sampled tokens that are part of the output (an end-of-generation token excluded).
  int output_tokens() const { return generated_tokens - (eog_token >= 0 ? 1 : 0); }
  double prompt_tokens_per_second() const;    // decoded (not reused) prompt tokens / second
  double generate_tokens_per_second() const;  // generated tokens / second
  // "12 prompt tokens (8 reused) at 512.3 t/s, 32 generated at 41.0 t/s, stop: eog"
  std::string Summary() const;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // sampled ids, an end-of-generation token excluded
  std::string text;             // exactly what on_text received
  GenerateStats stats;
};

class Session {
 public:
  // `model` and `tokenizer` must outlive the session. Allocates the KV cache (see
  // model::Context: Error(kUsage) for a bad n_ctx, Error(kResource) without memory).
  Session(const model::Model& model, const text::Tokenizer& tokenizer,
          model::ContextOptions options);

  // Generates a continuation of `prompt` (ids, BOS included when wanted). Throws
  // Error(kResource) before any work when prompt + max_tokens exceed the context, and
  // Error(kUsage) for an empty prompt or invalid sampling parameters.
  GenerateResult Generate(std::span<const int32_t> prompt, const GenerateOptions& options);
  // The same for a prompt holding media (media.h): `prompt` has kMediaRow at every media row and
  // `media` says whose rows they are, in order. Speculative decoding is not used for it (the
  // draft sources read token ids). Throws Error(kUsage) when the spans and the kMediaRow
  // entries disagree.
  GenerateResult Generate(std::span<const int32_t> prompt, std::span<const MediaSpan> media,
                          const GenerateOptions& options);

  // Makes the KV cache hold exactly `tokens`, reusing the longest prefix it already holds (at
  // least the last token is always decoded again, for its logits), and returns the last token's
  // logits (valid until the next call). Stops between batches when `cancel` is set (then the
  // returned span is empty and tokens() says what the cache holds).
  std::span<const float> Prefill(std::span<const int32_t> tokens,
                                 const std::atomic<bool>* cancel = nullptr);
  // The same with media: text runs are decoded as tokens, each media chunk as one
  // DecodeEmbeddings call (non-causal where the item says). A cached prefix is reused through a
  // media item only when it is the same item (content hash) at the same position, and never from
  // the middle of a chunk.
  std::span<const float> Prefill(std::span<const int32_t> tokens, std::span<const MediaSpan> media,
                                 const std::atomic<bool>* cancel = nullptr);
  // Appends one token and returns its logits.
  std::span<const float> Feed(int32_t token);
  // Forgets the KV cache contents.
  void Reset();
  // Switches the LoRA adapters / control vectors (null = none). The cache is kept only when the
  // set's key is unchanged: KV computed under other adapters or scales is never reused.
  void SetAdapters(std::shared_ptr<const model::AdapterSet> adapters);
  const model::AdapterSet* adapters() const { return ctx_.adapters(); }
  // Drafts with the first source `options` names from now on (none: plain decoding). The drafter
  // or draft model must outlive the session. Throws Error(kResource) without memory for a draft
  // model's context.
  void SetSpeculation(const SpeculationOptions& options);
  const char* speculation_source() const { return draft_ ? draft_->name() : "none"; }

  // Cross-process prefix reuse (prefix_store.h): a Prefill into an empty cache starts from the
  // store's snapshot where it shares a checkpoint with the prompt and, when the store wants one,
  // hands it the state after the prompt. The output is the same with or without a store. The
  // store must outlive the session; null turns it off.
  void SetPrefixStore(PrefixStore* store) { store_ = store; }
  // Of n_reused(), the tokens the last Prefill took from the prefix store.
  int n_restored() const { return n_restored_; }

  // The tokens whose keys and values the cache holds, in order (kMediaRow for media rows, whose
  // items media() lists).
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const std::vector<MediaSpan>& media() const { return media_; }
  int n_reused() const { return n_reused_; }  // prefix tokens the last Prefill kept
  int n_ctx() const { return ctx_.n_ctx(); }
  const model::Model& model() const { return model_; }
  const text::Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  const model::Model& model_;
  const text::Tokenizer& tokenizer_;
  model::Context ctx_;
  std::vector<int32_t> tokens_;
  std::vector<MediaSpan> media_;  // the media items among tokens_, in order
  std::vector<float> logits_;
  int n_reused_ = 0;
  int n_restored_ = 0;
  PrefixStore* store_ = nullptr;
  // Speculative decoding: the source, tokens per pass, the target's hidden row of the last
  // decoded position (the MTP drafter's input) and the verification pass's rows.
  std::unique_ptr<DraftSource> draft_;
  int max_draft_ = 0;
  bool sample_drafts_ = true;
  std::optional<DraftGovernor> governor_;  // SpeculationOptions::adaptive
  std::vector<float> hidden_, verify_logits_, verify_hidden_;

  // Prefill's start from the prefix store; returns the positions restored and prepares the
  // snapshot to capture (when the store wants one) with its checkpoint positions.
  size_t RestoreFromStore(std::span<const int32_t> tokens, std::unique_ptr<KvSnapshot>* snapshot,
                          std::vector<size_t>* checkpoints);
  // The generation loop with drafting and batched verification (session.cpp).
  struct Loop;
  GenerateResult GenerateSpeculative(std::span<const int32_t> prompt,
                                     const GenerateOptions& options);
  // Every token's bytes and kind, built on the first constrained Generate.
  std::shared_ptr<const ConstraintVocabulary> vocabulary_;
};

}  // namespace hearth::engine
