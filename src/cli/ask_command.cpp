// `hearth ask "QUESTION"`: one question about the repository, answered by the assistant loop
// (src/agent) with the local engine or a remote server, tools under the chosen permissions.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "base/error.h"
#include "cli/commands.h"
#include "index/index.h"

namespace hearth::cli {
namespace {

std::atomic<bool> g_cancel{false};

void OnSigint(int) { g_cancel.store(true); }

struct AskCliOptions {
  std::string model;
  std::string backend;
  std::string root;
  std::string permissions;
  std::vector<std::string> files;
  std::vector<std::string> question;
  int max_tokens = 2048;
  int max_steps = 12;
  int n_ctx = 0;
  int threads = 0;
  bool think = false;
  bool explain = false;
  bool no_index = false;
  bool verbose = false;
};

void RunAsk(const AskCliOptions& o) {
  std::string question;
  for (const auto& w : o.question) question += (question.empty() ? "" : " ") + w;
  if (question.empty()) ThrowUsage("no question given", "hearth ask \"what does main do?\"");
  agent::Workspace ws = o.root.empty() ? agent::Workspace::Open(std::filesystem::current_path())
                                       : agent::Workspace::AtRoot(o.root);
  agent::AgentConfig config = agent::LoadConfig(ws);
  agent::PermissionMode mode = !o.permissions.empty() ? agent::ParsePermissionMode(o.permissions)
                               : config.permissions   ? *config.permissions
                                                      : agent::PermissionMode::kAsk;
  std::string backend_url = o.backend;
  std::string model = o.model;
  if (backend_url.empty() && model.empty()) {
    backend_url = config.backend;
    model = config.model;
  }
  std::unique_ptr<agent::Backend> backend;
  if (!backend_url.empty()) {
    // With a remote backend, -m names the server's model.
    backend = agent::MakeRemoteBackend(backend_url, {.model = model});
  } else if (!model.empty()) {
    agent::LocalOptions lo;
    lo.n_ctx = o.n_ctx;
    lo.n_threads = o.threads;
    backend = agent::MakeLocalBackend(model, lo);
  } else {
    ThrowUsage("no model to ask",
               "pass -m MODEL.gguf, or --backend URL for an Ollama/OpenAI-compatible server, or "
               "set [agent] model or backend in .hearth/config.toml");
  }

  const bool tty_out = ::isatty(STDOUT_FILENO);
  bool use_index = !o.no_index;
  if (use_index) {
    try {
      index::BuildOptions bo;
      bo.root = ws.root();
      bo.threads = o.threads;
      index::BuildStats s = index::BuildIndex(bo);
      if (s.files_indexed > 0) {
        std::cerr << "hearth: indexed " << s.files_indexed << " changed files of " << s.files_seen
                  << "\n";
      }
    } catch (const Error& e) {
      std::cerr << "hearth: warning: no index, so no repo map or retrieval: " << e.Describe()
                << "\n";
      use_index = false;
    }
  }

  agent::Journal journal(ws);
  agent::ToolOptions to;
  to.mode = mode;
  to.journal = &journal;
  agent::ToolBox tools(ws, config, to);
  agent::Agent assistant(*backend, tools, journal);

  agent::AskOptions ao;
  ao.files = o.files;
  ao.think = o.think;
  ao.max_tokens = o.max_tokens;
  ao.max_steps = o.max_steps;
  ao.use_index = use_index;
  ao.cancel = &g_cancel;
  if (o.explain) {
    std::cerr << "backend: " << backend->Describe()
              << "; permissions: " << agent::PermissionModeName(mode) << "\n"
              << assistant.PlanContext(question, ao).Describe() << std::flush;
  }

  struct sigaction sa {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  struct sigaction old {};
  ::sigaction(SIGINT, &sa, &old);

  // Thoughts: dimmed on a terminal; when stdout is redirected they go to stderr, so stdout holds
  // only the answer.
  bool in_thought = false;
  auto end_thought = [&] {
    if (in_thought) std::cout << (tty_out ? "\x1b[0m\n" : "");
    if (in_thought && !tty_out) std::cerr << "\n";
    in_thought = false;
  };
  agent::AgentCallbacks cb;
  cb.on_reasoning = [&](std::string_view s) {
    if (!in_thought && tty_out) std::cout << "\x1b[2m";
    in_thought = true;
    (tty_out ? std::cout : std::cerr) << s << std::flush;
  };
  bool wrote = false;
  cb.on_content = [&](std::string_view s) {
    end_thought();
    std::cout << s << std::flush;
    wrote = !s.empty() || wrote;
  };
  cb.on_tool_call = [&](const agent::ToolCall& c) {
    end_thought();
    std::cerr << "\n[tool] " << c.name << " " << c.arguments.substr(0, 300)
              << (c.arguments.size() > 300 ? "..." : "") << "\n";
  };
  cb.on_tool_result = [&](const agent::ToolCall&, const agent::ToolResult& r) {
    std::string first = r.text.substr(0, r.text.find('\n'));
    std::cerr << "[tool] " << (r.ok ? "ok: " : "failed: ") << first.substr(0, 200) << "\n";
  };
  cb.on_note = [&](const std::string& n) { std::cerr << "hearth: " << n << "\n"; };
  if (o.verbose) {
    cb.on_step = [&](int step, const agent::ChatReply& r) {
      end_thought();
      std::cerr << "\nhearth: step " << step << ": " << r.prompt_tokens << " prompt tokens ("
                << r.reused_tokens << " reused from the KV cache), " << r.completion_tokens
                << " generated, finish: " << r.finish_reason << "\n";
    };
  }

  agent::TurnResult r;
  try {
    r = assistant.Ask(question, ao, cb);
  } catch (...) {
    ::sigaction(SIGINT, &old, nullptr);
    throw;
  }
  ::sigaction(SIGINT, &old, nullptr);
  end_thought();
  if (wrote) std::cout << "\n";
  std::cout << std::flush;
  if (r.finish_reason == "cancelled") std::cerr << "hearth: stopped (Ctrl-C)\n";
  if (r.finish_reason == "length") {
    std::cerr << "hearth: the answer reached the token limit (-n " << o.max_tokens << ")\n";
  }
  if (!r.changed_files.empty()) {
    std::cerr << "hearth: changed:";
    for (const auto& f : r.changed_files) std::cerr << " " << f;
    std::cerr << " (`hearth undo` restores the files the assistant wrote)\n";
  }
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
      "assistant may run are listed in .hearth/config.toml:\n"
      "  [run]\n  allowed = [\"make test\"]\n  timeout_seconds = 120\n"
      "  [agent]\n  permissions = \"ask\"   # read-only | ask | auto\n");
  cmd->add_option("question", o->question, "The question (quote it)")->required();
  cmd->add_option("-m,--model", o->model,
                  "Model .gguf for the local engine (with --backend: the server's model name)");
  cmd->add_option("--backend", o->backend,
                  "Remote server instead of the local engine: http://HOST:PORT (OpenAI-"
                  "compatible, /v1/chat/completions) or http://HOST:PORT/api/chat (Ollama). "
                  "Nothing else is contacted");
  cmd->add_option("-n,--max-tokens", o->max_tokens, "New tokens per model step")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--permissions", o->permissions,
                  "read-only (no edits or commands), ask (default: show the diff or command and "
                  "wait for y/n; no when stdin is not a terminal) or auto")
      ->check(CLI::IsMember({"read-only", "ask", "auto"}));
  cmd->add_option("--file", o->files, "Include this file whole in the context (repeatable)");
  cmd->add_flag("--think", o->think, "Let the model think first (thoughts shown dimmed)");
  cmd->add_flag("--explain-context", o->explain,
                "Print what went into the context, why (which signal found it) and what was left "
                "out");
  cmd->add_option("--root", o->root,
                  "Workspace root (default: nearest directory upwards with .git or .hearth)");
  cmd->add_option("--max-steps", o->max_steps, "Model steps (tool rounds) at most")
      ->check(CLI::Range(1, 100));
  cmd->add_option("-c,--ctx-size", o->n_ctx, "Context positions for the local engine");
  cmd->add_option("-t,--threads", o->threads, "Threads (0: all cores)");
  cmd->add_flag("--no-index", o->no_index, "Do not build/use the index (no map, no retrieval)");
  cmd->add_flag("-v,--verbose", o->verbose,
                "After each model step, print its token counts (prompt, reused, generated)");
  cmd->callback([o] { RunAsk(*o); });
}
HEARTH_COMMAND(ask, RegisterAskCommand);

}  // namespace hearth::cli
