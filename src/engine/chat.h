// Chat turns on top of a Session: the messages, rendered with the official Gemma 4 template,
// and the model's reply streamed through the incremental output parser into reasoning, content
// and tool calls. ChatSession keeps a conversation across turns. History is kept the way the
// template expects: the visible content only (thoughts are dropped, except the reasoning of a
// tool-calling message, which the template itself keeps until the next user message).
//
//   engine::ChatSession chat(session);
//   chat.set_thinking(true);
//   chat.AddUser("Why is the sky blue?");
//   engine::ChatReply reply = chat.Respond(options, {.on_reasoning = dim, .on_content = print});
//
// Each turn renders the whole conversation again; the Session reuses the KV cache for the part
// that did not change, so a turn costs what it adds.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/json_constraint.h"
#include "engine/media.h"
#include "engine/session.h"
#include "text/chat_template.h"
#include "text/output_parser.h"

namespace hearth::engine {

// One chat turn, the one path every command takes from messages to a parsed reply
// (`hearth chat --plain` through ChatSession, the assistant's local backend, `hearth serve`):
//
//   PrepareTurn   renders the messages with the chat template, works out the generation prompt
//                 (what the parser reads before the output), appends a forced tool-call opening,
//                 and encodes the prompt with BOS;
//   RunTurn       generates in a Session and streams the output through TurnReader;
//   TurnReader    the incremental output parser: deltas (reasoning, content, tool calls) out as
//                 they become final, and one ChatReply with one finish reason at the end; output
//                 that is not in Gemma 4's format becomes the raw text.
//
// Backends that produce text another way (the assistant's scripted test backend) use
// PrepareTurn without a tokenizer and TurnReader alone.

// The opening of a model turn, and the empty thought block the template writes after it when
// thinking is off (spec gemma4-chat §2): the generation prompt after a user message.
inline constexpr std::string_view kModelTurn = "<|turn>model\n";
inline constexpr std::string_view kEmptyThought = "<|channel>thought\n<channel|>";
// kModelTurn, plus kEmptyThought when thinking is off (what the parser reads after a user turn).
std::string GenerationPrompt(bool thinking);

struct TurnRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // a system message included
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();     // declarations
  bool thinking = false;
  // kNone: the tools are not shown and the model cannot open a call; kRequired: the turn starts
  // inside a call (forced prefill) whose arguments are constrained to the tools' schemas.
  text::ToolChoice tool_choice = text::ToolChoice::kAuto;
  bool parallel_tool_calls = true;
  text::ChatTemplate chat_template = text::ChatTemplate::kOfficial;
  // The output must be this JSON value (response_format); null: free text.
  std::shared_ptr<const JsonConstraint> format;
  // Output that parses into nothing at all (no content, thoughts or calls) though it is not blank
  // counts as malformed, so it is shown raw (the assistant's choice: the parser is lenient with
  // tools declared and would otherwise drop it silently).
  bool malformed_if_nothing_parsed = false;
  // The encoded media parts of `messages`, one per item of MediaParts(messages), in order
  // (Projector::EncodeParts makes them). Empty when the messages hold no media.
  std::vector<MediaPtr> media;
};

struct PreparedTurn {
  std::string prompt;           // the rendered conversation, generation prompt and prefill
  // `prompt` encoded, BOS first (empty without a tokenizer); with media, each placeholder is
  // replaced by the item's marker pieces around kMediaRow entries (media.h).
  std::vector<int32_t> tokens;
  std::vector<MediaSpan> media;  // where each media item's rows are in `tokens`
  text::ParserConfig parser;    // how to read the output
  // Constrained decoding: the request's format, or the arguments of a forced tool call.
  std::shared_ptr<const JsonConstraint> constraint;
  // tool_choice required: the prompt ends inside the call ("<|tool_call>call:" [+ NAME]) and
  // this closes it for the parser once the constrained arguments are complete.
  std::string forced_call_suffix;
  bool forbid_tool_calls = false;  // tool_choice none: <|tool_call> is never sampled
  bool malformed_if_nothing_parsed = false;
};

// Throws Error(kUsage) for tools that are not a list or media parts without their encoded items
// (request.media), Error(kInvalidInput) for messages the template rejects. `tokenizer` may be
// null (then `tokens` stays empty).
PreparedTurn PrepareTurn(const TurnRequest& request, const text::Tokenizer* tokenizer);

// Why a turn ended, as the chat APIs name it.
enum class FinishReason { kStop, kLength, kToolCalls, kCancelled };
// "stop", "length", "tool_calls", "cancelled".
const char* FinishReasonName(FinishReason reason);
// Cancelled (the flag or the callback stopped it), else tool calls when there are any, else
// length (the token limit or the context ended it), else stop.
FinishReason FinishFor(StopReason stop, bool tool_calls);

struct ChatReply {
  // The final parse of the model's output. When the output does not match Gemma 4's format
  // (parsed.error; llama.cpp fails the request there) the raw text is the content instead, so
  // the user sees what the model said.
  text::ParsedOutput parsed;
  std::string raw;  // the model's output text as generated (stop token excluded)
  // parsed.error only: the end of `raw` that was not streamed as content (callers that show the
  // reply as it streams print it, so that the whole raw text was shown).
  std::string unstreamed;
  GenerateStats stats;
  FinishReason finish = FinishReason::kStop;  // from stats.stop_reason and the tool calls
};

// Streams one turn's output text through the output parser.
class TurnReader {
 public:
  using DeltaFn = std::function<void(const text::ParseDelta&)>;
  // `on_delta` (may be empty) gets every non-empty delta as soon as it is final.
  TurnReader(const PreparedTurn& turn, DeltaFn on_delta);
  void Push(std::string_view piece);
  // The reply, given how generation went (`stats.stop_reason` decides the finish reason; a
  // forced call is closed when the constrained arguments ended it).
  ChatReply Finish(const GenerateStats& stats);

 private:
  const PreparedTurn& turn_;
  DeltaFn on_delta_;
  text::OutputParser parser_;
  std::string raw_, streamed_;
};

// Generates the turn in `session`. `options.on_text` and `constraint` are set from the turn,
// stop_at_eog is forced on; the rest (limits, sampling, stop strings, cancel flag) is the
// caller's. Throws as Session::Generate does.
ChatReply RunTurn(Session& session, const PreparedTurn& turn, GenerateOptions options,
                  TurnReader::DeltaFn on_delta);

struct ChatCallbacks {
  std::function<void(std::string_view)> on_reasoning;  // thought text, as it streams
  std::function<void(std::string_view)> on_content;    // visible answer text, as it streams
  std::function<void(const text::ToolCallDelta&)> on_tool_call;
};

// A whole turn that ChatSession::FitToContext left out of the conversation.
struct DroppedTurn {
  std::string opening;  // the turn's user message, on one line and cut to 60 bytes
  int messages = 0;     // its messages: the user's, the replies, tool calls and their results
  int tokens = 0;       // what it took in the prompt
};

// What FitToContext did.
struct ContextFit {
  int prompt_tokens = 0;             // the next turn's prompt, as it now is
  std::vector<DroppedTurn> dropped;  // by this call, oldest first
};

// A conversation over RunTurn (hearth chat --plain).
class ChatSession {
 public:
  explicit ChatSession(Session& session, text::ChatTemplate tmpl = text::ChatTemplate::kOfficial);

  // The system prompt ("" for none), rendered first on every turn.
  void set_system(std::string system) { system_ = std::move(system); }
  const std::string& system() const { return system_; }
  // Thinking mode (enable_thinking): the model thinks before it answers.
  void set_thinking(bool on) { thinking_ = on; }
  bool thinking() const { return thinking_; }
  // Tool declarations (the template's `tools`: a list of {type:"function", function:{…}}).
  void set_tools(nlohmann::ordered_json tools);

  void AddUser(std::string text);
  // A user message with media items first, then the text (`/audio PATH` in chat): the content is
  // a part list [media…, text], and the items ride along for every later turn.
  void AddUser(std::string text, std::vector<MediaPtr> media);
  // Any message the template accepts (tool results, a scripted assistant turn, …).
  void AddMessage(nlohmann::ordered_json message);
  // Forgets the conversation (not the system prompt, tools or thinking mode).
  void Clear() {
    messages_ = nlohmann::ordered_json::array();
    media_.clear();
    dropped_.clear();
  }
  // Removes the last message (e.g. a user turn that did not fit in the context).
  void PopMessage();
  const nlohmann::ordered_json& messages() const { return messages_; }

  // The prompt text of the next turn: the conversation plus the generation prompt.
  std::string RenderPrompt() const;
  // Keeps a conversation that has outgrown the context going: when the next turn's prompt plus
  // `reserve` tokens for the reply does not fit, the oldest whole turns (a user message with
  // everything up to the next one: replies, tool calls and their results) are dropped until it
  // fits in three quarters of the context, so that the next few turns reuse the KV prefix again
  // instead of each dropping one turn and decoding everything after the system prompt anew.
  // Never dropped: the system prompt, messages before the first user message, and the last turn
  // (the current question). A last turn that does not fit on its own is left for Respond to
  // refuse.
  ContextFit FitToContext(int reserve);
  // Every turn dropped since the conversation began (or the last Clear), oldest first.
  const std::vector<DroppedTurn>& dropped() const { return dropped_; }
  // Generates the assistant turn for the conversation so far and appends it to the history.
  // `options.on_text` is replaced (the callbacks get the parsed pieces instead); stop_at_eog is
  // forced on. Errors (the conversation does not fit, …) leave the history unchanged; a reply
  // stopped early (cancel flag, limit) is kept as far as it got.
  ChatReply Respond(GenerateOptions options, const ChatCallbacks& callbacks);

 private:
  TurnRequest Request() const;

  Session& session_;
  text::ChatTemplate template_;
  std::string system_;
  bool thinking_ = false;
  nlohmann::ordered_json tools_ = nlohmann::ordered_json::array();
  nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();
  std::vector<MediaPtr> media_;  // the media parts of messages_, in order
  std::vector<DroppedTurn> dropped_;
};

}  // namespace hearth::engine
