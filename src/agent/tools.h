// The assistant's tools: what the model may call, with JSON-Schema declarations for the chat
// template, and the permission policy deciding whether a call that changes something runs.
//
//   agent::ToolBox tools(ws, config, {.mode = agent::PermissionMode::kAsk});
//   nlohmann::ordered_json decls = tools.Declarations();   // goes into the prompt
//   agent::ToolResult r = tools.Call("read_file", R"({"path":"src/a.cc"})");
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/workspace.h"

namespace hearth::agent {

enum class PermissionMode { kReadOnly, kAsk, kAuto };
// "read-only" / "ask" / "auto"; Error(kUsage) otherwise.
PermissionMode ParsePermissionMode(std::string_view name);
const char* PermissionModeName(PermissionMode mode);

// The assistant's settings (agent/config.h says where they come from):
//   [run]
//   allowed = ["make test", "ctest --test-dir build"]   # exact commands the assistant may run
//   timeout_seconds = 120
//   [agent]
//   permissions = "ask"
struct AgentConfig {
  std::vector<std::string> allowed_commands;
  int run_timeout_seconds = 120;
  std::optional<PermissionMode> permissions;
  std::string backend;  // [agent] backend = "http://127.0.0.1:11434/api/chat"
  std::string model;    // [agent] model = "path/to/model.gguf"
  std::string api_key;  // [agent] api_key = "..." (a remote backend's key)
  // Keys of ROOT/.hearth/config.toml that were not applied because the repository config is not
  // trusted (`hearth trust`) and they would widen what the assistant may do.
  std::vector<std::string> ignored_repo_keys;
};
// The user's config merged with ROOT/.hearth/config.toml as agent/config.h describes (defaults
// when neither exists). Error(kInvalidInput) naming the file and key when one is malformed.
AgentConfig LoadConfig(const Workspace& workspace);

// Asks the user to allow an action. `summary` names it ("edit src/a.cc", "run `make test`"),
// `details` shows the diff or the command. Returns true to allow.
using Confirmer = std::function<bool(const std::string& summary, const std::string& details)>;
// The terminal confirmer: prints to stderr and reads y/n from stdin when stdin is a TTY;
// answers no (and says so) when it is not, so a piped run never hangs.
Confirmer TerminalConfirmer();

struct ToolOptions {
  PermissionMode mode = PermissionMode::kAsk;
  Confirmer confirm;                // empty: TerminalConfirmer()
  Journal* journal = nullptr;       // where edits are journaled (required for edits)
  size_t max_output_chars = 16000;  // tool results are cut here, with a note
  // Declare view_image: the backend reads images (a local model with a vision projector).
  bool view_images = false;
};

struct ToolResult {
  bool ok = true;    // false: the call failed or was refused (the text says why)
  std::string text;  // what the model sees
  std::vector<std::string> changed_files;  // written by the tool or seen changed after `run`
  bool journaled = false;  // changed_files were written by the tool and journaled (undoable)
  // Content parts the model should see beside the text (view_image: the image as an image_url
  // part with a data: URL, read through the confined workspace).
  nlohmann::ordered_json media = nlohmann::ordered_json::array();
};

class ToolBox {
 public:
  ToolBox(const Workspace& workspace, AgentConfig config, ToolOptions options);

  // [{type:"function", function:{name, description, parameters}}...] for RenderChat; `run` only
  // when commands are allowed, the writing tools not in read-only mode.
  nlohmann::ordered_json Declarations() const;
  std::vector<std::string> Names() const;

  // Runs tool `name` with `arguments` (a JSON object text). Never throws for bad calls: unknown
  // tools, malformed arguments, refused permissions and failures come back as ok=false results
  // the model can read and correct.
  ToolResult Call(const std::string& name, const std::string& arguments);

  // Set while a turn runs: grep stops (and says so) when it becomes true (Ctrl-C).
  void set_cancel(const std::atomic<bool>* cancel) { cancel_ = cancel; }

  // read_file reads at most this much of a file (and says so); grep skips files bigger than
  // kGrepMaxFileBytes and stops after kGrepMaxMatches lines, kGrepMaxFiles files or kGrepSeconds.
  static constexpr size_t kReadFileMaxBytes = 4u << 20;
  static constexpr size_t kGrepMaxFileBytes = 1u << 20;
  static constexpr size_t kGrepMaxMatches = 200;
  static constexpr size_t kGrepMaxFiles = 20000;
  static constexpr int kGrepSeconds = 20;

  const Workspace& workspace() const { return ws_; }
  const AgentConfig& config() const { return config_; }
  PermissionMode mode() const { return options_.mode; }

 private:
  bool Allow(const std::string& summary, const std::string& details);
  ToolResult Dispatch(const std::string& name, const nlohmann::json& args);
  ToolResult ReadFileTool(const nlohmann::json& args);
  ToolResult ListDir(const nlohmann::json& args);
  ToolResult SearchCode(const nlohmann::json& args);
  ToolResult FindSymbolTool(const nlohmann::json& args);
  ToolResult Grep(const nlohmann::json& args);
  ToolResult ViewImage(const nlohmann::json& args);
  ToolResult Run(const nlohmann::json& args);
  ToolResult EditFile(const nlohmann::json& args);
  ToolResult WriteFileTool(const nlohmann::json& args);
  std::string Bound(std::string text) const;

  const Workspace& ws_;
  AgentConfig config_;
  ToolOptions options_;
  const std::atomic<bool>* cancel_ = nullptr;
};

// Exposed for tests and the prompts.
struct CommandResult {
  int exit_code = -1;  // -1 when killed
  bool timed_out = false;
  std::string output;  // stdout and stderr interleaved, cut at max_output with a note
};
// Runs `command` with /bin/sh -c in `cwd`, its own process group, stdin from /dev/null; kills
// the group after `timeout_seconds`.
CommandResult RunCommand(const std::string& command, const std::filesystem::path& cwd,
                         int timeout_seconds, size_t max_output);

// A unified-style line diff of `before` -> `after` (for permission prompts), at most
// `max_lines` lines. Permission prompts show it whole (the default): a cut diff would let a
// change after the cut be approved unseen (docs/SECURITY.md).
std::string LineDiff(std::string_view before, std::string_view after, const std::string& path,
                     size_t max_lines = SIZE_MAX);

// For a failed exact match: the window of lines in `text` most similar to `needle`, with line
// numbers ("closest region, lines 12-14 (similarity 0.83):\n  12| ...").
std::string ClosestRegion(std::string_view text, std::string_view needle);

// Whether the model's raw output `text` ends inside a call of edit_file or write_file (Gemma 4's
// "<|tool_call>call:NAME{...", not yet closed by "<tool_call|>"). Such a call repeats most of the
// file it rewrites, so the local engine drafts by prompt lookup exactly there (speculative.h).
bool InsideFileWritingCall(std::string_view text);

}  // namespace hearth::agent
