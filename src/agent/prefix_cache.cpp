#include "agent/prefix_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include "agent/confined_fs.h"
#include "agent/journal_key.h"
#include "agent/workspace.h"
#include "base/error.h"
#include "model/adapters.h"

namespace hearth::agent {
namespace {

constexpr std::string_view kHeader = "hearth-kv 1\n";
constexpr size_t kMacHex = 64;
constexpr size_t kMaxFileBytes = size_t{16} << 30;
constexpr size_t kKeepFiles = 3;

// What the snapshot must have been computed under, as one string; empty when the model file
// cannot be identified.
std::string Binding(const std::string& model_path, const std::string& settings,
                    const Workspace& ws) {
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::canonical(model_path, ec);
  struct stat st {};
  if (ec || ::stat(canonical.c_str(), &st) != 0) return {};
  return "model=" + canonical.string() + "\nsize=" + std::to_string(st.st_size) +
         "\nmtime=" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
         "\ndev=" + std::to_string(st.st_dev) + "\nino=" + std::to_string(st.st_ino) +
         "\nsettings=" + settings + "\nroot=" + ws.root().string() + "\n";
}

class FilePrefixCache : public engine::PrefixStore {
 public:
  FilePrefixCache(const Workspace& ws, std::string binding,
                  std::function<void(std::string_view)> warn)
      : ws_(ws), binding_(std::move(binding)), warn_(std::move(warn)) {
    name_ = confined::Sha256Hex(binding_).substr(0, 24) + ".kv";
  }

  std::shared_ptr<const engine::KvSnapshot> Load() override {
    if (loaded_) return nullptr;
    loaded_ = true;
    const std::vector<std::string> parts = {".hearth", "kv", name_};
    const std::string shown = ".hearth/kv/" + name_;
    std::string bytes;
    try {
      const int fd = confined::TryOpen(ws_.root_fd(), parts, O_RDONLY);
      if (fd == -ENOENT) return nullptr;
      if (fd >= 0) ::close(fd);
      bytes = confined::ReadFile(ws_.root_fd(), parts, kMaxFileBytes, nullptr, shown);
    } catch (const Error& e) {
      Warn("ignoring " + shown + ": " + e.what());
      return nullptr;
    }
    const std::optional<std::string> key = Key();
    if (!key) return nullptr;
    const std::string_view all = bytes;
    const size_t body = kHeader.size() + kMacHex + 1;
    if (all.size() < body || !all.starts_with(kHeader) || all[body - 1] != '\n' ||
        !MacMatches(*key, all.substr(kHeader.size(), kMacHex), all.substr(body))) {
      Warn("ignoring " + shown + ": not written by this user's hearth for this model and settings");
      return nullptr;
    }
    std::optional<engine::KvSnapshot> snapshot = engine::ParseSnapshot(all.substr(body));
    if (!snapshot) {
      Warn("ignoring " + shown + ": malformed");
      return nullptr;
    }
    return std::make_shared<const engine::KvSnapshot>(std::move(*snapshot));
  }

  bool WantsSnapshot(size_t n_tokens) override {
    if (asked_) return false;
    asked_ = true;
    return n_tokens >= kMinPrefixCacheTokens && Key().has_value();
  }

  void Save(const engine::KvSnapshot& snapshot) override {
    const std::optional<std::string> key = Key();
    if (!key) return;
    const std::string payload = engine::SerializeSnapshot(snapshot);
    std::string file(kHeader);
    file += Mac(*key, payload);
    file += '\n';
    file += payload;
    try {
      const std::vector<std::string> parts = {".hearth", "kv", name_};
      confined::Fd dir = confined::OpenParent(ws_.root_fd(), parts, true, ".hearth/kv/");
      confined::ReplaceFile(dir.get(), name_, file, 0600, ".hearth/kv/" + name_);
      Prune(dir.get());
    } catch (const Error& e) {
      Warn(std::string("the prefix cache was not written: ") + e.what());
    }
  }

 private:
  std::string Mac(const std::string& key, std::string_view payload) const {
    return HmacSha256Hex(key, binding_ + "sha256=" + confined::Sha256Hex(payload));
  }
  bool MacMatches(const std::string& key, std::string_view mac, std::string_view payload) const {
    const std::string want = Mac(key, payload);
    return mac.size() == want.size() && CRYPTO_memcmp(mac.data(), want.data(), want.size()) == 0;
  }

  // The user's key, created when missing; nullopt (with a note) when there is none to be had.
  std::optional<std::string> Key() {
    if (!key_tried_) {
      key_tried_ = true;
      try {
        key_ = LoadJournalKey(/*create=*/true);
      } catch (const Error& e) {
        Warn(std::string("no prefix cache: ") + e.what());
      }
    }
    return key_;
  }

  // Keeps the newest kKeepFiles snapshot files of the directory (by modification time).
  void Prune(int dir_fd) const {
    const int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      ::close(fd);
      return;
    }
    std::vector<std::pair<int64_t, std::string>> files;
    while (const dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (!name.ends_with(".kv")) continue;
      const std::optional<struct stat> st = confined::StatAt(fd, name);
      if (!st || !S_ISREG(st->st_mode)) continue;
      files.emplace_back(int64_t{st->st_mtim.tv_sec} * 1000000000 + st->st_mtim.tv_nsec, name);
    }
    std::sort(files.rbegin(), files.rend());
    for (size_t i = kKeepFiles; i < files.size(); ++i) {
      if (files[i].second != name_) ::unlinkat(fd, files[i].second.c_str(), 0);
    }
    ::closedir(dir);  // closes fd
  }

  void Warn(const std::string& note) const {
    if (warn_) warn_(note);
  }

  const Workspace& ws_;
  std::string binding_;
  std::function<void(std::string_view)> warn_;
  std::string name_;
  bool loaded_ = false;
  bool asked_ = false;
  bool key_tried_ = false;
  std::optional<std::string> key_;
};

// A store that never has anything (the model file cannot be identified).
class NoPrefixCache : public engine::PrefixStore {
 public:
  std::shared_ptr<const engine::KvSnapshot> Load() override { return nullptr; }
  bool WantsSnapshot(size_t) override { return false; }
  void Save(const engine::KvSnapshot&) override {}
};

}  // namespace

std::string PrefixCacheSettings(model::KvType k, model::KvType v,
                                const model::AdapterSet* adapters) {
  std::string kv = model::KvTypeName(k);
  if (v != k) kv += std::string("/") + model::KvTypeName(v);
  return "engine=1;kv=" + kv + ";adapters=" + model::AdapterKey(adapters);
}

std::unique_ptr<engine::PrefixStore> OpenPrefixCache(const Workspace& workspace,
                                                     const std::string& model_path,
                                                     std::string settings,
                                                     std::function<void(std::string_view)> warn) {
  std::string binding = Binding(model_path, settings, workspace);
  if (binding.empty()) return std::make_unique<NoPrefixCache>();
  return std::make_unique<FilePrefixCache>(workspace, std::move(binding), std::move(warn));
}

}  // namespace hearth::agent
