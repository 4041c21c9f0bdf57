// hearth pull / hearth models: the catalog, the resumable verified download, the folder listing.
#include "agent/pull.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/config.h"

namespace hearth::agent {
namespace {

namespace fs = std::filesystem;

constexpr std::array<uint32_t, 64> kK = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

std::string Home() {
  const char* home = std::getenv("HOME");
  return home && *home ? home : "/tmp";
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

bool IsHttpUrl(const std::string& s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
}

// The last path segment of a URL, without query or fragment.
std::string FileNameOfUrl(const std::string& url) {
  std::string path = url.substr(0, url.find_first_of("?#"));
  const size_t scheme = path.find("://");
  const size_t slash = path.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (slash == std::string::npos) return "";
  return path.substr(path.rfind('/') + 1);
}

// A file name must stay inside the model folder.
void CheckFileName(const std::string& file, const std::string& what) {
  if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos ||
      file.find('\0') != std::string::npos) {
    ThrowUsage("cannot tell the file name of " + what + " (got '" + file + "')",
               "the URL must end in a file name such as model.gguf, or set file = \"...\" in " +
                   CatalogConfigPath());
  }
}

bool IsHexDigest(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
         });
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void FsyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

uint64_t FileSizeOr0(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(n);
}

// llama.cpp's llama_ftype values (the ones in use); empty for others.
std::string FileTypeName(int64_t ftype) {
  static const std::map<int64_t, const char*> kNames = {
      {0, "F32"},     {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},
      {8, "Q5_0"},    {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},
      {13, "Q3_K_L"}, {14, "Q4_K_S"}, {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},
      {18, "Q6_K"},   {25, "IQ4_NL"}, {30, "IQ4_XS"}, {32, "BF16"},   {38, "MXFP4_MOE"}};
  auto it = kNames.find(ftype);
  return it == kNames.end() ? "" : it->second;
}

// State shared with libcurl's callbacks during one transfer.
struct Transfer {
  CURL* curl = nullptr;
  int fd = -1;
  uint64_t offset = 0;   // bytes already in the .part file when the request was sent
  uint64_t written = 0;  // bytes in the .part file now
  bool body_started = false;
  bool restarted = false;    // the server answered 200 to a Range request: start over
  bool wrong_range = false;  // a 206 for a different range than asked
  bool write_failed = false;
  int write_errno = 0;
  long status = 0;
  // Per response (reset on each status line, i.e. after every redirect).
  bool has_content_range = false;
  uint64_t range_start = 0;
  uint64_t range_total = 0;  // 0 = unknown ("*")
  uint64_t total = 0;        // the whole file's size when the server told it
  const PullOptions* opt = nullptr;
  bool cancelled = false;
};

bool Cancelled(Transfer* t) {
  if (t->opt->cancel != nullptr && t->opt->cancel->load()) t->cancelled = true;
  return t->cancelled;
}

// Also called while nothing arrives (about once a second), so a cancel is seen during a stall.
int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return Cancelled(static_cast<Transfer*>(user)) ? 1 : 0;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->has_content_range = false;
    t->range_start = t->range_total = 0;
    return size * n;
  }
  const std::string lower = Lower(line);
  if (lower.rfind("content-range:", 0) == 0) {
    // "Content-Range: bytes START-END/TOTAL" (TOTAL may be "*"), or "bytes */TOTAL" on a 416.
    const size_t bytes = lower.find("bytes");
    if (bytes != std::string::npos) {
      const char* p = lower.c_str() + bytes + 5;
      while (*p == ' ') ++p;
      t->has_content_range = true;
      if (std::isdigit(static_cast<unsigned char>(*p)))
        t->range_start = std::strtoull(p, nullptr, 10);
      const char* slash = std::strchr(p, '/');
      if (slash && std::isdigit(static_cast<unsigned char>(slash[1]))) {
        t->range_total = std::strtoull(slash + 1, nullptr, 10);
      }
    }
  }
  return size * n;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  t->status = status;
  // Bodies of redirects and errors never reach the .part file.
  if (status != 200 && status != 206) return len;
  if (Cancelled(t)) return 0;  // aborts the transfer
  if (!t->body_started) {
    t->body_started = true;
    curl_off_t length = -1;
    curl_easy_getinfo(t->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    if (status == 200 && t->offset > 0) {
      // The server ignored the Range header and sends the whole file: start the .part over.
      if (::ftruncate(t->fd, 0) != 0 || ::lseek(t->fd, 0, SEEK_SET) != 0) {
        t->write_failed = true;
        t->write_errno = errno;
        return 0;
      }
      t->restarted = true;
      t->offset = 0;
      t->written = 0;
    }
    if (status == 206) {
      if (!t->has_content_range || t->range_start != t->offset) {
        t->wrong_range = true;
        return 0;  // aborts the transfer
      }
      t->total = t->range_total;
    } else if (length >= 0) {
      t->total = static_cast<uint64_t>(length);
    }
  }
  if (!WriteAll(t->fd, data, len)) {
    t->write_failed = true;
    t->write_errno = errno;
    return 0;
  }
  t->written += len;
  if (t->opt->progress) t->opt->progress(t->written, t->total);
  return len;
}

// Size and digest checks of a complete download. Returns the digest.
std::string Verify(const std::string& path, const CatalogEntry& entry, uint64_t server_total,
                   const std::string& what) {
  const uint64_t size = FileSizeOr0(path);
  const uint64_t want = entry.size ? entry.size : server_total;
  if (want && size != want) {
    ThrowInvalidInput(
        what + " has " + std::to_string(size) + " bytes, expected " + std::to_string(want) +
            (entry.size ? " (catalog size)" : " (server size)"),
        "the download was removed; check the size in " + CatalogConfigPath() + " or try again");
  }
  const std::string digest = Sha256OfFile(path);
  if (!entry.sha256.empty() && digest != Lower(entry.sha256)) {
    ThrowInvalidInput(what + " has sha256 " + digest + ", expected " + Lower(entry.sha256),
                      "the download was corrupted or the catalog entry is wrong; it was removed, "
                      "run the command again or check sha256 in " +
                          CatalogConfigPath());
  }
  return digest;
}

}  // namespace

// ---- SHA-256 ----------------------------------------------------------------------------------

Sha256::Sha256()
    : h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19} {}

void Sha256::Block(const uint8_t* p) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i) {
    w[i] = (uint32_t{p[4 * i]} << 24) | (uint32_t{p[4 * i + 1]} << 16) |
           (uint32_t{p[4 * i + 2]} << 8) | uint32_t{p[4 * i + 3]};
  }
  for (int i = 16; i < 64; ++i) {
    const uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int i = 0; i < 64; ++i) {
    const uint32_t s1 = Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25);
    const uint32_t ch = (e & f) ^ (~e & g);
    const uint32_t t1 = h + s1 + ch + kK[i] + w[i];
    const uint32_t s0 = Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22);
    const uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    const uint32_t t2 = s0 + maj;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h_[0] += a;
  h_[1] += b;
  h_[2] += c;
  h_[3] += d;
  h_[4] += e;
  h_[5] += f;
  h_[6] += g;
  h_[7] += h;
}

void Sha256::Update(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  total_ += n;
  if (buf_len_ > 0) {
    const size_t take = std::min(n, 64 - buf_len_);
    std::memcpy(buf_.data() + buf_len_, p, take);
    buf_len_ += take;
    p += take;
    n -= take;
    if (buf_len_ < 64) return;
    Block(buf_.data());
    buf_len_ = 0;
  }
  for (; n >= 64; n -= 64, p += 64) Block(p);
  if (n > 0) {
    std::memcpy(buf_.data(), p, n);
    buf_len_ = n;
  }
}

std::array<uint8_t, 32> Sha256::Finish() {
  const uint64_t bits = total_ * 8;
  const uint8_t pad = 0x80;
  Update(&pad, 1);
  const uint8_t zero = 0;
  while (buf_len_ != 56) Update(&zero, 1);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  Update(len, 8);
  std::array<uint8_t, 32> out;
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<uint8_t>(h_[i] >> (24 - 8 * j));
  }
  return out;
}

std::string Sha256::Hex(const std::array<uint8_t, 32>& digest) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (uint8_t b : digest) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data.data(), data.size());
  return Sha256::Hex(h.Finish());
}

std::string Sha256OfFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ThrowIo("cannot open " + path + ": " + ErrnoText(errno));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int e = errno;
      ::close(fd);
      ThrowIo("cannot read " + path + ": " + ErrnoText(e));
    }
    if (r == 0) break;
    h.Update(buf.data(), static_cast<size_t>(r));
  }
  ::close(fd);
  return Sha256::Hex(h.Finish());
}

// ---- Catalog ----------------------------------------------------------------------------------

std::vector<CatalogEntry> BuiltinCatalog() {
  // ggml-org publishes llama.cpp-ready GGUF conversions of Google's releases; the names follow
  // its pattern for earlier Gemma releases. They cannot be checked offline: a user whose pull
  // fails with HTTP 404 fixes the URL in models.toml.
  // Each model names its MTP drafter (Google's `gemma-4-*-it-assistant`, converted by
  // llama.cpp as `gemma4-assistant`), which `hearth pull` fetches beside it.
  auto hf = [](const char* name, const char* repo, const char* file, const char* draft) {
    CatalogEntry e{name, std::string("https://huggingface.co/") + repo + "/resolve/main/" + file,
                   file, 0, ""};
    e.draft = draft;
    return e;
  };
  return {
      hf("e2b", "ggml-org/gemma-4-E2B-it-GGUF", "gemma-4-E2B-it-Q8_0.gguf", "e2b-assistant"),
      hf("e4b", "ggml-org/gemma-4-E4B-it-GGUF", "gemma-4-E4B-it-Q4_K_M.gguf", "e4b-assistant"),
      hf("26b-a4b", "ggml-org/gemma-4-26B-A4B-it-GGUF", "gemma-4-26B-A4B-it-Q4_K_M.gguf",
         "26b-a4b-assistant"),
      hf("31b", "ggml-org/gemma-4-31B-it-GGUF", "gemma-4-31B-it-Q4_K_M.gguf", "31b-assistant"),
      hf("e2b-assistant", "ggml-org/gemma-4-E2B-it-assistant-GGUF",
         "gemma-4-E2B-it-assistant-Q8_0.gguf", ""),
      hf("e4b-assistant", "ggml-org/gemma-4-E4B-it-assistant-GGUF",
         "gemma-4-E4B-it-assistant-Q8_0.gguf", ""),
      hf("26b-a4b-assistant", "ggml-org/gemma-4-26B-A4B-it-assistant-GGUF",
         "gemma-4-26B-A4B-it-assistant-Q8_0.gguf", ""),
      hf("31b-assistant", "ggml-org/gemma-4-31B-it-assistant-GGUF",
         "gemma-4-31B-it-assistant-Q8_0.gguf", ""),
  };
}

std::string CatalogConfigPath() {
  const std::string base = EnvOr("XDG_CONFIG_HOME", Home() + "/.config");
  return base + "/hearth/models.toml";
}

std::string DefaultModelDir() {
  if (const char* dir = std::getenv("HEARTH_MODELS"); dir && *dir) return dir;
  return EnvOr("XDG_CACHE_HOME", Home() + "/.cache") + "/hearth/models";
}

namespace {

// `lora` / `control_vector` of an entry with a base: one FILE[:SCALE] string or a list of them,
// relative paths taken from the config file's folder (the config is the user's own, so any path is
// theirs to name).
std::vector<std::string> AdapterSpecs(const toml::node& node, const std::string& where,
                                      const std::string& config_path) {
  std::vector<std::string> out;
  auto add = [&](const toml::node& n) {
    auto s = n.value<std::string>();
    if (!s || s->empty()) ThrowInvalidInput(where + " must be a file name or a list of them");
    fs::path p(*s);
    if (p.is_relative()) p = fs::path(config_path).parent_path() / p;
    out.push_back(p.string());
  };
  if (const toml::array* a = node.as_array()) {
    for (const auto& n : *a) add(n);
  } else {
    add(node);
  }
  return out;
}

void ReadAdaptedEntry(const toml::table& t, const std::string& where,
                      const std::string& config_path, CatalogEntry& e) {
  for (const auto& [field, value] : t) {
    const std::string f(field.str());
    if (f == "base") {
      auto s = value.value<std::string>();
      if (!s || s->empty()) ThrowInvalidInput(where + ".base must be a model name");
      e.base = *s;
    } else if (f == "lora") {
      e.loras = AdapterSpecs(value, where + ".lora", config_path);
    } else if (f == "control_vector") {
      e.cvecs = AdapterSpecs(value, where + ".control_vector", config_path);
    } else {
      ThrowInvalidInput(where + ": unknown key '" + f + "' in an entry with a base",
                        "the keys are base, lora, control_vector");
    }
  }
  if (e.loras.empty() && e.cvecs.empty()) {
    ThrowInvalidInput(where + " has a base but no adapter",
                      "add lora = \"FILE[:SCALE]\" (or control_vector)");
  }
}

}  // namespace

std::map<std::string, CatalogEntry> LoadCatalog(const std::string& config_path) {
  std::map<std::string, CatalogEntry> catalog;
  for (auto& e : BuiltinCatalog()) catalog[e.name] = e;
  std::error_code ec;
  if (config_path.empty() || !fs::exists(config_path, ec)) return catalog;
  toml::table table;
  try {
    table = toml::parse_file(config_path);
  } catch (const toml::parse_error& e) {
    ThrowInvalidInput(config_path + ": " + std::string(e.description()) + " at line " +
                          std::to_string(e.source().begin.line),
                      "fix the TOML syntax");
  }
  const toml::node* models = table.get("models");
  if (!models) return catalog;
  const toml::table* mt = models->as_table();
  if (!mt) ThrowInvalidInput(config_path + ": 'models' must be a table", "write [models.NAME]");
  for (const auto& [key, node] : *mt) {
    const std::string name(key.str());
    const std::string where = config_path + ": models." + name;
    const toml::table* t = node.as_table();
    if (!t) ThrowInvalidInput(where + " must be a table", "write [models." + name + "]");
    CatalogEntry e = catalog.count(name) ? catalog[name] : CatalogEntry{name, "", "", 0, ""};
    const bool new_url = t->contains("url");
    const bool adapted = t->contains("base");
    if (adapted) {
      if (catalog.count(name)) {
        ThrowInvalidInput(where + ": a built-in name cannot have a base",
                          "give the model with adapters a name of its own");
      }
      ReadAdaptedEntry(*t, where, config_path, e);
      catalog[name] = e;
      continue;
    }
    for (const auto& [field, value] : *t) {
      const std::string f(field.str());
      if (f == "url" || f == "file" || f == "sha256") {
        auto s = value.value<std::string>();
        if (!s) ThrowInvalidInput(where + "." + f + " must be a string");
        if (f == "url") {
          if (!IsHttpUrl(*s)) ThrowInvalidInput(where + ".url must start with http:// or https://");
          e.url = *s;
        } else if (f == "file") {
          e.file = *s;
        } else {
          if (!IsHexDigest(Lower(*s))) {
            ThrowInvalidInput(where + ".sha256 must be 64 hex digits");
          }
          e.sha256 = Lower(*s);
        }
      } else if (f == "draft") {
        auto v = value.value<std::string>();
        if (!v) ThrowInvalidInput(where + ".draft must be a string (a model name, or \"\")");
        e.draft = *v;
      } else if (f == "size") {
        auto v = value.value<int64_t>();
        if (!v || *v < 0) ThrowInvalidInput(where + ".size must be a non-negative integer");
        e.size = static_cast<uint64_t>(*v);
      } else {
        ThrowInvalidInput(
            where + ": unknown key '" + f + "'",
            "the keys are url, file, size, sha256, draft (or base, lora, control_vector)");
      }
    }
    if (e.url.empty()) ThrowInvalidInput(where + " has no url", "add url = \"https://...\"");
    // A new URL without a new file name takes the URL's file name; the built-in size and digest
    // describe the old file and no longer apply.
    if (new_url) {
      if (!t->contains("file")) e.file = FileNameOfUrl(e.url);
      if (!t->contains("size")) e.size = 0;
      if (!t->contains("sha256")) e.sha256.clear();
    }
    catalog[name] = e;
  }
  for (const auto& [name, e] : catalog) {
    if (e.draft.empty()) continue;
    auto d = catalog.find(e.draft);
    if (d == catalog.end() || d->second.url.empty() || d->first == name) {
      ThrowInvalidInput(config_path + ": models." + name + ".draft names '" + e.draft +
                            "', which is not a downloadable model of the catalog",
                        "name an entry with a url, or write draft = \"\" for none");
    }
  }
  return catalog;
}

CatalogEntry ResolvePullTarget(const std::string& name_or_url,
                               const std::map<std::string, CatalogEntry>& catalog) {
  if (auto it = catalog.find(name_or_url); it != catalog.end()) {
    CatalogEntry e = it->second;
    if (!e.base.empty()) {
      ThrowUsage("'" + e.name + "' is '" + e.base + "' with adapters: there is nothing to download",
                 "pull its base instead: hearth pull " + e.base);
    }
    if (e.file.empty()) e.file = FileNameOfUrl(e.url);
    CheckFileName(e.file, "'" + e.name + "'");
    return e;
  }
  if (IsHttpUrl(name_or_url)) {
    CatalogEntry e{"", name_or_url, FileNameOfUrl(name_or_url), 0, ""};
    CheckFileName(e.file, name_or_url);
    return e;
  }
  std::string names;
  for (const auto& [name, e] : catalog) names += (names.empty() ? "" : ", ") + name;
  ThrowUsage("unknown model '" + name_or_url + "'",
             "use one of " + names + ", an http(s) URL, or add it to " + CatalogConfigPath());
}

// ---- Download ---------------------------------------------------------------------------------

// Longer than 150 lines on purpose: the download's states (already there, resume, restart,
// verify, rename into place) read top to bottom in the order a download goes through them.
PullResult Pull(const CatalogEntry& entry, const PullOptions& opt) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CheckFileName(entry.file, entry.url);
  std::error_code ec;
  fs::create_directories(opt.dir, ec);
  if (ec) {
    ThrowIo("cannot create the model folder " + opt.dir + ": " + ec.message(),
            "pass another folder with --dir or set HEARTH_MODELS");
  }
  const std::string final_path = (fs::path(opt.dir) / entry.file).string();
  const std::string part_path = final_path + ".part";
  PullResult result;
  result.path = final_path;

  if (fs::exists(final_path, ec)) {
    // Already there: check it against what the catalog knows (nothing to compare for a URL).
    const uint64_t size = FileSizeOr0(final_path);
    if (entry.size && size != entry.size) {
      ThrowInvalidInput(final_path + " exists with " + std::to_string(size) + " bytes, expected " +
                            std::to_string(entry.size),
                        "remove it and run the command again");
    }
    result.sha256 = Sha256OfFile(final_path);
    if (!entry.sha256.empty() && result.sha256 != entry.sha256) {
      ThrowInvalidInput(
          final_path + " exists with sha256 " + result.sha256 + ", expected " + entry.sha256,
          "remove it and run the command again");
    }
    result.bytes = size;
    result.already_present = true;
    return result;
  }

  int fd = ::open(part_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    ThrowIo("cannot write " + part_path + ": " + ErrnoText(errno),
            "check the permissions of the model folder, or pass --dir");
  }
  // Two pulls of the same file would interleave their bytes.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    ThrowIo("another hearth pull is downloading " + part_path, "wait for it to finish");
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  auto remove_part = [&] { ::unlink(part_path.c_str()); };

  uint64_t offset = static_cast<uint64_t>(::lseek(fd, 0, SEEK_END));
  if (entry.size && offset > entry.size) {
    // Longer than the file can be: it is not a prefix of it.
    if (::ftruncate(fd, 0) != 0) ThrowIo("cannot truncate " + part_path + ": " + ErrnoText(errno));
    ::lseek(fd, 0, SEEK_SET);
    offset = 0;
  }
  result.resumed_from = offset;

  Transfer t;
  t.fd = fd;
  t.offset = offset;
  t.written = offset;
  t.opt = &opt;
  bool complete_already = entry.size && offset == entry.size;
  if (!complete_already) {
    t.curl = curl_easy_init();
    if (!t.curl) ThrowIo("cannot initialise libcurl");
    std::string range = std::to_string(offset) + "-";
    curl_easy_setopt(t.curl, CURLOPT_URL, entry.url.c_str());
    curl_easy_setopt(t.curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(t.curl, CURLOPT_MAXREDIRS, opt.max_redirects);
    curl_easy_setopt(t.curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t.curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t.curl, CURLOPT_CONNECTTIMEOUT, opt.connect_timeout_seconds);
    curl_easy_setopt(t.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(t.curl, CURLOPT_LOW_SPEED_TIME, opt.stall_timeout_seconds);
    curl_easy_setopt(t.curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t.curl, CURLOPT_USERAGENT, "hearth-pull");
    // CURLOPT_RANGE, not RESUME_FROM: curl then hands us a 200 reply to a Range request instead
    // of failing, and we restart the .part file.
    if (offset > 0) curl_easy_setopt(t.curl, CURLOPT_RANGE, range.c_str());
    curl_easy_setopt(t.curl, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(t.curl, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(t.curl, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(t.curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(t.curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(t.curl, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(t.curl, CURLOPT_NOPROGRESS, 0L);
    char errbuf[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(t.curl, CURLOPT_ERRORBUFFER, errbuf);
    const CURLcode rc = curl_easy_perform(t.curl);
    long status = 0;
    curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &status);
    char* effective = nullptr;
    curl_easy_getinfo(t.curl, CURLINFO_EFFECTIVE_URL, &effective);
    const std::string final_url = effective ? effective : entry.url;
    curl_easy_cleanup(t.curl);
    t.curl = nullptr;
    const std::string by_hand = "without network, download " + entry.url +
                                " elsewhere and put it in " + opt.dir + " as " + entry.file;
    if (t.cancelled) {
      const uint64_t have = FileSizeOr0(part_path);
      if (have == 0) remove_part();
      ::fsync(fd);
      ThrowIo("download of " + entry.url + " interrupted after " + std::to_string(have) + " bytes",
              have ? "run the same command again to resume from " + part_path
                   : "run the same command again");
    }
    if (t.write_failed) {
      ThrowIo("cannot write " + part_path + ": " + ErrnoText(t.write_errno),
              "free disk space in the model folder, or pass --dir");
    }
    if (t.wrong_range) {
      remove_part();
      ThrowIo("the server answered a resume request of " + entry.url +
                  " with the wrong byte range; removed " + part_path,
              "run the command again to download from the start");
    }
    if (status == 416 && offset > 0) {
      // Range not satisfiable: the .part is already the whole file (Content-Range */TOTAL says
      // so) or it does not belong to this file.
      if (t.has_content_range && t.range_total == offset) {
        complete_already = true;
      } else {
        remove_part();
        ThrowIo("the server refused to resume " + entry.url + " at byte " + std::to_string(offset) +
                    "; removed " + part_path,
                "run the command again to download from the start");
      }
    } else if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT ||
               rc == CURLE_COULDNT_RESOLVE_PROXY ||
               (rc == CURLE_OPERATION_TIMEDOUT && t.written == offset && !t.body_started)) {
      if (FileSizeOr0(part_path) == 0) remove_part();
      ThrowIo("cannot reach " + final_url + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc)),
              by_hand);
    } else if (rc == CURLE_TOO_MANY_REDIRECTS) {
      if (FileSizeOr0(part_path) == 0) remove_part();
      ThrowIo("too many redirects (more than " + std::to_string(opt.max_redirects) + ") fetching " +
                  entry.url,
              "check the URL");
    } else if (rc != CURLE_OK) {
      const uint64_t have = FileSizeOr0(part_path);
      if (have == 0) remove_part();
      ::fsync(fd);
      ThrowIo("download of " + final_url + " interrupted after " + std::to_string(have) +
                  (t.total ? " of " + std::to_string(t.total) : std::string()) +
                  " bytes: " + (errbuf[0] ? errbuf : curl_easy_strerror(rc)),
              have ? "run the same command again to resume from " + part_path : by_hand);
    } else if (status != 200 && status != 206) {
      if (FileSizeOr0(part_path) == 0) remove_part();
      ThrowIo("the server answered HTTP " + std::to_string(status) + " for " + final_url,
              status == 404 ? "check the URL or the entry in " + CatalogConfigPath()
                            : "try again later; " + by_hand);
    }
  }
  result.restarted = t.restarted;
  if (t.restarted) result.resumed_from = 0;
  if (::fsync(fd) != 0) ThrowIo("cannot sync " + part_path + ": " + ErrnoText(errno));
  try {
    result.sha256 = Verify(part_path, entry, t.total, "the download of " + entry.url);
  } catch (const Error&) {
    remove_part();
    throw;
  }
  result.bytes = FileSizeOr0(part_path);
  if (std::rename(part_path.c_str(), final_path.c_str()) != 0) {
    ThrowIo("cannot rename " + part_path + " to " + final_path + ": " + ErrnoText(errno));
  }
  FsyncPath(opt.dir, true);
  return result;
}

// ---- Listing ----------------------------------------------------------------------------------

LocalModel DescribeModelFile(const std::string& path) {
  LocalModel m;
  m.file = fs::path(path).filename().string();
  m.path = path;
  m.bytes = FileSizeOr0(path);
  // The header and tensor table only: this maps the file but reads no weights.
  try {
    gguf::File f = gguf::File::Open(m.path);
    if (auto arch = f.GetString("general.architecture")) m.architecture = std::string(*arch);
    if (m.architecture == "gemma4") {
      try {
        m.variant = model::ReadConfig(f).VariantName();
      } catch (const Error&) {
        // A config hearth cannot read still lists; loading it says why.
      }
    }
    // general.file_type (llama_ftype) names the quantisation as users know it ("Q4_K_M");
    // the dominant tensor type is a fallback (small models are dominated by embeddings).
    try {
      if (auto ftype = f.GetInt("general.file_type")) m.type = FileTypeName(*ftype);
    } catch (const Error&) {
      // A file_type of the wrong type is not worth hiding the model for.
    }
    if (!m.type.empty()) return m;
    std::map<std::string, uint64_t> by_type;
    for (const auto& t : f.tensors()) by_type[gguf::TensorTypeName(t.type_id)] += t.n_bytes;
    uint64_t best = 0;
    for (const auto& [type, bytes] : by_type) {
      if (bytes > best) {
        best = bytes;
        m.type = type;
      }
    }
  } catch (const std::exception& e) {
    m.problem = e.what();
  }
  return m;
}

std::vector<LocalModel> ListModels(const std::string& dir) {
  std::vector<LocalModel> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& de : fs::directory_iterator(dir, ec)) {
    const std::string name = de.path().filename().string();
    const bool part = name.size() > 5 && name.ends_with(".part");
    const std::string base = part ? name.substr(0, name.size() - 5) : name;
    if (!Lower(base).ends_with(".gguf") || !de.is_regular_file(ec)) continue;
    if (part) {
      LocalModel m;
      m.file = name;
      m.path = de.path().string();
      m.bytes = FileSizeOr0(m.path);
      m.incomplete = true;
      out.push_back(std::move(m));
    } else {
      out.push_back(DescribeModelFile(de.path().string()));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const LocalModel& a, const LocalModel& b) { return a.file < b.file; });
  return out;
}

}  // namespace hearth::agent
