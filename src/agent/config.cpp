// Settings and repository trust (agent/config.h).
#include "agent/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "agent/pull.h"
#include "base/error.h"

namespace hearth::agent {
namespace fs = std::filesystem;

namespace {

std::string Trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// The whole file, or nullopt when it does not exist. Error(kInvalidInput) when it is no regular
// file (a FIFO would hang, a device never end) or larger than a config can be; Error(kIo) when it
// cannot be read.
std::optional<std::string> ReadIfExists(const fs::path& path) {
  constexpr uintmax_t kMaxConfigBytes = 1 << 20;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) return std::nullopt;
  if (!fs::is_regular_file(st)) {
    ThrowInvalidInput(path.string() + " is not a regular file", "remove or replace it");
  }
  if (fs::file_size(path, ec) > kMaxConfigBytes) {
    ThrowInvalidInput(path.string() + " is larger than 1 MiB", "a config is a few lines");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) ThrowIo("cannot read '" + path.string() + "'", "check its permissions");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// How much a permission mode allows, for "narrower than" comparisons.
int Breadth(PermissionMode m) {
  switch (m) {
    case PermissionMode::kReadOnly:
      return 0;
    case PermissionMode::kAsk:
      return 1;
    case PermissionMode::kAuto:
      return 2;
  }
  return 2;
}

void Apply(const ConfigFile& f, AgentConfig* c) {
  if (f.allowed_commands) {
    for (const auto& cmd : *f.allowed_commands) {
      if (std::find(c->allowed_commands.begin(), c->allowed_commands.end(), cmd) ==
          c->allowed_commands.end()) {
        c->allowed_commands.push_back(cmd);
      }
    }
  }
  if (f.run_timeout_seconds) c->run_timeout_seconds = *f.run_timeout_seconds;
  if (f.permissions) c->permissions = f.permissions;
  if (f.backend) c->backend = *f.backend;
  if (f.model) c->model = *f.model;
  if (f.api_key) c->api_key = *f.api_key;
}

// The trust store's lines other than `root`'s, and `root`'s recorded sha256 (empty if none).
std::vector<std::string> StoreLinesExcept(const std::string& root, std::string* recorded) {
  std::vector<std::string> keep;
  const fs::path store = TrustStorePath();
  if (store.empty()) return keep;
  std::optional<std::string> text = ReadIfExists(store);
  if (!text) return keep;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    // "SHA256  ROOT"; anything else is kept untouched (and never matches).
    if (line.size() > 66 && line.compare(64, 2, "  ") == 0 && line.substr(66) == root) {
      if (recorded) *recorded = line.substr(0, 64);
      continue;
    }
    if (!line.empty()) keep.push_back(line);
  }
  return keep;
}

// Replaces the trust store with `lines`, atomically (temp file, fsync, rename).
void WriteStore(const std::vector<std::string>& lines) {
  const fs::path store = TrustStorePath();
  std::error_code ec;
  fs::create_directories(store.parent_path(), ec);
  if (ec) ThrowIo("cannot create '" + store.parent_path().string() + "': " + ec.message());
  std::string tmpl = store.string() + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) ThrowIo("cannot create a file beside '" + store.string() + "': " + ErrnoText(errno));
  std::string content;
  for (const auto& l : lines) content += l + "\n";
  size_t done = 0;
  bool ok = true;
  while (ok && done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fchmod(fd, 0600) == 0 && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmpl.c_str(), store.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmpl.c_str());
    ThrowIo("cannot write '" + store.string() + "': " + ErrnoText(err));
  }
}

}  // namespace

ConfigFile ParseConfigText(const std::string& text, const std::string& path) {
  ConfigFile config;
  toml::table table;
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << e.source().begin;
    ThrowInvalidInput(path + ": " + std::string(e.description()) + " at " + where.str(),
                      "fix the TOML syntax");
  }
  auto bad = [&](const std::string& key, const std::string& want) {
    ThrowInvalidInput(path + ": key '" + key + "' must be " + want,
                      "see README.md, section 'hearth ask'");
  };
  if (auto node = table["run"]["allowed"]) {
    const toml::array* arr = node.as_array();
    if (!arr) bad("run.allowed", "an array of strings");
    config.allowed_commands.emplace();
    for (const auto& item : *arr) {
      auto s = item.value<std::string>();
      if (!s) bad("run.allowed", "an array of strings");
      std::string cmd = Trimmed(*s);
      if (!cmd.empty()) config.allowed_commands->push_back(cmd);
    }
  }
  if (auto node = table["run"]["timeout_seconds"]) {
    auto v = node.value<int64_t>();
    if (!v || *v < 1 || *v > 86400) bad("run.timeout_seconds", "an integer from 1 to 86400");
    config.run_timeout_seconds = static_cast<int>(*v);
  }
  if (auto node = table["agent"]["permissions"]) {
    auto v = node.value<std::string>();
    if (!v) bad("agent.permissions", "\"read-only\", \"ask\" or \"auto\"");
    try {
      config.permissions = ParsePermissionMode(*v);
    } catch (const Error&) {
      bad("agent.permissions", "\"read-only\", \"ask\" or \"auto\"");
    }
  }
  if (auto node = table["agent"]["backend"]) {
    auto v = node.value<std::string>();
    if (!v) bad("agent.backend", "a URL string");
    config.backend = *v;
  }
  if (auto node = table["agent"]["api_key"]) {
    auto v = node.value<std::string>();
    if (!v) bad("agent.api_key", "a string");
    config.api_key = *v;
  }
  if (auto node = table["agent"]["model"]) {
    auto v = node.value<std::string>();
    if (!v) bad("agent.model", "a path string");
    config.model = *v;
  }
  return config;
}

fs::path UserConfigDir() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg && *xdg == '/') return fs::path(xdg) / "hearth";
  const char* home = std::getenv("HOME");
  if (home && *home) return fs::path(home) / ".config" / "hearth";
  return {};
}

fs::path UserConfigPath() {
  fs::path dir = UserConfigDir();
  return dir.empty() ? dir : dir / "config.toml";
}

fs::path TrustStorePath() {
  fs::path dir = UserConfigDir();
  return dir.empty() ? dir : dir / "trusted-repos";
}

fs::path RepoConfigPath(const Workspace& ws) { return ws.root() / ".hearth" / "config.toml"; }

namespace {

TrustState StateOf(const Workspace& ws, const std::optional<std::string>& text) {
  TrustState s;
  if (!text) return s;
  s.sha256 = Sha256Hex(*text);
  std::string recorded;
  StoreLinesExcept(ws.root().string(), &recorded);
  s.trust = recorded.empty()       ? RepoTrust::kUntrusted
            : recorded == s.sha256 ? RepoTrust::kTrusted
                                   : RepoTrust::kChanged;
  return s;
}

}  // namespace

TrustState RepoTrustState(const Workspace& ws) {
  return StateOf(ws, ReadIfExists(RepoConfigPath(ws)));
}

std::string TrustRepoConfig(const Workspace& ws) {
  const fs::path path = RepoConfigPath(ws);
  std::optional<std::string> text = ReadIfExists(path);
  if (!text)
    ThrowUsage("there is no " + path.string() + " to trust", "--root DIR picks the repository");
  ParseConfigText(*text, path.string());  // a malformed file is reported, not trusted
  if (TrustStorePath().empty()) {
    ThrowUsage("no user config directory to record the trust in", "set HOME or XDG_CONFIG_HOME");
  }
  const std::string root = ws.root().string();
  if (root.find('\n') != std::string::npos || root.find('\r') != std::string::npos) {
    ThrowUsage("a repository path with a line break cannot be trusted", "rename the directory");
  }
  std::vector<std::string> lines = StoreLinesExcept(root, nullptr);
  const std::string sha = Sha256Hex(*text);
  lines.push_back(sha + "  " + root);
  WriteStore(lines);
  return sha;
}

bool RevokeRepoTrust(const Workspace& ws) {
  if (TrustStorePath().empty()) return false;
  std::string recorded;
  std::vector<std::string> lines = StoreLinesExcept(ws.root().string(), &recorded);
  if (recorded.empty()) return false;
  WriteStore(lines);
  return true;
}

std::vector<std::string> WideningKeys(const ConfigFile& f, const AgentConfig& base) {
  std::vector<std::string> keys;
  const PermissionMode effective = base.permissions.value_or(PermissionMode::kAsk);
  if (f.permissions && Breadth(*f.permissions) > Breadth(effective)) {
    keys.push_back("agent.permissions");
  }
  if (f.allowed_commands) {
    for (const auto& cmd : *f.allowed_commands) {
      if (std::find(base.allowed_commands.begin(), base.allowed_commands.end(), cmd) ==
          base.allowed_commands.end()) {
        keys.push_back("run.allowed");
        break;
      }
    }
  }
  if (f.run_timeout_seconds && *f.run_timeout_seconds > base.run_timeout_seconds) {
    keys.push_back("run.timeout_seconds");
  }
  if (f.backend && *f.backend != base.backend) keys.push_back("agent.backend");
  if (f.model && *f.model != base.model) keys.push_back("agent.model");
  // Where a key goes is decided with the backend: only from configs the user trusts.
  if (f.api_key && *f.api_key != base.api_key) keys.push_back("agent.api_key");
  return keys;
}

AgentConfig LoadConfig(const Workspace& ws) {
  AgentConfig config;
  const fs::path user_path = UserConfigPath();
  if (!user_path.empty()) {
    if (std::optional<std::string> text = ReadIfExists(user_path)) {
      Apply(ParseConfigText(*text, user_path.string()), &config);
    }
  }
  const fs::path repo_path = RepoConfigPath(ws);
  // One read: the bytes hashed are the bytes parsed.
  std::optional<std::string> text = ReadIfExists(repo_path);
  if (!text) return config;
  ConfigFile repo = ParseConfigText(*text, repo_path.string());
  if (StateOf(ws, text).trust == RepoTrust::kTrusted) {
    Apply(repo, &config);
    return config;
  }
  // Untrusted: what would widen is dropped (and reported), what narrows is applied.
  config.ignored_repo_keys = WideningKeys(repo, config);
  auto ignored = [&](const char* key) {
    return std::find(config.ignored_repo_keys.begin(), config.ignored_repo_keys.end(), key) !=
           config.ignored_repo_keys.end();
  };
  if (repo.permissions && !ignored("agent.permissions")) config.permissions = repo.permissions;
  if (repo.run_timeout_seconds && !ignored("run.timeout_seconds")) {
    config.run_timeout_seconds = *repo.run_timeout_seconds;
  }
  return config;
}

}  // namespace hearth::agent
