// The real Generator: the Gemma 4 chat template renders the request, the engine generates in one
// Session per slot (so each slot keeps its KV cache and reuses the prompt prefix of its last
// request), and the incremental output parser splits the text into content, reasoning and tool
// calls as it streams.
#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>

#include "base/error.h"
#include "engine/loaded_model.h"
#include "engine/media.h"
#include "engine/session.h"
#include "gguf/gguf.h"
#include "server/generator.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace hearth::server {

void Generator::SetAdapterScales(const std::vector<std::pair<int, float>>& scales) {
  if (!scales.empty()) {
    ThrowInvalidInput("adapter id " + std::to_string(scales.front().first) + " is not loaded",
                      "this server has no LoRA adapters (start it with --lora FILE)");
  }
}

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
      : lm_(engine::LoadedModel::Open(opt.model_path, opt.adapters)) {
    const model::ModelConfig& c = lm_->config();
    LoadVariants(opt);
    if (opt.no_spec) {
      lm_->DisableSpeculation();
    } else {
      if (!opt.draft_path.empty()) lm_->AttachDrafter(opt.draft_path);
      if (!opt.draft_model_path.empty()) lm_->AttachDraftModel(opt.draft_model_path);
      if (opt.lookup > 0) lm_->SetLookup(opt.lookup);
    }
    model::ContextOptions copt = lm_->Context({.n_ctx = opt.n_ctx,
                                               .n_threads = opt.n_threads,
                                               .cache_type_k = opt.cache_type_k,
                                               .cache_type_v = opt.cache_type_v});
    if (opt.n_slots < 1 || opt.n_slots > 64) {
      ThrowUsage("--parallel " + std::to_string(opt.n_slots) + " is out of range", "use 1 to 64");
    }
    // Slots share the cores: each gets its part, so N busy slots do not oversubscribe.
    if (opt.n_threads <= 0) copt.n_threads = std::max(1, engine::DefaultThreads() / opt.n_slots);
    copt.adapters = nullptr;  // each request sets its own (Generate)
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
    info_.vision = projector_ && projector_->has_vision();
    info_.audio = projector_ && projector_->has_audio();
    for (const auto& [name, set] : variants_) info_.variants.push_back(name);
  }

  const ModelInfo& info() const override { return info_; }
  int n_slots() const override { return static_cast<int>(sessions_.size()); }

  PreparedPrompt Prepare(const GenerationRequest& r) const override {
    PreparedPrompt p;
    ChooseAdapters(r, p);
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
    // KV computed under other adapters or scales is worth nothing to this request.
    const engine::Session& session = *sessions_.at(static_cast<size_t>(slot));
    if (model::AdapterKey(session.adapters()) != prompt.adapter_key) return 0;
    const auto& held = session.tokens();
    const size_t n = std::min(held.size(), prompt.tokens.size());
    size_t k = 0;
    while (k < n && held[k] == prompt.tokens[k]) ++k;
    return static_cast<int>(k);
  }

  GenerationResult Generate(int slot, const GenerationRequest& r, const PreparedPrompt& p,
                            const std::function<void(const text::ParseDelta&)>& on_delta,
                            const std::atomic<bool>& cancel) override {
    engine::Session& session = *sessions_.at(static_cast<size_t>(slot));
    // Drops the slot's cache when the key changes (Session::SetAdapters).
    session.SetAdapters(p.adapters);
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
      result.tokens = g.tokens;
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

  std::vector<AdapterInfo> Adapters() const override {
    std::lock_guard lock(mu_);
    std::vector<AdapterInfo> out;
    for (size_t i = 0; i < loaded_.size(); ++i) {
      out.push_back({static_cast<int>(i), loaded_[i].first->path(), loaded_[i].second});
    }
    return out;
  }

  void SetAdapterScales(const std::vector<std::pair<int, float>>& scales) override {
    model::AdapterSet::Loras loras = WithScales(scales);
    auto set = model::AdapterSet::Make(lm_->model(), loras, lm_->cvecs());
    std::lock_guard lock(mu_);
    loaded_ = std::move(loras);
    current_ = std::move(set);
  }

 private:
  // The catalog variants' adapters, loaded after the --lora ones (at global scale 0), each
  // variant with its own set. A variant that does not load is left out with a warning.
  void LoadVariants(const EngineOptions& opt) {
    loaded_ = lm_->loras();
    current_ = lm_->adapters();
    for (const EngineOptions::Variant& v : opt.variants) {
      try {
        model::AdapterSet::Loras loras;
        for (const model::AdapterSpec& s : v.adapters.loras) {
          loras.emplace_back(model::LoraAdapter::Load(s.path, lm_->model()), s.scale);
        }
        model::AdapterSet::Cvecs cvecs;
        for (const model::AdapterSpec& s : v.adapters.cvecs) {
          cvecs.emplace_back(model::ControlVector::Load(s.path, lm_->model()), s.scale);
        }
        auto set = model::AdapterSet::Make(lm_->model(), loras, std::move(cvecs));
        for (const auto& l : loras) loaded_.emplace_back(l.first, 0.0f);
        variants_.emplace_back(v.name, std::move(set));
      } catch (const Error& e) {
        if (opt.warn) opt.warn("model '" + v.name + "' left out: " + e.Describe());
      }
    }
  }

  // The loaded adapters with `scales` for the ids named and 0 for the others (llama-server's
  // rule for both the `lora` field and POST /lora-adapters).
  model::AdapterSet::Loras WithScales(const std::vector<std::pair<int, float>>& scales) const {
    std::lock_guard lock(mu_);
    model::AdapterSet::Loras loras = loaded_;
    for (auto& l : loras) l.second = 0;
    for (const auto& [id, scale] : scales) {
      if (id < 0 || static_cast<size_t>(id) >= loras.size()) {
        ThrowInvalidInput("adapter id " + std::to_string(id) + " is not loaded",
                          loras.empty() ? "this server has no LoRA adapters (start it with "
                                          "--lora FILE)"
                                        : "ids go from 0 to " + std::to_string(loras.size() - 1) +
                                              " (GET /lora-adapters lists them)");
      }
      loras[static_cast<size_t>(id)].second = scale;
    }
    return loras;
  }

  // The adapters a request runs with: its `lora` field, else the variant it names, else the
  // server's current scales.
  void ChooseAdapters(const GenerationRequest& r, PreparedPrompt& p) const {
    p.model_name = info_.name;
    const std::pair<std::string, std::shared_ptr<const model::AdapterSet>>* variant = nullptr;
    for (const auto& v : variants_) {
      if (v.first == r.model) variant = &v;
    }
    if (variant != nullptr) p.model_name = variant->first;
    if (r.lora) {
      p.adapters = model::AdapterSet::Make(lm_->model(), WithScales(*r.lora), lm_->cvecs());
    } else if (variant != nullptr) {
      p.adapters = variant->second;
    } else {
      std::lock_guard lock(mu_);
      p.adapters = current_;
    }
    p.adapter_key = model::AdapterKey(p.adapters.get());
  }

  std::unique_ptr<engine::LoadedModel> lm_;
  std::unique_ptr<engine::Projector> projector_;  // null: no audio input
  std::vector<std::unique_ptr<engine::Session>> sessions_;
  ModelInfo info_;
  std::vector<std::pair<std::string, std::shared_ptr<const model::AdapterSet>>> variants_;
  mutable std::mutex mu_;            // guards loaded_ and current_
  model::AdapterSet::Loras loaded_;  // every loaded adapter with its current scale
  std::shared_ptr<const model::AdapterSet> current_;
};

}  // namespace

std::unique_ptr<Generator> MakeEngineGenerator(const EngineOptions& options) {
  return std::make_unique<EngineGenerator>(options);
}

}  // namespace hearth::server
