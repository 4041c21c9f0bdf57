// The codebase index: one SQLite file, PATH/.hearth/index.db, holding the repository's text split
// into chunks (one per function / method / class, plus class skeletons and line windows for the
// rest), an FTS5 table over code-aware tokens, and the definitions and references of every symbol.
// Building is incremental (mtime+size, then content hash) and crash-safe (WAL, one transaction per
// batch); search fuses ranked signals with reciprocal rank fusion; the repo map ranks files with
// personalised PageRank over the def/ref graph.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::index {

// ---------------------------------------------------------------- walking

// Walking a source tree the way git sees it: .gitignore files (nested), .git/info/exclude and the
// global excludes file through libgit2 when the tree is inside a git work tree, the same rules by
// our own matcher when it is not, plus .hearthignore files (gitignore syntax, any level). .git,
// .hearth, .hg and .svn are never entered. Symlinks are followed only when `follow_symlinks` and
// they resolve inside the root, and every directory is entered at most once (by device and
// inode), so loops and escapes are impossible. The index and the assistant's tools (grep, the
// snapshots around `run`) share this one walker.
struct WalkEntry {
  std::string rel_path;  // '/'-separated, relative to the root
  std::filesystem::path abs_path;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

struct WalkResult {
  std::vector<WalkEntry> files;           // sorted by rel_path
  std::map<std::string, size_t> skipped;  // reason -> count
};

struct WalkOptions {
  uint64_t max_file_size = 1 << 20;
  // false: symlinks are skipped ("symlink"), for callers that open files through a confined,
  // no-symlink layer (the assistant's tools).
  bool follow_symlinks = true;
};

WalkResult Walk(const std::filesystem::path& root, const WalkOptions& options);

// ---------------------------------------------------------------- building

struct BuildOptions {
  std::filesystem::path root;        // the tree to index; the db goes in root/.hearth/
  uint64_t max_file_size = 1 << 20;  // bytes; bigger files are skipped
  bool rebuild = false;              // build aside, replace the old index when complete
  int threads = 0;                   // parser threads; 0: AvailableCpus(), at most 32
  // Called after each file with (files done, files to process, current relative path).
  std::function<void(size_t, size_t, const std::string&)> on_progress;
};

struct BuildStats {
  size_t files_seen = 0;       // regular files the walk accepted
  size_t files_indexed = 0;    // (re)parsed in this run
  size_t files_unchanged = 0;  // skipped by mtime+size or by content hash
  size_t files_removed = 0;    // dropped from the index (deleted, now ignored or skipped)
  std::map<std::string, size_t> skipped;  // reason -> count (binary, too_large, minified, ...)
  std::map<std::string, size_t> notes;    // handled oddities: invalid_utf8, crlf, empty
  size_t chunks = 0, symbols = 0;         // totals in the index after the run
  size_t chunks_written = 0;              // in this run
  double seconds = 0;
  uint64_t db_bytes = 0;
};

// Builds or updates root/.hearth/index.db. Throws hearth::Error on a corrupt or foreign db (hint:
// --rebuild) or an unreadable root.
BuildStats BuildIndex(const BuildOptions& options);

// The directory holding `.hearth/index.db` nearest to `start` (itself or a parent). Throws a usage
// error naming `start` when there is none.
std::filesystem::path FindIndexRoot(const std::filesystem::path& start);

std::filesystem::path DbPath(const std::filesystem::path& root);

// Every language id the index can give a file (sorted): what `search --lang` can match.
std::vector<std::string> KnownLanguages();

// Gives ROOT/.hearth (when it is a real directory, not a link) a `.gitignore` of `*`, so that
// `git status` stays clean after hearth wrote its index or journal there. A `.gitignore` that is
// already there is left as it is. Best effort: nothing is reported.
void IgnoreHearthDir(const std::filesystem::path& root);

// ---------------------------------------------------------------- search

// Where vector similarity plugs in: hearth's engine will implement this and the index will store
// one vector per chunk. Nothing implements it yet (no fake embeddings); search fuses the lexical
// signals only until one is passed.
class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual std::string model_id() const = 0;  // stored with the vectors; a change means re-embed
  virtual int dimensions() const = 0;
  virtual std::vector<float> Embed(std::string_view text) = 0;
};

struct SearchOptions {
  std::string query;
  int limit = 10;                // files returned
  int chunks_per_file = 3;       // best chunks listed under each file
  std::string language;          // only chunks of this language (empty: all)
  std::string path_glob;         // only files whose relative path matches (empty: all)
  Embedder* embedder = nullptr;  // reserved: see Embedder
  // Chunks ranked before they are grouped into files (0: the tuned default). Exposed so that
  // tests can make the pruned top-k evaluation prune on a small corpus.
  int chunk_depth = 0;
  // How the top chunks are found; both give the same ranking (see search.cpp).
  // kTermAtATime: each term's doclist is read once and scores are accumulated per chunk, chunk
  // lengths looked up only for chunks whose score bound can still reach the top (the default,
  // the fastest measured). kExhaustive: FTS5 merges the terms' doclists and hearth_rank scores
  // every chunk holding any term (the reference the tests compare the default with).
  enum class Evaluation { kTermAtATime, kExhaustive };
  Evaluation evaluation = Evaluation::kTermAtATime;
  struct Stats {
    int terms = 0;                                     // query terms searched
    int chunks_scored = 0;                             // chunks scored exactly (with their length)
    double terms_ms = 0, chunks_ms = 0, paths_ms = 0;  // wall time of the main steps
  };
  Stats* stats = nullptr;  // when set, filled in by Search()
};

struct SignalScore {
  std::string signal;       // "bm25", "symbol", "path", ...
  int rank = 0;             // 1-based rank of this chunk/file in that signal, 0 = not ranked
  double raw = 0;           // the signal's own score (bm25 is negated so that higher is better)
  double contribution = 0;  // weight / (k + rank)
};

struct ChunkHit {
  std::string symbol, kind;
  int start_line = 0, end_line = 0;
  double score = 0;
  std::vector<SignalScore> signals;
};

struct FileHit {
  std::string path, language;
  double score = 0;
  std::vector<ChunkHit> chunks;  // best first
  std::vector<SignalScore> file_signals;
};

std::vector<FileHit> Search(const std::filesystem::path& root, const SearchOptions& options);

// ---------------------------------------------------------------- symbols and map

struct SymbolUse {
  std::string path, kind;  // kind: function, class, method, call, ...
  bool definition = false;
  int line = 0;
  std::string text;  // the source line, trimmed
};
std::vector<SymbolUse> FindSymbol(const std::filesystem::path& root, const std::string& name);

struct MapOptions {
  int token_budget = 1024;         // estimated as characters / 4
  std::vector<std::string> focus;  // files (relative paths) or identifiers of interest
};
std::string RepoMap(const std::filesystem::path& root, const MapOptions& options);

}  // namespace hearth::index
