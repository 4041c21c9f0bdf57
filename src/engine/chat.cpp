#include "engine/chat.h"

#include "base/error.h"
#include "text/tokenizer.h"

namespace hearth::engine {

using Json = nlohmann::ordered_json;

ChatSession::ChatSession(Session& session, text::ChatTemplate tmpl)
    : session_(session), template_(tmpl) {}

void ChatSession::set_tools(Json tools) {
  if (!tools.is_array()) ThrowUsage("tools must be a list", "give a JSON array of tools");
  tools_ = std::move(tools);
}

void ChatSession::AddUser(std::string text) {
  messages_.push_back(Json{{"role", "user"}, {"content", std::move(text)}});
}

void ChatSession::AddMessage(Json message) { messages_.push_back(std::move(message)); }

void ChatSession::PopMessage() {
  if (!messages_.empty()) messages_.erase(messages_.end() - 1);
}

Json ChatSession::Inputs(bool add_generation_prompt) const {
  Json messages = Json::array();
  if (!system_.empty()) messages.push_back(Json{{"role", "system"}, {"content", system_}});
  for (const Json& m : messages_) messages.push_back(m);
  Json inputs = {{"messages", std::move(messages)},
                 {"add_generation_prompt", add_generation_prompt},
                 {"enable_thinking", thinking_}};
  if (!tools_.empty()) inputs["tools"] = tools_;
  return inputs;
}

std::vector<std::string> ChatSession::ToolNames() const {
  std::vector<std::string> names;
  for (const Json& t : tools_) {
    if (t.contains("function") && t["function"].contains("name") &&
        t["function"]["name"].is_string()) {
      names.push_back(t["function"]["name"].get<std::string>());
    }
  }
  return names;
}

std::string ChatSession::RenderPrompt() const { return text::RenderChat(Inputs(true), template_); }

ChatReply ChatSession::Respond(GenerateOptions options, const ChatCallbacks& callbacks) {
  const std::string prompt = RenderPrompt();
  // The parser reads generation prompt + output; the generation prompt is what rendering with
  // add_generation_prompt added (it depends on thinking mode and on the last message).
  const std::string history = text::RenderChat(Inputs(false), template_);
  text::ParserConfig config;
  config.tool_names = ToolNames();
  if (prompt.compare(0, history.size(), history) == 0) {
    config.generation_prompt = prompt.substr(history.size());
  } else {
    config.generation_prompt =
        thinking_ ? "<|turn>model\n" : "<|turn>model\n<|channel>thought\n<channel|>";
  }

  const text::Tokenizer& tokenizer = session_.tokenizer();
  // The template writes "<bos>" as text; parsing special tokens turns it into BOS.
  std::vector<int32_t> ids = tokenizer.Encode(prompt, /*add_bos=*/false, /*parse_special=*/true);
  if (ids.empty() || ids.front() != tokenizer.bos_id()) ids.insert(ids.begin(), tokenizer.bos_id());

  text::OutputParser parser(config);
  std::string streamed;  // content already handed to on_content
  auto deliver = [&](const text::ParseDelta& d) {
    if (!d.reasoning.empty() && callbacks.on_reasoning) callbacks.on_reasoning(d.reasoning);
    streamed += d.content;
    if (!d.content.empty() && callbacks.on_content) callbacks.on_content(d.content);
    if (callbacks.on_tool_call) {
      for (const text::ToolCallDelta& c : d.tool_calls) callbacks.on_tool_call(c);
    }
  };
  options.stop_at_eog = true;
  options.on_text = [&](std::string_view piece) {
    deliver(parser.Push(piece));
    return true;
  };
  ChatReply reply;
  const GenerateResult r = session_.Generate(ids, options);
  text::ParseDelta last;
  reply.parsed = parser.Finish(&last);
  deliver(last);
  if (reply.parsed.error) {
    reply.parsed.content = r.text;
    reply.parsed.reasoning.clear();
    reply.parsed.tool_calls.clear();
    const bool prefix = r.text.compare(0, streamed.size(), streamed) == 0;
    if (callbacks.on_content && r.text.size() > (prefix ? streamed.size() : 0)) {
      callbacks.on_content(std::string_view(r.text).substr(prefix ? streamed.size() : 0));
    }
  }
  reply.raw = r.text;
  reply.stats = r.stats;

  // History as the template expects it: visible content, tool calls as structured calls. The
  // reasoning of a tool-calling turn is kept; the template drops it after the next user turn.
  Json message = {{"role", "assistant"}, {"content", reply.parsed.content}};
  if (!reply.parsed.tool_calls.empty()) {
    Json calls = Json::array();
    for (const text::ParsedToolCall& c : reply.parsed.tool_calls) {
      Json arguments = Json::parse(c.arguments, nullptr, /*allow_exceptions=*/false);
      if (arguments.is_discarded()) arguments = c.arguments;
      calls.push_back(
          Json{{"type", "function"}, {"function", {{"name", c.name}, {"arguments", arguments}}}});
    }
    message["tool_calls"] = std::move(calls);
    if (!reply.parsed.reasoning.empty()) message["reasoning"] = reply.parsed.reasoning;
  }
  messages_.push_back(std::move(message));
  return reply;
}

}  // namespace hearth::engine
