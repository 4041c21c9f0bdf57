// Models by name (agent/models.h).
#include "agent/models.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/config.h"
#include "agent/pull.h"
#include "base/error.h"

namespace hearth::agent {
namespace fs = std::filesystem;
namespace {

constexpr const char* kOllamaHost = "registry.ollama.ai";
constexpr const char* kOllamaNamespace = "library";
constexpr const char* kAliasPrefix = "gemma4:";

bool IsFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

uint64_t SizeOr0(const fs::path& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0 : static_cast<uint64_t>(n);
}

// A path component from a model name or a directory listing: never empty, ".", ".." or hidden,
// so a name cannot lead outside the store.
bool SafeComponent(const std::string& s) {
  return !s.empty() && s[0] != '.' && s.find('/') == std::string::npos &&
         s.find('\0') == std::string::npos;
}

// "gemma4:e4b" -> {registry.ollama.ai, library, gemma4, e4b}; "me/m" -> {.., me, m, latest};
// "host/ns/m:tag" as given. Empty when the name cannot be an Ollama name.
std::vector<std::string> OllamaParts(const std::string& name) {
  std::string base = name, tag = "latest";
  if (const size_t colon = name.rfind(':');
      colon != std::string::npos && name.find('/', colon) == std::string::npos) {
    base = name.substr(0, colon);
    tag = name.substr(colon + 1);
  }
  std::vector<std::string> parts;
  std::stringstream ss(base);
  for (std::string p; std::getline(ss, p, '/');) parts.push_back(p);
  if (parts.size() == 1) parts.insert(parts.begin(), kOllamaNamespace);
  if (parts.size() == 2) parts.insert(parts.begin(), kOllamaHost);
  if (parts.size() != 3) return {};
  parts.push_back(tag);
  for (const auto& p : parts) {
    if (!SafeComponent(p)) return {};
  }
  return parts;
}

std::string OllamaDisplayName(const std::vector<std::string>& p) {
  std::string name = p[2] + ":" + p[3];
  if (p[0] == kOllamaHost && p[1] == kOllamaNamespace) return name;
  if (p[0] == kOllamaHost) return p[1] + "/" + name;
  return p[0] + "/" + p[1] + "/" + name;
}

// The model blob a manifest names, or empty. Only a digest of 64 hex digits is accepted, so the
// blob path stays inside dir/blobs whatever the manifest says.
std::string BlobOfManifest(const fs::path& manifest, const std::string& dir) {
  std::ifstream in(manifest, std::ios::binary);
  if (!in) return {};
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("layers") || !j["layers"].is_array()) return {};
  for (const auto& layer : j["layers"]) {
    if (!layer.is_object() || layer.value("mediaType", "") != "application/vnd.ollama.image.model")
      continue;
    const std::string digest = layer.value("digest", "");
    if (!digest.starts_with("sha256:") || digest.size() != 7 + 64) return {};
    const std::string hex = digest.substr(7);
    if (!std::all_of(hex.begin(), hex.end(), [](char c) { return std::isxdigit(c) != 0; })) {
      return {};
    }
    const fs::path blob = fs::path(dir) / "blobs" / ("sha256-" + hex);
    return IsFile(blob) ? blob.string() : std::string();
  }
  return {};
}

std::string FindOllama(const std::string& name) {
  const auto parts = OllamaParts(name);
  if (parts.empty()) return {};
  const std::string dir = OllamaModelsDir();
  fs::path manifest = fs::path(dir) / "manifests";
  for (const auto& p : parts) manifest /= p;
  return IsFile(manifest) ? BlobOfManifest(manifest, dir) : std::string();
}

std::map<std::string, CatalogEntry> CatalogOrBuiltin() {
  try {
    return LoadCatalog(CatalogConfigPath());
  } catch (const Error&) {
    // A broken models.toml is reported by `hearth pull`; finding a model still works.
    std::map<std::string, CatalogEntry> c;
    for (auto& e : BuiltinCatalog()) c[e.name] = e;
    return c;
  }
}

// The file of `entry`'s drafter in `dir`, when the entry names one and it has been pulled.
std::string DownloadedDraft(const std::map<std::string, CatalogEntry>& catalog,
                            const CatalogEntry& entry, const std::string& dir) {
  if (entry.draft.empty()) return {};
  auto d = catalog.find(entry.draft);
  if (d == catalog.end() || d->second.url.empty()) return {};
  const std::string file =
      d->second.file.empty() ? d->second.url.substr(d->second.url.rfind('/') + 1) : d->second.file;
  if (!SafeComponent(file) || !IsFile(fs::path(dir) / file)) return {};
  return (fs::path(dir) / file).string();
}

}  // namespace

std::string OllamaModelsDir() {
  if (const char* d = std::getenv("OLLAMA_MODELS"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.ollama/models";
}

std::vector<OllamaModel> ListOllamaModels(const std::string& dir) {
  std::vector<OllamaModel> out;
  const fs::path root = fs::path(dir) / "manifests";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  // manifests/HOST/NAMESPACE/MODEL/TAG; symbolic links are not followed.
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 3) {
      it.disable_recursion_pending();
      continue;
    }
    if (it.depth() != 3 || !it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    const fs::path rel = fs::relative(it->path(), root, ec);
    std::vector<std::string> parts;
    for (const auto& p : rel) parts.push_back(p.string());
    if (parts.size() != 4 ||
        !std::all_of(parts.begin(), parts.end(), [](const auto& p) { return SafeComponent(p); })) {
      continue;
    }
    const std::string blob = BlobOfManifest(it->path(), dir);
    if (blob.empty()) continue;
    out.push_back({OllamaDisplayName(parts), blob, SizeOr0(blob)});
  }
  std::sort(out.begin(), out.end(),
            [](const OllamaModel& a, const OllamaModel& b) { return a.name < b.name; });
  return out;
}

std::string DefaultModelName() {
  const fs::path path = UserConfigPath();
  if (path.empty() || !IsFile(path)) return {};
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfigText(text.str(), path.string()).model.value_or("");
}

std::string AvailableModelNames() {
  std::string names;
  auto add = [&](const std::string& s) { names += (names.empty() ? "" : ", ") + s; };
  for (const auto& m : ListModels(DefaultModelDir())) {
    if (!m.incomplete) add(m.file);
  }
  for (const auto& m : ListOllamaModels(OllamaModelsDir())) add(m.name + " (ollama)");
  return names;
}

std::vector<AdaptedModel> AdaptedModelsOf(const std::string& model_path) {
  std::vector<AdaptedModel> out;
  for (const auto& [name, e] : CatalogOrBuiltin()) {
    if (e.base.empty()) continue;
    try {
      const ResolvedModel r = ResolveModel(name);
      std::error_code ec;
      if (!fs::equivalent(r.path, model_path, ec) || ec) continue;
      out.push_back({name, r.loras, r.cvecs});
    } catch (const Error&) {
      // A base that is not there (not pulled, misspelt) just means this entry is not offered.
    }
  }
  return out;
}

ResolvedModel ResolveModel(const std::string& name) {
  if (name.empty()) {
    const std::string def = DefaultModelName();
    if (def.empty()) {
      const std::string have = AvailableModelNames();
      ThrowUsage("no model given",
                 "pass -m NAME" + (have.empty() ? std::string() : " (available: " + have + ")") +
                     ", get one with `hearth pull e4b`, or set [agent] model in " +
                     UserConfigPath().string());
    }
    ResolvedModel r = ResolveModel(def);
    r.source += ", default";
    return r;
  }
  if (IsFile(name)) return {name, "path"};
  const std::string dir = DefaultModelDir();
  if (SafeComponent(name)) {
    for (const std::string& f : {name, name + ".gguf"}) {
      if (IsFile(fs::path(dir) / f)) return {(fs::path(dir) / f).string(), "model folder"};
    }
  }
  const auto catalog = CatalogOrBuiltin();
  std::string short_name = name;
  if (name.starts_with(kAliasPrefix) && catalog.count(name.substr(7))) {
    short_name = name.substr(7);
  }
  std::string not_pulled;
  if (auto it = catalog.find(short_name); it != catalog.end() && !it->second.base.empty()) {
    const CatalogEntry& e = it->second;
    if (auto b = catalog.find(e.base); b != catalog.end() && !b->second.base.empty()) {
      ThrowInvalidInput(
          "the base of '" + name + "' is '" + e.base + "', which has a base itself",
          "name a model file or a downloadable model as base in " + CatalogConfigPath());
    }
    ResolvedModel r = ResolveModel(e.base);
    r.source = "catalog, " + e.base + " with adapters";
    r.loras = e.loras;
    r.cvecs = e.cvecs;
    return r;
  }
  if (auto it = catalog.find(short_name); it != catalog.end()) {
    const std::string file = it->second.file.empty()
                                 ? it->second.url.substr(it->second.url.rfind('/') + 1)
                                 : it->second.file;
    if (SafeComponent(file) && IsFile(fs::path(dir) / file)) {
      ResolvedModel r{(fs::path(dir) / file).string(), "catalog"};
      r.draft = DownloadedDraft(catalog, it->second, dir);
      return r;
    }
    not_pulled = short_name;
  }
  if (std::string blob = FindOllama(name); !blob.empty()) return {blob, "ollama"};
  if (!not_pulled.empty()) {
    ThrowIo("cannot open '" + name + "': the model is not downloaded yet",
            "run `hearth pull " + not_pulled + "` first; it goes to " + dir);
  }
  const std::string have = AvailableModelNames();
  std::string names;
  for (const auto& [n, e] : catalog) names += (names.empty() ? "" : ", ") + n;
  ThrowIo("cannot open '" + name + "': no such file, and no model of that name",
          (have.empty() ? "no models yet" : "available: " + have) + "; get one with `hearth pull " +
              "NAME` (" + names + ")");
}

}  // namespace hearth::agent
