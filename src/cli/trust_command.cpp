// `hearth trust`: lets a repository's .hearth/config.toml widen what the assistant may do (its
// permissions, allowed commands, backend, model), by recording the file's sha256 in the user's
// config directory; `--revoke` forgets it, `--status` shows where the repository stands.
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "agent/config.h"
#include "agent/workspace.h"
#include "base/display.h"
#include "cli/commands.h"

namespace hearth::cli {
namespace {

struct TrustOptions {
  std::string root;
  bool revoke = false;
  bool status = false;
};

const char* TrustText(agent::RepoTrust t) {
  switch (t) {
    case agent::RepoTrust::kNoConfig:
      return "no repository config";
    case agent::RepoTrust::kUntrusted:
      return "not trusted";
    case agent::RepoTrust::kChanged:
      return "not trusted (it changed since it was trusted)";
    case agent::RepoTrust::kTrusted:
      return "trusted";
  }
  return "?";
}

void RunTrust(const TrustOptions& o) {
  agent::Workspace ws = o.root.empty() ? agent::Workspace::Open(std::filesystem::current_path())
                                       : agent::Workspace::AtRoot(o.root);
  const std::string path = DisplaySafe(agent::RepoConfigPath(ws).string(), kOneLine);
  if (o.status) {
    agent::TrustState s = agent::RepoTrustState(ws);
    std::cout << path << ": " << TrustText(s.trust) << "\n";
    if (s.trust != agent::RepoTrust::kNoConfig) std::cout << "sha256 " << s.sha256 << "\n";
    std::cout << "user config: " << DisplaySafe(agent::UserConfigPath().string(), kOneLine) << "\n";
    return;
  }
  if (o.revoke) {
    std::cout << (agent::RevokeRepoTrust(ws) ? "no longer trusted: " : "was not trusted: ") << path
              << "\n";
    return;
  }
  const std::string sha = agent::TrustRepoConfig(ws);
  std::cout << "trusted " << path << " (sha256 " << sha
            << "); its settings now apply, until the file changes:\n";
  // What the user just agreed to, as it will be read (escaped: a config is repository text).
  std::ifstream in(agent::RepoConfigPath(ws), std::ios::binary);
  std::string line;
  while (std::getline(in, line)) std::cout << "  " << DisplaySafe(line, kOneLine) << "\n";
}

}  // namespace

void RegisterTrustCommand(CLI::App& app) {
  auto o = std::make_shared<TrustOptions>();
  CLI::App* cmd = app.add_subcommand(
      "trust",
      "Trust this repository's .hearth/config.toml. Until then its settings that widen what\n"
      "the assistant may do or where code goes ([agent] permissions, backend, model; [run]\n"
      "allowed, a longer timeout_seconds) are ignored (and reported); narrowing ones apply.\n"
      "The file's sha256 is recorded in the user's config directory; when the file changes it\n"
      "is untrusted again. Settings in ~/.config/hearth/config.toml always apply.");
  cmd->add_option("--root", o->root,
                  "Workspace root (default: nearest directory upwards with .git or .hearth)");
  cmd->add_flag("--revoke", o->revoke, "Stop trusting the repository's config");
  cmd->add_flag("--status", o->status, "Show whether the repository's config is trusted")
      ->excludes(cmd->get_option("--revoke"));
  cmd->callback([o] { RunTrust(*o); });
}
HEARTH_COMMAND(trust, RegisterTrustCommand);

}  // namespace hearth::cli
