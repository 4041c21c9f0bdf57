// `hearth ask` and `hearth undo` as a user meets them (through HEARTH_BINARY), with a local
// scripted server as the remote backend and the tiny fixture model for the local engine.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "agent_test_util.h"
#include "scripted_server.h"

namespace hearth::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Read;
using testing::ScriptedServer;
using testing::TempRepo;
using testing::Write;

using Result = testing::ShellResult;

// Runs hearth in `dir` with stdin from /dev/null (never a terminal), stdout+stderr captured.
Result Hearth(const fs::path& dir, const std::string& args) {
  std::string cmd =
      "cd '" + dir.string() + "' && '" + HEARTH_BINARY + "' " + args + " </dev/null 2>&1";
  return testing::RunShell(cmd);
}

// Runs hearth with `input` on stdin (a file: not a terminal), stdout+stderr captured.
// `sigint_after_s` > 0: a SIGINT (what Ctrl-C sends) that many seconds after the start.
Result HearthWithInput(const fs::path& dir, const std::string& args, const std::string& input,
                       int sigint_after_s = 0) {
  const fs::path in = dir / ".hearth-test-input";
  Write(in, input);
  std::string cmd = "cd '" + dir.string() + "' && '" + HEARTH_BINARY + "' " + args + " <'" +
                    in.string() + "' 2>&1";
  if (sigint_after_s > 0) {
    cmd = "cd '" + dir.string() + "' && { '" + HEARTH_BINARY + "' " + args + " <'" + in.string() +
          "' 2>&1 & p=$!; sleep " + std::to_string(sigint_after_s) + "; kill -INT $p; wait $p; }";
  }
  Result r = testing::RunShell(cmd);
  fs::remove(in);
  return r;
}

// An OpenAI streaming reply (SSE) with thoughts and content in pieces.
std::string StreamedAnswer(const std::string& thought, const std::string& text) {
  std::string out;
  auto chunk = [&](json delta) {
    out +=
        "data: " +
        json({{"choices", {{{"index", 0}, {"delta", delta}, {"finish_reason", nullptr}}}}}).dump() +
        "\n\n";
  };
  if (!thought.empty()) chunk({{"reasoning_content", thought}});
  chunk({{"content", text.substr(0, text.size() / 2)}});
  chunk({{"content", text.substr(text.size() / 2)}});
  return out + "data: [DONE]\n\n";
}

size_t Find(const std::string& text, const std::string& needle, size_t from = 0) {
  return text.find(needle, from);
}

std::string EditCall() {
  json args = {{"path", "src/app.py"}, {"old_text", "return 1"}, {"new_text", "return 2"}};
  return json({{"choices",
                {{{"message",
                   {{"role", "assistant"},
                    {"content", ""},
                    {"tool_calls",
                     {{{"id", "c1"},
                       {"type", "function"},
                       {"function", {{"name", "edit_file"}, {"arguments", args.dump()}}}}}}}},
                  {"finish_reason", "tool_calls"}}}}})
      .dump();
}

std::string Answer(const std::string& text) {
  return json({{"choices",
                {{{"message", {{"role", "assistant"}, {"content", text}}},
                  {"finish_reason", "stop"}}}}})
      .dump();
}

TEST(AgentCliTest, Help) {
  TempRepo repo;
  Result r = Hearth(repo.path(), "ask --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--permissions"), std::string::npos);
  EXPECT_NE(r.out.find("--explain-context"), std::string::npos);
  r = Hearth(repo.path(), "undo --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("journal"), std::string::npos);
}

TEST(AgentCliTest, UsageErrors) {
  TempRepo repo;
  Result r = Hearth(repo.path(), "ask 'what?'");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("hearth: error: no model to ask"), std::string::npos) << r.out;
  r = Hearth(repo.path(), "ask --backend ftp://x 'what?'");
  EXPECT_EQ(r.code, 2) << r.out;
  r = Hearth(repo.path(), "ask --permissions sometimes --backend http://127.0.0.1:9 'what?'");
  EXPECT_EQ(r.code, 2) << r.out;
  Write(repo.path() / ".hearth/config.toml", "[run]\nallowed = 3\n");
  r = Hearth(repo.path(), "ask --backend http://127.0.0.1:9 'what?'");
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("run.allowed"), std::string::npos) << r.out;
  r = Hearth(repo.path(), "undo");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("nothing to undo"), std::string::npos);
}

// Permission prompt with stdin not a terminal: answered no, nothing hangs, the file is unchanged.
// Then with --permissions auto the edit happens, and `hearth undo` restores it.
TEST(AgentCliTest, RemoteBackendEditAskAutoUndo) {
  TempRepo repo;
  Write(repo.path() / "src/app.py", "def f():\n    return 1\n");
  {
    ScriptedServer server({EditCall(), Answer("I could not edit it.")}, "/v1/chat/completions");
    Result r =
        Hearth(repo.path(), "ask --no-index --backend " + server.url() + " 'make f return 2'");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("not allowed: edit src/app.py (stdin is not a terminal"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("I could not edit it."), std::string::npos) << r.out;
    EXPECT_EQ(Read(repo.path() / "src/app.py"), "def f():\n    return 1\n");
    EXPECT_NE(server.requests()[1].dump().find("did not allow"), std::string::npos);
  }
  {
    ScriptedServer server({EditCall(), Answer("Done.")}, "/v1/chat/completions");
    Result r = Hearth(repo.path(), "ask --permissions auto --explain-context --backend " +
                                       server.url("/v1") + " 'make f return 2'");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("context budget:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("src/app.py"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Done."), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("hearth: changed: src/app.py"), std::string::npos) << r.out;
    EXPECT_EQ(Read(repo.path() / "src/app.py"), "def f():\n    return 2\n");
  }
  // From a subdirectory: the workspace root is found upwards.
  Result r = Hearth(repo.path() / "src", "undo");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("undid change set 000001 (make f return 2)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("restored src/app.py"), std::string::npos) << r.out;
  EXPECT_EQ(Read(repo.path() / "src/app.py"), "def f():\n    return 1\n");
}

TEST(AgentCliTest, RunCommandsFromTheAllowlistOnly) {
  TempRepo repo;
  // The user's own config (a repository's config needs `hearth trust` to allow commands).
  TempRepo user;
  Write(user.path() / "hearth/config.toml", "[run]\nallowed = [\"echo ran > out.txt\"]\n");
  auto run_call = [](const std::string& command) {
    json args = {{"command", command}};
    return json({{"choices",
                  {{{"message",
                     {{"role", "assistant"},
                      {"tool_calls",
                       {{{"id", "c1"},
                         {"type", "function"},
                         {"function", {{"name", "run"}, {"arguments", args.dump()}}}}}}}}}}}})
        .dump();
  };
  ScriptedServer server({run_call("rm -rf ."), run_call("echo ran > out.txt"), Answer("ok")},
                        "/v1/chat/completions");
  Result r = testing::RunShell("cd '" + repo.path().string() + "' && XDG_CONFIG_HOME='" +
                               user.path().string() + "' '" + HEARTH_BINARY +
                               "' ask --no-index --permissions auto --backend " + server.url() +
                               " 'run it' </dev/null 2>&1");
  EXPECT_EQ(r.code, 0) << r.out;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_NE(reqs[1].dump().find("is not an allowed command"), std::string::npos);
  EXPECT_NE(reqs[2].dump().find("files changed by the command: added: out.txt"), std::string::npos)
      << reqs[2].dump();
  EXPECT_EQ(Read(repo.path() / "out.txt"), "ran\n");
  // What a command changed is not journaled: the end of the turn must not promise undo for it.
  EXPECT_NE(r.out.find("hearth: changed by commands: out.txt (not journaled"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("hearth: changed: out.txt"), std::string::npos) << r.out;
}

// `hearth chat` as a script drives it: one message a line, the conversation carried over the
// turns (the third request holds the first turn's call, result and answer), /context showing the
// last question's context, /undo restoring the edit, /think on reaching the server, /clear.
TEST(AgentCliTest, ChatScriptedConversation) {
  TempRepo repo;
  Write(repo.path() / "src/app.py", "def f():\n    return 1\n");
  ScriptedServer server(
      {EditCall(), StreamedAnswer("", "Done."), StreamedAnswer("Was it undone?", "Yes, undone.")},
      "/v1/chat/completions");
  Result r = HearthWithInput(
      repo.path(), "chat --no-index --permissions auto --backend " + server.url(),
      "make f return 2\n/context\n/undo\n/think on\nwas it undone?\n/help\n/clear\n/context\n");
  EXPECT_EQ(r.code, 0) << r.out;
  const std::string& o = r.out;
  size_t done = Find(o, "Done.\n");
  size_t changed = Find(o, "hearth: changed: src/app.py (/undo restores");
  size_t context = Find(o, "context budget: ");
  size_t question = Find(o, "question", context);
  size_t undone = Find(o, "undid change set 000001 (make f return 2)\n  restored src/app.py\n");
  size_t think_on = Find(o, "(thinking on)\n");
  size_t thought = Find(o, "<think>\nWas it undone?\n</think>\nYes, undone.\n");
  size_t help = Find(o, "/context       what the last question's context included");
  size_t cleared = Find(o, "(conversation cleared)\n");
  size_t none = Find(o, "(no question asked yet");
  ASSERT_NE(done, std::string::npos) << o;
  EXPECT_NE(Find(o, "[tool] edit_file "), std::string::npos) << o;
  EXPECT_NE(Find(o, "backend: OpenAI-compatible server " + server.url("/v1/chat/completions") +
                        "; permissions: auto"),
            std::string::npos)
      << o;
  // Each piece of output in the order of the input lines.
  const std::vector<size_t> order = {done,     changed, context, question, undone,
                                     think_on, thought, help,    cleared,  none};
  for (size_t i = 0; i < order.size(); ++i) {
    ASSERT_NE(order[i], std::string::npos) << "piece " << i << " missing:\n" << o;
    if (i > 0) {
      EXPECT_LT(order[i - 1], order[i]) << "piece " << i << " out of order:\n" << o;
    }
  }
  EXPECT_EQ(Read(repo.path() / "src/app.py"), "def f():\n    return 1\n");  // undone

  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0]["stream"], true);
  EXPECT_FALSE(reqs[1].contains("chat_template_kwargs"));
  EXPECT_EQ(reqs[2]["chat_template_kwargs"]["enable_thinking"], true);
  const json& m = reqs[2]["messages"];
  ASSERT_EQ(m.size(), 6u) << m.dump(1);
  EXPECT_EQ(m[0]["role"], "system");
  EXPECT_EQ(m[1]["content"], "make f return 2");
  EXPECT_EQ(m[2]["tool_calls"][0]["function"]["name"], "edit_file");
  EXPECT_EQ(m[3]["role"], "tool");
  EXPECT_EQ(m[4]["content"], "Done.");
  EXPECT_EQ(m[5]["content"], "was it undone?");
}

// Ten questions with long answers in an 8192-token context: the chat goes on (exit 0), says once
// that the oldest turns are left out, /context lists them, and the requests keep the system
// message and the current question while the first question is gone.
TEST(AgentCliTest, ChatOutlivesTheContext) {
  TempRepo repo;
  const std::string filler(2000, 'x');
  std::vector<std::string> replies;
  std::string input;
  for (int i = 0; i < 10; ++i) {
    replies.push_back(Answer("answer " + std::to_string(i) + " " + filler));
    input += "question " + std::to_string(i) + " " + std::string(400, 'q') + "\n";
  }
  input += "/context\n";
  ScriptedServer server(replies, "/v1/chat/completions");
  Result r =
      HearthWithInput(repo.path(), "chat --no-index -c 8192 --backend " + server.url(), input);
  EXPECT_EQ(r.code, 0) << r.out;
  const std::string notice = "the conversation outgrew the context of 8192 tokens";
  size_t told = 0;
  for (size_t at = r.out.find(notice); at != std::string::npos; at = r.out.find(notice, at + 1)) {
    ++told;
  }
  EXPECT_EQ(told, 1u) << r.out;
  EXPECT_NE(r.out.find("answer 9 xxx"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dropped: the conversation outgrew the context"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"question 0 qqq"), std::string::npos) << r.out;  // listed by /context
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 10u);
  const json& m = reqs.back()["messages"];
  EXPECT_EQ(m[0]["role"], "system");
  EXPECT_EQ(m.back()["content"].get<std::string>().rfind("question 9 ", 0), 0u);
  for (const auto& msg : m) {
    EXPECT_NE(msg["content"].get<std::string>().rfind("question 0 ", 0), 0u);
  }
  EXPECT_LT(m.size(), 20u);
}

// A message too long for the local engine's context even alone is an error, and the chat goes
// on: the next line is answered; the script's exit code says a message failed.
TEST(AgentCliTest, ChatMessageTooLongAloneIsAnErrorAndTheChatGoesOn) {
  TempRepo repo;
  const std::string model = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";
  std::string words;
  for (int i = 0; i < 3000; ++i) words += " w" + std::to_string(i);
  Result r = HearthWithInput(repo.path(), "chat --no-index -m " + model + " -c 4096 -n 2 -t 1 -v",
                             words + "\nhi\n");
  EXPECT_EQ(r.code, 6) << r.out;
  EXPECT_NE(r.out.find("hearth: error: the conversation takes "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hearth: step 1: "), std::string::npos) << r.out;  // "hi" was answered
}

// Piped: a permission prompt is answered no without reading stdin, so the next line ("y") is the
// next message, not an answer; nothing is changed.
TEST(AgentCliTest, ChatPipedPermissionIsNo) {
  TempRepo repo;
  Write(repo.path() / "src/app.py", "def f():\n    return 1\n");
  ScriptedServer server({EditCall(), Answer("I was not allowed."), Answer("ok")},
                        "/v1/chat/completions");
  Result r = HearthWithInput(repo.path(), "chat --no-index --backend " + server.url(),
                             "make f return 2\ny\n");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("not allowed: edit src/app.py (stdin is not a terminal"), std::string::npos)
      << r.out;
  EXPECT_EQ(Read(repo.path() / "src/app.py"), "def f():\n    return 1\n");
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[2]["messages"].back()["content"], "y");
  EXPECT_NE(r.out.find("ok\n"), std::string::npos) << r.out;
}

// Ctrl-C (SIGINT) while a reply streams stops that reply, not the session: the next line is
// still answered, and the stopped reply stays in the conversation as far as it came.
TEST(AgentCliTest, ChatCtrlCStopsTheReplyNotTheSession) {
  TempRepo repo;
  std::string slow;
  for (int i = 0; i < 60; ++i) {
    slow += "data: " + json({{"choices", {{{"delta", {{"content", "word "}}}}}}}).dump() + "\n\n";
  }
  slow += "data: [DONE]\n\n";
  // Each SSE line is ~60 bytes, sent 5 bytes every 20 ms: the first reply would take ~15 s.
  ScriptedServer server({slow, Answer("second answer")}, "/v1/chat/completions", 20);
  Result r = HearthWithInput(repo.path(), "chat --no-index --backend " + server.url(),
                             "first\nsecond\n", 4);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("word word"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hearth: stopped (Ctrl-C)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("second answer"), std::string::npos) << r.out;
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  const json& m = reqs[1]["messages"];
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[2]["content"].get<std::string>().rfind("word word", 0), 0u);
}

// Ctrl-C while `ask` streams its answer stops it and exits 130 (128 + SIGINT), as a shell reports
// a command that Ctrl-C stopped; the old code exited 0.
TEST(AgentCliTest, AskCtrlCExits130) {
  TempRepo repo;
  std::string slow;
  for (int i = 0; i < 60; ++i) {
    slow += "data: " + json({{"choices", {{{"delta", {{"content", "word "}}}}}}}).dump() + "\n\n";
  }
  slow += "data: [DONE]\n\n";
  ScriptedServer server({slow}, "/v1/chat/completions", 20);
  Result r =
      HearthWithInput(repo.path(), "ask --no-index --backend " + server.url() + " hi", "", 3);
  EXPECT_EQ(r.code, 130) << r.out;
  EXPECT_NE(r.out.find("word word"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hearth: stopped (Ctrl-C)"), std::string::npos) << r.out;
}

// A key-protected backend: the key comes from --api-key, else $HEARTH_API_KEY, else [agent]
// api_key of the user config, and is sent as a Bearer token. Without one (the old code had no way
// to send it) the 401 is explained.
TEST(AgentCliTest, ApiKeyReachesAKeyProtectedBackend) {
  TempRepo repo;
  ScriptedServer server({Answer("with flag"), Answer("with env"), Answer("with config")},
                        "/v1/chat/completions");
  server.RequireKey("s3cret");
  const std::string ask = "ask --no-index --backend " + server.url() + " hi";
  Result none = Hearth(repo.path(), ask);
  EXPECT_EQ(none.code, 4) << none.out;
  EXPECT_NE(none.out.find("HTTP 401 (it wants an API key)"), std::string::npos) << none.out;
  EXPECT_NE(none.out.find("--api-key"), std::string::npos) << none.out;
  Result wrong = Hearth(repo.path(), "--api-key nope " + ask);
  EXPECT_EQ(wrong.code, 2) << wrong.out;  // a flag before the command is a usage error
  wrong = Hearth(repo.path(), ask + " --api-key nope");
  EXPECT_EQ(wrong.code, 4) << wrong.out;
  EXPECT_NE(wrong.out.find("the API key was refused"), std::string::npos) << wrong.out;
  Result flag = Hearth(repo.path(), ask + " --api-key s3cret");
  EXPECT_EQ(flag.code, 0) << flag.out;
  EXPECT_NE(flag.out.find("with flag"), std::string::npos) << flag.out;
  const std::string bin = std::string("'") + HEARTH_BINARY + "' ";
  Result env = testing::RunShell("cd '" + repo.path().string() + "' && HEARTH_API_KEY=s3cret " +
                                 bin + ask + " </dev/null 2>&1");
  EXPECT_EQ(env.code, 0) << env.out;
  EXPECT_NE(env.out.find("with env"), std::string::npos) << env.out;
  const fs::path cfg = repo.path() / "cfg";
  Write(cfg / "hearth/config.toml", "[agent]\napi_key = \"s3cret\"\n");
  Result conf = testing::RunShell("cd '" + repo.path().string() + "' && XDG_CONFIG_HOME='" +
                                  cfg.string() + "' " + bin + ask + " </dev/null 2>&1");
  EXPECT_EQ(conf.code, 0) << conf.out;
  EXPECT_NE(conf.out.find("with config"), std::string::npos) << conf.out;
  EXPECT_EQ(server.requests().size(), 3u);
}

// Errors: a usage error for --plain-only flags; an unreachable backend fails the script with
// the I/O exit code; --help lists the commands.
TEST(AgentCliTest, ChatErrorsAndHelp) {
  TempRepo repo;
  Result r =
      HearthWithInput(repo.path(), "chat --no-index --system hi --backend http://127.0.0.1:9", "");
  EXPECT_EQ(r.code, 2) << r.out;
  r = HearthWithInput(repo.path(), "chat --no-index --backend http://127.0.0.1:9", "hello\n");
  EXPECT_EQ(r.code, 4) << r.out;
  EXPECT_NE(r.out.find("cannot reach the backend"), std::string::npos) << r.out;
  r = Hearth(repo.path(), "chat --help");
  EXPECT_EQ(r.code, 0);
  for (const char* s : {"/context", "/undo", "--permissions", "--backend", "--plain"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  }
}

// The local engine on the tiny random-weight fixture: only the mechanics are checked (it runs the
// loop, terminates, prints something and exits 0).
TEST(AgentCliTest, LocalEngineSmoke) {
  TempRepo repo;
  Write(repo.path() / "main.c", "int main(void) { return 0; }\n");
  const std::string model = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";
  Result r = Hearth(repo.path(), "ask -m '" + model +
                                     "' -n 24 --max-steps 2 -t 1 --permissions read-only "
                                     "--explain-context -v 'what does main return?'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("hearth: step 1: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" prompt tokens (0 reused from the KV cache)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("counted with the model's tokenizer"), std::string::npos) << r.out;
  EXPECT_GT(r.out.size(), 100u);
}

// Images and audio with a remote backend: the files the user named travel inline, as the APIs
// take them (OpenAI: image_url with a data: URL and input_audio; Ollama: the message's images),
// and their bytes arrive unchanged (decoded here from the request the server received).
TEST(AgentCliTest, AskSendsImagesAndAudioInlineToARemoteBackend) {
  TempRepo repo;
  const std::string mm = std::string(HEARTH_SHARED_DIR) + "/fixtures/multimodal/media/";
  const std::string png = Read(mm + "img-37x91.png"), wav = Read(mm + "chirp-1.5s.wav");
  auto base64_decode = [](const std::string& in) {
    const std::string abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
      if (c == '=') break;
      acc = acc << 6 | static_cast<uint32_t>(abc.find(c));
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += static_cast<char>((acc >> bits) & 0xFF);
      }
    }
    return out;
  };
  {
    ScriptedServer server({Answer("a red square")}, "/v1/chat/completions");
    Result r = Hearth(repo.path(), "ask --no-index --backend " + server.url() + " --image '" + mm +
                                       "img-37x91.png' --image-tokens 70 --audio '" + mm +
                                       "chirp-1.5s.wav' 'what is this?'");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("a red square"), std::string::npos) << r.out;
    ASSERT_EQ(server.requests().size(), 1u);
    const json user = server.requests()[0]["messages"][1];
    ASSERT_EQ(user["role"], "user");
    ASSERT_TRUE(user["content"].is_array()) << user.dump();
    ASSERT_EQ(user["content"].size(), 3u) << user.dump();
    const json& image = user["content"][0];
    EXPECT_EQ(image["type"], "image_url");
    const std::string url = image["image_url"]["url"];
    const std::string prefix = "data:image/png;base64,";
    ASSERT_TRUE(url.starts_with(prefix)) << url.substr(0, 40);
    EXPECT_EQ(base64_decode(url.substr(prefix.size())), png);
    EXPECT_EQ(image["image_url"]["detail"], "low");  // a 70-token budget
    const json& audio = user["content"][1];
    EXPECT_EQ(audio["type"], "input_audio");
    EXPECT_EQ(audio["input_audio"]["format"], "wav");
    EXPECT_EQ(base64_decode(audio["input_audio"]["data"]), wav);
    EXPECT_EQ(user["content"][2]["type"], "text");
    EXPECT_NE(user["content"][2]["text"].get<std::string>().find("what is this?"),
              std::string::npos);
  }
  {
    ScriptedServer server({R"({"message":{"role":"assistant","content":"a square"},"done":true})"},
                          "/api/chat");
    const std::string ask =
        "ask --no-index --backend " + server.url() + "/api/chat --image '" + mm + "img-37x91.png'";
    Result r = Hearth(repo.path(), ask + " 'what is this?'");
    ASSERT_EQ(r.code, 0) << r.out;
    ASSERT_EQ(server.requests().size(), 1u);
    const json user = server.requests()[0]["messages"][1];
    ASSERT_TRUE(user["content"].is_string()) << user.dump();
    EXPECT_NE(user["content"].get<std::string>().find("what is this?"), std::string::npos);
    ASSERT_EQ(user["images"].size(), 1u);
    EXPECT_EQ(base64_decode(user["images"][0]), png);
    // Ollama's chat API has no audio: refused before anything is sent.
    r = Hearth(repo.path(), ask + " --audio '" + mm + "chirp-1.5s.wav' 'what is this?'");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("Ollama's chat API takes no audio"), std::string::npos) << r.out;
    EXPECT_EQ(server.requests().size(), 1u);
  }
  // A file that is not there: a clear error, nothing sent.
  Result r = Hearth(repo.path(), "ask --no-index --backend http://127.0.0.1:9 --image nope.png hi");
  EXPECT_EQ(r.code, 4) << r.out;
  EXPECT_NE(r.out.find("nope.png"), std::string::npos) << r.out;
}

// What `ask -v` says of model step 1: {prompt tokens, reused}; {-1, -1} when it is missing.
std::pair<int, int> StepOneCounts(const std::string& out) {
  const std::string tag = "hearth: step 1: ";
  const size_t at = out.find(tag);
  if (at == std::string::npos) return {-1, -1};
  int prompt = -1, reused = -1;
  if (std::sscanf(out.c_str() + at + tag.size(), "%d prompt tokens (%d reused", &prompt, &reused) !=
      2) {
    return {-1, -1};
  }
  return {prompt, reused};
}

// The answer without the lines hearth writes about itself ("hearth: ...", "[tool] ...").
std::string AnswerText(const std::string& out) {
  std::string kept, line;
  std::istringstream in(out);
  while (std::getline(in, line)) {
    if (!line.starts_with("hearth:") && !line.starts_with("[tool]")) kept += line + "\n";
  }
  return kept;
}

// An image with the local engine (the tiny multimodal fixture model and its projector): the
// question's prompt grows by the image's rows, 84 for this image at the default budget in
// llama.cpp's reference (fixtures/multimodal/README.md), plus its two marker pieces; chat's
// /image attaches to the next message the same way.
TEST(AgentCliTest, LocalEngineTakesImagesInAskAndChat) {
  TempRepo repo;
  const std::string mm = std::string(HEARTH_SHARED_DIR) + "/fixtures/multimodal/";
  const std::string base = "ask -m '" + mm + "models/tiny-mm.F32.gguf' --mmproj '" + mm +
                           "models/tiny-mm.mmproj.F32.gguf' --no-index --no-prefix-cache -n 4 " +
                           "--max-steps 1 -t 1 --permissions read-only -v";
  const Result plain = Hearth(repo.path(), base + " 'what is this?'");
  ASSERT_EQ(plain.code, 0) << plain.out;
  const Result image =
      Hearth(repo.path(), base + " --image '" + mm + "media/img-37x91.png' 'what is this?'");
  ASSERT_EQ(image.code, 0) << image.out;
  const int without = StepOneCounts(plain.out).first, with = StepOneCounts(image.out).first;
  ASSERT_GT(without, 0) << plain.out;
  // The text around the image is tokenized in two pieces: a merge across the cut may differ by one.
  EXPECT_GE(with - without, 84 + 2) << image.out;
  EXPECT_LE(with - without, 84 + 3) << image.out;

  const std::string chat = "chat -m '" + mm + "models/tiny-mm.F32.gguf' --mmproj '" + mm +
                           "models/tiny-mm.mmproj.F32.gguf' --no-index --no-prefix-cache -n 4 " +
                           "--max-steps 1 -t 1 --permissions read-only -v";
  const Result c =
      HearthWithInput(repo.path(), chat, "/image " + mm + "media/img-37x91.png\nwhat is this?\n");
  ASSERT_EQ(c.code, 0) << c.out;
  EXPECT_NE(c.out.find("sent with the next message"), std::string::npos) << c.out;
  EXPECT_EQ(StepOneCounts(c.out).first, with) << c.out;
  // Not an image: the turn fails with the input error's exit code, one line.
  const Result bad =
      Hearth(repo.path(), base + " --image '" + mm + "media/chirp-1.5s.wav' 'what is this?'");
  EXPECT_EQ(bad.code, 3) << bad.out;
  // No projector anywhere near the model: a usage error that says what to give.
  const Result none = Hearth(repo.path(), "ask -m '" + std::string(HEARTH_SHARED_DIR) +
                                              "/fixtures/models/tiny-e.Q8_0.gguf' --no-index -n 4 "
                                              "--image '" +
                                              mm + "media/img-37x91.png' hi");
  EXPECT_EQ(none.code, 2) << none.out;
  EXPECT_NE(none.out.find("--mmproj"), std::string::npos) << none.out;
}

// The persisted prefix cache (agent/prefix_cache.h) seen from the command line: a second `ask`
// in a fresh process starts from the first one's KV state and answers exactly as without it; a
// snapshot that another user's key signed, or one whose bytes changed, is ignored with a note;
// --no-prefix-cache neither reads nor writes.
TEST(AgentCliTest, SecondAskRestoresThePromptFromThePrefixCache) {
  TempRepo repo, user, other_user;
  Write(repo.path() / "main.c", "int main(void) { return helper(); }\n");
  Write(repo.path() / "helper.c", "int helper(void) { return 0; }\n");
  const std::string model = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";
  const auto ask = [&](const TempRepo& home, const std::string& question,
                       const std::string& extra = "") {
    return testing::RunShell("cd '" + repo.path().string() + "' && XDG_CONFIG_HOME='" +
                             home.path().string() + "' '" + HEARTH_BINARY + "' ask -m '" + model +
                             "' -n 8 --max-steps 1 -t 1 --permissions read-only -v " + extra +
                             " '" + question + "' </dev/null 2>&1");
  };
  const std::string q1 = "what does main return?", q2 = "which file defines helper?";

  Result first = ask(user, q1);
  ASSERT_EQ(first.code, 0) << first.out;
  const auto [prompt1, reused1] = StepOneCounts(first.out);
  ASSERT_GE(prompt1, 512) << first.out;  // long enough to be kept
  EXPECT_EQ(reused1, 0) << first.out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(repo.path() / ".hearth" / "kv")) {
    files.push_back(e.path());
  }
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(fs::status(files[0]).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  // The same question: all but the last token or two come from the file; the same answer.
  Result again = ask(user, q1);
  ASSERT_EQ(again.code, 0) << again.out;
  const auto [prompt2, reused2] = StepOneCounts(again.out);
  EXPECT_EQ(prompt2, prompt1);
  EXPECT_GE(reused2, prompt1 - 2) << again.out;
  EXPECT_EQ(AnswerText(again.out), AnswerText(first.out));

  // Another question: the system turn (tools, map) comes from the file; the answer is what a
  // process without the cache gives.
  Result other = ask(user, q2);
  Result plain = ask(user, q2, "--no-prefix-cache");
  ASSERT_EQ(other.code, 0) << other.out;
  ASSERT_EQ(plain.code, 0) << plain.out;
  EXPECT_GE(StepOneCounts(other.out).second, 400) << other.out;
  EXPECT_EQ(StepOneCounts(plain.out).second, 0) << plain.out;
  EXPECT_EQ(AnswerText(other.out), AnswerText(plain.out));

  // One flipped byte in the snapshot: not restored, with a note.
  fs::path newest;
  for (const auto& e : fs::directory_iterator(repo.path() / ".hearth" / "kv")) {
    if (newest.empty() || fs::last_write_time(e.path()) > fs::last_write_time(newest)) {
      newest = e.path();
    }
  }
  std::string bytes = Read(newest);
  bytes[bytes.size() / 2] ^= 1;
  Write(newest, bytes);
  Result flipped = ask(user, q2);
  EXPECT_EQ(flipped.code, 0) << flipped.out;
  EXPECT_EQ(StepOneCounts(flipped.out).second, 0) << flipped.out;
  EXPECT_NE(flipped.out.find("not written by this user's hearth"), std::string::npos)
      << flipped.out;

  // A snapshot signed with another user's key (the file the last run wrote): the same.
  Result foreign = ask(other_user, q2);
  EXPECT_EQ(foreign.code, 0) << foreign.out;
  EXPECT_EQ(StepOneCounts(foreign.out).second, 0) << foreign.out;
  EXPECT_NE(foreign.out.find("not written by this user's hearth"), std::string::npos)
      << foreign.out;
}

// The snapshot of one KV cache type is never restored into a context of another (--cache-type):
// a q8_0 ask neither reads the f16 file nor accepts it copied over its own; it keeps its own,
// which the next q8_0 ask restores from, answering as a q8_0 ask without the cache.
TEST(AgentCliTest, PrefixCacheIsKeyedByTheKvCacheType) {
  TempRepo repo, user;
  Write(repo.path() / "main.c", "int main(void) { return helper(); }\n");
  Write(repo.path() / "helper.c", "int helper(void) { return 0; }\n");
  const std::string model = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";
  const auto ask = [&](const std::string& extra) {
    return testing::RunShell("cd '" + repo.path().string() + "' && XDG_CONFIG_HOME='" +
                             user.path().string() + "' '" + HEARTH_BINARY + "' ask -m '" + model +
                             "' -n 8 --max-steps 1 -t 1 --permissions read-only -v " + extra +
                             " 'what does main return?' </dev/null 2>&1");
  };
  const auto kv_files = [&] {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(repo.path() / ".hearth" / "kv")) {
      files.push_back(e.path());
    }
    return files;
  };
  Result f16 = ask("");
  ASSERT_EQ(f16.code, 0) << f16.out;
  ASSERT_GE(StepOneCounts(f16.out).first, 512) << f16.out;
  const std::vector<fs::path> f16_files = kv_files();
  ASSERT_EQ(f16_files.size(), 1u);

  Result q8 = ask("--cache-type q8_0");
  ASSERT_EQ(q8.code, 0) << q8.out;
  EXPECT_EQ(StepOneCounts(q8.out).second, 0) << q8.out;
  std::vector<fs::path> files = kv_files();
  ASSERT_EQ(files.size(), 2u);  // its own file beside the f16 one
  const fs::path q8_file = files[0] == f16_files[0] ? files[1] : files[0];

  Result q8_again = ask("--cache-type q8_0");
  Result q8_plain = ask("--cache-type q8_0 --no-prefix-cache");
  ASSERT_EQ(q8_again.code, 0) << q8_again.out;
  EXPECT_GE(StepOneCounts(q8_again.out).second, StepOneCounts(q8.out).first - 2) << q8_again.out;
  EXPECT_EQ(AnswerText(q8_again.out), AnswerText(q8_plain.out));

  // The f16 snapshot planted under the q8_0 file's name: refused, not restored.
  fs::copy_file(f16_files[0], q8_file, fs::copy_options::overwrite_existing);
  Result planted = ask("--cache-type q8_0");
  EXPECT_EQ(planted.code, 0) << planted.out;
  EXPECT_EQ(StepOneCounts(planted.out).second, 0) << planted.out;
  EXPECT_NE(planted.out.find("not written by this user's hearth for this model and settings"),
            std::string::npos)
      << planted.out;
}

// A symlink planted at .hearth/kv (to a directory outside) is never written through.
TEST(AgentCliTest, PrefixCacheNeverWritesThroughASymlink) {
  TempRepo repo, user, outside;
  Write(repo.path() / "main.c", "int main(void) { return 0; }\n");
  fs::create_directories(repo.path() / ".hearth");
  fs::create_directory_symlink(outside.path(), repo.path() / ".hearth" / "kv");
  const std::string model = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";
  Result r = testing::RunShell("cd '" + repo.path().string() + "' && XDG_CONFIG_HOME='" +
                               user.path().string() + "' '" + HEARTH_BINARY + "' ask -m '" + model +
                               "' -n 4 --max-steps 1 -t 1 --permissions read-only 'hi?' "
                               "</dev/null 2>&1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("the prefix cache was not written"), std::string::npos) << r.out;
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(outside.path())) ++n;
  EXPECT_EQ(n, 1u);  // only TempRepo's own .git
}

}  // namespace
}  // namespace hearth::agent
