#include "engine/chat.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "text/tokenizer.h"

namespace hearth::engine {

using Json = nlohmann::ordered_json;

std::string GenerationPrompt(bool thinking) {
  std::string prompt(kModelTurn);
  if (!thinking) prompt += kEmptyThought;
  return prompt;
}

const char* FinishReasonName(FinishReason reason) {
  // In the enum's order.
  static constexpr const char* kNames[] = {"stop", "length", "tool_calls", "cancelled"};
  return kNames[static_cast<int>(reason)];
}

FinishReason FinishFor(StopReason stop, bool tool_calls) {
  if (stop == StopReason::kCancelled || stop == StopReason::kCallback) {
    return FinishReason::kCancelled;
  }
  if (tool_calls) return FinishReason::kToolCalls;
  if (stop == StopReason::kMaxTokens || stop == StopReason::kContextFull) {
    return FinishReason::kLength;
  }
  return FinishReason::kStop;
}

namespace {

// tool_choice required: the model turn starts with the call's opening (spec §3.2), with the
// name too when only one tool may be called, and the arguments are constrained to Gemma's call
// notation (against the tool's schema where supported). Returns the prefill text.
std::string ForceToolCall(const Json& tools, PreparedTurn& turn) {
  std::string prefill = "<|tool_call>call:";
  std::vector<std::pair<std::string, nlohmann::json>> choices;
  for (const auto& t : tools) {
    const auto& fn = t["function"];
    nlohmann::json params;
    if (fn.contains("parameters")) params = nlohmann::json::parse(fn["parameters"].dump());
    choices.emplace_back(tools.size() == 1 ? "" : fn["name"].get<std::string>(), params);
  }
  if (tools.size() == 1) prefill += tools[0]["function"]["name"].get<std::string>();
  turn.constraint = std::make_shared<const JsonConstraint>(JsonConstraint::ForToolCall(choices));
  turn.forced_call_suffix = "<tool_call|>";
  return prefill;
}

}  // namespace

PreparedTurn PrepareTurn(const TurnRequest& request, const text::Tokenizer* tokenizer) {
  if (!request.tools.is_array()) ThrowUsage("tools must be a list", "give a JSON array of tools");
  const bool tools = !request.tools.empty() && request.tool_choice != text::ToolChoice::kNone;
  Json inputs;
  inputs["messages"] = request.messages;
  if (tools) inputs["tools"] = request.tools;
  inputs["add_generation_prompt"] = true;
  inputs["enable_thinking"] = request.thinking;
  PreparedTurn turn;
  turn.prompt = text::RenderChat(inputs, request.chat_template);

  // The generation prompt is what rendering with add_generation_prompt appended (it depends on
  // thinking and on the last message). After a tool call or result the template appends nothing
  // — the model continues its open turn, where it may think again — and the parser still reads
  // a model turn, so the opening is put in front.
  inputs["add_generation_prompt"] = false;
  const std::string history = text::RenderChat(inputs, request.chat_template);
  std::string& generation_prompt = turn.parser.generation_prompt;
  generation_prompt = turn.prompt.starts_with(history) ? turn.prompt.substr(history.size())
                                                       : GenerationPrompt(request.thinking);
  if (!generation_prompt.starts_with(kModelTurn)) generation_prompt.insert(0, kModelTurn);

  if (tools) {
    for (const Json& t : request.tools) {
      if (t.contains("function") && t["function"].contains("name") &&
          t["function"]["name"].is_string()) {
        turn.parser.tool_names.push_back(t["function"]["name"].get<std::string>());
      }
    }
  }
  turn.parser.tool_choice = request.tool_choice;
  turn.parser.parallel_tool_calls = request.parallel_tool_calls;
  if (request.tool_choice == text::ToolChoice::kRequired && !request.tools.empty()) {
    // Enforced, not just asked for; thinking is skipped for such a turn.
    const std::string prefill = ForceToolCall(request.tools, turn);
    turn.prompt += prefill;
    generation_prompt += prefill;
  }
  if (request.format) turn.constraint = request.format;
  turn.forbid_tool_calls = request.tool_choice == text::ToolChoice::kNone;
  turn.malformed_if_nothing_parsed = request.malformed_if_nothing_parsed;

  // Without a tokenizer nothing is decoded, so the items are not needed (a text-only backend
  // sends the parts as they are).
  const size_t media_parts = MediaParts(request.messages).size();
  if (tokenizer != nullptr && media_parts != request.media.size()) {
    ThrowUsage("the messages hold " + std::to_string(media_parts) + " media parts but " +
                   std::to_string(request.media.size()) + " encoded items were given",
               "encode the media parts with the model's projector (--mmproj)");
  }
  if (tokenizer != nullptr && !request.media.empty()) {
    turn.tokens = EncodeWithMedia(turn.prompt, request.media, *tokenizer, &turn.media);
  } else if (tokenizer != nullptr) {
    // The template writes "<bos>" as text; parsing special tokens turns it into BOS.
    turn.tokens = tokenizer->Encode(turn.prompt, /*add_bos=*/false, /*parse_special=*/true);
    if (turn.tokens.empty() || turn.tokens.front() != tokenizer->bos_id()) {
      turn.tokens.insert(turn.tokens.begin(), tokenizer->bos_id());
    }
  }
  return turn;
}

TurnReader::TurnReader(const PreparedTurn& turn, DeltaFn on_delta)
    : turn_(turn), on_delta_(std::move(on_delta)), parser_(turn.parser) {}

void TurnReader::Push(std::string_view piece) {
  raw_ += piece;
  const text::ParseDelta d = parser_.Push(piece);
  streamed_ += d.content;
  if (!d.empty() && on_delta_) on_delta_(d);
}

ChatReply TurnReader::Finish(const GenerateStats& stats) {
  const StopReason stop = stats.stop_reason;
  if (!turn_.forced_call_suffix.empty() && stop == StopReason::kEndOfGeneration) {
    // The constrained arguments are complete: close the call as the model would have.
    const text::ParseDelta d = parser_.Push(turn_.forced_call_suffix);
    if (!d.empty() && on_delta_) on_delta_(d);
  }
  ChatReply reply;
  text::ParseDelta last;
  reply.parsed = parser_.Finish(&last);
  streamed_ += last.content;
  if (!last.empty() && on_delta_) on_delta_(last);
  text::ParsedOutput& out = reply.parsed;
  const bool blank = raw_.find_first_not_of(" \t\r\n") == std::string::npos;
  if (turn_.malformed_if_nothing_parsed && !out.error && !blank && out.content.empty() &&
      out.reasoning.empty() && out.tool_calls.empty()) {
    out.error = true;
  }
  if (out.error) {
    // Not in the model's format: the text as it came is the answer (as llama.cpp does).
    out.content = raw_;
    out.reasoning.clear();
    out.tool_calls.clear();
    const bool prefix = raw_.starts_with(streamed_);
    reply.unstreamed = raw_.substr(prefix ? streamed_.size() : 0);
  }
  reply.raw = std::move(raw_);
  reply.stats = stats;
  reply.finish = FinishFor(stop, !out.tool_calls.empty());
  return reply;
}

ChatReply RunTurn(Session& session, const PreparedTurn& turn, GenerateOptions options,
                  TurnReader::DeltaFn on_delta) {
  TurnReader reader(turn, std::move(on_delta));
  options.stop_at_eog = true;
  options.constraint = turn.constraint;
  if (turn.forbid_tool_calls) {
    // "none" means no call: the model cannot even open one.
    if (const auto id = session.tokenizer().Find("<|tool_call>")) {
      options.sampling.logit_bias.emplace_back(*id, -INFINITY);
    }
  }
  options.on_text = [&](std::string_view piece) {
    reader.Push(piece);
    return true;
  };
  const GenerateResult g = session.Generate(turn.tokens, turn.media, options);
  return reader.Finish(g.stats);
}

// ---------------------------------------------------------------- ChatSession

ChatSession::ChatSession(Session& session, text::ChatTemplate tmpl)
    : session_(session), template_(tmpl) {}

void ChatSession::set_tools(Json tools) {
  if (!tools.is_array()) ThrowUsage("tools must be a list", "give a JSON array of tools");
  tools_ = std::move(tools);
}

void ChatSession::AddUser(std::string text) {
  messages_.push_back(Json{{"role", "user"}, {"content", std::move(text)}});
}

void ChatSession::AddUser(std::string text, std::vector<MediaPtr> media) {
  if (media.empty()) return AddUser(std::move(text));
  Json content = Json::array();
  for (const MediaPtr& m : media) content.push_back(Json{{"type", MediaKindName(m->kind)}});
  content.push_back(Json{{"type", "text"}, {"text", std::move(text)}});
  messages_.push_back(Json{{"role", "user"}, {"content", std::move(content)}});
  media_.insert(media_.end(), media.begin(), media.end());
}

void ChatSession::AddMessage(Json message) {
  const size_t parts = MediaParts(Json::array({message})).size();
  if (parts > 0) {
    ThrowUsage("AddMessage takes messages without media; use AddUser(text, media)");
  }
  messages_.push_back(std::move(message));
}

void ChatSession::PopMessage() {
  if (messages_.empty()) return;
  const size_t parts = MediaParts(Json::array({messages_.back()})).size();
  media_.resize(media_.size() - std::min(parts, media_.size()));
  messages_.erase(messages_.end() - 1);
}

TurnRequest ChatSession::Request() const {
  TurnRequest request;
  if (!system_.empty()) {
    request.messages.push_back(Json{{"role", "system"}, {"content", system_}});
  }
  for (const Json& m : messages_) request.messages.push_back(m);
  request.tools = tools_;
  request.thinking = thinking_;
  request.chat_template = template_;
  request.media = media_;
  return request;
}

std::string ChatSession::RenderPrompt() const { return PrepareTurn(Request(), nullptr).prompt; }

namespace {

// Erases messages [first, last) and their media items (`media` holds one item per media part of
// `messages`, in order), so the two stay in step.
void EraseMessages(Json& messages, std::vector<MediaPtr>& media, size_t first, size_t last) {
  Json before = Json::array(), erased = Json::array();
  for (size_t i = 0; i < last; ++i) (i < first ? before : erased).push_back(messages[i]);
  const size_t at = std::min(MediaParts(before).size(), media.size());
  const size_t n = std::min(MediaParts(erased).size(), media.size() - at);
  media.erase(media.begin() + static_cast<std::ptrdiff_t>(at),
              media.begin() + static_cast<std::ptrdiff_t>(at + n));
  messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(first),
                 messages.begin() + static_cast<std::ptrdiff_t>(last));
}

}  // namespace

ContextFit ChatSession::FitToContext(int reserve) {
  const int n_ctx = session_.n_ctx();
  auto count = [&] {
    return static_cast<int>(PrepareTurn(Request(), &session_.tokenizer()).tokens.size());
  };
  ContextFit fit;
  fit.prompt_tokens = count();
  if (fit.prompt_tokens + reserve <= n_ctx) return fit;
  // The oldest turn: [first, next), from the first user message to the next one; none when the
  // first user message is the last one (the current question).
  auto oldest = [&](size_t& first, size_t& next) {
    first = 0;
    while (first < messages_.size() && messages_[first].value("role", "") != "user") ++first;
    next = first + 1;
    while (next < messages_.size() && messages_[next].value("role", "") != "user") ++next;
    return next < messages_.size();
  };
  size_t first = 0, next = 0;
  {
    // A question that does not fit even alone costs no history: Respond refuses it as it is.
    size_t last = messages_.size();
    while (last > 0 && messages_[last - 1].value("role", "") != "user") --last;
    if (!oldest(first, next) || last == 0) return fit;
    Json all = messages_;
    const std::vector<MediaPtr> all_media = media_;
    EraseMessages(messages_, media_, first, last - 1);
    const int alone = count();
    messages_ = std::move(all);
    media_ = all_media;
    if (alone >= n_ctx) return fit;
  }
  const int target = n_ctx - n_ctx / 4;
  while (fit.prompt_tokens + reserve > target && oldest(first, next)) {
    DroppedTurn d;
    const Json& content = messages_[first]["content"];
    d.opening = content.is_string() ? content.get<std::string>() : content.dump();
    for (char& c : d.opening) {
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    }
    if (d.opening.size() > 60) {
      size_t cut = 57;
      while (cut > 0 && (static_cast<unsigned char>(d.opening[cut]) & 0xC0) == 0x80) --cut;
      d.opening = d.opening.substr(0, cut) + "...";
    }
    d.messages = static_cast<int>(next - first);
    EraseMessages(messages_, media_, first, next);
    const int now = count();
    d.tokens = fit.prompt_tokens - now;
    fit.prompt_tokens = now;
    fit.dropped.push_back(d);
    dropped_.push_back(std::move(d));
  }
  return fit;
}

ChatReply ChatSession::Respond(GenerateOptions options, const ChatCallbacks& callbacks) {
  const PreparedTurn turn = PrepareTurn(Request(), &session_.tokenizer());
  ChatReply reply = RunTurn(session_, turn, std::move(options), [&](const text::ParseDelta& d) {
    if (!d.reasoning.empty() && callbacks.on_reasoning) callbacks.on_reasoning(d.reasoning);
    if (!d.content.empty() && callbacks.on_content) callbacks.on_content(d.content);
    if (callbacks.on_tool_call) {
      for (const text::ToolCallDelta& c : d.tool_calls) callbacks.on_tool_call(c);
    }
  });
  if (!reply.unstreamed.empty() && callbacks.on_content) callbacks.on_content(reply.unstreamed);

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
