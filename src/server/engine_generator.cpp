// The real Generator: the Gemma 4 chat template renders the request, the engine generates in one
// Session per slot (so each slot keeps its KV cache and reuses the prompt prefix of its last
// request), and the incremental output parser splits the text into content, reasoning and tool
// calls as it streams.
#include <algorithm>
#include <filesystem>
#include <map>

#include "base/error.h"
#include "engine/loaded_model.h"
#include "engine/media.h"
#include "engine/session.h"
#include "gguf/gguf.h"
#include "server/generator.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace hearth::server {
namespace {

std::string ParameterSize(uint64_t n) {
  char buf[32];
  if (n >= 1000000000ull) {
    std::snprintf(buf, sizeof buf, "%.1fB", static_cast<double>(n) / 1e9);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(n) / 1e6);
  }
  return buf;
}

class EngineGenerator final : public Generator {
 public:
  explicit EngineGenerator(const EngineOptions& opt)
      : lm_(engine::LoadedModel::Open(opt.model_path)) {
    const model::ModelConfig& c = lm_->config();
    if (opt.no_spec) {
      lm_->DisableSpeculation();
    } else {
      if (!opt.draft_path.empty()) lm_->AttachDrafter(opt.draft_path);
      if (opt.lookup > 0) lm_->SetLookup(opt.lookup);
    }
    model::ContextOptions copt = lm_->Context({.n_ctx = opt.n_ctx, .n_threads = opt.n_threads});
    if (opt.n_slots < 1 || opt.n_slots > 64) {
      ThrowUsage("--parallel " + std::to_string(opt.n_slots) + " is out of range", "use 1 to 64");
    }
    // Slots share the cores: each gets its part, so N busy slots do not oversubscribe.
    if (opt.n_threads <= 0) copt.n_threads = std::max(1, engine::DefaultThreads() / opt.n_slots);
    for (int i = 0; i < opt.n_slots; ++i) {
      sessions_.push_back(std::make_unique<engine::Session>(lm_->model(), lm_->tokenizer(), copt));
      sessions_.back()->SetSpeculation(lm_->speculation());
    }
    const int n_ctx = copt.n_ctx;
    // The projector for image and audio parts: the one given, else one next to the model (a file
    // there that does not fit the model is an error, as a given one is).
    const std::string mmproj =
        opt.mmproj.empty() ? engine::FindProjector(opt.model_path) : opt.mmproj;
    if (!mmproj.empty()) {
      projector_ = engine::Projector::Open(mmproj, c, std::max(1, engine::DefaultThreads()));
    }

    // What the model list endpoints show.
    const std::filesystem::path path(opt.model_path);
    info_.name = path.stem().string();
    std::transform(info_.name.begin(), info_.name.end(), info_.name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (!opt.alias.empty()) info_.name = opt.alias;
    std::error_code ec;
    info_.size_bytes = std::filesystem::file_size(path, ec);
    const gguf::File& file = lm_->file();
    uint64_t params = 0;
    std::map<std::string, uint64_t> bytes_by_type;
    for (const auto& t : file.tensors()) {
      params += static_cast<uint64_t>(t.n_elements());
      bytes_by_type[gguf::TensorTypeName(t.type_id)] += t.n_bytes;
    }
    info_.parameter_size = ParameterSize(params);
    // The type holding most bytes names the quantization (as "Q8_0" for a Q8_0 file).
    uint64_t best = 0;
    for (const auto& [type, bytes] : bytes_by_type) {
      if (bytes > best) best = bytes, info_.quantization = type;
    }
    info_.context_length = c.n_ctx_train;
    info_.slot_context = n_ctx;
    const auto mtime = std::filesystem::last_write_time(path, ec).time_since_epoch().count();
    char digest[64];
    std::snprintf(digest, sizeof digest, "%016llx%016llx",
                  static_cast<unsigned long long>(info_.size_bytes),
                  static_cast<unsigned long long>(mtime));
    info_.digest = digest;
  }

  const ModelInfo& info() const override { return info_; }
  int n_slots() const override { return static_cast<int>(sessions_.size()); }

  PreparedPrompt Prepare(const GenerationRequest& r) const override {
    PreparedPrompt p;
    const int slot_ctx = info_.slot_context;
    p.context_limit = slot_ctx;
    if (r.num_ctx > 0) {
      if (r.num_ctx > slot_ctx) {
        throw Error(
            ErrorClass::kResource,
            "options.num_ctx " + std::to_string(r.num_ctx) +
                " is larger than the server's context of " + std::to_string(slot_ctx) +
                " positions per slot",
            "restart hearth serve with -c " + std::to_string(r.num_ctx) + " or ask for less");
      }
      p.context_limit = r.num_ctx;
    }
    if (r.raw) {
      p.tokens = lm_->tokenizer().Encode(r.prompt, lm_->add_bos());
      p.constraint = r.format;
    } else {
      engine::TurnRequest turn;
      turn.messages = r.messages;
      turn.tools = r.tools;
      turn.thinking = r.think;
      turn.tool_choice = r.tool_choice;
      turn.parallel_tool_calls = r.parallel_tool_calls;
      turn.chat_template = lm_->chat_template();
      turn.format = r.format;
      if (!engine::MediaParts(r.messages).empty()) {
        // Encoded here, before a slot is taken (the projector keeps recent items by content
        // hash, so a follow-up about the same clip is not encoded again). Never from a path.
        if (!projector_) {
          ThrowInvalidInput(
              "this model has no multimodal projector, so it takes no images or audio",
              "start hearth serve with --mmproj FILE or put the mmproj*.gguf next "
              "to the model (audio: Gemma 4 E2B or E4B)");
        }
        turn.media = projector_->EncodeParts(r.messages, {.allow_paths = false});
      }
      p.turn = engine::PrepareTurn(turn, &lm_->tokenizer());
      p.tokens = p.turn.tokens;
    }
    // The prompt plus at least one new token must fit; never cut the prompt silently.
    if (static_cast<int>(p.tokens.size()) >= p.context_limit) {
      throw Error(ErrorClass::kResource,
                  "the prompt has " + std::to_string(p.tokens.size()) +
                      " tokens but the context holds " + std::to_string(p.context_limit),
                  "shorten the conversation or use a larger context (-c, options.num_ctx)");
    }
    return p;
  }

  int CachedPrefix(int slot, const PreparedPrompt& prompt) const override {
    const auto& held = sessions_.at(static_cast<size_t>(slot))->tokens();
    const size_t n = std::min(held.size(), prompt.tokens.size());
    size_t k = 0;
    while (k < n && held[k] == prompt.tokens[k]) ++k;
    return static_cast<int>(k);
  }

  GenerationResult Generate(int slot, const GenerationRequest& r, const PreparedPrompt& p,
                            const std::function<void(const text::ParseDelta&)>& on_delta,
                            const std::atomic<bool>& cancel) override {
    engine::Session& session = *sessions_.at(static_cast<size_t>(slot));
    engine::GenerateOptions gopt;
    const int room = p.context_limit - static_cast<int>(p.tokens.size());
    gopt.max_tokens = r.max_tokens > 0 ? std::min(r.max_tokens, room) : room;
    gopt.sampling = r.sampling;
    gopt.stop = r.stop;
    gopt.cancel = &cancel;
    GenerationResult result;
    engine::ChatReply reply;
    if (r.raw) {
      // No template, no parser: the text is the content.
      gopt.constraint = p.constraint;
      gopt.on_text = [&](std::string_view piece) {
        text::ParseDelta d;
        d.content = std::string(piece);
        result.content += d.content;
        on_delta(d);
        return true;
      };
      const engine::GenerateResult g = session.Generate(p.tokens, gopt);
      reply.stats = g.stats;
      reply.finish = engine::FinishFor(g.stats.stop_reason, false);
    } else {
      // Nothing more goes out once the request is cancelled (the client is gone or timed out).
      reply = engine::RunTurn(session, p.turn, gopt, [&](const text::ParseDelta& d) {
        if (!cancel.load()) on_delta(d);
      });
    }
    const engine::GenerateStats& st = reply.stats;
    result.prompt_tokens = st.prompt_tokens;
    result.cached_tokens = st.reused_tokens;
    result.completion_tokens = st.output_tokens();
    result.drafted_tokens = st.drafted_tokens;
    result.accepted_tokens = st.accepted_tokens;
    result.prompt_ms = st.prompt_seconds * 1000;
    result.total_ms = (st.prompt_seconds + st.generate_seconds) * 1000;
    result.finish = reply.finish;
    if (reply.finish == FinishReason::kCancelled || r.raw) return result;
    result.content = reply.parsed.content;
    result.reasoning = reply.parsed.reasoning;
    result.tool_calls = reply.parsed.tool_calls;
    return result;
  }

 private:
  std::unique_ptr<engine::LoadedModel> lm_;
  std::unique_ptr<engine::Projector> projector_;  // null: no audio input
  std::vector<std::unique_ptr<engine::Session>> sessions_;
  ModelInfo info_;
};

}  // namespace

std::unique_ptr<Generator> MakeEngineGenerator(const EngineOptions& options) {
  return std::make_unique<EngineGenerator>(options);
}

}  // namespace hearth::server
