// The assistant loop: build a budgeted context for a question, have the backend answer, run the
// tool calls it makes (with permissions), feed the results back, repeat until a final answer.
//
//   agent::Workspace ws = agent::Workspace::Open(".");
//   agent::Journal journal(ws);
//   agent::ToolBox tools(ws, agent::LoadConfig(ws), {.mode = kAsk, .journal = &journal});
//   auto backend = agent::MakeLocalBackend("model.gguf", {});
//   agent::Agent assistant(*backend, tools, journal);
//   agent::TurnResult r = assistant.Ask("where are tokens validated?", {}, callbacks);
//
// The Agent keeps the conversation, so `hearth chat` can call Ask once per user line; the system
// message (instructions, rules, repo map) stays the same across turns so a local engine can keep
// its KV state.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "agent/backend.h"
#include "agent/tools.h"
#include "agent/workspace.h"

namespace hearth::agent {

// One piece of context and why it is (or is not) in the prompt.
struct ContextItem {
  // "instructions", "rules", "tools", "repo map", "file", "chunk", "question", "media" (the
  // question's images and audio), "history"; left
  // out to keep a long conversation going: "turn" (an earlier question with its replies and tool
  // calls) and "tool result" (shortened)
  std::string kind;
  std::string source;  // file path and lines, or a description
  std::string why;     // which signal found it ("bm25 #1, symbol #3"), or "always"
  int tokens = 0;
  bool included = true;
  std::string left_out;  // why it was left out (budget), when !included
};

struct ContextReport {
  std::vector<ContextItem> items;
  int budget = 0;  // tokens the initial context may take
  int used = 0;
  bool exact = true;             // counted with the model's tokenizer (false: estimated)
  std::string Describe() const;  // a table for --explain-context and /context
  std::vector<std::string> LeftOut() const;  // one line per item left out
};

struct AskOptions {
  std::vector<std::string> files;  // --file paths, included whole or not at all
  bool think = false;
  int max_tokens = 2048;     // per model step
  int max_steps = 12;        // model steps (tool rounds) per question
  int context_budget = 0;    // tokens for the initial context; 0: context - max_tokens - 1/4
  int retrieved_chunks = 8;  // search results considered
  int map_tokens = 1024;     // repo map budget at most
  bool use_index = true;     // false: no repo map, no retrieval
  // Images and audio for the question, as content parts put before its text: the command
  // line's {"type":"image","path":F,"image_tokens":N} and {"type":"audio","path":F} (files the
  // user named; Backend::EncodeMedia reads them), or inline image_url / input_audio parts.
  nlohmann::ordered_json media = nlohmann::ordered_json::array();
  const std::atomic<bool>* cancel = nullptr;
};

struct AgentCallbacks {
  std::function<void(std::string_view)> on_content;
  std::function<void(std::string_view)> on_reasoning;
  std::function<void(const ToolCall&)> on_tool_call;
  std::function<void(const ToolCall&, const ToolResult&)> on_tool_result;
  std::function<void(const std::string&)> on_note;  // context left out, step limit, ...
  // After each model call: its 1-based number and the reply (token counts: prompt, reused from
  // the KV cache, generated).
  std::function<void(int, const ChatReply&)> on_step;
};

struct TurnResult {
  std::string answer;  // the final visible content
  int steps = 0;       // model calls made
  int tool_calls = 0;
  bool step_limit = false;  // stopped because max_steps was reached
  std::string finish_reason;
  std::vector<std::string> changed_files;  // written by edits (journaled: undo restores them)
  // Seen changed after `run` commands: not journaled, so undo does not restore them.
  std::vector<std::string> command_changed_files;
  ContextReport context;
};

// The default system prompt (before repository rules).
extern const char* const kSystemPrompt;

class Agent {
 public:
  Agent(Backend& backend, ToolBox& tools, Journal& journal);

  // Builds the context for `question` without asking anything (also what Ask uses).
  ContextReport PlanContext(const std::string& question, const AskOptions& options);

  // One user turn. Edits made during the turn form one change set in the journal. When it
  // throws, the conversation is left as it was before the call.
  //
  // A conversation longer than the context goes on: before planning, the earlier turns are cut
  // to half the context budget (so retrieval keeps room), and before each model step, when the
  // prompt plus the reply's room does not fit, the tool results of earlier steps are shortened
  // (with a note the model reads) and then the oldest whole turns dropped (a turn's tool calls
  // with their results; never the system message or the current question). Both show in
  // TurnResult::context; the first drop is announced once through on_note.
  TurnResult Ask(const std::string& question, const AskOptions& options,
                 const AgentCallbacks& callbacks);

  void Clear();  // forget the conversation (the system message is rebuilt on the next Ask)
  const nlohmann::ordered_json& messages() const { return messages_; }

 private:
  std::string BuildSystem(const std::string& question, const AskOptions& options,
                          ContextReport* report, std::string* user_context);
  TurnResult Turn(const std::string& question, const AskOptions& options,
                  const AgentCallbacks& callbacks);
  int HistoryTokens() const;  // tokens of the turns after the system message
  // Drops the oldest earlier turn (never the last user message when `keep_last`); false when
  // there is none. `tokens`: what it took, for the report.
  bool DropOldestTurn(bool keep_last, int tokens, ContextReport* report);
  void FitConversation(const AskOptions& options, const nlohmann::ordered_json& tools,
                       TurnResult& result, const AgentCallbacks& cb);

  Backend& backend_;
  ToolBox& tools_;
  Journal& journal_;
  nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();
  std::vector<std::string> questions_;  // the question of each user message in messages_
  std::vector<ContextItem> dropped_;    // turns dropped so far (shown with every report)
  bool told_dropped_ = false;           // the first drop is announced, the rest only reported
};

}  // namespace hearth::agent
