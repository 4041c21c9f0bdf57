// `hearth run` and `hearth chat` as a user (or a script) meets them, through HEARTH_BINARY, on the
// tiny fixture models. Expected completions are computed here independently: the argmax chain
// over model::Context, decoded with the tokenizer.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "model/model.h"
#include "text/chat_template.h"
#include "text/output_parser.h"
#include "text/tokenizer.h"

namespace {

const std::string kModels = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Result {
  int exit_code;
  std::string out;
  std::string err;
};

// Runs `hearth ARGS` with `input` on stdin (a file, so stdin is not a TTY).
Result RunHearth(const std::string& args, const std::string& input = "") {
  static int call = 0;
  const std::string base = ::testing::TempDir() + "engine_cli_" + std::to_string(::getpid()) + "_" +
                           std::to_string(call++);
  const std::string in = base + ".in", out = base + ".out", err = base + ".err";
  std::ofstream(in, std::ios::binary) << input;
  const std::string cmd =
      std::string(HEARTH_BINARY) + " " + args + " <" + in + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  Result r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out), ReadFile(err)};
  std::remove(in.c_str());
  std::remove(out.c_str());
  std::remove(err.c_str());
  return r;
}

std::string GreedyText(const std::string& model_file, const std::vector<int32_t>& prompt, int n) {
  auto m = hearth::model::Model::Load(kModels + model_file);
  const auto tok = hearth::text::Tokenizer::Load(kModels + model_file);
  hearth::model::ContextOptions o;
  o.n_ctx = 256;
  hearth::model::Context ctx(*m, o);
  std::vector<float> logits(static_cast<size_t>(m->config().n_vocab));
  ctx.Decode(prompt, logits.data(), false);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t best =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(best);
    ctx.Decode(std::span<const int32_t>(&best, 1), logits.data(), false);
  }
  return tok.Decode(out);
}

TEST(RunCommand, GreedyCompletionStreamsToStdout) {
  const std::string file = "tiny-e.Q8_0.gguf";
  const auto tok = hearth::text::Tokenizer::Load(kModels + file);
  const std::string prompt = "Hello world";
  const std::vector<int32_t> ids = tok.Encode(prompt, /*add_bos=*/true);
  ASSERT_EQ(ids.front(), tok.bos_id());
  const std::string expected = GreedyText(file, ids, 12);
  const Result r = RunHearth("run -m " + kModels + file + " -p '" + prompt +
                             "' -n 12 --temp 0 --ignore-eos -t 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, prompt + expected + "\n");
  // One summary line on stderr.
  EXPECT_NE(r.err.find(std::to_string(ids.size()) + " prompt tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("12 generated"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stop: length"), std::string::npos) << r.err;

  const Result bare = RunHearth("run -m " + kModels + file + " -p '" + prompt +
                                "' -n 12 --temp 0 --ignore-eos --no-display-prompt -t 1");
  ASSERT_EQ(bare.exit_code, 0) << bare.err;
  EXPECT_EQ(bare.out, expected + "\n");
}

TEST(RunCommand, SeedReproducesAndStopStringCuts) {
  const std::string m = "run -m " + kModels + "tiny-dense.Q4_K_M.gguf -p 'Once upon' -t 1 ";
  const Result a = RunHearth(m + "-n 16 --seed 3 --temp 1.2 --ignore-eos --no-display-prompt");
  const Result b = RunHearth(m + "-n 16 --seed 3 --temp 1.2 --ignore-eos --no-display-prompt");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  const std::string text = a.out.substr(0, a.out.size() - 1);
  ASSERT_GT(text.size(), 6u);
  const std::string stop = text.substr(text.size() / 2, 2);
  if (stop.find('\'') == std::string::npos) {
    const Result s = RunHearth(m +
                               "-n 16 --seed 3 --temp 1.2 --ignore-eos --no-display-prompt "
                               "--stop '" +
                               stop + "'");
    ASSERT_EQ(s.exit_code, 0) << s.err;
    EXPECT_EQ(s.out, text.substr(0, text.find(stop)) + "\n");
    EXPECT_NE(s.err.find("stop: stop"), std::string::npos) << s.err;
  }
}

TEST(RunCommand, CtrlCStopsGenerationPromptly) {
  // Start a long generation, wait until it has printed the prompt (the SIGINT handler is in
  // place by then), send SIGINT, and expect a clean end with the reason on stderr and exit 130
  // (128 + SIGINT, what a shell reports for a command that Ctrl-C stopped).
  const std::string base = ::testing::TempDir() + "engine_cli_sigint_" + std::to_string(::getpid());
  const std::string out = base + ".out", err = base + ".err", script = base + ".sh";
  std::ofstream(script) << HEARTH_BINARY << " run -m " << kModels
                        << "tiny-e.Q8_0.gguf -p Hello -n 8000 -c 8192 --ignore-eos -t 1 >" << out
                        << " 2>" << err << " </dev/null &\n"
                        << "p=$!\n"
                        << "i=0; while [ ! -s " << out
                        << " ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n"
                        << "sleep 0.2; kill -INT $p; wait $p\n";
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system(("sh " + script).c_str());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string e = ReadFile(err);
  ASSERT_TRUE(WIFEXITED(status)) << e;
  EXPECT_EQ(WEXITSTATUS(status), 130) << e;
  EXPECT_NE(e.find("stop: cancelled"), std::string::npos) << e;
  EXPECT_EQ(ReadFile(out).rfind("Hello", 0), 0u);
  EXPECT_LT(seconds, 60);
  std::remove(out.c_str());
  std::remove(err.c_str());
  std::remove(script.c_str());
}

TEST(RunCommand, ErrorsAreClear) {
  const std::string m = kModels + "tiny-moe.Q4_0.gguf";
  // Prompt + new tokens beyond the context: resource error before any work.
  Result r = RunHearth("run -m " + m + " -p 'Hello world' -n 100 -c 16");
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_NE(r.err.find("hearth: error: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("context of 16"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  r = RunHearth("run -m " + m + " -p x --top-p 2");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("top-p"), std::string::npos) << r.err;
  r = RunHearth("run -m " + m + " -p x -c 999999999");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = RunHearth("run -m /nonexistent.gguf -p x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent.gguf"), std::string::npos) << r.err;
  r = RunHearth("run --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--repeat-penalty"), std::string::npos);
}

// What `hearth chat` should print (stdout not a terminal) for a one-message conversation with
// greedy decoding: the rendered prompt's argmax chain up to an end token or n tokens, parsed.
std::string ExpectedChatReply(const std::string& model_file, const std::string& user, int n) {
  using Json = nlohmann::ordered_json;
  const std::string prompt = hearth::text::RenderChat(
      {{"messages", Json::array({Json{{"role", "user"}, {"content", user}}})},
       {"add_generation_prompt", true},
       {"enable_thinking", false}});
  auto m = hearth::model::Model::Load(kModels + model_file);
  const auto tok = hearth::text::Tokenizer::Load(kModels + model_file);
  hearth::model::ContextOptions o;
  o.n_ctx = 256;
  hearth::model::Context ctx(*m, o);
  std::vector<float> logits(static_cast<size_t>(m->config().n_vocab));
  ctx.Decode(tok.Encode(prompt, false, true), logits.data(), false);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t best =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (tok.IsEndOfGeneration(best)) break;
    out.push_back(best);
    ctx.Decode(std::span<const int32_t>(&best, 1), logits.data(), false);
  }
  hearth::text::ParserConfig pc;
  pc.generation_prompt = "<|turn>model\n<|channel>thought\n<channel|>";
  hearth::text::ParsedOutput p = hearth::text::ParseOutput(tok.Decode(out), pc, false);
  if (p.error) p = {.content = tok.Decode(out)};  // not Gemma 4's format: shown raw
  std::string shown;
  if (!p.reasoning.empty()) shown += "<think>\n" + p.reasoning + "\n</think>\n";
  return shown + p.content + "\n";
}

int CountLines(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(ChatCommand, PipedConversationWithCommands) {
  const std::string file = "tiny-e.Q8_0.gguf";
  const std::string first = ExpectedChatReply(file, "Hello", 8);
  const std::string after_clear = ExpectedChatReply(file, "Hi", 8);
  const Result r = RunHearth("chat --plain -m " + kModels + file + " -n 8 --temp 0 -t 1 --verbose",
                             "Hello\n/think on\n/think off\n/clear\n/help\nHi\n/exit\nignored\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(first, 0), 0u) << r.out;
  EXPECT_NE(r.out.find("(thinking on)\n(thinking off)\n(conversation cleared)\nCommands:"),
            std::string::npos)
      << r.out;
  ASSERT_GE(r.out.size(), after_clear.size());
  EXPECT_EQ(r.out.substr(r.out.size() - after_clear.size()), after_clear) << r.out;
  // Two replies, then /exit: "ignored" is never answered.
  EXPECT_EQ(CountLines(r.err, "hearth chat: "), 2) << r.err;
  EXPECT_EQ(r.out.find('>'), std::string::npos);  // no prompt when stdin is not a terminal
}

TEST(ChatCommand, SecondTurnReusesThePrefixAndEofEnds) {
  const std::string m = kModels + "tiny-moe.Q8_0.gguf";
  const Result r =
      RunHearth("chat --plain -m " + m + " -n 4 --temp 0 -t 1 --verbose --system 'Be brief.'",
                "Hello there\nAnd then?\n");  // no /exit: end of input ends the chat
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(CountLines(r.err, "hearth chat: "), 2) << r.err;
  const size_t second = r.err.rfind("hearth chat: ");
  EXPECT_NE(r.err.find("(0 reused)"), std::string::npos) << r.err;  // turn 1: nothing cached
  EXPECT_EQ(r.err.find("(0 reused)", second), std::string::npos) << r.err;

  const Result empty = RunHearth("chat --plain -m " + m, "");
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_TRUE(empty.out.empty()) << empty.out;
}

// Ten turns at -c 256: the oldest turns are dropped (said once), /context lists them, the chat
// ends normally, and after /clear the reply is a fresh conversation's.
TEST(ChatCommand, AConversationOutlivesTheContext) {
  const std::string file = "tiny-e.Q8_0.gguf";
  std::string input;
  for (int i = 0; i < 10; ++i) {
    input += "Question " + std::to_string(i) + " about the tides, the moon and the boats\n";
  }
  input += "/context\n/clear\nHi\n";
  const Result r =
      RunHearth("chat --plain -m " + kModels + file + " -c 256 -n 16 --temp 0 -t 1", input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(CountLines(r.err, "(the conversation outgrew the context of 256 tokens"), 1) << r.err;
  EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("context 256 tokens; the last prompt took "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("oldest turns left out (the conversation outgrew the context):\n"
                       "  1. Question 0 about the tides, the moon and the boats  (2 messages, "),
            std::string::npos)
      << r.out;
  const std::string after_clear = ExpectedChatReply(file, "Hi", 16);
  ASSERT_GE(r.out.size(), after_clear.size());
  EXPECT_EQ(r.out.substr(r.out.size() - after_clear.size()), after_clear) << r.out;
}

TEST(ChatCommand, ErrorsAreClear) {
  const std::string m = kModels + "tiny-dense.Q4_0.gguf";
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += std::to_string(i * 7919 % 1000).insert(0, 1, ' ');
  // A message that cannot fit at all is an error, and the session goes on: /clear and the next
  // line still run; the exit status says a message failed.
  Result r =
      RunHearth("chat --plain -m " + m + " -c 32 -n 4 --temp 0 -t 1", long_text + "\n/clear\nHi\n");
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("hearth: error: the prompt ("), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("(conversation cleared)\n"), std::string::npos) << r.out;
  const std::string hi = ExpectedChatReply("tiny-dense.Q4_0.gguf", "Hi", 4);
  ASSERT_GE(r.out.size(), hi.size());
  EXPECT_EQ(r.out.substr(r.out.size() - hi.size()), hi) << r.out;
  r = RunHearth("chat --plain -m " + m + " --chat-template nope", "");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = RunHearth("chat --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--think"), std::string::npos);
  EXPECT_NE(r.out.find("/clear"), std::string::npos);
}

}  // namespace
