// `hearth logits -m MODEL.gguf --tokens ID,ID,... --out FILE [--incremental] [--precise] [-t N]
//  [--lora FILE[:SCALE]]... [--control-vector FILE[:STRENGTH]]...`:
// the logits (after the final soft-cap) of every position as little-endian float32, row-major
// [n_tokens][n_vocab], nothing else in the file. Other tools compare hearth with llama.cpp
// through this exact form.
//
// With `--chat CHAT.json [--mmproj PROJ]` the input is a conversation instead (render-chat's
// input JSON: messages, tools, add_generation_prompt, enable_thinking), rendered with the
// official template; content parts {"type":"image","path":F,"image_tokens":N} and
// {"type":"audio","path":F} are encoded with the projector and
// placed in the prompt as llama.cpp's mtmd does (engine/media.h), and the file holds the logits
// of every position, media rows included. The token layout goes to stderr as JSON.
//
// With `--draft DRAFTER.gguf` the file holds the MTP drafter's step-0 logits instead (no
// soft-cap), in ../shared/fixtures/mtp/README.md's row convention: row r is the draft at position
// r + 1 — input token x_{r+1}, the target's hidden row r, the target's keys 0..r — and the last
// row is the draft after the whole sequence, whose input token is the target's own greedy token.
#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "cli/adapter_flags.h"
#include "cli/cache_type_flags.h"
#include "cli/commands.h"
#include "cli/input.h"
#include "cli/media_flags.h"
#include "cli/model_flag.h"
#include "engine/loaded_model.h"
#include "engine/media.h"
#include "model/adapters.h"
#include "model/drafter.h"
#include "model/model.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace hearth::cli {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the logits file is little-endian float32; add a byte swap for this platform");

struct LogitsOptions {
  std::string model_path;
  std::string tokens;
  std::string out_path;
  std::string draft_path;
  std::string chat;  // --chat CHAT.json
  MediaFlags media;
  bool incremental = false;
  bool precise = false;
  int threads = 0;
  AdapterFlags adapters;
  CacheTypeFlags cache_type;  // --cache-type (not with --precise)
};

std::vector<int32_t> ParseTokens(const std::string& text) {
  std::vector<int32_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    int32_t v = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || v < 0) {
      ThrowUsage("--tokens: '" + item + "' (item " + std::to_string(out.size() + 1) +
                     ") is not a token id",
                 "give non-negative integers separated by commas, e.g. --tokens 2,1946,3205");
    }
    out.push_back(v);
    start = end + 1;
  }
  return out;
}

int ArgMax(const float* v, int n) {
  return static_cast<int>(std::max_element(v, v + n) - v);  // the lowest id wins ties
}

// The drafter's step-0 logits at every position (see the file comment). The target runs in
// n_ubatch pieces; after each, the drafts whose keys are all cached are computed, so the sliding
// ring never has to hold more than one piece's worth.
std::vector<float> DrafterLogits(const model::Model& target, const model::Drafter& drafter,
                                 const std::vector<int32_t>& tokens, model::Context& ctx) {
  const int V = target.config().n_vocab, B = target.config().n_embd;
  const int64_t n = static_cast<int64_t>(tokens.size());
  std::vector<float> out(static_cast<size_t>(n) * V);
  std::vector<float> logits(static_cast<size_t>(ctx.options().n_ubatch) * V);
  std::vector<float> hidden(static_cast<size_t>(ctx.options().n_ubatch) * B);
  model::DrafterContext dctx(drafter, ctx);
  for (int64_t done = 0; done < n;) {
    const int64_t step = std::min<int64_t>(ctx.options().n_ubatch, n - done);
    ctx.Decode(std::span<const int32_t>(&tokens[done], step), logits.data(), true, hidden.data());
    for (int64_t i = 0; i < step; ++i) {
      const int64_t r = done + i;  // row r: position r + 1 from the hidden row r
      const int32_t next = r + 1 < n ? tokens[r + 1] : ArgMax(&logits[i * V], V);
      dctx.Step(next, static_cast<int>(r + 1), &hidden[i * B], &out[r * V], nullptr);
    }
    done += step;
  }
  return out;
}

// --chat: the conversation rendered and tokenized with its media (engine/media.h).
struct ChatPrompt {
  std::vector<int32_t> tokens;
  std::vector<engine::MediaSpan> media;
};

ChatPrompt RenderChatPrompt(const LogitsOptions& opt, const model::Model& model, int threads) {
  nlohmann::ordered_json inputs =
      nlohmann::ordered_json::parse(ReadInput(opt.chat), nullptr, false);
  if (inputs.is_discarded() || !inputs.is_object()) {
    ThrowInvalidInput("'" + opt.chat + "' is not a JSON object",
                      "give {messages, tools, add_generation_prompt, enable_thinking}");
  }
  const text::Tokenizer tokenizer = text::Tokenizer::FromGguf(model.file());
  std::vector<engine::MediaPtr> items;
  if (!engine::MediaParts(inputs.value("messages", nlohmann::ordered_json())).empty()) {
    const auto projector = OpenProjector(opt.media.mmproj, opt.model_path, model.config(), threads);
    items = projector->EncodeParts(inputs["messages"], {.allow_paths = true});
  }
  const std::string prompt = text::RenderChat(inputs);
  ChatPrompt out;
  out.tokens = engine::EncodeWithMedia(prompt, items, tokenizer, &out.media);
  // The layout on stderr: what a comparison with a reference needs besides the logits.
  nlohmann::json layout = {{"n_pos", out.tokens.size()}, {"tokens", out.tokens}};
  nlohmann::json spans = nlohmann::json::array();
  for (const engine::MediaSpan& s : out.media) {
    spans.push_back({{"kind", engine::MediaKindName(s.media->kind)},
                     {"pos", s.pos},
                     {"rows", s.media->n_rows()},
                     {"chunks", s.media->chunks},
                     {"non_causal", s.media->non_causal}});
  }
  layout["media"] = std::move(spans);
  std::fprintf(stderr, "%s\n", layout.dump().c_str());
  return out;
}

void RunLogits(const LogitsOptions& opt) {
  if (opt.tokens.empty() == opt.chat.empty()) ThrowUsage("give one of --tokens or --chat");
  if (!opt.chat.empty() && (opt.incremental || !opt.draft_path.empty())) {
    ThrowUsage("--chat cannot be combined with --incremental or --draft");
  }
  const engine::AdapterRequest adapters = opt.adapters.Request();
  opt.cache_type.CheckPrecise(opt.precise);
  // The weights alone: the input is token ids (or --chat's conversation, tokenized from the same
  // parse of the file).
  auto model = model::Model::Load(opt.model_path);
  const model::ModelConfig& c = model->config();
  const int threads = opt.threads > 0 ? opt.threads : engine::DefaultThreads();
  ChatPrompt chat;
  if (!opt.chat.empty()) chat = RenderChatPrompt(opt, *model, threads);
  const std::vector<int32_t> tokens = opt.chat.empty() ? ParseTokens(opt.tokens) : chat.tokens;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n > c.n_ctx_train) {
    throw Error(ErrorClass::kResource,
                std::to_string(n) + " tokens exceed the model's maximum context of " +
                    std::to_string(c.n_ctx_train),
                "give fewer tokens");
  }
  model::ContextOptions copt;
  copt.n_ctx = static_cast<int>(n);
  copt.n_ubatch = static_cast<int>(std::min<int64_t>(n, 512));
  // Each media chunk is one forward step, as in the references (n_ubatch 2048 there).
  for (const engine::MediaSpan& s : chat.media) {
    for (int rows : s.media->chunks) copt.n_ubatch = std::max(copt.n_ubatch, rows);
  }
  copt.n_threads = threads;
  copt.precise = opt.precise;
  copt.cache_type_k = opt.cache_type.k;
  copt.cache_type_v = opt.cache_type.v;
  copt.adapters = model::AdapterSet::Load(*model, adapters.loras, adapters.cvecs);
  std::unique_ptr<model::Drafter> drafter;
  if (!opt.draft_path.empty()) {
    if (opt.incremental) ThrowUsage("--incremental and --draft cannot be combined");
    drafter = model::Drafter::Load(opt.draft_path);
    drafter->CheckTarget(c, &model->file());
  }
  model::Context ctx(*model, copt);

  std::vector<float> logits;
  if (!opt.chat.empty()) {
    logits.resize(static_cast<size_t>(n) * c.n_vocab);
    engine::DecodePromptLogits(ctx, tokens, chat.media, logits.data());
  } else if (drafter) {
    logits = DrafterLogits(*model, *drafter, tokens, ctx);
  } else if (opt.incremental) {
    logits.resize(static_cast<size_t>(n) * c.n_vocab);
    for (int64_t i = 0; i < n; ++i) {
      ctx.Decode(std::span<const int32_t>(&tokens[i], 1), &logits[i * c.n_vocab], true);
    }
  } else {
    logits.resize(static_cast<size_t>(n) * c.n_vocab);
    ctx.Decode(tokens, logits.data(), true);
  }

  WriteFloats(opt.out_path, logits);
}

}  // namespace

void RegisterLogitsCommand(CLI::App& app);
HEARTH_COMMAND(logits, RegisterLogitsCommand);

void RegisterLogitsCommand(CLI::App& app) {
  auto opt = std::make_shared<LogitsOptions>();
  CLI::App* cmd = app.add_subcommand(
      "logits",
      "Run a model over token ids and write the logits of every position to a file\n"
      "(little-endian float32, row-major [n_tokens][n_vocab], after the final soft-cap)");
  AddModelFlag(cmd, opt->model_path, "A Gemma 4 model");
  cmd->add_option("--tokens", opt->tokens, "Token ids separated by commas, e.g. 2,1946,3205");
  cmd->add_option("--chat", opt->chat,
                  "Instead of --tokens: a conversation as JSON (render-chat's input; - for "
                  "stdin), rendered with the official template; {\"type\":\"image\",\"path\":F,"
                  "\"image_tokens\":N} and {\"type\":\"audio\",\"path\":F} content parts go "
                  "through the projector (--mmproj). The token layout goes to stderr as JSON");
  AddMmprojFlag(cmd, &opt->media);
  cmd->add_option("--out", opt->out_path, "Output file for the logits")->required();
  cmd->add_option("--draft", opt->draft_path,
                  "An MTP drafter (gemma4-assistant .gguf) for the model: write its step-0 logits "
                  "instead (row r = draft position r+1; the last row after the model's own "
                  "greedy token)");
  cmd->add_flag("--incremental", opt->incremental,
                "Feed one token at a time (the decode path) instead of one batch (prefill)");
  cmd->add_flag("--precise", opt->precise,
                "Reference mode: F32 activations in every dot product, exact tanh GELU, F32 KV "
                "cache (default: llama.cpp-like fast path, F16 KV cache)");
  cmd->add_option("-t,--threads", opt->threads,
                  "Worker threads (default: one per physical core, at most " +
                      std::to_string(engine::kMaxDefaultThreads) + ")")
      ->check(CLI::Range(1, 1024));
  AddAdapterFlags(cmd, &opt->adapters);
  AddCacheTypeFlags(cmd, &opt->cache_type);
  cmd->callback([opt] {
    opt->model_path = ModelPath(opt->model_path, &opt->adapters);
    RunLogits(*opt);
  });
}

}  // namespace hearth::cli
