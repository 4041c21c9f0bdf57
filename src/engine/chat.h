// A conversation on top of a Session: the messages, rendered with the official Gemma 4 template
// for each turn, and the model's reply streamed through the incremental output parser into
// reasoning, content and tool calls. History is kept the way the template expects: the visible
// content only (thoughts are dropped, except the reasoning of a tool-calling message, which the
// template itself keeps until the next user message).
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
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engine/session.h"
#include "text/chat_template.h"
#include "text/output_parser.h"

namespace hearth::engine {

struct ChatCallbacks {
  std::function<void(std::string_view)> on_reasoning;  // thought text, as it streams
  std::function<void(std::string_view)> on_content;    // visible answer text, as it streams
  std::function<void(const text::ToolCallDelta&)> on_tool_call;
};

struct ChatReply {
  // The final parse of the model's output. When the output does not match Gemma 4's format
  // (parsed.error; llama.cpp fails the request there) the raw text is the content instead, so
  // the user sees what the model said.
  text::ParsedOutput parsed;
  std::string raw;  // the model's output text as generated (stop token excluded)
  GenerateStats stats;
};

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
  // Any message the template accepts (tool results, a scripted assistant turn, …).
  void AddMessage(nlohmann::ordered_json message);
  // Forgets the conversation (not the system prompt, tools or thinking mode).
  void Clear() { messages_ = nlohmann::ordered_json::array(); }
  // Removes the last message (e.g. a user turn that did not fit in the context).
  void PopMessage();
  const nlohmann::ordered_json& messages() const { return messages_; }

  // The prompt text of the next turn: the conversation plus the generation prompt.
  std::string RenderPrompt() const;
  // Generates the assistant turn for the conversation so far and appends it to the history.
  // `options.on_text` is replaced (the callbacks get the parsed pieces instead); stop_at_eog is
  // forced on. Errors (the conversation does not fit, …) leave the history unchanged; a reply
  // stopped early (cancel flag, limit) is kept as far as it got.
  ChatReply Respond(GenerateOptions options, const ChatCallbacks& callbacks);

 private:
  nlohmann::ordered_json Inputs(bool add_generation_prompt) const;
  std::vector<std::string> ToolNames() const;

  Session& session_;
  text::ChatTemplate template_;
  std::string system_;
  bool thinking_ = false;
  nlohmann::ordered_json tools_ = nlohmann::ordered_json::array();
  nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();
};

}  // namespace hearth::engine
