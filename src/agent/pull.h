// Getting a model: `hearth pull NAME|URL` and `hearth models`. A catalog maps short names (e2b,
// e4b, 26b-a4b, 31b) to public GGUF URLs; built-in defaults can be overridden and extended in
// ~/.config/hearth/models.toml. Downloads go to a `.part` file that a re-run resumes with an HTTP
// Range request; the final file appears (fsync + atomic rename) only once its size and sha256
// are verified. This is, besides a user-configured remote backend, the only network use of hearth.
//
//   agent::PullOptions opt;
//   opt.dir = agent::DefaultModelDir();
//   agent::PullResult r = agent::Pull(agent::ResolvePullTarget("e2b", agent::LoadCatalog(
//       agent::CatalogConfigPath())), opt);
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::agent {

// SHA-256 (FIPS 180-4), streaming. Small and dependency-free: verifying a download needs nothing
// more, and it keeps OpenSSL out of the build.
class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t n);
  std::array<uint8_t, 32> Finish();  // the object is spent afterwards
  static std::string Hex(const std::array<uint8_t, 32>& digest);

 private:
  void Block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};
std::string Sha256Hex(std::string_view data);
// Hex digest of a file's content. Error(kIo) naming the file if it cannot be read.
std::string Sha256OfFile(const std::string& path);

// One catalog entry: where a model comes from and, when known, what it must look like.
struct CatalogEntry {
  std::string name;    // short name ("e2b"), or empty for a plain URL
  std::string url;     // http(s) URL of the .gguf file
  std::string file;    // file name in the model folder (default: the URL's last path segment)
  uint64_t size = 0;   // bytes; 0 = unknown (then the server's Content-Length is checked)
  std::string sha256;  // lower-case hex; empty = not checked
  // A model made of another one plus adapters (Ollama's FROM + ADAPTER): `base` names the base
  // model as -m would, `loras` and `cvecs` are `FILE[:SCALE]` specs of LoRA adapters and control
  // vectors (relative paths are taken from the config file's folder). Such an entry has no url.
  std::string base;
  std::vector<std::string> loras;
  std::vector<std::string> cvecs;
  // The model's own MTP drafter (a gemma4-assistant GGUF, issue 19): the name of another entry.
  // `hearth pull` fetches it beside the model, and every command that runs the model drafts
  // with it (unless --draft names another, or --no-spec).
  std::string draft;
};

// The built-in short names. Their URLs name well-known public Gemma 4 GGUF repositories; they
// carry no size/sha256 (unknown offline), so users who want verification add them in the config.
std::vector<CatalogEntry> BuiltinCatalog();
// $XDG_CONFIG_HOME/hearth/models.toml, or ~/.config/hearth/models.toml.
std::string CatalogConfigPath();
// The built-in entries, overridden or extended by `config_path` when it exists:
//   [models.e2b]
//   url = "https://…/model.gguf"   # required for a new name
//   file = "model.gguf"            # optional
//   size = 123                     # optional, bytes
//   sha256 = "…"                   # optional, 64 hex digits
//   [models.my-fix]                # or: a base model with adapters, nothing to download
//   base = "e4b"                   # any name -m takes (not another entry with a base)
//   lora = ["my-fix.gguf:0.8"]     # FILE[:SCALE], a string or a list of them
//   control_vector = "calm.gguf"   # FILE[:STRENGTH], optional
//   [models.e4b]
//   draft = "e4b-assistant"        # the entry of its MTP drafter; "" for none
// Error(kInvalidInput) naming the file and key when it is malformed.
std::map<std::string, CatalogEntry> LoadCatalog(const std::string& config_path);
// A short name from the catalog, or an http(s) URL (its last path segment is the file name).
// Error(kUsage) listing the known names otherwise, or naming the base to pull for an entry with
// a base.
CatalogEntry ResolvePullTarget(const std::string& name_or_url,
                               const std::map<std::string, CatalogEntry>& catalog);

// $HEARTH_MODELS, or $XDG_CACHE_HOME/hearth/models, or ~/.cache/hearth/models.
std::string DefaultModelDir();

struct PullOptions {
  std::string dir;                    // the model folder (created when missing)
  long connect_timeout_seconds = 10;  // fail fast without network
  // A transfer slower than 1 byte/s for this long is treated as a dropped connection.
  long stall_timeout_seconds = 60;
  long max_redirects = 10;  // Hugging Face redirects to its CDN
  // Called as bytes arrive: bytes in the .part file so far and the total (0 when unknown).
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Set (by a Ctrl-C handler, or a server whose client went away): the transfer stops within a
  // second and Pull throws Error(kIo) "interrupted", keeping the .part file for resuming.
  const std::atomic<bool>* cancel = nullptr;
};

struct PullResult {
  std::string path;  // the final file
  uint64_t bytes = 0;
  std::string sha256;  // hex digest of the final file
  bool already_present = false;
  uint64_t resumed_from = 0;  // bytes kept from an earlier .part file (0 = fresh)
  bool restarted = false;     // a .part existed but the server ignored Range
};

// Downloads `entry` into opt.dir. Errors (all name the URL or file):
//   kIo            network unreachable / connect timeout (hint: the folder to put a file by hand),
//                  HTTP errors, an interrupted transfer (the .part file is kept for resuming);
//   kInvalidInput  size or sha256 mismatch (the .part file is removed, no final file is left).
PullResult Pull(const CatalogEntry& entry, const PullOptions& opt);

struct LocalModel {
  std::string file;  // name in the folder
  std::string path;
  uint64_t bytes = 0;
  bool incomplete = false;   // a .part file of an unfinished pull
  std::string architecture;  // GGUF general.architecture, when it parses
  // general.file_type ("Q4_K_M"), else the tensor type with the most bytes ("Q4_K")
  std::string type;
  std::string variant;  // the Gemma 4 variant ("E4B") or structure, for gemma4 files
  std::string problem;  // why it did not parse, for complete files
};
// What a GGUF file's header says (architecture, type, variant; `problem` when it does not parse).
LocalModel DescribeModelFile(const std::string& path);
// The .gguf and .gguf.part files in `dir`, sorted by name; an empty list when `dir` is missing.
std::vector<LocalModel> ListModels(const std::string& dir);

}  // namespace hearth::agent
