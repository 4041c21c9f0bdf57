// `hearth ask "QUESTION"`: one question about the repository, answered by the assistant loop
// (src/agent) with the local engine or a remote server, tools under the chosen permissions.
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/assistant.h"
#include "cli/commands.h"
#include "cli/terminal.h"

namespace hearth::cli {
namespace {

struct AskCliOptions {
  std::shared_ptr<AssistantFlags> flags = std::make_shared<AssistantFlags>();
  std::vector<std::string> question;
  bool explain = false;
};

void RunAsk(const AskCliOptions& o) {
  std::string question;
  for (const auto& w : o.question) question += (question.empty() ? "" : " ") + w;
  if (question.empty()) ThrowUsage("no question given", "hearth ask \"what does main do?\"");
  // Permission prompts read y/n from stdin when it is a terminal, and answer no otherwise.
  AssistantSession s(*o.flags, TerminalApproval());
  agent::AskOptions ao = s.Options(o.flags->think);
  ao.cancel = &g_interrupted;
  ao.media = AssistantSession::MediaParts(o.flags->media);
  if (o.explain) {
    std::cerr << DisplaySafe(s.Describe()) << "\n"
              << DisplaySafe(s.agent.PlanContext(question, ao).Describe()) << std::flush;
  }

  const bool tty_out = ::isatty(STDOUT_FILENO);
  // Thoughts: dimmed on a terminal; when stdout is redirected they go to stderr, so stdout holds
  // only the answer.
  bool in_thought = false, mid_line = false;
  // The model's text is shown escaped (cli/terminal.h): it cannot move the cursor, clear lines or
  // retitle the terminal.
  DisplayStream thought_text, answer_text;
  auto end_line = [&] {
    if (in_thought) {
      (tty_out ? std::cout : std::cerr) << thought_text.Finish();
      std::cout << (tty_out ? "\x1b[0m\n" : "");
      if (!tty_out) std::cerr << "\n";
      in_thought = false;
    }
    std::cout << answer_text.Finish();
    if (mid_line) std::cout << "\n";
    mid_line = false;
    std::cout << std::flush;
  };
  agent::AgentCallbacks cb;
  cb.on_reasoning = [&](std::string_view t) {
    if (!in_thought && tty_out) std::cout << "\x1b[2m";
    in_thought = true;
    (tty_out ? std::cout : std::cerr) << thought_text.Push(t) << std::flush;
  };
  cb.on_content = [&](std::string_view t) {
    if (in_thought) end_line();
    std::cout << answer_text.Push(t) << std::flush;
    mid_line = !t.empty() ? !t.ends_with('\n') : mid_line;
  };
  AddActivityLines(cb, end_line, o.flags->verbose);

  agent::TurnResult r;
  {
    const ScopedSigint sigint;  // Ctrl-C stops the answer (the journal's change set is closed)
    r = s.agent.Ask(question, ao, cb);
  }
  end_line();
  PrintTurnEnd(r, ao.max_tokens, "`hearth undo`");
  if (r.finish_reason == "cancelled") throw Interrupted{};
}

}  // namespace

void RegisterAskCommand(CLI::App& app) {
  auto o = std::make_shared<AskCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "ask",
      "Ask the assistant about the repository; it reads, searches and (if allowed) edits.\n"
      "Context: system prompt, AGENTS.md / .hearth/rules.md, tool declarations, repo map, code\n"
      "found by searching for the question and --file contents, budgeted in tokens (anything\n"
      "left out is reported). Edits are journaled: `hearth undo` restores them. Commands the\n"
      "assistant may run are listed in ~/.config/hearth/config.toml or in the repository's\n"
      ".hearth/config.toml once you `hearth trust` it:\n"
      "  [run]\n  allowed = [\"make test\"]\n  timeout_seconds = 120\n"
      "  [agent]\n  permissions = \"ask\"   # read-only | ask | auto\n"
      "Images and audio go with the question: --image shot.png (any Gemma 4 model), --audio\n"
      "clip.wav (E2B/E4B), read by the projector next to the model or --mmproj.\n"
      "For a conversation (several questions, /undo, /context) use `hearth chat`.");
  cmd->add_option("question", o->question, "The question (quote it)")->required();
  AddAssistantFlags(cmd, o->flags);
  AddMediaFlags(cmd, &o->flags->media);
  cmd->add_flag("--explain-context", o->explain,
                "Print what went into the context, why (which signal found it) and what was left "
                "out");
  cmd->callback([o] { RunAsk(*o); });
}
HEARTH_COMMAND(ask, RegisterAskCommand);

}  // namespace hearth::cli
