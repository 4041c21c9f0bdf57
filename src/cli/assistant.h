// What `hearth ask` and `hearth chat` share: the assistant's flags, the setup they imply
// (workspace, config, backend, index, journal, tools, the agent) and how tool activity, notes and
// undo results are printed. Header-only because src/cli builds only main.cpp, commands.cpp and
// *_command.cpp.
#pragma once

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/models.h"
#include "base/display.h"
#include "base/error.h"
#include "cli/adapter_flags.h"
#include "cli/cache_type_flags.h"
#include "cli/compat_flags.h"
#include "cli/media_flags.h"
#include "cli/model_flag.h"
#include "cli/terminal.h"
#include "index/index.h"

namespace hearth::cli {

struct AssistantFlags {
  std::string model;
  std::string backend;
  std::string api_key;
  std::string root;
  std::string permissions;
  std::vector<std::string> files;
  int max_tokens = 2048;
  int max_steps = 12;
  int n_ctx = 0;
  int threads = 0;
  bool think = false;
  bool no_index = false;
  bool no_prefix_cache = false;
  bool verbose = false;
  AdapterFlags adapters;                     // --lora, --control-vector (local engine)
  CacheTypeFlags cache_type;                 // --cache-type (local engine)
  MediaFlags media;  // --image, --audio, --image-tokens, --mmproj (registered by each command)
  // Speculative decoding in the local engine (agent::LocalOptions).
  std::string draft_path;                    // --draft
  std::string draft_model_path;              // --draft-model (a path or a model name)
  int lookup = 0;                            // --lookup N
  bool no_spec = false;                      // --no-spec
  CLI::Option* max_tokens_option = nullptr;  // to tell a given -n from the default
};

// `speculation`: also --draft, --draft-model, --lookup, --no-spec (chat registers them through
// AddSpeculationFlags for --plain and copies them over).
inline void AddAssistantFlags(CLI::App* cmd, const std::shared_ptr<AssistantFlags>& f,
                              bool speculation = true) {
  cmd->add_option(
      "-m,--model", f->model,
      "Model for the local engine: a path or a name (`hearth models`); with --backend: the "
      "server's model name");
  cmd->add_option("--backend", f->backend,
                  "Remote server instead of the local engine: http://HOST:PORT (OpenAI-"
                  "compatible, /v1/chat/completions) or http://HOST:PORT/api/chat (Ollama). "
                  "Replies are streamed; nothing else is contacted");
  cmd->add_option("--api-key", f->api_key,
                  "Key for a --backend that wants one (sent as a Bearer token); else "
                  "$HEARTH_API_KEY, else api_key in [agent] of the user config");
  f->max_tokens_option =
      cmd->add_option("-n,--max-tokens", f->max_tokens, "New tokens per model step (default 2048)")
          ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--permissions", f->permissions,
                  "read-only (no edits or commands), ask (default: show the diff or command and "
                  "wait for y/n; no when stdin is not a terminal) or auto")
      ->check(CLI::IsMember({"read-only", "ask", "auto"}));
  cmd->add_option("--file", f->files, "Include this file whole in the context (repeatable)");
  cmd->add_flag("--think", f->think, "Let the model think first (thoughts shown dimmed)");
  cmd->add_option("--root", f->root,
                  "Workspace root (default: nearest directory upwards with .git or .hearth)");
  cmd->add_option("--max-steps", f->max_steps, "Model steps (tool rounds) per question at most")
      ->check(CLI::Range(1, 100));
  cmd->add_option("-c,--ctx-size", f->n_ctx,
                  "Context positions for the local engine (with --backend: the budget assumed for "
                  "the server, default 8192)");
  cmd->add_option("-t,--threads", f->threads, "Threads (0: one per physical core)");
  AddAdapterFlags(cmd, &f->adapters);
  AddCacheTypeFlags(cmd, &f->cache_type);
  if (speculation) {
    cmd->add_option("--draft", f->draft_path,
                    "MTP drafter (gemma4-assistant .gguf) for speculative decoding (default: one "
                    "named *assistant*.gguf or *-mtp*.gguf next to the model)");
    cmd->add_option("--draft-model", f->draft_model_path,
                    "A smaller Gemma 4 with the same tokenizer as draft model: a path or a name "
                    "(e.g. e2b for e4b)");
    cmd->add_option("--lookup", f->lookup,
                    "Prompt lookup in every step with N-grams (default without a drafter: "
                    "3-grams inside edit_file / write_file calls only)")
        ->check(CLI::Range(1, 64));
    cmd->add_flag("--no-spec", f->no_spec, "No speculative decoding (one token per model pass)");
  }
  cmd->add_flag("--no-index", f->no_index, "Do not build/use the index (no map, no retrieval)");
  cmd->add_flag("--no-prefix-cache", f->no_prefix_cache,
                "Neither reuse nor save the KV state of the first prompt in .hearth/kv/ (the "
                "local engine keeps it so the next process skips the shared prefix)");
  AddLlamaCppFlags(cmd, Conversation::kIsOne);
  cmd->add_flag("-v,--verbose", f->verbose,
                "After each model step, print its token counts (prompt, reused, generated)");
}

// fn(), and with `verbose` a line saying how long it took (`hearth ask -v` breaks the time to
// the first answer down: load, index, then per model step the prompt's decode).
template <typename Fn>
auto Timed(bool verbose, const char* what, Fn fn) {
  const auto start = std::chrono::steady_clock::now();
  auto result = fn();
  if (verbose) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::cerr << "hearth: " << what << " in " << std::fixed << std::setprecision(2) << took.count()
              << " s\n"
              << std::defaultfloat;
  }
  return result;
}

// Everything one assistant session needs, built from the flags and the config (the user's, and
// .hearth/config.toml as far as it is trusted: agent/config.h). Not
// movable: the tools and the agent refer to the members before them.
class AssistantSession {
 public:
  AssistantSession(const AssistantFlags& f, agent::Confirmer confirm)
      : ws(OpenWorkspace(f)),
        config(LoadConfigAndReport(ws)),
        mode(!f.permissions.empty() ? agent::ParsePermissionMode(f.permissions)
             : config.permissions   ? *config.permissions
                                    : agent::PermissionMode::kAsk),
        backend(Timed(f.verbose, "model loaded", [&] { return MakeBackend(f, config, ws); })),
        use_index(!f.no_index &&
                  Timed(f.verbose, "index up to date", [&] { return UpdateIndex(ws, f.threads); })),
        journal(ws),
        tools(ws, config,
              {.mode = mode,
               .confirm = std::move(confirm),
               .journal = &journal,
               .view_images = backend->takes_images()}),
        agent(*backend, tools, journal),
        flags_(f) {}
  AssistantSession(const AssistantSession&) = delete;
  AssistantSession& operator=(const AssistantSession&) = delete;

  agent::AskOptions Options(bool think) const {
    agent::AskOptions ao;
    ao.files = flags_.files;
    ao.think = think;
    ao.max_tokens = flags_.max_tokens > 0 ? flags_.max_tokens : 2048;
    ao.max_steps = flags_.max_steps;
    ao.use_index = use_index;
    return ao;
  }
  // The command line's images, audio and videos as the question's content parts (in that order).
  static nlohmann::ordered_json MediaParts(const MediaFlags& m) {
    nlohmann::ordered_json parts = nlohmann::ordered_json::array();
    for (const std::string& path : m.image) {
      nlohmann::ordered_json part = {{"type", "image"}, {"path", path}};
      if (m.image_tokens > 0) part["image_tokens"] = m.image_tokens;
      parts.push_back(part);
    }
    for (const std::string& path : m.audio) parts.push_back({{"type", "audio"}, {"path", path}});
    for (const std::string& path : m.video) {
      nlohmann::ordered_json part = {{"type", "video"}, {"path", path}};
      if (m.video_tokens > 0) part["image_tokens"] = m.video_tokens;
      if (m.video_fps > 0) part["video_fps"] = m.video_fps;
      parts.push_back(part);
    }
    return parts;
  }
  std::string Describe() const {
    return "backend: " + backend->Describe() + "; permissions: " + agent::PermissionModeName(mode);
  }

  agent::Workspace ws;
  agent::AgentConfig config;
  agent::PermissionMode mode;
  std::unique_ptr<agent::Backend> backend;
  bool use_index;
  agent::Journal journal;
  agent::ToolBox tools;
  agent::Agent agent;

 private:
  // --root, else the nearest directory upwards with .git or .hearth. Outside any repository the
  // current directory is the root, which is said on stderr; $HOME and / are refused there (the
  // assistant would index and search everything you own).
  static agent::Workspace OpenWorkspace(const AssistantFlags& f) {
    if (!f.root.empty()) return agent::Workspace::AtRoot(f.root);
    namespace fs = std::filesystem;
    const fs::path cwd = fs::current_path();
    std::error_code ec;
    for (fs::path d = cwd;; d = d.parent_path()) {
      if (fs::exists(d / ".git", ec) || fs::is_directory(d / ".hearth", ec)) {
        return agent::Workspace::Open(cwd);
      }
      if (d == d.parent_path()) break;
    }
    const char* home = std::getenv("HOME");
    const bool is_home = home && *home && fs::equivalent(cwd, home, ec);
    if (cwd == cwd.root_path() || is_home) {
      ThrowUsage("not in a repository, and " + std::string(is_home ? "your home directory" : "/") +
                     " is too wide a root for the assistant",
                 "cd into a project, or pass --root DIR to use this directory anyway");
    }
    std::cerr << "hearth: not in a repository (no .git or .hearth here or above); using "
              << DisplaySafe(cwd.string(), kOneLine) << " as the root\n";
    return agent::Workspace::Open(cwd);
  }
  // The config, after saying once on stderr which repository settings were not applied.
  static agent::AgentConfig LoadConfigAndReport(const agent::Workspace& ws) {
    agent::AgentConfig c = agent::LoadConfig(ws);
    if (!c.ignored_repo_keys.empty()) {
      std::string keys;
      for (const auto& k : c.ignored_repo_keys) keys += (keys.empty() ? "" : ", ") + k;
      const bool changed = agent::RepoTrustState(ws).trust == agent::RepoTrust::kChanged;
      std::cerr << "hearth: ignoring " << keys << " from "
                << DisplaySafe(agent::RepoConfigPath(ws).string(), kOneLine)
                << (changed ? ": it changed since you trusted it"
                            : ": the repository's config is not trusted")
                << " (review it, then run `hearth trust` to apply it)\n";
    }
    return c;
  }
  static std::unique_ptr<agent::Backend> MakeBackend(const AssistantFlags& f,
                                                     const agent::AgentConfig& config,
                                                     const agent::Workspace& ws) {
    std::string url = f.backend, model = f.model;
    if (url.empty() && model.empty()) {
      url = config.backend;
      model = config.model;
    }
    // With a remote backend, -m names the server's model.
    if (!url.empty()) {
      if (!f.adapters.loras.empty() || !f.adapters.cvecs.empty()) {
        ThrowUsage("--lora and --control-vector apply to the local engine, not to --backend",
                   "configure the adapter on the server instead");
      }
      if (f.cache_type.given) {
        ThrowUsage("--cache-type applies to the local engine, not to --backend",
                   "set the KV cache type on the server instead");
      }
      if (!f.media.mmproj.empty()) {
        ThrowUsage("--mmproj applies to the local engine, not to --backend",
                   "the server encodes images and audio with its own projector");
      }
      agent::RemoteOptions ro{.model = model};
      if (f.n_ctx > 0) ro.context_size = f.n_ctx;
      ro.api_key = f.api_key;
      if (const char* env = std::getenv("HEARTH_API_KEY"); ro.api_key.empty() && env) {
        ro.api_key = env;
      }
      if (ro.api_key.empty()) ro.api_key = config.api_key;
      return agent::MakeRemoteBackend(url, ro);
    }
    if (model.empty()) {
      ThrowUsage("no model to ask",
                 "pass -m MODEL.gguf, or --backend URL for an Ollama/OpenAI-compatible server, or "
                 "set [agent] model or backend in " +
                     agent::UserConfigPath().string());
    }
    AdapterFlags adapters = f.adapters;
    std::string draft = f.draft_path;
    const std::string path = ModelPath(model, &adapters, &draft);
    agent::LocalOptions lo{.n_ctx = f.n_ctx,
                           .n_threads = f.threads,
                           .adapters = adapters.Request(),
                           .cache_type_k = f.cache_type.k,
                           .cache_type_v = f.cache_type.v};
    lo.draft_path = draft;
    if (!f.draft_model_path.empty()) {
      lo.draft_model_path = agent::ResolveModel(f.draft_model_path).path;
    }
    lo.lookup = f.lookup;
    lo.no_spec = f.no_spec;
    lo.prefix_cache = f.no_prefix_cache ? nullptr : &ws;
    lo.mmproj = f.media.mmproj;
    lo.warn = [](std::string_view note) {
      std::cerr << "hearth: " << DisplaySafe(note, kOneLine) << "\n";
    };
    return agent::MakeLocalBackend(path, lo);
  }
  // Brings the index up to date; false (with a warning) when there is none to be had.
  static bool UpdateIndex(const agent::Workspace& ws, int threads) {
    try {
      index::BuildOptions bo;
      bo.root = ws.root();
      bo.threads = threads;
      index::BuildStats s = index::BuildIndex(bo);
      if (s.files_indexed > 0) {
        std::cerr << "hearth: indexed " << s.files_indexed << " changed files of " << s.files_seen
                  << "\n";
      }
      return true;
    } catch (const Error& e) {
      std::cerr << "hearth: warning: no index, so no repo map or retrieval: "
                << DisplaySafe(e.Describe(), kOneLine) << "\n";
      return false;
    }
  }

  AssistantFlags flags_;
};

// The permission question of `hearth ask` (and of `hearth chat` when stdin is no terminal): the
// diff or command escaped and wrapped (cli/terminal.h), y/n read from stdin when it is a terminal;
// otherwise the answer is no, said on stderr, so a piped run never hangs.
inline agent::Confirmer TerminalApproval() {
  return [](const std::string& summary, const std::string& details) {
    if (!::isatty(STDIN_FILENO)) {
      std::cerr << "hearth: not allowed: " << DisplaySafe(summary, kOneLine)
                << " (stdin is not a terminal, so the answer is no; use --permissions auto to "
                   "allow changes)\n";
      return false;
    }
    const size_t width = TerminalWidth();
    std::cerr << "\n"
              << ApprovalDetails(details, width) << ApprovalQuestion(summary, width) << std::flush;
    std::string line;
    if (!std::getline(std::cin, line)) return false;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    return line == "y" || line == "Y" || line == "yes" || line == "YES" || line == "Yes";
  };
}

// Tool calls, their results and notes go to stderr (stdout holds the answers). `before` runs
// first, to end a dimmed thought or an unfinished line.
inline void AddActivityLines(agent::AgentCallbacks& cb, std::function<void()> before,
                             bool verbose) {
  cb.on_tool_call = [before](const agent::ToolCall& c) {
    before();
    // Cut (with a marker) only here: a call that changes something is shown whole in its
    // permission question.
    std::cerr << "[tool] " << DisplaySafe(c.name, kOneLine) << " "
              << DisplaySafe(c.arguments.substr(0, 300), kOneLine)
              << (c.arguments.size() > 300 ? "..." : "") << "\n";
  };
  cb.on_tool_result = [](const agent::ToolCall&, const agent::ToolResult& r) {
    std::string first = r.text.substr(0, r.text.find('\n'));
    std::cerr << "[tool] " << (r.ok ? "ok: " : "failed: ")
              << DisplaySafe(first.substr(0, 200), kOneLine) << "\n";
  };
  cb.on_note = [before](const std::string& n) {
    before();
    std::cerr << "hearth: " << DisplaySafe(n, kOneLine) << "\n";
  };
  if (verbose) {
    cb.on_step = [before](int step, const agent::ChatReply& r) {
      before();
      std::cerr << "hearth: step " << step << ": " << r.prompt_tokens << " prompt tokens ("
                << r.reused_tokens << " reused from the KV cache), " << r.completion_tokens
                << " generated, finish: " << DisplaySafe(r.finish_reason, kOneLine);
      if (r.prompt_seconds > 0) {
        std::cerr << ", prompt decoded in " << std::fixed << std::setprecision(2)
                  << r.prompt_seconds << " s" << std::defaultfloat;
      }
      std::cerr << "\n";
    };
  }
}

// The end of a turn: why it stopped early and what it changed.
inline void PrintTurnEnd(const agent::TurnResult& r, int max_tokens, const char* undo_hint) {
  if (r.finish_reason == "cancelled") std::cerr << "hearth: stopped (Ctrl-C)\n";
  if (r.finish_reason == "length") {
    std::cerr << "hearth: the answer reached the token limit (-n " << max_tokens << ")\n";
  }
  if (!r.changed_files.empty()) {
    std::cerr << "hearth: changed:";
    for (const auto& f : r.changed_files) std::cerr << " " << DisplaySafe(f, kOneLine);
    std::cerr << " (" << undo_hint << " restores the files the assistant wrote)\n";
  }
  if (!r.command_changed_files.empty()) {
    std::cerr << "hearth: changed by commands:";
    for (const auto& f : r.command_changed_files) std::cerr << " " << DisplaySafe(f, kOneLine);
    std::cerr << " (not journaled: " << undo_hint << " does not restore them)\n";
  }
}

// What `hearth undo` and /undo print.
inline void PrintUndo(std::ostream& out, const agent::UndoResult& r,
                      const std::filesystem::path& root) {
  if (!r.undone) {
    out << "nothing to undo in " << root.string() << "\n";
    return;
  }
  out << "undid change set " << r.change_set;
  if (!r.title.empty()) out << " (" << DisplaySafe(r.title, kOneLine) << ")";
  if (!r.was_complete) out << ", which had been interrupted";
  out << "\n";
  for (const auto& f : r.restored) out << "  restored " << DisplaySafe(f, kOneLine) << "\n";
  for (const auto& f : r.removed) out << "  removed  " << DisplaySafe(f, kOneLine) << "\n";
  for (const auto& f : r.saved)
    out << "  saved your version as " << DisplaySafe(f, kOneLine) << "\n";
}

}  // namespace hearth::cli
