// The real Generator: the Gemma 4 chat template renders the request, the engine generates in one
// Session per slot (so each slot keeps its KV cache and reuses the prompt prefix of its last
// request), and the incremental output parser splits the text into content, reasoning and tool
// calls as it streams.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <thread>

#include "base/error.h"
#include "engine/session.h"
#include "gguf/gguf.h"
#include "model/model.h"
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
      : model_(model::Model::Load(opt.model_path)),
        tokenizer_(text::Tokenizer::Load(opt.model_path)) {
    const model::ModelConfig& c = model_->config();
    int n_ctx = opt.n_ctx > 0 ? opt.n_ctx : std::min(4096, c.n_ctx_train);
    if (n_ctx < 1 || n_ctx > c.n_ctx_train) {
      ThrowUsage("-c " + std::to_string(n_ctx) + " is out of range",
                 "this model supports contexts of 1 to " + std::to_string(c.n_ctx_train));
    }
    if (opt.n_slots < 1 || opt.n_slots > 64) {
      ThrowUsage("--parallel " + std::to_string(opt.n_slots) + " is out of range", "use 1 to 64");
    }
    const int cores = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 16u));
    model::ContextOptions copt;
    copt.n_ctx = n_ctx;
    // Slots share the cores: each gets its part, so N busy slots do not oversubscribe.
    copt.n_threads = opt.n_threads > 0 ? opt.n_threads : std::max(1, cores / opt.n_slots);
    for (int i = 0; i < opt.n_slots; ++i) {
      sessions_.push_back(std::make_unique<engine::Session>(*model_, tokenizer_, copt));
    }

    // What the model list endpoints show.
    const std::filesystem::path path(opt.model_path);
    info_.name = path.stem().string();
    std::transform(info_.name.begin(), info_.name.end(), info_.name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    std::error_code ec;
    info_.size_bytes = std::filesystem::file_size(path, ec);
    const gguf::File file = gguf::File::Open(opt.model_path);
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
      p.tokens = tokenizer_.Encode(r.prompt, /*add_bos=*/true);
    } else {
      nlohmann::ordered_json inputs;
      inputs["messages"] = r.messages;
      if (!r.tools.empty() && r.tool_choice != text::ToolChoice::kNone) inputs["tools"] = r.tools;
      inputs["add_generation_prompt"] = true;
      inputs["enable_thinking"] = r.think;
      const std::string rendered = text::RenderChat(inputs);
      std::string prompt_text = rendered;
      // The parser reads generation prompt + output; the generation prompt is what rendering
      // with add_generation_prompt added (it depends on thinking and on the last message), as
      // engine::ChatSession derives it.
      inputs["add_generation_prompt"] = false;
      const std::string history = text::RenderChat(inputs);
      if (rendered.compare(0, history.size(), history) == 0) {
        p.parser.generation_prompt = rendered.substr(history.size());
      } else {
        p.parser.generation_prompt =
            r.think ? "<|turn>model\n" : "<|turn>model\n<|channel>thought\n<channel|>";
      }
      if (r.tool_choice != text::ToolChoice::kNone) {
        for (const auto& t : r.tools) p.parser.tool_names.push_back(t["function"]["name"]);
      }
      if (r.tool_choice == text::ToolChoice::kRequired && !r.tools.empty()) {
        // Enforced, not just asked for: the model turn starts with the call's opening (spec
        // §3.2), with the name too when only one tool may be called, and the arguments are
        // constrained to Gemma's call notation (against the tool's schema where supported).
        // Thinking is skipped for such a turn.
        std::string prefill = "<|tool_call>call:";
        std::vector<std::pair<std::string, nlohmann::json>> choices;
        for (const auto& t : r.tools) {
          const auto& fn = t["function"];
          nlohmann::json params;
          if (fn.contains("parameters")) params = nlohmann::json::parse(fn["parameters"].dump());
          choices.emplace_back(r.tools.size() == 1 ? "" : fn["name"].get<std::string>(), params);
        }
        if (r.tools.size() == 1) prefill += r.tools[0]["function"]["name"].get<std::string>();
        p.constraint = std::make_shared<const engine::JsonConstraint>(
            engine::JsonConstraint::ForToolCall(choices));
        p.forced_call_suffix = "<tool_call|>";
        prompt_text += prefill;
        p.parser.generation_prompt += prefill;
      }
      // The template writes "<bos>" as text; parsing special tokens turns it into BOS.
      p.tokens = tokenizer_.Encode(prompt_text, /*add_bos=*/false, /*parse_special=*/true);
      if (p.tokens.empty() || p.tokens.front() != tokenizer_.bos_id()) {
        p.tokens.insert(p.tokens.begin(), tokenizer_.bos_id());
      }
      p.parser.tool_choice = r.tool_choice;
      p.parser.parallel_tool_calls = r.parallel_tool_calls;
    }
    if (r.format) p.constraint = r.format;
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
    gopt.constraint = p.constraint;
    if (!r.raw && r.tool_choice == text::ToolChoice::kNone) {
      // "none" means no call: the model cannot even open one.
      if (const auto id = tokenizer_.Find("<|tool_call>")) {
        gopt.sampling.logit_bias.emplace_back(*id, -INFINITY);
      }
    }

    GenerationResult result;
    text::OutputParser parser(p.parser);
    gopt.on_text = [&](std::string_view piece) {
      if (r.raw) {
        text::ParseDelta d;
        d.content = std::string(piece);
        result.content += d.content;
        on_delta(d);
      } else {
        const text::ParseDelta d = parser.Push(piece);
        if (!d.empty()) on_delta(d);
      }
      return !cancel.load();
    };
    const engine::GenerateResult g = session.Generate(p.tokens, gopt);
    const engine::GenerateStats& st = g.stats;
    result.prompt_tokens = st.prompt_tokens;
    result.cached_tokens = st.reused_tokens;
    result.completion_tokens = static_cast<int>(g.tokens.size());
    result.prompt_ms = st.prompt_seconds * 1000;
    result.total_ms = (st.prompt_seconds + st.generate_seconds) * 1000;
    if (st.stop_reason == engine::StopReason::kCancelled ||
        st.stop_reason == engine::StopReason::kCallback) {
      result.finish = FinishReason::kCancelled;
      return result;
    }
    if (!r.raw && !p.forced_call_suffix.empty() &&
        st.stop_reason == engine::StopReason::kEndOfGeneration) {
      // The constrained arguments are complete: close the call as the model would have.
      const text::ParseDelta d = parser.Push(p.forced_call_suffix);
      if (!d.empty()) on_delta(d);
    }
    if (!r.raw) {
      text::ParseDelta last;
      const text::ParsedOutput out = parser.Finish(&last);
      if (!last.empty()) on_delta(last);
      if (out.error) {
        // Not in the model's format: the text as it came is the answer (as llama.cpp does).
        result.content = g.text;
      } else {
        result.content = out.content;
        result.reasoning = out.reasoning;
        result.tool_calls = out.tool_calls;
      }
    }
    const bool length = st.stop_reason == engine::StopReason::kMaxTokens ||
                        st.stop_reason == engine::StopReason::kContextFull;
    result.finish = !result.tool_calls.empty() ? FinishReason::kToolCalls
                    : length                   ? FinishReason::kLength
                                               : FinishReason::kStop;
    return result;
  }

 private:
  std::unique_ptr<model::Model> model_;
  text::Tokenizer tokenizer_;
  std::vector<std::unique_ptr<engine::Session>> sessions_;
  ModelInfo info_;
};

}  // namespace

std::unique_ptr<Generator> MakeEngineGenerator(const EngineOptions& options) {
  return std::make_unique<EngineGenerator>(options);
}

}  // namespace hearth::server
