// What the HTTP server needs from a model: turn a request into a prompt (checking that it fits),
// then generate into one of N slots, streaming parsed deltas (content, reasoning, tool calls).
// The server only speaks to this interface, so its HTTP mechanics (queueing, streaming, errors,
// cancellation) are tested with a scripted generator; MakeEngineGenerator is the real one.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/chat.h"
#include "engine/json_constraint.h"
#include "engine/loaded_model.h"
#include "engine/sampler.h"
#include "model/adapters.h"
#include "text/output_parser.h"

namespace hearth::server {

// One generation as the APIs ask for it, after validation (request.h).
struct GenerationRequest {
  bool raw = false;    // true: `prompt` is the model input as is (no chat template)
  std::string prompt;  // raw only
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // OpenAI-style
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();     // OpenAI-style
  text::ToolChoice tool_choice = text::ToolChoice::kAuto;
  bool parallel_tool_calls = true;
  bool think = false;  // enable the thought channel
  engine::SamplingParams sampling;
  bool seed_given = false;  // false: the server picks a random seed
  int max_tokens = 0;       // new tokens at most; 0: until the context is full
  std::vector<std::string> stop;
  int num_ctx = 0;  // Ollama options.num_ctx: prompt + output must fit; 0: the slot's
  // response_format / format: the output must be this JSON (constrained decoding); null: free.
  // Never combined with thinking or a required tool call (request.cpp refuses both).
  std::shared_ptr<const engine::JsonConstraint> format;
  // The model the request names (its `model` field): a catalog entry of this base model with
  // adapters (ModelInfo::variants) runs with that entry's adapters; any other name runs the
  // served model as it is.
  std::string model;
  // llama-server's per-request `lora` field, [(id, scale)...]: the loaded adapters (GET
  // /lora-adapters) named here run at these scales and every other one at 0, for this request
  // only. nullopt: the server's current scales (POST /lora-adapters), or the named variant's.
  std::optional<std::vector<std::pair<int, float>>> lora;
};

// The prompt a request turns into; made by Prepare before the request waits for a slot.
struct PreparedPrompt {
  std::vector<int32_t> tokens;
  int context_limit = 0;  // positions this request may use (prompt + output)
  // Chat requests: the prepared turn (how the output is read, the constraint of a forced tool
  // call or a format, the forced call's closing text).
  engine::PreparedTurn turn;
  // Raw requests: the format's constraint, if any.
  std::shared_ptr<const engine::JsonConstraint> constraint;
  // The LoRA adapters and control vectors it runs with (null: none), fixed when it is prepared,
  // and their key: a slot's cached prefix counts only when it was computed under the same key.
  std::shared_ptr<const model::AdapterSet> adapters;
  std::string adapter_key;
  // The model name responses report (the served model's, or the variant's the request named).
  std::string model_name;
};

// Why a generation ended: the engine's chat-turn reasons.
using FinishReason = engine::FinishReason;

struct GenerationResult {
  std::string content;
  std::string reasoning;
  std::vector<text::ParsedToolCall> tool_calls;
  FinishReason finish = FinishReason::kStop;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;  // prompt tokens reused from the slot's previous request
  int drafted_tokens = 0;   // speculative decoding: tokens proposed by the draft source
  int accepted_tokens = 0;  // of those, the ones the model agreed with
  std::vector<int32_t> tokens;  // raw requests: the sampled ids (end-of-generation excluded)
  double prompt_ms = 0;   // prefill
  double total_ms = 0;
};

struct ModelInfo {
  std::string name;  // the id clients use ("gemma-4-e2b-it-q4_k_m")
  std::string family = "gemma4";
  std::string parameter_size;  // "2.3B"
  std::string quantization;    // "Q4_K_M"
  uint64_t size_bytes = 0;
  int context_length = 0;  // the model's trained maximum
  int slot_context = 0;    // positions per slot (-c)
  std::string digest;      // stable id of the file (size + mtime based)
  // What the projector adds: images (every Gemma 4 projector) and audio (E2B/E4B's).
  bool vision = false;
  bool audio = false;
  // Catalog entries served from this model with their own adapters (agent/models.h): listed as
  // models of their own, and a request naming one runs with that entry's adapters.
  std::vector<std::string> variants;
};

// One loaded LoRA adapter, as llama-server's GET /lora-adapters lists it.
struct AdapterInfo {
  int id = 0;
  std::string path;
  float scale = 0;  // the scale requests without a `lora` field run with
};

class Generator {
 public:
  virtual ~Generator() = default;
  virtual const ModelInfo& info() const = 0;
  virtual int n_slots() const = 0;
  // Renders and tokenizes; throws hearth::Error (kInvalidInput: malformed messages or tools,
  // kResource: the prompt does not fit) before any slot is taken.
  virtual PreparedPrompt Prepare(const GenerationRequest& request) const = 0;
  // How many leading tokens of `prompt` slot `slot` already holds (to pick the best free slot).
  virtual int CachedPrefix(int slot, const PreparedPrompt& prompt) const = 0;
  // Generates in `slot` (never used by two calls at once). `on_delta` gets each piece as soon as
  // it is final. `cancel` is polled between tokens; when set, returns with kCancelled.
  virtual GenerationResult Generate(int slot, const GenerationRequest& request,
                                    const PreparedPrompt& prompt,
                                    const std::function<void(const text::ParseDelta&)>& on_delta,
                                    const std::atomic<bool>& cancel) = 0;
  // The loaded LoRA adapters, ids 0..n-1 (none by default).
  virtual std::vector<AdapterInfo> Adapters() const { return {}; }
  // POST /lora-adapters: the scales later requests run with; adapters not named get 0. Throws
  // Error(kInvalidInput) for an id that is not loaded (nothing changes then).
  virtual void SetAdapterScales(const std::vector<std::pair<int, float>>& scales);
};

struct EngineOptions {
  std::string model_path;
  int n_slots = 1;
  int n_ctx = 0;      // 0: engine::kDefaultContext, or the model's maximum if smaller
  int n_threads = 0;  // 0: engine::DefaultThreads(), shared out among the slots
  // The slots' KV cache storage (--cache-type). Slots keep their caches in memory only, each
  // under the one type of this server.
  model::KvType cache_type_k = model::KvType::kF16;
  model::KvType cache_type_v = model::KvType::kF16;
  std::string alias;  // the model's name in listings and responses (default: the file's stem)
  // Speculative decoding per slot (the replies are the same with or without, or with temperature
  // follow the same distribution): an MTP drafter (default: one found next to the model), a
  // smaller Gemma 4 as draft model (a path), prompt lookup with N-grams, or none.
  std::string draft_path;
  std::string draft_model_path;
  int lookup = 0;
  bool no_spec = false;
  // The multimodal projector for input_audio parts (default: an mmproj*.gguf next to the model;
  // none: such parts are refused with a 400).
  std::string mmproj;
  // --lora / --control-vector: loaded with the model (ids 0..n-1 in this order).
  engine::AdapterRequest adapters;
  // Catalog entries that are this model plus adapters (ModelInfo::variants). Their adapters are
  // loaded too and listed after the --lora ones, at scale 0 for requests that do not name them.
  struct Variant {
    std::string name;
    engine::AdapterRequest adapters;
  };
  std::vector<Variant> variants;
  // Receives a warning for a variant whose adapters do not load (it is left out; the server
  // still serves the rest). May be empty.
  std::function<void(const std::string&)> warn;
};

// The real generator: one model, one engine::Session per slot. Loads the model (slow).
std::unique_ptr<Generator> MakeEngineGenerator(const EngineOptions& options);

}  // namespace hearth::server
