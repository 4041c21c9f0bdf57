// Where the assistant's replies come from: one interface, two kinds of backend.
//
//   * GemmaBackend renders the conversation with the Gemma 4 chat template, has raw text
//     generated and parses it (thoughts, content, native tool calls) as it streams. The local
//     engine (MakeLocalBackend) is one; tests plug in scripted ones.
//   * The remote backend (MakeRemoteBackend) sends OpenAI-style messages to an OpenAI-compatible
//     (/v1/chat/completions) or Ollama (/api/chat) server, and only ever to the URL it was given.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/chat.h"
#include "engine/loaded_model.h"

namespace hearth::agent {

class Workspace;

// Marks a user message that only shows what a tool returned (view_image's image): part of the
// turn it is in, not a question. Never sent to a server.
inline constexpr const char* kToolMediaKey = "hearth_tool_media";

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON object text
  bool complete = true;   // false: the model's call was cut off or malformed
};

struct ChatRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // OpenAI-style
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();     // declarations
  bool think = false;
  int max_tokens = 1024;
  std::function<void(std::string_view)> on_content;    // streamed visible text
  std::function<void(std::string_view)> on_reasoning;  // streamed thoughts
  const std::atomic<bool>* cancel = nullptr;
};

struct ChatReply {
  std::string content;
  std::string reasoning;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;  // "stop", "length", "tool_calls", "cancelled", ...
  bool malformed = false;     // the output did not follow the format (parser error)
  int prompt_tokens = 0, reused_tokens = 0, completion_tokens = 0;
  // Local engine only: seconds spent decoding the prompt (until the first token) and generating.
  double prompt_seconds = 0, generate_seconds = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string Describe() const = 0;  // "local engine: model.gguf", "remote: URL"
  // One model turn (which may end in tool calls). Throws hearth::Error on transport or engine
  // failures.
  virtual ChatReply Chat(const ChatRequest& request) = 0;
  // Tokens `text` takes in the model's tokenizer; an estimate when exact_tokens() is false.
  virtual int CountTokens(std::string_view text) const = 0;
  virtual bool exact_tokens() const = 0;
  virtual int context_size() const = 0;
  // Tokens the media parts of `messages` (engine::MediaParts: images and audio in user content)
  // take in the prompt: the local engine encodes them (and keeps the result for the turn); a
  // remote backend estimates. Throws Error(kUsage) when this backend takes no media, and what
  // encoding throws for a bad file.
  virtual int MediaTokens(const nlohmann::ordered_json& messages) = 0;
  // Whether images in the conversation reach the model (the view_image tool is offered then).
  virtual bool takes_images() const { return false; }
};

// A backend that speaks Gemma 4's raw format: each turn is one engine chat turn (engine/chat.h:
// the template, the generation prompt, the output parser), turned into the agent's ChatReply.
// The local engine (MakeLocalBackend) runs the turn in its Session; tests plug in scripted ones
// that only produce text (Generate).
class GemmaBackend : public Backend {
 public:
  ChatReply Chat(const ChatRequest& request) override;
  int MediaTokens(const nlohmann::ordered_json& messages) override;

 protected:
  // Runs the turn, streaming deltas to `on_delta`. By default: the prompt text through
  // Generate, read by engine::TurnReader.
  virtual engine::ChatReply Turn(const engine::TurnRequest& turn, const ChatRequest& request,
                                 const engine::TurnReader::DeltaFn& on_delta);
  // Text-only backends: continue the rendered `prompt`, calling `on_piece` with each piece of
  // decoded text (return false to stop), as if stopped at the end-of-generation tokens
  // (<turn|>, <|tool_response>, <eos>). The default throws (a backend overrides one of the two).
  virtual engine::GenerateStats Generate(const std::string& prompt, int max_tokens,
                                         const std::function<bool(std::string_view)>& on_piece,
                                         const std::atomic<bool>* cancel);
  // The encoded items of engine::MediaParts(messages), in order. By default none are taken: a
  // conversation holding media is refused (Error(kUsage)).
  virtual std::vector<engine::MediaPtr> EncodeMedia(const nlohmann::ordered_json& messages);
};

// The in-process engine on a GGUF model (engine::LoadedModel, with its defaults).
struct LocalOptions {
  int n_ctx = 0;             // 0: engine::kDefaultContext, or the model's maximum if smaller
  int n_threads = 0;         // 0: engine::DefaultThreads()
  float temperature = 0.0f;  // greedy by default: answers about code should be repeatable
  uint64_t seed = 0xC0FFEE;
  engine::AdapterRequest adapters;  // --lora / --control-vector
  // The KV cache's storage (--cache-type); part of the prefix cache's key.
  model::KvType cache_type_k = model::KvType::kF16;
  model::KvType cache_type_v = model::KvType::kF16;
  // Speculative decoding (engine/speculative.h; the replies are the same or, with temperature,
  // follow the same distribution): an MTP drafter (default: one found next to the model), a
  // smaller Gemma 4 as draft model (paths, resolved by the caller), prompt lookup with N-grams
  // in every pass; without any of these, 3-gram prompt lookup inside edit_file and write_file
  // calls only (InsideFileWritingCall), where the model repeats the file it rewrites.
  std::string draft_path;
  std::string draft_model_path;
  int lookup = 0;
  bool no_spec = false;
  // The persisted prefix cache (prefix_cache.h) under this workspace's .hearth/kv/; null: none.
  // Must outlive the backend. `warn` receives its notes.
  const Workspace* prefix_cache = nullptr;
  std::function<void(std::string_view)> warn;
  // The multimodal projector for image and audio parts (--mmproj); "": an mmproj*.gguf next to
  // the model, opened when the first media part arrives.
  std::string mmproj;
};
std::unique_ptr<Backend> MakeLocalBackend(const std::string& model_path,
                                          const LocalOptions& options);

struct RemoteOptions {
  std::string model;  // the server's model name ("" is sent as "default")
  int timeout_seconds = 600;
  // -c; 0: what the server reports (Ollama's /api/show, an OpenAI-style /v1/models entry's
  // meta.n_ctx, max_model_len, context_length or context_window), asked once, else 8192.
  int context_size = 0;
  std::string api_key;      // sent as "Authorization: Bearer KEY" when not empty
};
// `url`: http(s)://host[:port][/path]. A path ending in /api/chat means Ollama; /v1 or
// /v1/chat/completions or none means OpenAI-compatible (/v1/chat/completions is appended as
// needed). Redirects are not followed and proxies are not used, so nothing but that host is
// contacted. Throws Error(kUsage) for a malformed URL.
std::unique_ptr<Backend> MakeRemoteBackend(const std::string& url, const RemoteOptions& options);

}  // namespace hearth::agent
