// `hearth chat -m MODEL.gguf [--think] [--system TEXT] [-c CTX] [-t N] [sampling flags]`: an
// interactive chat with the official Gemma 4 template. Replies stream as they are generated;
// thoughts are shown dimmed on a terminal. Ctrl-C stops a reply; Ctrl-C twice at the prompt (or
// /exit, or Ctrl-D) quits. With stdin not a terminal it reads one message per line until EOF.
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/generation_flags.h"
#include "cli/terminal.h"
#include "engine/chat.h"
#include "engine/session.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace hearth::cli {
namespace {

struct ChatOptions {
  std::shared_ptr<GenerationFlags> gen = std::make_shared<GenerationFlags>();
  bool think = false;
  std::string system;
  int n_predict = 0;  // 0: until the turn ends or the context is full
  std::string chat_template = "official";
};

const char* kHelp =
    "Commands:\n"
    "  /think on|off  thinking mode (the model reasons before answering; thoughts shown dimmed)\n"
    "  /clear         forget the conversation (the system prompt stays)\n"
    "  /help          this list\n"
    "  /exit          quit (also Ctrl-D, or Ctrl-C twice at the prompt)\n"
    "Ctrl-C while the model is answering stops the answer.\n";

void RunChat(ChatOptions& opt) {
  GenerationFlags& gen = *opt.gen;
  if (opt.n_predict < 0) ThrowUsage("-n must be >= 0", "0 means until the reply ends");
  const text::ChatTemplate tmpl = text::ParseChatTemplate(opt.chat_template);
  engine::GenerateOptions gopt;
  gopt.sampling = gen.Sampling();
  gopt.max_tokens = opt.n_predict;
  gopt.cancel = &g_interrupted;

  auto model = model::Model::Load(gen.model_path);
  const text::Tokenizer tokenizer = text::Tokenizer::Load(gen.model_path);
  engine::Session session(*model, tokenizer, gen.ContextFor(model->config()));
  engine::ChatSession chat(session, tmpl);
  chat.set_system(opt.system);
  chat.set_thinking(opt.think);

  const bool in_tty = isatty(STDIN_FILENO) == 1;
  const bool out_tty = isatty(STDOUT_FILENO) == 1;
  const ScopedSigint sigint;

  if (in_tty) {
    std::cout << "hearth chat: " << gen.model_path << " (context " << session.n_ctx()
              << " tokens, thinking " << (chat.thinking() ? "on" : "off")
              << "). /help for commands.\n";
  }
  LineReader reader(in_tty);
  while (true) {
    std::optional<std::string> line = reader.Read("> ");
    if (!line) break;
    g_interrupted.store(false);
    if (line->empty()) continue;
    if ((*line)[0] == '/') {
      const std::string cmd = *line;
      if (cmd == "/exit" || cmd == "/quit") break;
      if (cmd == "/help") {
        std::cout << kHelp;
      } else if (cmd == "/clear") {
        chat.Clear();
        std::cout << "(conversation cleared)\n";
      } else if (cmd == "/think on" || cmd == "/think off") {
        chat.set_thinking(cmd == "/think on");
        std::cout << "(thinking " << (chat.thinking() ? "on" : "off") << ")\n";
      } else if (cmd == "/think") {
        std::cout << "(thinking is " << (chat.thinking() ? "on" : "off")
                  << "; /think on or /think off)\n";
      } else {
        std::cout << "unknown command " << cmd << "; /help lists the commands\n";
      }
      std::cout << std::flush;
      continue;
    }

    chat.AddUser(*line);
    ReplyPrinter printer(out_tty);
    engine::ChatCallbacks cb;
    cb.on_reasoning = [&](std::string_view t) { printer.Reasoning(t); };
    cb.on_content = [&](std::string_view t) { printer.Content(t); };
    try {
      const engine::ChatReply reply = chat.Respond(gopt, cb);
      printer.End();
      // Notes go to stderr so that piped output holds only the replies.
      if (reply.stats.stop_reason == engine::StopReason::kCancelled) {
        std::cerr << "(stopped)\n";
      } else if (reply.stats.stop_reason == engine::StopReason::kContextFull ||
                 reply.stats.stop_reason == engine::StopReason::kMaxTokens) {
        std::cerr << "(reply cut at " << reply.stats.generated_tokens << " tokens: "
                  << (reply.stats.stop_reason == engine::StopReason::kContextFull
                          ? "the context is full; /clear to start over"
                          : "the -n limit")
                  << ")\n";
      }
      if (reply.parsed.error) {
        std::cerr << "(the reply is not in Gemma 4's output format; shown as it came)\n";
      }
      if (gen.verbose) std::cerr << "hearth chat: " << reply.stats.Summary() << "\n";
    } catch (const Error& e) {
      // The turn did not fit (or similar): drop the message. On a terminal the session goes
      // on; a script gets the error and its exit code.
      chat.PopMessage();
      printer.End();
      if (!in_tty) throw;
      std::cout << std::flush;
      std::cerr << "hearth: error: " << e.Describe() << "\n";
    }
    std::cout << std::flush;
    g_interrupted.store(false);
  }
}

}  // namespace

void RegisterChatCommand(CLI::App& app);
HEARTH_COMMAND(chat, RegisterChatCommand);

void RegisterChatCommand(CLI::App& app) {
  auto opt = std::make_shared<ChatOptions>();
  CLI::App* cmd = app.add_subcommand(
      "chat",
      "Chat with a Gemma 4 model (instruction-tuned) in the terminal. Replies stream as they are\n"
      "generated; with --think the model reasons first and its thoughts are shown dimmed (they\n"
      "are not kept in the conversation). Line editing and history on a terminal; with stdin\n"
      "not a terminal, each input line is one message and it ends at end of input.\n"
      "Commands: /think on|off, /clear, /help, /exit. Ctrl-C stops a reply; Ctrl-C twice at\n"
      "the prompt (or Ctrl-D) quits.");
  AddGenerationFlags(cmd, opt->gen);
  cmd->add_flag("--think", opt->think, "Start with thinking mode on (/think on|off changes it)");
  cmd->add_option("--system", opt->system, "A system prompt for the whole conversation");
  cmd->add_option("-n,--n-predict", opt->n_predict,
                  "New tokens per reply at most (default 0: until the reply ends or the "
                  "context is full)");
  cmd->add_option("--chat-template", opt->chat_template, "official (default) or interleaved");
  cmd->callback([opt] { RunChat(*opt); });
}

}  // namespace hearth::cli
