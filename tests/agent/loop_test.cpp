// The assistant loop with a scripted backend that replies in real Gemma 4 output syntax (thoughts,
// one or several tool calls, malformed calls), and the remote backend against a local scripted
// HTTP server.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <thread>

#include "agent/agent.h"
#include "agent_test_util.h"
#include "base/base64.h"
#include "base/error.h"
#include "engine/media.h"
#include "file_server.h"
#include "index/index.h"
#include "scripted_server.h"
#include "text/chat_template.h"

namespace hearth::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Read;
using testing::ScriptedServer;
using testing::TempRepo;
using testing::Write;

const std::string Q = "<|\"|>";  // Gemma 4's string quote token

// Replies with scripted raw model output, split into small pieces to exercise streaming; records
// every rendered prompt. Tokens are counted as bytes / 4 (no tokenizer needed).
class ScriptedBackend : public GemmaBackend {
 public:
  explicit ScriptedBackend(std::vector<std::string> outputs)
      : outputs_(outputs.begin(), outputs.end()) {}
  std::string Describe() const override { return "scripted"; }
  int CountTokens(std::string_view text) const override { return int(text.size() + 3) / 4; }
  bool exact_tokens() const override { return false; }
  int context_size() const override { return context_size_; }

  std::vector<std::string> prompts;
  int context_size_ = 8192;
  // take_media: each media part is "encoded" as 10 rows (and recorded) instead of refused.
  bool take_media_ = false;
  std::vector<nlohmann::ordered_json> media_parts;

 protected:
  std::vector<engine::MediaPtr> EncodeMedia(const nlohmann::ordered_json& messages) override {
    if (!take_media_) return GemmaBackend::EncodeMedia(messages);
    std::vector<engine::MediaPtr> out;
    media_parts.clear();
    for (const auto* part : engine::MediaParts(messages)) {
      media_parts.push_back(*part);
      auto m = std::make_shared<engine::MediaEmbedding>();
      m->kind = engine::MediaKind::kImage;
      m->n_embd = 4;
      m->rows.assign(40, 0.0f);
      m->chunks = {10};
      out.push_back(m);
    }
    return out;
  }
  engine::GenerateStats Generate(const std::string& prompt, int,
                                 const std::function<bool(std::string_view)>& on_piece,
                                 const std::atomic<bool>*) override {
    prompts.push_back(prompt);
    engine::GenerateStats r;
    if (outputs_.empty()) throw Error(ErrorClass::kInternal, "script exhausted");
    std::string out = outputs_.front();
    outputs_.pop_front();
    for (size_t i = 0; i < out.size(); i += 3) on_piece(std::string_view(out).substr(i, 3));
    r.stop_reason = engine::StopReason::kEndOfGeneration;
    return r;
  }

 private:
  std::deque<std::string> outputs_;
};

class LoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Write(repo_.path() / "src/auth.py",
          "def validate_token(token):\n"
          "    if token.expired:\n"
          "        raise ValueError('expired')\n"
          "    return True\n");
    Write(repo_.path() / "AGENTS.md", "Always use type hints.\n");
  }
  ToolBox Tools(PermissionMode mode) {
    ToolOptions opt;
    opt.mode = mode;
    opt.journal = &journal_;
    opt.confirm = [this](const std::string& s, const std::string&) {
      asked_.push_back(s);
      return answer_;
    };
    return ToolBox(ws_, {}, opt);
  }
  AgentCallbacks Callbacks() {
    AgentCallbacks cb;
    cb.on_content = [this](std::string_view s) { content_ += s; };
    cb.on_reasoning = [this](std::string_view s) { reasoning_ += s; };
    cb.on_tool_call = [this](const ToolCall& c) { calls_.push_back(c.name + " " + c.arguments); };
    cb.on_note = [this](const std::string& n) { notes_.push_back(n); };
    return cb;
  }

  TempRepo repo_;
  Workspace ws_ = Workspace::AtRoot(repo_.path());
  Journal journal_{ws_};
  std::vector<std::string> asked_, calls_, notes_;
  std::string content_, reasoning_;
  bool answer_ = true;
};

TEST_F(LoopTest, ToolCallThenAnswer) {
  ScriptedBackend backend({
      "<|channel>thought\nI should read the file.<channel|><|tool_call>call:read_file{path:" + Q +
          "src/auth.py" + Q + ",start_line:2,end_line:3}<tool_call|>",
      "Tokens are validated in `validate_token` (src/auth.py:1-4).",
  });
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  Agent agent(backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  opt.think = true;
  TurnResult r = agent.Ask("where are tokens validated?", opt, Callbacks());
  EXPECT_EQ(r.answer, "Tokens are validated in `validate_token` (src/auth.py:1-4).");
  EXPECT_EQ(content_, r.answer);
  EXPECT_EQ(reasoning_, "I should read the file.");
  EXPECT_EQ(r.steps, 2);
  EXPECT_EQ(r.tool_calls, 1);
  EXPECT_EQ(calls_, std::vector<std::string>{
                        "read_file {\"path\":\"src/auth.py\",\"start_line\":2,\"end_line\":3}"});
  ASSERT_EQ(backend.prompts.size(), 2u);
  // First prompt: system turn with thinking, instructions, AGENTS.md and tool declarations.
  EXPECT_EQ(backend.prompts[0].rfind("<bos><|turn>system\n<|think|>\nYou are hearth", 0), 0u);
  EXPECT_NE(backend.prompts[0].find("Always use type hints."), std::string::npos);
  EXPECT_NE(backend.prompts[0].find("<|tool>declaration:read_file{"), std::string::npos);
  EXPECT_TRUE(backend.prompts[0].ends_with(
      "<|turn>user\nwhere are tokens validated?<turn|>\n<|turn>model\n"));
  // Second prompt: the call and its result in the template's format, the turn left open.
  EXPECT_TRUE(backend.prompts[1].ends_with(
      "<|turn>model\n<|channel>thought\nI should read the file.\n<channel|>"
      "<|tool_call>call:read_file{end_line:3,path:" +
      Q + "src/auth.py" + Q +
      ",start_line:2}<tool_call|><|tool_response>response:read_file{value:" + Q +
      "[src/auth.py lines 2-3 of 4]\n    if token.expired:\n        raise ValueError('expired')\n" +
      Q + "}<tool_response|>"))
      << backend.prompts[1];
}

TEST_F(LoopTest, EditWithPermissionThenUndo) {
  ScriptedBackend backend({
      "<|tool_call>call:edit_file{new_text:" + Q + "raise TokenExpired()" + Q + ",old_text:" + Q +
          "raise ValueError('expired')" + Q + ",path:" + Q + "src/auth.py" + Q + "}<tool_call|>",
      "Done: it raises TokenExpired now.",
  });
  ToolBox tools = Tools(PermissionMode::kAsk);
  Agent agent(backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  TurnResult r = agent.Ask("raise TokenExpired instead", opt, Callbacks());
  EXPECT_EQ(asked_, std::vector<std::string>{"edit src/auth.py"});
  EXPECT_EQ(r.changed_files, std::vector<std::string>{"src/auth.py"});
  EXPECT_NE(Read(repo_.path() / "src/auth.py").find("raise TokenExpired()"), std::string::npos);
  EXPECT_NE(
      backend.prompts[1].find("response:edit_file{value:" + Q + "edited src/auth.py at line 3"),
      std::string::npos);
  EXPECT_TRUE(fs::exists(repo_.path() / ".hearth/journal/000001/complete"));
  UndoResult u = UndoLast(ws_);
  EXPECT_EQ(u.title, "raise TokenExpired instead");
  EXPECT_NE(Read(repo_.path() / "src/auth.py").find("ValueError"), std::string::npos);
}

TEST_F(LoopTest, RefusedAndMalformedAndParallelCalls) {
  answer_ = false;
  ScriptedBackend backend({
      // Two calls at once: a write (refused by the user) and an escape attempt.
      "<|tool_call>call:write_file{content:" + Q + "x" + Q + ",path:" + Q + "a.txt" + Q +
          "}<tool_call|><|tool_call>call:read_file{path:" + Q + "../../etc/passwd" + Q +
          "}<tool_call|>",
      // A call cut off in the middle (unterminated arguments).
      "<|tool_call>call:read_file{path:" + Q + "src/au",
  });
  ToolBox tools = Tools(PermissionMode::kAsk);
  Agent agent(backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  opt.max_steps = 2;
  TurnResult r = agent.Ask("do things", opt, Callbacks());
  EXPECT_FALSE(fs::exists(repo_.path() / "a.txt"));
  EXPECT_NE(backend.prompts[1].find("refused: the user did not allow writing a.txt"),
            std::string::npos);
  EXPECT_NE(backend.prompts[1].find("leaves the workspace"), std::string::npos);
  EXPECT_EQ(r.tool_calls, 3);
  EXPECT_TRUE(r.step_limit);
  ASSERT_FALSE(notes_.empty());
  EXPECT_NE(notes_.back().find("stopped after 2 model steps"), std::string::npos);
  // The truncated call came back as an error the model can read; the conversation is closed.
  EXPECT_EQ(agent.messages().back()["content"], "[stopped: step limit reached]");
  bool saw_malformed = false;
  for (const auto& m : agent.messages()) {
    if (m.value("role", "") == "tool" &&
        m.value("content", "").find("malformed or cut off") != std::string::npos) {
      saw_malformed = true;
    }
  }
  EXPECT_TRUE(saw_malformed);
}

TEST_F(LoopTest, ContextIsBudgetedAndExplained) {
  Write(repo_.path() / "src/session.py",
        "def refresh_session(session):\n    session.touch()\n    return session\n");
  index::BuildOptions bo;
  bo.root = repo_.path();
  bo.threads = 1;
  index::BuildIndex(bo);
  std::string big(40000, 'x');
  Write(repo_.path() / "big.txt", big);
  Write(repo_.path() / "small.txt", "small file\n");
  ScriptedBackend backend({"ok"});
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  Agent agent(backend, tools, journal_);
  AskOptions opt;
  opt.files = {"small.txt", "big.txt"};
  opt.context_budget = 3000;
  ContextReport rep = agent.PlanContext("where is validate_token checking expired tokens", opt);
  EXPECT_EQ(rep.budget, 3000);
  EXPECT_LE(rep.used, 3000);
  std::string explained = rep.Describe();
  EXPECT_NE(explained.find("included  file"), std::string::npos) << explained;
  EXPECT_NE(explained.find("left out  file"), std::string::npos) << explained;
  EXPECT_NE(explained.find("big.txt  [--file]  -- needs 1000"), std::string::npos) << explained;
  EXPECT_NE(explained.find("src/auth.py:1-4 (function validate_token)"), std::string::npos)
      << explained;
  EXPECT_NE(explained.find("[bm25 #1"), std::string::npos) << explained;
  EXPECT_NE(explained.find("included  rules"), std::string::npos) << explained;
  ASSERT_EQ(rep.LeftOut().size(), 1u);

  TurnResult r = agent.Ask("where is validate_token checking expired tokens", opt, Callbacks());
  EXPECT_EQ(r.answer, "ok");
  ASSERT_EQ(notes_.size(), 1u);
  EXPECT_NE(notes_[0].find("left out of the context: file big.txt"), std::string::npos);
  const std::string& p = backend.prompts[0];
  EXPECT_NE(p.find("small file"), std::string::npos);
  EXPECT_EQ(p.find(big.substr(0, 100)), std::string::npos);
  EXPECT_NE(p.find("From src/auth.py:1-4"), std::string::npos);
  EXPECT_NE(p.find("Repository map"), std::string::npos);
}

// Output that is not in Gemma 4's format (an unknown channel, spec parse case
// non_thought_channel_is_error; with tools declared the parser drops it silently) is shown as it
// is, not lost.
TEST_F(LoopTest, MalformedOutputIsShownRaw) {
  ScriptedBackend backend({"<|channel>analysis\nfoo<channel|>bar"});
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  Agent agent(backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  opt.think = true;
  TurnResult r = agent.Ask("hi", opt, Callbacks());
  EXPECT_EQ(r.answer, "<|channel>analysis\nfoo<channel|>bar");
  EXPECT_EQ(content_, r.answer);
  EXPECT_EQ(r.tool_calls, 0);
  ASSERT_EQ(notes_.size(), 1u);
  EXPECT_NE(notes_[0].find("did not follow"), std::string::npos);
}

TEST_F(LoopTest, SecondTurnKeepsTheSystemPrefix) {
  ScriptedBackend backend({"first answer", "second answer"});
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  Agent agent(backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  TurnResult one = agent.Ask("one", opt, Callbacks());
  TurnResult two = agent.Ask("two", opt, Callbacks());
  ASSERT_EQ(backend.prompts.size(), 2u);
  // Turn 2's budget counts the earlier turn, as the template renders it.
  auto history = [](const TurnResult& r) {
    for (const auto& it : r.context.items) {
      if (it.kind == "history") return it.tokens;
    }
    return 0;
  };
  EXPECT_EQ(history(one), 0);
  // At least "<|turn>user\none<turn|>\n<|turn>model\nfirst answer<turn|>\n" (bytes / 4).
  EXPECT_GE(history(two), (52 + 3) / 4);
  EXPECT_LT(history(two), 40);
  EXPECT_EQ(two.context.used - one.context.used,
            history(two) + backend.CountTokens("two") - backend.CountTokens("one"));
  // Turn 2's prompt extends turn 1's prompt (prefix reuse in a local engine).
  std::string first = backend.prompts[0];
  first.erase(first.size() - std::string("<|turn>model\n<|channel>thought\n<channel|>").size());
  EXPECT_EQ(backend.prompts[1].rfind(first, 0), 0u);
  EXPECT_NE(backend.prompts[1].find("first answer<turn|>\n<|turn>user\ntwo<turn|>"),
            std::string::npos);
}

// The tokens (bytes / 4) of the first prompt of a one-question conversation: the system turn,
// the tools and the question.
int BasePromptTokens(ToolBox& tools, Journal& journal) {
  ScriptedBackend probe({"ok"});
  Agent agent(probe, tools, journal);
  AskOptions opt;
  opt.use_index = false;
  agent.Ask("Question 0", opt, {});
  return probe.CountTokens(probe.prompts[0]);
}

// Ten questions in a context that holds about four: the oldest whole turns are dropped (the first
// one's tool call together with its result), said once, listed in the report; the system message
// and the current question always stay.
TEST_F(LoopTest, ALongConversationDropsTheOldestTurns) {
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  const int base = BasePromptTokens(tools, journal_);
  const std::string filler(240, 'x');
  std::vector<std::string> outputs = {"<|tool_call>call:read_file{path:" + Q + "src/auth.py" + Q +
                                      "}<tool_call|>"};
  for (int i = 0; i < 10; ++i) outputs.push_back("Answer " + std::to_string(i) + " " + filler);
  ScriptedBackend backend(outputs);
  backend.context_size_ = base + 700;
  Agent agent(backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  opt.max_tokens = 100;
  TurnResult r;
  for (int i = 0; i < 10; ++i) {
    const std::string q = "Question " + std::to_string(i) + " " + filler;
    ASSERT_NO_THROW(r = agent.Ask(q, opt, Callbacks())) << "turn " << i;
    EXPECT_EQ(r.answer, "Answer " + std::to_string(i) + " " + filler);
    const std::string& prompt = backend.prompts.back();
    EXPECT_LE(backend.CountTokens(prompt) + 100, backend.context_size_) << "turn " << i;
    EXPECT_EQ(prompt.rfind("<bos><|turn>system\nYou are hearth", 0), 0u);
    EXPECT_NE(prompt.find("<|turn>user\n" + q + "<turn|>"), std::string::npos) << "turn " << i;
  }
  const std::string& last = backend.prompts.back();
  EXPECT_EQ(last.find("Question 0 "), std::string::npos);
  EXPECT_EQ(last.find("<|tool_response>"), std::string::npos);  // went with its call
  EXPECT_EQ(last.find("<|tool_call>"), std::string::npos);
  int told = 0;
  for (const auto& n : notes_) told += n.find("the conversation outgrew the context") == 0;
  EXPECT_EQ(told, 1);
  std::vector<const ContextItem*> turns;
  for (const auto& it : r.context.items) {
    if (it.kind == "turn") turns.push_back(&it);
  }
  ASSERT_GE(turns.size(), 3u) << r.context.Describe();
  EXPECT_FALSE(turns[0]->included);
  EXPECT_EQ(turns[0]->source.rfind("\"Question 0 xxx", 0), 0u) << turns[0]->source;
  EXPECT_TRUE(turns[0]->source.ends_with("...\" (4 messages)")) << turns[0]->source;
  EXPECT_GT(turns[0]->tokens, 100);
  EXPECT_NE(r.context.Describe().find("dropped: the conversation outgrew the context"),
            std::string::npos);
  // /clear forgets the dropped turns too.
  agent.Clear();
  EXPECT_TRUE(agent.messages().empty());
}

// Many tool rounds in one question: the results of earlier steps are shortened (with a note the
// model reads) before anything else; the latest step's result stays whole.
TEST_F(LoopTest, ManyStepsShortenOldToolResults) {
  std::string big;
  for (int i = 0; i < 60; ++i) big += "line " + std::to_string(i) + " of the big file, padded..\n";
  Write(repo_.path() / "src/big.txt", big);
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  const int base = BasePromptTokens(tools, journal_);
  const std::string call =
      "<|tool_call>call:read_file{path:" + Q + "src/big.txt" + Q + "}<tool_call|>";
  ScriptedBackend backend({call, call, call, "It has 60 lines."});
  const int result_tokens = static_cast<int>(big.size()) / 4;
  backend.context_size_ = base + 2 * result_tokens + 400;
  Agent agent(backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  opt.max_tokens = 100;
  TurnResult r = agent.Ask("Question 0", opt, Callbacks());
  EXPECT_EQ(r.answer, "It has 60 lines.");
  ASSERT_EQ(backend.prompts.size(), 4u);
  const std::string note = "[hearth: this tool result was shortened to save context: ";
  EXPECT_EQ(backend.prompts[1].find(note), std::string::npos);
  const std::string& last = backend.prompts[3];
  EXPECT_LE(backend.CountTokens(last) + 100, backend.context_size_);
  EXPECT_NE(last.find(note), std::string::npos) << last;
  // The latest result is whole (its last line is there after the last note).
  EXPECT_NE(last.find("line 59 of the big file", last.rfind(note)), std::string::npos);
  // The shortened one keeps its start.
  EXPECT_LT(last.find("line 0 of the big file"), last.find(note));
  bool noted = false;
  for (const auto& n : notes_) noted |= n.find("tool results to fit the context") != n.npos;
  EXPECT_TRUE(noted);
  bool reported = false;
  for (const auto& it : r.context.items) reported |= it.kind == "tool result" && !it.included;
  EXPECT_TRUE(reported) << r.context.Describe();
}

// ---------------------------------------------------------------- remote backend

TEST_F(LoopTest, RemoteOpenAiBackendRunsTheLoop) {
  json call = {{"choices",
                {{{"message",
                   {{"role", "assistant"},
                    {"content", nullptr},
                    {"tool_calls",
                     {{{"id", "call_a"},
                       {"type", "function"},
                       {"function",
                        {{"name", "read_file"},
                         {"arguments", "{\"path\":\"src/auth.py\",\"end_line\":1}"}}}}}}}},
                  {"finish_reason", "tool_calls"}}}}};
  json answer = {{"choices",
                  {{{"message", {{"role", "assistant"}, {"content", "In auth.py."}}},
                    {"finish_reason", "stop"}}}},
                 {"usage", {{"prompt_tokens", 50}, {"completion_tokens", 4}}}};
  ScriptedServer server({call.dump(), answer.dump()}, "/v1/chat/completions");
  auto backend = MakeRemoteBackend(server.url(), {.model = "gemma4"});
  EXPECT_EQ(backend->Describe(), "OpenAI-compatible server " + server.url("/v1/chat/completions"));
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  Agent agent(*backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  TurnResult r = agent.Ask("where?", opt, Callbacks());
  EXPECT_EQ(r.answer, "In auth.py.");
  EXPECT_EQ(content_, "In auth.py.");
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.requests()[0]["model"], "gemma4");
  EXPECT_EQ(server.requests()[0]["stream"], true);
  EXPECT_EQ(server.requests()[0]["tools"][0]["function"]["name"], "read_file");
  const json msgs = server.requests()[1]["messages"];
  ASSERT_EQ(msgs.size(), 4u);
  EXPECT_EQ(msgs[2]["tool_calls"][0]["function"]["name"], "read_file");
  EXPECT_EQ(msgs[3]["role"], "tool");
  EXPECT_EQ(msgs[3]["tool_call_id"], "call_a");
  EXPECT_EQ(msgs[3]["content"], "[src/auth.py lines 1-1 of 4]\ndef validate_token(token):\n");
}

// Item 7 of the issue: with a remote backend only the configured host is contacted. A server
// that answers with a redirect to another server, and a proxy named in the environment, must
// both see nothing: the backend follows no redirects and uses no proxy.
TEST_F(LoopTest, RemoteBackendContactsOnlyItsHost) {
  testing::FileServer elsewhere, proxy, configured;
  const json answer = {
      {"choices",
       {{{"message", {{"role", "assistant"}, {"content", "hi"}}}, {"finish_reason", "stop"}}}}};
  elsewhere.Set("/v1/chat/completions", testing::Route{.body = answer.dump()});
  configured.Set("/v1/chat/completions",
                 testing::Route{.redirect_to = elsewhere.url("/v1/chat/completions")});
  const std::string proxy_url = proxy.url("");
  for (const char* var : {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"}) {
    ::setenv(var, proxy_url.c_str(), 1);
  }
  ::unsetenv("no_proxy");
  ::unsetenv("NO_PROXY");
  auto backend = MakeRemoteBackend(configured.url("/v1"), {.model = "gemma4"});
  ChatRequest request;
  request.messages = json::array({{{"role", "user"}, {"content", "hello"}}});
  EXPECT_THROW(backend->Chat(request), Error);  // a 302 is not an answer
  for (const char* var : {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"}) ::unsetenv(var);
  EXPECT_EQ(configured.requests().size(), 1u);
  EXPECT_TRUE(elsewhere.requests().empty()) << "the redirect was followed";
  EXPECT_TRUE(proxy.requests().empty()) << "the proxy was used";
}

TEST_F(LoopTest, RemoteOllamaBackend) {
  json call = {
      {"message",
       {{"role", "assistant"},
        {"content", ""},
        {"tool_calls", {{{"function", {{"name", "list_dir"}, {"arguments", json::object()}}}}}}}},
      {"done", true}};
  json answer = {
      {"message", {{"role", "assistant"}, {"content", "Two files."}, {"thinking", "hmm"}}},
      {"done", true},
      {"done_reason", "stop"}};
  ScriptedServer server({call.dump(), answer.dump()}, "/api/chat");
  auto backend = MakeRemoteBackend(server.url("/api/chat"), {.model = "gemma4:e2b"});
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  Agent agent(*backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  TurnResult r = agent.Ask("what is here?", opt, Callbacks());
  EXPECT_EQ(r.answer, "Two files.");
  EXPECT_EQ(reasoning_, "hmm");
  ASSERT_EQ(server.requests().size(), 2u);
  const json msgs = server.requests()[1]["messages"];
  EXPECT_TRUE(msgs[2]["tool_calls"][0]["function"]["arguments"].is_object());
  EXPECT_EQ(msgs[3]["tool_name"], "list_dir");
  EXPECT_EQ(msgs[3]["content"], "AGENTS.md\nsrc/\n");
}

// OpenAI streaming (SSE): thoughts and content arrive in pieces and are delivered as they come;
// two tool calls come as deltas by index, the first one's arguments split over three deltas and
// interleaved with the second's.
TEST_F(LoopTest, RemoteOpenAiStreamingWithSplitToolCalls) {
  auto sse = [](const std::vector<json>& chunks) {
    std::string out;
    for (const auto& c : chunks) out += "data: " + c.dump() + "\n\n";
    return out + ": keep-alive comment\n\ndata: [DONE]\n\n";
  };
  auto delta = [](json d, json finish = nullptr) {
    return json{{"choices", {{{"index", 0}, {"delta", d}, {"finish_reason", finish}}}}};
  };
  auto call_piece = [](int index, json fields) {
    fields["index"] = index;
    return json{{"tool_calls", {fields}}};
  };
  const std::string calls = sse({
      delta({{"role", "assistant"}, {"reasoning_content", "Let me "}}),
      delta({{"reasoning_content", "look."}}),
      delta(call_piece(0, {{"id", "call_x"},
                           {"type", "function"},
                           {"function", {{"name", "read_file"}, {"arguments", ""}}}})),
      delta(call_piece(0, {{"function", {{"arguments", "{\"path\":\"src/"}}}})),
      delta(call_piece(1, {{"id", "call_y"},
                           {"type", "function"},
                           {"function", {{"name", "list_dir"}, {"arguments", "{}"}}}})),
      delta(call_piece(0, {{"function", {{"arguments", "auth.py\",\"end_line\":1}"}}}})),
      delta(json::object(), "tool_calls"),
      {{"choices", json::array()}, {"usage", {{"prompt_tokens", 40}, {"completion_tokens", 9}}}},
  });
  const std::string answer = sse({
      delta({{"role", "assistant"}, {"content", "It is "}}),
      delta({{"content", "in auth.py."}}),
      delta(json::object(), "stop"),
  });
  ScriptedServer server({calls, answer}, "/v1/chat/completions");
  auto backend = MakeRemoteBackend(server.url(), {.model = "gemma4"});
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  Agent agent(*backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  std::vector<std::string> pieces, steps;
  AgentCallbacks cb = Callbacks();
  cb.on_content = [&](std::string_view p) {
    pieces.emplace_back(p);
    content_ += p;
  };
  cb.on_step = [&](int, const ChatReply& r) {
    steps.push_back(r.finish_reason + " " + std::to_string(r.prompt_tokens) + "/" +
                    std::to_string(r.completion_tokens));
  };
  TurnResult r = agent.Ask("where?", opt, cb);
  EXPECT_EQ(r.answer, "It is in auth.py.");
  EXPECT_EQ(pieces, (std::vector<std::string>{"It is ", "in auth.py."}));
  EXPECT_EQ(reasoning_, "Let me look.");
  EXPECT_EQ(steps, (std::vector<std::string>{"tool_calls 40/9", "stop 0/0"}));
  EXPECT_EQ(calls_, (std::vector<std::string>{"read_file {\"path\":\"src/auth.py\",\"end_line\":1}",
                                              "list_dir {}"}));
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.requests()[0]["stream"], true);
  const json msgs = server.requests()[1]["messages"];
  ASSERT_EQ(msgs.size(), 5u);
  EXPECT_EQ(msgs[2]["tool_calls"][0]["id"], "call_x");
  EXPECT_EQ(msgs[2]["tool_calls"][1]["function"]["name"], "list_dir");
  EXPECT_EQ(msgs[3]["tool_call_id"], "call_x");
  EXPECT_EQ(msgs[3]["content"], "[src/auth.py lines 1-1 of 4]\ndef validate_token(token):\n");
  EXPECT_EQ(msgs[4]["tool_call_id"], "call_y");
}

// A streamed call whose arguments never became a complete JSON object is marked incomplete and
// the model is told to write it again.
TEST_F(LoopTest, RemoteStreamedCallCutOff) {
  json piece = {{"choices",
                 {{{"delta",
                    {{"tool_calls",
                      {{{"index", 0},
                        {"id", "c"},
                        {"function", {{"name", "read_file"}, {"arguments", "{\"path\":"}}}}}}}},
                   {"finish_reason", "length"}}}}};
  json done = {{"choices", {{{"delta", {{"content", "ok"}}}, {"finish_reason", "stop"}}}}};
  ScriptedServer server({"data: " + piece.dump() + "\n\ndata: [DONE]\n\n",
                         "data: " + done.dump() + "\n\ndata: [DONE]\n\n"},
                        "/v1/chat/completions");
  auto backend = MakeRemoteBackend(server.url(), {});
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  Agent agent(*backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  TurnResult r = agent.Ask("where?", opt, Callbacks());
  EXPECT_EQ(r.answer, "ok");
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_NE(server.requests()[1]["messages"][3]["content"].get<std::string>().find(
                "was malformed or cut off"),
            std::string::npos);
}

// Without -c, a remote backend's context budget is what the server says: an OpenAI-style
// /v1/models entry (hearth serve's meta.n_ctx, vLLM's max_model_len), Ollama's /api/show (the
// num_ctx parameter, else the trained context_length capped at 8192), which Ollama requests then
// send as options.num_ctx; -c wins without asking; a server that says nothing means 8192.
TEST(RemoteContextTest, BudgetComesFromTheServer) {
  httplib::Server srv;
  std::atomic<int> asked{0};
  json models = {{"object", "list"},
                 {"data",
                  {{{"id", "other"}, {"max_model_len", 999}},
                   {{"id", "gemma"}, {"meta", {{"n_ctx", 3072}, {"n_ctx_train", 131072}}}}}}};
  srv.Get("/v1/models", [&](const httplib::Request& req, httplib::Response& res) {
    ++asked;
    if (req.get_header_value("Authorization") != "Bearer k") {
      res.status = 401;
      return;
    }
    res.set_content(models.dump(), "application/json");
  });
  srv.Get("/vllm/v1/models", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"data":[{"id":"x","max_model_len":20000}]})", "application/json");
  });
  json show = {{"parameters", "temperature 1\nnum_ctx     6144"},
               {"model_info", {{"gemma3.context_length", 131072}}}};
  srv.Post("/api/show", [&](const httplib::Request& req, httplib::Response& res) {
    const json body = json::parse(req.body);
    if (body["model"] == "plain") {
      res.set_content(R"({"model_info":{"gemma3.context_length":131072}})", "application/json");
    } else {
      res.set_content(show.dump(), "application/json");
    }
  });
  const int port = srv.bind_to_any_port("127.0.0.1");
  std::thread t([&] { srv.listen_after_bind(); });
  const std::string base = "http://127.0.0.1:" + std::to_string(port);

  EXPECT_EQ(MakeRemoteBackend(base, {.model = "gemma", .api_key = "k"})->context_size(), 3072);
  EXPECT_EQ(MakeRemoteBackend(base + "/vllm/v1", {.model = "x"})->context_size(), 20000);
  EXPECT_EQ(MakeRemoteBackend(base + "/api/chat", {.model = "g"})->context_size(), 6144);
  EXPECT_EQ(MakeRemoteBackend(base + "/api/chat", {.model = "plain"})->context_size(), 8192);
  // The key was refused (401): the server said nothing, so the assumed size.
  EXPECT_EQ(MakeRemoteBackend(base, {.model = "gemma"})->context_size(), 8192);
  const int before = asked;
  auto given = MakeRemoteBackend(base, {.model = "gemma", .context_size = 1000, .api_key = "k"});
  EXPECT_EQ(given->context_size(), 1000);
  EXPECT_EQ(asked, before);  // -c: never asked
  // Asked once, however often the agent wants to know.
  auto once = MakeRemoteBackend(base, {.model = "gemma", .api_key = "k"});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(once->context_size(), 3072);
  EXPECT_EQ(asked, before + 1);
  srv.stop();
  t.join();
}

TEST_F(LoopTest, RemoteOllamaSendsTheBudgetAsNumCtx) {
  const json answer = {{"message", {{"role", "assistant"}, {"content", "ok"}}},
                       {"done", true},
                       {"done_reason", "stop"}};
  ScriptedServer server({answer.dump()}, "/api/chat");
  auto backend = MakeRemoteBackend(server.url("/api/chat"), {.model = "g", .context_size = 5000});
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  Agent agent(*backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  agent.Ask("hi", opt, Callbacks());
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0]["options"]["num_ctx"], 5000);
}

// Ollama streaming (NDJSON): one object a line; thinking and content pieces, then done.
TEST_F(LoopTest, RemoteOllamaStreaming) {
  auto line = [](json message, bool done = false) {
    json j = {{"model", "gemma4"}, {"message", message}, {"done", done}};
    if (done) {
      j["done_reason"] = "stop";
      j["prompt_eval_count"] = 31;
      j["eval_count"] = 5;
    }
    return j.dump() + "\n";
  };
  const std::string reply = line({{"role", "assistant"}, {"content", ""}, {"thinking", "Two "}}) +
                            line({{"role", "assistant"}, {"content", ""}, {"thinking", "files?"}}) +
                            line({{"role", "assistant"}, {"content", "Two "}}) +
                            line({{"role", "assistant"}, {"content", "files."}}) +
                            line({{"role", "assistant"}, {"content", ""}}, true);
  ScriptedServer server({reply}, "/api/chat");
  auto backend = MakeRemoteBackend(server.url("/api/chat"), {.model = "gemma4:e2b"});
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  Agent agent(*backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  std::vector<std::string> pieces;
  int prompt_tokens = 0;
  AgentCallbacks cb = Callbacks();
  cb.on_content = [&](std::string_view p) { pieces.emplace_back(p); };
  cb.on_step = [&](int, const ChatReply& r) { prompt_tokens = r.prompt_tokens; };
  TurnResult r = agent.Ask("what is here?", opt, cb);
  EXPECT_EQ(r.answer, "Two files.");
  EXPECT_EQ(pieces, (std::vector<std::string>{"Two ", "files."}));
  EXPECT_EQ(reasoning_, "Two files?");
  EXPECT_EQ(prompt_tokens, 31);
  EXPECT_EQ(server.requests()[0]["stream"], true);
}

// A failed turn (the server errs) leaves the conversation as it was.
TEST_F(LoopTest, FailedTurnLeavesTheConversation) {
  ScriptedServer server({}, "/v1/chat/completions");  // every request: HTTP 500
  auto backend = MakeRemoteBackend(server.url(), {});
  ToolBox tools = Tools(PermissionMode::kReadOnly);
  Agent agent(*backend, tools, journal_);
  AskOptions opt;
  opt.use_index = false;
  EXPECT_THROW(agent.Ask("where?", opt, Callbacks()), Error);
  EXPECT_TRUE(agent.messages().empty());
}

TEST(RemoteBackendTest, ErrorsAreClear) {
  EXPECT_THROW(MakeRemoteBackend("127.0.0.1:1", {}), Error);
  EXPECT_THROW(MakeRemoteBackend("ftp://127.0.0.1/", {}), Error);
  EXPECT_THROW(MakeRemoteBackend("http://u:p@127.0.0.1/", {}), Error);
  EXPECT_THROW(MakeRemoteBackend("http://127.0.0.1/other", {}), Error);
  ScriptedServer server({"not json"}, "/v1/chat/completions");
  auto backend = MakeRemoteBackend(server.url("/v1"), {});
  ChatRequest req;
  req.messages = {{{"role", "user"}, {"content", "hi"}}};
  try {
    backend->Chat(req);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did not answer JSON"), std::string::npos);
  }
  try {
    backend->Chat(req);  // script exhausted: HTTP 500
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 500"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace hearth::agent

namespace hearth::agent {
namespace {

// The local engine on the tiny random-weight fixture: the second request, which extends the
// first conversation, decodes only what is new (its system turn and first user turn come from
// the KV cache).
TEST(LocalBackendTest, ReusesThePromptPrefix) {
  auto backend =
      MakeLocalBackend(std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf",
                       {.n_ctx = 1024, .n_threads = 1});
  EXPECT_TRUE(backend->exact_tokens());
  EXPECT_EQ(backend->context_size(), 1024);
  ChatRequest req;
  req.max_tokens = 4;
  req.messages = {{{"role", "system"}, {"content", "You are hearth, a coding assistant."}},
                  {{"role", "user"}, {"content", "What is in main.c?"}}};
  // The turns before the first generation prompt, which the second prompt repeats exactly.
  const int shared = backend->CountTokens(
      text::RenderChat({{"messages", req.messages}, {"add_generation_prompt", false}}));
  ChatReply first = backend->Chat(req);
  EXPECT_EQ(first.reused_tokens, 0);
  EXPECT_GT(first.prompt_tokens, 10);
  EXPECT_LE(first.completion_tokens, 4);
  req.messages.push_back({{"role", "assistant"}, {"content", "A main function."}});
  req.messages.push_back({{"role", "user"}, {"content", "And in util.c?"}});
  ChatReply second = backend->Chat(req);
  EXPECT_GT(second.prompt_tokens, first.prompt_tokens);
  // Everything up to the first generation prompt is shared: at least the system and user turns.
  EXPECT_GE(second.reused_tokens, shared - 1);  // the last shared token may be decoded again
  EXPECT_LT(second.reused_tokens, second.prompt_tokens);
}

// Media in the agent: the question's images go before its text in the user turn and count in the
// context; view_image (offered when the backend takes images) reads a repository image through
// the confined workspace and shows it to the model in a message after the tool result, which
// never counts as a question when old turns are dropped.
TEST_F(LoopTest, ImagesInTheQuestionAndFromViewImage) {
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "not really pixels";
  Write(repo_.path() / "docs/ui.png", png);
  ScriptedBackend backend({
      "<|tool_call>call:view_image{path:" + Q + "docs/ui.png" + Q + "}<tool_call|>",
      "The dialog is cut off.",
  });
  backend.take_media_ = true;
  ToolOptions opt;
  opt.mode = PermissionMode::kReadOnly;
  opt.journal = &journal_;
  opt.view_images = true;
  ToolBox tools(ws_, {}, opt);
  Agent agent(backend, tools, journal_);
  AskOptions ao;
  ao.use_index = false;
  ao.media = nlohmann::ordered_json::array({{{"type", "image"}, {"path", "/tmp/shot.png"}}});
  TurnResult r = agent.Ask("why does it render wrong?", ao, Callbacks());
  EXPECT_EQ(r.answer, "The dialog is cut off.");
  ASSERT_EQ(backend.prompts.size(), 2u);
  // The image's placeholder comes first in the user turn, then the question.
  const std::string& p0 = backend.prompts[0];
  const size_t user = p0.find("<|turn>user\n");
  ASSERT_NE(user, std::string::npos);
  EXPECT_EQ(p0.substr(user + 12, 9), "<|image|>");
  EXPECT_NE(p0.find("why does it render wrong?", user), std::string::npos);
  EXPECT_NE(p0.find("declaration:view_image"), std::string::npos) << p0.substr(0, 3000);
  // The context report counts the image's rows (10) and its two markers.
  bool counted = false;
  for (const auto& item : r.context.items) counted |= item.kind == "media" && item.tokens == 12;
  EXPECT_TRUE(counted) << r.context.Describe();
  // Second step: the question's image and the one view_image returned, as a data: URL of the
  // file's bytes, after the tool response.
  ASSERT_EQ(backend.media_parts.size(), 2u);
  EXPECT_EQ(backend.media_parts[1]["type"], "image_url");
  const std::string url = backend.media_parts[1]["image_url"]["url"];
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(url.starts_with("data:image/png;base64,"));
  ASSERT_TRUE(DecodeBase64(url.substr(22), bytes));
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), png);
  const std::string& p1 = backend.prompts[1];
  const size_t response = p1.find("<|tool_response>");
  ASSERT_NE(response, std::string::npos);
  EXPECT_NE(p1.find("[view_image result]<|image|>", response), std::string::npos) << p1;
}

TEST_F(LoopTest, ViewImageIsRefusedOutsideTheRootAndForNonImages) {
  ToolOptions opt;
  opt.mode = PermissionMode::kReadOnly;
  opt.journal = &journal_;
  ToolBox without(ws_, {}, opt);
  EXPECT_EQ(without.Declarations().dump().find("view_image"), std::string::npos);
  EXPECT_FALSE(without.Call("view_image", R"({"path":"src/auth.py"})").ok);
  opt.view_images = true;
  ToolBox tools(ws_, {}, opt);
  ToolResult text = tools.Call("view_image", R"({"path":"src/auth.py"})");
  EXPECT_FALSE(text.ok);
  EXPECT_NE(text.text.find("not a PNG"), std::string::npos) << text.text;
  EXPECT_TRUE(text.media.empty());
  EXPECT_FALSE(tools.Call("view_image", R"({"path":"../../etc/passwd"})").ok);
  std::filesystem::create_symlink("/etc/hostname", repo_.path() / "link.png");
  ToolResult link = tools.Call("view_image", R"({"path":"link.png"})");
  EXPECT_FALSE(link.ok) << link.text;
  EXPECT_TRUE(link.media.empty());
  // A backend that takes no media refuses a question with an image: a usage error.
  ScriptedBackend plain({"unused"});
  Agent agent(plain, tools, journal_);
  AskOptions ao;
  ao.use_index = false;
  ao.media = nlohmann::ordered_json::array({{{"type", "image"}, {"path", "x.png"}}});
  try {
    agent.Ask("what is this?", ao, Callbacks());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kUsage);
  }
}

}  // namespace
}  // namespace hearth::agent
