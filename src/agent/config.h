// Where the assistant's settings come from, and which are honoured from where. A repository is
// untrusted input: its `.hearth/config.toml` may narrow what the assistant does, but settings that
// widen it (permissions, allowed commands, a longer command timeout) or decide where code goes or
// which model runs (backend, model) count only from the user's own config or from a repository
// config the user trusted with `hearth trust`, which records the file's sha256 per repository;
// a changed file is untrusted again.
//
//   agent::AgentConfig c = agent::LoadConfig(ws);        // (tools.h) merged, trust applied
//   for (auto& key : c.ignored_repo_keys) ...            // what the repository could not set
//   agent::TrustRepoConfig(ws);                           // `hearth trust`
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "agent/tools.h"
#include "agent/workspace.h"

namespace hearth::agent {

// What one config file sets; nullopt: not set there.
struct ConfigFile {
  std::optional<std::vector<std::string>> allowed_commands;
  std::optional<int> run_timeout_seconds;
  std::optional<PermissionMode> permissions;
  std::optional<std::string> backend;
  std::optional<std::string> model;
  std::optional<std::string> api_key;  // [agent] api_key: for a remote backend
};
// Parses config text (`path` names it in errors). Error(kInvalidInput) naming the file and key
// when it is malformed.
ConfigFile ParseConfigText(const std::string& text, const std::string& path);

// $XDG_CONFIG_HOME/hearth (when XDG_CONFIG_HOME is an absolute path), else $HOME/.config/hearth;
// empty when neither is set.
std::filesystem::path UserConfigDir();
// UserConfigDir()/config.toml: the user's settings for every repository.
std::filesystem::path UserConfigPath();
// UserConfigDir()/trusted-repos: one "SHA256  CANONICAL-ROOT" line per trusted repository config.
std::filesystem::path TrustStorePath();
// ROOT/.hearth/config.toml.
std::filesystem::path RepoConfigPath(const Workspace& workspace);

enum class RepoTrust {
  kNoConfig,   // the repository has no .hearth/config.toml
  kUntrusted,  // never trusted
  kChanged,    // trusted once, but the file changed since
  kTrusted,    // its sha256 is the one the user trusted
};
struct TrustState {
  RepoTrust trust = RepoTrust::kNoConfig;
  std::string sha256;  // of the repository config now (empty without one)
};
TrustState RepoTrustState(const Workspace& workspace);

// Records the repository config's current sha256 as trusted (`hearth trust`) and returns it.
// Error(kUsage) when there is no repository config or no user config directory, Error(kIo) when
// the trust store cannot be written.
std::string TrustRepoConfig(const Workspace& workspace);
// Forgets the repository's trust (`hearth trust --revoke`); false when it was not trusted.
bool RevokeRepoTrust(const Workspace& workspace);

// The settings of `file` that widen what the assistant may do or decide where code goes,
// compared with `base` (what is in effect without the repository): "agent.permissions",
// "run.allowed", "run.timeout_seconds", "agent.backend", "agent.model".
std::vector<std::string> WideningKeys(const ConfigFile& file, const AgentConfig& base);

}  // namespace hearth::agent
