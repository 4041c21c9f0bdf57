#include "agent/agent.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "base/display.h"
#include "base/error.h"
#include "base/json_depth.h"
#include "index/index.h"
#include "text/chat_template.h"

namespace hearth::agent {
namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

const char* const kSystemPrompt =
    "You are hearth, a coding assistant working inside the user's repository. Answer questions "
    "about the code precisely and ground every claim in the code: read files, search and find "
    "symbols with the tools before answering, and cite paths and line numbers. When the user asks "
    "for a change, make it with edit_file (exact, unique old_text copied from the file) or "
    "write_file, then say briefly what you changed. Use run only for the commands listed in its "
    "description. Paths are relative to the repository root. If a tool call is refused, do not "
    "retry it; explain what you would do instead. Be concise.";

namespace {

struct Planned {
  std::string system;
  std::string user;
  ContextReport report;
};

// "bm25 #1, file bm25 #1, file path #3": the chunk's own ranks, then its file's.
std::string SignalsText(const std::vector<index::SignalScore>& chunk_signals,
                        const std::vector<index::SignalScore>& file_signals = {}) {
  std::string out;
  auto append = [&out](const std::vector<index::SignalScore>& signals, const char* prefix) {
    for (const auto& s : signals) {
      if (s.rank <= 0) continue;
      out += (out.empty() ? "" : ", ") + std::string(prefix) + s.signal + " #" +
             std::to_string(s.rank);
    }
  };
  append(chunk_signals, "");
  append(file_signals, "file ");
  return out.empty() ? "search" : out;
}

std::string Lines(const std::string& text, int from, int to) {
  std::string out;
  int line = 1;
  size_t start = 0;
  while (start <= text.size() && line <= to) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    if (line >= from) out.append(text, start, nl - start).push_back('\n');
    start = nl + 1;
    ++line;
    if (nl == text.size()) break;
  }
  return out;
}

}  // namespace

std::string ContextReport::Describe() const {
  std::ostringstream out;
  out << "context budget: " << budget << " tokens ("
      << (exact ? "counted with the model's tokenizer" : "estimated, ~4 bytes a token")
      << "), used " << used << "\n";
  for (const auto& it : items) {
    char line[64];
    std::snprintf(line, sizeof line, "  %-9s %-12s %6d  ", it.included ? "included" : "left out",
                  it.kind.c_str(), it.tokens);
    out << line << it.source << "  [" << it.why << "]";
    if (!it.included) out << "  -- " << it.left_out;
    out << "\n";
  }
  return out.str();
}

std::vector<std::string> ContextReport::LeftOut() const {
  std::vector<std::string> out;
  for (const auto& it : items) {
    if (!it.included) out.push_back(it.kind + " " + it.source + ": " + it.left_out);
  }
  return out;
}

Agent::Agent(Backend& backend, ToolBox& tools, Journal& journal)
    : backend_(backend), tools_(tools), journal_(journal) {}

void Agent::Clear() {
  messages_ = ordered_json::array();
  questions_.clear();
  dropped_.clear();
  told_dropped_ = false;
}

int Agent::HistoryTokens() const {
  if (messages_.size() <= 1) return 0;  // at most the system message, which is planned anew
  ordered_json turns = ordered_json::array();
  for (size_t i = 1; i < messages_.size(); ++i) turns.push_back(messages_[i]);
  // Rendered as the template writes them (tool calls and results included), plus the rows of
  // their images and audio.
  return backend_.CountTokens(text::RenderChat({{"messages", turns}, {"bos_token", ""}})) +
         backend_.MediaTokens(turns);
}

namespace {

// `history_tokens`: what the earlier turns of the conversation take; they are in the prompt too,
// so the new context gets that much less room.
Planned Plan(Backend& backend, ToolBox& tools, const std::string& question,
             const AskOptions& options, int history_tokens) {
  Planned p;
  ContextReport& r = p.report;
  r.exact = backend.exact_tokens();
  const int n_ctx = backend.context_size();
  r.budget = options.context_budget > 0 ? options.context_budget
                                        : std::max(256, n_ctx - options.max_tokens - n_ctx / 4);
  auto add = [&](ContextItem item, bool required) {
    const int left = r.budget - r.used;
    if (!required && item.tokens > left) {
      item.included = false;
      item.left_out = "needs " + std::to_string(item.tokens) + " tokens, " +
                      std::to_string(std::max(0, left)) + " left in the budget";
    } else {
      r.used += item.tokens;
    }
    r.items.push_back(item);
    return r.items.back().included;
  };

  const Workspace& ws = tools.workspace();
  p.system = kSystemPrompt;
  add({"instructions", "hearth system prompt", "always", backend.CountTokens(kSystemPrompt)}, true);

  // Tool declarations cost what they add to the rendered system turn.
  ordered_json decls = tools.Declarations();
  ordered_json with = {{"messages", {{{"role", "system"}, {"content", "x"}}}}, {"tools", decls}};
  ordered_json without = {{"messages", {{{"role", "system"}, {"content", "x"}}}}};
  int tool_tokens =
      backend.CountTokens(text::RenderChat(with)) - backend.CountTokens(text::RenderChat(without));
  add({"tools", std::to_string(decls.size()) + " tool declarations", "always", tool_tokens}, true);
  int question_tokens = backend.CountTokens(question);
  add({"question", "the question", "always", question_tokens}, true);
  if (!options.media.empty()) {
    const ordered_json turn = {{{"role", "user"}, {"content", options.media}}};
    const int media_tokens = backend.MediaTokens(turn);
    add({"media", std::to_string(options.media.size()) + " attached images and audio clips",
         "attached to the question", media_tokens},
        true);
    question_tokens += media_tokens;
  }
  if (history_tokens > 0) {
    add({"history", "earlier turns of this conversation", "the conversation so far",
         history_tokens},
        true);
  }

  for (const char* name : {"AGENTS.md", ".hearth/rules.md"}) {
    std::error_code ec;
    if (!fs::is_regular_file(ws.root() / name, ec)) continue;
    std::string text;
    try {
      text = ws.ReadFile(name);
    } catch (const Error& e) {  // e.g. a symlink, which the confined reads never follow
      r.items.push_back({"rules", name, "", 0, false, e.what()});
      continue;
    }
    std::string block = std::string("\n\nRepository instructions (") + name + "):\n" + text;
    if (add({"rules", name, "repository instructions", backend.CountTokens(block)}, false)) {
      p.system += block;
    }
  }

  // What the system turn holds so far: the same for every question of this repository.
  const int system_tokens = r.used - question_tokens - std::max(0, history_tokens);

  std::string user_context;
  for (const auto& f : options.files) {
    std::string text;
    try {
      text = ws.ReadFile(f);
    } catch (const Error& e) {
      // ReadFile's hints speak to the model (list_dir); a bad --file is the user's error.
      throw Error(e.error_class(), "--file " + f + ": " + e.what(),
                  "give a file inside the repository, relative to its root " + ws.root().string());
    }
    std::string block =
        "File " + f + ":\n```\n" + text + (text.ends_with('\n') ? "" : "\n") + "```\n\n";
    if (add({"file", f, "--file", backend.CountTokens(block)}, false)) user_context += block;
  }

  if (options.use_index) {
    // The map goes into the system turn and depends on nothing the question brings (not its
    // words, not its length): the system turn is then the same for every question, and its KV
    // state is reused across questions, turns and processes (prefix_cache.h). The question's
    // own code comes from retrieval, in the user turn.
    int map_budget = std::min(options.map_tokens, (r.budget - system_tokens) / 3);
    if (map_budget >= 64) {
      try {
        index::MapOptions mo;
        mo.token_budget = map_budget;
        std::string map = index::RepoMap(ws.root(), mo);
        if (!map.empty()) {
          std::string block =
              "\n\nRepository map (files ranked by how central they are, with "
              "their main definitions):\n" +
              map;
          if (add({"repo map", "index repo map", "PageRank over definitions/references",
                   backend.CountTokens(block)},
                  false)) {
            p.system += block;
          }
        }
      } catch (const Error& e) {
        r.items.push_back({"repo map", "index repo map", "", 0, false, e.what()});
      }
    }
    try {
      index::SearchOptions so;
      so.query = question;
      so.limit = options.retrieved_chunks;
      so.chunks_per_file = 2;
      std::string chunks;
      for (const auto& file : index::Search(ws.root(), so)) {
        std::string text;
        try {
          text = ws.ReadFile(file.path);
        } catch (const Error&) {
          continue;  // deleted since it was indexed
        }
        for (const auto& c : file.chunks) {
          std::string src =
              file.path + ":" + std::to_string(c.start_line) + "-" + std::to_string(c.end_line);
          if (!c.symbol.empty()) src += " (" + c.kind + " " + c.symbol + ")";
          std::string block =
              "From " + src + ":\n```\n" + Lines(text, c.start_line, c.end_line) + "```\n\n";
          if (add({"chunk", src, SignalsText(c.signals, file.file_signals),
                   backend.CountTokens(block)},
                  false)) {
            chunks += block;
          }
        }
      }
      if (!chunks.empty()) user_context += "Code found by searching for the question:\n\n" + chunks;
    } catch (const Error& e) {
      r.items.push_back({"chunk", "index search", "", 0, false, e.what()});
    }
  }
  p.user = user_context.empty() ? question : user_context + "Question: " + question;
  return p;
}

// Parses a call's argument text for the conversation history; on failure, why (for the model).
std::string ParseArgsForHistory(const std::string& arguments, ordered_json* out) {
  // Deeply nested arguments would crash whatever later writes or walks them recursively (the
  // next request's JSON, a template): refused before parsing.
  if (JsonDeeperThan(arguments, kMaxJsonDepth)) {
    return "nest deeper than " + std::to_string(kMaxJsonDepth) + " levels";
  }
  ordered_json a = ordered_json::parse(arguments, nullptr, false);
  if (a.is_discarded() || !a.is_object()) return "were malformed or cut off";
  *out = std::move(a);
  return {};
}

}  // namespace

namespace {

// A shortened tool result keeps its start and says so; the model reads the note and can call the
// tool again.
constexpr size_t kShortenedKeep = 300;
constexpr std::string_view kShortenedNote = "[hearth: this tool result was shortened to save ";

std::string ShortenResult(const std::string& text) {
  size_t cut = kShortenedKeep;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "\n" + std::string(kShortenedNote) +
         "context: " + std::to_string(cut) + " of " + std::to_string(text.size()) +
         " bytes kept; call the tool again if you need the rest]";
}

bool Shortenable(const ordered_json& m) {
  if (m.value("role", "") != "tool" || !m.contains("content") || !m["content"].is_string()) {
    return false;
  }
  const std::string& c = m["content"].get_ref<const std::string&>();
  return c.size() > kShortenedKeep + 120 && c.find(kShortenedNote) == std::string::npos;
}

std::string OneLine(std::string text, size_t max) {
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (text.size() > max) {
    size_t cut = max - 3;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = text.substr(0, cut) + "...";
  }
  return text;
}

}  // namespace

bool Agent::DropOldestTurn(bool keep_last, int tokens, ContextReport* report) {
  // A question starts a turn; the images a tool showed belong to the turn they are in.
  auto is_question = [&](size_t i) {
    return messages_[i].value("role", "") == "user" && !messages_[i].contains(kToolMediaKey);
  };
  size_t first = 1;  // messages_[0] is the system message
  while (first < messages_.size() && !is_question(first)) ++first;
  size_t next = first + 1;
  while (next < messages_.size() && !is_question(next)) ++next;
  if (first >= messages_.size() || (keep_last && next >= messages_.size())) return false;
  const int n = static_cast<int>(next - first);
  messages_.erase(messages_.begin() + static_cast<std::ptrdiff_t>(first),
                  messages_.begin() + static_cast<std::ptrdiff_t>(next));
  std::string question = questions_.empty() ? "" : questions_.front();
  if (!questions_.empty()) questions_.erase(questions_.begin());
  ContextItem item{"turn",
                   "\"" + OneLine(question, 60) + "\" (" + std::to_string(n) + " messages)",
                   "an earlier question",
                   tokens,
                   false,
                   "dropped: the conversation outgrew the context"};
  dropped_.push_back(item);
  if (report != nullptr) report->items.push_back(item);
  return true;
}

// Before each model step: when the prompt plus the reply's room does not fit, shorten the tool
// results of earlier steps (oldest first), then drop the oldest earlier turns (down to 7/8 of the
// limit, so that the next steps reuse the KV prefix), and only then the latest step's results.
void Agent::FitConversation(const AskOptions& options, const ordered_json& tools,
                            TurnResult& result, const AgentCallbacks& cb) {
  const int n_ctx = backend_.context_size();
  const int reserve = std::max(1, std::min(options.max_tokens, n_ctx / 4));
  const int limit = n_ctx - reserve;
  auto total = [&] {
    ordered_json in = {{"messages", messages_},
                       {"add_generation_prompt", true},
                       {"enable_thinking", options.think}};
    if (!tools.empty()) in["tools"] = tools;
    return backend_.CountTokens(text::RenderChat(in)) + backend_.MediaTokens(messages_);
  };
  int t = total();
  if (t <= limit) return;

  size_t last_call = 0;  // the latest step's tool-calling message: results after it are new
  for (size_t i = messages_.size(); i-- > 1;) {
    if (messages_[i].value("role", "") == "assistant") {
      last_call = i;
      break;
    }
  }
  int shortened = 0;
  auto shorten = [&](size_t from, size_t to) {
    for (size_t i = from; i < to && t > limit; ++i) {
      if (!Shortenable(messages_[i])) continue;
      std::string& c = messages_[i]["content"].get_ref<std::string&>();
      const int before = backend_.CountTokens(c);
      c = ShortenResult(c);
      const int after = backend_.CountTokens(c);
      t -= before - after;
      ++shortened;
      result.context.items.push_back({"tool result",
                                      messages_[i].value("name", "a tool") + " result",
                                      "an earlier step", before, false,
                                      "shortened to " + std::to_string(after) +
                                          " tokens to save context (the model is told)"});
    }
  };
  shorten(1, last_call);
  t = total();
  bool dropped = false;
  while (t > limit - n_ctx / 8) {
    const int before = t;
    // The turn's tokens are only known once it is gone.
    const size_t at = result.context.items.size();
    if (!DropOldestTurn(/*keep_last=*/true, 0, &result.context)) break;
    t = total();
    result.context.items[at].tokens = before - t;
    dropped_.back().tokens = before - t;
    dropped = true;
  }
  if (t > limit) {
    shorten(last_call + 1, messages_.size());
    t = total();
  }
  if (shortened > 0 && cb.on_note) {
    cb.on_note("shortened " + std::to_string(shortened) +
               " tool results to fit the context (the model is told)");
  }
  if (dropped && !told_dropped_) {
    told_dropped_ = true;
    if (cb.on_note) {
      cb.on_note("the conversation outgrew the context of " + std::to_string(n_ctx) +
                 " tokens: its oldest turns are left out from now on (/context lists them)");
    }
  }
}

ContextReport Agent::PlanContext(const std::string& question, const AskOptions& options) {
  return Plan(backend_, tools_, question, options, HistoryTokens()).report;
}

TurnResult Agent::Ask(const std::string& question, const AskOptions& options,
                      const AgentCallbacks& cb) {
  // A turn that fails (transport error, context full) leaves the conversation as it was, so the
  // next turn does not follow an unanswered user message.
  ordered_json messages = messages_;
  std::vector<std::string> questions = questions_;
  std::vector<ContextItem> dropped = dropped_;
  const bool told = told_dropped_;
  try {
    return Turn(question, options, cb);
  } catch (...) {
    messages_ = std::move(messages);
    questions_ = std::move(questions);
    dropped_ = std::move(dropped);
    told_dropped_ = told;
    throw;
  }
}

TurnResult Agent::Turn(const std::string& question, const AskOptions& options,
                       const AgentCallbacks& cb) {
  TurnResult result;
  // Earlier turns take at most half of the new context's budget (dropped down to a quarter, so
  // that the next questions reuse the KV prefix): the rest is for what this question needs.
  const int n_ctx = backend_.context_size();
  const int budget = options.context_budget > 0
                         ? options.context_budget
                         : std::max(256, n_ctx - options.max_tokens - n_ctx / 4);
  int history = HistoryTokens();
  bool dropped = false;
  if (history > budget / 2) {
    while (history > budget / 4) {
      const int before = history;
      if (!DropOldestTurn(/*keep_last=*/false, 0, nullptr)) break;
      history = HistoryTokens();
      dropped_.back().tokens = before - history;
      dropped = true;
    }
  }
  Planned plan = Plan(backend_, tools_, question, options, history);
  result.context = plan.report;
  for (const ContextItem& d : dropped_) result.context.items.push_back(d);
  if (dropped && !told_dropped_) {
    told_dropped_ = true;
    if (cb.on_note) {
      cb.on_note("the conversation outgrew the context of " + std::to_string(n_ctx) +
                 " tokens: its oldest turns are left out from now on (/context lists them)");
    }
  }
  for (const auto& line : plan.report.LeftOut()) {
    if (cb.on_note) cb.on_note("left out of the context: " + line);
  }
  // Everything that enters the conversation is made valid UTF-8 (bytes that are not become
  // U+FFFD): repository files, file names and model text may hold any bytes, and JSON may not.
  if (messages_.empty()) {
    messages_.push_back({{"role", "system"}, {"content", ValidUtf8(plan.system)}});
  }
  if (options.media.empty()) {
    messages_.push_back({{"role", "user"}, {"content", ValidUtf8(plan.user)}});
  } else {  // the images and clips first, then the text (what the template and llama.cpp expect)
    ordered_json parts = options.media;
    parts.push_back({{"type", "text"}, {"text", ValidUtf8(plan.user)}});
    messages_.push_back({{"role", "user"}, {"content", parts}});
  }
  questions_.push_back(ValidUtf8(question));
  journal_.Begin(question.substr(0, 200));

  ChatRequest req;
  req.tools = tools_.Declarations();
  req.think = options.think;
  req.max_tokens = options.max_tokens;
  req.on_content = cb.on_content;
  req.on_reasoning = cb.on_reasoning;
  req.cancel = options.cancel;
  tools_.set_cancel(options.cancel);

  struct CommitOnExit {  // a failed turn still closes its change set
    Journal& j;
    ~CommitOnExit() {
      try {
        j.Commit();
      } catch (...) {
      }
    }
  } commit{journal_};

  for (result.steps = 0; result.steps < options.max_steps;) {
    FitConversation(options, req.tools, result, cb);
    req.messages = messages_;
    ChatReply reply = backend_.Chat(req);
    ++result.steps;
    if (cb.on_step) cb.on_step(result.steps, reply);
    result.finish_reason = reply.finish_reason;
    if (reply.tool_calls.empty() || reply.finish_reason == "cancelled") {
      result.answer = reply.content;
      ordered_json msg = {{"role", "assistant"}, {"content", ValidUtf8(reply.content)}};
      messages_.push_back(msg);
      if (reply.malformed && cb.on_note) {
        cb.on_note("the model's output did not follow the tool-call format; shown as text");
      }
      journal_.Commit();
      return result;
    }
    // Content on a tool-calling message would be written after the results and close the turn
    // (template §2.3), so it is not kept; it was already streamed to the user.
    ordered_json msg = {{"role", "assistant"}, {"content", ""}};
    if (!reply.reasoning.empty()) msg["reasoning_content"] = ValidUtf8(reply.reasoning);
    ordered_json calls = ordered_json::array();
    std::vector<std::pair<ToolCall, ToolResult>> done;
    for (const ToolCall& call : reply.tool_calls) {
      ordered_json args = ordered_json::object();
      ToolResult tr;
      if (cb.on_tool_call) cb.on_tool_call(call);
      const std::string bad = call.complete ? ParseArgsForHistory(call.arguments, &args) : "";
      if (!call.complete || !bad.empty()) {
        const std::string why = bad.starts_with("nest") ? " (its arguments " + bad + ")" : "";
        tr = {false,
              "error: the call to " + ValidUtf8(call.name) + " was malformed or cut off" + why +
                  " and was not run; write the arguments again completely and plainly",
              {}};
      } else {
        tr = tools_.Call(call.name, call.arguments);
      }
      ++result.tool_calls;
      auto& changed = tr.journaled ? result.changed_files : result.command_changed_files;
      for (const auto& f : tr.changed_files) changed.push_back(f);
      if (cb.on_tool_result) cb.on_tool_result(call, tr);
      calls.push_back({{"id", ValidUtf8(call.id)},
                       {"type", "function"},
                       {"function", {{"name", ValidUtf8(call.name)}, {"arguments", args}}}});
      done.emplace_back(call, std::move(tr));
    }
    msg["tool_calls"] = calls;
    messages_.push_back(msg);
    for (const auto& [call, tr] : done) {
      messages_.push_back({{"role", "tool"},
                           {"tool_call_id", ValidUtf8(call.id)},
                           {"name", ValidUtf8(call.name)},
                           {"content", ValidUtf8(tr.text)}});
    }
    // The template writes only the text of tool results, so images a tool returned (view_image)
    // follow them in a message of their own, marked so that it never counts as a question.
    ordered_json shown = ordered_json::array();
    for (const auto& [call, tr] : done) {
      if (tr.media.empty()) continue;
      shown.push_back({{"type", "text"}, {"text", "[" + ValidUtf8(call.name) + " result]"}});
      for (const auto& part : tr.media) shown.push_back(part);
    }
    if (!shown.empty()) {
      messages_.push_back({{"role", "user"}, {"content", shown}, {kToolMediaKey, true}});
    }
  }
  result.step_limit = true;
  // Close the open model turn so that the conversation can go on.
  messages_.push_back({{"role", "assistant"}, {"content", "[stopped: step limit reached]"}});
  if (cb.on_note) {
    cb.on_note("stopped after " + std::to_string(options.max_steps) +
               " model steps without a final answer");
  }
  return result;
}

}  // namespace hearth::agent
