// `hearth chat`: the assistant, interactively. The same backends, flags and tools as `hearth ask`
// (cli/assistant.h), one question per line, the conversation (tool calls and results included)
// carried over the turns: a local engine keeps the conversation's KV state, so a turn decodes
// only what it adds. Replies stream; thoughts are shown dimmed (between <think> lines when stdout
// is not a terminal) and are not kept in the history beyond what the template allows. Commands:
// /think on|off, /context, /undo, /clear, /help, /exit. Ctrl-C stops a reply; Ctrl-C twice at the
// prompt (or Ctrl-D) quits. With stdin not a terminal it reads one message per line until EOF and
// permission prompts are answered no; on a terminal they are read from the same line editor.
//
// `hearth chat --plain -m MODEL.gguf [--system TEXT] [sampling flags]`: a plain chat with the
// model (official Gemma 4 template, no tools, no repository), as before the assistant existed.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "base/display.h"
#include "base/error.h"
#include "cli/assistant.h"
#include "cli/commands.h"
#include "cli/exit_code.h"
#include "cli/generation_flags.h"
#include "cli/input.h"
#include "cli/media_flags.h"
#include "cli/model_flag.h"
#include "cli/terminal.h"
#include "engine/chat.h"
#include "engine/loaded_model.h"
#include "engine/session.h"

namespace hearth::cli {
namespace {

// `/image PATH`, `/audio PATH`, `/video PATH` (both chat modes): the kind and the path, trimmed
// ("" when none is given); nullopt for any other command.
struct MediaCommand {
  engine::MediaKind kind;
  std::string path;
};
std::optional<MediaCommand> ParseMediaCommand(const std::string& cmd) {
  engine::MediaKind kind;
  if (cmd == "/image" || cmd.starts_with("/image ")) {
    kind = engine::MediaKind::kImage;
  } else if (cmd == "/audio" || cmd.starts_with("/audio ")) {
    kind = engine::MediaKind::kAudio;
  } else if (cmd == "/video" || cmd.starts_with("/video ")) {
    kind = engine::MediaKind::kVideo;
  } else {
    return std::nullopt;
  }
  std::string path = cmd.size() > 7 ? cmd.substr(7) : std::string();
  while (!path.empty() && std::isspace(static_cast<unsigned char>(path.back()))) path.pop_back();
  while (!path.empty() && std::isspace(static_cast<unsigned char>(path.front()))) path.erase(0, 1);
  return MediaCommand{kind, path};
}

// What a media command without a path prints.
const char* MediaCommandUsage(engine::MediaKind kind) {
  switch (kind) {
    case engine::MediaKind::kImage:
      return "(/image PATH attaches an image to the next message)\n";
    case engine::MediaKind::kVideo:
      return "(/video PATH attaches a video to the next message)\n";
    default:
      return "(/audio PATH attaches an audio file to the next message)\n";
  }
}

struct ChatOptions {
  std::shared_ptr<AssistantFlags> flags = std::make_shared<AssistantFlags>();
  std::shared_ptr<GenerationFlags> gen = std::make_shared<GenerationFlags>();  // --plain
  bool plain = false;
  std::string system;
  std::string chat_template = "official";
  MediaFlags media;  // --plain: --image / --audio FILE... for the first message, --mmproj
};

const char* kAssistantHelp =
    "Commands:\n"
    "  /think on|off  thinking mode (the model reasons before answering; thoughts shown dimmed)\n"
    "  /context       what the last question's context included, why, and what was left out\n"
    "  /image PATH    attach an image to the next message (--image-tokens sets its budget)\n"
    "  /audio PATH    attach an audio file to the next message (Gemma 4 E2B/E4B)\n"
    "  /video PATH    attach a video to the next message (first 60 s, --video-fps frames)\n"
    "  /undo          restore the files of the last change set (as `hearth undo`)\n"
    "  /clear         forget the conversation\n"
    "  /help          this list\n"
    "  /exit          quit (also Ctrl-D, or Ctrl-C twice at the prompt)\n"
    "Ctrl-C while the model is answering stops the answer.\n";

const char* kHelp =
    "Commands:\n"
    "  /think on|off  thinking mode (the model reasons before answering; thoughts shown dimmed)\n"
    "  /image PATH    attach an image to the next message (--image-tokens sets its budget)\n"
    "  /audio PATH    attach an audio file to the next message (Gemma 4 E2B/E4B)\n"
    "  /video PATH    attach a video to the next message (first 60 s, --video-fps frames)\n"
    "  /context       the context's size, the last prompt's tokens and the turns left out\n"
    "  /clear         forget the conversation (the system prompt stays)\n"
    "  /help          this list\n"
    "  /exit          quit (also Ctrl-D, or Ctrl-C twice at the prompt)\n"
    "Ctrl-C while the model is answering stops the answer.\n";

void RunPlainChat(ChatOptions& opt) {
  const AssistantFlags& f = *opt.flags;
  if (!f.backend.empty() || !f.files.empty() || !f.permissions.empty()) {
    ThrowUsage("--plain chats with a local model only",
               "drop --backend, --file and --permissions, or drop --plain for the assistant");
  }
  GenerationFlags& gen = *opt.gen;
  gen.adapters = f.adapters;
  gen.model_path = ModelPath(f.model, &gen.adapters, &gen.draft_path);
  gen.n_ctx = f.n_ctx;
  gen.threads = f.threads;
  gen.cache_type = f.cache_type;
  gen.verbose = f.verbose;
  if (opt.chat_template != "official" && opt.chat_template != "interleaved") {
    // text::ParseChatTemplate's hint names render-chat's --template; here the flag differs.
    ThrowUsage("unknown chat template '" + opt.chat_template + "'",
               "use --chat-template official or --chat-template interleaved");
  }
  const text::ChatTemplate tmpl = text::ParseChatTemplate(opt.chat_template);
  engine::GenerateOptions gopt;
  gopt.sampling = gen.Sampling();
  // Without -n: until the reply ends or the context is full.
  gopt.max_tokens = f.max_tokens_option->count() > 0 ? f.max_tokens : 0;
  gopt.cancel = &g_interrupted;

  const auto lm = engine::LoadedModel::Open(gen.model_path, gen.adapters.Request());
  gen.ApplySpeculation(*lm);
  engine::Session session(lm->model(), lm->tokenizer(), lm->Context(gen.Context()));
  session.SetSpeculation(lm->speculation());
  engine::ChatSession chat(session, tmpl);
  chat.set_system(opt.system);
  chat.set_thinking(f.think);

  // Media for the next message: --image and --audio files, then each /image or /audio PATH. The
  // projector is opened when first needed, so a text-only chat needs none.
  std::unique_ptr<engine::Projector> projector;
  std::vector<engine::MediaPtr> pending;
  auto attach = [&](engine::MediaKind kind, const std::string& path) {
    if (!projector) {
      projector = OpenProjector(opt.media.mmproj, gen.model_path, lm->config(),
                                lm->Context(gen.Context()).n_threads);
    }
    pending.push_back(EncodeMediaFile(*projector, kind, path, opt.media));
  };
  for (const std::string& path : opt.media.image) attach(engine::MediaKind::kImage, path);
  for (const std::string& path : opt.media.audio) attach(engine::MediaKind::kAudio, path);
  for (const std::string& path : opt.media.video) attach(engine::MediaKind::kVideo, path);

  const bool in_tty = isatty(STDIN_FILENO) == 1;
  const bool out_tty = isatty(STDOUT_FILENO) == 1;
  const ScopedSigint sigint;

  if (in_tty) {
    std::cout << "hearth chat: " << gen.model_path << " (context " << session.n_ctx()
              << " tokens, thinking " << (chat.thinking() ? "on" : "off")
              << "). /help for commands.\n";
  }
  // Room kept for each reply when the conversation has to be shortened: -n, else a quarter of
  // the context.
  const int reserve = std::max(1, gopt.max_tokens > 0 ? gopt.max_tokens : session.n_ctx() / 4);
  int last_prompt_tokens = 0;
  bool told_dropped = false;
  int exit_code = 0;  // a message that did not fit: reported, and the exit status at the end
  LineReader reader(in_tty);
  while (true) {
    std::optional<std::string> line = reader.Read("> ");
    if (!line) {
      if (reader.interrupted()) throw Interrupted{};
      break;
    }
    g_interrupted.store(false);
    if (line->empty()) continue;
    if ((*line)[0] == '/') {
      const std::string cmd = *line;
      if (cmd == "/exit" || cmd == "/quit") break;
      if (cmd == "/help") {
        std::cout << kHelp;
      } else if (cmd == "/context") {
        std::cout << "context " << session.n_ctx() << " tokens; the last prompt took "
                  << last_prompt_tokens << "\n";
        if (chat.dropped().empty()) {
          std::cout << "no turns left out\n";
        } else {
          std::cout << chat.dropped().size()
                    << " oldest turns left out (the conversation outgrew the context):\n";
          int n = 0;
          for (const engine::DroppedTurn& d : chat.dropped()) {
            std::cout << "  " << ++n << ". " << DisplaySafe(d.opening, kOneLine) << "  ("
                      << d.messages << " messages, " << d.tokens << " tokens)\n";
          }
        }
      } else if (cmd == "/clear") {
        chat.Clear();
        last_prompt_tokens = 0;
        std::cout << "(conversation cleared)\n";
      } else if (cmd == "/think on" || cmd == "/think off") {
        chat.set_thinking(cmd == "/think on");
        std::cout << "(thinking " << (chat.thinking() ? "on" : "off") << ")\n";
      } else if (cmd == "/think") {
        std::cout << "(thinking is " << (chat.thinking() ? "on" : "off")
                  << "; /think on or /think off)\n";
      } else if (const auto media = ParseMediaCommand(cmd)) {
        const engine::MediaKind kind = media->kind;
        const bool video = kind == engine::MediaKind::kVideo;
        const std::string& path = media->path;
        if (path.empty()) {
          std::cout << MediaCommandUsage(kind);
        } else {
          try {
            attach(kind, path);
            const engine::MediaEmbedding& item = *pending.back();
            std::cout << "(" << DisplaySafe(path, kOneLine) << ": ";
            if (video) std::cout << item.frames.size() << " frames, ";
            std::cout << engine::PromptPositions(item) - (video ? 0 : 2) << " "
                      << engine::MediaKindName(kind) << " positions, sent with the next message)\n";
          } catch (const Error& e) {
            if (!in_tty) throw;
            std::cout << std::flush;
            std::cerr << "hearth: error: " << e.Describe() << "\n";
          }
        }
      } else {
        std::cout << "unknown command " << cmd << "; /help lists the commands\n";
      }
      std::cout << std::flush;
      continue;
    }

    chat.AddUser(*line, std::move(pending));
    pending.clear();
    ReplyPrinter printer(out_tty);
    engine::ChatCallbacks cb;
    cb.on_reasoning = [&](std::string_view t) { printer.Reasoning(t); };
    cb.on_content = [&](std::string_view t) { printer.Content(t); };
    try {
      const engine::ContextFit fit = chat.FitToContext(reserve);
      last_prompt_tokens = fit.prompt_tokens;
      if (!fit.dropped.empty() && !told_dropped) {
        told_dropped = true;  // said once; /context keeps the list
        std::cout << std::flush;
        std::cerr << "(the conversation outgrew the context of " << session.n_ctx()
                  << " tokens: its oldest turns are left out from now on; /context lists them)\n";
      }
      engine::GenerateOptions turn_opt = gopt;
      if (turn_opt.max_tokens > 0) {
        // -n within the room left (0 when there is none: Respond then says it does not fit).
        turn_opt.max_tokens =
            std::max(0, std::min(turn_opt.max_tokens, session.n_ctx() - fit.prompt_tokens));
      }
      const engine::ChatReply reply = chat.Respond(turn_opt, cb);
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
      // The message did not fit even alone (or similar): it is dropped and the session goes on.
      // A script gets that exit code at the end; other errors end a script's session.
      chat.PopMessage();
      printer.End();
      if (!in_tty && e.error_class() != ErrorClass::kResource) throw;
      if (!in_tty) exit_code = e.exit_code();
      std::cout << std::flush;
      std::cerr << "hearth: error: " << e.Describe() << "\n";
    }
    std::cout << std::flush;
    g_interrupted.store(false);
  }
  if (exit_code != 0) throw ExitCode{exit_code};
}

// Yes only for y / yes.
bool IsYes(std::string a) {
  while (!a.empty() && std::isspace(static_cast<unsigned char>(a.back()))) a.pop_back();
  while (!a.empty() && std::isspace(static_cast<unsigned char>(a.front()))) a.erase(0, 1);
  for (char& c : a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return a == "y" || a == "yes";
}

void RunAssistantChat(ChatOptions& opt) {
  // The speculation flags are registered once, for both modes (AddSpeculationFlags).
  opt.flags->draft_path = opt.gen->draft_path;
  opt.flags->draft_model_path = opt.gen->draft_model_path;
  opt.flags->lookup = opt.gen->lookup;
  opt.flags->no_spec = opt.gen->no_spec;
  opt.flags->media = opt.media;
  const AssistantFlags& f = *opt.flags;
  if (!opt.system.empty() || opt.chat_template != "official") {
    ThrowUsage("--system and --chat-template are for --plain",
               "the assistant has its own system prompt; put repository instructions in "
               "AGENTS.md or .hearth/rules.md");
  }
  const bool in_tty = isatty(STDIN_FILENO) == 1;
  const bool out_tty = isatty(STDOUT_FILENO) == 1;
  LineReader reader(in_tty);
  // On a terminal, permission prompts are read by the same line editor as the conversation;
  // otherwise the terminal confirmer answers no (a script never hangs on a prompt).
  agent::Confirmer confirm = TerminalApproval();
  if (in_tty) {
    confirm = [&reader](const std::string& summary, const std::string& details) {
      std::cout << std::flush;
      const size_t width = TerminalWidth();
      std::cerr << "\n" << ApprovalDetails(details, width) << std::flush;
      std::optional<std::string> a = reader.Read(ApprovalQuestion(summary, width), false);
      g_interrupted.store(false);  // a Ctrl-C at the question means no, not "stop the turn"
      return a && IsYes(*a);
    };
  }
  AssistantSession s(f, confirm);
  bool think = f.think;
  // Images and audio for the next message: --image / --audio, then each /image or /audio PATH.
  // They are read and encoded when the message is sent (an unreadable file fails that turn).
  nlohmann::ordered_json pending = AssistantSession::MediaParts(opt.media);
  int exit_code = 0;  // a message that did not fit: reported, and the exit status at the end
  std::optional<agent::ContextReport> last_context;
  const ScopedSigint sigint;

  if (in_tty) {
    std::cout << "hearth chat: " << s.Describe() << "; workspace " << s.ws.root().string()
              << "; thinking " << (think ? "on" : "off") << ". /help for commands.\n";
  }
  while (true) {
    std::optional<std::string> line = reader.Read("> ");
    if (!line) {
      if (reader.interrupted()) throw Interrupted{};
      break;
    }
    g_interrupted.store(false);
    if (line->find_first_not_of(" \t") == std::string::npos) continue;
    if ((*line)[0] == '/') {
      std::string cmd = *line;
      while (!cmd.empty() && std::isspace(static_cast<unsigned char>(cmd.back()))) cmd.pop_back();
      if (cmd == "/exit" || cmd == "/quit") break;
      if (cmd == "/help") {
        std::cout << kAssistantHelp;
      } else if (cmd == "/clear") {
        s.agent.Clear();
        last_context.reset();
        std::cout << "(conversation cleared)\n";
      } else if (cmd == "/think on" || cmd == "/think off") {
        think = cmd == "/think on";
        std::cout << "(thinking " << (think ? "on" : "off") << ")\n";
      } else if (cmd == "/think") {
        std::cout << "(thinking is " << (think ? "on" : "off") << "; /think on or /think off)\n";
      } else if (cmd == "/context") {
        if (!last_context) {
          std::cout << "(no question asked yet: /context shows the last question's context)\n";
        } else {
          std::cout << DisplaySafe(s.Describe()) << "\n" << DisplaySafe(last_context->Describe());
        }
      } else if (const auto media = ParseMediaCommand(cmd)) {
        const std::string& path = media->path;
        std::error_code ec;
        if (path.empty()) {
          std::cout << MediaCommandUsage(media->kind);
        } else if (!std::filesystem::is_regular_file(path, ec)) {
          if (!in_tty) ThrowIo("cannot read '" + path + "': no such file", "check the path");
          std::cerr << "hearth: error: cannot read '" << DisplaySafe(path, kOneLine)
                    << "': no such file\n";
        } else {
          MediaFlags one;
          (media->kind == engine::MediaKind::kImage   ? one.image
           : media->kind == engine::MediaKind::kVideo ? one.video
                                                      : one.audio)
              .push_back(path);
          one.image_tokens = opt.media.image_tokens;
          one.video_fps = opt.media.video_fps;
          one.video_tokens = opt.media.video_tokens;
          for (auto& part : AssistantSession::MediaParts(one)) pending.push_back(part);
          std::cout << "(" << DisplaySafe(path, kOneLine) << ": sent with the next message)\n";
        }
      } else if (cmd == "/undo") {
        try {
          PrintUndo(std::cout, agent::UndoLast(s.ws), s.ws.root());
        } catch (const Error& e) {
          if (!in_tty) throw;
          std::cerr << "hearth: error: " << e.Describe() << "\n";
        }
      } else {
        std::cout << "unknown command " << cmd << "; /help lists the commands\n";
      }
      std::cout << std::flush;
      continue;
    }

    ReplyPrinter printer(out_tty);
    agent::AgentCallbacks cb;
    cb.on_reasoning = [&](std::string_view t) { printer.Reasoning(t); };
    cb.on_content = [&](std::string_view t) { printer.Content(t); };
    AddActivityLines(
        cb, [&] { printer.Break(); }, f.verbose);
    agent::AskOptions ao = s.Options(think);
    ao.cancel = &g_interrupted;
    ao.media = std::exchange(pending, nlohmann::ordered_json::array());
    try {
      agent::TurnResult r = s.agent.Ask(*line, ao, cb);
      printer.Break();  // ends the last line; the step lines (-v) may have ended it already
      last_context = r.context;
      PrintTurnEnd(r, ao.max_tokens, "/undo");
    } catch (const Error& e) {
      // The turn failed (the backend is unreachable, a message too long for the context even
      // alone...): the conversation is as before it. On a terminal the session goes on; so does
      // a script's after a message that did not fit (its exit code comes at the end), while other
      // errors end a script's session with their exit code.
      printer.Break();
      if (!in_tty && e.error_class() != ErrorClass::kResource) throw;
      if (!in_tty) exit_code = e.exit_code();
      std::cerr << "hearth: error: " << e.Describe() << "\n";
    }
    std::cout << std::flush;
    g_interrupted.store(false);
  }
  if (exit_code != 0) throw ExitCode{exit_code};
}

}  // namespace

void RegisterChatCommand(CLI::App& app);
HEARTH_COMMAND(chat, RegisterChatCommand);

void RegisterChatCommand(CLI::App& app) {
  auto opt = std::make_shared<ChatOptions>();
  CLI::App* cmd = app.add_subcommand(
      "chat",
      "Talk with the assistant about the repository: `hearth ask` as a conversation. Same\n"
      "backends, flags, tools and permissions; the conversation (tool calls and results\n"
      "included) carries over the questions. Replies stream; with --think the model reasons\n"
      "first and its thoughts are shown dimmed (not kept in the conversation). Line editing\n"
      "and history on a terminal; with stdin not a terminal each input line is one message,\n"
      "permission prompts are answered no, and it ends at end of input.\n"
      "Commands: /think on|off, /context (what the last question's context held and why),\n"
      "/undo (restore the last change set), /clear, /help, /exit. Ctrl-C stops a reply;\n"
      "Ctrl-C twice at the prompt (or Ctrl-D) quits.\n"
      "--plain: a plain chat with the model instead (no tools, no repository; --system,\n"
      "--chat-template and the sampling flags apply there; -n defaults to the reply's end).");
  AddAssistantFlags(cmd, opt->flags, /*speculation=*/false);
  cmd->add_flag("--plain", opt->plain,
                "A plain chat with the local model (-m): no tools, no repository context");
  cmd->add_option("--system", opt->system, "--plain: a system prompt for the whole conversation");
  cmd->add_option("--chat-template", opt->chat_template,
                  "--plain: official (default) or interleaved");
  AddSamplingFlags(cmd, opt->gen);
  AddSpeculationFlags(cmd, opt->gen);
  AddMediaFlags(cmd, &opt->media);
  cmd->callback([opt] { opt->plain ? RunPlainChat(*opt) : RunAssistantChat(*opt); });
}

}  // namespace hearth::cli
