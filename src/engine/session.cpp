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
  std::string out = buf;
  if (target_passes > 0) {
    std::snprintf(buf, sizeof buf, ", drafted %d, accepted %d, %.2f tokens per pass",
                  drafted_tokens, accepted_tokens,
                  static_cast<double>(generated_tokens) / target_passes);
    out += buf;
  }
  return out;
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
  media_.clear();
  n_reused_ = 0;
}

std::span<const float> Session::Prefill(std::span<const int32_t> tokens,
                                        const std::atomic<bool>* cancel) {
  return Prefill(tokens, {}, cancel);
}

namespace {

// The span holding position `pos` (spans in order, disjoint), or null.
const MediaSpan* SpanAt(std::span<const MediaSpan> spans, size_t pos) {
  auto it = std::upper_bound(spans.begin(), spans.end(), pos, [](size_t p, const MediaSpan& s) {
    return p < static_cast<size_t>(s.pos);
  });
  if (it == spans.begin()) return nullptr;
  --it;
  return pos < static_cast<size_t>(it->pos + it->media->n_rows()) ? &*it : nullptr;
}

// Checks that the spans are in order, inside the prompt, of the model's width, and account for
// exactly the kMediaRow entries.
void CheckMedia(std::span<const int32_t> tokens, std::span<const MediaSpan> media, int n_embd) {
  int64_t rows = 0, end = 0;
  for (const MediaSpan& s : media) {
    if (!s.media || s.pos < end ||
        s.pos + static_cast<int64_t>(s.media->n_rows()) > static_cast<int64_t>(tokens.size())) {
      ThrowUsage("media spans must be in order and inside the prompt");
    }
    if (s.media->n_embd != n_embd) {
      ThrowUsage("a media item of width " + std::to_string(s.media->n_embd) +
                 " does not fit a model of width " + std::to_string(n_embd));
    }
    for (int i = 0; i < s.media->n_rows(); ++i) {
      if (tokens[static_cast<size_t>(s.pos + i)] != kMediaRow) {
        ThrowUsage("a media span covers a token that is not a media row");
      }
    }
    rows += s.media->n_rows();
    end = s.pos + s.media->n_rows();
  }
  if (rows != std::count(tokens.begin(), tokens.end(), kMediaRow)) {
    ThrowUsage("the prompt has media rows that no media span accounts for");
  }
}

}  // namespace

std::span<const float> Session::Prefill(std::span<const int32_t> tokens,
                                        std::span<const MediaSpan> media,
                                        const std::atomic<bool>* cancel) {
  if (tokens.empty()) {
    ThrowUsage("empty prompt", "give at least one token");
  }
  if (static_cast<int64_t>(tokens.size()) > ctx_.n_ctx()) {
    throw Error(ErrorClass::kResource,
                "the prompt has " + std::to_string(tokens.size()) +
                    " tokens but the context holds " + std::to_string(ctx_.n_ctx()),
                "use a larger context size or a shorter prompt");
  }
  CheckMedia(tokens, media, model_.config().n_embd);
  // Longest common prefix, leaving at least the last token to decode (its logits are needed).
  // A media row matches only the same item's same row at the same position.
  auto same = [&](size_t i) {
    if (tokens_[i] != tokens[i]) return false;
    if (tokens[i] != kMediaRow) return true;
    const MediaSpan* a = SpanAt(media_, i);
    const MediaSpan* b = SpanAt(media, i);
    return a && b && a->pos == b->pos && a->media->hash == b->media->hash &&
           a->media->kind == b->media->kind && a->media->n_rows() == b->media->n_rows();
  };
  size_t keep = 0;
  const size_t limit = std::min(tokens_.size(), tokens.size() - 1);
  while (keep < limit && same(keep)) {
    ++keep;
  }
  // Never resume inside a chunk: a chunk is decoded whole (non-causal ones see all of it).
  if (keep < tokens.size() && tokens[keep] == kMediaRow) {
    const MediaSpan* s = SpanAt(media, keep);
    size_t chunk0 = static_cast<size_t>(s->pos);
    for (int rows : s->media->chunks) {
      if (chunk0 + static_cast<size_t>(rows) > keep) break;
      chunk0 += static_cast<size_t>(rows);
    }
    keep = chunk0;
  }
  if (!ctx_.Truncate(static_cast<int>(keep))) {
    // A sliding layer's ring has already overwritten what position `keep` needs: start over.
    ctx_.Reset();
    keep = 0;
  }
  tokens_.resize(keep);
  media_.assign(media.begin(), media.end());
  n_reused_ = static_cast<int>(keep);
  n_restored_ = 0;
  std::unique_ptr<KvSnapshot> snapshot;  // being captured for the store
  std::vector<size_t> checkpoints;       // where to capture the sliding layers, ascending
  // The store keys a snapshot by tokens alone, so prompts holding media never use it.
  if (store_ != nullptr && keep == 0 && media.empty()) {
    keep = RestoreFromStore(tokens, &snapshot, &checkpoints);
  }
  float* hidden = hidden_.empty() ? nullptr : hidden_.data();
  // Decode text in n_ubatch pieces so that a cancel request is seen between them, ending pieces at
  // the checkpoints, and each media chunk in one call.
  const size_t step = static_cast<size_t>(std::max(1, ctx_.options().n_ubatch));
  size_t next = 0;  // index into checkpoints
  for (size_t pos = keep; pos < tokens.size();) {
    if (Cancelled(cancel)) {
      return {};
    }
    if (tokens[pos] == kMediaRow) {
      const MediaSpan* s = SpanAt(media, pos);
      const MediaEmbedding& item = *s->media;
      size_t chunk0 = static_cast<size_t>(s->pos), rows = 0;
      for (int r : item.chunks) {
        rows = static_cast<size_t>(r);
        if (chunk0 + rows > pos) break;
        chunk0 += rows;
      }
      if (item.chunks.empty()) rows = static_cast<size_t>(item.n_rows());
      const size_t offset = (pos - static_cast<size_t>(s->pos)) * static_cast<size_t>(item.n_embd);
      ctx_.DecodeEmbeddings(std::span<const float>(item.rows).subspan(
                                offset, rows * static_cast<size_t>(item.n_embd)),
                            logits_.data(), false, item.non_causal, hidden);
      tokens_.insert(tokens_.end(), rows, kMediaRow);
      pos += rows;
      continue;
    }
    size_t end = std::min(pos + step, tokens.size());
    if (next < checkpoints.size()) end = std::min(end, checkpoints[next]);
    end = static_cast<size_t>(std::find(tokens.begin() + static_cast<std::ptrdiff_t>(pos),
                                        tokens.begin() + static_cast<std::ptrdiff_t>(end),
                                        kMediaRow) -
                              tokens.begin());
    const auto piece = tokens.subspan(pos, end - pos);
    ctx_.Decode(piece, logits_.data(), false, hidden);
    tokens_.insert(tokens_.end(), piece.begin(), piece.end());
    pos = end;
    if (next < checkpoints.size() && pos == checkpoints[next]) {
      snapshot->sliding.emplace_back(static_cast<int>(pos),
                                     ctx_.ExportKv(model::Context::KvPart::kSliding));
      ++next;
    }
  }
  if (snapshot) {
    snapshot->full = ctx_.ExportKv(model::Context::KvPart::kFull);
    store_->Save(*snapshot);
  }
  return logits_;
}

size_t Session::RestoreFromStore(std::span<const int32_t> tokens,
                                 std::unique_ptr<KvSnapshot>* snapshot,
                                 std::vector<size_t>* checkpoints) {
  size_t keep = 0;
  const std::shared_ptr<const KvSnapshot> from = store_->Load();
  if (from) {
    // At least the last token is decoded again: its logits (and hidden state) are needed.
    const int at = from->BestCheckpoint(tokens, tokens.size() - 1);
    const auto it = std::find_if(from->sliding.begin(), from->sliding.end(),
                                 [&](const auto& c) { return c.first == at; });
    if (at > 0 && it != from->sliding.end() && ctx_.ImportKv(at, from->full, it->second)) {
      keep = static_cast<size_t>(at);
      tokens_.assign(tokens.begin(), tokens.begin() + at);
      n_reused_ = n_restored_ = at;
    } else {
      ctx_.Reset();
    }
  }
  if (!store_->WantsSnapshot(tokens.size())) return keep;
  *snapshot = std::make_unique<KvSnapshot>();
  (*snapshot)->tokens.assign(tokens.begin(), tokens.end());
  if (from) {
    // The restored checkpoints stay valid: their positions hold the same tokens.
    for (const auto& [pos, bytes] : from->sliding) {
      if (static_cast<size_t>(pos) <= keep) (*snapshot)->sliding.emplace_back(pos, bytes);
    }
  }
  // Where prompts diverge: each turn start (the same system turn, another question), every 2048
  // positions in a long turn, and before the last token (the same prompt again).
  constexpr size_t kEvery = 2048;
  const std::optional<int32_t> turn = tokenizer_.Find("<|turn>");
  for (size_t p = keep + 1; p < tokens.size(); ++p) {
    if ((turn && tokens[p] == *turn) || p % kEvery == 0 || p + 1 == tokens.size()) {
      checkpoints->push_back(p);
    }
  }
  return keep;
}

std::span<const float> Session::Feed(int32_t token) {
  ctx_.Decode(std::span<const int32_t>(&token, 1), logits_.data(), false,
              hidden_.empty() ? nullptr : hidden_.data());
  tokens_.push_back(token);
  return logits_;
}

// What one Generate call keeps while it runs: the sampler (with the prompt's end for the
// repetition penalties), the text stream, stop strings, the constraint, and the result. The
// plain and the speculative loop both pick and record every token through it, so they emit
// exactly the same tokens.
struct Session::Loop {
  Loop(Session& session, std::span<const int32_t> prompt, const GenerateOptions& opt,
       GenerateResult& r)
      : s(session),
        options(opt),
        result(r),
        sampler(opt.sampling),
        decoder(session.tokenizer_),
        matcher(opt.stop),
        max_tokens(opt.max_tokens > 0 ? opt.max_tokens : session.ctx_.n_ctx()) {
    // The repetition penalties see the end of the prompt too, as llama.cpp's CLI does.
    const int64_t n_prompt = static_cast<int64_t>(prompt.size());
    const int64_t window = opt.sampling.penalty_last_n;
    for (int64_t i = std::max<int64_t>(0, n_prompt - window); i < n_prompt; ++i) {
      if (prompt[static_cast<size_t>(i)] != kMediaRow)
        sampler.Accept(prompt[static_cast<size_t>(i)]);
    }
    // Constrained decoding: every sampled token keeps the output a prefix of an accepted value.
    if (opt.constraint) {
      if (!s.vocabulary_) {
        s.vocabulary_ = std::make_shared<const ConstraintVocabulary>(s.tokenizer_);
      }
      constrained.emplace(opt.constraint, *s.vocabulary_, &r.stats.constraint_checks);
    }
  }

  int32_t Pick(std::span<const float> logits) {
    int32_t token;
    if (constrained) {
      // Keep the value finishable within the tokens left, so that a limited reply still parses.
      const int left = std::min(max_tokens - static_cast<int>(result.tokens.size()),
                                s.ctx_.n_ctx() - static_cast<int>(s.tokens_.size()));
      token = constrained->Sample(sampler, logits, left);
    } else {
      token = sampler.Sample(logits);
    }
    if (token < 0) {
      throw Error(ErrorClass::kInvalidInput,
                  "no token of the vocabulary can continue the constrained (JSON) output",
                  "check the schema, or leave out response_format/format");
    }
    return token;
  }

  void Emit(const std::string& piece) {
    if (piece.empty() || caller_stopped) {
      return;
    }
    result.text += piece;
    if (options.on_text && !options.on_text(piece)) {
      caller_stopped = true;
    }
  }

  // Records a picked token and emits its text; false when generation ends with it (`reason`).
  bool Take(int32_t token) {
    GenerateStats& stats = result.stats;
    sampler.Accept(token);
    ++stats.generated_tokens;
    if (options.stop_at_eog && s.tokenizer_.IsEndOfGeneration(token)) {
      stats.eog_token = token;
      reason = StopReason::kEndOfGeneration;
      return false;
    }
    result.tokens.push_back(token);
    if (constrained) {
      constrained->Accept(token);
    }
    Emit(matcher.Feed(decoder.Push(token)));
    if (matcher.stopped()) {
      reason = StopReason::kStopString;
      return false;
    }
    if (caller_stopped) {
      reason = StopReason::kCallback;
      return false;
    }
    if (constrained && constrained->done()) {
      reason = StopReason::kEndOfGeneration;  // the value is whole: nothing may follow it
      return false;
    }
    if (static_cast<int>(result.tokens.size()) >= max_tokens) {
      reason = options.max_tokens > 0 ? StopReason::kMaxTokens : StopReason::kContextFull;
      return false;
    }
    return true;
  }

  // Text held back for a possible stop string or an unfinished UTF-8 sequence is final now.
  void Finish() {
    if (!matcher.stopped() && !caller_stopped) {
      Emit(matcher.Feed(decoder.Finish()) + matcher.Flush());
    }
    result.stats.stop_reason = reason;
  }

  Session& s;
  const GenerateOptions& options;
  GenerateResult& result;
  Sampler sampler;
  text::StreamDecoder decoder;
  StopStringMatcher matcher;
  std::optional<ConstrainedDecoder> constrained;
  bool caller_stopped = false;
  const int max_tokens;
  StopReason reason = StopReason::kMaxTokens;
};

void Session::SetSpeculation(const SpeculationOptions& options) {
  draft_.reset();
  governor_.reset();
  hidden_.clear();
  if (!options.enabled()) {
    return;
  }
  const model::ModelConfig& c = model_.config();
  if (options.drafter) {
    draft_ = MakeMtpSource(*options.drafter, ctx_);
  } else if (options.draft_model) {
    model::ContextOptions o = ctx_.options();
    o.n_ctx = std::min(o.n_ctx, options.draft_model->config().n_ctx_train);
    o.adapters = nullptr;  // the target's LoRA adapters were validated for the target only
    draft_ = MakeDraftModelSource(*options.draft_model, o);
  } else {
    draft_ = MakeLookupSource(options.lookup);
  }
  sample_drafts_ = options.sample_drafts;
  if (options.adaptive) governor_.emplace();
  const int def = options.drafter || options.draft_model ? 4 : 8;
  // A verification pass must fit in one forward step, or rolling back could find the sliding
  // ring already overwritten.
  max_draft_ = std::clamp(options.max_draft > 0 ? options.max_draft : def, 1,
                          std::max(1, ctx_.options().n_ubatch - 1));
  hidden_.assign(static_cast<size_t>(c.n_embd), 0.0f);
  verify_logits_.assign(static_cast<size_t>(max_draft_ + 1) * c.n_vocab, 0.0f);
  verify_hidden_.assign(static_cast<size_t>(max_draft_ + 1) * c.n_embd, 0.0f);
}

GenerateResult Session::Generate(std::span<const int32_t> prompt, const GenerateOptions& options) {
  return Generate(prompt, {}, options);
}

GenerateResult Session::Generate(std::span<const int32_t> prompt, std::span<const MediaSpan> media,
                                 const GenerateOptions& options) {
  if (prompt.empty()) {
    ThrowUsage("empty prompt", "give at least one token");
  }
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
  if (draft_ && options.speculate && media.empty()) {
    return GenerateSpeculative(prompt, options);
  }

  GenerateResult result;
  GenerateStats& stats = result.stats;
  stats.prompt_tokens = static_cast<int>(n_prompt);

  const auto t0 = Clock::now();
  std::span<const float> logits = Prefill(prompt, media, options.cancel);
  stats.reused_tokens = n_reused_;
  const auto t1 = Clock::now();
  stats.prompt_seconds = Seconds(t0, t1);
  if (logits.empty()) {
    stats.stop_reason = StopReason::kCancelled;
    return result;
  }

  Loop loop(*this, prompt, options, result);
  while (true) {
    if (Cancelled(options.cancel)) {
      loop.reason = StopReason::kCancelled;
      break;
    }
    if (!loop.Take(loop.Pick(logits))) {
      break;
    }
    if (static_cast<int>(tokens_.size()) >= ctx_.n_ctx()) {
      // Only reachable with max_tokens <= 0: the check above keeps explicit limits inside.
      loop.reason = StopReason::kContextFull;
      break;
    }
    if (Cancelled(options.cancel)) {
      loop.reason = StopReason::kCancelled;  // set while the token was handled: no step for nothing
      break;
    }
    // The sampled token goes into the cache only when another one is wanted after it, so the
    // cache never holds a token the caller did not see.
    logits = Feed(result.tokens.back());
  }
  loop.Finish();
  stats.generate_seconds = Seconds(t1, Clock::now());
  return result;
}

// Speculative decoding (gemma4-mtp.md §5, as llama-speculative-simple): the prompt's last token
// is held back as the pending token; each pass drafts k tokens after it, runs [pending, drafts]
// through the target in one batch, picks tokens from the rows in order while they agree with
// the drafts, and cuts the cache back to the tokens that were kept. Every emitted token is
// picked from the target's own logits, so the output is that of the plain loop (greedy, exact
// matching) or follows its distribution (speculative sampling, speculative.h).
GenerateResult Session::GenerateSpeculative(std::span<const int32_t> prompt,
                                            const GenerateOptions& options) {
  GenerateResult result;
  GenerateStats& stats = result.stats;
  stats.prompt_tokens = static_cast<int>(prompt.size());
  const auto t0 = Clock::now();
  if (prompt.size() > 1) {
    if (Prefill(prompt.first(prompt.size() - 1), options.cancel).empty()) {
      stats.stop_reason = StopReason::kCancelled;
      return result;
    }
  } else {
    Reset();
  }
  stats.reused_tokens = n_reused_;
  const auto t1 = Clock::now();
  stats.prompt_seconds = Seconds(t0, t1);

  Loop loop(*this, prompt, options, result);
  const model::ModelConfig& c = model_.config();
  int32_t pending = prompt.back();
  std::vector<int32_t> drafts, batch;
  // Speculative sampling (speculative.h): drafts drawn from the source's own distribution q by a
  // sampler of their own (the caller's chain without the repetition penalties, another stream),
  // kept by the rule of KeepOrResample. Constrained output keeps exact matching: its
  // distribution is the filtered one, which the rule would have to see as a whole.
  std::optional<Sampler> draft_sampler;
  if (sample_drafts_ && options.sampling.temperature > 0 && !options.constraint) {
    SamplingParams q = options.sampling;
    q.repeat_penalty = 1.0f;
    q.presence_penalty = q.frequency_penalty = 0.0f;
    q.seed ^= 0x9E3779B97F4A7C15ull;
    draft_sampler.emplace(q);
  }
  std::vector<std::vector<TokenProb>> q_dists;
  std::vector<TokenProb> p_dist, residual;
  // Row `row` decides draft x (drawn from `q`): x with probability min(1, p(x)/q(x)), else a
  // draw from norm(max(0, p - q)) (p itself if rounding left that empty).
  auto keep_or_resample = [&](std::span<const float> row, int32_t x,
                              std::vector<TokenProb>& q) -> int32_t {
    loop.sampler.Distribution(row, p_dist);
    auto prob = [](const std::vector<TokenProb>& d, int32_t id) {
      for (const TokenProb& t : d) {
        if (t.id == id) return t.p;
      }
      return 0.0f;
    };
    const float px = prob(p_dist, x);
    const float qx = prob(q, x);
    if (loop.sampler.Uniform() * qx < px) {
      return x;
    }
    std::sort(q.begin(), q.end(),
              [](const TokenProb& a, const TokenProb& b) { return a.id < b.id; });
    residual.clear();
    for (const TokenProb& t : p_dist) {
      const auto it = std::lower_bound(q.begin(), q.end(), t.id,
                                       [](const TokenProb& a, int32_t id) { return a.id < id; });
      const float r = t.p - (it != q.end() && it->id == t.id ? it->p : 0.0f);
      if (r > 0.0f) {
        residual.push_back({t.id, r});
      }
    }
    return loop.sampler.Draw(residual.empty() ? p_dist : residual);
  };
  while (true) {
    if (Cancelled(options.cancel)) {
      loop.reason = StopReason::kCancelled;
      break;
    }
    const int room = ctx_.n_ctx() - static_cast<int>(tokens_.size());
    if (room < 1) {
      loop.reason = StopReason::kContextFull;
      break;
    }
    const int left = loop.max_tokens - static_cast<int>(result.tokens.size());
    const int k = std::min({max_draft_, room - 1, left - 1});
    drafts.clear();
    bool have_q = false;
    const auto pass_start = Clock::now();
    if (k > 0 && (!options.draft_when || options.draft_when(result.text)) &&
        (!governor_ || governor_->ShouldDraft())) {
      const DraftInput in{tokens_, pending, tokens_.empty() ? nullptr : hidden_.data()};
      const auto draft_start = Clock::now();
      if (draft_sampler) {
        have_q = draft_->DraftSampled(in, k, *draft_sampler, drafts, q_dists);
      } else {
        draft_->Draft(in, k, drafts);
      }
      stats.draft_seconds += Seconds(draft_start, Clock::now());
      if (static_cast<int>(drafts.size()) > k) {
        drafts.resize(static_cast<size_t>(k));
      }
    }
    batch.assign(1, pending);
    batch.insert(batch.end(), drafts.begin(), drafts.end());
    const int base = static_cast<int>(tokens_.size());
    ctx_.Decode(batch, verify_logits_.data(), true, verify_hidden_.data());
    tokens_.insert(tokens_.end(), batch.begin(), batch.end());
    ++stats.target_passes;
    stats.drafted_tokens += static_cast<int>(drafts.size());

    // Row i holds the logits after batch[0..i]; drafts[i] is batch[i + 1].
    int accepted = 0;
    bool go_on = true;
    for (size_t i = 0; i <= drafts.size(); ++i) {
      const std::span<const float> row(&verify_logits_[i * c.n_vocab], c.n_vocab);
      const int32_t token = have_q && i < drafts.size()
                                ? keep_or_resample(row, drafts[i], q_dists[i])
                                : loop.Pick(row);
      go_on = loop.Take(token);
      if (!go_on) {
        break;
      }
      if (i < drafts.size() && token == drafts[i]) {
        ++accepted;
        continue;
      }
      pending = token;
      break;
    }
    stats.accepted_tokens += accepted;
    stats.accepted_per_pass.push_back(accepted);
    if (governor_) {
      const double seconds = Seconds(pass_start, Clock::now());
      if (drafts.empty()) {
        governor_->OnPlainStep(seconds);
      } else {
        governor_->OnSpeculativePass(accepted + 1, seconds);
      }
    }
    // Keep pending and the accepted drafts; the hidden row of the last kept one feeds the next
    // draft.
    const int keep = base + 1 + accepted;
    std::copy_n(&verify_hidden_[static_cast<size_t>(accepted) * c.n_embd], c.n_embd,
                hidden_.begin());
    if (!ctx_.Truncate(keep)) {
      // Cannot happen while a pass fits in one step (SetSpeculation); stay correct regardless.
      const std::vector<int32_t> kept(tokens_.begin(), tokens_.begin() + keep);
      Reset();
      ctx_.Decode(kept, logits_.data(), false, hidden_.data());
      tokens_ = kept;
    } else {
      tokens_.resize(static_cast<size_t>(keep));
    }
    if (!go_on) {
      break;
    }
  }
  loop.Finish();
  stats.generate_seconds = Seconds(t1, Clock::now());
  return result;
}

}  // namespace hearth::engine
